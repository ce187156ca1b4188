-- Every earlier version updates to the current one with ALTER EXTENSION
-- UPDATE, and data encrypted before the update still decrypts after it.
\set VERBOSITY terse
SELECT count(*) AS versions_without_path
  FROM pg_extension_update_paths('customer_vault') p
 WHERE p.target = (SELECT default_version FROM pg_available_extensions WHERE name = 'customer_vault')
   AND p.source <> p.target AND p.path IS NULL;
\set orig_db :DBNAME
DROP DATABASE IF EXISTS regress_cv_upgrade;
CREATE DATABASE regress_cv_upgrade;
\c regress_cv_upgrade
SET client_min_messages = warning;
CREATE EXTENSION pgcrypto;
RESET client_min_messages;
CREATE TABLE upgrade_log (from_version text, to_version text, readable bigint);
DO $$
DECLARE
    v text;
    target text := (SELECT default_version FROM pg_available_extensions WHERE name = 'customer_vault');
BEGIN
    FOR v IN SELECT version FROM pg_available_extension_versions WHERE name = 'customer_vault' ORDER BY version LOOP
        EXECUTE format('CREATE EXTENSION customer_vault VERSION %L', v);
        PERFORM customer_vault.create_key('upgrade_key');
        CREATE TABLE up_t AS SELECT g AS id, customer_vault.encrypt('value ' || g, 'upgrade_key', g::text) AS val
          FROM generate_series(1, 50) g;
        ALTER EXTENSION customer_vault UPDATE;
        INSERT INTO upgrade_log
        SELECT v, (SELECT extversion FROM pg_extension WHERE extname = 'customer_vault'),
               count(*) FILTER (WHERE customer_vault.decrypt(val, id::text) = 'value ' || id) FROM up_t;
        DROP TABLE up_t;
        DROP EXTENSION customer_vault;
        DROP SCHEMA customer_vault;
    END LOOP;
    IF (SELECT count(*) FROM upgrade_log) = 0 THEN
        RAISE EXCEPTION 'no version was tested';
    END IF;
    IF EXISTS (SELECT 1 FROM upgrade_log WHERE to_version <> target OR readable <> 50) THEN
        RAISE EXCEPTION 'an update lost data or did not reach %', target;
    END IF;
END $$;
SELECT from_version, to_version = (SELECT default_version FROM pg_available_extensions WHERE name = 'customer_vault') AS reached_current,
       readable FROM upgrade_log ORDER BY from_version;
\c :orig_db
DROP DATABASE regress_cv_upgrade;
