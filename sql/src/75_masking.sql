--@ code
---------------------------------------------------------------------------
-- Masking by job (src/mask.c): rules per column, <table>_masked for the
-- role customer_vault_masked_reader, masked_copy() for development copies.
---------------------------------------------------------------------------

-- the role of people who may see masks, never plaintext (cluster-wide, like
-- the others), and the role that owns every <table>_masked view: it reads
-- the tables for the masked readers (who need no SELECT on their plaintext),
-- has no members, cannot log in, and row-level security applies to it
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles
                    WHERE rolname OPERATOR(pg_catalog.=) 'customer_vault_masked_reader') THEN
        CREATE ROLE customer_vault_masked_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles
                    WHERE rolname OPERATOR(pg_catalog.=) 'customer_vault_mask_owner') THEN
        CREATE ROLE customer_vault_mask_owner NOLOGIN NOINHERIT;
    END IF;
END
$$;
--@ schema

CREATE TABLE customer_vault.mask_rules (
    relid       regclass NOT NULL,
    column_name name NOT NULL,
    rule        text NOT NULL,
    set_by      oid NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (relid, column_name)
);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.mask_rules', '');
--@ code
COMMENT ON TABLE customer_vault.mask_rules IS
    'masking rules set by mask_column(), in canonical form (''default'': the default of the column''s label); a table with rules has a <table>_masked view';

-- The mask of a protected column's value, from its ciphertext: the rule is
-- the column's own (never the caller's), the context must be the column's.
-- Not STRICT: a NULL context with a value is an error, as in _open_column.
CREATE OR REPLACE FUNCTION customer_vault._mask_sealed(value text, context text, tbl regclass, col name)
    RETURNS text
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_mask_sealed';
COMMENT ON FUNCTION customer_vault._mask_sealed(text, text, regclass, name) IS
    'internal: the mask of a protected column''s value under the column''s rule (what <table>_masked shows); never the plaintext';

CREATE OR REPLACE FUNCTION customer_vault._mask_plain(value text, tbl regclass, col name)
    RETURNS text
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_mask_plain';
COMMENT ON FUNCTION customer_vault._mask_plain(text, regclass, name) IS
    'internal: the mask of a labelled, unencrypted column''s value under the column''s rule; for callers who may select that column';

-- Not STRICT: a NULL rule is an error with a hint; default_key may be NULL.
CREATE OR REPLACE FUNCTION customer_vault._mask_rule(rule text, default_key text)
    RETURNS text
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_mask_rule';
COMMENT ON FUNCTION customer_vault._mask_rule(text, text) IS
    'internal: the canonical text of a masking rule, or an error saying what is wrong';

CREATE OR REPLACE FUNCTION customer_vault._mask_label_rule(label text) RETURNS text
    LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_mask_label_rule';
COMMENT ON FUNCTION customer_vault._mask_label_rule(text) IS
    'internal: the masking rule a column with this label (NULL: none) gets by default; not STRICT: no label is ''null'' (withheld)';

CREATE OR REPLACE FUNCTION customer_vault._mask_view_active() RETURNS boolean
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'cv_mask_view_is_active';
COMMENT ON FUNCTION customer_vault._mask_view_active() IS
    'internal: whether the extension itself is defining a masked view (the guard event trigger lets it)';

CREATE OR REPLACE FUNCTION customer_vault._masked_view_build(tbl regclass) RETURNS void
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_mask_build_view';
COMMENT ON FUNCTION customer_vault._masked_view_build(regclass) IS
    'internal: (re)creates <table>_masked; for the extension''s owner';

-- Not STRICT: NULL arguments are errors with a message of their own.
CREATE OR REPLACE FUNCTION customer_vault._mask_column_set(tbl regclass, col name, rule text) RETURNS text
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_mask_column_set';
COMMENT ON FUNCTION customer_vault._mask_column_set(regclass, name, text) IS
    'internal: records a masking rule and rebuilds <table>_masked as the extension''s owner; for the table''s owner';

-- The select list of <table>_masked and of masked_copy(): protected columns
-- masked from their ciphertext, labelled or ruled columns masked from their
-- text, explicit encrypted_text/encrypted_bytea columns NULL (their context
-- is unknown), blind index columns left out, every other column as it is.
-- SECURITY DEFINER: it reads the registries for masked readers; it returns
-- SQL text built from quoted identifiers and literals only.
CREATE OR REPLACE FUNCTION customer_vault._masked_select_list(tbl regclass) RETURNS text
    LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text;
