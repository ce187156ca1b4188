-- Erasure completeness (issue 12, part LEDGER): no subject identifier left in
-- the evidence logs.  A database made at 0.4.0 (entries with the subject in
-- plain text, hash version 1) is updated; new consent ledger and legal hold
-- entries store the subject's keyed hash (version 2), the plain subject only
-- in evidence_subjects.  After forget_subject no table or view holds a
-- subject recorded since the update; a subject recorded before stays only in
-- the raw entries of version 1 (append-only, hash-chained), hidden by the
-- views; the chains verify, tampering is found, other subjects untouched.
\set VERBOSITY terse
\set orig_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_lp;
CREATE DATABASE regress_lp;
\c regress_lp
SET client_min_messages = warning;
CREATE EXTENSION customer_vault VERSION '0.4.0' CASCADE;
CREATE ROLE regress_lp_auditor IN ROLE customer_vault_auditor;
CREATE ROLE regress_lp_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_lp_writer IN ROLE customer_vault_writer;
CREATE ROLE regress_lp_reader IN ROLE customer_vault_reader;
RESET client_min_messages;
SELECT customer_vault.define_purpose('lp_news');
SELECT customer_vault.define_purpose('lp_ads');

-- ---------- before 0.5.0: the subject in plain text ----------
SELECT customer_vault.grant_consent('oldbob-q7', 'lp_news', '{"form": "v1"}') > 0 AS old_granted;
SELECT customer_vault.withdraw_consent('oldbob-q7', 'lp_news', '{"channel": "mail"}') > 0 AS old_withdrawn;
SELECT customer_vault.grant_consent('oldbob-q7', 'lp_ads', '{"form": "v1"}') > 0 AS old_granted;
SELECT customer_vault.grant_consent('keeper-z2', 'lp_news', '{"form": "v1"}') > 0 AS old_granted;
SELECT customer_vault.place_legal_hold('oldbob-q7', 'case 1') AS old_hold \gset
SELECT customer_vault.release_legal_hold(:old_hold);
SELECT customer_vault.place_legal_hold('keeper-z2', 'case keeper') > 0 AS keeper_held;
SELECT customer_vault.place_legal_hold('oldbob-q7', 'case 1b') AS old_hold_open \gset

SET client_min_messages = warning;
ALTER EXTENSION customer_vault UPDATE;
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'customer_vault';
-- the old entries are kept as written (version 1) and still verify
SELECT hash_version, count(*), bool_and(subject IS NOT NULL AND subject_hash IS NULL) AS plain
  FROM customer_vault.consent_ledger GROUP BY 1 ORDER BY 1;
SELECT customer_vault.verify_ledger() AS ledger_broken, customer_vault.verify_legal_holds() AS holds_broken;

-- ---------- since 0.5.0: the subject as its keyed hash ----------
SELECT customer_vault.grant_consent('alice-k9', 'lp_news', '{"form": "v2"}') > 0 AS granted;
SELECT customer_vault.import_consents($$
    SELECT s AS subject, p AS purpose, '{"form": "import"}'::jsonb AS evidence
      FROM (VALUES ('alice-k9', 'lp_ads'), ('keeper-z2', 'lp_ads'), ('oldbob-q7', 'lp_news')) v(s, p)$$) AS imported;
-- the duplicate check finds entries of version 2 (by hash) and of version 1 (plain)
SELECT customer_vault.import_consents($$
    SELECT s AS subject, p AS purpose, e::jsonb AS evidence
      FROM (VALUES ('alice-k9', 'lp_ads', '{"form": "import"}'), ('keeper-z2', 'lp_news', '{"form": "v1"}')) v(s, p, e)$$)
       AS imported_again;
SELECT customer_vault.withdraw_consent('alice-k9', 'lp_ads', '{"channel": "app"}') > 0 AS withdrawn;
SELECT customer_vault.withdraw_consent('alice-k9', 'lp_never', '{"channel": "app"}');
SELECT customer_vault.withdraw_consent('nobody-x1', 'lp_news', '{"channel": "app"}') > 0 AS withdrawn_without_grant;
SELECT customer_vault.place_legal_hold('alice-k9', 'case 2') AS new_hold \gset
SELECT customer_vault.release_legal_hold(:new_hold);
-- an old hold released now: the release entry holds the hash of its plain subject
SELECT customer_vault.release_legal_hold(:old_hold_open);
SELECT customer_vault.encrypt_for_subject('alice-k9', 'a secret') AS sealed \gset
-- the stored form: no plain subject in any new entry
SELECT id, action, hash_version, subject IS NULL AS no_plain, length(subject_hash) AS hash_len
  FROM customer_vault.consent_ledger ORDER BY id;
