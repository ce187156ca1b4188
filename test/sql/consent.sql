-- Consent and lawful basis: explicit opt-in with evidence, withdrawal,
-- expiry, other lawful bases, purposes per role, the hash-chained ledger,
-- row-level security through enable_consent_policy.
\set VERBOSITY terse
CREATE FUNCTION sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SET client_min_messages = warning;
CREATE ROLE regress_cv_marketer;
CREATE ROLE regress_cv_biller;
CREATE ROLE regress_cv_intern;
RESET client_min_messages;

SELECT customer_vault.define_purpose('newsletter', 'consent', 'monthly product news');
SELECT customer_vault.define_purpose('billing', 'contract', 'invoicing of orders');
SELECT customer_vault.define_purpose('short_lived', consent_valid_for => '1 second');
SELECT purpose, lawful_basis, consent_valid_for FROM customer_vault.purposes ORDER BY 1;
SELECT customer_vault.allow_purpose('regress_cv_marketer', 'newsletter');
SELECT customer_vault.allow_purpose('regress_cv_marketer', 'short_lived');
SELECT customer_vault.allow_purpose('regress_cv_biller', 'billing');

-- nothing is implied: no consent until one is granted
SELECT customer_vault.has_consent('42', 'newsletter') AS before_grant;
SELECT customer_vault.grant_consent('42', 'newsletter', '{"form": "signup-v3", "channel": "web", "text": "Yes, send me news"}') AS entry;
SELECT customer_vault.has_consent('42', 'newsletter') AS after_grant,
       customer_vault.has_consent('43', 'newsletter') AS other_subject,
       customer_vault.has_consent('42', 'billing') AS other_purpose;
SELECT customer_vault.withdraw_consent('42', 'newsletter', '{"channel": "unsubscribe link"}') AS entry;
SELECT customer_vault.has_consent('42', 'newsletter') AS after_withdrawal;
SELECT customer_vault.grant_consent('42', 'newsletter', '{"form": "preferences", "channel": "app"}') AS entry;
SELECT customer_vault.has_consent('42', 'newsletter') AS after_regrant;

-- expiry: an explicit end date, and the purpose's consent lifetime
SELECT customer_vault.grant_consent('44', 'newsletter', '{"form": "promo"}', now() + interval '1 second') > 0 AS granted;
SELECT customer_vault.grant_consent('44', 'short_lived', '{"form": "promo"}') > 0 AS granted;
SELECT customer_vault.has_consent('44', 'newsletter') AS before_expiry, customer_vault.has_consent('44', 'short_lived') AS lifetime_before;
SELECT valid_until IS NOT NULL AS lifetime_applied FROM customer_vault.consent_state WHERE subject = '44' AND purpose = 'short_lived';
SELECT pg_sleep(1.2);
SELECT customer_vault.has_consent('44', 'newsletter') AS after_expiry, customer_vault.has_consent('44', 'short_lived') AS lifetime_after;
SELECT subject, purpose, status FROM customer_vault.current_consents ORDER BY 1, 2;

-- may_process: purpose of the session, lawful basis, role allowances
SET ROLE regress_cv_marketer;
SELECT customer_vault.may_process('42') AS no_purpose_set;
SET customer_vault.purpose = 'newsletter';
SELECT customer_vault.may_process('42') AS consented, customer_vault.may_process('43') AS not_consented,
       customer_vault.may_process(42::bigint) AS consented_bigint, customer_vault.may_process(NULL::text) AS null_subject;
SELECT customer_vault.may_process('42', 'billing') AS purpose_not_allowed_to_role;
SELECT customer_vault.may_process('42', 'no_such_purpose') AS unknown_purpose;
SELECT customer_vault.may_process('42', '') AS empty_purpose;
RESET customer_vault.purpose;
RESET ROLE;
SET ROLE regress_cv_biller;
SELECT customer_vault.may_process('43', 'billing') AS contract_basis_needs_no_consent;
SELECT customer_vault.may_process('42', 'newsletter') AS not_allowed_reveals_nothing;
RESET ROLE;
-- roles inherit the purposes of roles they belong to; disallow takes it away
GRANT regress_cv_marketer TO regress_cv_intern;
SET ROLE regress_cv_intern;
SELECT customer_vault.may_process('42', 'newsletter') AS inherited;
RESET ROLE;
SELECT customer_vault.disallow_purpose('regress_cv_marketer', 'newsletter');
SET ROLE regress_cv_intern;
SELECT customer_vault.may_process('42', 'newsletter') AS after_disallow;
RESET ROLE;
SELECT customer_vault.allow_purpose('regress_cv_marketer', 'newsletter');

