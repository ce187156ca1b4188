--@ schema

---------------------------------------------------------------------------
-- The map of personal data: the registry of subject tables, how every
-- other table reaches them through foreign keys, PII labels resolved up the
-- partition tree, the inventory, and export_subject with its records.
---------------------------------------------------------------------------

-- Tables holding data subjects' rows, each with the column naming the
-- subject.  Keyed by OID (a renamed table stays registered); a dropped
-- table or subject column leaves no row (event trigger below); renaming the
-- subject column, or changing it to a type no subject column may have, is
-- refused.  Written only by register_subject_table, unregister_subject_table
-- and the implicit registration of set_retention and enable_consent_policy.
CREATE TABLE customer_vault.subject_tables (
    relid          regclass PRIMARY KEY,
    subject_column name NOT NULL,
    registered_by  oid NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.subject_tables', '');
--@ code
COMMENT ON TABLE customer_vault.subject_tables IS
    'tables holding data subjects'' rows and the column naming the subject (register_subject_table); relid is the table';
--@ schema

-- One row per export_subject() call (GDPR art. 15/20): who, when, which
-- subject as a keyed hash (_subject_hash), and how much was handed out.
-- Append-only.
CREATE TABLE customer_vault.subject_exports (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    role_id      oid NOT NULL,
    subject_hash bytea NOT NULL,
    tables       integer NOT NULL,
    rows         bigint NOT NULL,
    withheld     bigint NOT NULL
);
CREATE INDEX subject_exports_subject_hash_idx ON customer_vault.subject_exports (subject_hash);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.subject_exports', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.subject_exports_id_seq', '');
--@ code
COMMENT ON TABLE customer_vault.subject_exports IS
    'append-only record of every export_subject() call: role, time, keyed hash of the subject, tables, rows, withheld values';

-- append-only: no UPDATE, DELETE or TRUNCATE of the export records
CREATE OR REPLACE FUNCTION customer_vault._subject_exports_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
        MESSAGE = 'customer_vault.subject_exports is append-only';
END
$$;
COMMENT ON FUNCTION customer_vault._subject_exports_append_only() IS
    'internal: refuses UPDATE, DELETE and TRUNCATE of subject_exports';
CREATE OR REPLACE TRIGGER subject_exports_no_update_delete BEFORE UPDATE OR DELETE ON customer_vault.subject_exports
    FOR EACH ROW EXECUTE FUNCTION customer_vault._subject_exports_append_only();
CREATE OR REPLACE TRIGGER subject_exports_no_truncate BEFORE TRUNCATE ON customer_vault.subject_exports
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._subject_exports_append_only();
ALTER TABLE customer_vault.subject_exports ENABLE ALWAYS TRIGGER subject_exports_no_update_delete;
ALTER TABLE customer_vault.subject_exports ENABLE ALWAYS TRIGGER subject_exports_no_truncate;

-- The label of a column: its own customer_vault label, else the label of the
-- column of the same NAME in the nearest partitioned table above it (a label
-- on a partitioned table applies to its partitions, those attached later
-- included).  NULL: not labelled.
CREATE OR REPLACE FUNCTION customer_vault._column_label(relid regclass, attnum smallint) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.label
      FROM pg_catalog.pg_attribute src
      CROSS JOIN LATERAL (SELECT $1::pg_catalog.oid AS r, 0::bigint AS n
                          UNION ALL
                          SELECT pa.relid::pg_catalog.oid, pa.n
                            FROM pg_catalog.pg_partition_ancestors($1) WITH ORDINALITY pa(relid, n)
                           WHERE pa.relid::pg_catalog.oid OPERATOR(pg_catalog.<>) $1::pg_catalog.oid) a
      JOIN pg_catalog.pg_attribute x
        ON x.attrelid OPERATOR(pg_catalog.=) a.r AND x.attname OPERATOR(pg_catalog.=) src.attname
       AND x.attnum OPERATOR(pg_catalog.>) 0 AND NOT x.attisdropped
      JOIN pg_catalog.pg_seclabel l
        ON l.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND l.objoid OPERATOR(pg_catalog.=) a.r AND l.objsubid OPERATOR(pg_catalog.=) x.attnum
       AND l.provider OPERATOR(pg_catalog.=) 'customer_vault'
     WHERE src.attrelid OPERATOR(pg_catalog.=) $1 AND src.attnum OPERATOR(pg_catalog.=) $2
       AND src.attnum OPERATOR(pg_catalog.>) 0 AND NOT src.attisdropped
     ORDER BY a.n
     LIMIT 1