SELECT id, action, hash_version, subject IS NULL AS no_plain, length(subject_hash) AS hash_len
  FROM customer_vault.legal_hold_events ORDER BY id;
-- the hash is the keyed subject hash of the spelling given
SELECT bool_and(l.subject_hash = customer_vault._subject_hash(s.subject)) AS keyed_hash
  FROM customer_vault.consent_ledger l JOIN customer_vault.consent_state s ON s.ledger_id = l.id
 WHERE l.hash_version = 2;
SELECT subject FROM customer_vault.evidence_subjects ORDER BY 1;

-- readers: state, checks, the auditor's views, export
SELECT subject, purpose, status FROM customer_vault.current_consents ORDER BY 1, 2;
SELECT customer_vault.has_consent('alice-k9', 'lp_news') AS alice_news, customer_vault.has_consent('alice-k9', 'lp_ads') AS alice_ads,
       customer_vault.has_consent('oldbob-q7', 'lp_news') AS bob_news, customer_vault.has_consent('keeper-z2', 'lp_ads') AS keeper_ads;
SELECT id, subject, action, purpose, redacted FROM customer_vault.consent_ledger_redacted ORDER BY id;
SELECT id, subject, reason, active FROM customer_vault.legal_holds ORDER BY id;
SELECT subject FROM customer_vault.current_legal_holds;
SELECT jsonb_path_query_array(customer_vault.export_subject('alice-k9') -> 'ledger', '$[*].action') AS alice_ledger,
       jsonb_path_query_array(customer_vault.export_subject('oldbob-q7') -> 'ledger', '$[*].action') AS bob_ledger,
       jsonb_array_length(customer_vault.export_subject('alice-k9') -> 'legal_holds') AS alice_holds,
       jsonb_array_length(customer_vault.export_subject('oldbob-q7') -> 'legal_holds') AS bob_holds;
SELECT customer_vault.verify_ledger() AS ledger_broken, customer_vault.verify_legal_holds() AS holds_broken,
       customer_vault.verify_purge_log() AS purge_log_broken;
SELECT count(*) AS chain_findings FROM customer_vault.compliance_report() WHERE finding ILIKE '%chain%';

-- ---------- the erasure ----------
SELECT r -> 'consents_withdrawn' AS withdrawn, r -> 'subject_key_shredded' AS shredded
  FROM customer_vault.forget_subject('alice-k9', 'request of the customer, ticket 1') r;
SELECT r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('oldbob-q7', 'request of the customer, ticket 2') r;

-- Every text, name, json and jsonb column (arrays too) of every table and
-- view of the extension, searched for a subject (views as the superuser).
CREATE FUNCTION pg_temp.holders(needle text) RETURNS TABLE (rel text, col name, hits bigint)
LANGUAGE plpgsql AS $$
DECLARE
    c record;
    n bigint;
BEGIN
    FOR c IN SELECT cl.relname, cl.relkind, a.attname
               FROM pg_depend d
               JOIN pg_class cl ON d.classid = 'pg_class'::regclass AND cl.oid = d.objid
               JOIN pg_attribute a ON a.attrelid = cl.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
                AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'customer_vault')
                AND cl.relkind IN ('r', 'v', 'p', 'm')
                AND (a.atttypid IN ('text'::regtype, 'name'::regtype, 'varchar'::regtype, 'json'::regtype,
                                    'jsonb'::regtype, 'bpchar'::regtype)
                     OR a.atttypid IN ('text[]'::regtype, 'name[]'::regtype, 'jsonb[]'::regtype))
              ORDER BY 1, 3 LOOP
        BEGIN
            EXECUTE format('SELECT count(*) FROM customer_vault.%I WHERE strpos((%I)::text, $1) > 0', c.relname, c.attname)
               INTO n USING needle;
        EXCEPTION WHEN OTHERS THEN
            rel := c.relname || ' (unreadable: ' || SQLSTATE || ')';
            col := c.attname;
            hits := NULL;
            RETURN NEXT;
            CONTINUE;
        END;
        IF n > 0 THEN
            rel := c.relname || CASE c.relkind WHEN 'v' THEN ' (view)' ELSE '' END;
            col := c.attname;
            hits := n;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
-- a subject recorded since 0.5.0: nowhere
SELECT * FROM pg_temp.holders('alice-k9');
-- a subject recorded before: only in the raw entries of version 1, in no view
SELECT * FROM pg_temp.holders('oldbob-q7');
-- the other subject: still everywhere it was
SELECT * FROM pg_temp.holders('keeper-z2');
-- the search can fail: it finds what a view shows
SELECT count(*) > 0 AS search_works FROM pg_temp.holders('lp_news');

