-- grant_consent keeps the purposes it read within a transaction (part PERF,
-- issue 15: the purpose's lookup, and the catalog's, were a tenth of a
-- grant).  A kept purpose must never outlive a change of it: this session's
-- own change (inside the transaction, in a subtransaction rolled back, in
-- replica mode), and (isolation spec grant_purpose_sessions) another
-- session's committed change.
\set VERBOSITY terse
SELECT customer_vault.define_purpose('gpc_news');
CREATE FUNCTION pg_temp.lifetime(s text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce((valid_until - granted_at)::text, 'none')
      FROM customer_vault.consent_state WHERE subject = s AND purpose = 'gpc_news' $$;

-- the row trigger that tells every session of a change fires in every
-- session, replica ones included
SELECT tgname, tgenabled FROM pg_catalog.pg_trigger
 WHERE tgrelid = 'customer_vault.purposes'::regclass AND NOT tgisinternal ORDER BY 1;

-- one transaction: grants before and after each change honour it
BEGIN;
SELECT customer_vault.grant_consent('gpc-1', 'gpc_news', '{"form": "t"}') > 0 AS granted;
SELECT customer_vault.grant_consent('gpc-2', 'gpc_news', '{"form": "t"}') > 0 AS granted;
UPDATE customer_vault.purposes SET consent_valid_for = '10 days' WHERE purpose = 'gpc_news';
SELECT customer_vault.grant_consent('gpc-3', 'gpc_news', '{"form": "t"}') > 0 AS granted;
-- define_purpose's own path (an upsert)
SELECT customer_vault.define_purpose('gpc_news', 'consent', NULL, '20 days');
SELECT customer_vault.grant_consent('gpc-4', 'gpc_news', '{"form": "t"}') > 0 AS granted;
-- a change in a subtransaction rolled back: the grant inside it saw the
-- change, the one after the rollback must not
SAVEPOINT s;
UPDATE customer_vault.purposes SET consent_valid_for = '1 day' WHERE purpose = 'gpc_news';
SELECT customer_vault.grant_consent('gpc-5', 'gpc_news', '{"form": "t"}') > 0 AS granted;
SELECT pg_temp.lifetime('gpc-5') AS lifetime;
ROLLBACK TO SAVEPOINT s;
SELECT customer_vault.grant_consent('gpc-6', 'gpc_news', '{"form": "t"}') > 0 AS granted;
-- in replica mode (as logical replication applies a change)
SET LOCAL session_replication_role = replica;
UPDATE customer_vault.purposes SET consent_valid_for = '40 days' WHERE purpose = 'gpc_news';
RESET session_replication_role;
SELECT customer_vault.grant_consent('gpc-7', 'gpc_news', '{"form": "t"}') > 0 AS granted;
-- one statement: the change and the grants after it
DO $$
BEGIN
    PERFORM customer_vault.grant_consent('gpc-8', 'gpc_news', '{"form": "t"}');
    UPDATE customer_vault.purposes SET consent_valid_for = '50 days' WHERE purpose = 'gpc_news';
    PERFORM customer_vault.grant_consent('gpc-9', 'gpc_news', '{"form": "t"}');
END $$;
SELECT s AS subject, pg_temp.lifetime(s) AS lifetime
  FROM unnest(ARRAY['gpc-1', 'gpc-2', 'gpc-3', 'gpc-4', 'gpc-6', 'gpc-7', 'gpc-8', 'gpc-9']) s;
-- the lawful basis changed: refused at once
UPDATE customer_vault.purposes SET lawful_basis = 'contract' WHERE purpose = 'gpc_news';
SELECT customer_vault.grant_consent('gpc-10', 'gpc_news', '{"form": "t"}') > 0 AS granted;
ROLLBACK;

-- the next transaction: what the rolled-back one read is not kept
SELECT customer_vault.grant_consent('gpc-11', 'gpc_news', '{"form": "t"}') > 0 AS granted;
SELECT pg_temp.lifetime('gpc-11') AS lifetime;
-- a change of the previous transaction (committed): honoured by the next
BEGIN;
SELECT customer_vault.grant_consent('gpc-12', 'gpc_news', '{"form": "t"}') > 0 AS granted;
COMMIT;
UPDATE customer_vault.purposes SET consent_valid_for = '5 days' WHERE purpose = 'gpc_news';
BEGIN;
SELECT customer_vault.grant_consent('gpc-13', 'gpc_news', '{"form": "t"}') > 0 AS granted;
SELECT pg_temp.lifetime('gpc-12') AS before, pg_temp.lifetime('gpc-13') AS after;
-- the purpose dropped and made again inside the transaction
DELETE FROM customer_vault.purposes WHERE purpose = 'gpc_news';
SELECT customer_vault.grant_consent('gpc-14', 'gpc_news', '{"form": "t"}') > 0 AS granted;
ROLLBACK;
BEGIN;
SELECT customer_vault.grant_consent('gpc-15', 'gpc_news', '{"form": "t"}') > 0 AS granted;
DELETE FROM customer_vault.purposes WHERE purpose = 'gpc_news';
SELECT customer_vault.define_purpose('gpc_news', 'legitimate_interests');
SELECT customer_vault.grant_consent('gpc-16', 'gpc_news', '{"form": "t"}') > 0 AS granted;
ROLLBACK;
-- the ledger holds every grant that committed, chained
SELECT customer_vault.verify_ledger() IS NULL AS ledger_intact;
SELECT count(*) AS kept FROM customer_vault.consent_state WHERE purpose = 'gpc_news';
DELETE FROM customer_vault.consent_state WHERE purpose = 'gpc_news';
DELETE FROM customer_vault.purposes WHERE purpose = 'gpc_news';