$$;
COMMENT ON FUNCTION customer_vault._column_label(regclass, smallint) IS
    'internal: the PII label of a column, its own or inherited by name from the nearest labelled partitioned table above it';

-- Checks a table and subject column for the registry; the table to register
-- (a partition's root partitioned table: partitions share its columns and
-- are read through it).
CREATE OR REPLACE FUNCTION customer_vault._subject_table_check(tbl regclass, subject_column name) RETURNS regclass
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    root regclass;
BEGIN
    IF tbl IS NULL OR subject_column IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'table and subject column must not be null';
    END IF;
    -- ordinary or partitioned tables of the application only
    PERFORM customer_vault._table_names(tbl);
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = tbl AND c.relpersistence = 't') THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
            MESSAGE = pg_catalog.format('%s is a temporary table', tbl),
            DETAIL = 'A temporary table ends with its session and no other session can read it.';
    END IF;
    PERFORM customer_vault._check_subject_type(customer_vault._column_type(tbl, subject_column, 'subject column'),
                                               pg_catalog.format('subject column %I of table %s', subject_column, tbl));
    SELECT pa.relid INTO root FROM pg_catalog.pg_partition_ancestors(tbl) WITH ORDINALITY pa(relid, n)
     ORDER BY pa.n DESC LIMIT 1;
    RETURN COALESCE(root, tbl);
END
$$;
COMMENT ON FUNCTION customer_vault._subject_table_check(regclass, name) IS
    'internal: validates a subject table and column; the table to register (the root of a partition tree)';

-- Registers (or re-registers) a subject table.  quiet: the implicit
-- registration of set_retention and enable_consent_policy, which registers
-- what qualifies and otherwise does nothing.  SECURITY DEFINER: the
-- registry is written only here (the admin has no INSERT, UPDATE or DELETE on
-- it); export_subject reads a registered table as its owner, so the calling
-- role must own the table or be allowed to SELECT from it: registering
-- never opens a table to a role that could not read it.
CREATE OR REPLACE FUNCTION customer_vault._register_subject_table(tbl regclass, subject_column name, quiet boolean)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller oid;
    target regclass;
BEGIN
    IF quiet IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'quiet must not be null';
    END IF;
    caller := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = customer_vault._calling_role());
    IF quiet THEN
        BEGIN
            target := customer_vault._subject_table_check(tbl, subject_column);
        EXCEPTION WHEN OTHERS THEN
            RETURN false;
        END;
        -- a table already registered keeps its registration
        IF EXISTS (SELECT 1 FROM customer_vault.subject_tables s WHERE s.relid::oid = target::oid) THEN
            RETURN false;
        END IF;
    ELSE
        target := customer_vault._subject_table_check(tbl, subject_column);
    END IF;
    IF caller IS NULL OR NOT (pg_catalog.pg_has_role(caller, (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = target), 'USAGE')
                              OR pg_catalog.has_table_privilege(caller, target, 'SELECT')) THEN
        IF quiet THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('permission denied for table %s', target),
            DETAIL = 'export_subject() reads a registered table as its owner: only a role that owns the table or may read it can register it.';
    END IF;
    INSERT INTO customer_vault.subject_tables AS s (relid, subject_column, registered_by)
    VALUES (target, subject_column, caller)
    ON CONFLICT (relid) DO UPDATE
       SET subject_column = EXCLUDED.subject_column, registered_by = EXCLUDED.registered_by,
           registered_at = pg_catalog.now();
    RETURN true;
END
$$;
COMMENT ON FUNCTION customer_vault._register_subject_table(regclass, name, boolean) IS
    'internal: registers a subject table (quiet: only if it qualifies and is not registered yet, never an error)';

