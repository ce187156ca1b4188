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
    relid          regclass NOT NULL,
    PRIMARY KEY (schema_name, table_name),
    CONSTRAINT retention_policies_relid_key UNIQUE (relid)
);
--@ code
COMMENT ON TABLE customer_vault.retention_policies IS
    'how long rows of each table are kept, and what happens to them then; relid is the table (its names cannot change while it has a policy)';
--@ schema

-- Evidence chains (legal holds, purge log): the last entry of each, updated
-- under its row lock by the append functions only.  Nobody else has any
-- privilege on it, so nobody else can take that lock (a public advisory lock
-- could be taken by any role and block every append), and an append reads
-- one row instead of searching the chain (O(1)).
CREATE TABLE customer_vault.evidence_heads (
    chain     text PRIMARY KEY CHECK (chain IN ('legal_hold_events', 'purge_log_entries')),
    last_id   bigint NOT NULL,
    last_hash bytea
);
--@ code
COMMENT ON TABLE customer_vault.evidence_heads IS
    'internal: the last id and hash of each append-only evidence chain (legal_hold_events, purge_log_entries)';
--@ schema

-- append-only, hash-chained: a hold is placed by one entry and released by another
CREATE TABLE customer_vault.legal_hold_events (
    id           bigint PRIMARY KEY,
    hold_id      bigint NOT NULL,
    action       text NOT NULL,
    subject      text CHECK (subject <> ''),
    reason       text CHECK (reason <> ''),
    until        timestamptz,
    recorded_at  timestamptz NOT NULL,
    session_role name NOT NULL,
    acting_role  name NOT NULL,
    prev_hash    bytea,
    hash         bytea NOT NULL,
    subject_hash bytea,
    hash_version smallint NOT NULL DEFAULT 1,
    CONSTRAINT legal_hold_events_place_check CHECK (action <> 'place' OR (hold_id = id AND reason IS NOT NULL)),
    CONSTRAINT legal_hold_events_release_check CHECK (action <> 'release' OR (hold_id < id AND until IS NULL)),
    CONSTRAINT legal_hold_events_action_check CHECK (action IN ('place', 'release', 'redact')),
    CONSTRAINT legal_hold_events_redact_check CHECK (action <> 'redact' OR (hold_id < id AND until IS NULL)),
    CONSTRAINT legal_hold_events_subject_form_check CHECK (CASE hash_version
        WHEN 1 THEN subject IS NOT NULL AND subject_hash IS NULL AND action <> 'redact'
        WHEN 2 THEN subject IS NULL AND pg_catalog.length(subject_hash) = 32
        ELSE false END)
);
CREATE UNIQUE INDEX legal_hold_events_release_key ON customer_vault.legal_hold_events (hold_id)
    WHERE action = 'release';
CREATE INDEX legal_hold_events_subject_idx ON customer_vault.legal_hold_events (subject);
CREATE INDEX legal_hold_events_subject_hash_idx ON customer_vault.legal_hold_events (subject_hash);
--@ code
COMMENT ON TABLE customer_vault.legal_hold_events IS
    'append-only, hash-chained record of every legal hold placed and released (who, when, why)';
--@ schema

-- append-only, hash-chained: one 'start' entry per table and purge run, closed
-- by at most one 'done', 'failed' or 'interrupted' entry referring to it (the
-- view purge_log shows one row per run)
CREATE TABLE customer_vault.purge_log_entries (
    id           bigint PRIMARY KEY,
    event        text NOT NULL CHECK (event IN ('start', 'done', 'failed', 'interrupted')),
    ref          bigint,
    run_started  timestamptz NOT NULL,
    tbl          text NOT NULL,
    action       text NOT NULL,
    cutoff       timestamp,
    dry_run      boolean NOT NULL,
    rows_purged  bigint NOT NULL DEFAULT 0,
    rows_held    bigint NOT NULL DEFAULT 0,
    batches      integer NOT NULL DEFAULT 0,
    sqlstate     text,
    message      text,
    pid          integer,
    recorded_at  timestamptz NOT NULL,
    session_role name NOT NULL,
    acting_role  name NOT NULL,
    prev_hash    bytea,
    hash         bytea NOT NULL,
    CONSTRAINT purge_log_entries_ref_check CHECK ((event = 'start') = (ref IS NULL) AND (ref IS NULL OR ref < id))
);
CREATE UNIQUE INDEX purge_log_entries_ref_key ON customer_vault.purge_log_entries (ref);
--@ code
COMMENT ON TABLE customer_vault.purge_log_entries IS
    'append-only, hash-chained: per table and purge run a start entry and the entry that ends it (done, failed or interrupted)';
--@ schema

