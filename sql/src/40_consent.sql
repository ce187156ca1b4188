--@ schema

---------------------------------------------------------------------------
-- Consent and lawful basis
---------------------------------------------------------------------------

CREATE TABLE customer_vault.purposes (
    purpose           text COLLATE "C" PRIMARY KEY,
    lawful_basis      text NOT NULL DEFAULT 'consent',
    description       text,
    consent_valid_for interval,
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT purposes_lawful_basis_check CHECK (lawful_basis IN
        ('consent', 'contract', 'legal_obligation', 'vital_interests', 'public_task', 'legitimate_interests')),
    CONSTRAINT purposes_name_check CHECK (purpose <> '' AND pg_catalog.octet_length(purpose) < 64),
    CONSTRAINT purposes_valid_for_check CHECK (consent_valid_for IS NULL OR consent_valid_for > '0'::interval)
);
--@ code
COMMENT ON TABLE customer_vault.purposes IS 'processing purposes and their GDPR lawful basis';
--@ schema

CREATE TABLE customer_vault.purpose_roles (
    role_name name NOT NULL,
    purpose   text COLLATE "C" NOT NULL REFERENCES customer_vault.purposes ON DELETE CASCADE,
    PRIMARY KEY (role_name, purpose)
);
--@ code
COMMENT ON TABLE customer_vault.purpose_roles IS 'the purposes each role may act under';
--@ schema

-- the live state per subject and purpose; the ledger is the evidence
CREATE TABLE customer_vault.consent_state (
    subject      text COLLATE "C" NOT NULL,
    purpose      text COLLATE "C" NOT NULL REFERENCES customer_vault.purposes ON DELETE CASCADE,
    granted      boolean NOT NULL,
    valid_until  timestamptz,
    granted_at   timestamptz,
    withdrawn_at timestamptz,
    ledger_id    bigint NOT NULL,
    CONSTRAINT consent_state_pkey PRIMARY KEY (subject, purpose)
);
--@ code
COMMENT ON TABLE customer_vault.consent_state IS 'current consent per subject and purpose (see consent_ledger for the evidence)';
--@ schema

-- append-only, hash-chained: every grant and withdrawal with its evidence
CREATE TABLE customer_vault.consent_ledger (
    id          bigint PRIMARY KEY,
    subject     text NOT NULL,
    purpose     text NOT NULL,
    action      text NOT NULL CHECK (action IN ('grant', 'withdraw')),
    evidence    jsonb,
    valid_until timestamptz,
    recorded_at timestamptz NOT NULL,
    recorded_by name NOT NULL,
    prev_hash   bytea,
    hash        bytea NOT NULL
);
--@ code
COMMENT ON TABLE customer_vault.consent_ledger IS
    'append-only, hash-chained record of every grant and withdrawal of consent';
--@ schema

