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
    PERFORM customer_vault._check_subject_collation(tbl, subject_column,
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
    PERFORM customer_vault._coordinator_only('register_subject_table()');
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
    PERFORM customer_vault._coordinator_only('unregister_subject_table()');
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
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
-- (plpgsql: its plan is cached for the session; a SQL function with SET
-- clauses is planned again at every call)
RETURN QUERY
WITH RECURSIVE
-- top-level foreign keys between application tables (partitions are read
-- through their partitioned tables; the extension's and the system's tables
-- are never nodes)
fks AS (
    SELECT k.oid AS fk, k.conrelid AS child, k.confrelid AS parent
      FROM pg_catalog.pg_constraint k
      JOIN pg_catalog.pg_class cc ON cc.oid = k.conrelid
      JOIN pg_catalog.pg_namespace cn ON cn.oid = cc.relnamespace
      JOIN pg_catalog.pg_class pc ON pc.oid = k.confrelid
      JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
     WHERE k.contype = 'f' AND k.conparentid = 0
       AND cc.relkind IN ('r', 'p') AND NOT cc.relispartition
       AND pc.relkind IN ('r', 'p') AND NOT pc.relispartition
       AND cn.nspname NOT IN ('customer_vault', 'pg_catalog', 'information_schema', 'pg_toast')
       AND pn.nspname NOT IN ('customer_vault', 'pg_catalog', 'information_schema', 'pg_toast')
),
reg AS (
    SELECT s.relid::pg_catalog.oid AS rel, s.subject_column,
           pg_catalog.format('%s.%I', s.relid, s.subject_column) AS tail
      FROM customer_vault.subject_tables s
),
-- simple paths down from the registered tables (a table at most once per
-- path): the keys followed, from the table down to the registered one
walk(rel, depth, keys, visited) AS (
    SELECT r.rel, 0, '{}'::pg_catalog.oid[], ARRAY[r.rel] FROM reg r
    UNION ALL
    SELECT f.child, w.depth + 1, f.fk || w.keys, w.visited || f.child
      FROM walk w JOIN fks f ON f.parent = w.rel
     WHERE f.child <> ALL (w.visited) AND f.child NOT IN (SELECT r.rel FROM reg r)
       AND w.depth < 64
),
-- each table's depth and its shortest way (the first in order)
best AS (
    SELECT DISTINCT ON (w.rel) w.rel, w.depth, w.keys, w.visited[1] AS root
      FROM walk w ORDER BY w.rel, w.depth, w.keys
),
-- tables whose foreign keys lead back to them
loops(start, cur, visited) AS (
    SELECT b.rel, f.parent, ARRAY[f.parent] FROM best b JOIN fks f ON f.child = b.rel
    UNION ALL
    SELECT l.start, f.parent, l.visited || f.parent
      FROM loops l JOIN fks f ON f.child = l.cur
     WHERE l.cur <> l.start AND f.parent <> ALL (l.visited)
),
edges AS (
    SELECT b.rel, b.depth, f.parent, f.fk, (f.fk || p.keys) AS keys, p.root
      FROM best b
      JOIN fks f ON f.child = b.rel
      JOIN best p ON p.rel = f.parent AND p.depth < b.depth
     WHERE b.depth > 0
)
SELECT b.rel::pg_catalog.regclass, 0, NULL::pg_catalog.regclass, NULL::pg_catalog.oid, r.subject_column, r.tail,
       EXISTS (SELECT 1 FROM loops l WHERE l.start = b.rel AND l.cur = b.rel)
  FROM best b JOIN reg r ON r.rel = b.rel
 WHERE b.depth = 0
UNION ALL
SELECT e.rel::pg_catalog.regclass, e.depth, e.parent::pg_catalog.regclass, e.fk, NULL::name,
       (SELECT pg_catalog.string_agg(pg_catalog.format('%s(%s) -> %s(%s)', k.conrelid::pg_catalog.regclass,
                   (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY x.i)
                      FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY x(n, i)
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x.n),
                   k.confrelid::pg_catalog.regclass,
                   (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY x.i)
                      FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY x(n, i)
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = x.n)),
                   ', ' ORDER BY u.i)
          FROM pg_catalog.unnest(e.keys) WITH ORDINALITY u(fk, i)
          JOIN pg_catalog.pg_constraint k ON k.oid = u.fk) || '; ' || rr.tail,
       EXISTS (SELECT 1 FROM loops l WHERE l.start = e.rel AND l.cur = e.rel)
  FROM edges e JOIN reg rr ON rr.rel = e.root;
