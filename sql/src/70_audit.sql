--@ code

---------------------------------------------------------------------------
-- The decrypt audit (src/audit.c): customer_vault.audit_decrypt = off |
-- statement | value.  Backends count the values each key opens per
-- statement and queue one record per statement and key in shared memory;
-- a background worker per database writes them here, in transactions of
-- its own (so they survive the reader's ROLLBACK, READ ONLY and
-- SERIALIZABLE transactions), through _access_log_append: the single
-- writer of an append-only, hash-chained table.
---------------------------------------------------------------------------

--@ schema
-- the last entry of the access log chain (one row), locked by each append
CREATE TABLE customer_vault.access_log_head (
    single    boolean PRIMARY KEY DEFAULT true CHECK (single),
    last_id   bigint NOT NULL,
    last_hash bytea NOT NULL
);

-- append-only, hash-chained: one entry per statement and key that decrypted
CREATE TABLE customer_vault.access_log_entries (
    id               bigint PRIMARY KEY,
    at               timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL,
    session_role     name NOT NULL,
    acting_role      name NOT NULL,
    purpose          text,
    key_id           integer NOT NULL,
    key              text,
    value_count      bigint NOT NULL CHECK (value_count > 0),
    query_id         bigint,
    application_name text,
    client_addr      text,
    pid              integer,
    mode             text NOT NULL CHECK (mode IN ('statement', 'value')),
    subject_hashes   bytea[],
    subject_values   integer[],
    more_values      bigint,
    prev_hash        bytea,
    hash             bytea NOT NULL,
    CONSTRAINT access_log_entries_value_check CHECK ((mode = 'value') = (subject_hashes IS NOT NULL))
);
CREATE INDEX access_log_entries_subjects_idx ON customer_vault.access_log_entries USING gin (subject_hashes);
CREATE INDEX access_log_entries_at_idx ON customer_vault.access_log_entries (at);