BEGIN
    PERFORM customer_vault._table_names(tbl);
    IF (SELECT c.relispartition FROM pg_class c WHERE c.oid = tbl) THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
            MESSAGE = format('table %s is a partition', tbl),
            HINT = 'Mask its partitioned table: the masked view of that table covers every partition.';
    END IF;
    SELECT string_agg(
             CASE
               WHEN p.column_name IS NOT NULL THEN
                 format('customer_vault._mask_sealed(t.%I::pg_catalog.text, %s, %s::pg_catalog.regclass, %L::pg_catalog.name) AS %I',
                        a.attname,
                        CASE WHEN p.context_column IS NULL THEN quote_literal(p.binding)
                             ELSE format('customer_vault._row_context(%L, t.%I)', p.binding, p.context_column) END,
                        tbl::oid, a.attname, a.attname)
               WHEN a.atttypid IN ('customer_vault.encrypted_text'::regtype, 'customer_vault.encrypted_bytea'::regtype) THEN
                 format('NULL::%s AS %I', a.atttypid::regtype, a.attname)
               WHEN customer_vault._column_label(tbl, a.attnum) IS NOT NULL OR r.rule IS NOT NULL THEN
                 format('customer_vault._mask_plain(%s, %s::pg_catalog.regclass, %L::pg_catalog.name) AS %I',
                        CASE WHEN a.atttypid = 'date'::regtype THEN format('pg_catalog.to_char(t.%I, ''YYYY-MM-DD'')', a.attname)
                             WHEN a.atttypid IN ('timestamp'::regtype, 'timestamptz'::regtype)
                               THEN format('pg_catalog.to_char(t.%I, ''YYYY-MM-DD HH24:MI:SS'')', a.attname)
                             ELSE format('t.%I::pg_catalog.text', a.attname) END,
                        tbl::oid, a.attname, a.attname)
               ELSE format('t.%I', a.attname)
             END, ', ' ORDER BY a.attnum)
      INTO cols
      FROM pg_attribute a
      LEFT JOIN customer_vault.protected_columns p
        ON p.relid = tbl AND p.column_name = a.attname
      LEFT JOIN customer_vault.mask_rules r
        ON r.relid = tbl AND r.column_name = a.attname
     WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
       -- blind index columns tell which rows share a value: never shown
       AND NOT EXISTS (SELECT 1 FROM customer_vault.protected_columns b
                        WHERE b.relid = tbl AND b.blind_index_column = a.attname);
    IF cols IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('table %s has no column to show', tbl);
    END IF;
    RETURN cols;
END
$$;
COMMENT ON FUNCTION customer_vault._masked_select_list(regclass) IS
    'internal: the select list (over alias t) of <table>_masked and masked_copy()';

-- Drops <table>_masked when the extension made it; refuses anybody else's object.
CREATE OR REPLACE FUNCTION customer_vault._drop_masked_view(tbl regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    vname text;
    vowner oid;
    vkind "char";
    deps text;
BEGIN
    SELECT n.nspname, c.relname OPERATOR(pg_catalog.||) '_masked' INTO nsp, vname
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    SELECT c.relowner, c.relkind INTO vowner, vkind
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE n.nspname OPERATOR(pg_catalog.=) nsp AND c.relname OPERATOR(pg_catalog.=) vname;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- the extension's views: owned by customer_vault_mask_owner (0.4.0: by the extension's owner)
    IF vkind OPERATOR(pg_catalog.<>) 'v'
       OR vowner OPERATOR(pg_catalog.<>) ALL (SELECT r.oid FROM pg_catalog.pg_roles r
                                               WHERE r.rolname OPERATOR(pg_catalog.=) ANY (ARRAY[current_user, 'customer_vault_mask_owner'])) THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = pg_catalog.format('relation %I.%I already exists', nsp, vname),
            DETAIL = 'The masked view of a table takes that name.';
    END IF;
    -- other people's objects over the view (any role may create one) must not
    -- freeze the table's DDL: they are dropped with it, named in a WARNING
    SELECT pg_catalog.string_agg(DISTINCT COALESCE(rw.ev_class::pg_catalog.regclass::pg_catalog.text,
                                                   pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)), ', ')
      INTO deps
      FROM pg_catalog.pg_depend d
      LEFT JOIN pg_catalog.pg_rewrite rw
        ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND rw.oid OPERATOR(pg_catalog.=) d.objid
     WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.refobjid OPERATOR(pg_catalog.=) (pg_catalog.quote_ident(nsp) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(vname))::pg_catalog.regclass::pg_catalog.oid
       AND d.deptype OPERATOR(pg_catalog.=) 'n'
       AND rw.ev_class IS DISTINCT FROM (pg_catalog.quote_ident(nsp) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(vname))::pg_catalog.regclass::pg_catalog.oid;
    IF deps IS NOT NULL THEN
        RAISE WARNING USING MESSAGE = pg_catalog.format('dropping the objects that depend on view %I.%I', nsp, vname),
            DETAIL = pg_catalog.format('The masked view is rebuilt; these objects over it are dropped: %s.', deps),
            HINT = 'Objects over a masked view do not survive a change of its columns; create them again.';
    END IF;
    EXECUTE pg_catalog.format('DROP VIEW %I.%I CASCADE', nsp, vname);
