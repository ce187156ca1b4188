--@ code

---------------------------------------------------------------------------
-- Maintenance as the table owner (src/maint.c): the purge, reencrypt and
-- protect_column's rewrite change a table as its owner inside a
-- security-restricted operation, with row security off, one batch of rows at
-- a time (block ranges, one short transaction each).
---------------------------------------------------------------------------

-- Not STRICT: a NULL kind or table is an error raised by the function.
CREATE OR REPLACE FUNCTION customer_vault._maint_run(kind text, tbl regclass, params text[],
                                                    blk_from bigint DEFAULT NULL, blk_to bigint DEFAULT NULL,
                                                    max_rows integer DEFAULT NULL, skip_locked boolean DEFAULT false)
    RETURNS text[]
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_maint_run';
COMMENT ON FUNCTION customer_vault._maint_run(text, regclass, text[], bigint, bigint, integer, boolean) IS
    'internal: one batch of a kind of maintenance (statement from _maint_sql) run on the table as its owner, security-restricted, row security off; rows changed, or the values a query returned';

-- The functions maintenance statements call, run as the table owner: every
-- role may execute them, they work only while _maint_run runs a statement
-- (sealing only under the key of the column being protected, blind indexes
-- only for the table being rewritten).
CREATE OR REPLACE FUNCTION customer_vault._m_reseal(value text, context text, text_form boolean)
    RETURNS text
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_m_reseal';
CREATE OR REPLACE FUNCTION customer_vault._m_reseal(value customer_vault.encrypted_text, context text)
    RETURNS customer_vault.encrypted_text
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_m_reseal';
CREATE OR REPLACE FUNCTION customer_vault._m_reseal(value customer_vault.encrypted_bytea, context text)
    RETURNS customer_vault.encrypted_bytea
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_m_reseal';
COMMENT ON FUNCTION customer_vault._m_reseal(text, text, boolean) IS
    'internal: _reseal inside maintenance only (reencrypt as the table owner)';
COMMENT ON FUNCTION customer_vault._m_reseal(customer_vault.encrypted_text, text) IS
    'internal: _reseal inside maintenance only (reencrypt as the table owner)';
COMMENT ON FUNCTION customer_vault._m_reseal(customer_vault.encrypted_bytea, text) IS
    'internal: _reseal inside maintenance only (reencrypt as the table owner)';

CREATE OR REPLACE FUNCTION customer_vault._m_needs_reseal(value text, text_form boolean)
    RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_m_needs_reseal';
CREATE OR REPLACE FUNCTION customer_vault._m_needs_reseal(value customer_vault.encrypted_text, text_form boolean)
    RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_m_needs_reseal';
CREATE OR REPLACE FUNCTION customer_vault._m_needs_reseal(value customer_vault.encrypted_bytea, text_form boolean)
    RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_m_needs_reseal';
COMMENT ON FUNCTION customer_vault._m_needs_reseal(text, boolean) IS
    'internal: _needs_reseal inside maintenance only';
COMMENT ON FUNCTION customer_vault._m_needs_reseal(customer_vault.encrypted_text, boolean) IS
    'internal: _needs_reseal inside maintenance only';
COMMENT ON FUNCTION customer_vault._m_needs_reseal(customer_vault.encrypted_bytea, boolean) IS
    'internal: _needs_reseal inside maintenance only';

-- Not STRICT: a NULL context must be an error (as _seal_column), never a NULL result.
CREATE OR REPLACE FUNCTION customer_vault._m_seal_column(plaintext text, key_name text, context text)
    RETURNS text
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_m_seal_column';
COMMENT ON FUNCTION customer_vault._m_seal_column(text, text, text) IS
    'internal: _seal_column inside protect_column''s rewrite only, under its key only';

CREATE OR REPLACE FUNCTION customer_vault._m_blind_index_rewrite(tbl regclass, col name, plaintext text)
    RETURNS bytea
    LANGUAGE C STABLE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_m_blind_index_rewrite';
COMMENT ON FUNCTION customer_vault._m_blind_index_rewrite(regclass, name, text) IS
    'internal: _blind_index_rewrite inside protect_column''s rewrite of that table only';

