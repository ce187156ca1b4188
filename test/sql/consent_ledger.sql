-- The consent ledger's chain head and purpose_roles keyed on role OIDs.
-- The head row (last id and hash) is what appends lock and update: no role
-- but the extension's owner can lock or change it (the 0.1.0 ledger lock was
-- a public advisory lock any login role could hold); appends in one
-- transaction, subtransaction rollbacks included, keep the chain intact; a
-- head that does not match the last entry is reported by verify_ledger().
-- A dropped role's purposes do not pass to a new role of the same name.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_cvl_user LOGIN;
CREATE ROLE regress_cvl_app;
RESET client_min_messages;
GRANT customer_vault_admin, customer_vault_writer, customer_vault_auditor TO regress_cvl_app;
SELECT customer_vault.define_purpose('cvl_news');
SELECT customer_vault.define_purpose('cvl_billing', 'contract');

-- ---------- the chain head ----------
SELECT customer_vault.grant_consent('s1', 'cvl_news', '{"form": "a"}') AS id1 \gset
SELECT h.last_id = :id1 AS head_is_last, h.last_hash = l.hash AS head_hash_is_last
  FROM customer_vault.consent_ledger_head h JOIN customer_vault.consent_ledger l ON l.id = h.last_id;
-- nobody else can lock or write it: not a login role, not even the admin
SET ROLE regress_cvl_user;
SELECT last_id FROM customer_vault.consent_ledger_head FOR UPDATE;
BEGIN;
LOCK TABLE customer_vault.consent_ledger_head IN ROW SHARE MODE;
ROLLBACK;
BEGIN;
LOCK TABLE customer_vault.consent_ledger IN EXCLUSIVE MODE;
ROLLBACK;
RESET ROLE;
SET ROLE regress_cvl_app;
SELECT last_id > 0 AS admin_reads_head FROM customer_vault.consent_ledger_head;
SELECT last_id FROM customer_vault.consent_ledger_head FOR UPDATE;
SELECT last_id FROM customer_vault.consent_ledger_head FOR KEY SHARE;
UPDATE customer_vault.consent_ledger_head SET last_id = last_id + 1;
BEGIN;
LOCK TABLE customer_vault.consent_ledger_head IN ROW SHARE MODE;
ROLLBACK;
-- but records consent through the functions
SELECT customer_vault.grant_consent('s2', 'cvl_news', '{"form": "b"}') = :id1 + 1 AS next_id;
RESET ROLE;

-- many appends in one transaction (one statement), and subtransactions that
-- roll back after appending: the chain stays contiguous and intact
BEGIN;
SELECT count(customer_vault.grant_consent('bulk' || g, 'cvl_news', '{"form": "bulk"}')) FROM generate_series(1, 500) g;
SAVEPOINT sp;
SELECT customer_vault.grant_consent('rolled_back', 'cvl_news', '{"form": "x"}') > 0 AS appended;
ROLLBACK TO SAVEPOINT sp;
SELECT customer_vault.withdraw_consent('bulk1', 'cvl_news') > 0 AS appended;
DO $$
BEGIN
    PERFORM customer_vault.grant_consent('in_block', 'cvl_news', '{"form": "y"}');
    RAISE EXCEPTION 'undo';
EXCEPTION WHEN raise_exception THEN
    NULL;
END $$;
SELECT customer_vault.grant_consent('after_block', 'cvl_news', '{"form": "z"}') > 0 AS appended;
COMMIT;
SELECT count(*) AS entries, max(id) - min(id) + 1 = count(*) AS contiguous,
       count(*) FILTER (WHERE subject IN ('rolled_back', 'in_block')) AS rolled_back_entries
  FROM customer_vault.consent_ledger WHERE id >= :id1;
SELECT customer_vault.verify_ledger() AS first_broken;
SELECT (SELECT last_id FROM customer_vault.consent_ledger_head) = (SELECT max(id) FROM customer_vault.consent_ledger) AS head_is_last;
SELECT count(*) AS head_rows FROM customer_vault.consent_ledger_head;

