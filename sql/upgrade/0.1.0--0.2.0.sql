-- customer_vault 0.1.0 -> 0.2.0: the hand-written part of the upgrade.
-- Changes to tables, and DROPs of functions whose signature or return type
-- changed, go before the replay; data migrations that need the new
-- functions go after it.

-- length padding per key (create_key's pad_to, set_key_padding)
ALTER TABLE customer_vault.data_keys
    ADD COLUMN pad_to integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT data_keys_pad_to_check CHECK (pad_to >= 0 AND pad_to <= 4096);
DROP FUNCTION customer_vault.create_key(text, text);

-- blind indexes bound to their column, truncated to blind_index_bits (NULL:
-- a column protected by 0.1.0, whose index stays unbound and full-length)
ALTER TABLE customer_vault.protected_columns
    ADD COLUMN blind_index_bits integer,
    ADD CONSTRAINT protected_columns_blind_index_bits_check CHECK (blind_index_bits BETWEEN 1 AND 256);
CREATE TABLE customer_vault.blind_index_lookups (
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    role_id     oid NOT NULL,
    schema_name name NOT NULL,
    table_name  name NOT NULL,
    column_name name NOT NULL,
    found       bigint NOT NULL
);
-- protect_column gained blind_index_bits
DROP FUNCTION customer_vault.protect_column(regclass, name, text, name, name);

-- purge_log: each table's run is running, done, failed (with SQLSTATE and
-- message) or interrupted; a failure before the limit is known has no cutoff
ALTER TABLE customer_vault.purge_log
    ALTER COLUMN cutoff DROP NOT NULL,
    ADD COLUMN status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
    ADD COLUMN sqlstate text,
    ADD COLUMN message text,
    ADD COLUMN pid integer;
UPDATE customer_vault.purge_log
   SET status = CASE WHEN finished_at IS NULL THEN 'interrupted' ELSE 'done' END;

--@ replay

-- decrypted views made by 0.1.0 belong to the admin who protected the table:
-- give them to the extension's owner, then guard them
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN SELECT DISTINCT c.oid::pg_catalog.regclass
               FROM customer_vault.protected_columns p
               JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) p.schema_name
               JOIN pg_catalog.pg_class c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid
                AND c.relname::pg_catalog.text OPERATOR(pg_catalog.=) (p.table_name::pg_catalog.text OPERATOR(pg_catalog.||) '_decrypted')
                AND c.relkind OPERATOR(pg_catalog.=) 'v'
    LOOP
        EXECUTE pg_catalog.format('ALTER VIEW %s OWNER TO %I', v, current_user);
    END LOOP;
END
$$;
CREATE EVENT TRIGGER customer_vault_guard_decrypted_views ON ddl_command_end
    EXECUTE FUNCTION customer_vault._guard_decrypted_views();
