-- The declared privilege matrix and privilege_drift(): empty after a fresh
-- install and after every update; a grant made outside the scripts (to a
-- role, to PUBLIC, on a column, on the schema, with grant option), a revoked
-- declared grant and an object slipped into the schema all show, also when
-- they were made before an update; the auditor's and PUBLIC's declared rights
-- are listed, so that any new one shows in this output for review (the
-- auditor reads logs, reports and verify functions, nothing else).
\set VERBOSITY terse
\set orig_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_cv_drift;
CREATE DATABASE regress_cv_drift;
\c regress_cv_drift
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
DROP ROLE IF EXISTS regress_drift_role;
CREATE ROLE regress_drift_role;
CREATE ROLE regress_drift_auditor IN ROLE customer_vault_auditor;
CREATE ROLE regress_drift_reader IN ROLE customer_vault_reader;
CREATE ROLE regress_drift_writer IN ROLE customer_vault_writer;
CREATE ROLE regress_drift_admin IN ROLE customer_vault_admin;
RESET client_min_messages;

-- a fresh install: the declaration is what the scripts granted, nothing differs
SELECT count(*) > 100 AS declared_rows FROM customer_vault.privilege_matrix;
SELECT * FROM customer_vault.privilege_drift();
SELECT count(*) AS carry_left FROM customer_vault._privilege_carry;
-- what the auditor and PUBLIC are declared to have (a change here needs a reason)
SELECT object, privilege FROM customer_vault.privilege_matrix WHERE role = 'customer_vault_auditor' ORDER BY 1, 2;
SELECT object, privilege FROM customer_vault.privilege_matrix WHERE role = 'PUBLIC' ORDER BY 1, 2;
-- no declared right on the key table, its columns or the scratch table
SELECT count(*) AS key_table_rights FROM customer_vault.privilege_matrix
 WHERE object LIKE '% customer_vault.data_keys%' OR object LIKE '% customer_vault._privilege_carry%';

-- drift of every kind
GRANT EXECUTE ON FUNCTION customer_vault.decrypt(customer_vault.encrypted_text, text) TO regress_drift_role;
GRANT EXECUTE ON FUNCTION customer_vault.verify_ledger() TO PUBLIC;
REVOKE EXECUTE ON FUNCTION customer_vault.verify_ledger() FROM customer_vault_auditor;
GRANT SELECT (wrapped) ON customer_vault.data_keys TO regress_drift_role;
GRANT CREATE ON SCHEMA customer_vault TO regress_drift_role;
GRANT SELECT ON customer_vault.keys TO regress_drift_role WITH GRANT OPTION;
GRANT USAGE ON SEQUENCE customer_vault.data_keys_id_seq TO customer_vault_writer;
CREATE FUNCTION customer_vault.slipped_in() RETURNS int LANGUAGE sql AS 'SELECT 1';
SELECT * FROM customer_vault.privilege_drift();
-- the same, as findings of the compliance report (high)
SELECT severity, object, finding FROM customer_vault.compliance_report() WHERE finding LIKE '%privilege matrix%'
    OR finding LIKE '%declared for%' ORDER BY object, finding;
-- the auditor and the admin may look; others may not
SET ROLE regress_drift_auditor;
SELECT count(*) AS auditor_sees FROM customer_vault.privilege_drift();
SELECT count(*) > 0 AS auditor_reads_matrix FROM customer_vault.privilege_matrix;
SET ROLE regress_drift_admin;
SELECT count(*) AS admin_sees FROM customer_vault.privilege_drift();
RESET ROLE;
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
SET ROLE regress_drift_reader;
SELECT pg_temp.sqlstate_of('SELECT customer_vault.privilege_drift()') AS reader_drift,
       pg_temp.sqlstate_of('SELECT * FROM customer_vault.privilege_matrix') AS reader_matrix;
SET ROLE regress_drift_writer;
SELECT pg_temp.sqlstate_of('SELECT customer_vault.privilege_drift()') AS writer_drift,
       pg_temp.sqlstate_of('DELETE FROM customer_vault.privilege_matrix') AS writer_erases_matrix;