SELECT pg_catalog.pg_extension_config_dump('customer_vault.retention_policies', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.evidence_heads', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.legal_hold_events', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purge_log_entries', '');
--@ code

-- Evidence: append-only tables (UPDATE, DELETE, TRUNCATE refused by triggers
-- that fire ALWAYS, also under session_replication_role = replica), written
-- only through the SECURITY DEFINER functions below, each entry chained to the
-- previous one by a SHA-256 hash over a canonical encoding (a JSON array, times
-- as integer microseconds since the epoch).
CREATE OR REPLACE FUNCTION customer_vault._evidence_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
        MESSAGE = pg_catalog.format('%s is append-only: %s is not allowed', TG_TABLE_NAME, TG_OP),
        HINT = CASE TG_TABLE_NAME WHEN 'legal_hold_events'
                    THEN 'Release a hold with customer_vault.release_legal_hold().'
                    ELSE 'Purge runs are recorded by customer_vault.purge().' END;
END
$$;
COMMENT ON FUNCTION customer_vault._evidence_append_only() IS
    'internal: refuses UPDATE, DELETE and TRUNCATE of legal_hold_events and purge_log';
CREATE OR REPLACE TRIGGER legal_hold_events_no_update_delete BEFORE UPDATE OR DELETE ON customer_vault.legal_hold_events
    FOR EACH ROW EXECUTE FUNCTION customer_vault._evidence_append_only();
CREATE OR REPLACE TRIGGER legal_hold_events_no_truncate BEFORE TRUNCATE ON customer_vault.legal_hold_events
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._evidence_append_only();
CREATE OR REPLACE TRIGGER purge_log_entries_no_update_delete BEFORE UPDATE OR DELETE ON customer_vault.purge_log_entries
    FOR EACH ROW EXECUTE FUNCTION customer_vault._evidence_append_only();
CREATE OR REPLACE TRIGGER purge_log_entries_no_truncate BEFORE TRUNCATE ON customer_vault.purge_log_entries
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._evidence_append_only();
ALTER TABLE customer_vault.legal_hold_events ENABLE ALWAYS TRIGGER legal_hold_events_no_update_delete;
ALTER TABLE customer_vault.legal_hold_events ENABLE ALWAYS TRIGGER legal_hold_events_no_truncate;
ALTER TABLE customer_vault.purge_log_entries ENABLE ALWAYS TRIGGER purge_log_entries_no_update_delete;
ALTER TABLE customer_vault.purge_log_entries ENABLE ALWAYS TRIGGER purge_log_entries_no_truncate;

-- the chained hash of a legal hold entry (over every column but hash):
-- version 1 as written before 0.5.0 (subject in plain text), version 2 with
-- the version and the subject's keyed hash (subject NULL) after the action
CREATE OR REPLACE FUNCTION customer_vault._evidence_hash(e customer_vault.legal_hold_events) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.sha256(COALESCE(e.prev_hash, ''::bytea) OPERATOR(pg_catalog.||) pg_catalog.convert_to(
        CASE e.hash_version
        WHEN 1 THEN
        pg_catalog.jsonb_build_array('legal_hold_events', e.id, e.hold_id, e.action, e.subject, e.reason,
            (EXTRACT(epoch FROM e.until) OPERATOR(pg_catalog.*) 1000000)::bigint,
            (EXTRACT(epoch FROM e.recorded_at) OPERATOR(pg_catalog.*) 1000000)::bigint,
            e.session_role, e.acting_role)::text
        WHEN 2 THEN
        pg_catalog.jsonb_build_array('legal_hold_events', 2, e.id, e.hold_id, e.action, e.subject,
            pg_catalog.encode(e.subject_hash, 'hex'), e.reason,
            (EXTRACT(epoch FROM e.until) OPERATOR(pg_catalog.*) 1000000)::bigint,
            (EXTRACT(epoch FROM e.recorded_at) OPERATOR(pg_catalog.*) 1000000)::bigint,
            e.session_role, e.acting_role)::text
        END, 'UTF8'))
$$;
COMMENT ON FUNCTION customer_vault._evidence_hash(customer_vault.legal_hold_events) IS
    'internal: the chained hash of one legal_hold_events entry';

-- the chained hash of a purge log entry (over every column but hash)
CREATE OR REPLACE FUNCTION customer_vault._evidence_hash(e customer_vault.purge_log_entries) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.sha256(COALESCE(e.prev_hash, ''::bytea) OPERATOR(pg_catalog.||) pg_catalog.convert_to(
        pg_catalog.jsonb_build_array('purge_log_entries', e.id, e.event, e.ref,
            (EXTRACT(epoch FROM e.run_started) OPERATOR(pg_catalog.*) 1000000)::bigint,
            e.tbl, e.action,
            (EXTRACT(epoch FROM e.cutoff) OPERATOR(pg_catalog.*) 1000000)::bigint,
            e.dry_run, e.rows_purged, e.rows_held, e.batches, e.sqlstate, e.message, e.pid,
            (EXTRACT(epoch FROM e.recorded_at) OPERATOR(pg_catalog.*) 1000000)::bigint,
            e.session_role, e.acting_role)::text, 'UTF8'))
$$;
COMMENT ON FUNCTION customer_vault._evidence_hash(customer_vault.purge_log_entries) IS
    'internal: the chained hash of one purge_log_entries entry';

-- Locks the head of a chain (only the extension's owner can: nobody else has
-- any privilege on evidence_heads) and returns the next id and the previous
-- hash.  The lock is held to the end of the transaction, so appends to one
-- chain are serialized; called only by the SECURITY DEFINER writers below.
CREATE OR REPLACE FUNCTION customer_vault._evidence_next(chain text, OUT next_id bigint, OUT prev_hash bytea)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT h.last_id + 1, h.last_hash INTO next_id, prev_hash
      FROM customer_vault.evidence_heads h WHERE h.chain = _evidence_next.chain FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO customer_vault.evidence_heads AS h (chain, last_id, last_hash)
        VALUES (_evidence_next.chain, 0, NULL) ON CONFLICT ON CONSTRAINT evidence_heads_pkey DO NOTHING;
        SELECT h.last_id + 1, h.last_hash INTO STRICT next_id, prev_hash
          FROM customer_vault.evidence_heads h WHERE h.chain = _evidence_next.chain FOR UPDATE;
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._evidence_next(text) IS
    'internal: locks the head of an evidence chain; returns the next entry id and the previous hash';

-- the role a SECURITY DEFINER function was called as (current_user outside it)
CREATE OR REPLACE FUNCTION customer_vault._calling_role() RETURNS name
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pg_catalog.current_setting('role') = 'none' THEN session_user
                ELSE pg_catalog.current_setting('role')::name END
$$;
COMMENT ON FUNCTION customer_vault._calling_role() IS
    'internal: the current role of the caller of a SECURITY DEFINER function (SET ROLE, else the session user)';

-- one legal hold entry, chained; returns its id.  The subject is stored as
-- its keyed hash (version 2): subject_hash when given (a release or a
-- redaction repeats the hold's), else that of subject (kept in
-- evidence_subjects); in plain text only without a root key (version 1).
CREATE OR REPLACE FUNCTION customer_vault._legal_hold_append(action text, hold_id bigint, subject text, reason text,
                                                  until timestamptz, subject_hash bytea DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e customer_vault.legal_hold_events;
BEGIN
    -- the holds are the coordinator's (not on a Citus worker)
    PERFORM customer_vault._coordinator_only('a legal hold change');
    SELECT n.next_id, n.prev_hash INTO e.id, e.prev_hash FROM customer_vault._evidence_next('legal_hold_events') n;
    e.hold_id := COALESCE(hold_id, e.id);
    e.action := action;
    e.subject_hash := COALESCE(subject_hash, customer_vault._evidence_subject(subject, true));
    IF e.subject_hash IS NOT NULL THEN
        e.hash_version := 2;
        e.subject := NULL;
    ELSE
        e.hash_version := 1;
        e.subject := subject;
    END IF;
    e.reason := reason;
    e.until := until;
    e.recorded_at := pg_catalog.clock_timestamp();
    e.session_role := session_user;
    e.acting_role := customer_vault._calling_role();
    e.hash := customer_vault._evidence_hash(e);
    INSERT INTO customer_vault.legal_hold_events SELECT e.*;
    UPDATE customer_vault.evidence_heads h SET last_id = e.id, last_hash = e.hash WHERE h.chain = 'legal_hold_events';
    RETURN e.id;
END
$$;
COMMENT ON FUNCTION customer_vault._legal_hold_append(text, bigint, text, text, timestamptz, bytea) IS
    'internal: appends one hash-chained entry to legal_hold_events (the subject as its keyed hash)';

-- The first broken entry of a chain: a hash that does not match its entry, a
-- link to anything but the previous entry, or a chain whose last entry is not
-- the head recorded at the last append (entries removed or added behind the
-- functions' backs).  NULL when intact.
CREATE OR REPLACE FUNCTION customer_vault._evidence_verify(chain text) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    broken bigint;
    last_id bigint;
    last_hash bytea;
    first_id bigint;
    h customer_vault.evidence_heads;
BEGIN
    IF chain IS NULL OR chain NOT IN ('legal_hold_events', 'purge_log_entries') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = pg_catalog.format('no evidence chain %L', chain);
    END IF;
    EXECUTE pg_catalog.format(
        'SELECT e.id FROM (SELECT l.id, l.hash, l.prev_hash, pg_catalog.lag(l.hash) OVER w AS expected_prev,'
        '                         customer_vault._evidence_hash(l) AS recomputed'
        '                    FROM customer_vault.%I l WINDOW w AS (ORDER BY l.id)) e'
        ' WHERE e.hash IS DISTINCT FROM e.recomputed OR e.prev_hash IS DISTINCT FROM e.expected_prev'
        ' ORDER BY e.id LIMIT 1', chain) INTO broken;
    IF broken IS NOT NULL THEN
        RETURN broken;
    END IF;
    EXECUTE pg_catalog.format('SELECT l.id, l.hash FROM customer_vault.%I l ORDER BY l.id DESC LIMIT 1', chain)
       INTO last_id, last_hash;
    SELECT * INTO h FROM customer_vault.evidence_heads eh WHERE eh.chain = _evidence_verify.chain;
    IF h.chain IS NULL THEN
        IF last_id IS NULL THEN
            RETURN NULL;                -- nothing was ever appended
        END IF;
        EXECUTE pg_catalog.format('SELECT min(l.id) FROM customer_vault.%I l', chain) INTO first_id;
        RETURN first_id;                -- entries without a head: none came through the functions
    END IF;
    IF last_id IS NULL AND h.last_id = 0 THEN
        RETURN NULL;                        -- a head locked (forget_subject) before any entry
    ELSIF last_id IS NULL OR last_id < h.last_id THEN
        RETURN COALESCE(last_id, 0) + 1;    -- entries removed at the end
    ELSIF last_id > h.last_id THEN
        RETURN h.last_id + 1;               -- entries added behind the functions' backs
    ELSIF last_hash IS DISTINCT FROM h.last_hash THEN
        RETURN last_id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION customer_vault._evidence_verify(text) IS
    'internal: NULL when an evidence chain is intact, else the id of its first broken or missing entry';

CREATE OR REPLACE FUNCTION customer_vault.verify_legal_holds() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT customer_vault._evidence_verify('legal_hold_events')
$$;
COMMENT ON FUNCTION customer_vault.verify_legal_holds() IS
    'NULL when the hash chain of legal_hold_events is intact, else the id of the first broken (or missing) entry';

CREATE OR REPLACE FUNCTION customer_vault.verify_purge_log() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT customer_vault._evidence_verify('purge_log_entries')
$$;
COMMENT ON FUNCTION customer_vault.verify_purge_log() IS
    'NULL when the hash chain of purge_log_entries is intact, else the id of the first broken (or missing) entry';

-- every hold, placed and (maybe) released, one row each; the subject in
-- plain text while it is known (evidence_subjects for holds of hash version
-- 2, the entry for version 1), NULL once it was erased: the erasure names
-- each of the subject's holds (either version) in a 'redact' entry, which
-- keeps it NULL even when the subject comes back (a new hold recreates its
-- evidence_subjects row)
CREATE OR REPLACE VIEW customer_vault.legal_holds AS
    SELECT p.id,
           CASE WHEN EXISTS (SELECT 1 FROM customer_vault.legal_hold_events x
                              WHERE x.hold_id = p.id AND x.action = 'redact') THEN NULL
                WHEN p.hash_version = 2 THEN d.subject
                ELSE p.subject END AS subject,
           p.reason, p.recorded_at AS placed_at, p.session_role AS placed_by,
           p.acting_role AS placed_as, p.until,
           r.recorded_at AS released_at, r.session_role AS released_by, r.acting_role AS released_as,
           r.reason AS release_reason,
           (r.id IS NULL AND (p.until IS NULL OR p.until > pg_catalog.now())) AS active,
           p.subject_hash
      FROM customer_vault.legal_hold_events p
      LEFT JOIN customer_vault.legal_hold_events r ON r.hold_id = p.id AND r.action = 'release'
      LEFT JOIN customer_vault.evidence_subjects d ON d.subject_hash = p.subject_hash
     WHERE p.action = 'place';
COMMENT ON VIEW customer_vault.legal_holds IS
    'every legal hold (from legal_hold_events): placed, released, active (placed, not released, not expired)';

CREATE OR REPLACE VIEW customer_vault.current_legal_holds AS
    SELECT h.id, h.subject, h.reason, h.placed_at, h.placed_by, h.placed_as, h.until
      FROM customer_vault.legal_holds h
     WHERE h.active;
COMMENT ON VIEW customer_vault.current_legal_holds IS
    'the legal holds in force: placed, not released, not expired';

-- one row per table and purge run: its start entry and the entry that ended it
CREATE OR REPLACE VIEW customer_vault.purge_log AS
    SELECT s.id, s.run_started, s.tbl, s.action, s.cutoff, s.recorded_at AS started_at,
           CASE WHEN c.event IN ('done', 'failed') THEN c.recorded_at END AS finished_at,
           COALESCE(c.rows_purged, s.rows_purged) AS rows_purged, COALESCE(c.rows_held, s.rows_held) AS rows_held,
           COALESCE(c.batches, s.batches) AS batches, s.dry_run, s.session_role AS role,
           COALESCE(c.event, 'running') AS status, COALESCE(c.sqlstate, s.sqlstate) AS sqlstate,
           COALESCE(c.message, s.message) AS message, s.pid, s.acting_role
      FROM customer_vault.purge_log_entries s
      LEFT JOIN customer_vault.purge_log_entries c ON c.ref = s.id
     WHERE s.event = 'start';
COMMENT ON VIEW customer_vault.purge_log IS
    'one row per table and purge run (from purge_log_entries): what was purged or anonymized or shredded, what was held; running, done, failed (with SQLSTATE and message) or interrupted';

CREATE OR REPLACE FUNCTION customer_vault._subject_has_key(subject text) RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_subject_has_key';
COMMENT ON FUNCTION customer_vault._subject_has_key(text) IS
    'internal: whether a subject still has a live key (the shred retention action''s pending rows)';

-- the PII-labelled columns of a table (SECURITY LABEL FOR customer_vault)
-- (plpgsql: _column_label is defined later, in 70_subjects.sql)
CREATE OR REPLACE FUNCTION customer_vault._pii_columns(tbl regclass) RETURNS name[]
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT COALESCE(pg_catalog.array_agg(a.attname ORDER BY a.attnum), '{}')
              FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
               AND customer_vault._column_label(tbl, a.attnum) IS NOT NULL);
END
$$;
COMMENT ON FUNCTION customer_vault._pii_columns(regclass) IS 'internal: the PII-labelled columns of a table (labels of a partitioned table apply to its partitions)';

-- A period (retention, consent lifetime) must be positive in every reading:
-- an interval has three fields (months, days, microseconds) and no total
-- order, so '-1 year 360 days' is "positive" to one test and negative to
-- another.  Each field must be >= 0, the whole > 0, and at most 200 years
-- (beyond that the limit overflows timestamp arithmetic later, 22008).
CREATE OR REPLACE FUNCTION customer_vault._check_period(period interval, what text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    months bigint;
    days bigint;
    rest interval;
BEGIN
    IF period IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = pg_catalog.format('%s must not be null', what);
    END IF;
    months := (EXTRACT(year FROM period) * 12 + EXTRACT(month FROM period))::bigint;
    days := EXTRACT(day FROM period)::bigint;
    IF months < 0 OR days < 0 OR period > interval '200 years' THEN
        rest := NULL;
    ELSE
        rest := period - pg_catalog.make_interval(months => months::integer, days => days::integer);
    END IF;
    IF rest IS NULL OR rest < interval '0' OR period <= interval '0' OR period > interval '200 years' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('%s must be a positive interval of at most 200 years', what),
            DETAIL = pg_catalog.format('Its months (%s), days (%s) and time must each be zero or positive, and not all zero.',
                                       months, days),
            HINT = 'For example ''7 years'' or ''90 days''.';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._check_period(interval, text) IS
    'internal: refuses a period that is not positive in every field, or longer than 200 years';

-- the time a purge or a preview looks from: finite, not in the future
CREATE OR REPLACE FUNCTION customer_vault._check_as_of(as_of timestamptz) RETURNS void
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF as_of IS NOT NULL AND (NOT pg_catalog.isfinite(as_of) OR as_of > pg_catalog.clock_timestamp()) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'as_of must be a finite time not in the future',
            HINT = 'Leave it NULL to purge as of now.';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._check_as_of(timestamptz) IS
    'internal: refuses an infinite or future as_of';

-- SECURITY DEFINER: retention_policies is written only here and by
-- drop_retention (the admin has no INSERT, UPDATE or DELETE on it, so every
-- policy passes these checks).
CREATE OR REPLACE FUNCTION customer_vault.set_retention(tbl regclass, time_column name, keep interval,
                                             action text DEFAULT 'delete', subject_column name DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    ttype regtype;
    pii name[];
    notnull name;
BEGIN
    PERFORM customer_vault._coordinator_only('set_retention()');
    IF tbl IS NULL OR time_column IS NULL OR keep IS NULL OR action IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'table, time column, keep and action must not be null';
    END IF;
    SELECT t.nsp, t.rel INTO nsp, rel FROM customer_vault._table_names(tbl) t;
    -- the purge walks a partitioned table partition by partition, but an
    -- inheritance parent block by block: its blocks do not hold its children's rows
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = tbl AND c.relkind <> 'p')
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = tbl) THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = pg_catalog.format('table %s has child tables', tbl),
            DETAIL = 'The purge walks the blocks of an inheritance parent, which do not hold its children''s rows.',
            HINT = 'Set the retention of each child table.';
    END IF;
    ttype := customer_vault._column_type(tbl, time_column);
    IF ttype NOT IN ('date'::regtype, 'timestamp without time zone'::regtype, 'timestamp with time zone'::regtype) THEN
        RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
            MESSAGE = pg_catalog.format('time column %I of table %s is of type %s', time_column, tbl, ttype),
            HINT = 'The time column must be of type date, timestamp or timestamptz.';
    END IF;
    PERFORM customer_vault._check_period(keep, 'keep');
    IF action NOT IN ('delete', 'anonymize', 'shred') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('invalid retention action %L', action),
            HINT = 'Use delete, anonymize or shred.';
    END IF;
    IF subject_column IS NOT NULL THEN
        PERFORM customer_vault._check_subject_type(customer_vault._column_type(tbl, subject_column),
                                                   pg_catalog.format('subject column %I of table %s', subject_column, tbl));
        PERFORM customer_vault._check_subject_collation(tbl, subject_column,
                                                        pg_catalog.format('subject column %I of table %s', subject_column, tbl));
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
    -- a policy left under this name by a dropped table is replaced
    DELETE FROM customer_vault.retention_policies r
     WHERE r.schema_name = nsp AND r.table_name = rel AND r.relid::oid <> tbl::oid;
    INSERT INTO customer_vault.retention_policies AS r
        (schema_name, table_name, time_column, keep, action, subject_column, relid)
    VALUES (nsp, rel, time_column, keep, action, subject_column, tbl)
    ON CONFLICT (schema_name, table_name) DO UPDATE
       SET time_column = EXCLUDED.time_column, keep = EXCLUDED.keep, action = EXCLUDED.action,
           subject_column = EXCLUDED.subject_column, updated_at = pg_catalog.now();
    -- the table joins the map of personal data (unless registered already)
    IF subject_column IS NOT NULL THEN
        PERFORM customer_vault._register_subject_table(tbl, subject_column, true);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault.set_retention(regclass, name, interval, text, name) IS
    'sets (or replaces) the retention period of a table: delete, anonymize (PII-labelled columns set NULL) or shred';

-- removes the retention policy of a table; false if it had none
CREATE OR REPLACE FUNCTION customer_vault.drop_retention(tbl regclass) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM customer_vault._coordinator_only('drop_retention()');
    IF tbl IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'table must not be null';
    END IF;
    DELETE FROM customer_vault.retention_policies p WHERE p.relid::oid = tbl::oid;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION customer_vault.drop_retention(regclass) IS
    'removes the retention policy of a table; false if it had none';

-- The types a subject column may have: built-in base types of pg_catalog
-- only.  Holds are converted to the column's type and compared with its
-- equality operator inside SECURITY DEFINER code and as the purging role; a
-- domain's CHECK, a user type's input function or an implicit cast of the
-- table owner's making would run the owner's code there with those rights.
CREATE OR REPLACE FUNCTION customer_vault._subject_type_ok(typ regtype) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT typ IS NOT NULL AND typ::oid IN ('pg_catalog.text'::regtype::oid, 'pg_catalog.varchar'::regtype::oid,
                                            'pg_catalog.bpchar'::regtype::oid, 'pg_catalog.int2'::regtype::oid,
                                            'pg_catalog.int4'::regtype::oid, 'pg_catalog.int8'::regtype::oid,
                                            'pg_catalog.numeric'::regtype::oid, 'pg_catalog.uuid'::regtype::oid)
$$;
COMMENT ON FUNCTION customer_vault._subject_type_ok(regtype) IS
    'internal: whether a subject column type is allowed (text, varchar, char, smallint, integer, bigint, numeric, uuid)';

-- an error unless a subject column type is allowed
CREATE OR REPLACE FUNCTION customer_vault._check_subject_type(typ regtype, what text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT customer_vault._subject_type_ok(typ) THEN
        RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
            MESSAGE = pg_catalog.format('%s is of type %s, which is not allowed for a subject column', what, typ),
            DETAIL = 'Subjects are compared in the column''s type inside the extension''s own code: domains and user-defined types could run their owner''s code there.',
            HINT = 'Use a column of type text, varchar, char, smallint, integer, bigint, numeric or uuid.';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._check_subject_type(regtype, text) IS
    'internal: refuses a subject column type that is not a built-in base type of pg_catalog';

-- an error when a subject column compares in a nondeterministic collation
-- (case- or accent-insensitive): the erasure's and the purge's statements
-- compare in the column's collation, the holds, the consents and the keys
-- byte-wise, so forget_subject('ALICE@example.com') would delete the rows of
-- 'alice@example.com' past her legal hold (review rev-forget)
CREATE OR REPLACE FUNCTION customer_vault._check_subject_collation(tbl regclass, col name, what text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    coll text;
BEGIN
    SELECT pg_catalog.format('%I.%I', n.nspname, c.collname) INTO coll
      FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_collation c ON c.oid OPERATOR(pg_catalog.=) a.attcollation
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.collnamespace
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) col
       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped AND NOT c.collisdeterministic;
    IF coll IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = pg_catalog.format('%s has the nondeterministic collation %s', what, coll),
            DETAIL = 'Legal holds, consents and subject keys name a subject byte for byte; a column comparing texts that differ as equal would let one spelling erase or purge the rows of another, past its holds.',
            HINT = 'Give the column a deterministic collation (ALTER TABLE ... ALTER COLUMN ... TYPE ... COLLATE "C"), and store the subject in one spelling (e.g. lower case).';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._check_subject_collation(regclass, name, text) IS
    'internal: refuses a subject column with a nondeterministic collation';

-- whether a text converts to a type (a hold subject to a subject column's
-- type); only for the allowed subject types: nothing of a user's runs here
CREATE OR REPLACE FUNCTION customer_vault._casts_to(val text, typ regtype) RETURNS boolean
    LANGUAGE plpgsql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM customer_vault._check_subject_type(typ, 'the subject column');
    EXECUTE pg_catalog.format('SELECT %L::%s', val, typ);
    RETURN true;
EXCEPTION WHEN data_exception THEN
    RETURN false;
END
$$;
COMMENT ON FUNCTION customer_vault._casts_to(text, regtype) IS
    'internal: whether a text converts to a value of an allowed subject type without error';

-- the equality operator to compare values of a subject column: pg_catalog's only
CREATE OR REPLACE FUNCTION customer_vault._eq_operator(typ regtype) RETURNS text
    LANGUAGE plpgsql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM customer_vault._check_subject_type(typ, 'the subject column');
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_operator o
                    WHERE o.oprname = '=' AND o.oprleft = typ AND o.oprright = typ
                      AND o.oprresult = 'pg_catalog.bool'::regtype
                      AND o.oprnamespace = 'pg_catalog'::regnamespace) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_function',
            MESSAGE = pg_catalog.format('no equality operator of pg_catalog for type %s', typ);
    END IF;
    RETURN 'OPERATOR(pg_catalog.=)';
END
$$;
COMMENT ON FUNCTION customer_vault._eq_operator(regtype) IS
    'internal: OPERATOR(pg_catalog.=) comparing two values of an allowed subject type';

-- the subjects of the holds in force that convert to a type: what the purge
-- compares a subject column with, in that column's own type (42 = '00042')
-- (typ NULL: every subject under a hold in force)
CREATE OR REPLACE FUNCTION customer_vault._held_subjects(typ regtype) RETURNS text[]
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT h.subject), '{}')
      FROM customer_vault.current_legal_holds h
     WHERE typ IS NULL OR customer_vault._casts_to(h.subject, typ)
