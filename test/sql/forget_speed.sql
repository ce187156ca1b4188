-- forget_subject skips the redaction of the evidence logs when nothing there
-- names the subject (part FORGETSPEED): _redact_subject is called only when
-- an index probe finds a row of consent_state, evidence_subjects,
-- consent_ledger or legal_hold_events that names one of the subject's
-- spellings (in plain text, or as its keyed hash).  Each kind of trace alone
-- (a consent, a ledger entry whose state row is gone, of hash version 2 or 1,
-- a hold entry of either version, an evidence_subjects row) still gets its
-- redaction; a subject without any gets none, and its receipt verifies.
-- Counted with track_functions (calls counted since the start of the
-- transaction block: the counts of earlier transactions may still be pending).
\set VERBOSITY terse
\set orig_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_fsp;
CREATE DATABASE regress_fsp;
\c regress_fsp
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
CREATE SCHEMA fsp;
CREATE TABLE fsp.people (id bigint PRIMARY KEY, name text);
INSERT INTO fsp.people SELECT g, 'person ' || g FROM generate_series(1, 9) g;
SELECT customer_vault.register_subject_table('fsp.people', 'id');
SELECT customer_vault.define_purpose('fsp_news');
SET track_functions = 'pl';
-- the calls of _redact_subject counted in this backend, not yet reported
CREATE FUNCTION pg_temp.redact_calls() RETURNS bigint LANGUAGE sql AS $$
    SELECT COALESCE(pg_stat_get_xact_function_calls('customer_vault._redact_subject(text[], bigint)'::regprocedure), 0) $$;
-- the redact entries naming a subject's hash, in the ledger and in the hold log
CREATE FUNCTION pg_temp.redacts(s text) RETURNS TABLE (ledger bigint, holds bigint) LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM customer_vault.consent_ledger l
             WHERE l.action = 'redact' AND l.subject_hash = customer_vault._subject_hash(s)),
           (SELECT count(*) FROM customer_vault.legal_hold_events e
             WHERE e.action = 'redact' AND e.subject_hash = customer_vault._subject_hash(s)) $$;

-- no trace in the evidence: no redaction at all, the rows deleted, the receipt chained
BEGIN;
SELECT pg_temp.redact_calls() AS calls0 \gset
SELECT r -> 'tables' -> 'fsp.people' ->> 'deleted' AS deleted, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('1', 'no evidence') r;
SELECT pg_temp.redact_calls() - :calls0 AS redact_calls;
COMMIT;
SELECT * FROM pg_temp.redacts('1');
-- the same subject again (idempotent): still none
BEGIN;
SELECT pg_temp.redact_calls() AS calls0 \gset
SELECT r -> 'tables' -> 'fsp.people' ->> 'deleted' AS deleted FROM customer_vault.forget_subject('1', 'again') r;
SELECT pg_temp.redact_calls() - :calls0 AS redact_calls;
COMMIT;

-- a consent: withdrawn, then redacted (the state row deleted, the grant and the withdrawal named)
SELECT customer_vault.grant_consent('2', 'fsp_news', '{"form": "web"}') > 0 AS granted;
BEGIN;
SELECT pg_temp.redact_calls() AS calls0 \gset
SELECT r -> 'consents_withdrawn' AS withdrawn FROM customer_vault.forget_subject('2', 'consent') r;
SELECT pg_temp.redact_calls() - :calls0 AS redact_calls;
COMMIT;
SELECT * FROM pg_temp.redacts('2');
SELECT count(*) AS state_rows FROM customer_vault.consent_state WHERE subject = '2';
-- the spelling given differs from the one consent was given under ('03' is 3 in the bigint column)
SELECT customer_vault.grant_consent('3', 'fsp_news', '{"form": "web"}') > 0 AS granted;
BEGIN;
SELECT pg_temp.redact_calls() AS calls0 \gset
SELECT r -> 'consents_withdrawn' AS withdrawn FROM customer_vault.forget_subject('03', 'other spelling') r;
SELECT pg_temp.redact_calls() - :calls0 AS redact_calls;
COMMIT;
SELECT * FROM pg_temp.redacts('3');

-- only ledger entries of hash version 2 (the state row gone with its purpose, say)
SELECT customer_vault.grant_consent('4', 'fsp_news', '{"form": "web"}') > 0 AS granted;
DELETE FROM customer_vault.consent_state WHERE subject = '4';
SELECT count(*) AS evidence_subject_rows FROM customer_vault.evidence_subjects
 WHERE subject_hash = customer_vault._subject_hash('4');