SET ROLE regress_drift_admin;
SELECT pg_temp.sqlstate_of('DELETE FROM customer_vault.privilege_matrix') AS admin_erases_matrix,
       pg_temp.sqlstate_of('INSERT INTO customer_vault.privilege_matrix VALUES (''x'', ''y'', ''z'')') AS admin_declares;
SET ROLE regress_drift_role;
SELECT pg_temp.sqlstate_of('SELECT customer_vault.privilege_drift()') AS none_drift;
RESET ROLE;

-- undone, the drift is gone
REVOKE EXECUTE ON FUNCTION customer_vault.decrypt(customer_vault.encrypted_text, text) FROM regress_drift_role;
REVOKE EXECUTE ON FUNCTION customer_vault.verify_ledger() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION customer_vault.verify_ledger() TO customer_vault_auditor;
REVOKE SELECT (wrapped) ON customer_vault.data_keys FROM regress_drift_role;
REVOKE CREATE ON SCHEMA customer_vault FROM regress_drift_role;
REVOKE SELECT ON customer_vault.keys FROM regress_drift_role CASCADE;
REVOKE USAGE ON SEQUENCE customer_vault.data_keys_id_seq FROM customer_vault_writer;
DROP FUNCTION customer_vault.slipped_in();
SELECT * FROM customer_vault.privilege_drift();

-- updates: from every earlier version, nothing differs afterwards; a grant
-- made outside the scripts before the update stays undeclared (the update's
-- own GRANTs on that function do not absorb it).  From 0.1.0 the frozen
-- 0.1.0->0.2.0 script grants on those objects first, and PostgreSQL then
-- records their whole ACL, the DBA's grants included, as the extension's own
-- (pg_init_privs); they still show, as only PUBLIC and the extension's roles
-- can be declared.
SET client_min_messages = warning;
DROP EXTENSION customer_vault;
DROP SCHEMA customer_vault;
RESET client_min_messages;
CREATE TABLE drift_log (from_version text, drift text);
DO $$
DECLARE
    v text;
    target text := (SELECT default_version FROM pg_available_extensions WHERE name = 'customer_vault');
BEGIN
    FOR v IN SELECT version FROM pg_available_extension_versions
              WHERE name = 'customer_vault' AND version <> target ORDER BY string_to_array(version, '.')::int[] LOOP
        EXECUTE format('CREATE EXTENSION customer_vault VERSION %L', v);
        ALTER EXTENSION customer_vault UPDATE;
        INSERT INTO drift_log
        SELECT v, COALESCE(string_agg(concat_ws(' ', object, role, privilege, expected, actual), '; '), 'none')
          FROM customer_vault.privilege_drift();
        DROP EXTENSION customer_vault;
        DROP SCHEMA customer_vault;
        -- with grants of the DBA's own made before the update
        EXECUTE format('CREATE EXTENSION customer_vault VERSION %L', v);
        GRANT EXECUTE ON FUNCTION customer_vault.decrypt(customer_vault.encrypted_text, text) TO regress_drift_role;
        GRANT CREATE ON SCHEMA customer_vault TO regress_drift_role;
        GRANT SELECT ON customer_vault.purge_log TO regress_drift_role;
        ALTER EXTENSION customer_vault UPDATE;
        INSERT INTO drift_log
        SELECT v || ' with grants', string_agg(concat_ws(' ', object, role, privilege, expected, actual), '; ' ORDER BY object)
          FROM customer_vault.privilege_drift();
        DROP EXTENSION customer_vault;
        DROP SCHEMA customer_vault;
    END LOOP;
END $$;
SELECT * FROM drift_log ORDER BY from_version;

\c :orig_db
SET client_min_messages = warning;
DROP DATABASE regress_cv_drift;
DROP ROLE regress_drift_role, regress_drift_auditor, regress_drift_reader, regress_drift_writer, regress_drift_admin;