SELECT pg_catalog.pg_extension_config_dump('customer_vault.purposes', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purpose_roles', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.consent_state', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.consent_ledger', '');
--@ code

CREATE OR REPLACE FUNCTION customer_vault._ledger_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
        MESSAGE = pg_catalog.format('consent_ledger is append-only: %s is not allowed', TG_OP),
        HINT = 'Record a withdrawal with customer_vault.withdraw_consent() instead.';
END
$$;
COMMENT ON FUNCTION customer_vault._ledger_append_only() IS 'internal: refuses UPDATE, DELETE and TRUNCATE of the ledger';
CREATE OR REPLACE TRIGGER consent_ledger_no_update_delete BEFORE UPDATE OR DELETE ON customer_vault.consent_ledger
    FOR EACH ROW EXECUTE FUNCTION customer_vault._ledger_append_only();
CREATE OR REPLACE TRIGGER consent_ledger_no_truncate BEFORE TRUNCATE ON customer_vault.consent_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._ledger_append_only();
-- also under session_replication_role = replica
ALTER TABLE customer_vault.consent_ledger ENABLE ALWAYS TRIGGER consent_ledger_no_update_delete;
ALTER TABLE customer_vault.consent_ledger ENABLE ALWAYS TRIGGER consent_ledger_no_truncate;

-- SHA-256 over the previous hash and a canonical encoding of the entry
-- (a JSON array; times as integer microseconds since the epoch)
CREATE OR REPLACE FUNCTION customer_vault._ledger_hash(prev bytea, id bigint, subject text, purpose text, action text,
                                            evidence jsonb, valid_until timestamptz,
                                            recorded_at timestamptz, recorded_by name)
    RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.sha256(COALESCE(prev, '\x'::bytea) OPERATOR(pg_catalog.||) pg_catalog.convert_to(
        pg_catalog.jsonb_build_array(id, subject, purpose, action, evidence,
            (EXTRACT(epoch FROM valid_until) OPERATOR(pg_catalog.*) 1000000)::bigint,
            (EXTRACT(epoch FROM recorded_at) OPERATOR(pg_catalog.*) 1000000)::bigint,
            recorded_by)::text, 'UTF8'))
$$;
COMMENT ON FUNCTION customer_vault._ledger_hash(bytea, bigint, text, text, text, jsonb, timestamptz, timestamptz, name) IS
    'internal: the chained hash of one ledger entry';

-- statement trigger: tells consent checks in every session about the change
CREATE OR REPLACE FUNCTION customer_vault._consent_changed() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'cv_consent_changed';
COMMENT ON FUNCTION customer_vault._consent_changed() IS
    'internal: marks the transaction as changing consent data (cache coherence of has_consent/may_process)';
CREATE OR REPLACE TRIGGER consent_state_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON customer_vault.consent_state
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._consent_changed();
CREATE OR REPLACE TRIGGER purposes_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON customer_vault.purposes
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._consent_changed();
CREATE OR REPLACE TRIGGER purpose_roles_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON customer_vault.purpose_roles
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._consent_changed();
ALTER TABLE customer_vault.consent_state ENABLE ALWAYS TRIGGER consent_state_changed;
ALTER TABLE customer_vault.purposes ENABLE ALWAYS TRIGGER purposes_changed;
ALTER TABLE customer_vault.purpose_roles ENABLE ALWAYS TRIGGER purpose_roles_changed;

CREATE OR REPLACE FUNCTION customer_vault.define_purpose(purpose text, lawful_basis text DEFAULT 'consent',
                                              description text DEFAULT NULL,
                                              consent_valid_for interval DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF purpose IS NULL OR purpose = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'purpose must not be empty';
    END IF;
    IF pg_catalog.octet_length(purpose) > 63 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'purpose name is too long',
            DETAIL = 'A purpose name is at most 63 bytes long.';
    END IF;
    IF lawful_basis IS NULL OR lawful_basis NOT IN ('consent', 'contract', 'legal_obligation', 'vital_interests',
                                                    'public_task', 'legitimate_interests') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('invalid lawful basis %L', lawful_basis),
            HINT = 'Use consent, contract, legal_obligation, vital_interests, public_task or legitimate_interests.';
    END IF;
    IF consent_valid_for IS NOT NULL AND lawful_basis <> 'consent' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'consent_valid_for must be a positive interval, and only for the consent basis';
    END IF;
    IF consent_valid_for IS NOT NULL THEN
        PERFORM customer_vault._check_period(consent_valid_for, 'consent_valid_for');
    END IF;
    INSERT INTO customer_vault.purposes AS p (purpose, lawful_basis, description, consent_valid_for)
    VALUES (define_purpose.purpose, define_purpose.lawful_basis, define_purpose.description, define_purpose.consent_valid_for)
    ON CONFLICT ON CONSTRAINT purposes_pkey DO UPDATE
       SET lawful_basis = EXCLUDED.lawful_basis, description = EXCLUDED.description,
           consent_valid_for = EXCLUDED.consent_valid_for;
END
$$;
COMMENT ON FUNCTION customer_vault.define_purpose(text, text, text, interval) IS
    'creates or redefines a processing purpose with its lawful basis and optional consent lifetime';

CREATE OR REPLACE FUNCTION customer_vault.allow_purpose(role regrole, purpose text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'role must not be null';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM customer_vault.purposes p WHERE p.purpose = allow_purpose.purpose) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = pg_catalog.format('purpose %L does not exist', purpose),
            HINT = 'Define it with customer_vault.define_purpose().';
    END IF;
    INSERT INTO customer_vault.purpose_roles (role_name, purpose)
    VALUES ((SELECT rolname FROM pg_catalog.pg_roles WHERE oid = role), purpose)
    ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION customer_vault.allow_purpose(regrole, text) IS 'lets a role (and its members) act under a purpose';

CREATE OR REPLACE FUNCTION customer_vault.disallow_purpose(role regrole, purpose text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'role must not be null';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = role) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object', MESSAGE = pg_catalog.format('role with OID %s does not exist', role::oid);
    END IF;
    IF purpose IS NULL OR purpose = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'purpose must not be null or empty';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM customer_vault.purposes p WHERE p.purpose = disallow_purpose.purpose) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = pg_catalog.format('purpose %L does not exist', purpose);
    END IF;
    DELETE FROM customer_vault.purpose_roles r
     WHERE r.role_name = (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = role)
       AND r.purpose = disallow_purpose.purpose;
END
$$;
COMMENT ON FUNCTION customer_vault.disallow_purpose(regrole, text) IS 'withdraws a role''s right to act under a purpose';

-- one ledger entry, chained to the previous one (serialized by an advisory lock)
CREATE OR REPLACE FUNCTION customer_vault._ledger_append(subject text, purpose text, action text, evidence jsonb,
                                              valid_until timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last record;
    new_id bigint;
    ts timestamptz;
    who name := session_user;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock('customer_vault.consent_ledger'::regclass::oid::integer, 1);
    SELECT l.id, l.hash INTO last FROM customer_vault.consent_ledger l ORDER BY l.id DESC LIMIT 1;
    new_id := COALESCE(last.id, 0) + 1;
    ts := pg_catalog.clock_timestamp();
    INSERT INTO customer_vault.consent_ledger
        (id, subject, purpose, action, evidence, valid_until, recorded_at, recorded_by, prev_hash, hash)
    VALUES (new_id, subject, purpose, action, evidence, valid_until, ts, who, last.hash,
            customer_vault._ledger_hash(last.hash, new_id, subject, purpose, action, evidence, valid_until, ts, who));
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION customer_vault._ledger_append(text, text, text, jsonb, timestamptz) IS
    'internal: appends one hash-chained entry to consent_ledger';

CREATE OR REPLACE FUNCTION customer_vault._check_subject_purpose(subject text, purpose text) RETURNS customer_vault.purposes
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p customer_vault.purposes;
BEGIN
    IF subject IS NULL OR subject = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'subject must not be null or empty';
    END IF;
    IF purpose IS NULL OR purpose = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'purpose must not be null or empty';
    END IF;
    SELECT * INTO p FROM customer_vault.purposes pp WHERE pp.purpose = _check_subject_purpose.purpose;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = pg_catalog.format('purpose %L does not exist', purpose),
            HINT = 'Define it with customer_vault.define_purpose().';
    END IF;
    RETURN p;
END
$$;
COMMENT ON FUNCTION customer_vault._check_subject_purpose(text, text) IS 'internal: validates a subject and a purpose';

CREATE OR REPLACE FUNCTION customer_vault.grant_consent(subject text, purpose text, evidence jsonb,
                                             valid_until timestamptz DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p customer_vault.purposes := customer_vault._check_subject_purpose(subject, purpose);
    until timestamptz := valid_until;
    entry bigint;
BEGIN
    IF p.lawful_basis <> 'consent' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('purpose %L rests on %s, not on consent', purpose, p.lawful_basis),
            HINT = 'Processing under that basis needs no consent; record consent only for consent-based purposes.';
    END IF;
    IF evidence IS NULL OR pg_catalog.jsonb_typeof(evidence) <> 'object' OR evidence = '{}'::jsonb THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'evidence must be a non-empty JSON object',
            HINT = 'Record what was shown, when and through which channel, e.g. {"form": "signup-v3", "channel": "web"}.';
    END IF;
    IF until IS NOT NULL AND NOT pg_catalog.isfinite(until) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'valid_until must be a finite time',
            HINT = 'Leave it NULL for consent without an end date (the purpose''s consent lifetime still applies).';
    END IF;
    IF until IS NOT NULL AND until <= pg_catalog.now() THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'valid_until must be in the future';
    END IF;
    IF p.consent_valid_for IS NOT NULL THEN
        until := LEAST(COALESCE(until, 'infinity'::timestamptz), pg_catalog.now() + p.consent_valid_for);
    END IF;
    entry := customer_vault._ledger_append(subject, purpose, 'grant', evidence, until);
    INSERT INTO customer_vault.consent_state AS s (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id)
    VALUES (subject, purpose, true, until, pg_catalog.now(), NULL, entry)
    ON CONFLICT ON CONSTRAINT consent_state_pkey DO UPDATE
       SET granted = true, valid_until = EXCLUDED.valid_until, granted_at = EXCLUDED.granted_at,
           withdrawn_at = NULL, ledger_id = EXCLUDED.ledger_id;
    RETURN entry;
END
$$;
COMMENT ON FUNCTION customer_vault.grant_consent(text, text, jsonb, timestamptz) IS
    'records an explicit opt-in with its evidence; returns the ledger entry id';

CREATE OR REPLACE FUNCTION customer_vault.withdraw_consent(subject text, purpose text, evidence jsonb DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p customer_vault.purposes := customer_vault._check_subject_purpose(subject, purpose);
    entry bigint;
BEGIN
    IF evidence IS NOT NULL AND pg_catalog.jsonb_typeof(evidence) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'evidence must be a JSON object';
    END IF;
    entry := customer_vault._ledger_append(subject, purpose, 'withdraw', evidence, NULL);
    UPDATE customer_vault.consent_state s
       SET granted = false, withdrawn_at = pg_catalog.now(), ledger_id = entry
     WHERE s.subject = withdraw_consent.subject AND s.purpose = withdraw_consent.purpose;
    RETURN entry;
END
$$;
COMMENT ON FUNCTION customer_vault.withdraw_consent(text, text, jsonb) IS
    'records the withdrawal of consent (effective for the next statement of every session); returns the ledger entry id';

CREATE OR REPLACE FUNCTION customer_vault.has_consent(subject text, purpose text) RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_has_consent';
COMMENT ON FUNCTION customer_vault.has_consent(text, text) IS
    'whether an explicit, unexpired, unwithdrawn opt-in of the subject for the purpose exists';

-- Not STRICT: a NULL purpose means the session's customer_vault.purpose.
CREATE OR REPLACE FUNCTION customer_vault.may_process(subject text, purpose text DEFAULT NULL) RETURNS boolean
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_may_process';
COMMENT ON FUNCTION customer_vault.may_process(text, text) IS
    'whether the current role may process the subject''s data for the purpose (default: customer_vault.purpose)';

-- the same for integer subject keys, without turning every key into text
CREATE OR REPLACE FUNCTION customer_vault.may_process(subject bigint, purpose text DEFAULT NULL) RETURNS boolean
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_may_process_int8';
COMMENT ON FUNCTION customer_vault.may_process(bigint, text) IS
    'may_process(subject::text, purpose) for integer subject keys';

CREATE OR REPLACE FUNCTION customer_vault._consent_cache_builds() RETURNS bigint
    LANGUAGE C VOLATILE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_consent_cache_builds';
COMMENT ON FUNCTION customer_vault._consent_cache_builds() IS
    'internal: how often this backend has read its consent cache (for tests and tuning)';

CREATE OR REPLACE VIEW customer_vault.current_consents AS
    SELECT s.subject, s.purpose, p.lawful_basis,
           CASE WHEN NOT s.granted THEN 'withdrawn'
                WHEN s.valid_until IS NOT NULL AND s.valid_until <= pg_catalog.now() THEN 'expired'
                ELSE 'granted' END AS status,
           s.granted_at, s.valid_until, s.withdrawn_at, s.ledger_id
      FROM customer_vault.consent_state s
      JOIN customer_vault.purposes p ON p.purpose = s.purpose;
COMMENT ON VIEW customer_vault.current_consents IS 'the consent state per subject and purpose';

CREATE OR REPLACE FUNCTION customer_vault.verify_ledger() RETURNS bigint
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT id FROM (
        SELECT l.id, l.hash, l.prev_hash,
               pg_catalog.lag(l.hash) OVER w AS expected_prev,
               COALESCE(pg_catalog.lag(l.id) OVER w, 0) AS previous_id,
               customer_vault._ledger_hash(l.prev_hash, l.id, l.subject, l.purpose, l.action, l.evidence,
                                           l.valid_until, l.recorded_at, l.recorded_by) AS recomputed
          FROM customer_vault.consent_ledger l
        WINDOW w AS (ORDER BY l.id)) e
     WHERE e.hash IS DISTINCT FROM e.recomputed
        OR e.prev_hash IS DISTINCT FROM e.expected_prev
        OR e.id <> e.previous_id + 1
     ORDER BY id
     LIMIT 1
$$;
COMMENT ON FUNCTION customer_vault.verify_ledger() IS
    'NULL when the consent ledger''s hash chain is intact, else the id of the first broken entry';

CREATE OR REPLACE FUNCTION customer_vault.enable_consent_policy(tbl regclass, subject_column name, purpose text DEFAULT NULL,
                                                     force boolean DEFAULT false)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    check_expr text;
    subject_type text;
BEGIN
    IF tbl IS NULL OR subject_column IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'table and subject column must not be null';
    END IF;
    SELECT t.nsp, t.rel INTO nsp, rel FROM customer_vault._table_names(tbl) t;
    PERFORM customer_vault._column_type(tbl, subject_column);
    IF purpose IS NOT NULL AND NOT EXISTS (SELECT 1 FROM customer_vault.purposes p WHERE p.purpose = enable_consent_policy.purpose) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = pg_catalog.format('purpose %L does not exist', purpose),
            HINT = 'Define it with customer_vault.define_purpose().';
    END IF;
    -- integer keys skip the text conversion (the same answer as for key::text)
    SELECT CASE WHEN a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
                THEN 'bigint' ELSE 'text' END
      INTO subject_type
      FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attname = subject_column;
    IF purpose IS NULL THEN
        check_expr := pg_catalog.format('customer_vault.may_process((%I)::%s)', subject_column, subject_type);
    ELSE
        check_expr := pg_catalog.format('customer_vault.may_process((%I)::%s, %L)', subject_column, subject_type, purpose);
    END IF;
    EXECUTE pg_catalog.format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', nsp, rel);
    IF force THEN
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I FORCE ROW LEVEL SECURITY', nsp, rel);
    END IF;
    -- rows are visible only where may_process() holds (restrictive: it narrows any other policy)
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = tbl AND p.polname = 'customer_vault_consent') THEN
        EXECUTE pg_catalog.format('DROP POLICY customer_vault_consent ON %I.%I', nsp, rel);
    END IF;
    EXECUTE pg_catalog.format('CREATE POLICY customer_vault_consent ON %I.%I AS RESTRICTIVE FOR SELECT USING (%s)',
                              nsp, rel, check_expr);
    -- with no permissive policy of the DBA's own, one that lets the table's grants decide;
    -- once the DBA has permissive policies, it goes (it would OR them with true)
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = tbl AND p.polpermissive
                  AND p.polname <> 'customer_vault_base') THEN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = tbl AND p.polname = 'customer_vault_base') THEN
            EXECUTE pg_catalog.format('DROP POLICY customer_vault_base ON %I.%I', nsp, rel);
        END IF;
    ELSE
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = tbl AND p.polname = 'customer_vault_base') THEN
            EXECUTE pg_catalog.format('DROP POLICY customer_vault_base ON %I.%I', nsp, rel);
        END IF;
        EXECUTE pg_catalog.format('CREATE POLICY customer_vault_base ON %I.%I AS PERMISSIVE FOR ALL USING (true) WITH CHECK (true)',
                                  nsp, rel);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault.enable_consent_policy(regclass, name, text, boolean) IS
    'enables row-level security with a policy that shows a row only where may_process() holds; idempotent';
