-- verify_ledger checks what a 'redact' entry names (part EXPORT, issue 12,
-- low): consent_ledger_redacted and export_subject hide every entry a
-- redact entry names, so one naming another subject's entries (or entries
-- of another purpose, later or missing ones, or no list at all) is reported
-- as the first broken entry, although its hash chain is intact.  Failed
-- before: verify_ledger only checked the chain and returned NULL.  A redact
-- entry of the subject's own entries (what forget_subject writes) passes.
\set VERBOSITY terse
\set orig_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_lrc;
CREATE DATABASE regress_lrc;
\c regress_lrc
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
CREATE ROLE regress_lrc_auditor IN ROLE customer_vault_auditor;
RESET client_min_messages;
SELECT customer_vault.define_purpose('lrc_news');
SELECT customer_vault.define_purpose('lrc_ads');
SELECT customer_vault.grant_consent('7', 'lrc_news', '{"form": "a"}') AS e7 \gset
SELECT customer_vault.grant_consent('8', 'lrc_news', '{"form": "b"}') AS e8 \gset
SELECT customer_vault.verify_ledger() AS clean;

-- a redact entry under 7's hash naming 8's grant: the chain is intact, the view hides 8
BEGIN;
SELECT customer_vault._ledger_append(NULL, 'lrc_news', 'redact', jsonb_build_object('redacts', jsonb_build_array(:e8)),
                                     NULL, customer_vault._evidence_subject('7', false)) AS forged \gset
SELECT subject FROM customer_vault.consent_ledger_redacted WHERE id = :e8;
SELECT customer_vault.verify_ledger() = :forged AS reported;
SET ROLE regress_lrc_auditor;
SELECT customer_vault.verify_ledger() = :forged AS reported_to_auditor;
RESET ROLE;
ROLLBACK;

-- its own entry, but of another purpose
BEGIN;
SELECT customer_vault._ledger_append(NULL, 'lrc_ads', 'redact', jsonb_build_object('redacts', jsonb_build_array(:e7)),
                                     NULL, customer_vault._evidence_subject('7', false)) AS forged \gset
SELECT customer_vault.verify_ledger() = :forged AS reported;
ROLLBACK;

-- an entry that does not exist (yet), itself, a list that is no list
BEGIN;
SELECT customer_vault._ledger_append(NULL, 'lrc_news', 'redact', '{"redacts": [9999]}',
                                     NULL, customer_vault._evidence_subject('7', false)) AS forged \gset
SELECT customer_vault.verify_ledger() = :forged AS reported;
ROLLBACK;
BEGIN;
SELECT customer_vault._ledger_append(NULL, 'lrc_news', 'redact', '{"redacts": [1.5, "x"]}',
                                     NULL, customer_vault._evidence_subject('7', false)) AS forged \gset
SELECT customer_vault.verify_ledger() = :forged AS reported;
ROLLBACK;
BEGIN;
SELECT customer_vault._ledger_append(NULL, 'lrc_news', 'redact', '{"redacts": "everything"}',
                                     NULL, customer_vault._evidence_subject('7', false)) AS forged \gset
SELECT customer_vault.verify_ledger() = :forged AS reported;
ROLLBACK;

-- what an erasure writes passes, and 8 still shows
SELECT customer_vault.forget_subject('7', 'request') IS NOT NULL AS erased;
SELECT count(*) AS redact_entries FROM customer_vault.consent_ledger WHERE action = 'redact';
SELECT customer_vault.verify_ledger() AS after_erasure;
SELECT subject FROM customer_vault.consent_ledger_redacted WHERE id = :e8;
SET ROLE regress_lrc_auditor;
SELECT customer_vault.verify_ledger() AS after_erasure_auditor;
RESET ROLE;

\c :orig_db
SET client_min_messages = warning;
DROP DATABASE regress_lrc;
DROP ROLE regress_lrc_auditor;