END
$$;
COMMENT ON FUNCTION customer_vault._drop_masked_view(regclass) IS
    'internal, as the extension owner: drops the <table>_masked view the extension made, and (with a WARNING naming them) the objects over it';

-- Pins the rule of every column <table>_masked masks: a column without a
-- rule (or with 'default', as 0.4.0 stored it) gets its label's default now,
-- so that relabelling a column later (its table's owner may, without the
-- admin role) never weakens its mask; only mask_column changes a rule.
CREATE OR REPLACE FUNCTION customer_vault._pin_mask_rules(tbl regclass) RETURNS void
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO customer_vault.mask_rules AS m (relid, column_name, rule, set_by)
    SELECT tbl, a.attname, customer_vault._mask_label_rule(customer_vault._column_label(tbl, a.attnum)),
           (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user)
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
       AND a.atttypid OPERATOR(pg_catalog.<>) ALL (ARRAY['customer_vault.encrypted_text'::pg_catalog.regtype,
                                                         'customer_vault.encrypted_bytea'::pg_catalog.regtype]::pg_catalog.oid[])
       AND NOT EXISTS (SELECT 1 FROM customer_vault.protected_columns b
                        WHERE b.relid OPERATOR(pg_catalog.=) tbl AND b.blind_index_column OPERATOR(pg_catalog.=) a.attname)
       AND (EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                     WHERE p.relid OPERATOR(pg_catalog.=) tbl AND p.column_name OPERATOR(pg_catalog.=) a.attname)
            OR customer_vault._column_label(tbl, a.attnum) IS NOT NULL)
    ON CONFLICT (relid, column_name) DO UPDATE SET rule = EXCLUDED.rule, set_at = pg_catalog.now()
     WHERE m.rule OPERATOR(pg_catalog.=) 'default'
$$;
COMMENT ON FUNCTION customer_vault._pin_mask_rules(regclass) IS
    'internal, as the extension owner: records the label default as the rule of every masked column without one';

-- The masked reader's scope, checked once per query of <table>_masked (a
-- condition without columns): SELECT on every column the view shows as it
-- is (shown), or on some column when it shows none so; so the view gives a
-- masked reader nothing but masks beyond its own rights.
CREATE OR REPLACE FUNCTION customer_vault._masked_scope(tbl regclass, shown name[]) RETURNS boolean
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
    pol name;