$$;
COMMENT ON FUNCTION customer_vault._held_subjects(regtype) IS
    'internal: the subjects under a legal hold in force that convert to a type';

CREATE OR REPLACE FUNCTION customer_vault.place_legal_hold(subject text, reason text, until timestamptz DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    types text;
BEGIN
    IF subject IS NULL OR subject = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'subject must not be null or empty';
    END IF;
    -- the bound of subject keys, consent and forget_subject (CV_SUBJECT_MAX)
    IF pg_catalog.octet_length(subject) > 255 THEN
        RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded', MESSAGE = 'subject identifier is too long',
            DETAIL = 'A subject identifier is at most 255 bytes long.';
    END IF;
    IF reason IS NULL OR pg_catalog.btrim(reason) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'a legal hold needs a reason',
            HINT = 'Name the case or the obligation, e.g. ''litigation 2026-041''.';
    END IF;
    IF until IS NOT NULL AND NOT pg_catalog.isfinite(until) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'until must be a finite time',
            HINT = 'Leave until NULL for a hold without an end date.';
    END IF;
    IF until IS NOT NULL AND until <= pg_catalog.now() THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'until must be in the future';
    END IF;
    -- the hold must mean a subject of some table the purge compares it with
    -- (a typo such as '42x' where every subject column is an integer is refused)
    SELECT pg_catalog.string_agg(DISTINCT a.atttypid::regtype::text, ', ') INTO types
      FROM customer_vault.retention_policies r
      JOIN pg_catalog.pg_attribute a
        ON a.attrelid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', r.schema_name, r.table_name))
       AND a.attname = r.subject_column AND NOT a.attisdropped
       AND customer_vault._subject_type_ok(a.atttypid::regtype);
    IF types IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM customer_vault.retention_policies r
             JOIN pg_catalog.pg_attribute a
               ON a.attrelid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', r.schema_name, r.table_name))
              AND a.attname = r.subject_column AND NOT a.attisdropped
            WHERE CASE WHEN customer_vault._subject_type_ok(a.atttypid::regtype)
                       THEN customer_vault._casts_to(place_legal_hold.subject, a.atttypid::regtype)
                       ELSE false END) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_text_representation',
            MESSAGE = 'subject is not a valid value of any subject column with a retention policy',
            DETAIL = pg_catalog.format('The subject columns are of type %s.', types),
            HINT = 'A hold names a subject as the retention policies'' subject columns store it.';
    END IF;
    RETURN customer_vault._legal_hold_append('place', NULL, subject, reason, until);
