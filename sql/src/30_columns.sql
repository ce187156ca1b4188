--@ schema

---------------------------------------------------------------------------
-- Protected columns (transparent path) and rotation
---------------------------------------------------------------------------

CREATE TABLE customer_vault.protected_columns (
    schema_name        name NOT NULL,
    table_name         name NOT NULL,
    column_name        name NOT NULL,
    key_name           text NOT NULL,
    binding            text NOT NULL,
    context_column     name,
    blind_index_column name,
    protected_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    blind_index_bits   integer,
    relid              regclass NOT NULL,
    PRIMARY KEY (schema_name, table_name, column_name),
    CONSTRAINT protected_columns_blind_index_bits_check CHECK (blind_index_bits BETWEEN 1 AND 256)
);
--@ code
COMMENT ON TABLE customer_vault.protected_columns IS
    'columns converted by protect_column(), with the binding their values are sealed to; relid is the table (its names cannot change while it is protected)';
--@ schema
SELECT pg_catalog.pg_extension_config_dump('customer_vault.protected_columns', '');
--@ code

-- Forget the protection of tables and columns that are dropped, so a new table
-- of the same name can be protected, and remake the protect trigger of a
-- table that lost a protected column.  SECURITY DEFINER because whoever may drop
-- a table must be able to remove its rows here; the search_path is pinned.
CREATE OR REPLACE FUNCTION customer_vault._forget_dropped() RETURNS event_trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    -- DROP EXTENSION drops this table too
    IF pg_catalog.to_regclass('customer_vault.protected_columns') IS NULL THEN
        RETURN;
    END IF;
    IF pg_catalog.to_regclass('customer_vault.retention_policies') IS NOT NULL THEN
        DELETE FROM customer_vault.retention_policies p
         USING pg_catalog.pg_event_trigger_dropped_objects() d
         WHERE (d.object_type OPERATOR(pg_catalog.=) 'table'
                AND p.schema_name OPERATOR(pg_catalog.=) d.schema_name
                AND p.table_name OPERATOR(pg_catalog.=) d.object_name)
            OR (d.object_type OPERATOR(pg_catalog.=) 'table column'
                AND (d.address_names OPERATOR(pg_catalog.=) ARRAY[p.schema_name::text, p.table_name::text, p.time_column::text]
                     OR d.address_names OPERATOR(pg_catalog.=) ARRAY[p.schema_name::text, p.table_name::text, p.subject_column::text]));
    END IF;
    -- by the table's OID: a table that merely has a protected table's old
    -- name (or a column of it) leaves the protected table's rows alone
    DELETE FROM customer_vault.protected_columns p
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
       AND (d.object_type OPERATOR(pg_catalog.=) 'table'
            OR (d.object_type OPERATOR(pg_catalog.=) 'table column'
                AND d.address_names[3] OPERATOR(pg_catalog.=) p.column_name::pg_catalog.text));
    -- a column drop that took a table's protect trigger with it (CASCADE: the
    -- trigger lists its columns) gets the trigger remade for the protected
    -- columns left; a DROP TRIGGER alone (the owner giving the protection
    -- up) is left as it is
    FOR r IN SELECT DISTINCT p.relid
               FROM pg_catalog.pg_event_trigger_dropped_objects() d
               JOIN customer_vault.protected_columns p
                 ON p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid
              WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                AND d.object_type OPERATOR(pg_catalog.=) 'table column'
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() dt
                             WHERE dt.object_type OPERATOR(pg_catalog.=) 'trigger'
                               AND dt.address_names OPERATOR(pg_catalog.=)
                                   ARRAY[p.schema_name::pg_catalog.text, p.table_name::pg_catalog.text, 'cv_protect'])
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                                 WHERE t.tgrelid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
                                   AND t.tgname OPERATOR(pg_catalog.=) 'cv_protect')
    LOOP
        PERFORM customer_vault._build_protect_trigger(r.relid);
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._forget_dropped() IS
    'internal: event trigger removing protected_columns rows of dropped tables and columns, and remaking the protect trigger of a table that lost one';
--@ schema
CREATE EVENT TRIGGER customer_vault_forget_dropped ON sql_drop
    EXECUTE FUNCTION customer_vault._forget_dropped();
--@ code

-- The row context of a protected value: the column's binding followed by the
-- canonical text of the row's context column (independent of DateStyle,
-- TimeZone and every other setting).  The one builder: the protect trigger
-- uses the same C code; the rewrite, reencrypt and the decrypted view call
-- this.  STRICT: a NULL context value gives NULL, which _seal_column and
-- _open_column refuse for a non-NULL value.
CREATE OR REPLACE FUNCTION customer_vault._row_context(binding text, value anyelement) RETURNS text
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_row_context';
COMMENT ON FUNCTION customer_vault._row_context(text, anyelement) IS
    'internal: the row context a protected value is bound to (binding || canonical text of the context value)';

CREATE OR REPLACE FUNCTION customer_vault._context_type_supported(typ regtype) RETURNS boolean
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_context_type_supported';
COMMENT ON FUNCTION customer_vault._context_type_supported(regtype) IS
    'internal: whether a column of this type can be the context column of a protected column';
GRANT EXECUTE ON FUNCTION customer_vault._row_context(text, anyelement),
    customer_vault._context_type_supported(regtype)
    TO customer_vault_admin, customer_vault_reader;

CREATE OR REPLACE FUNCTION customer_vault._check_key(key_name text) RETURNS void
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_check_key';
COMMENT ON FUNCTION customer_vault._check_key(text) IS
    'internal: raises an error unless the named key exists';

-- Not STRICT: a NULL context must be an error, never a NULL result (data loss).
CREATE OR REPLACE FUNCTION customer_vault._seal_column(plaintext text, key_name text, context text)
    RETURNS text
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_seal_column';
COMMENT ON FUNCTION customer_vault._seal_column(text, text, text) IS
    'internal: the envelope a protected column stores, used by the conversion rewrite';

CREATE OR REPLACE FUNCTION customer_vault._open_column(value text, context text) RETURNS text
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_open_column';
COMMENT ON FUNCTION customer_vault._open_column(text, text) IS
    'decrypts a protected column''s value (what <table>_decrypted shows); NULL when its key was shredded';

CREATE OR REPLACE FUNCTION customer_vault._protect_trigger() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'cv_protect_trigger';
COMMENT ON FUNCTION customer_vault._protect_trigger() IS
    'internal: BEFORE ROW trigger that seals plaintext written to a protected column';

CREATE OR REPLACE FUNCTION customer_vault._reseal(value customer_vault.encrypted_text, context text)
    RETURNS customer_vault.encrypted_text
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_reseal';
CREATE OR REPLACE FUNCTION customer_vault._reseal(value customer_vault.encrypted_bytea, context text)
    RETURNS customer_vault.encrypted_bytea
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_reseal';
CREATE OR REPLACE FUNCTION customer_vault._reseal(value text, context text, text_form boolean)
    RETURNS text
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_reseal';
COMMENT ON FUNCTION customer_vault._reseal(customer_vault.encrypted_text, text) IS
    'internal: the value under the active version of its key (reencrypt)';
