-- export_subject leaves out what an erasure redacted (part EXPORT, issue 12,
-- MEDIUM): forget_subject('7') names the subject's ledger entries and holds
-- in 'redact' entries; the export of '7' must not list them, neither right
-- after the erasure nor once '7' came back with new consents and a new hold
-- (its entries are found by the keyed hash, which stays the same).  Only the
-- entries after the erasure appear; another subject is untouched.  Failed
-- before: _export_collect read the ledger by hash and listed the
-- pre-erasure entries (evidence included).
\set VERBOSITY terse
\set orig_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_exr;
CREATE DATABASE regress_exr;
\c regress_exr
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
CREATE TABLE exr_people (id text PRIMARY KEY, name text);
INSERT INTO exr_people VALUES ('7', 'seven'), ('8', 'eight');
SELECT customer_vault.register_subject_table('exr_people', 'id');
SELECT customer_vault.define_purpose('exr_news');
SELECT customer_vault.define_purpose('exr_ads');

-- ---------- before the erasure ----------
SELECT customer_vault.grant_consent('7', 'exr_news', '{"form": "first"}') AS e1 \gset
SELECT customer_vault.grant_consent('7', 'exr_ads', '{"form": "first"}') AS e2 \gset
SELECT customer_vault.withdraw_consent('7', 'exr_ads', '{"channel": "mail"}') AS e3 \gset
SELECT customer_vault.grant_consent('8', 'exr_news', '{"form": "first of 8"}') AS other \gset
SELECT customer_vault.place_legal_hold('7', 'case A') AS hold_a \gset
SELECT customer_vault.release_legal_hold(:hold_a);
SELECT customer_vault.place_legal_hold('8', 'case of 8') AS hold_other \gset
SELECT jsonb_path_query_array(d, '$.ledger[*].evidence') AS ledger_before,
       jsonb_path_query_array(d, '$.consents[*].evidence') AS consent_evidence_before,
       jsonb_path_query_array(d, '$.legal_holds[*].reason') AS holds_before
  FROM customer_vault.export_subject('7') d;
SELECT max(id) AS before_erasure FROM customer_vault.consent_ledger \gset

-- ---------- the erasure ----------
SELECT (r -> 'consents_withdrawn') IS NOT NULL AS erased FROM customer_vault.forget_subject('7', 'request') r;
-- right after it: nothing of the subject, no entry written before
SELECT d -> 'tables' AS tables, d -> 'consents' AS consents, d -> 'ledger' AS ledger,
       d -> 'legal_holds' AS holds
  FROM customer_vault.export_subject('7') d;

-- ---------- the subject comes back ----------
INSERT INTO exr_people VALUES ('7', 'seven again');
SELECT customer_vault.grant_consent('7', 'exr_news', '{"form": "second"}') AS e_new \gset
SELECT customer_vault.place_legal_hold('7', 'case C') AS hold_c \gset
CREATE TEMP TABLE doc7 AS SELECT customer_vault.export_subject('7') AS d;
-- only the entries after the erasure, none of the old evidence
SELECT x ->> 'action' AS action, (x ->> 'id')::bigint = :e_new AS is_new_grant,
       (x ->> 'id')::bigint > :before_erasure AS after_erasure, x -> 'evidence' AS evidence
  FROM doc7, jsonb_array_elements(d -> 'ledger') x ORDER BY (x ->> 'id')::bigint;
SELECT count(*) AS old_ledger_entries
  FROM doc7, jsonb_array_elements(d -> 'ledger') x WHERE (x ->> 'id')::bigint <= :before_erasure;
SELECT x ->> 'purpose' AS purpose, x ->> 'status' AS status, x -> 'evidence' AS evidence
  FROM doc7, jsonb_array_elements(d -> 'consents') x ORDER BY 1;
SELECT (x ->> 'id')::bigint = :hold_c AS is_hold_c, x ->> 'reason' AS reason
  FROM doc7, jsonb_array_elements(d -> 'legal_holds') x ORDER BY (x ->> 'id')::bigint;
SELECT d::text ~ 'first|case A|mail' AS old_evidence_anywhere FROM doc7;
SELECT jsonb_path_query_array(d, '$.tables.*.rows[*].name') AS rows FROM doc7;

-- ---------- another subject is untouched ----------
SELECT (x ->> 'id')::bigint = :other AS is_its_grant, x -> 'evidence' AS evidence
  FROM customer_vault.export_subject('8') d, jsonb_array_elements(d -> 'ledger') x;
SELECT jsonb_path_query_array(d, '$.consents[*].evidence') AS consent_evidence,
       jsonb_path_query_array(d, '$.legal_holds[*].reason') AS holds,
       jsonb_path_query_array(d, '$.tables.*.rows[*].name') AS rows
  FROM customer_vault.export_subject('8') d;
SELECT customer_vault.verify_ledger() AS ledger_broken, customer_vault.verify_legal_holds() AS holds_broken;

\c :orig_db
SET client_min_messages = warning;
DROP DATABASE regress_exr;