END
$$;
COMMENT ON FUNCTION customer_vault.place_legal_hold(text, text, timestamptz) IS
    'places a legal hold on a subject: the purge keeps their rows; returns the hold id';

CREATE OR REPLACE FUNCTION customer_vault.release_legal_hold(hold_id bigint, reason text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p customer_vault.legal_hold_events;
BEGIN
    IF hold_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'hold id must not be null';
    END IF;
    IF reason IS NOT NULL AND pg_catalog.btrim(reason) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'the reason must not be empty',
            HINT = 'Leave it NULL, or say why the hold ends.';
    END IF;
    -- serialized with every other hold entry: two releases cannot both pass
    PERFORM customer_vault._evidence_next('legal_hold_events');
    SELECT * INTO p FROM customer_vault.legal_hold_events e
     WHERE e.id = release_legal_hold.hold_id AND e.action = 'place';
    IF NOT FOUND OR EXISTS (SELECT 1 FROM customer_vault.legal_hold_events e
                             WHERE e.hold_id = release_legal_hold.hold_id AND e.action = 'release') THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = pg_catalog.format('no unreleased legal hold with id %s', hold_id);
    END IF;
    -- the hold's subject as the hold stores it (its hash; a hold of version 1:
    -- the hash of its plain subject, not recorded again in evidence_subjects)
    PERFORM customer_vault._legal_hold_append('release', p.id, p.subject, reason, NULL,
                                              COALESCE(p.subject_hash,
                                                       customer_vault._evidence_subject(p.subject, false)));
