-- REV26: the vector base64 encoder and the alphabet check against PostgreSQL's own
-- base64 and an independent reference of is_sealed, at every length 0..1000
\set VERBOSITY terse
SET client_min_messages = warning;
SELECT customer_vault.create_key('rv_key') > 0 AS created;
SELECT customer_vault.create_key('rv_pad', NULL, 7) > 0 AS created_pad;

-- an independent is_sealed: prefix, alphabet, canonical (re-encoding gives it back), length, header
CREATE FUNCTION ref_sealed(x text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE b text; d bytea; f int;
BEGIN
  IF x IS NULL OR x !~ '^cv1\$[ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/]*(=|==)?$' THEN RETURN false; END IF;
  b := substr(x, 5);
  IF length(b) % 4 <> 0 OR length(b) = 0 THEN RETURN false; END IF;
  d := decode(b, 'base64');
  IF replace(encode(d, 'base64'), E'\n', '') <> b THEN RETURN false; END IF;
  IF length(d) < 36 THEN RETURN false; END IF;
  f := get_byte(d, 2);
  RETURN get_byte(d, 0) = 1 AND get_byte(d, 1) = 1 AND (f & ~3) = 0 AND get_byte(d, 3) = 0
     AND get_byte(d, 4) < 128 AND (get_byte(d, 4) | get_byte(d, 5) | get_byte(d, 6) | get_byte(d, 7)) <> 0;
EXCEPTION WHEN others THEN RETURN false;
END $$;

CREATE TABLE rv_src AS
  SELECT n, substr(repeat('aé€𝄞Zq0/+', 1000), 1, n) AS t,
         substring(decode((SELECT string_agg(md5(n::text || '-' || g), '') FROM generate_series(1, 63) g), 'hex') FROM 1 FOR n) AS b
    FROM generate_series(0, 1000) n;
CREATE TABLE rv AS
  SELECT n, t, b,
         customer_vault.encrypt(t, 'rv_key') AS et,
         customer_vault.encrypt(b, 'rv_key') AS eb,
         customer_vault.encrypt(t, 'rv_key', 'ctx' || n) AS etc,
         customer_vault.encrypt(t, 'rv_pad') AS etp
    FROM rv_src;
-- round trips
SELECT count(*) FILTER (WHERE customer_vault.decrypt(et) IS DISTINCT FROM t) AS bad_text,
       count(*) FILTER (WHERE customer_vault.decrypt(eb) IS DISTINCT FROM b) AS bad_bytea,
       count(*) FILTER (WHERE customer_vault.decrypt(etc, 'ctx' || n) IS DISTINCT FROM t) AS bad_ctx,
       count(*) FILTER (WHERE customer_vault.decrypt(etp) IS DISTINCT FROM t) AS bad_pad
  FROM rv;
-- the text form is exactly PostgreSQL's base64 of the binary form
SELECT count(*) FILTER (WHERE left(v, 4) <> 'cv1$'
                          OR replace(encode(decode(substr(v, 5), 'base64'), 'base64'), E'\n', '') <> substr(v, 5)) AS not_pg_base64,
       count(*) FILTER (WHERE NOT ref_sealed(v) AND k <> 'b') AS ref_refuses,
       count(*) FILTER (WHERE customer_vault.is_sealed(v) <> (k <> 'b')) AS is_sealed_wrong
  FROM rv, LATERAL (VALUES ('t', et::text), ('b', eb::text), ('c', etc::text), ('p', etp::text)) AS x(k, v);

-- one character replaced by something outside the alphabet, at every place, for base64 lengths of every residue mod 16
CREATE TABLE cr AS SELECT n, et::text AS s FROM rv WHERE n <= 64 OR n % 13 = 0 OR n = 1000;
SELECT count(*) AS accepted_non_alphabet
  FROM cr, generate_series(1, length(cr.s)) p,
       unnest(ARRAY['.', ':', '@', '[', '`', '{', '-', '_', ',', '*', ' ', E'\x7f', E'\x01', 'é', '€', '𝄞', 'Ā', 'ÿ']) c
 WHERE customer_vault.is_sealed(overlay(cr.s PLACING c FROM p FOR 1));
-- '=' and alphabet characters at every place (short values): is_sealed agrees with the reference
SELECT count(*) AS disagreements
  FROM cr, generate_series(1, length(cr.s)) p,
       unnest(ARRAY['=', 'A', 'Z', 'a', 'z', '0', '9', '+', '/']) c,
       LATERAL (SELECT overlay(cr.s PLACING c FROM p FOR 1) AS x) m
 WHERE cr.n <= 40 AND customer_vault.is_sealed(m.x) <> ref_sealed(m.x);
-- cut or extended at the end
SELECT count(*) AS disagreements_len
  FROM cr, generate_series(0, 20) k, unnest(ARRAY['', 'A', '=', '==', 'AA==', 'AAA=', 'AAAA', '.', 'é']) c,
       LATERAL (SELECT left(cr.s, length(cr.s) - k) || c AS x) m
 WHERE customer_vault.is_sealed(m.x) <> ref_sealed(m.x);
SELECT customer_vault.is_sealed(x) AS sealed, count(*)
  FROM unnest(ARRAY['', 'cv1$', 'cv1$====', 'cv1', 'cv2$AQEAAAAAAAE=', repeat('A', 64), 'cv1$' || repeat('A', 64), 'cv1$' || repeat('/', 48)]) x
 GROUP BY 1 ORDER BY 1;

-- the transparent path: protect_column, INSERT, the _decrypted view
CREATE TABLE tp (id int PRIMARY KEY, v text);
INSERT INTO tp SELECT n, t FROM rv_src WHERE n % 2 = 0;
SELECT customer_vault.protect_column('tp', 'v', 'rv_key', 'id') IS NOT NULL AS protected;
INSERT INTO tp SELECT n, t FROM rv_src WHERE n % 2 = 1;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE NOT ref_sealed(tp.v)) AS stored_not_canonical,
       count(*) FILTER (WHERE d.v IS DISTINCT FROM s.t) AS view_differs
  FROM tp JOIN tp_decrypted d USING (id) JOIN rv_src s ON s.n = tp.id;