-- the session's own uncommitted changes count, a rollback undoes them
BEGIN;
SELECT customer_vault.grant_consent('45', 'newsletter', '{"form": "call centre"}') > 0 AS granted;
SELECT customer_vault.has_consent('45', 'newsletter') AS inside_transaction;
ROLLBACK;
SELECT customer_vault.has_consent('45', 'newsletter') AS after_rollback;
BEGIN;
SELECT customer_vault.has_consent('42', 'newsletter') AS before;
SELECT customer_vault.withdraw_consent('42', 'newsletter') > 0 AS withdrawn;
SELECT customer_vault.has_consent('42', 'newsletter') AS after_own_withdrawal;
ROLLBACK;
SELECT customer_vault.has_consent('42', 'newsletter') AS restored;

-- bad input: clear errors with SQLSTATEs, nothing recorded
SELECT sqlstate_of($$SELECT customer_vault.grant_consent(NULL, 'newsletter', '{"a": 1}')$$);
SELECT sqlstate_of($$SELECT customer_vault.grant_consent('', 'newsletter', '{"a": 1}')$$);
SELECT sqlstate_of($$SELECT customer_vault.grant_consent('46', '', '{"a": 1}')$$);
SELECT sqlstate_of($$SELECT customer_vault.grant_consent('46', 'no_such_purpose', '{"a": 1}')$$);
SELECT sqlstate_of($$SELECT customer_vault.grant_consent('46', 'newsletter', '[1, 2]')$$);
SELECT sqlstate_of($$SELECT customer_vault.grant_consent('46', 'newsletter', '"yes"')$$);
SELECT sqlstate_of($$SELECT customer_vault.grant_consent('46', 'newsletter', '{}')$$);
SELECT sqlstate_of($$SELECT customer_vault.grant_consent('46', 'newsletter', NULL)$$);
SELECT sqlstate_of($$SELECT customer_vault.grant_consent('46', 'newsletter', '{"a": 1}', now() - interval '1 day')$$);
SELECT sqlstate_of($$SELECT customer_vault.grant_consent('46', 'billing', '{"a": 1}')$$);
SELECT sqlstate_of($$SELECT customer_vault.withdraw_consent('46', 'nope')$$);
SELECT sqlstate_of($$SELECT customer_vault.withdraw_consent('46', 'newsletter', '[1]')$$);
SELECT sqlstate_of($$SELECT customer_vault.define_purpose('x', 'because')$$);
SELECT sqlstate_of($$SELECT customer_vault.define_purpose('')$$);
SELECT sqlstate_of($$SELECT customer_vault.define_purpose(repeat('p', 64))$$);
SELECT sqlstate_of($$SELECT customer_vault.define_purpose('y', 'contract', consent_valid_for => '1 day')$$);
SELECT sqlstate_of($$SELECT customer_vault.allow_purpose('regress_cv_biller', 'nope')$$);
SELECT sqlstate_of($$SELECT customer_vault.allow_purpose('no_such_role', 'billing')$$);
SELECT count(*) AS entries_for_46 FROM customer_vault.consent_ledger WHERE subject = '46';

-- the ledger: append-only (also for its owner), hash-chained, verifiable
-- (the subject through consent_ledger_redacted: the ledger stores its keyed hash since 0.5.0)
SELECT id, subject, purpose, action, evidence, recorded_by = session_user AS by_session_user,
       (prev_hash IS NULL) = (id = 1) AS chained, length(hash) AS hash_len
  FROM customer_vault.consent_ledger_redacted ORDER BY id;
SELECT customer_vault.verify_ledger() AS intact;
SELECT sqlstate_of($$UPDATE customer_vault.consent_ledger SET evidence = '{"forged": true}' WHERE id = 1$$);
SELECT sqlstate_of($$DELETE FROM customer_vault.consent_ledger WHERE id = 1$$);
SELECT sqlstate_of($$TRUNCATE customer_vault.consent_ledger$$);
SET session_replication_role = replica;
SELECT sqlstate_of($$DELETE FROM customer_vault.consent_ledger WHERE id = 1$$);
RESET session_replication_role;
-- a superuser who disables the triggers and edits an entry is caught
BEGIN;
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER consent_ledger_no_update_delete;
UPDATE customer_vault.consent_ledger SET evidence = '{"form": "forged"}' WHERE id = 3;
SELECT customer_vault.verify_ledger() AS first_broken_entry;
ROLLBACK;
-- ... also when the edited entry's own hash is recomputed: the next link breaks
BEGIN;
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER consent_ledger_no_update_delete;
UPDATE customer_vault.consent_ledger l SET subject_hash = customer_vault._subject_hash('99'),
       hash = customer_vault._ledger_hash_v2(prev_hash, id, NULL, customer_vault._subject_hash('99'), purpose, action,
                                             evidence, valid_until, recorded_at, recorded_by)
 WHERE id = 2;
SELECT customer_vault.verify_ledger() AS first_broken_entry;
ROLLBACK;
-- ... and a deleted entry in the middle
BEGIN;
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER consent_ledger_no_update_delete;
DELETE FROM customer_vault.consent_ledger WHERE id = 4;
SELECT customer_vault.verify_ledger() AS first_broken_entry;
ROLLBACK;
SELECT customer_vault.verify_ledger() AS intact_again;