END
$$;
COMMENT ON FUNCTION customer_vault.release_legal_hold(bigint, text) IS
    'releases a legal hold (a new entry recording who, when and why); an expired hold can be released too';

-- the type of a policy's subject column (NULL without one)
CREATE OR REPLACE FUNCTION customer_vault._subject_type(r customer_vault.retention_policies) RETURNS regtype
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regtype;
BEGIN
    IF r.subject_column IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT a.atttypid::regtype INTO t FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', r.schema_name, r.table_name))
       AND a.attname = r.subject_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF t IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_column',
            MESSAGE = pg_catalog.format('subject column %I of table %I.%I does not exist',
                                        r.subject_column, r.schema_name, r.table_name);
    END IF;
    -- re-checked at every use: ALTER TABLE ... TYPE may have changed it since
    PERFORM customer_vault._check_subject_type(t, pg_catalog.format('subject column %I of table %I.%I',
                                                                    r.subject_column, r.schema_name, r.table_name));
    PERFORM customer_vault._check_subject_collation(pg_catalog.format('%I.%I', r.schema_name, r.table_name)::pg_catalog.regclass,
                                                    r.subject_column,
                                                    pg_catalog.format('subject column %I of table %I.%I',
                                                                      r.subject_column, r.schema_name, r.table_name));
    RETURN t;
END
$$;
COMMENT ON FUNCTION customer_vault._subject_type(customer_vault.retention_policies) IS
    'internal: the type of a retention policy''s subject column, NULL without one';

