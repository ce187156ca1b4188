-- REV28: the per-table trigger writes a row's text envelopes into one 8 KB
-- statement buffer (reset per row) and makes a row's context text once per
-- context column.  Every path a sealed datum can be read on after the row it
-- belongs to, with values around and over the buffer's size, five protected
-- columns over four context columns of four types: every row must decrypt to
-- its own input, and what RETURNING, AFTER triggers, transition tables and an
-- owner's later BEFORE trigger saw must be what was stored.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE SCHEMA rv28;
RESET client_min_messages;
SELECT customer_vault.create_key('rv28_key') > 0 AS created;
SELECT customer_vault.create_key('rv28_key2') > 0 AS created2;

-- the plaintext of row n, column k: 1 to 9,000 characters (sealed: up to 12 KB of text),
-- so that a row's envelopes fill the buffer, overflow it, and fit again after a large one
CREATE FUNCTION rv28.pt(n int, k int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT k || ':' || n || ':' || repeat(chr(97 + (n * 7 + k) % 26),
         CASE (n + k) % 6 WHEN 0 THEN 1 WHEN 1 THEN 100 WHEN 2 THEN 2000 WHEN 3 THEN 5000
                          WHEN 4 THEN 9000 ELSE 5900 END)
$$;

CREATE TABLE rv28.w (id int PRIMARY KEY, n int NOT NULL, u uuid NOT NULL, num numeric, addr inet NOT NULL,
                     a text, b text, c text, d text, e text, copy_a text, copy_e text);
SELECT customer_vault.protect_column('rv28.w', 'a', 'rv28_key', 'id', 'a_bidx') IS NOT NULL AS pa;
SELECT customer_vault.protect_column('rv28.w', 'b', 'rv28_key2', 'u') IS NOT NULL AS pb;
SELECT customer_vault.protect_column('rv28.w', 'c', 'rv28_key', 'id') IS NOT NULL AS pc;
SELECT customer_vault.protect_column('rv28.w', 'd', 'rv28_key', 'num') IS NOT NULL AS pd;
SELECT customer_vault.protect_column('rv28.w', 'e', 'rv28_key2', 'addr') IS NOT NULL AS pe;
SELECT column_name, context_column, checks_out FROM customer_vault._protect_triggers()
 WHERE relid = 'rv28.w'::regclass ORDER BY column_name;

-- what the owner's triggers see: a BEFORE trigger after cv_protect copies two
-- envelopes, an AFTER ROW trigger and a transition table log them
CREATE TABLE rv28.seen (how text, id int, a text, e text);
CREATE FUNCTION rv28.z_copy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.copy_a := NEW.a; NEW.copy_e := NEW.e; RETURN NEW; END $$;
CREATE FUNCTION rv28.after_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO rv28.seen VALUES ('row', NEW.id, NEW.a, NEW.e); RETURN NULL; END $$;
CREATE FUNCTION rv28.after_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO rv28.seen SELECT 'stmt', id, a, e FROM newrows; RETURN NULL; END $$;
CREATE TRIGGER z_copy BEFORE INSERT OR UPDATE ON rv28.w FOR EACH ROW EXECUTE FUNCTION rv28.z_copy();
CREATE TRIGGER after_row AFTER INSERT OR UPDATE ON rv28.w FOR EACH ROW EXECUTE FUNCTION rv28.after_row();
CREATE TRIGGER after_ins AFTER INSERT ON rv28.w REFERENCING NEW TABLE AS newrows
    FOR EACH STATEMENT EXECUTE FUNCTION rv28.after_stmt();
CREATE TRIGGER after_upd AFTER UPDATE ON rv28.w REFERENCING NEW TABLE AS newrows
    FOR EACH STATEMENT EXECUTE FUNCTION rv28.after_stmt();

-- the check of everything: each row's five values decrypt to its own input,
-- no two rows share an envelope, and what the triggers saw is what is stored
CREATE FUNCTION rv28.verify(tag text) RETURNS TABLE (tag text, rows bigint, wrong bigint, shared bigint,
                                                     copy_differs bigint, seen_differs bigint)
LANGUAGE sql AS $$
  SELECT tag, count(*),
         count(*) FILTER (WHERE v.a IS DISTINCT FROM rv28.pt(v.n, 1) OR v.b IS DISTINCT FROM rv28.pt(v.n, 2)
                             OR v.c IS DISTINCT FROM rv28.pt(v.n, 3)
                             OR v.d IS DISTINCT FROM CASE WHEN v.num IS NULL THEN NULL ELSE rv28.pt(v.n, 4) END
                             OR v.e IS DISTINCT FROM rv28.pt(v.n, 5)
                             OR w.a_bidx IS DISTINCT FROM customer_vault.column_blind_index('rv28.w', 'a', rv28.pt(v.n, 1))),
         (SELECT count(*) FROM (SELECT x FROM rv28.w, LATERAL (VALUES (a), (b), (c), (d), (e)) s(x)
                                 WHERE x IS NOT NULL GROUP BY x HAVING count(*) > 1) dup),
         count(*) FILTER (WHERE w.copy_a IS DISTINCT FROM w.a OR w.copy_e IS DISTINCT FROM w.e),
         (SELECT count(*) FROM rv28.seen s JOIN rv28.w x ON x.id = s.id
           WHERE (s.a IS DISTINCT FROM x.a OR s.e IS DISTINCT FROM x.e)
             AND NOT EXISTS (SELECT FROM rv28.seen s2 WHERE s2.id = s.id AND s2.how = s.how AND s2.a = x.a AND s2.e = x.e))
    FROM rv28.w w JOIN rv28.w_decrypted v USING (id)
$$;

-- multi-row VALUES and INSERT ... SELECT, with RETURNING read in the same statement
CREATE TABLE rv28.ret AS SELECT id, a, b, c, d, e FROM rv28.w WITH NO DATA;
INSERT INTO rv28.w (id, n, u, num, addr, a, b, c, d, e) VALUES
  (1, 1, md5('1')::uuid, 1.50, '10.0.0.1', rv28.pt(1, 1), rv28.pt(1, 2), rv28.pt(1, 3), rv28.pt(1, 4), rv28.pt(1, 5)),
  (2, 2, md5('2')::uuid, NULL, '::1', rv28.pt(2, 1), rv28.pt(2, 2), rv28.pt(2, 3), NULL, rv28.pt(2, 5)),
  (3, 3, md5('3')::uuid, -0.000, '192.168.0.0/16', rv28.pt(3, 1), rv28.pt(3, 2), rv28.pt(3, 3), rv28.pt(3, 4), rv28.pt(3, 5));
WITH ins AS (
  INSERT INTO rv28.w (id, n, u, num, addr, a, b, c, d, e)
  SELECT g, g, md5(g::text)::uuid, CASE WHEN g % 7 = 0 THEN NULL ELSE g / 3.0 END, ('10.1.' || g % 256 || '.' || g / 256)::inet,
         rv28.pt(g, 1), rv28.pt(g, 2), rv28.pt(g, 3), CASE WHEN g % 7 = 0 THEN NULL ELSE rv28.pt(g, 4) END, rv28.pt(g, 5)
    FROM generate_series(4, 60) g
  RETURNING id, a, b, c, d, e)
INSERT INTO rv28.ret SELECT * FROM ins;
SELECT count(*) AS returned,
       count(*) FILTER (WHERE (r.a, r.b, r.c, r.d, r.e) IS DISTINCT FROM (w.a, w.b, w.c, w.d, w.e)) AS returning_differs
  FROM rv28.ret r JOIN rv28.w w USING (id);
SELECT * FROM rv28.verify('insert');
-- the contexts the values were bound to are the stored ones of four types
SELECT count(*) FILTER (WHERE customer_vault._open_column(w.e, customer_vault._row_context(
         (SELECT binding FROM customer_vault.protected_columns WHERE relid = 'rv28.w'::regclass AND column_name = 'e'), w.addr))
         IS DISTINCT FROM rv28.pt(w.n, 5)) AS e_by_context
  FROM rv28.w w;

-- a value with a NULL context is refused, naming no value; the statement leaves nothing
INSERT INTO rv28.w (id, n, u, num, addr, a, d) VALUES (90, 90, md5('90')::uuid, NULL, '10.9.9.9', 'x', 'secret d');
SELECT count(*) AS left_behind FROM rv28.w WHERE id = 90;

-- UPDATE: the re-bind path ("the row's context changed") for every row and
-- several columns at once, a new plaintext in the same row, and rows whose
-- context and values stay
UPDATE rv28.w SET id = id + 1000, u = md5('u' || id)::uuid WHERE id % 2 = 0;
UPDATE rv28.w SET addr = addr + 1, c = rv28.pt(n, 3), num = num * 2 WHERE id % 3 = 0;
UPDATE rv28.w SET n = n WHERE id % 5 = 0;
SELECT * FROM rv28.verify('update');

-- INSERT ... ON CONFLICT DO UPDATE: new plaintexts, and envelopes of the
-- excluded row (sealed under the same context) kept
INSERT INTO rv28.w (id, n, u, num, addr, a, b, c, d, e)
SELECT g, g, md5(g::text)::uuid, 7, '10.7.7.7', rv28.pt(g, 1), rv28.pt(g, 2), rv28.pt(g, 3), rv28.pt(g, 4), rv28.pt(g, 5)
  FROM generate_series(1, 70) g
ON CONFLICT (id) DO UPDATE SET a = rv28.pt(EXCLUDED.n, 1), e = EXCLUDED.e, addr = EXCLUDED.addr,
                               n = EXCLUDED.n, c = EXCLUDED.c, b = rv28.pt(EXCLUDED.n, 2), u = EXCLUDED.u,
                               num = EXCLUDED.num, d = EXCLUDED.d;
SELECT * FROM rv28.verify('on conflict');

-- an owner's BEFORE trigger that fires before cv_protect inserts into the same
-- table (a nested statement, its own trigger state) and moves the row's context
CREATE FUNCTION rv28.a_nest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' AND NEW.id BETWEEN 2000 AND 2100 AND NEW.id % 4 = 0 THEN
    INSERT INTO rv28.w (id, n, u, num, addr, a, b, c, d, e)
    VALUES (NEW.id + 5000, NEW.n + 5000, md5(NEW.id::text)::uuid, 3, '10.3.3.3', rv28.pt(NEW.n + 5000, 1),
            rv28.pt(NEW.n + 5000, 2), rv28.pt(NEW.n + 5000, 3), rv28.pt(NEW.n + 5000, 4), rv28.pt(NEW.n + 5000, 5));
  END IF;
  NEW.addr := NEW.addr + 256;
  RETURN NEW;
END $$;
CREATE TRIGGER a_nest BEFORE INSERT OR UPDATE ON rv28.w FOR EACH ROW EXECUTE FUNCTION rv28.a_nest();
INSERT INTO rv28.w (id, n, u, num, addr, a, b, c, d, e)
SELECT g, g, md5(g::text)::uuid, g, '10.2.0.1', rv28.pt(g, 1), rv28.pt(g, 2), rv28.pt(g, 3), rv28.pt(g, 4), rv28.pt(g, 5)
  FROM generate_series(2000, 2040) g;
SELECT count(*) AS nested_rows FROM rv28.w WHERE id > 7000;
SELECT * FROM rv28.verify('nested');
-- an AFTER trigger's nested insert into the same table
CREATE FUNCTION rv28.after_nest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id BETWEEN 3000 AND 3100 THEN
    INSERT INTO rv28.w (id, n, u, num, addr, a, b, c, d, e)
    VALUES (NEW.id + 100, NEW.n + 100, md5(NEW.id::text)::uuid, NULL, '10.4.4.4', rv28.pt(NEW.n + 100, 1),
            rv28.pt(NEW.n + 100, 2), rv28.pt(NEW.n + 100, 3), NULL, rv28.pt(NEW.n + 100, 5));
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER after_nest AFTER INSERT ON rv28.w FOR EACH ROW EXECUTE FUNCTION rv28.after_nest();
INSERT INTO rv28.w (id, n, u, num, addr, a, b, c, d, e)
SELECT g, g, md5(g::text)::uuid, -g, '10.5.0.1', rv28.pt(g, 1), rv28.pt(g, 2), rv28.pt(g, 3), rv28.pt(g, 4), rv28.pt(g, 5)
  FROM generate_series(3000, 3020) g;
SELECT count(*) AS after_nested_rows FROM rv28.w WHERE id BETWEEN 3100 AND 3200;
SELECT * FROM rv28.verify('after nested');
DROP TRIGGER a_nest ON rv28.w;
DROP TRIGGER after_nest ON rv28.w;

-- functions inserting in a loop (one statement, one trigger state, each)
CREATE FUNCTION rv28.loop(lo int, hi int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  FOR g IN lo .. hi LOOP
    INSERT INTO rv28.w (id, n, u, num, addr, a, b, c, d, e)
    VALUES (g, g, md5(g::text)::uuid, g, '10.6.0.1', rv28.pt(g, 1), rv28.pt(g, 2), rv28.pt(g, 3), rv28.pt(g, 4), rv28.pt(g, 5));
  END LOOP;
END $$;
CREATE FUNCTION rv28.sqlf(g int) RETURNS int LANGUAGE sql AS $$
  INSERT INTO rv28.w (id, n, u, num, addr, a, b, c, d, e)
  VALUES (g, g, md5(g::text)::uuid, g, '10.8.0.1', rv28.pt(g, 1), rv28.pt(g, 2), rv28.pt(g, 3), rv28.pt(g, 4), rv28.pt(g, 5));
  UPDATE rv28.w SET id = g + 1, n = g + 1, a = rv28.pt(g + 1, 1), b = rv28.pt(g + 1, 2), c = rv28.pt(g + 1, 3),
                    d = rv28.pt(g + 1, 4), e = rv28.pt(g + 1, 5) WHERE id = g;
  SELECT g
$$;
SELECT rv28.loop(4000, 4030);
SELECT count(rv28.sqlf(g)) AS sql_calls FROM generate_series(4100, 4140, 2) g;
SELECT * FROM rv28.verify('loops');

-- COPY (a BEFORE trigger: row by row)
DO $$
DECLARE f text := '/tmp/rv28_copy_' || pg_backend_pid() || '.txt';
BEGIN
  EXECUTE format($q$COPY (SELECT g, g, md5(g::text)::uuid, g * 1.25, '10.10.0.1',
                         rv28.pt(g, 1), rv28.pt(g, 2), rv28.pt(g, 3), rv28.pt(g, 4), rv28.pt(g, 5)
                    FROM generate_series(5000, 5040) g) TO %L$q$, f);
  EXECUTE format('COPY rv28.w (id, n, u, num, addr, a, b, c, d, e) FROM PROGRAM %L', 'cat ' || f || ' && rm -f ' || f);
END $$;
SELECT * FROM rv28.verify('copy');

-- a partitioned table: tuple routing, rows moving between partitions with a new context, COPY
CREATE TABLE rv28.p (id int NOT NULL, region int NOT NULL, k text NOT NULL, a text, b text, c text)
  PARTITION BY LIST (region);
CREATE TABLE rv28.p1 PARTITION OF rv28.p FOR VALUES IN (1);
CREATE TABLE rv28.p2 (c text, dropped int, b text, a text, k text NOT NULL, region int NOT NULL, id int NOT NULL);
ALTER TABLE rv28.p2 DROP COLUMN dropped;
ALTER TABLE rv28.p ATTACH PARTITION rv28.p2 FOR VALUES IN (2);
CREATE TABLE rv28.p3 PARTITION OF rv28.p FOR VALUES IN (3) PARTITION BY RANGE (id);
CREATE TABLE rv28.p3a PARTITION OF rv28.p3 FOR VALUES FROM (MINVALUE) TO (50);
CREATE TABLE rv28.p3b PARTITION OF rv28.p3 FOR VALUES FROM (50) TO (MAXVALUE);
SELECT customer_vault.protect_column('rv28.p', 'a', 'rv28_key', 'id') IS NOT NULL AS pa;
SELECT customer_vault.protect_column('rv28.p', 'b', 'rv28_key2', 'k') IS NOT NULL AS pb;
SELECT customer_vault.protect_column('rv28.p', 'c', 'rv28_key', 'id') IS NOT NULL AS pc;
CREATE FUNCTION rv28.pverify(tag text) RETURNS TABLE (tag text, rows bigint, wrong bigint, shared bigint)
LANGUAGE sql AS $$
  SELECT tag, count(*),
         count(*) FILTER (WHERE v.a IS DISTINCT FROM rv28.pt(v.id % 1000, 1) || v.k
                             OR v.b IS DISTINCT FROM rv28.pt(v.id % 1000, 2)
                             OR v.c IS DISTINCT FROM rv28.pt(v.id % 1000, 3)),
         (SELECT count(*) FROM (SELECT x FROM rv28.p, LATERAL (VALUES (a), (b), (c)) s(x)
                                 GROUP BY x HAVING count(*) > 1) dup)
    FROM rv28.p_decrypted v
$$;
INSERT INTO rv28.p (id, region, k, a, b, c)
SELECT g, 1 + g % 3, 'k' || g, rv28.pt(g, 1) || 'k' || g, rv28.pt(g, 2), rv28.pt(g, 3) FROM generate_series(1, 90) g;
SELECT tableoid::regclass AS part, count(*) FROM rv28.p GROUP BY 1 ORDER BY 1;
SELECT * FROM rv28.pverify('routed');
-- moved to another partition with a new context (id) for a and c, b unchanged
UPDATE rv28.p SET region = 1 + (region % 3), id = id + 1000 WHERE id % 2 = 0;
-- moved with a new plaintext for b and a new k
UPDATE rv28.p SET region = 3, k = 'k' || id, b = rv28.pt(id % 1000, 2), a = rv28.pt(id % 1000, 1) || 'k' || id WHERE region = 1;
SELECT tableoid::regclass AS part, count(*) FROM rv28.p GROUP BY 1 ORDER BY 1;
SELECT * FROM rv28.pverify('moved');
DO $$
DECLARE f text := '/tmp/rv28_pcopy_' || pg_backend_pid() || '.txt';
BEGIN
  EXECUTE format($q$COPY (SELECT g, 1 + g %% 3, 'k' || g, rv28.pt(g, 1) || 'k' || g, rv28.pt(g, 2), rv28.pt(g, 3)
                    FROM generate_series(100, 160) g) TO %L$q$, f);
  EXECUTE format('COPY rv28.p (id, region, k, a, b, c) FROM PROGRAM %L', 'cat ' || f || ' && rm -f ' || f);
END $$;
SELECT * FROM rv28.pverify('copy routed');

-- MERGE: matched rows updated (new plaintexts, a new context), others inserted
MERGE INTO rv28.w w
USING (SELECT g FROM generate_series(5030, 5060) g) s ON w.id = s.g
WHEN MATCHED AND s.g % 2 = 0 THEN
  UPDATE SET id = s.g + 20000, a = rv28.pt(w.n, 1), e = rv28.pt(w.n, 5), addr = '10.11.0.1'
WHEN MATCHED THEN
  UPDATE SET u = md5('m' || s.g)::uuid, num = NULL, d = NULL
WHEN NOT MATCHED THEN
  INSERT (id, n, u, num, addr, a, b, c, d, e)
  VALUES (s.g, s.g, md5(s.g::text)::uuid, s.g, '10.12.0.1', rv28.pt(s.g, 1), rv28.pt(s.g, 2), rv28.pt(s.g, 3),
          rv28.pt(s.g, 4), rv28.pt(s.g, 5));
SELECT * FROM rv28.verify('merge');

-- a foreign key's ON UPDATE CASCADE changes the context column of many rows
-- at once (the referential action's own statement re-binds them)
CREATE TABLE rv28.par (id int PRIMARY KEY);
CREATE TABLE rv28.ch (id int PRIMARY KEY, pid int NOT NULL REFERENCES rv28.par ON UPDATE CASCADE, v text, x text);
SELECT customer_vault.protect_column('rv28.ch', 'v', 'rv28_key', 'pid') IS NOT NULL AS pv;
SELECT customer_vault.protect_column('rv28.ch', 'x', 'rv28_key2', 'pid') IS NOT NULL AS px;
INSERT INTO rv28.par SELECT generate_series(1, 5);
INSERT INTO rv28.ch SELECT g, 1 + g % 5, rv28.pt(g, 1), rv28.pt(g, 2) FROM generate_series(1, 40) g;
UPDATE rv28.par SET id = id + 100;
SELECT count(*) AS rows, count(*) FILTER (WHERE pid <= 100) AS not_cascaded,
       count(*) FILTER (WHERE v.v IS DISTINCT FROM rv28.pt(v.id, 1) OR v.x IS DISTINCT FROM rv28.pt(v.id, 2)) AS wrong
  FROM rv28.ch_decrypted v;

-- 1,500 random rows of six protected columns over two context columns, values
-- of sizes that exactly fill the buffer (6,102 characters: 8,192 bytes sealed),
-- miss it by one either way, or are NULL; then contexts changed at random
SELECT setseed(0.28) IS NULL AS seeded;
CREATE TABLE rv28.rsrc AS
  SELECT g AS id, k, CASE WHEN random() < 0.1 THEN NULL
                          ELSE left(md5(g::text || k) || repeat(chr(65 + (g + k) % 26), 7000),
                                    (ARRAY[0, 1, 6102, 6101, 6103, 3000, 3047, 2000, 100, 6999, 4090])[1 + floor(random() * 11)::int]) END AS v
    FROM generate_series(1, 1500) g, generate_series(1, 6) k;
CREATE TABLE rv28.r (id int PRIMARY KEY, c2 text NOT NULL, v1 text, v2 text, v3 text, v4 text, v5 text, v6 text);
SELECT customer_vault.protect_column('rv28.r', 'v' || k, 'rv28_key', CASE WHEN k % 2 = 0 THEN 'id' ELSE 'c2' END) IS NOT NULL AS protected FROM generate_series(1, 6) k;
INSERT INTO rv28.r SELECT id, 'c' || id, max(v) FILTER (WHERE k = 1), max(v) FILTER (WHERE k = 2), max(v) FILTER (WHERE k = 3),
                        max(v) FILTER (WHERE k = 4), max(v) FILTER (WHERE k = 5), max(v) FILTER (WHERE k = 6)
  FROM rv28.rsrc GROUP BY id;
CREATE FUNCTION rv28.rwrong() RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM rv28.r_decrypted d JOIN rv28.rsrc s ON s.id = d.id % 100000
   WHERE s.v IS DISTINCT FROM (ARRAY[d.v1, d.v2, d.v3, d.v4, d.v5, d.v6])[s.k] $$;
SELECT rv28.rwrong() AS wrong_insert;
UPDATE rv28.r SET c2 = c2 || 'x' WHERE id % 3 = 0;
UPDATE rv28.r SET id = id + 100000 WHERE id % 5 = 0;
UPDATE rv28.r SET c2 = c2 || 'y', id = id + 200000 WHERE id % 7 = 0;
SELECT rv28.rwrong() AS wrong_update;

SET client_min_messages = warning;
DROP SCHEMA rv28 CASCADE;
RESET client_min_messages;