COMMENT ON FUNCTION customer_vault._reseal(customer_vault.encrypted_bytea, text) IS
    'internal: the value under the active version of its key (reencrypt)';
COMMENT ON FUNCTION customer_vault._reseal(text, text, boolean) IS
    'internal: a protected column''s value under the active version of its key (reencrypt)';

CREATE OR REPLACE FUNCTION customer_vault._needs_reseal(value customer_vault.encrypted_text, text_form boolean DEFAULT false)
    RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_needs_reseal';
CREATE OR REPLACE FUNCTION customer_vault._needs_reseal(value customer_vault.encrypted_bytea, text_form boolean DEFAULT false)
    RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_needs_reseal';
CREATE OR REPLACE FUNCTION customer_vault._needs_reseal(value text, text_form boolean)
    RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_needs_reseal';
COMMENT ON FUNCTION customer_vault._needs_reseal(customer_vault.encrypted_text, boolean) IS
    'internal: whether a value is under an older version of its key';
COMMENT ON FUNCTION customer_vault._needs_reseal(customer_vault.encrypted_bytea, boolean) IS
    'internal: whether a value is under an older version of its key';
COMMENT ON FUNCTION customer_vault._needs_reseal(text, boolean) IS
    'internal: whether a protected column''s value is under an older version of its key';

-- The schema and name of a table, refusing anything that is not a table.
CREATE OR REPLACE FUNCTION customer_vault._table_names(tbl regclass, OUT nsp name, OUT rel name)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind "char";
BEGIN
    SELECT n.nspname, c.relname, c.relkind INTO nsp, rel, kind
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = tbl;
    IF kind IS NULL OR kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type', MESSAGE = pg_catalog.format('%s is not a table', tbl);
    END IF;
    -- the extension's own tables (the ledger, the key ring, the evidence) and
    -- the system catalogs are never protected, purged or put under a policy
    IF nsp IN ('customer_vault', 'pg_catalog', 'information_schema', 'pg_toast') THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('table %s belongs to %s and cannot be a target', tbl,
                                        CASE WHEN nsp = 'customer_vault' THEN 'customer_vault' ELSE 'the system catalogs' END),
            HINT = 'customer_vault protects, purges and polices application tables only.';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._table_names(regclass) IS
    'internal: schema and name of an ordinary or partitioned table, or an error';

-- The type of a column of a table; an error naming it ("<what> x of table t") when missing.
CREATE OR REPLACE FUNCTION customer_vault._column_type(tbl regclass, col name, what text DEFAULT 'column')
    RETURNS regtype
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regtype;
BEGIN
    SELECT a.atttypid::regtype INTO t FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF t IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_column',
            MESSAGE = pg_catalog.format('%s %I of table %s does not exist', what, col, tbl);
    END IF;
    RETURN t;
END
$$;
COMMENT ON FUNCTION customer_vault._column_type(regclass, name, text) IS
    'internal: the type of a table column, or an error naming what is missing';

-- The binding of a column: its qualified name as the table is named now,
-- length-prefixed (what protect_column seals its values to).
CREATE OR REPLACE FUNCTION customer_vault._binding_of(tbl regclass, col name) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.length(q)::pg_catalog.text OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) q
      FROM (SELECT pg_catalog.format('%I.%I.%I', n.nspname, c.relname, col) AS q
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
             WHERE c.oid OPERATOR(pg_catalog.=) tbl) x
$$;
COMMENT ON FUNCTION customer_vault._binding_of(regclass, name) IS
    'internal: the binding of a table column under its current qualified name';

-- The arguments of a trigger (pg_trigger.tgargs: each one NUL-terminated).
CREATE OR REPLACE FUNCTION customer_vault._trigger_args(args bytea) RETURNS text[]
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    res text[] := '{}';
    s integer := 0;
    i integer;
BEGIN
    FOR i IN 0 .. pg_catalog.length(args) OPERATOR(pg_catalog.-) 1 LOOP
        IF pg_catalog.get_byte(args, i) OPERATOR(pg_catalog.=) 0 THEN
            res := res OPERATOR(pg_catalog.||) pg_catalog.convert_from(
                       pg_catalog.substring(args, s OPERATOR(pg_catalog.+) 1, i OPERATOR(pg_catalog.-) s),
                       pg_catalog.current_setting('server_encoding'));
            s := i OPERATOR(pg_catalog.+) 1;
        END IF;
    END LOOP;
    RETURN res;
END
$$;
COMMENT ON FUNCTION customer_vault._trigger_args(bytea) IS
    'internal: the arguments of a trigger as text';

-- (Re)makes the one protect trigger of a table, cv_protect, from its registry
-- rows (never from a caller's arguments): drops the table's per-column
-- triggers of older versions (cv_protect_<attnum>) and its cv_protect, then
-- creates cv_protect BEFORE INSERT OR UPDATE FOR EACH ROW (every UPDATE: an
-- owner's earlier BEFORE trigger may change a column the statement does not
-- set; the trigger compares NEW with OLD) WHEN (ROW(NEW.<every protected,
-- context and blind index column>) IS NULL OR true) with the mark
-- 'cv_protect_table' and six arguments per protected column still in the
-- table, in column order (column, key, binding, context column, blind index
-- column, blind index bits; '' for none, bits '' for a column protected by
-- 0.1.0), or no trigger when none is left.  The WHEN clause is always true
-- (PostgreSQL folds it to a constant once per statement); it names the
-- columns, as the UPDATE OF list of older versions did, so that the trigger
-- recognises them (PostgreSQL keeps the clause through renames and maps it
-- onto partitions), their type cannot change, and dropping one of them
-- (CASCADE) drops the trigger, which the sql_drop event trigger then remakes
-- for the columns left.  Run as the extension's owner only (protect_column,
-- the sql_drop event trigger, the update); granted to nobody.
CREATE OR REPLACE FUNCTION customer_vault._build_protect_trigger(tbl regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    args text;
    cols text;
BEGIN
    -- a partition of a protected partitioned table has its parent's
    -- cv_protect (a clone): its own columns are protected on the parent
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl AND t.tgname OPERATOR(pg_catalog.=) 'cv_protect'
                  AND t.tgparentid OPERATOR(pg_catalog.<>) 0::pg_catalog.oid) THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = pg_catalog.format('table %s is a partition of a table with protected columns', tbl),
            HINT = 'Protect the column on the partitioned table.';
    END IF;
    FOR r IN SELECT t.tgname FROM pg_catalog.pg_trigger t
              WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl
                AND t.tgfoid OPERATOR(pg_catalog.=) 'customer_vault._protect_trigger()'::pg_catalog.regprocedure
                AND NOT t.tgisinternal
                AND t.tgparentid OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                AND (t.tgname OPERATOR(pg_catalog.=) 'cv_protect'
                     OR t.tgname::pg_catalog.text OPERATOR(pg_catalog.~) '^cv_protect_[0-9]+$')
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', r.tgname, tbl);
    END LOOP;
    SELECT pg_catalog.string_agg(pg_catalog.format('%L, %L, %L, %L, %L, %L', p.column_name, p.key_name, p.binding,
                                                   COALESCE(p.context_column, ''), COALESCE(p.blind_index_column, ''),
                                                   COALESCE(p.blind_index_bits::pg_catalog.text, '')),
                                 ', ' ORDER BY a.attnum)
      INTO args
      FROM customer_vault.protected_columns p
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
       AND a.attname OPERATOR(pg_catalog.=) p.column_name AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
     WHERE p.relid OPERATOR(pg_catalog.=) tbl;
    -- the columns the WHEN clause names: every protected, context and blind index column once
    SELECT pg_catalog.string_agg('NEW.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
      INTO cols
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
       AND a.attname OPERATOR(pg_catalog.=) ANY (
             SELECT u.c FROM customer_vault.protected_columns p
              CROSS JOIN LATERAL pg_catalog.unnest(ARRAY[p.column_name, p.context_column, p.blind_index_column]) u(c)
              WHERE p.relid OPERATOR(pg_catalog.=) tbl AND u.c IS NOT NULL);
    IF args IS NOT NULL THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER cv_protect BEFORE INSERT OR UPDATE ON %s FOR EACH ROW'
                                  ' WHEN (ROW(%s) IS NULL OR true)'
                                  ' EXECUTE FUNCTION customer_vault._protect_trigger(%L, %s)',
                                  tbl, cols, 'cv_protect_table', args);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._build_protect_trigger(regclass) IS
    'internal, as the extension owner: (re)makes the one protect trigger of a table from its protected_columns rows';

