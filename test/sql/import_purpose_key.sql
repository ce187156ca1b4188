-- import_consents checks the foreign key consent_state.purpose -> purposes
-- once per batch, not once per row (part GRANT, issue 15: the key's per-row
-- check trigger was 11-15% of an import's CPU).  It locks each distinct
-- purpose of a batch FOR KEY SHARE, as the key's check does, and writes the
-- state with session_replication_role = replica for that one statement, which
-- leaves out only the key's per-row check.  The key stays declared and
-- enforced for every other writer; deleting a purpose still cascades.
\set VERBOSITY terse
SELECT customer_vault.define_purpose('ipk_a'), customer_vault.define_purpose('ipk_b');

BEGIN;
SELECT customer_vault.import_consents($$
    SELECT 'ipk-' || g AS subject, CASE WHEN g % 3 = 0 THEN 'ipk_a' ELSE 'ipk_b' END AS purpose,
           jsonb_build_object('n', g) AS evidence
      FROM generate_series(1, 2000) g$$) AS imported;
-- a few probes of the purposes' key, not one per row (the per-row check made 2,000 more)
SELECT pg_catalog.pg_stat_get_xact_numscans('customer_vault.purposes_pkey'::regclass) < 20 AS few_key_probes;
-- the setting is back
SHOW session_replication_role;
COMMIT;
SELECT purpose, count(*) FROM customer_vault.consent_state WHERE subject LIKE 'ipk-%' GROUP BY 1 ORDER BY 1;
SELECT customer_vault.verify_ledger() IS NULL AS intact;

-- a trigger of consent_state enabled for origin sessions only (one a DBA
-- added): a replica session would leave it out, so the import keeps the
-- ordinary path and it fires
CREATE FUNCTION public.ipk_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.subject = 'ipk-refused' THEN
        RAISE EXCEPTION 'refused by the test trigger (session_replication_role %)',
            pg_catalog.current_setting('session_replication_role');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ipk_refuse BEFORE INSERT ON customer_vault.consent_state
    FOR EACH ROW EXECUTE FUNCTION public.ipk_refuse();
SELECT customer_vault.import_consents($$
    SELECT 'ipk-refused' AS subject, 'ipk_a' AS purpose, '{"n": 0}'::jsonb AS evidence$$);
-- enabled always: it would see the setting as replica and may act on it, so
-- the import keeps the ordinary path (review 24, LOW-1: it saw "replica");
-- an error inside the state statement leaves the setting as it was
ALTER TABLE customer_vault.consent_state ENABLE ALWAYS TRIGGER ipk_refuse;
BEGIN;
SAVEPOINT s;
SELECT customer_vault.import_consents($$
    SELECT 'ipk-refused' AS subject, 'ipk_a' AS purpose, '{"n": 0}'::jsonb AS evidence$$);
ROLLBACK TO SAVEPOINT s;
SHOW session_replication_role;
COMMIT;
SHOW session_replication_role;
-- enabled for replica sessions only (review 24, LOW-1): an ordinary
-- session's write never fires it, so neither does the import's
ALTER TABLE customer_vault.consent_state ENABLE REPLICA TRIGGER ipk_refuse;
SELECT customer_vault.import_consents($$
    SELECT 'ipk-refused' AS subject, 'ipk_a' AS purpose, '{"n": 0}'::jsonb AS evidence$$) AS imported_past_replica_trigger;
SELECT count(*) AS replica_trigger_rows FROM customer_vault.consent_state WHERE subject = 'ipk-refused';
DELETE FROM customer_vault.consent_state WHERE subject = 'ipk-refused';
-- a disabled one does not fire either
ALTER TABLE customer_vault.consent_state DISABLE TRIGGER ipk_refuse;
SELECT customer_vault.import_consents($$
    SELECT 'ipk-refused2' AS subject, 'ipk_a' AS purpose, '{"n": 0}'::jsonb AS evidence$$) AS imported_past_disabled_trigger;
DROP TRIGGER ipk_refuse ON customer_vault.consent_state;
DROP FUNCTION public.ipk_refuse();
SELECT count(*) AS refused_rows FROM customer_vault.consent_state WHERE subject = 'ipk-refused';

-- the key is still enforced for other writers
INSERT INTO customer_vault.consent_state (subject, purpose, granted, ledger_id) VALUES ('ipk-x', 'ipk_none', true, 0);
-- and deleting a purpose still cascades to the imported rows
DELETE FROM customer_vault.purposes WHERE purpose = 'ipk_a';
SELECT purpose, count(*) FROM customer_vault.consent_state WHERE subject LIKE 'ipk-%' GROUP BY 1 ORDER BY 1;
DELETE FROM customer_vault.purposes WHERE purpose = 'ipk_b';
SELECT count(*) AS left_over FROM customer_vault.consent_state WHERE subject LIKE 'ipk-%';