END
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

-- _subject_reach() as a jsonb array of {relid, depth, parent, fk,
-- subject_column} (OIDs as numbers), handed down through one export.
CREATE OR REPLACE FUNCTION customer_vault._reach_json() RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'relid', r.relid::pg_catalog.oid, 'depth', r.depth, 'parent', r.parent::pg_catalog.oid,
                       'fk', r.fk, 'subject_column', r.subject_column)), '[]')
              FROM customer_vault._subject_reach() r);
END
$$;
COMMENT ON FUNCTION customer_vault._reach_json() IS
    'internal: _subject_reach() as jsonb, computed once per export and handed down';

-- The condition selecting a subject's rows of a table (alias t) and the
-- text[] bound as $1: the subject column compared with the subject in the
-- column's type (a registered table), or, for a table reached through
-- foreign keys, its key columns against the keys of the subject's rows in
-- each parent (read as that parent's owner by _maint_run, one level at a
-- time, so no owner reads another owner's table).  Parameters, never a
-- function call per row: the planner sees the values and uses the indexes.
-- 'false' when nothing can match (a subject that is no value of the column's
-- type, a parent without rows of the subject).
CREATE OR REPLACE FUNCTION customer_vault._subject_filter(tbl regclass, subject text, reach jsonb DEFAULT NULL,
                                                         OUT filter text, OUT bind text[])
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    c record;
    typ text;
    styp regtype;
    keys text[];
    m integer;
    n integer;
    s integer;
    conds text[] := '{}';
    parts text[];
    reached boolean := false;
BEGIN
    IF tbl IS NULL OR subject IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'table and subject must not be null';
    END IF;
    bind := '{}';
    -- the reach as _reach_json() gives it, computed once per export
    IF reach IS NULL THEN
        reach := customer_vault._reach_json();
    END IF;
    FOR r IN SELECT * FROM pg_catalog.jsonb_to_recordset(reach) x(relid oid, depth integer, parent oid, fk oid, subject_column name)
              WHERE x.relid = tbl::oid ORDER BY x.depth, x.fk LOOP
        reached := true;
        IF r.depth = 0 THEN
            PERFORM customer_vault._check_subject_type(customer_vault._column_type(tbl, r.subject_column, 'subject column'),
                                                       pg_catalog.format('subject column %I of table %s', r.subject_column, tbl));
            -- the type by its qualified name (never 'character', i.e. char(1))
            SELECT pg_catalog.format('%I.%I', tn.nspname, ty.typname), ty.oid::regtype
              INTO typ, styp
              FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
              JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace
             WHERE a.attrelid = tbl AND a.attname = r.subject_column;
            IF customer_vault._casts_to(subject, styp) THEN
                filter := pg_catalog.format('t.%I OPERATOR(pg_catalog.=) (($1)[1])::%s', r.subject_column, typ);
                bind := ARRAY[subject];
            ELSE
                filter := 'false';
                bind := NULL;
            END IF;
            RETURN;
        END IF;
        -- the keys of the subject's rows in the parent, as text, row after row
        keys := customer_vault._maint_run('subject_keys', r.parent::regclass, ARRAY[subject, r.fk::text, reach::text],
                                          NULL, NULL, NULL, false);
        m := (SELECT pg_catalog.cardinality(k.conkey) FROM pg_catalog.pg_constraint k WHERE k.oid = r.fk);
        n := COALESCE(pg_catalog.cardinality(keys), 0) / m;
        CONTINUE WHEN n = 0;
        s := pg_catalog.cardinality(bind) + 1;
        bind := bind || keys;
        -- each key column in its own type, compared with the key's FK = FK operator
        -- and no other: outside pg_catalog the operator's name resolves by the
        -- operand types, so for a column of a domain (over citext, say) an
        -- operator made on the domain by whoever may create in the operator's
        -- schema would be taken and run as the table's owner (_maint_run);
        -- there both sides are cast to the operator's own input types, whose
        -- exact match is that operator (review 24, HIGH-2; CvOperatorClause)
        parts := '{}';
        FOR c IN SELECT a.attname, ns.nspname, o.oprname, u.i,
                        pg_catalog.format('%I.%I', tn.nspname, ty.typname) AS typ,
                        (o.oprnamespace OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace
                         AND (o.oprleft OPERATOR(pg_catalog.<>) a.atttypid
                              OR o.oprright OPERATOR(pg_catalog.<>) a.atttypid)) AS cast_needed,
                        pg_catalog.format('%I.%I', ln.nspname, lt.typname) AS ltyp,
                        pg_catalog.format('%I.%I', rn.nspname, rt.typname) AS rtyp
                   FROM pg_catalog.pg_constraint k
                  CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(k.conkey), pg_catalog.unnest(k.conffeqop)) WITH ORDINALITY u(attnum, op, i)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum
                   JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
                   JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace
                   JOIN pg_catalog.pg_operator o ON o.oid = u.op
                   JOIN pg_catalog.pg_namespace ns ON ns.oid = o.oprnamespace
                   JOIN pg_catalog.pg_type lt ON lt.oid = o.oprleft
                   JOIN pg_catalog.pg_namespace ln ON ln.oid = lt.typnamespace
                   JOIN pg_catalog.pg_type rt ON rt.oid = o.oprright
                   JOIN pg_catalog.pg_namespace rn ON rn.oid = rt.typnamespace
                  WHERE k.oid = r.fk
                  ORDER BY u.i LOOP
            IF m = 1 AND c.cast_needed THEN
                parts := parts || pg_catalog.format('(t.%I)::%s OPERATOR(%I.%s) ANY (((($1)[%s:%s])::%s[])::%s[])',
                                                    c.attname, c.ltyp, c.nspname, c.oprname, s, s + n - 1, c.typ, c.rtyp);
            ELSIF m = 1 THEN
                parts := parts || pg_catalog.format('t.%I OPERATOR(%I.%s) ANY ((($1)[%s:%s])::%s[])',
                                                    c.attname, c.nspname, c.oprname, s, s + n - 1, c.typ);
            ELSIF c.cast_needed THEN
                parts := parts || pg_catalog.format('(t.%I)::%s OPERATOR(%I.%s) ((($1)[%s OPERATOR(pg_catalog.+) (k.i OPERATOR(pg_catalog.*) %s)])::%s)::%s',
                                                    c.attname, c.ltyp, c.nspname, c.oprname, s + c.i - 1, m, c.typ, c.rtyp);
            ELSE
                parts := parts || pg_catalog.format('t.%I OPERATOR(%I.%s) (($1)[%s OPERATOR(pg_catalog.+) (k.i OPERATOR(pg_catalog.*) %s)])::%s',
                                                    c.attname, c.nspname, c.oprname, s + c.i - 1, m, c.typ);
            END IF;
        END LOOP;
        IF m = 1 THEN
            conds := conds || parts[1];
        ELSE
            conds := conds || pg_catalog.format('EXISTS (SELECT FROM pg_catalog.generate_series(0, %s) k(i) WHERE %s)',
                                                n - 1, pg_catalog.array_to_string(parts, ' AND '));
        END IF;
    END LOOP;
    IF NOT reached THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = pg_catalog.format('table %s is not a subject table and reaches none through foreign keys', tbl),
            HINT = 'Register it with customer_vault.register_subject_table(), or declare a foreign key to a table that is.';
    END IF;
    IF pg_catalog.cardinality(conds) = 0 THEN
        filter := 'false';
        bind := NULL;
    ELSE
        filter := pg_catalog.array_to_string(conds, ' OR ');
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._subject_filter(regclass, text, jsonb) IS
    'internal: the condition (alias t) and the bound values selecting one subject''s rows of a registered or reached table';

