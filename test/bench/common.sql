-- test/bench/common.sql: the schema `bench` for one table size, made before
-- the sections run (bench.pl passes the settings as psql variables).
--
--   bench.src        n customer rows: email 25 B, phone 12 B, notes 200 B
--   bench.facts      the run's settings and what the sections learn (notes)
--   bench.samples    one row per measurement: key, seconds
--   bench.report     the rows of the printed table, made by each section's
--                    report phase (bench.pl adds targets and verdicts)
--   bench.floor      the OpenSSL floor per value size (aead_floor.c)
--   bench.time_sql() seconds a statement takes inside the server
--   bench.timed()    time a statement, check its result, keep the sample
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS customer_vault CASCADE;
SELECT customer_vault.create_key('bench', 'benchmark key')
 WHERE NOT EXISTS (SELECT 1 FROM customer_vault.keys WHERE name = 'bench');
DROP SCHEMA IF EXISTS bench CASCADE;
-- protect_column's registry keeps rows of dropped tables: forget ours
DELETE FROM customer_vault.protected_columns WHERE schema_name = 'bench';
CREATE SCHEMA bench;

CREATE TABLE bench.facts (key text PRIMARY KEY, value text);
INSERT INTO bench.facts VALUES ('n', :'n'), ('reps', :'reps'), ('pgp_n', :'pgp_n'), ('subj_n', :'subj_n'),
    ('lookups', :'lookups'), ('purge_rate', :'purge_rate'), ('purge_hold', :'purge_hold'),
    ('consent_cache', :'consent_cache');
CREATE TABLE bench.samples (id bigserial PRIMARY KEY, key text NOT NULL, secs float8 NOT NULL);
CREATE TABLE bench.report (ord serial PRIMARY KEY, section text NOT NULL, operation text NOT NULL,
                           median_s float8, samples_s text, per_unit_us float8, overhead_us float8,
                           ratio float8, max_s float8, note text);
CREATE TABLE bench.floor (size int PRIMARY KEY, seal_us float8 NOT NULL, open_us float8 NOT NULL);