CREATE OR REPLACE FUNCTION customer_vault.register_subject_table(tbl regclass, subject_column name) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM customer_vault._register_subject_table(tbl, subject_column, false);
END
$$;
COMMENT ON FUNCTION customer_vault.register_subject_table(regclass, name) IS
    'registers a table holding data subjects'' rows and its subject column (a partition: its partitioned table); the caller must own the table or be allowed to read it';

-- Removes a table from the registry; false if it was not registered.
CREATE OR REPLACE FUNCTION customer_vault.unregister_subject_table(tbl regclass) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'table must not be null';
    END IF;
    DELETE FROM customer_vault.subject_tables s WHERE s.relid::oid = tbl::oid;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION customer_vault.unregister_subject_table(regclass) IS
    'removes a table from the subject registry; false if it was not registered';

-- Every registered table (depth 0) and every table reaching one through
-- declared foreign keys (depth n: one row per foreign key from the table to
-- a table of lower depth, i.e. every way down to a subject, never a way back
-- up).  Registered tables are reached through their own column only; a
-- partition is read through its partitioned table (only top-level
-- constraints are followed); the extension's own tables and the system
-- catalogs are never nodes.  cycle: the table's foreign keys lead back to it
-- (itself included); such keys are reported, never followed.
CREATE OR REPLACE FUNCTION customer_vault._subject_reach()
    RETURNS TABLE(relid regclass, depth integer, parent regclass, fk oid, subject_column name, path text, cycle boolean)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
WITH RECURSIVE
nodes AS (
    SELECT c.oid
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND n.nspname NOT IN ('customer_vault', 'pg_catalog', 'information_schema', 'pg_toast')
),
fks AS (
    SELECT k.oid AS fk, k.conrelid AS child, k.confrelid AS parent,
           pg_catalog.format('%s(%s) -> %s(%s)', k.conrelid::pg_catalog.regclass,
               (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY u.i)
                  FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY u(n, i)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n),
               k.confrelid::pg_catalog.regclass,
               (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY u.i)
                  FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY u(n, i)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n)) AS hop
      FROM pg_catalog.pg_constraint k
     WHERE k.contype = 'f' AND k.conparentid = 0
       AND k.conrelid IN (SELECT oid FROM nodes) AND k.confrelid IN (SELECT oid FROM nodes)
),
reg AS (
    SELECT s.relid::pg_catalog.oid AS rel, s.subject_column,
           pg_catalog.format('%s.%I', s.relid, s.subject_column) AS tail
      FROM customer_vault.subject_tables s
     WHERE s.relid::pg_catalog.oid IN (SELECT oid FROM nodes)
),
-- simple paths down from the registered tables (a table at most once per path)
walk(rel, depth, hops, visited) AS (
    SELECT r.rel, 0, ''::text COLLATE "C", ARRAY[r.rel] FROM reg r
    UNION ALL
    SELECT f.child, w.depth + 1,
           f.hop || CASE WHEN w.hops = '' THEN '' ELSE ', ' || w.hops END,
           w.visited || f.child
      FROM walk w JOIN fks f ON f.parent = w.rel
     WHERE f.child <> ALL (w.visited) AND f.child NOT IN (SELECT r.rel FROM reg r)
       AND w.depth < 64
),
-- each table's depth and the path of its shortest way (first in order)
best AS (
    SELECT DISTINCT ON (w.rel) w.rel, w.depth, w.hops, w.visited[1] AS root
      FROM walk w ORDER BY w.rel, w.depth, w.hops
),
-- tables whose foreign keys lead back to them
loops(start, cur, visited) AS (
    SELECT b.rel, f.parent, ARRAY[f.parent] FROM best b JOIN fks f ON f.child = b.rel
    UNION ALL
    SELECT l.start, f.parent, l.visited || f.parent
      FROM loops l JOIN fks f ON f.child = l.cur
     WHERE l.cur <> l.start AND f.parent <> ALL (l.visited)
)
SELECT b.rel::pg_catalog.regclass, 0, NULL::pg_catalog.regclass, NULL::pg_catalog.oid, r.subject_column, r.tail,
       EXISTS (SELECT 1 FROM loops l WHERE l.start = b.rel AND l.cur = b.rel)
  FROM best b JOIN reg r ON r.rel = b.rel
 WHERE b.depth = 0