-- what the auditor's views show now
SELECT id, subject, action, purpose, redacted, evidence ->> 'erasure_receipt' IS NOT NULL AS by_erasure
  FROM customer_vault.consent_ledger_redacted ORDER BY id;
SELECT id, subject, active FROM customer_vault.legal_holds ORDER BY id;
SELECT id, action, hold_id, hash_version FROM customer_vault.legal_hold_events WHERE action = 'redact';
SELECT subject, purpose, status FROM customer_vault.current_consents ORDER BY 1, 2;
SELECT customer_vault.has_consent('alice-k9', 'lp_news') AS alice_news, customer_vault.has_consent('keeper-z2', 'lp_news') AS keeper_news,
       customer_vault.has_consent('keeper-z2', 'lp_ads') AS keeper_ads;
-- the subject's key is gone: what was sealed for it no longer opens
SELECT customer_vault.decrypt(:'sealed'::customer_vault.encrypted_text) IS NULL AS sealed_unreadable;
-- the hashes stay, but the export of the erased subject leaves out every entry its redact entries name (part EXPORT)
SELECT jsonb_path_query_array(customer_vault.export_subject('alice-k9') -> 'ledger', '$[*].action') AS alice_ledger;
SELECT customer_vault.was_forgotten('alice-k9') AS alice_forgotten, customer_vault.was_forgotten('keeper-z2') AS keeper_forgotten;
SELECT customer_vault.verify_ledger() AS ledger_broken, customer_vault.verify_legal_holds() AS holds_broken,
       customer_vault.verify_receipts() AS receipts_broken;
-- a second erasure appends no further redact entry
SELECT count(*) AS entries_before FROM customer_vault.consent_ledger \gset
SELECT r -> 'consents_withdrawn' AS withdrawn FROM customer_vault.forget_subject('oldbob-q7', 'again') r;
SELECT count(*) - :entries_before AS new_entries FROM customer_vault.consent_ledger;
-- a new consent after the erasure is recorded (and shown) again
SELECT customer_vault.grant_consent('alice-k9', 'lp_news', '{"form": "came back"}') > 0 AS granted_again;
SELECT subject, action FROM customer_vault.consent_ledger_redacted ORDER BY id DESC LIMIT 1;

-- ---------- tampering ----------
SELECT max(id) AS last_v2 FROM customer_vault.consent_ledger WHERE hash_version = 2 AND action = 'grant' \gset
SELECT min(id) AS first_v2 FROM customer_vault.consent_ledger WHERE hash_version = 2 \gset
-- a new-form entry's evidence edited
BEGIN;
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER consent_ledger_no_update_delete;
UPDATE customer_vault.consent_ledger SET evidence = '{"form": "forged"}' WHERE id = :first_v2;
SELECT customer_vault.verify_ledger() = :first_v2 AS evidence_edit_found;
ROLLBACK;
-- ... its subject hash swapped for another subject's, its own hash recomputed: the next link breaks
BEGIN;
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER consent_ledger_no_update_delete;
UPDATE customer_vault.consent_ledger SET subject_hash = customer_vault._subject_hash('keeper-z2'),
       hash = customer_vault._ledger_hash_v2(prev_hash, id, NULL, customer_vault._subject_hash('keeper-z2'), purpose,
                                             action, evidence, valid_until, recorded_at, recorded_by)
 WHERE id = :first_v2;