BEGIN
    -- the view reads the table as customer_vault_mask_owner: a policy aimed
    -- at particular roles (restrictive or permissive) would be applied for
    -- that role, not for the caller; refused, so the view never shows a row
    -- the caller could not read directly (nor hides one silently)
    SELECT p.polname INTO pol
      FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.polrelid
     WHERE p.polrelid OPERATOR(pg_catalog.=) tbl AND c.relrowsecurity
       AND p.polcmd OPERATOR(pg_catalog.=) ANY (ARRAY['r', '*']::"char"[])
       AND p.polroles OPERATOR(pg_catalog.<>) '{0}'::pg_catalog.oid[]
     ORDER BY p.polname LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = pg_catalog.format('policy %I of table %s applies to particular roles', pol, tbl),
            DETAIL = 'The masked view reads the table as customer_vault_mask_owner, so row-level security policies aimed at roles cannot be applied as they apply to the caller.',
            HINT = 'Make every SELECT policy of the table apply TO PUBLIC and test the role in its expression, e.g. USING (NOT pg_has_role(current_user, ''some_role'', ''MEMBER'') OR region = ''eu'').';
    END IF;
    IF pg_catalog.cardinality(shown) OPERATOR(pg_catalog.=) 0 THEN
        IF NOT pg_catalog.has_any_column_privilege(tbl, 'SELECT') THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = pg_catalog.format('permission denied for table %s', tbl),
                DETAIL = 'A masked reader needs SELECT on some column of the table (its key column, for example).';
        END IF;
        RETURN true;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ' ORDER BY o) INTO missing
      FROM pg_catalog.unnest(shown) WITH ORDINALITY u(c, o)
     WHERE NOT pg_catalog.has_column_privilege(tbl, c::pg_catalog.text, 'SELECT');
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('permission denied for table %s', tbl),
            DETAIL = pg_catalog.format('The masked view shows %s as stored; a masked reader needs SELECT on those columns (never on the masked ones).', missing);
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION customer_vault._masked_scope(regclass, name[]) IS
    'internal: raises 42501 unless the caller may SELECT the columns <table>_masked shows unmasked (or some column when there are none), 0A000 when a SELECT policy of the table applies to particular roles';

-- (Re)creates <table>_masked as the extension's owner, then gives it to
-- customer_vault_mask_owner, which may SELECT the table: the masked reader
-- needs no SELECT on its plaintext columns, its blind index or its
-- ciphertext.  Row-level security applies to customer_vault_mask_owner (no
-- superuser, not the table's owner), with every policy expression
-- (may_process of a consent policy, current_user) evaluated as the caller;
-- a SELECT policy aimed at particular roles makes the view refuse every
-- query (_masked_scope), since it would apply to customer_vault_mask_owner
-- rather than to the caller.  security_barrier: the caller's own conditions run
-- after those.  The caller's scope (_masked_scope): SELECT on the columns the
-- view shows as they are; SELECT for customer_vault_masked_reader only.
CREATE OR REPLACE FUNCTION customer_vault._build_masked_view(tbl regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    vname text;
    cols text;
    shown name[];
    def text;
    replaced boolean := false;
BEGIN
    SELECT t.nsp, t.rel INTO nsp, rel FROM customer_vault._table_names(tbl) t;
    vname := rel OPERATOR(pg_catalog.||) '_masked';
    IF pg_catalog.octet_length(vname) OPERATOR(pg_catalog.>) 63 THEN
        RAISE EXCEPTION USING ERRCODE = 'name_too_long',
            MESSAGE = pg_catalog.format('view name %s is too long', pg_catalog.quote_ident(vname)),
            HINT = 'Rename the table to a shorter name.';
    END IF;
    cols := customer_vault._masked_select_list(tbl);
    PERFORM customer_vault._pin_mask_rules(tbl);
    -- the columns the select list shows as they are (its last branch)
    SELECT COALESCE(pg_catalog.array_agg(a.attname ORDER BY a.attnum), '{}') INTO shown
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
       AND a.atttypid OPERATOR(pg_catalog.<>) ALL (ARRAY['customer_vault.encrypted_text'::pg_catalog.regtype,
                                                         'customer_vault.encrypted_bytea'::pg_catalog.regtype]::pg_catalog.oid[])
       AND NOT EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                        WHERE p.relid OPERATOR(pg_catalog.=) tbl
                          AND a.attname OPERATOR(pg_catalog.=) ANY (ARRAY[p.column_name, p.blind_index_column]))
       AND NOT EXISTS (SELECT 1 FROM customer_vault.mask_rules m
                        WHERE m.relid OPERATOR(pg_catalog.=) tbl AND m.column_name OPERATOR(pg_catalog.=) a.attname)
       AND customer_vault._column_label(tbl, a.attnum) IS NULL;
    def := pg_catalog.format('VIEW %I.%I WITH (security_barrier = true) AS SELECT %s FROM %I.%I t'
                             ' WHERE customer_vault._masked_scope(%s::pg_catalog.regclass, %L::pg_catalog.name[])',
                             nsp, vname, cols, nsp, rel, tbl::pg_catalog.oid, shown::pg_catalog.text);
    -- the extension's own view is replaced in place when its columns allow
    -- (objects over it survive); else dropped (with them) and made again
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class v
                WHERE v.relnamespace OPERATOR(pg_catalog.=) (SELECT c.relnamespace FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl)
                  AND v.relname OPERATOR(pg_catalog.=) vname AND v.relkind OPERATOR(pg_catalog.=) 'v'
                  AND v.relowner OPERATOR(pg_catalog.=) ANY (SELECT r.oid FROM pg_catalog.pg_roles r
                                                              WHERE r.rolname OPERATOR(pg_catalog.=) ANY (ARRAY[current_user, 'customer_vault_mask_owner']))) THEN
        BEGIN
            EXECUTE 'CREATE OR REPLACE ' OPERATOR(pg_catalog.||) def;
            replaced := true;
        -- (55000: in an extension script, the view is no member of the extension)
        EXCEPTION WHEN invalid_table_definition OR datatype_mismatch OR feature_not_supported
                       OR object_not_in_prerequisite_state THEN
            replaced := false;
        END;
    END IF;
    IF NOT replaced THEN
        PERFORM customer_vault._drop_masked_view(tbl);
        EXECUTE 'CREATE ' OPERATOR(pg_catalog.||) def;
    END IF;
    EXECUTE pg_catalog.format('ALTER VIEW %I.%I OWNER TO customer_vault_mask_owner', nsp, vname);
    EXECUTE pg_catalog.format('REVOKE ALL ON %I.%I FROM PUBLIC', nsp, vname);
    EXECUTE pg_catalog.format('GRANT SELECT ON %I.%I TO customer_vault_masked_reader', nsp, vname);
    EXECUTE pg_catalog.format('GRANT SELECT ON %I.%I TO customer_vault_mask_owner', nsp, rel);