-- Every trigger calling _protect_trigger (but the clones a trigger on a
-- partitioned table has on its partitions), its arguments (one row per
-- protected column: the per-table trigger cv_protect of 0.5.0 gives one row
-- per group of six arguments after its mark), and whether it is what
-- protect_column makes: on an ordinary or partitioned table, named
-- cv_protect_<attnum> (before 0.5.0) or cv_protect, for a text column, with
-- the binding of that column under the table's current name (a trigger with
-- any other binding computes another column's blind index for whatever is
-- written to it).
CREATE OR REPLACE FUNCTION customer_vault._protect_triggers()
    RETURNS TABLE (trigger_oid oid, relid oid, trigger_name name, column_name text, key_name text,
                   binding text, context_column text, blind_index_column text, blind_index_bits text,
                   checks_out boolean)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.oid, t.tgrelid, t.tgname, g.a[1], g.a[2], g.a[3], NULLIF(g.a[4], ''), NULLIF(g.a[5], ''), NULLIF(g.a[6], ''),
           COALESCE(c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::"char"[])
                    AND pg_catalog.array_length(g.a, 1) OPERATOR(pg_catalog.>=) 5
                    AND att.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.text'::pg_catalog.regtype
                    AND t.tgname::pg_catalog.text OPERATOR(pg_catalog.=)
                        CASE WHEN g.table_form THEN 'cv_protect' ELSE 'cv_protect_' OPERATOR(pg_catalog.||) att.attnum END
                    AND g.a[3] OPERATOR(pg_catalog.=) customer_vault._binding_of(c.oid, g.a[1]::name), false)
      FROM pg_catalog.pg_trigger t
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
     CROSS JOIN LATERAL (SELECT customer_vault._trigger_args(t.tgargs) AS a) ga
     CROSS JOIN LATERAL (
            -- the per-column form: its arguments; the per-table form: each group of six
            SELECT ga.a AS a, false AS table_form
             WHERE ga.a[1] IS DISTINCT FROM 'cv_protect_table'
            UNION ALL
            SELECT ga.a[i OPERATOR(pg_catalog.+) 1 : i OPERATOR(pg_catalog.+) 6], true
              FROM pg_catalog.generate_series(1, pg_catalog.cardinality(ga.a) OPERATOR(pg_catalog.-) 6, 6) i
             WHERE ga.a[1] OPERATOR(pg_catalog.=) 'cv_protect_table'
               AND (pg_catalog.cardinality(ga.a) OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog.%) 6 OPERATOR(pg_catalog.=) 0) g
      LEFT JOIN pg_catalog.pg_attribute att ON att.attrelid OPERATOR(pg_catalog.=) t.tgrelid
       AND att.attname OPERATOR(pg_catalog.=) g.a[1] AND att.attnum OPERATOR(pg_catalog.>) 0 AND NOT att.attisdropped
     WHERE t.tgfoid OPERATOR(pg_catalog.=) 'customer_vault._protect_trigger()'::pg_catalog.regprocedure
       AND NOT t.tgisinternal
       AND t.tgparentid OPERATOR(pg_catalog.=) 0::pg_catalog.oid  -- not the clones on partitions
$$;
COMMENT ON FUNCTION customer_vault._protect_triggers() IS
    'internal: every trigger calling _protect_trigger, its arguments and whether it is one protect_column makes for its table';

-- (Re)creates <table>_decrypted: every column, protected ones decrypted.  Runs
-- as the extension's owner (called by _refresh_decrypted_view, a C function
-- that first checks that its caller owns the table), so the view belongs to a
-- role no person logs in as; granted to nobody.  caller: the role that asked,
-- whose own earlier view of that name may be replaced.
CREATE OR REPLACE FUNCTION customer_vault._build_decrypted_view(tbl regclass, caller oid) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    vname text;
    vowner oid;
    cols text;
    opts text := '';
BEGIN
    SELECT n.nspname, c.relname INTO nsp, rel
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    vname := rel OPERATOR(pg_catalog.||) '_decrypted';
    IF pg_catalog.octet_length(vname) OPERATOR(pg_catalog.>) 63 THEN
        RAISE EXCEPTION USING ERRCODE = 'name_too_long',
            MESSAGE = pg_catalog.format('view name %s is too long', pg_catalog.quote_ident(vname)),
            HINT = 'Rename the table to a shorter name.';
    END IF;
    SELECT pg_catalog.string_agg(
             CASE WHEN p.column_name IS NULL THEN pg_catalog.format('t.%I', a.attname)
                  WHEN p.context_column IS NULL THEN
                    pg_catalog.format('customer_vault._open_column(t.%I, %L) AS %I',
                                      a.attname, p.binding, a.attname)
                  ELSE
                    pg_catalog.format('customer_vault._open_column(t.%I, customer_vault._row_context(%L, t.%I)) AS %I',
                                      a.attname, p.binding, p.context_column, a.attname)
             END, ', ' ORDER BY a.attnum)
      INTO cols
      FROM pg_catalog.pg_attribute a
      LEFT JOIN customer_vault.protected_columns p
        ON p.relid OPERATOR(pg_catalog.=) tbl AND p.column_name OPERATOR(pg_catalog.=) a.attname
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    IF pg_catalog.current_setting('server_version_num')::integer OPERATOR(pg_catalog.>=) 150000 THEN
        -- the reader's own table privileges and row-level security apply
        opts := ' WITH (security_invoker = true)';
    END IF;
    PERFORM customer_vault._drop_decrypted_view(nsp, vname, caller);
    EXECUTE pg_catalog.format('CREATE VIEW %I.%I%s AS SELECT %s FROM %I.%I t', nsp, vname, opts, cols, nsp, rel);
    EXECUTE pg_catalog.format('REVOKE ALL ON %I.%I FROM PUBLIC', nsp, vname);
    EXECUTE pg_catalog.format('GRANT SELECT ON %I.%I TO customer_vault_reader', nsp, vname);