SELECT pg_catalog.pg_extension_config_dump('customer_vault.access_log_head', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.access_log_entries', '');
--@ code
COMMENT ON TABLE customer_vault.access_log_head IS
    'internal: the last id and hash of the access log chain';
COMMENT ON TABLE customer_vault.access_log_entries IS
    'append-only, hash-chained: one entry per statement and data key that decrypted values (written by the audit worker)';

CREATE OR REPLACE FUNCTION customer_vault._access_log_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
        MESSAGE = pg_catalog.format('%s is append-only: %s is not allowed', TG_TABLE_NAME, TG_OP),
        HINT = 'Entries are written by the customer_vault audit worker only.';
END
$$;
COMMENT ON FUNCTION customer_vault._access_log_append_only() IS
    'internal: refuses UPDATE, DELETE and TRUNCATE of access_log_entries';
CREATE OR REPLACE TRIGGER access_log_entries_no_update_delete BEFORE UPDATE OR DELETE ON customer_vault.access_log_entries
    FOR EACH ROW EXECUTE FUNCTION customer_vault._access_log_append_only();
CREATE OR REPLACE TRIGGER access_log_entries_no_truncate BEFORE TRUNCATE ON customer_vault.access_log_entries
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._access_log_append_only();
ALTER TABLE customer_vault.access_log_entries ENABLE ALWAYS TRIGGER access_log_entries_no_update_delete;
ALTER TABLE customer_vault.access_log_entries ENABLE ALWAYS TRIGGER access_log_entries_no_truncate;

-- the chained hash of an access log entry (over every column but hash).
-- PL/pgSQL, not SQL: the audit writer calls it once per record, mostly one
-- record per transaction, and a SQL function with a sub-select (and a SET
-- clause) is parsed and planned again at every call (about half the writer's
-- CPU per record); here the plans stay for the session, and the statement
-- mode's entries (no subject hashes) take no sub-select at all.  The bytes
-- hashed are the same as before (entries written by 0.4.0 verify as written).
CREATE OR REPLACE FUNCTION customer_vault._access_log_hash(e customer_vault.access_log_entries) RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hex text[];
BEGIN
    IF e.subject_hashes IS NOT NULL THEN
        hex := (SELECT pg_catalog.array_agg(pg_catalog.encode(h, 'hex') ORDER BY o)
                  FROM pg_catalog.unnest(e.subject_hashes) WITH ORDINALITY AS u(h, o));
    END IF;
    RETURN pg_catalog.sha256(COALESCE(e.prev_hash, ''::bytea) OPERATOR(pg_catalog.||) pg_catalog.convert_to(
        pg_catalog.jsonb_build_array('access_log_entries', e.id,
            (EXTRACT(epoch FROM e.at) OPERATOR(pg_catalog.*) 1000000)::bigint,
            (EXTRACT(epoch FROM e.recorded_at) OPERATOR(pg_catalog.*) 1000000)::bigint,
            e.session_role, e.acting_role, e.purpose, e.key_id, e.key, e.value_count, e.query_id,
            e.application_name, e.client_addr, e.pid, e.mode, hex,
            e.subject_values, e.more_values)::text, 'UTF8'));
END
$$;
COMMENT ON FUNCTION customer_vault._access_log_hash(customer_vault.access_log_entries) IS
    'internal: the chained hash of one access_log_entries entry';

-- One entry, chained (called by the audit worker, as superuser, once per
-- queued record; the head row's lock serializes appends).  Not STRICT: purpose,
-- client and the subjects may be NULL.
CREATE OR REPLACE FUNCTION customer_vault._access_log_append(at timestamptz, user_id oid, role_id oid,
        key_id integer, value_count bigint, query_id bigint, purpose text, application_name text,
        client_addr text, pid integer, subjects text[], subject_values integer[], more_values bigint,
        value_mode boolean)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e customer_vault.access_log_entries;
    prev customer_vault.access_log_head;
BEGIN
    SELECT * INTO prev FROM customer_vault.access_log_head h FOR UPDATE;
    e.id := COALESCE(prev.last_id, 0) OPERATOR(pg_catalog.+) 1;
    e.prev_hash := prev.last_hash;
    e.at := at;
    e.recorded_at := pg_catalog.clock_timestamp();
    e.session_role := pg_catalog.pg_get_userbyid(user_id);
    e.acting_role := pg_catalog.pg_get_userbyid(role_id);
    e.purpose := NULLIF(purpose, '');
    e.key_id := key_id;
    SELECT CASE WHEN k.name IS NULL THEN 'subject:' OPERATOR(pg_catalog.||) k.id::text
                ELSE k.name OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) k.version::text END
      INTO e.key FROM customer_vault.data_keys k WHERE k.id OPERATOR(pg_catalog.=) _access_log_append.key_id;
    e.value_count := value_count;
    e.query_id := NULLIF(query_id, 0);
    e.application_name := NULLIF(application_name, '');
    e.client_addr := NULLIF(client_addr, '');
    e.pid := pid;
    e.mode := CASE WHEN value_mode THEN 'value' ELSE 'statement' END;
    IF value_mode THEN
        e.subject_hashes := ARRAY(SELECT customer_vault._subject_hash(s)
                                    FROM pg_catalog.unnest(COALESCE(subjects, '{}')) WITH ORDINALITY AS u(s, o) ORDER BY o);
        e.subject_values := COALESCE(subject_values, '{}');
        e.more_values := COALESCE(more_values, 0);
    END IF;
    e.hash := customer_vault._access_log_hash(e);
    INSERT INTO customer_vault.access_log_entries SELECT e.*;
    IF prev.single IS NULL THEN
        INSERT INTO customer_vault.access_log_head (single, last_id, last_hash) VALUES (true, e.id, e.hash);
    ELSE
        UPDATE customer_vault.access_log_head h SET last_id = e.id, last_hash = e.hash;
    END IF;
    RETURN e.id;
END
$$;
COMMENT ON FUNCTION customer_vault._access_log_append(timestamptz, oid, oid, integer, bigint, bigint, text, text,
                                                      text, integer, text[], integer[], bigint, boolean) IS
    'internal: appends one hash-chained entry to access_log_entries (the audit worker''s only write)';

-- NULL when the chain is intact, else the id of the first broken entry: a
-- hash that does not match its entry, a link to anything but the previous
-- entry, or a last entry that is not the recorded head (entries removed or
-- added behind the writer's back)
CREATE OR REPLACE FUNCTION customer_vault.verify_access_log() RETURNS bigint
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    broken bigint;
    last_id bigint;
    last_hash bytea;
    h customer_vault.access_log_head;
BEGIN
    SELECT e.id INTO broken
      FROM (SELECT l.id, l.hash, l.prev_hash, pg_catalog.lag(l.hash) OVER w AS expected_prev,
                   pg_catalog.lag(l.id) OVER w AS previous_id,
                   customer_vault._access_log_hash(l) AS recomputed
              FROM customer_vault.access_log_entries l WINDOW w AS (ORDER BY l.id)) e
     WHERE e.hash IS DISTINCT FROM e.recomputed OR e.prev_hash IS DISTINCT FROM e.expected_prev
        OR e.id OPERATOR(pg_catalog.<>) (COALESCE(e.previous_id, 0) OPERATOR(pg_catalog.+) 1)
     ORDER BY e.id LIMIT 1;
    IF broken IS NOT NULL THEN
        RETURN broken;
    END IF;
    SELECT l.id, l.hash INTO last_id, last_hash FROM customer_vault.access_log_entries l ORDER BY l.id DESC LIMIT 1;
    SELECT * INTO h FROM customer_vault.access_log_head;
    IF h.single IS NULL THEN
        RETURN CASE WHEN last_id IS NULL THEN NULL ELSE 1 END;
    ELSIF last_id IS NULL OR last_id OPERATOR(pg_catalog.<) h.last_id THEN
        RETURN COALESCE(last_id, 0) OPERATOR(pg_catalog.+) 1;
    ELSIF last_id OPERATOR(pg_catalog.>) h.last_id THEN
        RETURN h.last_id OPERATOR(pg_catalog.+) 1;
    ELSIF last_hash IS DISTINCT FROM h.last_hash THEN
        RETURN last_id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION customer_vault.verify_access_log() IS
    'NULL when the hash chain of the access log is intact, else the id of the first broken (or missing) entry';

-- who decrypted what (statement mode: per statement and key; value mode also
-- the number of distinct subjects recorded and the values beyond them)
CREATE OR REPLACE VIEW customer_vault.access_log AS
    SELECT e.id, e.at, e.session_role, e.acting_role AS role, e.purpose, e.key, e.key_id, e.value_count,
           e.query_id, e.application_name, e.client_addr, e.pid, e.mode,
           pg_catalog.cardinality(e.subject_hashes) AS subjects, e.more_values, e.recorded_at
      FROM customer_vault.access_log_entries e;
COMMENT ON VIEW customer_vault.access_log IS
    'who decrypted what: one row per statement and data key (time, session user, role, purpose, key, values, query id, application, client)';

-- Who touched one subject's data: value-mode access_log rows, exports
-- (subject_exports) and erasures (erasure_receipts), all matched by the keyed
-- subject hash (the logs never hold the subject itself).  VOLATILE and not
-- STABLE: _subject_hash makes the hash key on first use.  The export and
-- erasure tables belong to other parts of the extension and are read only
-- where they exist.
CREATE OR REPLACE FUNCTION customer_vault.subject_access(subject text)
    RETURNS TABLE(at timestamptz, role name, purpose text, key text, what text)
    LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h bytea := customer_vault._subject_hash(subject);
BEGIN
    IF h IS NULL THEN
        RETURN;                         -- no hash key: nothing was ever recorded by hash
    END IF;
    RETURN QUERY
        SELECT e.at, e.acting_role, e.purpose, e.key,
               pg_catalog.format('decrypted %s value(s) (query id %s, application %s)',
                                 e.subject_values[u.o], COALESCE(e.query_id::text, '-'),
                                 COALESCE(e.application_name, '-'))
          FROM customer_vault.access_log_entries e
         CROSS JOIN LATERAL pg_catalog.unnest(e.subject_hashes) WITH ORDINALITY AS u(sh, o)
         WHERE e.subject_hashes OPERATOR(pg_catalog.@>) ARRAY[h] AND u.sh OPERATOR(pg_catalog.=) h;
    IF pg_catalog.to_regclass('customer_vault.subject_exports') IS NOT NULL THEN
        RETURN QUERY EXECUTE
            'SELECT x.at, pg_catalog.pg_get_userbyid(x.role_id)::name, NULL::text, NULL::text,'
            '       pg_catalog.format(''export_subject: %s row(s) from %s table(s), %s withheld'', x.rows, x.tables, x.withheld)'
            '  FROM customer_vault.subject_exports x WHERE x.subject_hash OPERATOR(pg_catalog.=) $1'
            USING h;
    END IF;
    IF pg_catalog.to_regclass('customer_vault.erasure_receipts') IS NOT NULL THEN
        RETURN QUERY EXECUTE
            'SELECT r.at, r.acting_role, NULL::text, NULL::text,'
            '       pg_catalog.format(''forget_subject (receipt %s): %s'', r.id, r.reason)'
            '  FROM customer_vault.erasure_receipts r WHERE r.subject_hash OPERATOR(pg_catalog.=) $1'
            USING h;
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault.subject_access(text) IS
    'who decrypted (value-mode access_log), exported or erased one subject''s data, when, as which role, under which purpose and key';

GRANT SELECT ON customer_vault.access_log TO customer_vault_admin, customer_vault_auditor;
GRANT EXECUTE ON FUNCTION customer_vault.verify_access_log(), customer_vault.subject_access(text)
    TO customer_vault_admin, customer_vault_auditor;