CREATE OR REPLACE FUNCTION customer_vault._m_subject_has_key(subject text)
    RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_m_subject_has_key';
COMMENT ON FUNCTION customer_vault._m_subject_has_key(text) IS
    'internal: _subject_has_key inside maintenance only (the shred action''s pending rows)';

-- a timestamptz carried in a text[] parameter, exactly and whatever DateStyle says
CREATE OR REPLACE FUNCTION customer_vault._maint_time(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') $$;
COMMENT ON FUNCTION customer_vault._maint_time(timestamptz) IS
    'internal: a timestamptz as UTC ISO text, for the parameters of _maint_run';

-- The pieces of each kind of maintenance statement; _maint_run (C) puts the
-- statement together and checks the caller's privilege.  The caller cannot
-- pass SQL: every identifier is quoted here, every value a literal or $1.
--   kind 'reencrypt'      params {column, context_column}: values under an older key version
--   kind 'protect'        params {column, key, binding, context_column, blind_index_column, attnum}
--   kinds 'protect_seal', 'protect_rewrite', 'protect_check' (same params): the
--                         three steps of protect_column on a Citus table
--   kind 'purge'          params {as_of}: rows past retention, not held (delete or anonymize)
--   kind 'purge_counts'   params {as_of}: expired, held, to_purge
--   kind 'purge_shred'    params {as_of}: shreds the subjects a shred takes (as
--                         the caller, after the query); only their number comes back
--   kind 'subject_rows'   params {subject}: a subject's rows as jsonb (export_subject)
--   kind 'subject_keys'   params {subject, fk}: the keys foreign key fk references
--                         in the subject's rows (_subject_filter, 70_subjects.sql)
-- op: delete | update | select | alter | delete_where | update_where (the
-- filter applied directly, not batched by ctid: any table kind); list: SET list, select list or ALTER
-- actions; filter: the rows (alias t); bind: the text[] given as $1.
CREATE OR REPLACE FUNCTION customer_vault._maint_sql(kind text, tbl regclass, params text[],
                                                    OUT op text, OUT list text, OUT filter text,
                                                    OUT privilege text, OUT key_name text, OUT bind text[])
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    col name;
    coltype regtype;
    p customer_vault.protected_columns;
    ctx_expr text := 'NULL';
    r customer_vault.retention_policies;
    q record;
    asof timestamptz;
BEGIN
    IF kind IS NULL OR tbl IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'maintenance kind and table must not be null';
    END IF;
    SELECT t.nsp, t.rel INTO nsp, rel FROM customer_vault._table_names(tbl) t;
    IF kind = 'reencrypt' THEN
        col := params[1];
        IF col IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'table and column must not be null';
        END IF;
        coltype := customer_vault._column_type(tbl, col);
        -- the protection of the column in the table, or in the nearest partitioned table above it
        SELECT pc.* INTO p
          FROM (SELECT tbl AS relid, 0::bigint AS n
                UNION ALL SELECT pa.relid, pa.n FROM pg_partition_ancestors(tbl) WITH ORDINALITY pa(relid, n)) a
          JOIN customer_vault.protected_columns pc ON pc.relid::oid = a.relid::oid
         WHERE pc.column_name = col
         ORDER BY a.n LIMIT 1;
        IF FOUND THEN
            IF p.context_column IS NOT NULL THEN
                ctx_expr := format('customer_vault._row_context(%L, %I)', p.binding, p.context_column);
            ELSE
                ctx_expr := quote_literal(p.binding);
            END IF;
            list := format('%I = customer_vault._m_reseal(%I, %s, true)', col, col, ctx_expr);
            filter := format('customer_vault._m_needs_reseal(t.%I, true)', col);
        ELSIF coltype = ANY (ARRAY['customer_vault.encrypted_text'::regtype, 'customer_vault.encrypted_bytea'::regtype]) THEN
            IF params[2] IS NOT NULL THEN
                PERFORM customer_vault._column_type(tbl, params[2], 'context column');
                ctx_expr := format('%I::pg_catalog.text', params[2]);
            END IF;
            list := format('%I = customer_vault._m_reseal(%I, %s)', col, col, ctx_expr);
            filter := format('customer_vault._m_needs_reseal(t.%I, false)', col);
        ELSE
            RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
                MESSAGE = format('column %I of table %s is neither encrypted nor protected', col, tbl);
        END IF;
        op := 'update';
        privilege := 'UPDATE';
    ELSIF kind = 'protect' THEN
        -- params: column, key, binding, context column, blind index column, attnum
        IF params[1] IS NULL OR params[2] IS NULL OR params[3] IS NULL OR params[6] IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'column, key and binding must not be null';
        END IF;
        IF params[4] IS NULL THEN
            ctx_expr := quote_literal(params[3]);
        ELSE
            ctx_expr := format('customer_vault._row_context(%L, %I)', params[3], params[4]);
        END IF;
        list := format('ALTER COLUMN %I TYPE pg_catalog.text USING customer_vault._m_seal_column(%I::pg_catalog.text, %L, %s)',
                       params[1], params[1], params[2], ctx_expr);
        IF params[5] IS NOT NULL THEN
            list := list || format(', ALTER COLUMN %I TYPE pg_catalog.bytea USING customer_vault._m_blind_index_rewrite(%s::pg_catalog.oid::pg_catalog.regclass, %L::pg_catalog.name, %I::pg_catalog.text)',
                                   params[5], tbl::oid, params[1], params[1]);
        END IF;
        list := list || format(', ADD CONSTRAINT %I CHECK (customer_vault.is_sealed(%I))',
                               'cv_sealed_' || params[6]::smallint, params[1]);
        op := 'alter';
        privilege := 'OWNER';
        key_name := params[2];
    ELSIF kind IN ('protect_seal', 'protect_rewrite', 'protect_check') THEN
        -- protect_column on a Citus table (_finish_protection_as_owner), in
        -- three statements Citus runs on every shard: seal the existing rows
        -- through the protect trigger (an unchanged plaintext is sealed),
        -- rewrite the table (the dead rows holding plaintext do not survive
        -- into the new files; also varchar to text), then the CHECK alone
        -- (Citus takes no ADD CONSTRAINT with other subcommands).
        -- params: column, key, binding, context column, blind index column, attnum
        IF params[1] IS NULL OR params[6] IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'column and attnum must not be null';
        END IF;
        PERFORM customer_vault._column_type(tbl, params[1]::name);
        IF kind = 'protect_seal' THEN
            op := 'update_where';
            list := format('%I = %I', params[1], params[1]);
            filter := format('NOT customer_vault.is_sealed(t.%I::pg_catalog.text)', params[1]);
        ELSIF kind = 'protect_rewrite' THEN
            op := 'alter';
            list := format('ALTER COLUMN %I TYPE pg_catalog.text USING (%I::pg_catalog.text OPERATOR(pg_catalog.||) %L)',
                           params[1], params[1], '');
        ELSE
            op := 'alter';
            list := format('ADD CONSTRAINT %I CHECK (customer_vault.is_sealed(%I))',
                           'cv_sealed_' || params[6]::smallint, params[1]);
        END IF;
        privilege := 'OWNER';
    ELSIF kind IN ('purge', 'purge_counts', 'purge_shred') THEN
        IF params[1] IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'as_of must not be null';
        END IF;
        asof := params[1]::timestamp AT TIME ZONE 'UTC';
        -- as purge and purge_preview: never a future limit (the statement
        -- sees rows the caller may not: a later limit would purge or count
        -- rows still inside retention)
        PERFORM customer_vault._check_as_of(asof);
        -- the policy of the table, or of the nearest partitioned table it is a partition of
        SELECT rp.* INTO r
          FROM (SELECT tbl AS relid, 0::bigint AS n
                UNION ALL SELECT pa.relid, pa.n FROM pg_partition_ancestors(tbl) WITH ORDINALITY pa(relid, n)) a
          JOIN pg_class c ON c.oid = a.relid JOIN pg_namespace ns ON ns.oid = c.relnamespace
          JOIN customer_vault.retention_policies rp ON rp.schema_name = ns.nspname AND rp.table_name = c.relname
         ORDER BY a.n LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'undefined_object',
                MESSAGE = format('table %s has no retention policy', tbl);
        END IF;
        -- an inheritance parent (a policy of 0.1.0, or one written before
        -- set_retention refused them): its blocks do not hold its children's rows
        IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = tbl AND c.relkind <> 'p')
           AND EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = tbl) THEN
            RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                MESSAGE = format('table %s has child tables and is not purged', tbl),
                HINT = 'Set the retention of each child table, and drop this one with drop_retention().';
        END IF;
        q := customer_vault._retention_sql(r, asof);
        -- the subjects under a hold in force that are values of the subject
        -- column's type, as $1 (the owner cannot read the holds)
        bind := customer_vault._held_subjects(customer_vault._subject_type(r));
        IF kind = 'purge_counts' THEN
            op := 'select';
            list := format('pg_catalog.count(*) FILTER (WHERE %1$s), pg_catalog.count(*) FILTER (WHERE %1$s AND %2$s),'
                           ' pg_catalog.count(*) FILTER (WHERE %1$s AND NOT %2$s AND %3$s)', q.expired, q.held, q.pending);
            filter := 'true';
            privilege := 'SELECT';
        ELSIF kind = 'purge_shred' THEN
            IF r.subject_column IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                    MESSAGE = format('the retention policy of table %s has no subject column', tbl);
            END IF;
            op := 'shred';
            list := format('DISTINCT (t.%I)::pg_catalog.text', r.subject_column);
            filter := format('%s AND NOT %s AND %s AND t.%I IS NOT NULL', q.expired, q.held, q.pending, r.subject_column);
            privilege := 'SELECT';
        ELSIF r.action = 'delete' THEN
            op := 'delete';
            filter := format('%s AND NOT %s', q.expired, q.held);
            privilege := 'DELETE';
        ELSIF r.action = 'anonymize' THEN
            op := 'update';
            list := q.change;
            filter := format('%s AND NOT %s AND %s', q.expired, q.held, q.pending);
            privilege := 'UPDATE';
        ELSE
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('the %s action is not walked in batches', r.action);
        END IF;
        -- a Citus table: no ctid batches (Citus takes no FOR UPDATE in a
        -- distributed query, and the coordinator's table is empty); the filter
        -- applied directly, which Citus runs on every shard
        IF op IN ('delete', 'update') AND pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
            EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1)'
               INTO q USING tbl;
            IF q.exists THEN
                op := op || '_where';
                -- params[2] 'routed': one batch of _walk on a hash-distributed
                -- table, routed to the shards of its rows (_maint_run: the
                -- distribution values of up to max_rows rows, then the change
                -- of those values' rows only)
                IF params[2] IS NOT NULL THEN
                    IF params[2] OPERATOR(pg_catalog.<>) 'routed' THEN
                        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                            MESSAGE = pg_catalog.format('unknown batch form %L', params[2]);
                    END IF;
                    op := pg_catalog.replace(op, '_where', '_routed');
                END IF;
            END IF;
        END IF;
    ELSIF kind IN ('subject_rows', 'subject_keys') THEN
        -- the map of personal data: a subject's rows, or the keys its
        -- children reference (70_subjects.sql)
        SELECT x.op, x.list, x.filter, x.privilege, x.key_name, x.bind
          INTO op, list, filter, privilege, key_name, bind
          FROM customer_vault._subject_sql(kind, tbl, params) x;
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = format('unknown maintenance kind %L', kind);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._maint_sql(text, regclass, text[]) IS
    'internal: the pieces of one kind of maintenance statement (reencrypt, protect, protect_seal, protect_rewrite, protect_check, purge, purge_counts, purge_shred, subject_rows, subject_keys)';

-- The one block-range batch walker: walks tbl in block ranges of about
-- batch_size rows, each batch one _maint_run (as the owner) and one COMMIT; a
-- rerun after an interruption finds only what is left; a partitioned table
-- is walked leaf partition by leaf partition.  sweep: then redo the
-- rows still matching (moved or new meanwhile), batch_size at a time.
-- catch_errors: stop at the first failing batch and return its SQLSTATE and
-- message instead of raising (the batches before it stay committed).
-- Not SET search_path (a procedure with SET clauses cannot COMMIT): every
-- name is schema-qualified instead.
CREATE OR REPLACE PROCEDURE customer_vault._walk(kind text, tbl regclass, params text[], batch_size integer,
                                                skip_locked boolean DEFAULT false, async_commit boolean DEFAULT false,
                                                sweep boolean DEFAULT false, catch_errors boolean DEFAULT false,
                                                INOUT processed bigint DEFAULT 0, INOUT batches integer DEFAULT 0,
                                                INOUT err_sqlstate text DEFAULT NULL, INOUT err_message text DEFAULT NULL)
    LANGUAGE plpgsql
AS $$
DECLARE
    nblocks bigint;
    per_page double precision;
    step bigint;
    blk bigint := 0;
    n bigint;
    passes integer := 0;
    leaf pg_catalog.regclass;
    routed bigint;
    todo bigint;
    done bigint := 0;
BEGIN
    IF kind IS NULL OR tbl IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'maintenance kind and table must not be null';
    END IF;
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'batch_size must be at least 1';
    END IF;
    processed := COALESCE(processed, 0);
    batches := COALESCE(batches, 0);
    -- a partitioned table holds no rows itself: walk each of its leaf
    -- partitions, each as its own owner
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl) OPERATOR(pg_catalog.=) 'p' THEN
        FOR leaf IN SELECT t.relid FROM pg_catalog.pg_partition_tree(tbl) t WHERE t.isleaf ORDER BY t.relid::pg_catalog.oid LOOP
            CALL customer_vault._walk(kind, leaf, params, batch_size, skip_locked, async_commit, sweep, catch_errors,
                                      processed, batches, err_sqlstate, err_message);
            EXIT WHEN err_sqlstate IS NOT NULL;
        END LOOP;
        RETURN;
    END IF;
    -- a Citus table: its rows are in the shards, the coordinator's table is
    -- empty.  _maint_sql gives the filter, not ctid batches.  A purge of a
    -- hash-distributed table goes in routed batches (_maint_run): each finds
    -- the distribution values of up to batch_size rows to purge (a query on
    -- every shard, each stopping at batch_size rows) and changes the rows of
    -- those values only, a statement Citus sends to their shards alone; one
    -- committed batch each, until a batch changes nothing or as many rows as
    -- were to purge at the start have been (so an owner's trigger undoing an
    -- anonymization cannot keep it going).  Other kinds and tables: one
    -- statement, one batch.
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1'
           INTO n USING tbl;
        IF n OPERATOR(pg_catalog.=) 1 AND kind OPERATOR(pg_catalog.=) 'purge' THEN
            EXECUTE 'SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_partition d'
                    ' WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1 AND d.partmethod OPERATOR(pg_catalog.=) ''h'''
               INTO routed USING tbl;
        END IF;
        IF routed OPERATOR(pg_catalog.=) 1 THEN
            LOOP
                IF async_commit THEN
                    PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
                END IF;
                BEGIN
                    IF todo IS NULL THEN
                        -- the rows to purge now: expired, not held, not yet anonymized
                        todo := (customer_vault._maint_run('purge_counts', tbl, params))[3]::pg_catalog.int8;
                    END IF;
                    EXIT WHEN done OPERATOR(pg_catalog.>=) todo;
                    n := (customer_vault._maint_run(kind, tbl, params OPERATOR(pg_catalog.||) ARRAY['routed'],
                                                    NULL, NULL, batch_size, false))[1]::pg_catalog.int8;
                EXCEPTION WHEN OTHERS THEN
                    IF NOT catch_errors THEN
                        RAISE;
                    END IF;
                    GET STACKED DIAGNOSTICS err_sqlstate = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
                    RETURN;
                END;
                EXIT WHEN n OPERATOR(pg_catalog.=) 0;
                done := done OPERATOR(pg_catalog.+) n;
                processed := processed OPERATOR(pg_catalog.+) n;
                batches := batches OPERATOR(pg_catalog.+) 1;
                COMMIT;
            END LOOP;
            RETURN;
        END IF;
        IF n OPERATOR(pg_catalog.=) 1 THEN
            IF async_commit THEN
                PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
            END IF;
            BEGIN
                n := (customer_vault._maint_run(kind, tbl, params, NULL, NULL, NULL, false))[1]::pg_catalog.int8;
            EXCEPTION WHEN OTHERS THEN
                IF NOT catch_errors THEN
                    RAISE;
                END IF;
                GET STACKED DIAGNOSTICS err_sqlstate = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
                RETURN;
            END;
            processed := processed OPERATOR(pg_catalog.+) n;
            batches := batches OPERATOR(pg_catalog.+) 1;
            COMMIT;
            RETURN;
        END IF;
    END IF;
    nblocks := pg_catalog.pg_relation_size(tbl) OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::pg_catalog.int8;
    SELECT CASE WHEN c.relpages OPERATOR(pg_catalog.>) 0 AND c.reltuples OPERATOR(pg_catalog.>) 0
                THEN c.reltuples OPERATOR(pg_catalog./) c.relpages ELSE 50 END
      INTO per_page FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    step := GREATEST(1, (batch_size OPERATOR(pg_catalog./) GREATEST(per_page, 1))::pg_catalog.int8);
    LOOP
        IF blk OPERATOR(pg_catalog.>=) nblocks THEN
            EXIT WHEN NOT sweep OR passes OPERATOR(pg_catalog.>) 1000;
            passes := passes OPERATOR(pg_catalog.+) 1;
        END IF;
        IF async_commit THEN
            -- a batch lost to a crash is simply done again by the next run
            PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
        END IF;
        IF catch_errors THEN
            BEGIN
                IF blk OPERATOR(pg_catalog.<) nblocks THEN
                    n := (customer_vault._maint_run(kind, tbl, params, blk, blk OPERATOR(pg_catalog.+) step,
                                                    NULL, skip_locked))[1]::pg_catalog.int8;
                ELSE
                    n := (customer_vault._maint_run(kind, tbl, params, NULL, NULL, batch_size, skip_locked))[1]::pg_catalog.int8;
                END IF;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS err_sqlstate = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
                RETURN;
            END;
        ELSIF blk OPERATOR(pg_catalog.<) nblocks THEN
            n := (customer_vault._maint_run(kind, tbl, params, blk, blk OPERATOR(pg_catalog.+) step,
                                            NULL, skip_locked))[1]::pg_catalog.int8;
        ELSE
            n := (customer_vault._maint_run(kind, tbl, params, NULL, NULL, batch_size, skip_locked))[1]::pg_catalog.int8;
        END IF;
        processed := processed OPERATOR(pg_catalog.+) n;
        batches := batches OPERATOR(pg_catalog.+) 1;
        IF blk OPERATOR(pg_catalog.<) nblocks THEN
            blk := blk OPERATOR(pg_catalog.+) step;
        ELSIF n OPERATOR(pg_catalog.=) 0 THEN
            COMMIT;
            EXIT;
        END IF;
        COMMIT;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE customer_vault._walk(text, regclass, text[], integer, boolean, boolean, boolean, boolean,
                                          bigint, integer, text, text) IS
    'internal: the block-range batch walker of purge, reencrypt (and forget_subject): one committed batch per range, each as the table owner';

GRANT EXECUTE ON FUNCTION customer_vault._maint_run(text, regclass, text[], bigint, bigint, integer, boolean),
    customer_vault._maint_sql(text, regclass, text[]), customer_vault._maint_time(timestamptz)
    TO customer_vault_admin;
GRANT EXECUTE ON PROCEDURE customer_vault._walk(text, regclass, text[], integer, boolean, boolean, boolean, boolean,
                                                bigint, integer, text, text)
    TO customer_vault_admin;