-- The pieces of the statements _maint_run runs for the map (called by
-- _maint_sql): 'subject_rows' {subject, reach}: every row of the subject as
-- jsonb text, and the row context of each protected column; 'subject_keys'
-- {subject, fk, reach}: the distinct values of the columns foreign key fk
-- references in tbl, over the subject's rows (reach: _reach_json(), passed
-- down so it is computed once per export; NULL: computed here).  Executable
-- by nobody but the extension's owner (a caller could pass another reach):
-- export_subject reaches it through _export_collect, a SECURITY DEFINER
-- function; the caller of _maint_run needs SELECT on the table.
CREATE OR REPLACE FUNCTION customer_vault._subject_sql(kind text, tbl regclass, params text[],
                                                      OUT op text, OUT list text, OUT filter text,
                                                      OUT privilege text, OUT key_name text, OUT bind text[])
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fk oid;
    cols text;
    ctx text;
BEGIN
    IF kind IS NULL OR tbl IS NULL OR params[1] IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'kind, table and subject must not be null';
    END IF;
    SELECT f.filter, f.bind INTO filter, bind
      FROM customer_vault._subject_filter(tbl, params[1],
                                          (CASE kind WHEN 'subject_rows' THEN params[2] ELSE params[3] END)::jsonb) f;
    op := 'select';
    privilege := 'SELECT';
    IF kind = 'subject_rows' THEN
        -- the row context of each protected column of the table (or of the
        -- partitioned table its protection was declared on)
        SELECT pg_catalog.string_agg(pg_catalog.format('%L, %s', pc.column_name,
                   CASE WHEN pc.context_column IS NULL THEN pg_catalog.quote_literal(pc.binding)
                        ELSE pg_catalog.format('customer_vault._row_context(%L, t.%I)', pc.binding, pc.context_column) END),
                   ', ')
          INTO ctx
          FROM customer_vault.protected_columns pc
         WHERE pc.relid::oid = tbl::oid;
        list := 'pg_catalog.to_jsonb(t)::pg_catalog.text, '
                || COALESCE('pg_catalog.jsonb_build_object(' || ctx || ')::pg_catalog.text', 'NULL::pg_catalog.text');
    ELSIF kind = 'subject_keys' THEN
        fk := params[2]::oid;
        SELECT pg_catalog.string_agg(pg_catalog.format('(t.%I)::pg_catalog.text', a.attname), ', ' ORDER BY u.i),
               pg_catalog.string_agg(pg_catalog.format('t.%I IS NOT NULL', a.attname), ' AND ')
          INTO cols, ctx
          FROM pg_catalog.pg_constraint k
          CROSS JOIN LATERAL pg_catalog.unnest(k.confkey) WITH ORDINALITY u(attnum, i)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum
         WHERE k.oid = fk AND k.contype = 'f' AND k.confrelid = tbl::oid;
        IF cols IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = pg_catalog.format('constraint %s is not a foreign key referencing table %s', fk, tbl);
        END IF;
        list := 'DISTINCT ' || cols;
        filter := pg_catalog.format('(%s) AND %s', filter, ctx);
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = pg_catalog.format('unknown maintenance kind %L', kind);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._subject_sql(text, regclass, text[]) IS
    'internal: the pieces of the map''s statements for _maint_run (subject_rows, subject_keys)';