UNION ALL
SELECT b.rel::pg_catalog.regclass, b.depth, f.parent::pg_catalog.regclass, f.fk, NULL::name,
       f.hop || CASE WHEN p.hops = '' THEN '' ELSE ', ' || p.hops END || '; ' || rr.tail,
       EXISTS (SELECT 1 FROM loops l WHERE l.start = b.rel AND l.cur = b.rel)
  FROM best b
  JOIN fks f ON f.child = b.rel
  JOIN best p ON p.rel = f.parent AND p.depth < b.depth
  JOIN reg rr ON rr.rel = p.root
 WHERE b.depth > 0
$$;
COMMENT ON FUNCTION customer_vault._subject_reach() IS
    'internal: every registered subject table (depth 0) and every table reaching one through foreign keys, with the key, a readable path and whether its keys form a cycle';

-- Event trigger: a dropped table or subject column leaves no registration.
-- SECURITY DEFINER: whoever may drop a table must be able to remove its row.
CREATE OR REPLACE FUNCTION customer_vault._subject_tables_dropped() RETURNS event_trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('customer_vault.subject_tables') IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM customer_vault.subject_tables s
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objid = s.relid::pg_catalog.oid
       AND (d.object_type = 'table'
            OR (d.object_type = 'table column' AND d.address_names[3] = s.subject_column::text));
END
$$;
COMMENT ON FUNCTION customer_vault._subject_tables_dropped() IS
    'internal: event trigger removing subject_tables rows of dropped tables and subject columns';
--@ schema
CREATE EVENT TRIGGER customer_vault_subject_tables_dropped ON sql_drop
    EXECUTE FUNCTION customer_vault._subject_tables_dropped();
--@ code

-- Event trigger: the subject column of a registered table keeps its name
-- and an allowed type (the registry names it; export and erasure compare
-- subjects in its type).
CREATE OR REPLACE FUNCTION customer_vault._subject_tables_guard() RETURNS event_trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
BEGIN
    IF pg_catalog.to_regclass('customer_vault.subject_tables') IS NULL THEN
        RETURN;
    END IF;
    SELECT s.relid, s.subject_column, a.atttypid INTO bad
      FROM pg_catalog.pg_event_trigger_ddl_commands() d
      JOIN customer_vault.subject_tables s ON s.relid::pg_catalog.oid = d.objid
      LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = s.relid AND a.attname = s.subject_column
                                          AND a.attnum > 0 AND NOT a.attisdropped
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND (a.attnum IS NULL OR NOT customer_vault._subject_type_ok(a.atttypid::pg_catalog.regtype))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'object_in_use',
            MESSAGE = pg_catalog.format('column %I of table %s is the subject column of a registered subject table',
                                        bad.subject_column, bad.relid),
            DETAIL = 'The subject column of a registered table cannot be renamed or changed to a type a subject column may not have.',
            HINT = 'Unregister the table with customer_vault.unregister_subject_table(), change it, then register it again.';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._subject_tables_guard() IS
    'internal: event trigger refusing renames and type changes of the subject column of a registered table';
--@ schema
CREATE EVENT TRIGGER customer_vault_subject_tables_guard ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION customer_vault._subject_tables_guard();
--@ code

-- Privileges of this concern.
GRANT EXECUTE ON FUNCTION
    customer_vault.register_subject_table(regclass, name),
    customer_vault.unregister_subject_table(regclass),
    customer_vault._register_subject_table(regclass, name, boolean),
    customer_vault._column_label(regclass, smallint)
    TO customer_vault_admin;
GRANT SELECT ON customer_vault.subject_tables TO customer_vault_admin, customer_vault_auditor;
GRANT SELECT ON customer_vault.subject_exports TO customer_vault_admin, customer_vault_auditor;
