-- The row context of a protected column is built one way (issue 10): by the
-- protect_column rewrite, the trigger, reencrypt and the decrypted view alike,
-- whatever the session's DateStyle and TimeZone.  Every accepted context type
-- end to end: a row converted by protect_column, a row inserted through the
-- trigger under other settings, read through the view under yet others,
-- re-encrypted after a rotation and read again; other types are refused.
\set VERBOSITY terse
SELECT customer_vault.create_key('rc_key') > 0 AS created;
CREATE TABLE rc_types (typ text, v1 text, v2 text);
INSERT INTO rc_types VALUES
    ('smallint', '7', '-8'), ('integer', '70000', '-1'), ('bigint', '9000000000', '0'),
    ('numeric', '12.50', '-0.000001'), ('uuid', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '00000000-0000-0000-0000-000000000000'),
    ('text', 'Zoë', 'with space '), ('character varying', 'v-1', ''), ('character(6)', 'ab', 'abcdef'),
    ('inet', '10.1.2.3', '2001:db8::1/64'), ('date', '2024-02-29', 'infinity'),
    ('timestamp with time zone', '2024-03-10 01:59:59.5+00', '1999-12-31 23:00:00-05');
CREATE TABLE rc_results (typ text, step text, readable bigint, total bigint);
CREATE PROCEDURE rc_check(t text, step text) LANGUAGE plpgsql AS $$
DECLARE
    tbl text := 'rc_' || md5(t);
BEGIN
    EXECUTE format('INSERT INTO rc_results SELECT %L, %L, count(*) FILTER (WHERE email = ''mail-'' || n), count(*) FROM %I',
                   t, step, tbl || '_decrypted');
END $$;

-- set up one table per type, one row each converted by protect_column
SET DateStyle = 'ISO, YMD';
SET TimeZone = 'UTC';
DO $$
DECLARE
    r record;
    tbl text;
BEGIN
    FOR r IN SELECT * FROM rc_types LOOP
        tbl := 'rc_' || md5(r.typ);
        EXECUTE format('CREATE TABLE %I (id %s PRIMARY KEY, n int, email text)', tbl, r.typ);
        EXECUTE format('INSERT INTO %I VALUES (%L, 1, ''mail-1'')', tbl, r.v1);
        PERFORM customer_vault.protect_column(tbl::regclass, 'email', 'rc_key', 'id');
    END LOOP;
END $$;
-- rows written through the trigger under other settings
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'America/Sao_Paulo';
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM rc_types LOOP
        EXECUTE format('INSERT INTO %I VALUES (%L, 2, ''mail-2'')', 'rc_' || md5(r.typ), r.v2);
    END LOOP;
END $$;
-- read through the view under yet other settings
SET DateStyle = 'German';
SET TimeZone = 'Asia/Kolkata';
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM rc_types LOOP
        CALL rc_check(r.typ, '1 written');
    END LOOP;
END $$;
-- rotate, re-encrypt every table (its own transactions), read again
SELECT customer_vault.rotate_key('rc_key') AS version;
SELECT format('CALL customer_vault.reencrypt(%L, ''email'')', 'rc_' || md5(typ)) FROM rc_types \gexec
RESET DateStyle;
SET TimeZone = 'Pacific/Chatham';
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM rc_types LOOP
        CALL rc_check(r.typ, '2 re-encrypted');
    END LOOP;
END $$;
SELECT r.typ, r.step, r.readable, r.total FROM rc_results r ORDER BY r.typ, r.step;
-- every value is on the new version
DO $$
DECLARE
    r record;
    n bigint;
BEGIN
    FOR r IN SELECT * FROM rc_types LOOP
        EXECUTE format('SELECT count(*) FROM %I WHERE customer_vault._needs_reseal(email, true)', 'rc_' || md5(r.typ)) INTO n;
        IF n <> 0 THEN
            RAISE EXCEPTION '% values of % not re-encrypted', n, r.typ;
        END IF;
    END LOOP;
END $$;
RESET TimeZone;

-- the same value gives the same context whatever the settings
SET TimeZone = 'UTC';
SELECT customer_vault._row_context('b:', '2024-03-10 01:59:59.5+00'::timestamptz) AS utc,
       customer_vault._row_context('b:', 'infinity'::timestamptz) AS inf,
       customer_vault._row_context('b:', '2024-02-29'::date) AS d,
       customer_vault._row_context('b:', 'ab'::char(6)) AS c,
       customer_vault._row_context('b:', '10.1.2.3'::inet) AS i,
       customer_vault._row_context('b:', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid) AS u;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'Postgres, MDY';
SELECT customer_vault._row_context('b:', '2024-03-10 01:59:59.5+00'::timestamptz) AS utc,
       customer_vault._row_context('b:', '2024-02-29'::date) AS d;
RESET TimeZone;
RESET DateStyle;
-- a domain over a supported type is accepted
CREATE DOMAIN rc_id AS bigint CHECK (VALUE > 0);
CREATE TABLE rc_domain (id rc_id PRIMARY KEY, email text);
INSERT INTO rc_domain VALUES (5, 'five');
SELECT customer_vault.protect_column('rc_domain', 'email', 'rc_key', 'id');
INSERT INTO rc_domain VALUES (6, 'six');
SELECT id, email FROM rc_domain_decrypted ORDER BY id;

-- other context types are refused at protect_column
CREATE TABLE rc_bad (j jsonb, f float8, b bytea, ts timestamp, email text);
SELECT customer_vault.protect_column('rc_bad', 'email', 'rc_key', 'j');
SELECT customer_vault.protect_column('rc_bad', 'email', 'rc_key', 'f');
SELECT customer_vault.protect_column('rc_bad', 'email', 'rc_key', 'b');
SELECT customer_vault.protect_column('rc_bad', 'email', 'rc_key', 'ts');
SELECT customer_vault._row_context('b:', '{}'::jsonb);
SELECT count(*) AS rc_bad_protected FROM customer_vault.protected_columns WHERE table_name = 'rc_bad';

DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM rc_types LOOP
        EXECUTE format('DROP TABLE %I CASCADE', 'rc_' || md5(r.typ));
    END LOOP;
END $$;
DROP TABLE rc_types, rc_results, rc_domain, rc_bad CASCADE;
DROP DOMAIN rc_id;
DROP PROCEDURE rc_check(text, text);