BEGIN;
SELECT pg_temp.redact_calls() AS calls0 \gset
SELECT r -> 'consents_withdrawn' AS withdrawn FROM customer_vault.forget_subject('4', 'ledger only') r;
SELECT pg_temp.redact_calls() - :calls0 AS redact_calls;
COMMIT;
SELECT * FROM pg_temp.redacts('4');

-- only hold entries of hash version 2 (placed, released; its evidence_subjects row gone)
SELECT customer_vault.place_legal_hold('5', 'case 5') AS hold5 \gset
SELECT customer_vault.release_legal_hold(:hold5);
DELETE FROM customer_vault.evidence_subjects WHERE subject_hash = customer_vault._subject_hash('5');
BEGIN;
SELECT pg_temp.redact_calls() AS calls0 \gset
SELECT r -> 'tables' -> 'fsp.people' ->> 'deleted' AS deleted FROM customer_vault.forget_subject('5', 'holds only') r;
SELECT pg_temp.redact_calls() - :calls0 AS redact_calls;
COMMIT;
SELECT * FROM pg_temp.redacts('5');

-- only an evidence_subjects row: deleted
SELECT length(customer_vault._evidence_subject('6', true)) AS recorded;
BEGIN;
SELECT pg_temp.redact_calls() AS calls0 \gset
SELECT r -> 'tables' -> 'fsp.people' ->> 'deleted' AS deleted FROM customer_vault.forget_subject('6', 'plain subject only') r;
SELECT pg_temp.redact_calls() - :calls0 AS redact_calls;
COMMIT;
SELECT count(*) AS evidence_subject_rows FROM customer_vault.evidence_subjects
 WHERE subject_hash = customer_vault._subject_hash('6');

-- only ledger and hold entries of hash version 1 (the subject in plain text,
-- as written before 0.5.0; made here by rewriting new entries, rolled back)
BEGIN;
SELECT pg_temp.redact_calls() AS calls0 \gset
SELECT customer_vault.grant_consent('7', 'fsp_news', '{"form": "old"}') AS grant7 \gset
SELECT customer_vault.place_legal_hold('8', 'case 8') AS hold8 \gset
SELECT customer_vault.release_legal_hold(:hold8);
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER consent_ledger_no_update_delete;
ALTER TABLE customer_vault.legal_hold_events DISABLE TRIGGER legal_hold_events_no_update_delete;
UPDATE customer_vault.consent_ledger SET hash_version = 1, subject = '7', subject_hash = NULL WHERE id = :grant7;
UPDATE customer_vault.legal_hold_events SET hash_version = 1, subject = '8', subject_hash = NULL WHERE hold_id = :hold8;
DELETE FROM customer_vault.consent_state WHERE subject = '7';
DELETE FROM customer_vault.evidence_subjects
 WHERE subject_hash IN (customer_vault._subject_hash('7'), customer_vault._subject_hash('8'));
ALTER TABLE customer_vault.consent_ledger ENABLE TRIGGER consent_ledger_no_update_delete;
ALTER TABLE customer_vault.legal_hold_events ENABLE TRIGGER legal_hold_events_no_update_delete;
SELECT r -> 'tables' -> 'fsp.people' ->> 'deleted' AS deleted FROM customer_vault.forget_subject('7', 'old ledger entry') r;
SELECT pg_temp.redact_calls() - :calls0 AS redact_calls;
SELECT (evidence -> 'redacts') = to_jsonb(ARRAY[:grant7]) AS grant_redacted
  FROM customer_vault.consent_ledger WHERE action = 'redact' AND subject_hash = customer_vault._subject_hash('7');
SELECT r -> 'tables' -> 'fsp.people' ->> 'deleted' AS deleted FROM customer_vault.forget_subject('8', 'old hold entry') r;
SELECT pg_temp.redact_calls() - :calls0 AS redact_calls_both;
SELECT count(*) AS hold_redacted FROM customer_vault.legal_hold_events WHERE action = 'redact' AND hold_id = :hold8;
ROLLBACK;

-- the other subject untouched; every chain verifies
SELECT id, name FROM fsp.people ORDER BY id;
SELECT customer_vault.verify_receipts() AS receipts_broken, customer_vault.verify_ledger() AS ledger_broken,
       customer_vault.verify_legal_holds() AS holds_broken;
SELECT count(*) AS receipts FROM customer_vault.erasure_receipts;

\c :orig_db
SET client_min_messages = warning;
DROP DATABASE regress_fsp;
