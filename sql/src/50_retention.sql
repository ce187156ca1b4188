--@ schema

---------------------------------------------------------------------------
-- Retention and legal holds
---------------------------------------------------------------------------

CREATE TABLE customer_vault.retention_policies (
    schema_name    name NOT NULL,
    table_name     name NOT NULL,
    time_column    name NOT NULL,
    keep           interval NOT NULL CHECK (keep > '0'::interval),
    action         text NOT NULL CHECK (action IN ('delete', 'anonymize', 'shred')),
    subject_column name,
    updated_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (schema_name, table_name)
);
--@ code
COMMENT ON TABLE customer_vault.retention_policies IS 'how long rows of each table are kept, and what happens to them then';
--@ schema

CREATE TABLE customer_vault.legal_holds (
    id          bigserial PRIMARY KEY,
    subject     text NOT NULL,
    reason      text NOT NULL CHECK (reason <> ''),
    placed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    placed_by   name NOT NULL DEFAULT session_user,
    until       timestamptz,
    released_at timestamptz,
    released_by name
);
CREATE INDEX legal_holds_subject_idx ON customer_vault.legal_holds (subject) WHERE released_at IS NULL;
--@ code
COMMENT ON TABLE customer_vault.legal_holds IS 'legal holds: a held subject''s rows are never purged';
--@ schema

CREATE TABLE customer_vault.purge_log (
    id          bigserial PRIMARY KEY,
    run_started timestamptz NOT NULL,
    tbl         text NOT NULL,
    action      text NOT NULL,
    cutoff      timestamp,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    rows_purged bigint NOT NULL DEFAULT 0,
    rows_held   bigint NOT NULL DEFAULT 0,
    batches     integer NOT NULL DEFAULT 0,
    dry_run     boolean NOT NULL,
    role        name NOT NULL DEFAULT session_user,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
    sqlstate    text,
    message     text,
    pid         integer
);
--@ code
COMMENT ON TABLE customer_vault.purge_log IS
    'one row per table and purge run: what was purged or anonymized or shredded, what was held; running, done, failed (with SQLSTATE and message) or interrupted';
--@ schema

SELECT pg_catalog.pg_extension_config_dump('customer_vault.retention_policies', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.legal_holds', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.legal_holds_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purge_log', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purge_log_id_seq', '');
--@ code

CREATE OR REPLACE FUNCTION customer_vault._subject_has_key(subject text) RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_subject_has_key';
COMMENT ON FUNCTION customer_vault._subject_has_key(text) IS
    'internal: whether a subject still has a live key (the shred retention action''s pending rows)';

-- the PII-labelled columns of a table (SECURITY LABEL FOR customer_vault)
CREATE OR REPLACE FUNCTION customer_vault._pii_columns(tbl regclass) RETURNS name[]
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.array_agg(a.attname ORDER BY a.attnum), '{}')
      FROM pg_catalog.pg_seclabel l
      JOIN pg_catalog.pg_attribute a ON a.attrelid = l.objoid AND a.attnum = l.objsubid
     WHERE l.classoid = 'pg_catalog.pg_class'::regclass AND l.objoid = tbl AND l.objsubid > 0
       AND l.provider = 'customer_vault' AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION customer_vault._pii_columns(regclass) IS 'internal: the PII-labelled columns of a table';