END
$$;
COMMENT ON FUNCTION customer_vault._build_decrypted_view(regclass, oid) IS
    'internal, as the extension owner: (re)creates the <table>_decrypted view of a protected table';

-- Drops an existing <table>_decrypted view made by the extension (or by the
-- caller, e.g. under 0.1.0); refuses to touch anybody else's object.
CREATE OR REPLACE FUNCTION customer_vault._drop_decrypted_view(nsp name, vname text, caller oid) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vowner oid;
    vkind "char";
BEGIN
    SELECT c.relowner, c.relkind INTO vowner, vkind
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE n.nspname OPERATOR(pg_catalog.=) nsp AND c.relname OPERATOR(pg_catalog.=) vname;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF vkind OPERATOR(pg_catalog.<>) 'v'
       OR NOT (vowner OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user)
               OR pg_catalog.pg_has_role(caller, vowner, 'USAGE')) THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = pg_catalog.format('relation %I.%I already exists', nsp, vname),
            DETAIL = 'The decrypted view of a protected table takes that name.';
    END IF;
    EXECUTE pg_catalog.format('DROP VIEW %I.%I', nsp, vname);
END
$$;
COMMENT ON FUNCTION customer_vault._drop_decrypted_view(name, text, oid) IS
    'internal, as the extension owner: drops a decrypted view made by the extension or the caller';

CREATE OR REPLACE FUNCTION customer_vault._refresh_decrypted_view(tbl regclass) RETURNS void
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_refresh_decrypted_view';
COMMENT ON FUNCTION customer_vault._refresh_decrypted_view(regclass) IS
    'internal: (re)creates the <table>_decrypted view of a protected table, owned by the extension owner; for the table''s owner';

CREATE OR REPLACE FUNCTION customer_vault._view_refresh_active() RETURNS boolean
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'cv_view_refresh_is_active';
COMMENT ON FUNCTION customer_vault._view_refresh_active() IS
    'internal: whether the extension itself is defining a decrypted view (the guard event trigger lets it)';

-- The one check of DDL on the views the extension manages: the object a DDL
-- command made or changed (a relation, a rule or trigger on one, a type) is
-- refused when it is, or takes the name of, the <table>_decrypted view of a
-- protected table or the <table>_masked view of a protected or masked table
-- (a type of that name blocks the view's row type), unless the extension
-- itself is (re)defining one of its views.  Called by the guard event
-- trigger, which runs as the extension's owner.
CREATE OR REPLACE FUNCTION customer_vault._guard_managed_view(classid oid, objid oid) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    relid oid;
    onsp oid;
    oname name;
    masking boolean := false;
    kind text;
BEGIN
    -- the masking part's flag exists once 75_masking.sql has run (install, update)
    IF pg_catalog.to_regprocedure('customer_vault._mask_view_active()') IS NOT NULL THEN
        EXECUTE 'SELECT customer_vault._mask_view_active()' INTO masking;
    END IF;
    IF customer_vault._view_refresh_active() OR masking THEN
        RETURN;
    END IF;
    -- the schema and name of the object (of the relation of a rule or trigger)
    relid := CASE classid
               WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN objid
               WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
                 (SELECT w.ev_class FROM pg_catalog.pg_rewrite w WHERE w.oid OPERATOR(pg_catalog.=) objid)
               WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN
                 (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid OPERATOR(pg_catalog.=) objid)
             END;
    IF relid IS NOT NULL THEN
        SELECT c.relnamespace, c.relname INTO onsp, oname FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) relid;
    ELSIF classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass THEN
        SELECT t.typnamespace, t.typname INTO onsp, oname FROM pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) objid;
    END IF;
    IF oname IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
                WHERE c.relnamespace OPERATOR(pg_catalog.=) onsp
                  AND (c.relname::pg_catalog.text OPERATOR(pg_catalog.||) '_decrypted') OPERATOR(pg_catalog.=) oname::pg_catalog.text) THEN
        kind := 'decrypted';
    ELSIF pg_catalog.to_regclass('customer_vault.mask_rules') IS NOT NULL THEN
        -- (mask_rules exists once 75_masking.sql has run)
        EXECUTE $q$
            SELECT 'masked' FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) $1
               AND (c.relname::pg_catalog.text OPERATOR(pg_catalog.||) '_masked') OPERATOR(pg_catalog.=) $2::pg_catalog.text
               AND (EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                             WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) c.oid)
                    OR EXISTS (SELECT 1 FROM customer_vault.mask_rules m
                                WHERE m.relid::pg_catalog.oid OPERATOR(pg_catalog.=) c.oid))
             LIMIT 1 $q$ INTO kind USING onsp, oname;
    END IF;
    IF kind OPERATOR(pg_catalog.=) 'decrypted' THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('%I.%I is the decrypted view of a protected table and is managed by customer_vault',
                                        (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid OPERATOR(pg_catalog.=) onsp), oname),
            HINT = 'customer_vault.protect_column() defines it; nobody else may redefine, alter or re-own it, or give its name to another object.';
    ELSIF kind OPERATOR(pg_catalog.=) 'masked' THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('%I.%I is the masked view of a table and is managed by customer_vault',
                                        (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid OPERATOR(pg_catalog.=) onsp), oname),
            HINT = 'customer_vault.mask_column() defines it; nobody else may redefine, alter or re-own it, or give its name to another object.';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._guard_managed_view(oid, oid) IS
    'internal: refuses DDL that alters or takes the name of a <table>_decrypted or <table>_masked view, unless the extension is defining it';

