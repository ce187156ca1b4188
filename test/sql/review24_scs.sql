-- standard_conforming_strings off (and lc_monetary) on the caller (review24
-- HIGH-3).  PostgreSQL's deparse of a string constant doubles every
-- backslash when standard_conforming_strings is off and writes no E'' prefix;
-- Citus deparses a statement's constants and parameters with the
-- coordinator's settings and its workers read them with theirs (on), so a
-- subject 'a\b' reached the workers' shards and reference tables as 'a\\b'
-- (test/citus/099_scs_off.pl); money values are printed per lc_monetary.
-- Maintenance, erasure and consent writes now pin both
-- (CvPinOutputSettings), and so do the extension's SQL functions that write
-- the tables Citus may hold as reference tables or read distributed ones
-- with the caller's values.  Here, without Citus: the settings the table
-- owner's code sees during a purge and an erasure, the functions' settings,
-- and subjects with backslashes under standard_conforming_strings = off.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE SCHEMA regress_scs;
CREATE TABLE regress_scs.cust (subj text COLLATE "C", at timestamptz NOT NULL, v text);
-- what the owner's code sees while the extension changes its table
CREATE TABLE regress_scs.seen (what text);
CREATE FUNCTION regress_scs.note() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO regress_scs.seen VALUES (TG_ARGV[0] || ': standard_conforming_strings ' ||
        pg_catalog.current_setting('standard_conforming_strings') || ', lc_monetary ' ||
        pg_catalog.current_setting('lc_monetary'));
    RETURN NULL;
END $f$;
CREATE TRIGGER note AFTER DELETE ON regress_scs.cust FOR EACH STATEMENT EXECUTE FUNCTION regress_scs.note('delete');
SELECT customer_vault.register_subject_table('regress_scs.cust', 'subj');
SELECT customer_vault.set_retention('regress_scs.cust', 'at', interval '30 days', 'delete', 'subj') IS NOT NULL AS retention_set;
SELECT customer_vault.define_purpose('regress_scs_news', 'consent');
RESET client_min_messages;

-- the functions pin it (their proconfig)
SELECT p.oid::regprocedure AS function, 'standard_conforming_strings=on' = ANY (p.proconfig) AS pinned
  FROM pg_proc p
 WHERE p.oid IN ('customer_vault.define_purpose'::regproc, 'customer_vault.withdraw_consent'::regproc,
                 'customer_vault.allow_purpose'::regproc, 'customer_vault.disallow_purpose'::regproc,
                 'customer_vault.set_key_padding'::regproc, 'customer_vault._retention_expired'::regproc,
                 'customer_vault._shred_plan'::regproc, 'customer_vault._redact_subject'::regproc,
                 'customer_vault._export_collect'::regproc,
                 -- bodies with a backslash in a string constant
                 'customer_vault._check_cron_schedule'::regproc, 'customer_vault._lock_stale_roles'::regproc,
                 'customer_vault.privilege_drift'::regproc, 'customer_vault._report_settings'::regproc,
                 'customer_vault._report_masking'::regproc, 'customer_vault._report_findings'::regproc)
 ORDER BY p.oid::regprocedure::text COLLATE "C";

-- the caller's settings: off, and another monetary locale
SET standard_conforming_strings = off;
SET escape_string_warning = off;
SET lc_monetary = 'C.utf8';
-- three subjects: a\b (held), a\\b (two backslashes), ab
INSERT INTO regress_scs.cust VALUES
    (E'a\\b', '2026-01-01 00:00:00+00', 'old row of a1b'), (E'a\\b', '2026-12-01 00:00:00+00', 'new row of a1b'),
    (E'a\\\\b', '2026-01-01 00:00:00+00', 'old row of a2b'), (E'a\\\\b', '2026-12-01 00:00:00+00', 'new row of a2b'),
    ('ab', '2026-01-01 00:00:00+00', 'old row of ab');
SELECT customer_vault.place_legal_hold(E'a\\b', 'litigation of a1b') AS hold \gset
-- consents: granted and withdrawn under the caller's settings
SELECT customer_vault.grant_consent(s, 'regress_scs_news', '{"form": "web"}') > 0 AS granted
  FROM unnest(ARRAY[E'a\\b', E'a\\\\b']) s;
SELECT customer_vault.withdraw_consent(E'a\\\\b', 'regress_scs_news') > 0 AS withdrawn;
SELECT subject, length(subject) AS len, granted FROM customer_vault.consent_state
 WHERE purpose = 'regress_scs_news' ORDER BY subject COLLATE "C";
SELECT customer_vault.has_consent(E'a\\b', 'regress_scs_news') AS a_b, customer_vault.has_consent(E'a\\\\b', 'regress_scs_news') AS a_bb;
-- the purge keeps the held subject's expired row, removes the others'
CALL customer_vault.purge(as_of => '2026-12-02 12:00:00+00');
SELECT subj, length(subj) AS len, v FROM regress_scs.cust ORDER BY v COLLATE "C";
-- the erasure of a\\b: its rows and consent, nobody else's
SELECT r -> 'tables' AS tables, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject(E'a\\\\b', 'request') r;
SELECT subj, length(subj) AS len, v FROM regress_scs.cust ORDER BY v COLLATE "C";
SELECT count(*) AS a_bb_states FROM customer_vault.consent_state WHERE subject = E'a\\\\b';
SELECT customer_vault.was_forgotten(E'a\\\\b') AS a_bb_forgotten, customer_vault.was_forgotten(E'a\\b') AS a_b_forgotten;
-- the held subject: refused
DO $d$
BEGIN
    PERFORM customer_vault.forget_subject(E'a\\b', 'request');
EXCEPTION WHEN object_in_use THEN
    RAISE NOTICE 'refused: %', regexp_replace(SQLERRM, '[0-9]+', 'N');
END $d$;
-- a function whose body splits on '\s+' is parsed as written (with the
-- caller's setting it split on the letter s: a valid schedule refused)
SELECT customer_vault._check_cron_schedule('0 3 * * *') AS schedule_accepted;
-- the owner's trigger saw the pinned settings
SELECT DISTINCT what FROM regress_scs.seen ORDER BY 1;
-- the caller's settings are back
SHOW standard_conforming_strings;
SHOW lc_monetary;
RESET standard_conforming_strings;
RESET escape_string_warning;
RESET lc_monetary;

SELECT customer_vault.release_legal_hold(:hold) IS NOT NULL AS released;
SET client_min_messages = warning;
SELECT customer_vault.drop_retention('regress_scs.cust');
SELECT customer_vault.unregister_subject_table('regress_scs.cust');
DROP SCHEMA regress_scs CASCADE;
RESET client_min_messages;