-- the limit of one policy (UTC wall clock) and its expired predicate (alias t);
-- its literal is ISO 8601 text (DateStyle pinned here): it is read alike
-- whatever DateStyle the statement runs under (the caller's, the pinned one
-- of _maint_run, a Citus worker's)
CREATE OR REPLACE FUNCTION customer_vault._retention_expired(r customer_vault.retention_policies, as_of timestamptz,
                                                  OUT cutoff timestamp, OUT expired text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET DateStyle = 'ISO, YMD'
    SET IntervalStyle = 'postgres'
    SET standard_conforming_strings = on
AS $$
DECLARE
    ttype regtype;
BEGIN
    -- a policy stored before keep was checked (0.1.0) fails on its own table
    PERFORM customer_vault._check_period(r.keep, pg_catalog.format('keep of the retention policy of %I.%I',
                                                                   r.schema_name, r.table_name));
    -- retention is computed in UTC, so TimeZone settings do not move the limit;
    -- a row exactly at the limit is kept
    cutoff := (as_of AT TIME ZONE 'UTC') - r.keep;
    SELECT a.atttypid::regtype INTO ttype FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = pg_catalog.format('%I.%I', r.schema_name, r.table_name)::regclass
       AND a.attname = r.time_column AND NOT a.attisdropped;
    IF ttype = 'timestamp with time zone'::regtype THEN
        expired := pg_catalog.format('t.%I OPERATOR(pg_catalog.<) (%L::timestamp AT TIME ZONE ''UTC'')', r.time_column, cutoff);
    ELSIF ttype IS NULL OR ttype NOT IN ('date'::regtype, 'timestamp without time zone'::regtype) THEN
        -- changed since set_retention (ALTER TABLE ... TYPE): a domain or a
        -- user type could run its owner's code in the comparison
        RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
            MESSAGE = pg_catalog.format('time column %I of table %I.%I is of type %s', r.time_column,
                                        r.schema_name, r.table_name, ttype),
            HINT = 'The time column must be of type date, timestamp or timestamptz.';
    ELSIF ttype = 'date'::regtype THEN
        expired := pg_catalog.format('t.%I OPERATOR(pg_catalog.<) %L::date', r.time_column, cutoff::date);
    ELSE
        expired := pg_catalog.format('t.%I OPERATOR(pg_catalog.<) %L::timestamp', r.time_column, cutoff);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._retention_expired(customer_vault.retention_policies, timestamptz) IS
    'internal: the limit and the expired predicate of one retention policy';

-- Crypto-shredding is per subject, retention per row: a subject's key is
-- destroyed only when none of their rows, in any table with a retention
-- policy naming a subject column, is still inside its retention (or has no
-- time), and no hold stands.  Otherwise their expired rows in a shred table
-- stay, readable, until their last data expires (the shred is deferred, never
-- partial).  One row per subject with expired rows in the table: how many,
-- and why it is kept (NULL: it would be shredded).  Runs as the caller with
-- row security off, so rows a policy would hide give an error, never a
-- wrong "no data left".
CREATE OR REPLACE FUNCTION customer_vault._shred_plan(r customer_vault.retention_policies, as_of timestamptz)
    RETURNS TABLE(subject text, expired_rows bigint, kept_because text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET DateStyle = 'ISO, YMD'
    SET IntervalStyle = 'postgres'
    SET standard_conforming_strings = on
    SET row_security = off
AS $$
DECLARE
    p customer_vault.retention_policies;
    ptype regtype;
    e text;
    subs text[];
    counts bigint[];
    why text[];
    open_subs text[];
    found_subs text[];
    i integer;
BEGIN
    -- an allowed subject type only: the casts below run as the caller
    PERFORM customer_vault._subject_type(r);
    e := (customer_vault._retention_expired(r, as_of)).expired;
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.array_agg(x.s ORDER BY x.s), pg_catalog.array_agg(x.n ORDER BY x.s)'
        '  FROM (SELECT (t.%1$I)::pg_catalog.text AS s, pg_catalog.count(*) AS n FROM %2$I.%3$I t'
        '         WHERE %4$s AND t.%1$I IS NOT NULL GROUP BY 1) x',
        r.subject_column, r.schema_name, r.table_name, e) INTO subs, counts;
    IF subs IS NULL THEN
        RETURN;
    END IF;
    why := pg_catalog.array_fill(NULL::text, ARRAY[pg_catalog.cardinality(subs)]);
    -- held subjects: a hold matches in any subject column's type ('00004'
    -- holds 4 of a bigint column, and the text '4' of this one with it)
    FOR ptype IN SELECT DISTINCT customer_vault._subject_type(rp) FROM customer_vault.retention_policies rp
                  WHERE rp.subject_column IS NOT NULL
                    AND pg_catalog.to_regclass(pg_catalog.format('%I.%I', rp.schema_name, rp.table_name)) IS NOT NULL LOOP
        EXECUTE pg_catalog.format(
            'SELECT pg_catalog.array_agg(u.s) FROM pg_catalog.unnest($1::pg_catalog.text[]) u(s)'
            ' WHERE CASE WHEN customer_vault._casts_to(u.s, %1$L::pg_catalog.regtype)'
            '            THEN u.s::%1$s %2$s ANY ($2::pg_catalog.text[]::%1$s[]) ELSE false END',
            ptype, customer_vault._eq_operator(ptype))
            INTO found_subs USING subs, customer_vault._held_subjects(ptype);
        FOR i IN 1..pg_catalog.cardinality(subs) LOOP
            IF why[i] IS NULL AND subs[i] OPERATOR(pg_catalog.=) ANY (found_subs) THEN
                why[i] := 'legal hold';
            END IF;
        END LOOP;
    END LOOP;
    -- data still kept (inside retention, or without a time) in any table
    FOR p IN SELECT * FROM customer_vault.retention_policies rp WHERE rp.subject_column IS NOT NULL
              ORDER BY rp.schema_name, rp.table_name LOOP
        IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', p.schema_name, p.table_name)) IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'undefined_table',
                MESSAGE = pg_catalog.format('table %I.%I of a retention policy does not exist', p.schema_name, p.table_name),
                DETAIL = 'A subject is shredded only when none of their data in any table with a retention policy is still kept.';
        END IF;
        SELECT pg_catalog.array_agg(x.s) INTO open_subs
          FROM ROWS FROM (pg_catalog.unnest(subs), pg_catalog.unnest(why)) x(s, w) WHERE x.w IS NULL;
        EXIT WHEN open_subs IS NULL;
        ptype := customer_vault._subject_type(p);
        e := (customer_vault._retention_expired(p, as_of)).expired;
        EXECUTE pg_catalog.format(
            'SELECT pg_catalog.array_agg(DISTINCT c.s)'
            '  FROM (SELECT u.s, CASE WHEN customer_vault._casts_to(u.s, %2$L::pg_catalog.regtype)'
            '                         THEN u.s::%1$s END AS k'
            '          FROM pg_catalog.unnest($1::pg_catalog.text[]) u(s)) c'
            '  JOIN %3$I.%4$I t ON t.%5$I %6$s c.k'
            ' WHERE NOT COALESCE(%7$s, false)',
            ptype, ptype, p.schema_name, p.table_name, p.subject_column, customer_vault._eq_operator(ptype), e)
            INTO found_subs USING open_subs;
        FOR i IN 1..pg_catalog.cardinality(subs) LOOP
            IF why[i] IS NULL AND subs[i] OPERATOR(pg_catalog.=) ANY (found_subs) THEN
                why[i] := pg_catalog.format('data inside retention in %I.%I', p.schema_name, p.table_name);
            END IF;
        END LOOP;
    END LOOP;
    RETURN QUERY SELECT x.s, x.n, x.w
                   FROM ROWS FROM (pg_catalog.unnest(subs), pg_catalog.unnest(counts), pg_catalog.unnest(why)) x(s, n, w);
END
$$;
COMMENT ON FUNCTION customer_vault._shred_plan(customer_vault.retention_policies, timestamptz) IS
    'internal: per subject with expired rows in a shred table: whether the shred takes them, or what keeps them';

-- the SQL pieces of one policy: its cutoff (UTC wall clock), expired and held predicates
CREATE OR REPLACE FUNCTION customer_vault._retention_sql(r customer_vault.retention_policies, as_of timestamptz,
                                              OUT cutoff timestamp, OUT expired text, OUT held text,
                                              OUT change text, OUT pending text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stype regtype;
    pii name[];
    shreddable text[];
BEGIN
    SELECT x.cutoff, x.expired INTO cutoff, expired FROM customer_vault._retention_expired(r, as_of) x;
    IF r.subject_column IS NULL THEN
        held := 'false';
    ELSE
        -- the statement runs as the table's owner, who cannot read the holds:
        -- _maint_sql binds the subjects under a hold in force as $1 (text[],
        -- only those that convert to the column's type), compared in that
        -- type: 42 = '00042' for integer keys, UUIDs in any case
        stype := customer_vault._subject_type(r);
        held := pg_catalog.format(
            'COALESCE(t.%I %s ANY ($1::pg_catalog.text[]::%s[]), false)',
            r.subject_column, customer_vault._eq_operator(stype), stype);
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
        -- rows whose subject still has a live key and none of whose data is
        -- still kept anywhere (_shred_plan, computed here as the caller)
        SELECT COALESCE(pg_catalog.array_agg(p.subject), '{}') INTO shreddable
          FROM customer_vault._shred_plan(r, as_of) p WHERE p.kept_because IS NULL;
        pending := pg_catalog.format('COALESCE(customer_vault._m_subject_has_key((t.%I)::pg_catalog.text), false)'
                                     ' AND (t.%I)::pg_catalog.text OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])',
                                     r.subject_column, r.subject_column, shreddable);
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
    PERFORM customer_vault._check_as_of(as_of);
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

-- what a shred would take: per shred table and subject with expired rows
CREATE OR REPLACE FUNCTION customer_vault.purge_preview_subjects(as_of timestamptz DEFAULT NULL)
    RETURNS TABLE(tbl regclass, subject text, expired_rows bigint, shred boolean, kept_because text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r customer_vault.retention_policies;
BEGIN
    PERFORM customer_vault._check_as_of(as_of);
    FOR r IN SELECT * FROM customer_vault.retention_policies p WHERE p.action = 'shred'
              ORDER BY p.schema_name, p.table_name LOOP
        tbl := pg_catalog.format('%I.%I', r.schema_name, r.table_name)::regclass;
        RETURN QUERY SELECT tbl, s.subject, s.expired_rows,
                            s.kept_because IS NULL AND customer_vault._subject_has_key(s.subject),
                            COALESCE(s.kept_because, CASE WHEN NOT customer_vault._subject_has_key(s.subject)
                                                          THEN 'already shredded' END)
                       FROM customer_vault._shred_plan(r, COALESCE(as_of, pg_catalog.now())) s;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault.purge_preview_subjects(timestamptz) IS
    'per shred table and subject with expired rows: whether a purge would shred the subject''s key, or what keeps it';

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
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    start_id bigint;
BEGIN
    PERFORM customer_vault._coordinator_only('purge()');
    IF status IS NULL OR status NOT IN ('running', 'done', 'failed') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = pg_catalog.format('invalid purge status %L', status);
    END IF;
    IF entry IS NULL THEN
        IF run_started IS NULL OR tbl IS NULL OR action IS NULL OR dry_run IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
                MESSAGE = 'a new purge_log entry needs run_started, tbl, action and dry_run';
        END IF;
        start_id := customer_vault._purge_log_append('start', NULL, run_started, tbl, action, cutoff, dry_run,
                                                     CASE WHEN status = 'running' THEN rows_purged ELSE 0 END,
                                                     CASE WHEN status = 'running' THEN rows_held ELSE 0 END,
                                                     CASE WHEN status = 'running' THEN batches ELSE 0 END,
                                                     NULL, NULL);
        IF status <> 'running' THEN
            PERFORM customer_vault._purge_log_append(status, start_id, run_started, tbl, action, cutoff, dry_run,
                                                     rows_purged, rows_held, batches, sqlstate, message);
        END IF;
        RETURN start_id;
    END IF;
    IF status = 'running' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'a purge_log entry is ended with status done or failed';
    END IF;
    PERFORM customer_vault._purge_log_append(status, entry, NULL, NULL, NULL, NULL, NULL,
                                             rows_purged, rows_held, batches, sqlstate, message);
    RETURN entry;
END
$$;
COMMENT ON FUNCTION customer_vault._purge_log_write(bigint, timestamptz, text, text, timestamp, boolean, text,
                                                    bigint, bigint, integer, text, text) IS
    'internal: writes purge_log: a new entry (running, or failed) or the end of a running one (done, failed), as hash-chained purge_log_entries';

-- One purge_log_entries entry, chained: a start, or the end (done, failed,
-- interrupted) of a start that has none yet, whose table, action, limit, run
-- and dry_run it repeats.  Serialized by the chain's head.
CREATE OR REPLACE FUNCTION customer_vault._purge_log_append(event text, ref bigint, run_started timestamptz, tbl text,
                                                 action text, cutoff timestamp, dry_run boolean,
                                                 rows_purged bigint, rows_held bigint, batches integer,
                                                 sqlstate text, message text)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e customer_vault.purge_log_entries;
    s customer_vault.purge_log_entries;
BEGIN
    IF COALESCE(rows_purged, 0) < 0 OR COALESCE(rows_held, 0) < 0 OR COALESCE(batches, 0) < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'rows_purged, rows_held and batches must not be negative';
    END IF;
    SELECT n.next_id, n.prev_hash INTO e.id, e.prev_hash FROM customer_vault._evidence_next('purge_log_entries') n;
    e.event := event;
    IF event = 'start' THEN
        e.run_started := run_started;
        e.tbl := tbl;
        e.action := action;
        e.cutoff := cutoff;
        e.dry_run := dry_run;
        e.pid := pg_catalog.pg_backend_pid();
    ELSE
        SELECT * INTO s FROM customer_vault.purge_log_entries l WHERE l.id = _purge_log_append.ref AND l.event = 'start';
        IF NOT FOUND OR EXISTS (SELECT 1 FROM customer_vault.purge_log_entries l WHERE l.ref = _purge_log_append.ref) THEN
            RAISE EXCEPTION USING ERRCODE = 'undefined_object',
                MESSAGE = pg_catalog.format('no running purge_log entry %s', ref);
        END IF;
        e.ref := ref;
        e.run_started := s.run_started;
        e.tbl := s.tbl;
        e.action := s.action;
        e.cutoff := s.cutoff;
        e.dry_run := s.dry_run;
        e.pid := s.pid;
    END IF;
    IF event = 'interrupted' THEN
        -- what the start knew: nobody knows how far the work got
        e.rows_purged := s.rows_purged;
        e.rows_held := s.rows_held;
        e.batches := s.batches;
    ELSE
        e.rows_purged := COALESCE(rows_purged, 0);
        e.rows_held := COALESCE(rows_held, 0);
        e.batches := COALESCE(batches, 0);
    END IF;
    e.sqlstate := sqlstate;
    e.message := message;
    e.recorded_at := pg_catalog.clock_timestamp();
    e.session_role := session_user;
    e.acting_role := customer_vault._calling_role();
    e.hash := customer_vault._evidence_hash(e);
    INSERT INTO customer_vault.purge_log_entries SELECT e.*;
    UPDATE customer_vault.evidence_heads h SET last_id = e.id, last_hash = e.hash WHERE h.chain = 'purge_log_entries';
    RETURN e.id;
END
$$;
COMMENT ON FUNCTION customer_vault._purge_log_append(text, bigint, timestamptz, text, text, timestamp, boolean,
                                                     bigint, bigint, integer, text, text) IS
    'internal: appends one hash-chained entry to purge_log_entries';

-- Entries still running whose purge is gone (its backend died, was killed or
-- the server restarted since) are marked interrupted (a new entry each); their
-- finished_at stays NULL (nobody knows when the work stopped).  The number marked.
CREATE OR REPLACE FUNCTION customer_vault._purge_log_interrupted() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    n bigint := 0;
BEGIN
    PERFORM customer_vault._coordinator_only('purge()');
    -- under the chain's lock, so two purges starting together mark each once
    PERFORM customer_vault._evidence_next('purge_log_entries');
    FOR s IN SELECT l.id FROM customer_vault.purge_log_entries l
              WHERE l.event = 'start'
                AND NOT EXISTS (SELECT 1 FROM customer_vault.purge_log_entries c WHERE c.ref = l.id)
                AND (l.recorded_at < pg_catalog.pg_postmaster_start_time()
                     OR l.pid IS NULL
                     OR l.pid = pg_catalog.pg_backend_pid()
                     OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(l.pid) a WHERE a.pid IS NOT NULL))
              ORDER BY l.id LOOP
        PERFORM customer_vault._purge_log_append('interrupted', s.id, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL);
        n := n + 1;
    END LOOP;
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
        SELECT * INTO r FROM customer_vault.retention_policies p
         WHERE p.schema_name OPERATOR(pg_catalog.=) pol.schema_name AND p.table_name OPERATOR(pg_catalog.=) pol.table_name;
        CONTINUE WHEN NOT FOUND;
        -- start: the table, its limit, the rows kept by a hold (a full scan, so
        -- only when some hold is active), the dry run's count
        BEGIN
            rel := pg_catalog.to_regclass(tname);
            IF rel IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'undefined_table',
                    MESSAGE = pg_catalog.format('table %s of a retention policy does not exist', tname),
                    HINT = 'It was renamed or moved: call set_retention() for its new name.';
            END IF;
            cut := (customer_vault._retention_sql(r, asof)).cutoff;
            -- a Citus table: its owner must not be under FORCE ROW LEVEL
            -- SECURITY on a shard (set there by hand), where the batches run
            -- as the owner would meet the owner's policies (0A000)
            IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
                PERFORM customer_vault._citus_refuse_forced_shards(rel, 'purge');
            END IF;
            IF dry_run OR (r.subject_column IS NOT NULL AND EXISTS (
                   SELECT 1 FROM customer_vault.legal_holds h WHERE h.released_at IS NULL
                      AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now()))) THEN
                counts := customer_vault._maint_run('purge_counts', rel, ARRAY[asof_text])::pg_catalog.int8[];
                held_count := counts[2];
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
                -- the subjects are found as the owner and shredded as the
                -- caller inside _maint_run: only their number comes back
                BEGIN
                    total := (customer_vault._maint_run('purge_shred', rel, ARRAY[asof_text]))[1]::pg_catalog.int8;
                EXCEPTION WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
                END;
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

-- A schedule the installed pg_cron accepts, checked before the job is made
-- (pg_cron 1.4 stored '* * * * * * *' and never ran it): five fields (minute
-- 0-59, hour 0-23, day 1-31, month 1-12 or jan-dec, weekday 0-7 or sun-sat),
-- each *, a value or a range, optionally /step, comma-separated; an @-name
-- (@hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually); and
-- from pg_cron 1.5 on also '<1-59> seconds'.
CREATE OR REPLACE FUNCTION customer_vault._check_cron_schedule(schedule text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
DECLARE
    v text;
    fields text[];
    lo integer[] := ARRAY[0, 0, 1, 1, 0];
    hi integer[] := ARRAY[59, 23, 31, 12, 7];
    names text[] := ARRAY['minute', 'hour', 'day of month', 'month', 'day of week'];
    part text;
    m text[];
    i integer;
    j integer;
    n integer;
    bad text;
BEGIN
    v := pg_catalog.lower(pg_catalog.btrim(schedule));
    IF v IN ('@hourly', '@daily', '@midnight', '@weekly', '@monthly', '@yearly', '@annually') THEN
        RETURN;
    END IF;
    IF v ~ '^[0-9]+ *seconds?$' THEN
        n := pg_catalog.substring(v, '^[0-9]+')::integer;
        IF COALESCE((SELECT pg_catalog.string_to_array(e.extversion, '.')::integer[] >= ARRAY[1, 5]
                       FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_cron'), false)
           AND n BETWEEN 1 AND 59 THEN
            RETURN;
        END IF;
        bad := 'Schedules in seconds need pg_cron 1.5 or later and between 1 and 59 seconds.';
    ELSE
        fields := pg_catalog.regexp_split_to_array(v, '\s+');
        IF pg_catalog.cardinality(fields) <> 5 THEN
            bad := pg_catalog.format('A schedule has 5 fields (minute hour day month weekday), not %s.',
                                     pg_catalog.cardinality(fields));
        ELSE
            FOR i IN 1..5 LOOP
                v := fields[i];
                IF i = 4 THEN
                    FOR j IN 1..12 LOOP
                        v := pg_catalog.replace(v, (ARRAY['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug',
                                                          'sep', 'oct', 'nov', 'dec'])[j], j::text);
                    END LOOP;
                ELSIF i = 5 THEN
                    FOR j IN 1..7 LOOP
                        v := pg_catalog.replace(v, (ARRAY['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'])[j],
                                                (j - 1)::text);
                    END LOOP;
                END IF;
                FOREACH part IN ARRAY pg_catalog.string_to_array(v, ',') LOOP
                    m := pg_catalog.regexp_match(part, '^(\*|([0-9]{1,2})(-([0-9]{1,2}))?)(/([0-9]{1,2}))?$');
                    IF m IS NULL
                       OR (m[2] IS NOT NULL AND (m[2]::integer < lo[i] OR m[2]::integer > hi[i]))
                       OR (m[4] IS NOT NULL AND (m[4]::integer < m[2]::integer OR m[4]::integer > hi[i]))
                       OR (m[6] IS NOT NULL AND m[6]::integer < 1) THEN
                        bad := pg_catalog.format('The %s field %L is not *, a value from %s to %s, a range or a step.',
                                                 names[i], fields[i], lo[i], hi[i]);
                        EXIT;
                    END IF;
                END LOOP;
                EXIT WHEN bad IS NOT NULL;
            END LOOP;
        END IF;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('invalid schedule %L', schedule),
            DETAIL = bad,
            HINT = 'Use cron syntax, e.g. ''15 3 * * *'' (daily at 03:15).';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._check_cron_schedule(text) IS
    'internal: refuses a schedule the installed pg_cron would not run';

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
    PERFORM customer_vault._check_cron_schedule(schedule);
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

--@ code
-- Privileges of this concern.
-- retention: the admin sets policies and holds and runs (or schedules) the
-- purge, but changes holds and the purge log only through the functions (no
-- INSERT, UPDATE or DELETE on them); the auditor reads and verifies; nobody
-- but the extension touches evidence_heads
GRANT EXECUTE ON FUNCTION
    customer_vault.set_retention(regclass, name, interval, text, name),
    customer_vault.drop_retention(regclass),
    customer_vault._subject_type_ok(regtype), customer_vault._check_subject_type(regtype, text),
    customer_vault._check_subject_collation(regclass, name, text),
    customer_vault.place_legal_hold(text, text, timestamptz), customer_vault.release_legal_hold(bigint, text),
    customer_vault.purge_preview(timestamptz), customer_vault._retention_sql(customer_vault.retention_policies, timestamptz),
    customer_vault._pii_columns(regclass), customer_vault._subject_has_key(text),
    customer_vault._casts_to(text, regtype), customer_vault._eq_operator(regtype), customer_vault._held_subjects(regtype),
    customer_vault._subject_type(customer_vault.retention_policies),
    customer_vault._check_period(interval, text), customer_vault._check_as_of(timestamptz),
    customer_vault._check_cron_schedule(text),
    customer_vault._retention_expired(customer_vault.retention_policies, timestamptz),
    customer_vault._shred_plan(customer_vault.retention_policies, timestamptz),
    customer_vault.purge_preview_subjects(timestamptz),
    customer_vault.shred_subject(text),
    customer_vault.schedule_purge(text), customer_vault.unschedule_purge(), customer_vault._require_pg_cron(),
    customer_vault._purge_log_write(bigint, timestamptz, text, text, timestamp, boolean, text, bigint, bigint,
                                    integer, text, text),
    customer_vault._purge_log_interrupted(),
    customer_vault.verify_legal_holds(), customer_vault.verify_purge_log()
    TO customer_vault_admin;
GRANT EXECUTE ON PROCEDURE customer_vault.purge(boolean, integer, timestamptz) TO customer_vault_admin;
GRANT SELECT ON customer_vault.retention_policies TO customer_vault_admin;
-- policies change only through set_retention and drop_retention (0.1.0
-- granted direct writes: an inheritance parent could be registered past
-- set_retention's checks)
REVOKE INSERT, UPDATE, DELETE ON customer_vault.retention_policies FROM customer_vault_admin;
GRANT SELECT ON customer_vault.legal_hold_events, customer_vault.legal_holds, customer_vault.current_legal_holds,
    customer_vault.purge_log_entries, customer_vault.purge_log
    TO customer_vault_admin;
GRANT EXECUTE ON FUNCTION customer_vault.verify_legal_holds(), customer_vault.verify_purge_log()
    TO customer_vault_auditor;
GRANT SELECT ON customer_vault.retention_policies, customer_vault.legal_hold_events, customer_vault.legal_holds,
    customer_vault.current_legal_holds, customer_vault.purge_log_entries, customer_vault.purge_log
    TO customer_vault_auditor;