-- Two guards at the end of every DDL command (SECURITY DEFINER: it reads
-- protected_columns whoever runs the DDL):
--  * a protected table, its protected, context and blind index columns and
--    its schema keep their names: the registry, the protect trigger's
--    arguments and the binding the values are sealed to name them, so
--    renames and SET SCHEMA are refused (unprotect, i.e. drop the column or
--    table, to rename);
--  * nobody but the extension defines, alters or re-owns the
--    <table>_decrypted view of a protected table (CREATE OR REPLACE, ALTER,
--    OWNER TO, rules, triggers), nor takes its name with another relation or
--    a type (a composite, enum or domain type of that name blocks the view's
--    row type).
CREATE OR REPLACE FUNCTION customer_vault._guard_decrypted_views() RETURNS event_trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    bad record;
BEGIN
    IF pg_catalog.to_regclass('customer_vault.protected_columns') IS NULL THEN
        RETURN;
    END IF;
    FOR r IN SELECT d.classid, d.objid FROM pg_catalog.pg_event_trigger_ddl_commands() d LOOP
        -- renames and moves of protected tables, their columns and schemas
        IF r.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
           OR r.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass THEN
            SELECT p.schema_name, p.table_name, p.column_name, p.relid INTO bad
              FROM customer_vault.protected_columns p
              JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
              JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
             WHERE CASE WHEN r.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                        THEN c.oid OPERATOR(pg_catalog.=) r.objid
                        ELSE c.relnamespace OPERATOR(pg_catalog.=) r.objid END
               AND (n.nspname OPERATOR(pg_catalog.<>) p.schema_name
                    OR c.relname OPERATOR(pg_catalog.<>) p.table_name
                    OR EXISTS (SELECT 1 FROM pg_catalog.unnest(ARRAY[p.column_name, p.context_column, p.blind_index_column]) u(col)
                                WHERE u.col IS NOT NULL
                                  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                                   WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid
                                                     AND a.attname OPERATOR(pg_catalog.=) u.col
                                                     AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)))
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'object_in_use',
                    MESSAGE = pg_catalog.format('column %I of table %I.%I is protected by customer_vault',
                                                bad.column_name, bad.schema_name, bad.table_name),
                    DETAIL = 'A protected table, its schema, its protected column and that column''s context and blind index columns cannot be renamed or moved to another schema.',
                    HINT = 'Copy the data to a new table and protect the column there.';
            END IF;
        END IF;
        -- renames and moves of tables under a retention policy (the purge
        -- and the holds name them), and of their time and subject columns
        IF (r.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
            OR r.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass)
           AND pg_catalog.to_regclass('customer_vault.retention_policies') IS NOT NULL THEN
            SELECT p.schema_name, p.table_name INTO bad
              FROM customer_vault.retention_policies p
              JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
              JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
             WHERE CASE WHEN r.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                        THEN c.oid OPERATOR(pg_catalog.=) r.objid
                        ELSE c.relnamespace OPERATOR(pg_catalog.=) r.objid END
               AND (n.nspname OPERATOR(pg_catalog.<>) p.schema_name
                    OR c.relname OPERATOR(pg_catalog.<>) p.table_name
                    OR EXISTS (SELECT 1 FROM pg_catalog.unnest(ARRAY[p.time_column, p.subject_column]) u(col)
                                WHERE u.col IS NOT NULL
                                  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                                   WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid
                                                     AND a.attname OPERATOR(pg_catalog.=) u.col
                                                     AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)))
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'object_in_use',
                    MESSAGE = pg_catalog.format('table %I.%I has a retention policy', bad.schema_name, bad.table_name),
                    DETAIL = 'A table under a retention policy, its schema, and its time and subject columns cannot be renamed or moved to another schema.',
                    HINT = 'Drop its policy with customer_vault.drop_retention(), rename, then call set_retention() again.';
            END IF;
        END IF;
        -- <table>_decrypted and <table>_masked views (one check for both)
        PERFORM customer_vault._guard_managed_view(r.classid, r.objid);
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._guard_decrypted_views() IS
    'internal: event trigger refusing renames of protected tables and columns, and DDL on decrypted views (or their names) other than the extension''s own';
--@ schema
CREATE EVENT TRIGGER customer_vault_guard_decrypted_views ON ddl_command_end
    EXECUTE FUNCTION customer_vault._guard_decrypted_views();
--@ code

-- Registers a column about to be protected and drops its table's earlier
-- decrypted view; a C function that checks its caller owns the table, then
-- calls _register_protection_as_owner as the extension's owner.
CREATE OR REPLACE FUNCTION customer_vault._register_protection(tbl regclass, col name, key_name text,
                                                               context_column name, blind_index_column name,
                                                               blind_index_bits integer)
    RETURNS void
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_register_protection';
COMMENT ON FUNCTION customer_vault._register_protection(regclass, name, text, name, name, integer) IS
    'internal: records a column protect_column is converting (the binding from the table''s current name); for the table''s owner';

CREATE OR REPLACE FUNCTION customer_vault._register_protection_as_owner(tbl regclass, col name, key_name text,
                                                                        context_column name, blind_index_column name,
                                                                        blind_index_bits integer, caller oid)
    RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
BEGIN
    SELECT t.nsp, t.rel INTO nsp, rel FROM customer_vault._table_names(tbl) t;
    PERFORM customer_vault._column_type(tbl, col);
    PERFORM customer_vault._check_key(key_name);
    IF blind_index_column IS NOT NULL AND (blind_index_bits IS NULL
            OR blind_index_bits OPERATOR(pg_catalog.<) 1 OR blind_index_bits OPERATOR(pg_catalog.>) 256) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'blind_index_bits must be between 1 and 256';
    END IF;
    IF EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                WHERE p.relid OPERATOR(pg_catalog.=) tbl AND p.column_name OPERATOR(pg_catalog.=) col) THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = pg_catalog.format('column %I of table %s is already protected', col, tbl);
    END IF;
    PERFORM customer_vault._drop_decrypted_view(nsp, rel OPERATOR(pg_catalog.||) '_decrypted', caller);
    -- the masked view depends on the columns being rewritten too (MASK)
    PERFORM customer_vault._drop_masked_view(tbl);
    INSERT INTO customer_vault.protected_columns
        (schema_name, table_name, column_name, key_name, binding, context_column, blind_index_column,
         blind_index_bits, relid)
    VALUES (nsp, rel, col, key_name, customer_vault._binding_of(tbl, col),
            context_column, blind_index_column,
            CASE WHEN blind_index_column IS NOT NULL THEN blind_index_bits END, tbl);
END
$$;
COMMENT ON FUNCTION customer_vault._register_protection_as_owner(regclass, name, text, name, name, integer, oid) IS
    'internal, as the extension owner: the protected_columns row of a column being protected';

-- Creates the protect trigger (from the registry row, never from the caller's
-- arguments), the blind index's btree index with planner statistics off, and
-- the decrypted view: as the extension's owner, for the table's owner.
CREATE OR REPLACE FUNCTION customer_vault._finish_protection(tbl regclass, col name) RETURNS void
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_finish_protection';
COMMENT ON FUNCTION customer_vault._finish_protection(regclass, name) IS
    'internal: trigger, blind index and decrypted view of a column protect_column converted; for the table''s owner';

CREATE OR REPLACE FUNCTION customer_vault._finish_protection_as_owner(tbl regclass, col name, caller oid)
    RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p customer_vault.protected_columns;
    bind text;
    citus_table boolean := false;
    args text[];