-- entries cut off the end (with the append-only trigger disabled by a
-- superuser) are reported: the head still points past them
CREATE TEMP TABLE cut AS SELECT * FROM customer_vault.consent_ledger WHERE id = (SELECT max(id) FROM customer_vault.consent_ledger);
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER consent_ledger_no_update_delete;
DELETE FROM customer_vault.consent_ledger WHERE id = (SELECT id FROM cut);
SELECT customer_vault.verify_ledger() = (SELECT id FROM cut) AS cut_reported;
INSERT INTO customer_vault.consent_ledger SELECT * FROM cut;
ALTER TABLE customer_vault.consent_ledger ENABLE ALWAYS TRIGGER consent_ledger_no_update_delete;
SELECT customer_vault.verify_ledger() AS first_broken;
-- a head moved back (or a restore's second head row) does not fork the chain
INSERT INTO customer_vault.consent_ledger_head VALUES (0, NULL);
SELECT customer_vault.grant_consent('after_restore', 'cvl_news', '{"form": "r"}') = (SELECT max(id) FROM cut) + 1 AS continues;
SELECT count(*) AS head_rows FROM customer_vault.consent_ledger_head;
SELECT customer_vault.verify_ledger() AS first_broken;

-- ---------- purpose_roles by role OID ----------
SET client_min_messages = warning;
CREATE ROLE regress_cvl_reused;
RESET client_min_messages;
SELECT customer_vault.allow_purpose('regress_cvl_reused', 'cvl_billing');
SELECT role, purpose FROM customer_vault.purpose_roles WHERE purpose = 'cvl_billing';
SET ROLE regress_cvl_reused;
SELECT customer_vault.may_process('s1', 'cvl_billing') AS allowed;
RESET ROLE;
DROP ROLE regress_cvl_reused;
-- the row of the dropped role stays (ignored) until the next allow/disallow
SELECT count(*) AS stale_rows FROM customer_vault.purpose_roles r
 WHERE r.purpose = 'cvl_billing' AND NOT EXISTS (SELECT 1 FROM pg_roles a WHERE a.oid = r.role);
SET client_min_messages = warning;
CREATE ROLE regress_cvl_reused;
RESET client_min_messages;
-- a new role of the same name is not allowed the purpose
SET ROLE regress_cvl_reused;
SELECT customer_vault.may_process('s1', 'cvl_billing') AS new_role_allowed;
RESET ROLE;
SELECT customer_vault.disallow_purpose('regress_cvl_app', 'cvl_billing');
SELECT count(*) AS stale_rows FROM customer_vault.purpose_roles r
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles a WHERE a.oid = r.role);
-- the new role is allowed only when allowed itself
SELECT customer_vault.allow_purpose('regress_cvl_reused', 'cvl_billing');
SET ROLE regress_cvl_reused;
SELECT customer_vault.may_process('s1', 'cvl_billing') AS allowed_again;
RESET ROLE;
-- bad arguments
SELECT customer_vault.allow_purpose(NULL, 'cvl_billing');
SELECT customer_vault.disallow_purpose(NULL, 'cvl_billing');
SELECT customer_vault.disallow_purpose('regress_cvl_reused', NULL);
SELECT customer_vault.disallow_purpose('regress_cvl_reused', 'no_such_purpose');
SELECT customer_vault.allow_purpose('regress_cvl_reused', 'no_such_purpose');
SELECT customer_vault.allow_purpose('no_such_role', 'cvl_billing');
SELECT customer_vault.disallow_purpose('regress_cvl_reused', 'cvl_billing');

REVOKE customer_vault_admin, customer_vault_writer, customer_vault_auditor FROM regress_cvl_app;
DROP ROLE regress_cvl_user, regress_cvl_app, regress_cvl_reused;