-- A bytea value of the export: {"type": "bytea", "base64": ...}.
CREATE OR REPLACE FUNCTION customer_vault._export_bytea(value bytea) RETURNS jsonb
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_build_object('type', 'bytea', 'base64',
               pg_catalog.translate(pg_catalog.encode(value, 'base64'), E'\n', ''))
$$;
COMMENT ON FUNCTION customer_vault._export_bytea(bytea) IS
    'internal: a bytea as the export shows it, {"type": "bytea", "base64": ...}';

-- export_subject's read of every table of the subject reach (src/forget.c):
-- the erasure's plan (registered tables, their inheritance children, the
-- tables reaching them through foreign keys; keys read parents first), each
-- table read as its owner inside a security-restricted operation, the
-- statements kept prepared per session; per table its rows of the subject as
-- jsonb text paired with the row context of its protected columns, the
-- statement (rows_sql, for EXPLAIN), the table whose protected columns
-- apply and the table whose retention policy the erasure applies (an
-- inheritance child without one of its own: its parent's).  Not STRICT: NULL is an error of its own.  Executable by nobody:
-- _export_collect (SECURITY DEFINER) calls it.
CREATE OR REPLACE FUNCTION customer_vault._export_walk(subject text)
    RETURNS TABLE(relid oid, depth integer, nparams integer, rows_sql text, rows text[], protected_from oid,
                  retention_from oid)
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_export_walk';
COMMENT ON FUNCTION customer_vault._export_walk(text) IS
    'internal: the rows of one subject in every table of the subject reach, read as each table''s owner with kept statements (export_subject)';

-- Everything held on one subject, sealed values still sealed (marked
-- {"$sealed": envelope, "type": ..., "context": ...}), and the export's
-- record.  SECURITY DEFINER: each table is read as its owner through
-- _maint_run (security-restricted, row security off), the records and the
-- consent and hold evidence are readable by the extension only, and the
-- record is written here, with the rows, so no export goes unrecorded.
-- export_subject() opens the sealed values as the caller.
CREATE OR REPLACE FUNCTION customer_vault._export_collect(subject text) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET TimeZone = 'UTC'
    SET IntervalStyle = 'iso_8601'
    SET standard_conforming_strings = on
AS $$
DECLARE
    ledger_hash bytea;
    caller oid;
    reader boolean;
    t record;
    c record;
    raw text[];
    i integer;
    rw jsonb;
    ctx jsonb;
    rows_json jsonb;
    doc_tables jsonb := '{}';
    ntables integer := 0;
    nrows bigint := 0;
    nwithheld bigint := 0;
    sealed_cols text[];
    sealed_kind text[];
    bytea_cols text[];
    bidx_cols text[];
    rp customer_vault.retention_policies;
    ttype regtype;
    until timestamptz;
    h bytea;
    consents jsonb;
    ledger jsonb;
    holds jsonb;
    redacted bigint[];
    anc oid[];
BEGIN
    PERFORM customer_vault._coordinator_only('export_subject()');
    IF subject IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'subject must not be null';
    END IF;
    IF subject = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'subject must not be empty';
    END IF;
    caller := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = customer_vault._calling_role());
    reader := caller IS NOT NULL AND pg_catalog.pg_has_role(caller, 'customer_vault_reader', 'USAGE');
    -- every table of the reach (registered tables, their inheritance
    -- children, the tables reaching them through foreign keys) read as its
    -- owner by the erasure's kept statements (_export_walk, src/forget.c),
    -- the tables holding rows of the subject only
    FOR t IN SELECT w.relid::regclass AS relid, w.depth, w.rows AS raw, w.protected_from, w.retention_from,
                    n.nspname OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) cl.relname AS name
               FROM customer_vault._export_walk(subject) w
               JOIN pg_catalog.pg_class cl ON cl.oid = w.relid
               JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
              WHERE pg_catalog.cardinality(w.rows) > 0
              ORDER BY 2, 5 LOOP
        raw := t.raw;
        -- the table and its ancestors: an inheritance child's protected
        -- columns are its own and those it inherits
        anc := ARRAY(WITH RECURSIVE up(r, lvl) AS (
                         SELECT t.protected_from, 0
                         UNION ALL
                         SELECT i.inhparent, up.lvl + 1 FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.r
                          WHERE up.lvl < 64)
                     SELECT up.r FROM up);
        -- sealed and bytea columns
        SELECT COALESCE(pg_catalog.array_agg(a.attname::text ORDER BY a.attnum)
                          FILTER (WHERE a.atttypid IN ('customer_vault.encrypted_text'::regtype, 'customer_vault.encrypted_bytea'::regtype)
                                     OR pc.column_name IS NOT NULL), '{}'),
               COALESCE(pg_catalog.array_agg(CASE WHEN pc.column_name IS NOT NULL THEN 'protected'
                                                  WHEN a.atttypid = 'customer_vault.encrypted_text'::regtype THEN 'encrypted_text'
                                                  ELSE 'encrypted_bytea' END ORDER BY a.attnum)
                          FILTER (WHERE a.atttypid IN ('customer_vault.encrypted_text'::regtype, 'customer_vault.encrypted_bytea'::regtype)
                                     OR pc.column_name IS NOT NULL), '{}'),
               COALESCE(pg_catalog.array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.atttypid = 'pg_catalog.bytea'::regtype
                                                                                       AND pc.column_name IS NULL), '{}')
          INTO sealed_cols, sealed_kind, bytea_cols
          FROM pg_catalog.pg_attribute a
          LEFT JOIN (SELECT DISTINCT p.column_name FROM customer_vault.protected_columns p
                      WHERE p.relid::oid = ANY (anc)) pc ON pc.column_name = a.attname
         WHERE a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped;
        -- blind indexes of protected columns are left out: not the subject's
        -- data, and a deterministic MAC of it (an equality oracle)
        SELECT COALESCE(pg_catalog.array_agg(pc.blind_index_column::text), '{}') INTO bidx_cols
          FROM customer_vault.protected_columns pc
         WHERE pc.relid::oid = ANY (anc) AND pc.blind_index_column IS NOT NULL;
        rows_json := '[]';
        FOR i IN 0 .. pg_catalog.cardinality(raw) / 2 - 1 LOOP
            rw := raw[2 * i + 1]::jsonb - bidx_cols;
            ctx := raw[2 * i + 2]::jsonb;
            FOR c IN SELECT u.col, u.kind FROM ROWS FROM (pg_catalog.unnest(sealed_cols), pg_catalog.unnest(sealed_kind)) u(col, kind) LOOP
                IF rw ->> c.col IS NOT NULL THEN
                    rw := pg_catalog.jsonb_set(rw, ARRAY[c.col],
                              pg_catalog.jsonb_build_object('$sealed', rw ->> c.col, 'type', c.kind, 'context', ctx ->> c.col));
                    IF NOT reader THEN
                        nwithheld := nwithheld + 1;
                    END IF;
                END IF;
            END LOOP;
            FOR c IN SELECT u.col FROM pg_catalog.unnest(bytea_cols) u(col) LOOP
                IF rw ->> c.col IS NOT NULL THEN
                    rw := pg_catalog.jsonb_set(rw, ARRAY[c.col], customer_vault._export_bytea((rw ->> c.col)::bytea));
                END IF;
            END LOOP;
            rows_json := rows_json || pg_catalog.jsonb_build_array(rw);
        END LOOP;
        -- the retention that applies: the policy the erasure applies (the
        -- table's, or an inheritance child's parent's), and the latest date
        -- until which it keeps one of these rows
        SELECT * INTO rp FROM customer_vault.retention_policies p WHERE p.relid::oid = t.retention_from;
        until := NULL;
        IF FOUND THEN
            ttype := customer_vault._column_type(t.relid, rp.time_column);
            SELECT pg_catalog.max(CASE WHEN ttype = 'pg_catalog.timestamptz'::regtype THEN (e ->> rp.time_column)::timestamptz
                                       ELSE (e ->> rp.time_column)::timestamp AT TIME ZONE 'UTC' END
                                  + rp.keep)
              INTO until FROM pg_catalog.jsonb_array_elements(rows_json) e;
        END IF;
        doc_tables := doc_tables || pg_catalog.jsonb_build_object(t.name, pg_catalog.jsonb_build_object(
            'retention', CASE WHEN rp.relid IS NULL THEN NULL
                              ELSE pg_catalog.jsonb_build_object('time_column', rp.time_column, 'keep', rp.keep::text,
                                                                 'action', rp.action) END,
            'retention_until', until,
            'rows', rows_json,
            -- which columns hold values sealed by this function (export_subject
            -- opens those only: a JSON value of the table's own that looks
            -- like {"$sealed": ...} is data, never something to decrypt)
            '$sealed_columns', pg_catalog.to_jsonb(sealed_cols)));
        ntables := ntables + 1;
        nrows := nrows + pg_catalog.jsonb_array_length(rows_json);
        rp := NULL;
    END LOOP;
    -- entries of hash version 2 hold the subject's keyed hash
    ledger_hash := customer_vault._evidence_subject(subject, false);
    -- the ledger entries an erasure of the subject named in its 'redact'
    -- entries (of the subject's hash: the erasure writes them under the hash
    -- of the spelling it erased, for its entries in plain text, version 1,
    -- and under that hash, version 2; verify_ledger checks that a redact
    -- entry names no other): left out of the consents and the ledger, as
    -- consent_ledger_redacted leaves out their subject, also once the
    -- subject came back
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT (x.id)::bigint), '{}') INTO redacted
      FROM customer_vault.consent_ledger m
     CROSS JOIN LATERAL pg_catalog.jsonb_array_elements_text(m.evidence -> 'redacts') x(id)
     WHERE m.subject_hash = ledger_hash AND m.action = 'redact';
    -- consents in force or ended, each with the evidence of its last entry
    SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'purpose', cc.purpose, 'lawful_basis', cc.lawful_basis, 'status', cc.status,
               'granted_at', cc.granted_at, 'valid_until', cc.valid_until, 'withdrawn_at', cc.withdrawn_at,
               'evidence', l.evidence) ORDER BY cc.purpose), '[]')
      INTO consents
      FROM customer_vault.current_consents cc
      LEFT JOIN customer_vault.consent_ledger l ON l.id = cc.ledger_id
     WHERE cc.subject = _export_collect.subject AND cc.ledger_id <> ALL (redacted);
    SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'id', l.id, 'purpose', l.purpose, 'action', l.action, 'evidence', l.evidence,
               'valid_until', l.valid_until, 'recorded_at', l.recorded_at) ORDER BY l.id), '[]')
      INTO ledger
      FROM customer_vault.consent_ledger l
     WHERE (l.subject = _export_collect.subject                         -- entries of hash version 1
            OR l.subject_hash = ledger_hash)
       AND l.action <> 'redact' AND l.id <> ALL (redacted);
    SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'id', h.id, 'reason', h.reason, 'placed_at', h.placed_at, 'until', h.until,
               'released_at', h.released_at, 'release_reason', h.release_reason, 'active', h.active) ORDER BY h.id), '[]')
      INTO holds
      FROM customer_vault.legal_holds h
     WHERE h.subject = _export_collect.subject;   -- NULL for a hold a 'redact' entry names
    h := customer_vault._subject_hash(subject);
    IF h IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = 'the export cannot be recorded: the subject hash key does not exist and cannot be made here',
            HINT = 'Export on the primary, in a transaction that can write.';
    END IF;
    INSERT INTO customer_vault.subject_exports (role_id, subject_hash, tables, rows, withheld)
    VALUES (COALESCE(caller, 0), h, ntables, nrows, nwithheld);
    RETURN pg_catalog.jsonb_build_object(
        'subject_hash', pg_catalog.encode(h, 'hex'),
        'generated_at', pg_catalog.now(),
        'tables', doc_tables,
        'consents', consents,
        'ledger', ledger,
        'legal_holds', holds);