-- row-level security on bigint, uuid and text subject columns
CREATE TABLE c_big (id bigint PRIMARY KEY, name text);
CREATE TABLE c_uuid (id uuid PRIMARY KEY, name text);
CREATE TABLE c_text (email text PRIMARY KEY, name text);
INSERT INTO c_big VALUES (42, 'consented'), (43, 'silent'), (44, 'expired');
INSERT INTO c_uuid VALUES ('00000000-0000-0000-0000-00000000002a', 'consented'), ('00000000-0000-0000-0000-00000000002b', 'silent');
INSERT INTO c_text VALUES ('ada@example.com', 'consented'), ('bob@example.com', 'silent');
SELECT customer_vault.grant_consent('00000000-0000-0000-0000-00000000002a', 'newsletter', '{"form": "x"}') > 0 AS granted;
SELECT customer_vault.grant_consent('ada@example.com', 'newsletter', '{"form": "x"}') > 0 AS granted;
SELECT customer_vault.enable_consent_policy('c_big', 'id', 'newsletter');
SELECT customer_vault.enable_consent_policy('c_big', 'id', 'newsletter');
SELECT customer_vault.enable_consent_policy('c_uuid', 'id', 'newsletter');
SELECT customer_vault.enable_consent_policy('c_text', 'email');
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, p.polname, p.polpermissive, pg_get_expr(p.polqual, p.polrelid) AS qual
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relname LIKE 'c\_%' ORDER BY 1, 4;
GRANT SELECT, INSERT, UPDATE ON c_big, c_uuid, c_text TO regress_cv_marketer, regress_cv_biller;
SET ROLE regress_cv_marketer;
SELECT * FROM c_big ORDER BY id;
SELECT * FROM c_uuid;
SELECT * FROM c_text;
SET customer_vault.purpose = 'newsletter';
SELECT * FROM c_text;
-- writes are not blocked by the consent policy
INSERT INTO c_big VALUES (50, 'new customer');
SELECT count(*) AS visible_after_insert FROM c_big;
RESET customer_vault.purpose;
RESET ROLE;
SET ROLE regress_cv_biller;
SELECT count(*) AS biller_sees_on_newsletter_policy FROM c_big;
RESET ROLE;
-- the table owner bypasses RLS unless forced (superusers always do)
ALTER TABLE c_big OWNER TO regress_cv_biller;
SET ROLE regress_cv_biller;
SELECT count(*) AS owner_sees FROM c_big;
RESET ROLE;
SELECT customer_vault.enable_consent_policy('c_big', 'id', 'newsletter', force => true);
SET ROLE regress_cv_biller;
SELECT count(*) AS forced_owner_sees FROM c_big;
RESET ROLE;
SELECT sqlstate_of($$SELECT customer_vault.enable_consent_policy('c_big', 'nope', 'newsletter')$$);
SELECT sqlstate_of($$SELECT customer_vault.enable_consent_policy('c_big', 'id', 'nope')$$);
SELECT sqlstate_of($$SELECT customer_vault.enable_consent_policy('customer_vault.keys', 'id')$$);
-- a withdrawal takes effect at the next statement
SET ROLE regress_cv_marketer;
SELECT count(*) AS before_withdrawal FROM c_uuid WHERE customer_vault.may_process(id::text, 'newsletter');
RESET ROLE;
SELECT customer_vault.withdraw_consent('00000000-0000-0000-0000-00000000002a', 'newsletter') > 0 AS withdrawn;
SET ROLE regress_cv_marketer;
SELECT count(*) AS after_withdrawal FROM c_uuid;
RESET ROLE;

-- privileges: has_consent is personal data (admin and auditor only); may_process is public
SELECT has_function_privilege('public', 'customer_vault.may_process(text, text)', 'EXECUTE') AS may_process_public,
       has_function_privilege('regress_cv_marketer', 'customer_vault.has_consent(text, text)', 'EXECUTE') AS has_consent_marketer,
       has_function_privilege('customer_vault_auditor', 'customer_vault.has_consent(text, text)', 'EXECUTE') AS has_consent_auditor,
       has_function_privilege('regress_cv_marketer', 'customer_vault.grant_consent(text, text, jsonb, timestamptz)', 'EXECUTE') AS grant_marketer,
       has_function_privilege('customer_vault_writer', 'customer_vault.grant_consent(text, text, jsonb, timestamptz)', 'EXECUTE') AS grant_writer,
       has_table_privilege('regress_cv_marketer', 'customer_vault.consent_ledger', 'SELECT') AS ledger_marketer,
       has_table_privilege('customer_vault_auditor', 'customer_vault.consent_ledger', 'SELECT') AS ledger_auditor;

DROP TABLE c_big, c_uuid, c_text;
DROP FUNCTION sqlstate_of(text);
REVOKE regress_cv_marketer FROM regress_cv_intern;
DELETE FROM customer_vault.purpose_roles;
DROP ROLE regress_cv_marketer, regress_cv_biller, regress_cv_intern;