END
$$;
COMMENT ON FUNCTION customer_vault._build_masked_view(regclass) IS
    'internal, as the extension owner: (re)creates the <table>_masked view';

-- mask_column's work as the extension's owner (the caller owns the table).
CREATE OR REPLACE FUNCTION customer_vault._mask_column_as_owner(tbl regclass, col name, rule text, caller oid)
    RETURNS text
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    coltype regtype;
    p customer_vault.protected_columns;
    canon text;
BEGIN
    PERFORM customer_vault._table_names(tbl);
    coltype := customer_vault._column_type(tbl, col);
    IF EXISTS (SELECT 1 FROM customer_vault.protected_columns b
                WHERE b.relid = tbl AND b.blind_index_column = col) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('column %I of table %s is a blind index column', col, tbl),
            DETAIL = 'Blind index columns are never shown to masked readers.';
    END IF;
    IF coltype IN ('customer_vault.encrypted_text'::regtype, 'customer_vault.encrypted_bytea'::regtype) THEN
        RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
            MESSAGE = format('column %I of table %s is of type %s', col, tbl, coltype),
            DETAIL = 'Masked readers see NULL for encrypted_text and encrypted_bytea columns, whose context is not known.',
            HINT = 'Protect a text column with protect_column() to mask it.';
    END IF;
    SELECT pc.* INTO p FROM customer_vault.protected_columns pc
     WHERE pc.relid = tbl AND pc.column_name = col;
    IF (SELECT c.relispartition FROM pg_catalog.pg_class c WHERE c.oid = tbl) THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
            MESSAGE = format('table %s is a partition', tbl),
            HINT = 'Mask its partitioned table: the masked view of that table covers every partition.';
    END IF;
    canon := customer_vault._mask_rule(rule, p.key_name);
    -- 'default': the label's default, pinned now (a later relabel does not change it)
    IF canon = 'default' THEN
        canon := customer_vault._mask_label_rule(customer_vault._column_label(tbl,
                     (SELECT a.attnum FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attname = col)));
    END IF;
    INSERT INTO customer_vault.mask_rules AS m (relid, column_name, rule, set_by)
    VALUES (tbl, col, canon, caller)
    ON CONFLICT (relid, column_name)
    DO UPDATE SET rule = EXCLUDED.rule, set_by = EXCLUDED.set_by, set_at = pg_catalog.now();
    PERFORM customer_vault._build_masked_view(tbl);
    RETURN canon;