-- a fact (NULL when unknown), as text, bigint or float8
CREATE FUNCTION bench.fact(k text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT value FROM bench.facts WHERE key = k $$;
CREATE FUNCTION bench.ifact(k text) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT NULLIF(value, '')::bigint FROM bench.facts WHERE key = k $$;
CREATE FUNCTION bench.set_fact(k text, v text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO bench.facts VALUES (k, v) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value $$;

-- the median of a key's samples (the mean of the middle two for an even count),
-- its samples in the order taken, the largest
CREATE FUNCTION bench.m(k text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) FROM bench.samples WHERE key = k $$;
CREATE FUNCTION bench.s(k text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT string_agg(round(secs::numeric, 6)::text, ' ' ORDER BY id) FROM bench.samples WHERE key = k $$;
CREATE FUNCTION bench.mx(k text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT max(secs) FROM bench.samples WHERE key = k $$;
-- the median of the differences k - base between their samples taken side
-- by side (the i-th sample of each, in the order taken)
CREATE FUNCTION bench.md(k text, base text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY a.secs - b.secs)
      FROM (SELECT secs, row_number() OVER (ORDER BY id) AS i FROM bench.samples WHERE key = k) a
      JOIN (SELECT secs, row_number() OVER (ORDER BY id) AS i FROM bench.samples WHERE key = base) b USING (i) $$;
CREATE FUNCTION bench.npairs(k text, base text) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT least((SELECT count(*) FROM bench.samples WHERE key = k),
                 (SELECT count(*) FROM bench.samples WHERE key = base)) $$;
-- seconds for count units -> microseconds per unit; a number for a note
CREATE FUNCTION bench.us(secs float8, cnt float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT secs * 1e6 / cnt $$;
CREATE FUNCTION bench.f(x float8, d int DEFAULT 2) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(round(x::numeric, d)::text, '-') $$;
CREATE FUNCTION bench.row(section text, operation text, median_s float8, samples_s text, per_unit_us float8,
                          overhead_us float8, ratio float8, note text, max_s float8 DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO bench.report (section, operation, median_s, samples_s, per_unit_us, overhead_us, ratio, max_s, note)
    VALUES (section, operation, median_s, samples_s, per_unit_us, overhead_us, ratio, max_s, note) $$;
-- stop the run with a message unless ok
CREATE FUNCTION bench.check(ok boolean, msg text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'bench check failed: %', msg;
    END IF;
END $$;

-- seconds a statement takes inside the server, and its result (row count or value)
CREATE FUNCTION bench.time_sql(stmt text, OUT secs float8, OUT result text)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    n bigint;
BEGIN
    IF stmt ~* '^\s*(select|with)\M' THEN
        t0 := clock_timestamp();
        EXECUTE stmt INTO result;
        secs := extract(epoch FROM clock_timestamp() - t0);
    ELSE
        t0 := clock_timestamp();
        EXECUTE stmt;
        GET DIAGNOSTICS n = ROW_COUNT;
        secs := extract(epoch FROM clock_timestamp() - t0);
        result := n::text;
    END IF;
END
$$;

-- the CPU seconds this server process has used (user + system), from Linux's
-- /proc/self/stat (clock ticks of 1/100 s); NULL where that cannot be read
CREATE FUNCTION bench.cpu_secs() RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    f text[];
BEGIN
    -- the fields after the command name, which ends at the last ') '
    f := string_to_array(regexp_replace(pg_read_file('/proc/self/stat'), '^.*\) ', ''), ' ');
    RETURN (f[12]::float8 + f[13]::float8) / 100.0;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END $$;
CREATE FUNCTION bench.timed(k text, expect text, stmt text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    r := bench.time_sql(stmt);
    IF expect IS NOT NULL AND r.result IS DISTINCT FROM expect THEN
        RAISE EXCEPTION 'bench check failed: %: got %, expected % from: %', k, r.result, expect, stmt;
    END IF;
    INSERT INTO bench.samples (key, secs) VALUES (k, r.secs);
    RETURN r.secs;
END $$;
-- bench.timed, and the server's CPU seconds of the statement as sample k_cpu
CREATE FUNCTION bench.timed_cpu(k text, expect text, stmt text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    c0 float8 := bench.cpu_secs();
    secs float8 := bench.timed(k, expect, stmt);
    c1 float8 := bench.cpu_secs();
BEGIN
    IF c0 IS NOT NULL AND c1 IS NOT NULL THEN
        INSERT INTO bench.samples (key, secs) VALUES (k || '_cpu', c1 - c0);
    END IF;
    RETURN secs;
END $$;
-- the note of a paired measurement: how many pairs, the plaintext side's
-- samples, and the overhead in server CPU time (median of the pairs too)
CREATE FUNCTION bench.pair_note(k text, base text, n bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('+us/row: median of %s side-by-side pairs with a plaintext INSERT (plaintext s: %s)',
                  bench.npairs(k, base), bench.s(base))
           || CASE WHEN bench.npairs(k || '_cpu', base || '_cpu') > 0
                   THEN '; server CPU +' || bench.f(bench.us(bench.md(k || '_cpu', base || '_cpu'), n)) || ' us/row'
                   ELSE '' END $$;
-- keep a sample measured elsewhere (CALLs, the purge writer)
CREATE FUNCTION bench.sample(k text, secs float8) RETURNS void LANGUAGE sql AS $$
    INSERT INTO bench.samples (key, secs) VALUES (k, secs) $$;

-- realistic customer rows: email 25 bytes, phone 12, notes 200, created_at
CREATE FUNCTION bench.email(id bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'cust.' || lpad(id::text, 8, '0') || '@example.com' $$;
CREATE FUNCTION bench.phone(id bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT '+1' || lpad(((id * 7919 + 2015550000) % 10000000000)::text, 10, '0') $$;
CREATE FUNCTION bench.notes(id bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT left('Customer notes: ' || md5(id::text) || ' ' || md5(id::text || 'a') || ' '
                || md5(id::text || 'b') || ' ' || md5(id::text || 'c') || ' '
                || md5(id::text || 'd') || ' ' || md5(id::text || 'e') || ' ' || md5(id::text || 'f'), 200) $$;

CREATE TABLE bench.src WITH (autovacuum_enabled = false) AS
SELECT g::bigint AS id, bench.email(g) AS email, bench.phone(g) AS phone, bench.notes(g) AS notes,
       timestamptz '2024-01-01 00:00+00' + (g % 100000) * interval '5 minutes' AS created_at
  FROM generate_series(1, :n) g;
VACUUM (ANALYZE) bench.src;
