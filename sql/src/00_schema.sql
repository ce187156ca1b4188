--@ code
-- The schema: usable by everybody (types, may_process), writable by nobody else.
REVOKE ALL ON SCHEMA customer_vault FROM PUBLIC;
GRANT USAGE ON SCHEMA customer_vault TO PUBLIC;

-- Roles: each employee and application gets only what the job needs.
-- Roles are cluster-wide: they survive DROP EXTENSION and are shared by databases.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['customer_vault_admin', 'customer_vault_writer',
                             'customer_vault_reader', 'customer_vault_auditor']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION customer_vault.version() RETURNS text
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_version';
COMMENT ON FUNCTION customer_vault.version() IS
    'version of the loaded customer_vault library';