BEGIN
    PERFORM customer_vault._table_names(tbl);
    SELECT pc.* INTO p
      FROM customer_vault.protected_columns pc
     WHERE pc.relid OPERATOR(pg_catalog.=) tbl AND pc.column_name OPERATOR(pg_catalog.=) col;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = pg_catalog.format('column %I of table %s is not protected', col, tbl);
    END IF;
    -- the binding of the table as it is named now, never the row's
    bind := customer_vault._binding_of(tbl, col);
    IF bind OPERATOR(pg_catalog.<>) p.binding THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = pg_catalog.format('the registry row of column %I of table %s does not match the table', col, tbl);
    END IF;
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1)'
           INTO citus_table USING tbl;
    END IF;
    -- the table's one protect trigger, remade with this column in it
    PERFORM customer_vault._build_protect_trigger(tbl);
    IF p.blind_index_column IS NOT NULL THEN
        EXECUTE pg_catalog.format('CREATE INDEX ON %s (%I)', tbl, p.blind_index_column);
        -- no planner statistics: their most common values and estimates would
        -- tell how many rows (RLS-hidden ones too) share a guessed value.
        -- Citus does not propagate SET STATISTICS: on a Citus table it is set
        -- on the coordinator's table (shards made later copy it), the
        -- existing shards are left to the DBA (README)
        IF citus_table THEN
            PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
        END IF;
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 0',
                                  tbl, p.blind_index_column);
        IF citus_table THEN
            PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'on', true);
        END IF;
    END IF;
    -- a Citus table (protect_column did not rewrite it): its shards are
    -- converted now that the trigger is on every shard, each step as the
    -- table's owner (_maint_run), run by Citus on every shard in this
    -- transaction: the trigger seals every plaintext (and fills the blind
    -- index); a rewrite leaves the dead plaintext rows behind in the old
    -- files (removed at commit), without the trigger (PostgreSQL alters no
    -- type of a column a trigger names; the shards stay locked by the
    -- rewrite until commit), then the trigger again and the CHECK that
    -- every value is sealed
    IF citus_table THEN
        args := ARRAY[p.column_name::text, p.key_name, p.binding, p.context_column::text, p.blind_index_column::text,
                      (SELECT a.attnum::text FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) p.column_name
                          AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)];
        PERFORM customer_vault._maint_run('protect_seal', tbl, args);
        EXECUTE pg_catalog.format('DROP TRIGGER cv_protect ON %s', tbl);
        PERFORM customer_vault._maint_run('protect_rewrite', tbl, args);
        PERFORM customer_vault._build_protect_trigger(tbl);
        PERFORM customer_vault._maint_run('protect_check', tbl, args);
    END IF;
    PERFORM customer_vault._build_decrypted_view(tbl, caller);
    -- and <table>_masked, when the table has masking rules (MASK)
    IF EXISTS (SELECT 1 FROM customer_vault.mask_rules m WHERE m.relid OPERATOR(pg_catalog.=) tbl) THEN
        PERFORM customer_vault._build_masked_view(tbl);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._finish_protection_as_owner(regclass, name, oid) IS
    'internal, as the extension owner: trigger, blind index and decrypted view of a protected column';