END
$$;
COMMENT ON FUNCTION customer_vault._export_collect(text) IS
    'internal: everything held on one subject with sealed values still sealed, recorded in subject_exports';

-- Everything held on one data subject (GDPR art. 15 and 20), as jsonb:
-- {"subject_hash", "generated_at", "tables": {"schema.table": {"retention",
-- "retention_until", "rows": [{column: value}]}}, "consents", "ledger",
-- "legal_holds"}.  Sealed values are opened as the caller when the caller
-- may decrypt (customer_vault_reader), else {"withheld": "not a reader"};
-- one that does not open (a context the extension cannot know) is
-- {"withheld": "undecryptable"}; a shredded one is null.
CREATE OR REPLACE FUNCTION customer_vault.export_subject(subject text) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    doc jsonb;
    reader boolean;
    tname text;
    i integer;
    col text;
    v jsonb;
    opened jsonb;
    b bytea;
BEGIN
    doc := customer_vault._export_collect(subject);
    reader := pg_catalog.pg_has_role(current_user, 'customer_vault_reader', 'USAGE');
    FOR tname IN SELECT pg_catalog.jsonb_object_keys(doc -> 'tables') LOOP
        FOR i IN 0 .. pg_catalog.jsonb_array_length(doc -> 'tables' -> tname -> 'rows') - 1 LOOP
            FOR col, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(doc -> 'tables' -> tname -> 'rows' -> i) e
                           WHERE doc -> 'tables' -> tname -> '$sealed_columns' ? e.key
                             AND pg_catalog.jsonb_typeof(e.value) = 'object' AND e.value ? '$sealed' LOOP
                IF NOT reader THEN
                    opened := '{"withheld": "not a reader"}';
                ELSE
                    BEGIN
                        IF v ->> 'type' = 'protected' THEN
                            opened := pg_catalog.to_jsonb(customer_vault._open_column(v ->> '$sealed', v ->> 'context'));
                        ELSIF v ->> 'type' = 'encrypted_text' THEN
                            opened := pg_catalog.to_jsonb(customer_vault.decrypt((v ->> '$sealed')::customer_vault.encrypted_text));
                        ELSE
                            b := customer_vault.decrypt((v ->> '$sealed')::customer_vault.encrypted_bytea);
                            opened := CASE WHEN b IS NULL THEN NULL
                                           ELSE customer_vault._export_bytea(b) END;
                        END IF;
                        opened := COALESCE(opened, 'null');
                    EXCEPTION WHEN data_corrupted OR invalid_parameter_value THEN
                        -- sealed with a context the export cannot know, or altered
                        opened := '{"withheld": "undecryptable"}';
                    END;
                END IF;
                doc := pg_catalog.jsonb_set(doc, ARRAY['tables', tname, 'rows', i::text, col], opened);
            END LOOP;
        END LOOP;
        doc := pg_catalog.jsonb_set(doc, ARRAY['tables', tname], (doc -> 'tables' -> tname) - '$sealed_columns');
    END LOOP;
    RETURN doc;
