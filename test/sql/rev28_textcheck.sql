-- REV28: is_sealed() (the cv_sealed CHECK's validator, cv_envelope_text_check:
-- the header decoded inline, the alphabet tested 32 characters a step with
-- AVX2) accepts exactly the texts the type's input (decode + parse) accepts,
-- at every length from the prefix alone to 60 characters past the smallest
-- envelope, with '=' and characters outside the alphabet (NUL-free bytes
-- over 0x7F included) at every place, every padding form; the same with JIT
-- compilation and inlining forced, and in the CHECK itself.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE SCHEMA rv28t;
RESET client_min_messages;
SELECT customer_vault.create_key('rv28t_key') > 0 AS created;

-- the verdict of the type's input function (decode + parse, type text)
CREATE FUNCTION rv28t.input_ok(x text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM x::customer_vault.encrypted_text;
  RETURN true;
EXCEPTION WHEN invalid_text_representation THEN
  RETURN false;
END $$;

-- real envelopes of 36..96 bytes (base64: 48..128 characters, every residue), text and bytea
CREATE TABLE rv28t.base AS
  SELECT n, customer_vault.encrypt(repeat('x', n), 'rv28t_key')::text AS s FROM generate_series(0, 60) n
  UNION ALL
  SELECT 100 + n, customer_vault.encrypt(decode(repeat('ab', n), 'hex'), 'rv28t_key')::text FROM generate_series(0, 4) n;
-- one character replaced, at every place, by '=', an alphabet character or one outside it
CREATE TABLE rv28t.cand AS
  SELECT overlay(b.s PLACING c FROM p FOR 1) AS x
    FROM rv28t.base b, generate_series(1, length(b.s)) p,
         unnest(ARRAY['=', 'A', 'z', '/', '+', '0', 'é', E'\x01', E'\x7f', '.', '-', '_', ' ']) c
   WHERE b.n % 4 = 0 OR b.n < 16 OR b.n >= 100;
-- cut or lengthened at the end, every padding form
INSERT INTO rv28t.cand
  SELECT left(b.s, length(b.s) - k) || t
    FROM rv28t.base b, generate_series(0, 12) k,
         unnest(ARRAY['', '=', '==', '===', 'A=', 'AA==', 'AAA=', 'QQ==', 'QR==', 'QUE=', 'QUF=', '=A', 'AAAA', 'é', '=é']) t;
-- short texts: the prefix and 0..60 characters of one kind, with a valid header's 12 characters or not
INSERT INTO rv28t.cand
  SELECT 'cv1$' || h || left(repeat(f, 60), k) || t
    FROM generate_series(0, 60) k,
         unnest(ARRAY['', 'AQEBAAAAAAE', 'AQEBAAAAAAEA', 'AQIBAAAAAAEA', 'AQEHAAAAAAEA', 'AgEBAAAAAAEA', 'AQEBAQAAAAEA', 'AQEBAIAAAAAA', 'AQEBAAAAAAAA']) h,
         unnest(ARRAY['A', '/', '=', 'é', 'Q']) f,
         unnest(ARRAY['', '=', '==']) t;
INSERT INTO rv28t.cand VALUES (''), ('c'), ('cv1'), ('cv1$'), ('CV1$AQEBAAAAAAEA'), ('cv2$AQEBAAAAAAEA');
SELECT count(*) > 20000 AS enough, count(*) FILTER (WHERE rv28t.input_ok(x)) > 500 AS enough_valid FROM rv28t.cand;

-- no JIT
SET jit = off;
SELECT count(*) AS disagreements FROM rv28t.cand WHERE customer_vault.is_sealed(x) <> rv28t.input_ok(x);
-- JIT with inlining, for the function and for the CHECK
SET jit = on;
SET jit_above_cost = 0;
SET jit_inline_above_cost = 0;
SET jit_optimize_above_cost = 0;
SELECT count(*) AS disagreements_jit FROM rv28t.cand WHERE customer_vault.is_sealed(x) <> rv28t.input_ok(x);
-- the encoder (AVX2 from 28 bytes) and the check in JIT-compiled expressions: every length 0..400
SELECT count(*) FILTER (WHERE NOT customer_vault.is_sealed(e::text)) AS not_sealed_jit,
       count(*) FILTER (WHERE customer_vault.decrypt(e) IS DISTINCT FROM p) AS roundtrip_wrong_jit,
       count(*) FILTER (WHERE replace(encode(decode(substr(e::text, 5), 'base64'), 'base64'), E'\n', '') <> substr(e::text, 5)) AS not_pg_base64_jit
  FROM (SELECT p, customer_vault.encrypt(p, 'rv28t_key') AS e
          FROM (SELECT left(repeat(md5(n::text) || 'é€+/', 30), n) AS p FROM generate_series(0, 400) n) s) t;
-- the CHECK: the owner writes envelopes with the trigger off; a text is stored iff it is well-formed
CREATE TABLE rv28t.t (id bigserial, v text);
SELECT customer_vault.protect_column('rv28t.t', 'v', 'rv28t_key') IS NOT NULL AS protected;
CREATE FUNCTION rv28t.stored(x text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rv28t.t (v) VALUES (x);
  RETURN true;
EXCEPTION WHEN check_violation THEN
  RETURN false;
END $$;
ALTER TABLE rv28t.t DISABLE TRIGGER USER;
SELECT count(*) AS check_disagreements
  FROM (SELECT x FROM rv28t.cand WHERE abs(hashtext(x)) % 50 = 0 UNION ALL SELECT s FROM rv28t.base) c
 WHERE rv28t.stored(c.x) <> rv28t.input_ok(c.x);
RESET jit_above_cost;
RESET jit_inline_above_cost;
RESET jit_optimize_above_cost;
RESET jit;

SET client_min_messages = warning;
DROP SCHEMA rv28t CASCADE;
RESET client_min_messages;