CREATE OR REPLACE FUNCTION customer_vault.protect_column(tbl regclass, col name, key_name text,
                                              context_column name DEFAULT NULL,
                                              blind_index_column name DEFAULT NULL,
                                              blind_index_bits integer DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    coltype regtype;
    colnum smallint;
    ctxtype regtype;
    bidxtype regtype;
    bind text;
    citus_table boolean := false;
    distcol name;
    gen record;
    owner_id oid;
    ext_owner_id oid;
    caller_id oid;
BEGIN
    IF tbl IS NULL OR col IS NULL OR key_name IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'table, column and key name must not be null';
    END IF;
    SELECT t.nsp, t.rel INTO nsp, rel FROM customer_vault._table_names(tbl) t;
    -- the rewrite runs as the table's owner: only for the owner (or a member)
    IF NOT pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl), 'USAGE') THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('must be owner of table %s', tbl);
    END IF;
    coltype := customer_vault._column_type(tbl, col);
    SELECT a.attnum INTO colnum FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) col;
    IF coltype NOT IN ('text'::regtype, 'character varying'::regtype) THEN
        RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
            MESSAGE = pg_catalog.format('column %I of table %s is of type %s', col, tbl, coltype),
            HINT = 'protect_column() converts text and varchar columns; use encrypt() with an encrypted_text or encrypted_bytea column otherwise.';
    END IF;
    IF EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                WHERE p.relid OPERATOR(pg_catalog.=) tbl AND p.column_name OPERATOR(pg_catalog.=) col) THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = pg_catalog.format('column %I of table %s is already protected', col, tbl),
            HINT = 'Use customer_vault.rotate_key() and customer_vault.reencrypt() to change its key version.';
    END IF;
    -- one trigger seals every protected column of a row from the row as
    -- written: no protected column is the context or blind index of another
    IF EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                WHERE p.relid OPERATOR(pg_catalog.=) tbl
                  AND (col OPERATOR(pg_catalog.=) ANY (ARRAY[p.context_column, p.blind_index_column])
                       OR p.column_name OPERATOR(pg_catalog.=) ANY (ARRAY[protect_column.context_column,
                                                                          protect_column.blind_index_column])
                       OR p.blind_index_column OPERATOR(pg_catalog.=) ANY (ARRAY[protect_column.context_column,
                                                                                 protect_column.blind_index_column]))) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('column %I of table %s cannot be protected with these columns', col, tbl),
            DETAIL = 'A protected column cannot be the context column or the blind index column of another, and two protected columns cannot share a blind index column.';
    END IF;
    -- a Citus table: converted shard by shard by Citus (_finish_protection),
    -- in this transaction: the protect trigger on every shard seals the
    -- existing rows, a rewrite of every shard drops the plaintext's old files
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1)'
           INTO citus_table USING tbl;
    END IF;
    IF citus_table THEN
        -- the distribution column decides where a row lives: it stays plaintext
        EXECUTE 'SELECT pg_catalog.column_to_column_name(d.logicalrelid, d.partkey) FROM pg_catalog.pg_dist_partition d'
                ' WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1 AND d.partkey IS NOT NULL'
           INTO distcol USING tbl;
        IF distcol OPERATOR(pg_catalog.=) ANY (ARRAY[col, blind_index_column]) THEN
            RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                MESSAGE = pg_catalog.format('column %I is the distribution column of table %s', distcol, tbl),
                HINT = 'Protect another column; the distribution column can be its context column.';
        END IF;
        -- the rows are in the shards; rows left in the coordinator's own table
        -- (create_distributed_table copies them and keeps them) would stay
        -- plaintext there
        IF pg_catalog.pg_relation_size(tbl) OPERATOR(pg_catalog.>) 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = pg_catalog.format('the coordinator''s local table of %s still holds data', tbl),
                DETAIL = 'create_distributed_table copied the rows to the shards and left them in the local table, where they would stay plaintext.',
                HINT = pg_catalog.format('Run SELECT truncate_local_data_after_distributing_table(%L) first.', tbl::text);
        END IF;
        -- one role for every shard: Citus refuses to touch a shard as a second
        -- role once another changed it in the transaction ("modified in this
        -- transaction by a different user", or a distributed deadlock on its
        -- locks), and the conversion makes the trigger as the extension's
        -- owner, rewrites the rows as the table's owner (never as anyone
        -- else: the owner's triggers and index expressions run) and adds the
        -- blind index column as the caller; refused before any change unless
        -- all three are the same role (CITUS14)
        SELECT c.relowner, e.extowner INTO owner_id, ext_owner_id
          FROM pg_catalog.pg_class c, pg_catalog.pg_extension e
         WHERE c.oid OPERATOR(pg_catalog.=) tbl AND e.extname OPERATOR(pg_catalog.=) 'customer_vault';
        SELECT r.oid INTO caller_id FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER;
        IF owner_id OPERATOR(pg_catalog.<>) ext_owner_id OR owner_id OPERATOR(pg_catalog.<>) caller_id THEN
            RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                MESSAGE = pg_catalog.format('cannot protect a column of distributed table %s owned by role %s as role %s',
                                            tbl, owner_id::regrole, caller_id::regrole),
                DETAIL = pg_catalog.format('On Citus the shards are converted in one transaction by the extension''s owner (%s, the protect trigger) and the table''s owner (the rewrite), and Citus cannot run one transaction''s commands on a shard as two roles; only the extension''s owner protecting a table it owns converts it.',
                                           ext_owner_id::regrole),
                HINT = 'Protect the column before distributing the table: protect_column() on the local table, then SET citus.enable_unsafe_triggers = on and create_distributed_table() as a superuser.';
        END IF;
        -- the protect trigger goes to every shard (Citus copies triggers of
        -- distributed tables only with this on; for this call only)
        PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    PERFORM customer_vault._check_key(key_name);
    -- a generated column is computed after BEFORE row triggers (NULL there on
    -- INSERT, its new value unseen on UPDATE): cv_protect cannot seal it, bind
    -- to it or fill it
    SELECT u.what, u.c INTO gen
      FROM (VALUES (col, 'column'), (context_column, 'context column'), (blind_index_column, 'blind index column')) u(c, what)
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) u.c
                                    AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
     WHERE a.attgenerated OPERATOR(pg_catalog.<>) ''
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = pg_catalog.format('%s %I of table %s is a generated column', gen.what, gen.c, tbl),
            DETAIL = 'Generated columns are computed after BEFORE row triggers, so the protect trigger would see the old value or NULL.',
            HINT = 'Use an ordinary column (filled by the application or a DEFAULT) as the context, protected or blind index column.';
    END IF;
    IF context_column IS NOT NULL THEN
        ctxtype := customer_vault._column_type(tbl, context_column, 'context column');
        IF context_column OPERATOR(pg_catalog.=) col THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'the context column must differ from the protected column',
                HINT = 'Use a stable row identifier such as the customer id.';
        END IF;
        IF NOT customer_vault._context_type_supported(ctxtype) THEN
            RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
                MESSAGE = pg_catalog.format('context column %I of table %s is of type %s', context_column, tbl, ctxtype),
                HINT = 'A context column is of type smallint, integer, bigint, numeric, uuid, text, varchar, char(n), inet, date or timestamptz.';
        END IF;
    END IF;
    IF blind_index_bits IS NOT NULL AND blind_index_column IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'blind_index_bits needs a blind_index_column';
    END IF;
    IF blind_index_bits OPERATOR(pg_catalog.<) 1 OR blind_index_bits OPERATOR(pg_catalog.>) 256 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'blind_index_bits must be between 1 and 256',
            HINT = 'Fewer bits make each index value stand for more plaintexts (16 to 32 for low-entropy columns).';
    END IF;
    IF blind_index_column IS NOT NULL THEN
        IF blind_index_column OPERATOR(pg_catalog.=) col OR blind_index_column OPERATOR(pg_catalog.=) context_column THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'the blind index column must be a column of its own';
        END IF;
        SELECT a.atttypid::regtype INTO bidxtype
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) blind_index_column
           AND NOT a.attisdropped AND a.attnum OPERATOR(pg_catalog.>) 0;
        IF FOUND AND bidxtype OPERATOR(pg_catalog.<>) 'bytea'::regtype THEN
            RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
                MESSAGE = pg_catalog.format('blind index column %I of table %s must be of type bytea', blind_index_column, tbl);
        END IF;
    END IF;

    EXECUTE pg_catalog.format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE', nsp, rel);
    -- the registry row (and the binding: the column's qualified name now,
    -- length-prefixed) is written by the extension's owner; the earlier
    -- <table>_decrypted view depends on the columns being rewritten and goes
    PERFORM customer_vault._register_protection(tbl, col, key_name, context_column, blind_index_column,
                                                COALESCE(blind_index_bits, 256));
    SELECT p.binding INTO bind FROM customer_vault.protected_columns p
     WHERE p.relid OPERATOR(pg_catalog.=) tbl AND p.column_name OPERATOR(pg_catalog.=) col;
    IF blind_index_column IS NOT NULL AND bidxtype IS NULL THEN
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I ADD COLUMN %I bytea', nsp, rel, blind_index_column);
    END IF;

    IF citus_table THEN
        -- a varchar column becomes text first (the protect trigger seals text);
        -- the rows are sealed by _finish_protection once the trigger is there
        IF coltype OPERATOR(pg_catalog.<>) 'text'::regtype THEN
            PERFORM customer_vault._maint_run('protect_rewrite', tbl,
                ARRAY[col::text, key_name, bind, context_column::text, blind_index_column::text, colnum::text]);
        END IF;
    ELSE
        -- one table rewrite: ciphertext replaces plaintext in new files, the old
        -- files (plaintext) are removed at commit, no dead tuples are left behind;
        -- changing the blind index column's type also drops its old statistics.
        -- It runs as the table's owner, security-restricted (_maint_run), so the
        -- owner's CHECK constraints and index expressions evaluated by it run
        -- with the owner's rights, not the caller's.
        PERFORM customer_vault._maint_run('protect', tbl,
            ARRAY[col::text, key_name, bind, context_column::text, blind_index_column::text, colnum::text]);
    END IF;

    PERFORM customer_vault._finish_protection(tbl, col);
END
$$;
COMMENT ON FUNCTION customer_vault.protect_column(regclass, name, text, name, name, integer) IS
    'encrypts a text column in place (one table rewrite) and seals every later INSERT/UPDATE; creates <table>_decrypted; blind_index_bits truncates the blind index';

-- The blind index of a guess for a protected column: a read right (readers).
CREATE OR REPLACE FUNCTION customer_vault.column_blind_index(tbl regclass, col name, plaintext text) RETURNS bytea
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_column_blind_index';
COMMENT ON FUNCTION customer_vault.column_blind_index(regclass, name, text) IS
    'what the blind index column of a protected column holds for a plaintext (bound to the column, truncated to its bits)';