SELECT customer_vault.verify_ledger() = :first_v2 + 1 AS swap_found;
ROLLBACK;
-- ... a plain subject written back into it (past the form check)
BEGIN;
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER consent_ledger_no_update_delete;
ALTER TABLE customer_vault.consent_ledger DROP CONSTRAINT consent_ledger_subject_form_check;
UPDATE customer_vault.consent_ledger SET subject = 'alice-k9' WHERE id = :first_v2;
SELECT customer_vault.verify_ledger() = :first_v2 AS plain_subject_found;
ROLLBACK;
-- ... turned into a version-1 entry
BEGIN;
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER consent_ledger_no_update_delete;
ALTER TABLE customer_vault.consent_ledger DROP CONSTRAINT consent_ledger_subject_form_check;
UPDATE customer_vault.consent_ledger SET hash_version = 1, subject = 'alice-k9', subject_hash = NULL WHERE id = :first_v2;
SELECT customer_vault.verify_ledger() = :first_v2 AS version_change_found;
ROLLBACK;
-- ... a redact entry removed from the end (the head notices)
BEGIN;
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER consent_ledger_no_update_delete;
DELETE FROM customer_vault.consent_ledger WHERE id = (SELECT max(id) FROM customer_vault.consent_ledger WHERE action = 'redact');
SELECT customer_vault.verify_ledger() IS NOT NULL AS redact_removal_found;
ROLLBACK;
-- an old-form entry: intact it verifies (above); edited it is found
BEGIN;
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER consent_ledger_no_update_delete;
UPDATE customer_vault.consent_ledger SET subject = 'someone-else' WHERE id = 1;
SELECT customer_vault.verify_ledger() AS old_edit_found;
ROLLBACK;
-- the hold log: a new-form entry's subject hash swapped
SELECT min(id) AS first_hold_v2 FROM customer_vault.legal_hold_events WHERE hash_version = 2 \gset
BEGIN;
ALTER TABLE customer_vault.legal_hold_events DISABLE TRIGGER legal_hold_events_no_update_delete;
UPDATE customer_vault.legal_hold_events SET subject_hash = customer_vault._subject_hash('keeper-z2') WHERE id = :first_hold_v2;
SELECT customer_vault.verify_legal_holds() = :first_hold_v2 AS hold_swap_found;
ROLLBACK;
BEGIN;
ALTER TABLE customer_vault.legal_hold_events DISABLE TRIGGER legal_hold_events_no_update_delete;
ALTER TABLE customer_vault.legal_hold_events DROP CONSTRAINT legal_hold_events_subject_form_check;
UPDATE customer_vault.legal_hold_events SET subject = 'alice-k9' WHERE id = :first_hold_v2;
SELECT customer_vault.verify_legal_holds() = :first_hold_v2 AS hold_plain_found;
ROLLBACK;
BEGIN;
ALTER TABLE customer_vault.legal_hold_events DISABLE TRIGGER legal_hold_events_no_update_delete;
UPDATE customer_vault.legal_hold_events SET reason = 'forged' WHERE id = 1;
SELECT customer_vault.verify_legal_holds() AS old_hold_edit_found;
ROLLBACK;
-- the form checks refuse a plain subject in a new-form entry, and a hash in an old-form one
BEGIN;
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER consent_ledger_no_update_delete;
UPDATE customer_vault.consent_ledger SET subject = 'alice-k9' WHERE id = :first_v2;
ROLLBACK;
BEGIN;
ALTER TABLE customer_vault.legal_hold_events DISABLE TRIGGER legal_hold_events_no_update_delete;
UPDATE customer_vault.legal_hold_events SET subject_hash = customer_vault._subject_hash('x') WHERE id = 1;
ROLLBACK;
SELECT customer_vault.verify_ledger() AS ledger_broken, customer_vault.verify_legal_holds() AS holds_broken;

-- ---------- privileges ----------
SELECT r AS role,
       has_table_privilege(r, 'customer_vault.consent_ledger_redacted', 'SELECT') AS ledger_view,
       has_table_privilege(r, 'customer_vault.evidence_subjects', 'SELECT') AS subjects_table,
       has_function_privilege(r, 'customer_vault._redact_subject(text[], bigint)', 'EXECUTE') AS redact,
       has_function_privilege(r, 'customer_vault._evidence_subject(text, boolean)', 'EXECUTE') AS evidence_subject,
       has_function_privilege(r, 'customer_vault._ledger_hash_v2(bytea, bigint, text, bytea, text, text, jsonb, timestamptz, timestamptz, name)', 'EXECUTE') AS hash_v2
  FROM unnest(ARRAY['regress_lp_admin', 'regress_lp_auditor', 'regress_lp_writer', 'regress_lp_reader', 'public']) r;
SET ROLE regress_lp_auditor;
SELECT count(*) > 0 AS auditor_reads FROM customer_vault.consent_ledger_redacted;
SELECT customer_vault.verify_ledger() AS auditor_verifies;
SELECT count(*) FROM customer_vault.evidence_subjects;
SELECT customer_vault._evidence_subject('alice-k9', true);
RESET ROLE;
SET ROLE regress_lp_writer;
SELECT count(*) FROM customer_vault.consent_ledger_redacted;
SELECT customer_vault._redact_subject(ARRAY['keeper-z2'], 1);
RESET ROLE;
SET ROLE regress_lp_admin;
SELECT customer_vault._redact_subject(ARRAY['keeper-z2'], 1);
RESET ROLE;
SELECT customer_vault.has_consent('keeper-z2', 'lp_news') AS keeper_still_consents;

\c :orig_db
SET client_min_messages = warning;
DROP DATABASE regress_lp;
DROP ROLE regress_lp_auditor, regress_lp_admin, regress_lp_writer, regress_lp_reader;