END
$$;
COMMENT ON FUNCTION customer_vault._mask_column_as_owner(regclass, name, text, oid) IS
    'internal, as the extension owner: records a masking rule and rebuilds <table>_masked';

CREATE OR REPLACE FUNCTION customer_vault.mask_column(tbl regclass, col name, rule text) RETURNS text
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'table and column must not be null';
    END IF;
    RETURN customer_vault._mask_column_set(tbl, col, rule);
END
$$;
COMMENT ON FUNCTION customer_vault.mask_column(regclass, name, text) IS
    'sets the masking rule of a column (''default'': its label''s default) and (re)creates <table>_masked; returns the rule as stored';

-- A masked copy of a table, made by and owned by the caller (a masked
-- reader): what <table>_masked shows the caller (its scope and row-level
-- security), written as plaintext masks; no plaintext of a masked column
-- reaches the copy's files.  A partition is copied through its partitioned
-- table (its own rows would be read without the parent's registry).
CREATE OR REPLACE FUNCTION customer_vault.masked_copy(src regclass, dst name, dst_schema name DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    kind "char";
    part boolean;
    n bigint;
BEGIN
    IF src IS NULL OR dst IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'source table and copy name must not be null';
    END IF;
    SELECT n.nspname, c.relname, c.relkind, c.relispartition INTO nsp, rel, kind, part
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = src;
    IF kind IS NULL OR kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type', MESSAGE = format('%s is not a table', src);
    END IF;
    IF part THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
            MESSAGE = format('table %s is a partition', src),
            HINT = 'Copy its partitioned table (or CREATE TABLE AS from that table''s masked view with a condition).';
    END IF;
    IF dst_schema IN ('customer_vault', 'pg_catalog', 'information_schema', 'pg_toast') THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('a masked copy cannot be created in schema %I', dst_schema);
    END IF;
    -- the extension's masked view of the table, never an object of that name
    IF NOT EXISTS (SELECT 1 FROM pg_class v
                    WHERE v.relnamespace = (SELECT c.relnamespace FROM pg_class c WHERE c.oid = src)
                      AND v.relname = rel || '_masked' AND v.relkind = 'v'
                      AND v.relowner = (SELECT r.oid FROM pg_roles r WHERE r.rolname = 'customer_vault_mask_owner')) THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('table %s has no masked view', src),
            HINT = 'Its owner makes one with customer_vault.mask_column().';
    END IF;
    EXECUTE format('CREATE TABLE %I.%I AS SELECT * FROM %I.%I',
                   COALESCE(dst_schema, nsp), dst, nsp, rel || '_masked');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION customer_vault.masked_copy(regclass, name, name) IS
    'creates a table (in the source''s schema unless given) holding what <table>_masked shows, owned by the caller; returns the rows copied';

-- Forget the rules of dropped tables and columns (by OID and name).
CREATE OR REPLACE FUNCTION customer_vault._mask_forget_dropped() RETURNS event_trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('customer_vault.mask_rules') IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM customer_vault.mask_rules m
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objid OPERATOR(pg_catalog.=) m.relid::pg_catalog.oid
       AND (d.object_type OPERATOR(pg_catalog.=) 'table'
            OR (d.object_type OPERATOR(pg_catalog.=) 'table column'
                AND d.address_names[3] OPERATOR(pg_catalog.=) m.column_name::pg_catalog.text));
END
$$;
COMMENT ON FUNCTION customer_vault._mask_forget_dropped() IS
    'internal: event trigger removing the masking rules of dropped tables and columns';

-- At the end of every DDL command (that nobody but the extension defines,
-- alters or re-owns <table>_masked, or takes its name, is checked by
-- _guard_managed_view, for the decrypted views too):
--  * a column with a rule keeps its name (the rule names it);
--  * a SECURITY LABEL or ALTER TABLE on a table with a masked view rebuilds
--    the view, so a new label, a new column or a renamed one shows at once.
CREATE OR REPLACE FUNCTION customer_vault._guard_masked_views() RETURNS event_trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    bad record;
    rebuild oid[] := '{}';
    t oid;
BEGIN
    IF pg_catalog.to_regclass('customer_vault.mask_rules') IS NULL THEN
        RETURN;
    END IF;
    FOR r IN SELECT d.classid, d.objid, d.command_tag FROM pg_catalog.pg_event_trigger_ddl_commands() d LOOP
        IF r.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass THEN
            SELECT m.column_name INTO bad FROM customer_vault.mask_rules m
             WHERE m.relid::pg_catalog.oid OPERATOR(pg_catalog.=) r.objid
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                WHERE a.attrelid OPERATOR(pg_catalog.=) r.objid
                                  AND a.attname OPERATOR(pg_catalog.=) m.column_name
                                  AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'object_in_use',
                    MESSAGE = pg_catalog.format('column %I of table %s has a masking rule', bad.column_name, r.objid::pg_catalog.regclass),
                    DETAIL = 'A column with a masking rule (every column the masked view masks has one) cannot be renamed.',
                    HINT = 'Keep its name; to rename it, copy the data to a new column and drop the old one.';
            END IF;
            IF r.command_tag IN ('SECURITY LABEL', 'ALTER TABLE')
               AND NOT customer_vault._mask_view_active()
               AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c, pg_catalog.pg_class v
                            WHERE c.oid OPERATOR(pg_catalog.=) r.objid
                              AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::"char"[])
                              AND v.relnamespace OPERATOR(pg_catalog.=) c.relnamespace
                              AND v.relname::pg_catalog.text OPERATOR(pg_catalog.=) (c.relname::pg_catalog.text OPERATOR(pg_catalog.||) '_masked')
                              AND v.relkind OPERATOR(pg_catalog.=) 'v'
                              AND v.relowner OPERATOR(pg_catalog.=) ANY (SELECT o.oid FROM pg_catalog.pg_roles o
                                                                          WHERE o.rolname OPERATOR(pg_catalog.=) ANY (ARRAY[current_user, 'customer_vault_mask_owner']))) THEN
                rebuild := rebuild OPERATOR(pg_catalog.||) r.objid;
            END IF;
        END IF;
        -- DDL on <table>_masked itself, or on its name: _guard_managed_view
        -- (30_columns.sql), called by customer_vault_guard_decrypted_views
    END LOOP;
    -- a view that cannot be rebuilt (a column changed under it) is dropped:
    -- masked readers then see nothing until mask_column() makes it again
    FOREACH t IN ARRAY rebuild LOOP
        BEGIN
            PERFORM customer_vault._masked_view_build(t::pg_catalog.regclass);
        EXCEPTION WHEN OTHERS THEN
            PERFORM customer_vault._drop_masked_view(t::pg_catalog.regclass);
            RAISE WARNING USING MESSAGE = pg_catalog.format('the masked view of table %s was dropped', t::pg_catalog.regclass),
                DETAIL = pg_catalog.format('It could not be rebuilt after the change: %s', SQLERRM),
                HINT = 'Run customer_vault.mask_column() on the table to make it again.';
        END;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._guard_masked_views() IS
    'internal: event trigger keeping the names of masked columns and rebuilding a masked view after SECURITY LABEL or ALTER TABLE';