-- The same for protect_column's rewrite: only for the table's owner.
CREATE OR REPLACE FUNCTION customer_vault._blind_index_rewrite(tbl regclass, col name, plaintext text) RETURNS bytea
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_blind_index_rewrite';
COMMENT ON FUNCTION customer_vault._blind_index_rewrite(regclass, name, text) IS
    'internal: the blind index of a value of a column being protected; for the table''s owner only';

-- Equality search for writers: row identifiers only, every call logged.
-- Not STRICT: a NULL plaintext matches nothing but is logged like any call.
CREATE OR REPLACE FUNCTION customer_vault.lookup(tbl regclass, col name, plaintext text) RETURNS SETOF text
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10
    AS 'MODULE_PATHNAME', 'cv_lookup';
COMMENT ON FUNCTION customer_vault.lookup(regclass, name, text) IS
    'context column values (as text) of the visible rows whose blind index matches a plaintext; logged in blind_index_lookups';
-- The same on a hash-distributed Citus table with the distribution value of
-- the rows sought (any type, cast to the distribution column's type): both
-- of its queries keep the rows holding that value, so Citus sends them to
-- the one shard holding it instead of every shard (CITUS14).
CREATE OR REPLACE FUNCTION customer_vault.lookup(tbl regclass, col name, plaintext text, distribution_value anyelement)
    RETURNS SETOF text
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10
    AS 'MODULE_PATHNAME', 'cv_lookup';
COMMENT ON FUNCTION customer_vault.lookup(regclass, name, text, anyelement) IS
    'lookup() routed to one shard of a hash-distributed Citus table: among the rows whose distribution column equals distribution_value; logged in blind_index_lookups';
--@ schema

CREATE TABLE customer_vault.blind_index_lookups (
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    role_id     oid NOT NULL,
    schema_name name NOT NULL,
    table_name  name NOT NULL,
    column_name name NOT NULL,
    found       bigint NOT NULL
);
--@ code
COMMENT ON TABLE customer_vault.blind_index_lookups IS
    'one row per lookup() call: who searched which protected column, and how many rows matched';

CREATE OR REPLACE VIEW customer_vault.blind_index_lookup_counts AS
    SELECT pg_catalog.pg_get_userbyid(l.role_id) AS role, l.schema_name, l.table_name, l.column_name,
           pg_catalog.count(*) AS calls, pg_catalog.sum(l.found) AS found, pg_catalog.max(l.at) AS last_at
      FROM customer_vault.blind_index_lookups l
     GROUP BY l.role_id, l.schema_name, l.table_name, l.column_name;
COMMENT ON VIEW customer_vault.blind_index_lookup_counts IS
    'lookup() calls per role and protected column';

CREATE OR REPLACE PROCEDURE customer_vault.reencrypt(tbl regclass, col name, batch_size integer DEFAULT 10000,
                                          context_column name DEFAULT NULL)
    LANGUAGE plpgsql
    -- no SET search_path here: a procedure with SET clauses cannot COMMIT;
    -- every name below is schema-qualified instead
AS $$
DECLARE
    n bigint := 0;
    b integer := 0;
    st text;
    msg text;
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'table and column must not be null';
    END IF;
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'batch_size must be at least 1';
    END IF;
    -- the column must be encrypted or protected (an error now, even for an empty table)
    PERFORM customer_vault._maint_sql('reencrypt', tbl, ARRAY[col::pg_catalog.text, context_column::pg_catalog.text]);
    -- block ranges of about batch_size rows, one commit each, as the table's
    -- owner; then the rows that moved or arrived meanwhile; a rerun after an
    -- interruption only finds the values still to do
    CALL customer_vault._walk('reencrypt', tbl, ARRAY[col::pg_catalog.text, context_column::pg_catalog.text], batch_size, false, false, true, false,
                              n, b, st, msg);
END
$$;
COMMENT ON PROCEDURE customer_vault.reencrypt(regclass, name, integer, name) IS
    'moves every value of a column to the active version of its key in committed batches; resumable';

--@ code
-- Privileges of this concern (PUBLIC's few are all in 90_privileges.sql).
GRANT EXECUTE ON FUNCTION
    customer_vault.protect_column(regclass, name, text, name, name, integer),
    customer_vault._check_key(text), customer_vault._seal_column(text, text, text),
    customer_vault._table_names(regclass), customer_vault._column_type(regclass, name, text),
    customer_vault._refresh_decrypted_view(regclass),
    customer_vault._register_protection(regclass, name, text, name, name, integer),
    customer_vault._finish_protection(regclass, name),
    customer_vault._blind_index_rewrite(regclass, name, text),
    customer_vault._reseal(customer_vault.encrypted_text, text),
    customer_vault._reseal(customer_vault.encrypted_bytea, text),
    customer_vault._reseal(text, text, boolean),
    customer_vault._needs_reseal(customer_vault.encrypted_text, boolean),
    customer_vault._needs_reseal(customer_vault.encrypted_bytea, boolean),
    customer_vault._needs_reseal(text, boolean)
    TO customer_vault_admin;
GRANT EXECUTE ON PROCEDURE customer_vault.reencrypt(regclass, name, integer, name) TO customer_vault_admin;
GRANT SELECT ON customer_vault.keys TO customer_vault_admin, customer_vault_auditor;
-- the registry is written by protect_column as the extension's owner only
GRANT SELECT ON customer_vault.protected_columns TO customer_vault_admin, customer_vault_auditor;
GRANT SELECT ON customer_vault.blind_index_lookups, customer_vault.blind_index_lookup_counts
    TO customer_vault_admin, customer_vault_auditor;

-- Computing a blind index for a guess is a read right (it tests guesses
-- against stored values): readers only.  0.1.0 granted it to the writer and
-- the admin, and the admin could write the registry and create protect
-- triggers of its own choosing; taken back here so that updates match.
REVOKE EXECUTE ON FUNCTION customer_vault.blind_index(text, text)
    FROM customer_vault_writer, customer_vault_admin;
REVOKE EXECUTE ON FUNCTION customer_vault._protect_trigger() FROM customer_vault_admin;
REVOKE INSERT, UPDATE, DELETE ON customer_vault.protected_columns FROM customer_vault_admin;

-- the writer stores data and never reads it back; it finds rows by lookup()
GRANT EXECUTE ON FUNCTION customer_vault.lookup(regclass, name, text),
    customer_vault.lookup(regclass, name, text, anyelement) TO customer_vault_writer;
-- the reader decrypts, through the decrypted view too
GRANT EXECUTE ON FUNCTION
    customer_vault._open_column(text, text),
    customer_vault.column_blind_index(regclass, name, text),
    customer_vault.lookup(regclass, name, text),
    customer_vault.lookup(regclass, name, text, anyelement)
    TO customer_vault_reader;