END
$$;
COMMENT ON FUNCTION customer_vault.export_subject(text) IS
    'everything held on one data subject (GDPR art. 15/20) as a documented JSON document; recorded in subject_exports';

-- The inventory of personal data: one row per labelled, protected or
-- encrypted column of an application table (a partition is listed through
-- its partitioned table): its label (inherited ones included), type, how it
-- is protected, the table's retention, whether a consent policy is on, and
-- how the table reaches its subject.
-- SECURITY DEFINER: the reach comes from _subject_reach(), which nobody
-- else may call (a function in a view runs with the reader's rights).
CREATE OR REPLACE FUNCTION customer_vault._inventory()
    RETURNS TABLE(schema_name name, table_name name, column_name name, label text, type text, protection text,
                  retention_keep interval, retention_action text, consent_policy boolean, reaches_subject text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH reach AS (SELECT r.relid::pg_catalog.oid AS rel, r.depth, r.subject_column, r.path
                     FROM customer_vault._subject_reach() r)
    SELECT n.nspname AS schema_name, c.relname AS table_name, a.attname AS column_name,
           l.label,
           pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
           CASE WHEN a.atttypid IN ('customer_vault.encrypted_text'::pg_catalog.regtype,
                                    'customer_vault.encrypted_bytea'::pg_catalog.regtype) THEN 'encrypted type'
                WHEN pc.column_name IS NOT NULL THEN 'protected column'
                ELSE 'plaintext' END AS protection,
           rp.keep AS retention_keep, rp.action AS retention_action,
           EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                    WHERE p.polrelid = c.oid AND p.polname = 'customer_vault_consent') AS consent_policy,
           COALESCE((SELECT CASE WHEN r.depth = 0 THEN 'own column ' || pg_catalog.quote_ident(r.subject_column)
                                 ELSE 'foreign keys: ' || r.path END
                       FROM reach r WHERE r.rel = c.oid ORDER BY r.depth, r.path LIMIT 1), 'none') AS reaches_subject
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      CROSS JOIN LATERAL (SELECT customer_vault._column_label(c.oid::pg_catalog.regclass, a.attnum) AS label) l
      LEFT JOIN customer_vault.protected_columns pc ON pc.relid::pg_catalog.oid = c.oid AND pc.column_name = a.attname
      LEFT JOIN customer_vault.retention_policies rp ON rp.relid::pg_catalog.oid = c.oid
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
       AND n.nspname NOT IN ('customer_vault', 'pg_catalog', 'information_schema', 'pg_toast')
       AND (l.label IS NOT NULL OR pc.column_name IS NOT NULL
            OR a.atttypid IN ('customer_vault.encrypted_text'::pg_catalog.regtype,
                              'customer_vault.encrypted_bytea'::pg_catalog.regtype));
END
$$;
COMMENT ON FUNCTION customer_vault._inventory() IS
    'internal: the rows of the inventory view';

CREATE OR REPLACE VIEW customer_vault.inventory AS
    SELECT i.schema_name, i.table_name, i.column_name, i.label, i.type, i.protection,
           i.retention_keep, i.retention_action, i.consent_policy, i.reaches_subject
      FROM customer_vault._inventory() i;
COMMENT ON VIEW customer_vault.inventory IS
    'every labelled, protected or encrypted column: label, type, protection, retention, consent policy, how its table reaches its subject';

-- Privileges of this concern.
GRANT EXECUTE ON FUNCTION
    customer_vault.register_subject_table(regclass, name),
    customer_vault.unregister_subject_table(regclass),
    customer_vault._register_subject_table(regclass, name, boolean),
    customer_vault._column_label(regclass, smallint),
    customer_vault.export_subject(text), customer_vault._export_collect(text),
    customer_vault._export_bytea(bytea)
    TO customer_vault_admin;
GRANT SELECT ON customer_vault.subject_tables TO customer_vault_admin, customer_vault_auditor;
GRANT SELECT ON customer_vault.subject_exports TO customer_vault_admin, customer_vault_auditor;
GRANT SELECT ON customer_vault.inventory TO customer_vault_admin, customer_vault_auditor;
GRANT EXECUTE ON FUNCTION customer_vault._inventory() TO customer_vault_admin, customer_vault_auditor;