--@ schema
CREATE EVENT TRIGGER customer_vault_mask_forget_dropped ON sql_drop
    EXECUTE FUNCTION customer_vault._mask_forget_dropped();
CREATE EVENT TRIGGER customer_vault_guard_masked_views ON ddl_command_end
    EXECUTE FUNCTION customer_vault._guard_masked_views();
--@ code

-- Privileges of this concern (PUBLIC's few are all in 90_privileges.sql).
GRANT EXECUTE ON FUNCTION
    customer_vault.mask_column(regclass, name, text),
    customer_vault._mask_column_set(regclass, name, text)
    TO customer_vault_admin;
GRANT SELECT ON customer_vault.mask_rules TO customer_vault_admin, customer_vault_auditor;
-- the masked reader: the masks (through <table>_masked, whose functions run
-- as the caller) and copies of them
GRANT EXECUTE ON FUNCTION
    customer_vault._mask_sealed(text, text, regclass, name),
    customer_vault._mask_plain(text, regclass, name),
    customer_vault._masked_scope(regclass, name[]),
    customer_vault.masked_copy(regclass, name, name)
    TO customer_vault_masked_reader;
-- 0.4.0's masked_copy built its own select list; it reads the view now
REVOKE EXECUTE ON FUNCTION customer_vault._masked_select_list(regclass) FROM customer_vault_masked_reader;
