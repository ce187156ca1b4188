-- CREATE EXTENSION ... CASCADE installs pgcrypto; every object lands in
-- schema customer_vault; DROP EXTENSION leaves nothing behind.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
SELECT extname, extversion = a.default_version AS current_version, extrelocatable, n.nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
  JOIN pg_available_extensions a ON a.name = e.extname
 WHERE extname IN ('customer_vault', 'pgcrypto') ORDER BY 1;
SELECT customer_vault.version() = (SELECT extversion FROM pg_extension WHERE extname = 'customer_vault') AS library_matches_script;

-- every member object of the extension, by schema (expect only customer_vault)
SELECT DISTINCT CASE
         WHEN d.classid = 'pg_class'::regclass THEN (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = d.objid)
         WHEN d.classid = 'pg_proc'::regclass THEN (SELECT pronamespace::regnamespace::text FROM pg_proc WHERE oid = d.objid)
         WHEN d.classid = 'pg_type'::regclass THEN (SELECT typnamespace::regnamespace::text FROM pg_type WHERE oid = d.objid)
         ELSE d.classid::regclass::text END AS schema_of_members
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'customer_vault');

-- the inventory of member objects, so an accidental addition or removal shows
-- (from PostgreSQL 17 on, the rowtypes of tables and views and the array types
-- are listed as members too; they come with their relation or element type and
-- are left out here, so that one listing holds on every version)
SELECT pg_describe_object(classid, objid, 0) AS member
  FROM pg_depend d
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'customer_vault')
   AND NOT EXISTS (SELECT FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
                    WHERE d.classid = 'pg_type'::regclass AND t.oid = d.objid
                      AND ((t.typrelid <> 0 AND c.relkind <> 'c')
                           OR EXISTS (SELECT FROM pg_type e WHERE e.typarray = t.oid)))
 ORDER BY 1;

-- the roles exist and cannot log in
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'customer\_vault\_%' ORDER BY 1;

-- settings: the key sources are hidden from non-superusers
SELECT name, context FROM pg_settings WHERE name LIKE 'customer_vault.%' ORDER BY 1;
CREATE ROLE regress_cv_nobody;
SET ROLE regress_cv_nobody;
SELECT count(*) AS key_settings_visible FROM pg_settings WHERE name LIKE 'customer_vault.%root%';
-- (refused with 42501 on every version; the message's wording changed in 16)
\set VERBOSITY sqlstate
SHOW customer_vault.root_key_file;
\set VERBOSITY terse
SET customer_vault.root_key_file = '/tmp/x';
SET customer_vault.purpose = 'billing';
SHOW customer_vault.purpose;
SET customer_vault.no_such_setting = 1;
RESET ROLE;
DROP ROLE regress_cv_nobody;

-- drop leaves no object behind (PostgreSQL keeps the schema an extension was
-- installed into, empty; DROP SCHEMA customer_vault removes it)
DROP EXTENSION customer_vault;
SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'customer_vault'::regnamespace)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'customer_vault'::regnamespace)
     + (SELECT count(*) FROM pg_type WHERE typnamespace = 'customer_vault'::regnamespace)
     + (SELECT count(*) FROM pg_operator WHERE oprnamespace = 'customer_vault'::regnamespace) AS objects_left;
SELECT count(*) AS dependencies_left FROM pg_depend WHERE refclassid = 'pg_extension'::regclass
   AND refobjid NOT IN (SELECT oid FROM pg_extension);
DROP SCHEMA customer_vault;
SELECT count(*) AS functions_left FROM pg_proc WHERE proname LIKE 'cv\_%' OR prosrc LIKE 'cv\_%';
SELECT count(*) AS types_left FROM pg_type WHERE typname LIKE 'encrypted\_%';
-- again, for the tests that follow
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