-- the CHECK alone (no trigger): a canonical envelope with one character outside the alphabet is refused
SET session_replication_role = replica;
CREATE FUNCTION try_insert(x text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tp VALUES (100000, x);
  DELETE FROM tp WHERE id = 100000;
  RETURN 'accepted';
EXCEPTION WHEN check_violation THEN RETURN 'refused';
END $$;
SELECT try_insert(r) AS result, count(*)
  FROM (SELECT overlay(s PLACING c FROM p FOR 1) AS r
          FROM cr, generate_series(5, length(cr.s), 3) p, unnest(ARRAY['.', '@', '`', '{', E'\x7f', 'é']) c
         WHERE cr.n IN (0, 1, 2, 5, 13, 100, 1000)) q
 GROUP BY 1;
SELECT try_insert(s) AS result, count(*) FROM cr WHERE n IN (0, 1, 2, 5, 13, 100, 1000) GROUP BY 1;
RESET session_replication_role;

-- the same under JIT with inlining (the extension's bitcode is installed)
SET jit = on;
SET jit_above_cost = 0;
SET jit_inline_above_cost = 0;
SET jit_optimize_above_cost = 0;
SELECT count(*) FILTER (WHERE customer_vault.decrypt(customer_vault.encrypt(t, 'rv_key')) IS DISTINCT FROM t) AS jit_bad_roundtrip,
       count(*) FILTER (WHERE NOT customer_vault.is_sealed(customer_vault.encrypt(t, 'rv_key')::text)) AS jit_refused
  FROM rv_src;
SELECT count(*) AS jit_accepted_non_alphabet
  FROM cr, generate_series(1, length(cr.s)) p, unnest(ARRAY['.', '@', '`', '{', E'\x7f', 'é']) c
 WHERE cr.n % 5 = 0 AND customer_vault.is_sealed(overlay(cr.s PLACING c FROM p FOR 1));
RESET jit;
RESET jit_above_cost;
RESET jit_inline_above_cost;
RESET jit_optimize_above_cost;
