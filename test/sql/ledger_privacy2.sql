-- Erased history stays redacted when the subject comes back (part REDACT2):
-- grant_consent('7'), forget_subject('7'), grant_consent('7') again must not
-- show '7' on the ledger entries written before the erasure, nor a new hold
-- on '7' on its released holds from before: the erasure appends 'redact'
-- entries for the subject's entries of hash version 2 (as for version 1)
-- and the views keep every entry a 'redact' entry names NULL.  The new
-- entries show the subject; a 'redact' entry never does; the chains verify;
-- another subject is untouched.
\set VERBOSITY terse
\set orig_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_lp2;
CREATE DATABASE regress_lp2;
\c regress_lp2
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
CREATE ROLE regress_lp2_auditor IN ROLE customer_vault_auditor;
RESET client_min_messages;
SELECT customer_vault.define_purpose('lp2_news');
SELECT customer_vault.define_purpose('lp2_ads');

-- ---------- before the erasure ----------
SELECT customer_vault.grant_consent('7', 'lp2_news', '{"form": "first"}') AS e1 \gset
SELECT customer_vault.grant_consent('7', 'lp2_ads', '{"form": "first"}') AS e2 \gset
SELECT customer_vault.withdraw_consent('7', 'lp2_ads', '{"channel": "mail"}') AS e3 \gset
SELECT customer_vault.grant_consent('8', 'lp2_news', '{"form": "first"}') AS other \gset
SELECT customer_vault.place_legal_hold('7', 'case A') AS hold_a \gset
SELECT customer_vault.release_legal_hold(:hold_a);
SELECT customer_vault.place_legal_hold('7', 'case B', pg_catalog.now() + interval '1 day') AS hold_b \gset
SELECT customer_vault.release_legal_hold(:hold_b);
SELECT customer_vault.place_legal_hold('8', 'case other') AS hold_other \gset
SELECT hash_version, count(*) FROM customer_vault.consent_ledger GROUP BY 1 ORDER BY 1;
SELECT max(id) AS before_erasure FROM customer_vault.consent_ledger \gset
SELECT max(id) AS holds_before_erasure FROM customer_vault.legal_hold_events \gset

-- ---------- the erasure ----------
SELECT r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('7', 'request of the customer') r;
-- one redact entry per purpose naming every entry of the subject before it
-- (the withdrawal forget_subject wrote included), one per hold
SELECT purpose, hash_version, subject IS NULL AS no_plain_subject,
       subject_hash = customer_vault._subject_hash('7') AS names_hash,
       evidence -> 'redacts' AS redacts, evidence ? 'erasure_receipt' AS has_receipt
  FROM customer_vault.consent_ledger WHERE action = 'redact' ORDER BY purpose;
SELECT count(*) AS ledger_entries_of_7_not_named
  FROM customer_vault.consent_ledger l
 WHERE l.subject_hash = customer_vault._subject_hash('7') AND l.action <> 'redact'
   AND NOT EXISTS (SELECT 1 FROM customer_vault.consent_ledger m
                    WHERE m.action = 'redact' AND m.evidence -> 'redacts' @> pg_catalog.to_jsonb(l.id));
SELECT hold_id = :hold_a AS hold_a, hold_id = :hold_b AS hold_b, hash_version
  FROM customer_vault.legal_hold_events WHERE action = 'redact' ORDER BY id;
SELECT id, subject, redacted FROM customer_vault.consent_ledger_redacted ORDER BY id;
SELECT id, subject FROM customer_vault.legal_holds ORDER BY id;

-- ---------- the subject comes back ----------
SELECT customer_vault.grant_consent('7', 'lp2_news', '{"form": "second"}') AS e_new \gset
SELECT customer_vault.grant_consent('7', 'lp2_ads', '{"form": "second"}') AS e_new2 \gset
SELECT customer_vault.place_legal_hold('7', 'case C') AS hold_c \gset
-- the entries before the erasure stay redacted; the redact entries never
-- show the subject; the new entries and the other subject show theirs
SELECT id <= :before_erasure AS before, action, subject, redacted
  FROM customer_vault.consent_ledger_redacted ORDER BY id;
SELECT count(*) AS old_entries_showing_7
  FROM customer_vault.consent_ledger_redacted
 WHERE subject = '7' AND (id <= :before_erasure OR action = 'redact');
SELECT count(*) FILTER (WHERE NOT redacted) AS old_not_redacted
  FROM customer_vault.consent_ledger_redacted WHERE id <= :before_erasure AND id <> :other;
SELECT subject, redacted FROM customer_vault.consent_ledger_redacted WHERE id IN (:e_new, :e_new2, :other) ORDER BY id;
SELECT id = :hold_c AS new_hold, id = :hold_other AS other_hold, subject, reason, released_at IS NOT NULL AS released
  FROM customer_vault.legal_holds ORDER BY id;
SELECT subject FROM customer_vault.current_legal_holds ORDER BY id;
-- the same through the auditor's eyes
SET ROLE regress_lp2_auditor;
SELECT count(*) AS auditor_sees_old_7 FROM customer_vault.consent_ledger_redacted
 WHERE subject = '7' AND id <= :before_erasure;
SELECT count(*) AS auditor_sees_old_hold_7 FROM customer_vault.legal_holds
 WHERE subject = '7' AND id <= :holds_before_erasure;
SELECT customer_vault.verify_ledger() AS ledger_broken, customer_vault.verify_legal_holds() AS holds_broken;
RESET ROLE;
SELECT customer_vault.has_consent('7', 'lp2_news') AS consents_again, customer_vault.has_consent('8', 'lp2_news') AS other_consents;

-- ---------- a second erasure names only what came after the first ----------
SELECT customer_vault.release_legal_hold(:hold_c);
SELECT r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('7', 'second request') r;
SELECT count(*) AS entries_named_twice
  FROM (SELECT (x.id)::bigint AS id FROM customer_vault.consent_ledger m
         CROSS JOIN LATERAL pg_catalog.jsonb_array_elements_text(m.evidence -> 'redacts') x(id)
         WHERE m.action = 'redact' GROUP BY 1 HAVING count(*) > 1) d;
SELECT count(*) AS holds_named_twice
  FROM (SELECT hold_id FROM customer_vault.legal_hold_events WHERE action = 'redact' GROUP BY 1 HAVING count(*) > 1) d;
SELECT count(*) FILTER (WHERE subject = '7') AS showing_7, count(*) FILTER (WHERE NOT redacted) AS not_redacted
  FROM customer_vault.consent_ledger_redacted;
SELECT count(*) FILTER (WHERE subject = '7') AS holds_showing_7 FROM customer_vault.legal_holds;
SELECT customer_vault.verify_ledger() AS ledger_broken, customer_vault.verify_legal_holds() AS holds_broken;

\c :orig_db
SET client_min_messages = warning;
DROP DATABASE regress_lp2;
DROP ROLE regress_lp2_auditor;
