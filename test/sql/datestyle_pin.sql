-- Maintenance and erasure run with pinned output settings (DateStyle 'ISO,
-- YMD', IntervalStyle postgres, extra_float_digits 3, bytea_output hex,
-- CvPinOutputSettings), whatever the caller set, and the retention cutoff is
-- written as ISO 8601 text: a purge under DateStyle 'SQL, DMY' (or German,
-- or Postgres with DMY) removes exactly the rows past retention.  On Citus
-- the workers read the constants Citus deparses with these settings
-- (test/citus/095_datestyle_forced_rls.pl); here a day <= 12 that differs
-- from its month would be misread by a half fix (an ISO-pinned statement
-- reading a cutoff printed in the caller's style).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE SCHEMA regress_ds;
-- as of 2026-12-02 12:00 UTC, 334 days back: 2026-01-02 12:00 (day 2, month 1)
CREATE TABLE regress_ds.tz (id int PRIMARY KEY, at timestamptz NOT NULL);
CREATE TABLE regress_ds.ts (id int PRIMARY KEY, at timestamp NOT NULL);
CREATE TABLE regress_ds.d (id int PRIMARY KEY, at date NOT NULL);
INSERT INTO regress_ds.tz SELECT g, timestamptz '2026-12-02 12:00:00+00' - g * interval '1 day' FROM generate_series(1, 400) g;
INSERT INTO regress_ds.ts SELECT g, timestamp '2026-12-02 12:00:00' - g * interval '1 day' FROM generate_series(1, 400) g;
INSERT INTO regress_ds.d SELECT g, date '2026-12-02' - g FROM generate_series(1, 400) g;
SELECT customer_vault.set_retention('regress_ds.tz', 'at', interval '334 days') IS NOT NULL AS tz_set,
       customer_vault.set_retention('regress_ds.ts', 'at', interval '334 days') IS NOT NULL AS ts_set,
       customer_vault.set_retention('regress_ds.d', 'at', interval '334 days') IS NOT NULL AS d_set;
-- the owner's code run by the purge sees the pinned settings
CREATE TABLE regress_ds.seen (what text);
CREATE FUNCTION regress_ds.note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO regress_ds.seen VALUES (pg_catalog.current_setting('DateStyle') || ' / ' ||
        pg_catalog.current_setting('IntervalStyle') || ' / ' || pg_catalog.current_setting('extra_float_digits') ||
        ' / ' || pg_catalog.current_setting('bytea_output'));
    RETURN NULL;
END $$;
CREATE TRIGGER note AFTER DELETE ON regress_ds.tz FOR EACH STATEMENT EXECUTE FUNCTION regress_ds.note();
RESET client_min_messages;

SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'sql_standard';
SET extra_float_digits = -15;
SET bytea_output = 'escape';
SELECT tbl, expired, to_purge FROM customer_vault.purge_preview(as_of => '2026-12-02 12:00:00+00') ORDER BY tbl::text;
CALL customer_vault.purge(as_of => '2026-12-02 12:00:00+00');
-- the caller's settings are back
SHOW DateStyle;
SHOW IntervalStyle;
SET DateStyle = 'ISO';
-- kept: ids 1..334 (334 days back is exactly the limit, kept); dates: 1..334
SELECT 'tz' AS t, min(id), max(id), count(*) FROM regress_ds.tz
UNION ALL SELECT 'ts', min(id), max(id), count(*) FROM regress_ds.ts
UNION ALL SELECT 'd', min(id), max(id), count(*) FROM regress_ds.d;
SELECT DISTINCT what FROM regress_ds.seen;
SELECT tbl, status, rows_purged FROM customer_vault.purge_log WHERE tbl::text LIKE 'regress_ds.%' ORDER BY tbl::text;

-- German, and Postgres with DMY: as of 2026-11-01 12:00 the limit is
-- 2025-12-02 12:00 (365 days back), as of 2026-11-03 2025-12-04 (363 days)
INSERT INTO regress_ds.tz SELECT g, timestamptz '2026-12-02 12:00:00+00' - g * interval '1 day' FROM generate_series(335, 400) g;
SET DateStyle = 'German';
CALL customer_vault.purge(as_of => '2026-11-01 12:00:00+00');
SELECT max(id) FROM regress_ds.tz;
SET DateStyle = 'Postgres, DMY';
CALL customer_vault.purge(as_of => '2026-11-03 12:00:00+00');
SET DateStyle = 'ISO';
SELECT min(id), max(id), count(*) FROM regress_ds.tz;
RESET DateStyle;
RESET IntervalStyle;
RESET extra_float_digits;
RESET bytea_output;

-- grant_consent under 'SQL, DMY' stores the instant given, define_purpose the lifetime
SET client_min_messages = warning;
SELECT customer_vault.define_purpose('regress_ds_news', 'consent', NULL, interval '1 year 2 mons 3 days');
RESET client_min_messages;
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'sql_standard';
SELECT customer_vault.grant_consent('regress-ds-1', 'regress_ds_news', '{"form": "a"}', '2027-01-05 00:00:00+00') > 0 AS granted;
SET DateStyle = 'ISO';
SET IntervalStyle = 'postgres';
SET TimeZone = 'UTC';
SELECT valid_until FROM customer_vault.consent_state WHERE subject = 'regress-ds-1';
SELECT consent_valid_for FROM customer_vault.purposes WHERE purpose = 'regress_ds_news';
RESET DateStyle;
RESET IntervalStyle;
RESET TimeZone;

SET client_min_messages = warning;
SELECT customer_vault.forget_subject('regress-ds-1', 'cleanup') IS NOT NULL AS erased;
SELECT customer_vault.drop_retention(t) FROM unnest(ARRAY['regress_ds.tz', 'regress_ds.ts', 'regress_ds.d']::regclass[]) t;
DROP SCHEMA regress_ds CASCADE;
