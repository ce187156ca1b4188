-- Review 1 of the declared privilege matrix: (1) grants made by ALTER
-- DEFAULT PRIVILEGES when CREATE EXTENSION or an update creates objects are
-- never declared (only PUBLIC and the extension's roles can be, and not by
-- default privileges); (2) memberships of the extension's roles and grants on
-- its parameters are drift (high); (3) objects owned by another role than the
-- extension's owner, and default privileges for its schema, are drift; (4) the
-- report's stale-role finding does not advise locking an exempt role.
\set VERBOSITY terse
\set orig_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_cv_review1;
CREATE DATABASE regress_cv_review1;
\c regress_cv_review1
SET client_min_messages = warning;
CREATE ROLE regress_rv1_p LOGIN;
CREATE ROLE regress_rv1_agent LOGIN;
CREATE ROLE regress_rv1_owner;
CREATE ROLE regress_rv1_stale LOGIN IN ROLE customer_vault_reader;
-- (1) default privileges of the installing role, before CREATE EXTENSION
ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO regress_rv1_p;
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO regress_rv1_p;
ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO customer_vault_reader;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
SELECT count(*) AS declared_for_p FROM customer_vault.privilege_matrix WHERE role = 'regress_rv1_p';
SELECT count(*) AS reader_declared_on_keys FROM customer_vault.privilege_matrix
 WHERE role = 'customer_vault_reader' AND object LIKE '% customer_vault.data_keys%';
SELECT object, role, privilege, expected, actual FROM customer_vault.privilege_drift()
 WHERE object IN ('table customer_vault.data_keys', 'function customer_vault._subject_hash(text)')
    OR object LIKE 'default privileges%' ORDER BY 1, 2, 3;
SELECT count(*) > 100 AS drift_for_p FROM customer_vault.privilege_drift() WHERE role = 'regress_rv1_p' AND actual AND NOT expected;
SELECT severity, count(*) > 0 AS findings FROM customer_vault.compliance_report()
 WHERE finding LIKE '%regress\_rv1\_p%' GROUP BY 1 ORDER BY 1;
SELECT severity, object, finding, hint FROM customer_vault.compliance_report()
 WHERE object LIKE 'default privileges%' ORDER BY 2, 3;
-- the update path: an update from 0.2.0 under the same default privileges
-- declares none of them either (the objects it creates get them: drift)
SET client_min_messages = warning;
DROP EXTENSION customer_vault;
DROP SCHEMA customer_vault;
CREATE EXTENSION customer_vault VERSION '0.2.0';
ALTER EXTENSION customer_vault UPDATE;
RESET client_min_messages;
SELECT count(*) AS declared_for_p FROM customer_vault.privilege_matrix WHERE role = 'regress_rv1_p';
SELECT count(*) AS reader_declared_on_matrix FROM customer_vault.privilege_matrix
 WHERE role = 'customer_vault_reader' AND object LIKE '% customer_vault.privilege_matrix%';
SELECT object, role, privilege FROM customer_vault.privilege_drift()
 WHERE object IN ('table customer_vault.privilege_matrix', 'function customer_vault.privilege_drift()') ORDER BY 1, 2, 3;
-- without the default privileges, a new install and an update differ in nothing
ALTER DEFAULT PRIVILEGES REVOKE SELECT ON TABLES FROM regress_rv1_p, customer_vault_reader;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM regress_rv1_p;
SET client_min_messages = warning;
DROP EXTENSION customer_vault;
DROP SCHEMA customer_vault;
CREATE EXTENSION customer_vault VERSION '0.1.0';
ALTER EXTENSION customer_vault UPDATE;
RESET client_min_messages;
SELECT * FROM customer_vault.privilege_drift();

-- (2) memberships of the extension's roles, grants on its parameters
GRANT customer_vault_admin TO customer_vault_auditor;
GRANT customer_vault_reader TO customer_vault_auditor;
GRANT regress_rv1_owner TO customer_vault_writer WITH ADMIN OPTION;
GRANT SET ON PARAMETER customer_vault.decrypt_limit TO regress_rv1_agent;
SELECT * FROM customer_vault.privilege_drift();
SELECT severity, object, finding, hint FROM customer_vault.compliance_report()
 WHERE object LIKE 'role customer\_vault%' OR object LIKE 'parameter %' ORDER BY 2, 3;
REVOKE customer_vault_admin FROM customer_vault_auditor;
REVOKE customer_vault_reader FROM customer_vault_auditor;
REVOKE regress_rv1_owner FROM customer_vault_writer;
REVOKE SET ON PARAMETER customer_vault.decrypt_limit FROM regress_rv1_agent;
SELECT * FROM customer_vault.privilege_drift();

-- (3) owners and default privileges for the schema
ALTER FUNCTION customer_vault.set_decrypt_limit(regrole, integer, integer) OWNER TO regress_rv1_owner;
ALTER TABLE customer_vault.privilege_matrix OWNER TO regress_rv1_owner;
ALTER DEFAULT PRIVILEGES IN SCHEMA customer_vault GRANT EXECUTE ON FUNCTIONS TO PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_rv1_owner IN SCHEMA customer_vault GRANT SELECT ON TABLES TO regress_rv1_agent;
SELECT * FROM customer_vault.privilege_drift();
SELECT severity, object, finding, hint FROM customer_vault.compliance_report()
 WHERE finding LIKE '%owns%' OR object LIKE 'default privileges%' ORDER BY 2, 3;
ALTER FUNCTION customer_vault.set_decrypt_limit(regrole, integer, integer) OWNER TO CURRENT_USER;
ALTER TABLE customer_vault.privilege_matrix OWNER TO CURRENT_USER;
ALTER DEFAULT PRIVILEGES IN SCHEMA customer_vault REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_rv1_owner IN SCHEMA customer_vault REVOKE SELECT ON TABLES FROM regress_rv1_agent;
SELECT * FROM customer_vault.privilege_drift();

-- (4) a stale role listed in lock_exempt_roles is not to be locked
SELECT count(*) >= 0 AS noticed FROM customer_vault.stale_roles('1 day');
SELECT customer_vault._activity_shift('100 days') IS NOT NULL AS shifted;
SELECT severity, hint FROM customer_vault.compliance_report() WHERE object = 'role regress_rv1_stale';
SET customer_vault.lock_exempt_roles = 'regress_rv1_stale';
SELECT severity, hint FROM customer_vault.compliance_report() WHERE object = 'role regress_rv1_stale';
RESET customer_vault.lock_exempt_roles;

\c :orig_db
SET client_min_messages = warning;
DROP DATABASE regress_cv_review1;
DROP ROLE regress_rv1_p, regress_rv1_agent, regress_rv1_owner, regress_rv1_stale;