CREATE OR REPLACE FUNCTION customer_vault.set_retention(tbl regclass, time_column name, keep interval,
                                             action text DEFAULT 'delete', subject_column name DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    ttype regtype;
    pii name[];
    notnull name;
BEGIN
    IF tbl IS NULL OR time_column IS NULL OR keep IS NULL OR action IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'table, time column, keep and action must not be null';
    END IF;
    SELECT t.nsp, t.rel INTO nsp, rel FROM customer_vault._table_names(tbl) t;
    ttype := customer_vault._column_type(tbl, time_column);
    IF ttype NOT IN ('date'::regtype, 'timestamp without time zone'::regtype, 'timestamp with time zone'::regtype) THEN
        RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
            MESSAGE = pg_catalog.format('time column %I of table %s is of type %s', time_column, tbl, ttype),
            HINT = 'The time column must be of type date, timestamp or timestamptz.';
    END IF;
    IF keep <= '0'::interval THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'keep must be a positive interval';
    END IF;
    IF action NOT IN ('delete', 'anonymize', 'shred') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('invalid retention action %L', action),
            HINT = 'Use delete, anonymize or shred.';
    END IF;
    IF subject_column IS NOT NULL THEN
        PERFORM customer_vault._column_type(tbl, subject_column);
    END IF;
    IF action = 'shred' AND subject_column IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'the shred action needs a subject column',
            HINT = 'Name the column holding the customer id: shred destroys that customer''s key.';
    END IF;
    IF action = 'anonymize' THEN
        pii := customer_vault._pii_columns(tbl);
        IF pg_catalog.cardinality(pii) = 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = pg_catalog.format('table %s has no PII-labelled columns to anonymize', tbl),
                HINT = 'Label them first: SECURITY LABEL FOR customer_vault ON COLUMN t.c IS ''pii''.';
        END IF;
        SELECT a.attname INTO notnull FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = tbl AND a.attname = ANY (pii) AND a.attnotnull LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = pg_catalog.format('PII column %I of table %s is NOT NULL and cannot be anonymized', notnull, tbl);
        END IF;
        IF time_column = ANY (pii) OR subject_column = ANY (pii) THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'the time and subject columns must not be PII-labelled columns that anonymize clears';
        END IF;
    END IF;
    INSERT INTO customer_vault.retention_policies AS r
        (schema_name, table_name, time_column, keep, action, subject_column)
    VALUES (nsp, rel, time_column, keep, action, subject_column)
    ON CONFLICT (schema_name, table_name) DO UPDATE
       SET time_column = EXCLUDED.time_column, keep = EXCLUDED.keep, action = EXCLUDED.action,
           subject_column = EXCLUDED.subject_column, updated_at = pg_catalog.now();
END
$$;
COMMENT ON FUNCTION customer_vault.set_retention(regclass, name, interval, text, name) IS
    'sets (or replaces) the retention period of a table: delete, anonymize (PII-labelled columns set NULL) or shred';

CREATE OR REPLACE FUNCTION customer_vault.place_legal_hold(subject text, reason text, until timestamptz DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hold bigint;
BEGIN
    IF subject IS NULL OR subject = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'subject must not be null or empty';
    END IF;
    IF reason IS NULL OR pg_catalog.btrim(reason) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'a legal hold needs a reason',
            HINT = 'Name the case or the obligation, e.g. ''litigation 2026-041''.';
    END IF;
    IF until IS NOT NULL AND until <= pg_catalog.now() THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'until must be in the future';
    END IF;
    INSERT INTO customer_vault.legal_holds (subject, reason, until)
    VALUES (subject, reason, until) RETURNING id INTO hold;
    RETURN hold;
END
$$;
COMMENT ON FUNCTION customer_vault.place_legal_hold(text, text, timestamptz) IS
    'places a legal hold on a subject: the purge keeps their rows; returns the hold id';

CREATE OR REPLACE FUNCTION customer_vault.release_legal_hold(hold_id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE customer_vault.legal_holds h SET released_at = pg_catalog.now(), released_by = session_user
     WHERE h.id = hold_id AND h.released_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = pg_catalog.format('no active legal hold with id %s', hold_id);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault.release_legal_hold(bigint) IS 'releases a legal hold';

-- the SQL pieces of one policy: its cutoff (UTC wall clock), expired and held predicates
CREATE OR REPLACE FUNCTION customer_vault._retention_sql(r customer_vault.retention_policies, as_of timestamptz,
                                              OUT cutoff timestamp, OUT expired text, OUT held text,
                                              OUT change text, OUT pending text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ttype regtype;
    pii name[];
BEGIN
    -- retention is computed in UTC, so TimeZone settings do not move the limit;
    -- a row exactly at the limit is kept
    cutoff := (as_of AT TIME ZONE 'UTC') - r.keep;
    SELECT a.atttypid::regtype INTO ttype FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = pg_catalog.format('%I.%I', r.schema_name, r.table_name)::regclass
       AND a.attname = r.time_column AND NOT a.attisdropped;
    IF ttype = 'timestamp with time zone'::regtype THEN
        expired := pg_catalog.format('t.%I OPERATOR(pg_catalog.<) (%L::timestamp AT TIME ZONE ''UTC'')', r.time_column, cutoff);
    ELSIF ttype = 'date'::regtype THEN
        expired := pg_catalog.format('t.%I OPERATOR(pg_catalog.<) %L::date', r.time_column, cutoff::date);
    ELSE
        expired := pg_catalog.format('t.%I OPERATOR(pg_catalog.<) %L::timestamp', r.time_column, cutoff);
    END IF;
    IF r.subject_column IS NULL THEN
        held := 'false';
    ELSE
        -- the statement runs as the table's owner, who cannot read legal_holds:
        -- _maint_sql binds the subjects under an active hold as $1 (text[])
        held := pg_catalog.format(
            'COALESCE((t.%I)::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]), false)',
            r.subject_column);
    END IF;
    IF r.action = 'delete' THEN
        change := NULL;
        pending := 'true';
    ELSIF r.action = 'anonymize' THEN
        pii := customer_vault._pii_columns(pg_catalog.format('%I.%I', r.schema_name, r.table_name)::regclass);
        SELECT pg_catalog.string_agg(pg_catalog.format('%I = NULL', c), ', '),
               '(' OPERATOR(pg_catalog.||) pg_catalog.string_agg(pg_catalog.format('t.%I IS NOT NULL', c), ' OR ') OPERATOR(pg_catalog.||) ')'
          INTO change, pending FROM pg_catalog.unnest(pii) c;
        IF change IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = pg_catalog.format('table %I.%I has no PII-labelled columns to anonymize', r.schema_name, r.table_name);
        END IF;
    ELSE
        change := NULL;
        -- rows whose subject still has a live key
        pending := pg_catalog.format('COALESCE(customer_vault._m_subject_has_key((t.%I)::pg_catalog.text), false)', r.subject_column);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._retention_sql(customer_vault.retention_policies, timestamptz) IS
    'internal: the cutoff and the predicates of one retention policy';

CREATE OR REPLACE FUNCTION customer_vault.purge_preview(as_of timestamptz DEFAULT NULL)
    RETURNS TABLE(tbl regclass, expired bigint, held bigint, to_purge bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r customer_vault.retention_policies;
    c bigint[];
BEGIN
    FOR r IN SELECT * FROM customer_vault.retention_policies ORDER BY schema_name, table_name LOOP
        tbl := pg_catalog.format('%I.%I', r.schema_name, r.table_name)::regclass;
        -- counted as the table's owner (security-restricted, row security off):
        -- rows a policy hides from the caller are counted too
        c := customer_vault._maint_run('purge_counts', tbl,
                                       ARRAY[customer_vault._maint_time(COALESCE(as_of, pg_catalog.now()))])::bigint[];
        expired := c[1];
        held := c[2];
        to_purge := c[3];
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault.purge_preview(timestamptz) IS
    'per table with a retention policy: rows past retention, rows kept by a legal hold, rows a purge would change';

-- The writers of purge_log: every row the purge writes goes through these two
-- (so the log's integrity rules have one place to hook into).
-- _purge_log_write: with entry NULL a new row (status running, or failed when
-- the table could not even be started), else the end of that row.
CREATE OR REPLACE FUNCTION customer_vault._purge_log_write(entry bigint, run_started timestamptz, tbl text,
                                                          action text, cutoff timestamp, dry_run boolean,
                                                          status text, rows_purged bigint DEFAULT 0,
                                                          rows_held bigint DEFAULT 0, batches integer DEFAULT 0,
                                                          sqlstate text DEFAULT NULL, message text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    IF status IS NULL OR status NOT IN ('running', 'done', 'failed') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = pg_catalog.format('invalid purge status %L', status);
    END IF;
    IF entry IS NULL THEN
        INSERT INTO customer_vault.purge_log AS l (run_started, tbl, action, cutoff, started_at, finished_at,
                                                  rows_purged, rows_held, batches, dry_run, status, sqlstate,
                                                  message, pid)
        VALUES (run_started, tbl, action, cutoff, pg_catalog.clock_timestamp(),
                CASE WHEN status <> 'running' THEN pg_catalog.clock_timestamp() END,
                COALESCE(rows_purged, 0), COALESCE(rows_held, 0), COALESCE(batches, 0), dry_run, status, sqlstate,
                message, pg_catalog.pg_backend_pid())
        RETURNING l.id INTO id;
        RETURN id;
    END IF;
    UPDATE customer_vault.purge_log l
       SET finished_at = pg_catalog.clock_timestamp(), rows_purged = COALESCE(_purge_log_write.rows_purged, 0),
           rows_held = COALESCE(_purge_log_write.rows_held, 0), batches = COALESCE(_purge_log_write.batches, 0),
           status = _purge_log_write.status, sqlstate = _purge_log_write.sqlstate,
           message = _purge_log_write.message
     WHERE l.id = entry AND l.status = 'running';
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = pg_catalog.format('no running purge_log entry %s', entry);
    END IF;
    RETURN entry;
END
$$;
COMMENT ON FUNCTION customer_vault._purge_log_write(bigint, timestamptz, text, text, timestamp, boolean, text,
                                                    bigint, bigint, integer, text, text) IS
    'internal: writes purge_log: a new entry (running, or failed) or the end of a running one (done, failed)';

-- Entries still running whose purge is gone (its backend died, was killed or
-- the server restarted since) are marked interrupted; their finished_at stays
-- NULL (nobody knows when the work stopped).  The number marked.
CREATE OR REPLACE FUNCTION customer_vault._purge_log_interrupted() RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE customer_vault.purge_log l SET status = 'interrupted'
     WHERE l.status = 'running'
       AND (l.started_at < pg_catalog.pg_postmaster_start_time()
            OR l.pid IS NULL
            OR l.pid = pg_catalog.pg_backend_pid()
            OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(l.pid) a WHERE a.pid IS NOT NULL));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION customer_vault._purge_log_interrupted() IS
    'internal: marks purge_log entries of purges that died (killed backend, crash, restart) interrupted';

-- Not SET search_path: a procedure with SET clauses cannot COMMIT; every
-- name is schema-qualified instead.  Each table is purged as its owner
-- (security-restricted, row security off: see _maint_run), for callers with
-- the DELETE (anonymize: UPDATE) privilege on it.  Each table succeeds or
-- fails on its own: a failure is logged with its SQLSTATE and message, the
-- other tables are still purged, and the run then ends with an error naming
-- the failed tables (so pg_cron records a failure).
CREATE OR REPLACE PROCEDURE customer_vault.purge(dry_run boolean DEFAULT false, batch_size integer DEFAULT 10000,
                                      as_of timestamptz DEFAULT NULL)
    LANGUAGE plpgsql
AS $$
DECLARE
    r customer_vault.retention_policies;
    pol record;
    run_started timestamptz := pg_catalog.clock_timestamp();
    asof timestamptz;
    asof_text text;
    tname text;
    rel regclass;
    cut timestamp;
    log_id bigint;
    counts bigint[];
    subjects text[];
    subj text;
    total bigint;
    nbatches integer;
    held_count bigint;
    st text;
    msg text;
    failed text[] := '{}';
    first_state text;
BEGIN
    IF dry_run IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'dry_run must not be null';
    END IF;
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'batch_size must be at least 1';
    END IF;
    IF as_of IS NOT NULL AND (NOT pg_catalog.isfinite(as_of) OR as_of OPERATOR(pg_catalog.>) pg_catalog.now()) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'as_of must be a finite time not in the future',
            HINT = 'Leave it NULL to purge as of now.';
    END IF;
    asof := COALESCE(as_of, pg_catalog.now());
    asof_text := customer_vault._maint_time(asof);
    PERFORM customer_vault._purge_log_interrupted();
    COMMIT;
    FOR pol IN SELECT p.schema_name, p.table_name FROM customer_vault.retention_policies p
                ORDER BY p.schema_name, p.table_name LOOP
        tname := pg_catalog.format('%I.%I', pol.schema_name, pol.table_name);
        st := NULL;
        msg := NULL;
        log_id := NULL;
        cut := NULL;
        total := 0;
        nbatches := 0;
        held_count := 0;
        counts := NULL;
        subjects := NULL;
        SELECT * INTO r FROM customer_vault.retention_policies p
         WHERE p.schema_name OPERATOR(pg_catalog.=) pol.schema_name AND p.table_name OPERATOR(pg_catalog.=) pol.table_name;
        CONTINUE WHEN NOT FOUND;
        -- start: the table, its limit, the rows kept by a hold (a full scan, so
        -- only when some hold is active), the dry run's count, shred's subjects
        BEGIN
            rel := pg_catalog.to_regclass(tname);
            IF rel IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'undefined_table',
                    MESSAGE = pg_catalog.format('table %s of a retention policy does not exist', tname),
                    HINT = 'It was renamed or moved: call set_retention() for its new name.';
            END IF;
            cut := (customer_vault._retention_sql(r, asof)).cutoff;
            IF dry_run OR (r.subject_column IS NOT NULL AND EXISTS (
                   SELECT 1 FROM customer_vault.legal_holds h WHERE h.released_at IS NULL
                      AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()))) THEN
                counts := customer_vault._maint_run('purge_counts', rel, ARRAY[asof_text])::pg_catalog.int8[];
                held_count := counts[2];
            END IF;
            IF NOT dry_run AND r.action OPERATOR(pg_catalog.=) 'shred' THEN
                subjects := customer_vault._maint_run('purge_subjects', rel, ARRAY[asof_text]);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        END;
        log_id := customer_vault._purge_log_write(NULL, run_started, tname, r.action, cut, dry_run,
                                                  CASE WHEN st IS NULL THEN 'running' ELSE 'failed' END,
                                                  0, held_count, 0, st, msg);
        COMMIT;
        IF st IS NULL THEN
            IF dry_run THEN
                total := counts[3];
            ELSIF r.action OPERATOR(pg_catalog.=) 'shred' THEN
                FOREACH subj IN ARRAY subjects LOOP
                    BEGIN
                        IF customer_vault.shred_subject(subj) THEN
                            total := total OPERATOR(pg_catalog.+) 1;
                        END IF;
                    EXCEPTION WHEN OTHERS THEN
                        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
                    END;
                    EXIT WHEN st IS NOT NULL;
                    IF total OPERATOR(pg_catalog.%) batch_size OPERATOR(pg_catalog.=) 0 THEN
                        nbatches := nbatches OPERATOR(pg_catalog.+) 1;
                        COMMIT;
                    END IF;
                END LOOP;
                nbatches := nbatches OPERATOR(pg_catalog.+) 1;
            ELSE
                -- block ranges of about batch_size rows, one short transaction
                -- each; rows locked by others are skipped (next run)
                CALL customer_vault._walk('purge', rel, ARRAY[asof_text], batch_size, true, true, false, true,
                                          total, nbatches, st, msg);
            END IF;
            PERFORM customer_vault._purge_log_write(log_id, run_started, tname, r.action, cut, dry_run,
                                                    CASE WHEN st IS NULL THEN 'done' ELSE 'failed' END,
                                                    total, held_count, nbatches, st, msg);
            COMMIT;
        END IF;
        IF st IS NOT NULL THEN
            failed := failed OPERATOR(pg_catalog.||) tname;
            first_state := COALESCE(first_state, st);
        END IF;
    END LOOP;
    IF pg_catalog.cardinality(failed) OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION USING ERRCODE = first_state,
            MESSAGE = pg_catalog.format('purge failed for %s table(s): %s', pg_catalog.cardinality(failed),
                                        pg_catalog.array_to_string(failed, ', ')),
            DETAIL = 'The other tables were purged; customer_vault.purge_log holds the SQLSTATE and message of each failure.';
    END IF;
END
$$;
COMMENT ON PROCEDURE customer_vault.purge(boolean, integer, timestamptz) IS
    'removes, anonymizes or shreds rows past retention in short committed batches as each table''s owner, keeping held subjects; logs every table, a failing table stops no other';

-- a clear error, with the way to install it, when pg_cron is not in this database
CREATE OR REPLACE FUNCTION customer_vault._require_pg_cron() RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regnamespace('cron') IS NULL
       OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = 'pg_cron is not installed in this database',
            HINT = 'Install postgresql-15-cron, add pg_cron to shared_preload_libraries, set cron.database_name to this database, restart, and run CREATE EXTENSION pg_cron.';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._require_pg_cron() IS 'internal: raises an error unless pg_cron is installed here';

CREATE OR REPLACE FUNCTION customer_vault.schedule_purge(schedule text DEFAULT '15 3 * * *') RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint;
BEGIN
    PERFORM customer_vault._require_pg_cron();
    IF schedule IS NULL OR pg_catalog.btrim(schedule) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'schedule must not be empty';
    END IF;
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
       INTO job USING 'customer_vault_purge', schedule, 'CALL customer_vault.purge()';
    RETURN job;
END
$$;
COMMENT ON FUNCTION customer_vault.schedule_purge(text) IS
    'creates or replaces the pg_cron job customer_vault_purge running CALL customer_vault.purge(); returns its id';

CREATE OR REPLACE FUNCTION customer_vault.unschedule_purge() RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    done boolean;
BEGIN
    PERFORM customer_vault._require_pg_cron();
    IF NOT EXISTS (SELECT 1 FROM cron.job WHERE jobname = 'customer_vault_purge' AND username = current_user) THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT cron.unschedule($1)' INTO done USING 'customer_vault_purge';
    RETURN done;
END
$$;
COMMENT ON FUNCTION customer_vault.unschedule_purge() IS 'removes the pg_cron job customer_vault_purge; false if there was none';
