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

-- keyed on role OIDs (regrole): a role created later under a dropped role's
-- name does not inherit its purposes; rows of dropped roles are ignored by
-- consent checks and removed by allow_purpose/disallow_purpose
CREATE TABLE customer_vault.purpose_roles (
    role    regrole NOT NULL,
    purpose text COLLATE "C" NOT NULL REFERENCES customer_vault.purposes ON DELETE CASCADE,
    PRIMARY KEY (role, purpose)
);
--@ code
COMMENT ON TABLE customer_vault.purpose_roles IS 'the purposes each role (by OID) may act under';
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
    -- the subject's keyed hash as grant_consent/import_consents store it in
    -- the ledger (0.5.0; NULL in rows written before): consent_ledger_redacted
    -- names the subject of a ledger entry of hash version 2 through it
    subject_hash bytea,
    CONSTRAINT consent_state_pkey PRIMARY KEY (subject, purpose)
);
-- consent_ledger_redacted's way from a ledger entry's hash to its subject (a
-- hash index: 4-byte codes, rows without a hash not indexed)
CREATE INDEX consent_state_subject_hash_idx ON customer_vault.consent_state USING hash (subject_hash);
--@ code
COMMENT ON TABLE customer_vault.consent_state IS 'current consent per subject and purpose (see consent_ledger for the evidence)';

-- The form of a ledger entry (the table's only check,
-- consent_ledger_subject_form_check): its action is 'grant', 'withdraw' or
-- 'redact'; version 1 holds the plain subject and no hash and is never a
-- 'redact' entry, version 2 no plain subject and a 32-byte hash; NULL where
-- the SQL expression it replaces,
--   action = ANY ('{grant,withdraw,redact}') AND CASE hash_version WHEN 1 THEN
--   subject IS NOT NULL AND subject_hash IS NULL AND action <> 'redact' WHEN 2
--   THEN subject IS NULL AND length(subject_hash) = 32 ELSE false END,
-- is NULL.  In C, and one check (0.5.0 folded the action check in), because
-- every INSERT into the ledger reads each check back from the catalog and
-- prepares it anew: the CASE's stored form was the largest part of
-- grant_consent's cost, and each further check costs a grant ~1 us.  Not
-- STRICT: NULL arguments are part of the form.
CREATE OR REPLACE FUNCTION customer_vault._ledger_subject_form(hash_version smallint, subject text,
                                                    subject_hash bytea, action text)
    RETURNS boolean
    LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_ledger_subject_form';
COMMENT ON FUNCTION customer_vault._ledger_subject_form(smallint, text, bytea, text) IS
    'internal: the check of a consent ledger entry''s subject form (plain subject in version 1, its 32-byte keyed hash in version 2)';
--@ schema

-- append-only, hash-chained: every grant and withdrawal with its evidence
-- Entries of hash version 1 (before 0.5.0, or without a root key) hold the
-- subject in plain text; version 2 holds only its keyed hash (subject_hash,
-- _subject_hash) and the plain identifier lives in evidence_subjects, which
-- an erasure deletes.  A 'redact' entry (version 2) names the hash of an
-- erased subject and, in its evidence, the version-1 entries whose plain
-- subject consent_ledger_redacted hides.
CREATE TABLE customer_vault.consent_ledger (
    id           bigint PRIMARY KEY,
    subject      text,
    purpose      text NOT NULL,
    action       text NOT NULL,
    evidence     jsonb,
    valid_until  timestamptz,
    recorded_at  timestamptz NOT NULL,
    recorded_by  name NOT NULL,
    prev_hash    bytea,
    hash         bytea NOT NULL,
    subject_hash bytea,
    hash_version smallint NOT NULL DEFAULT 1,
    -- one check, in C: the action and the subject's form (each INSERT prepares
    -- every check of the table anew; see _ledger_subject_form)
    CONSTRAINT consent_ledger_subject_form_check
        CHECK (customer_vault._ledger_subject_form(hash_version, subject, subject_hash, action))
);
--@ code
COMMENT ON TABLE customer_vault.consent_ledger IS
    'append-only, hash-chained record of every grant and withdrawal of consent (since 0.5.0 the subject as its keyed hash)';
--@ schema

-- The plain identifier behind each subject hash of the evidence logs that
-- consent_state does not name (legal hold entries, withdrawals; grants are
-- named by their consent_state row), mutable, so that an erasure
-- (_redact_subject) deletes it.
CREATE TABLE customer_vault.evidence_subjects (
    subject_hash bytea PRIMARY KEY CHECK (pg_catalog.length(subject_hash) = 32),
    subject      text NOT NULL CHECK (subject <> '')
);
-- forget_subject finds the subject's other spellings here ('+60' for 60) by
-- ranges of texts in the C collation
CREATE INDEX evidence_subjects_subject_idx ON customer_vault.evidence_subjects (subject COLLATE "C");
--@ code
COMMENT ON TABLE customer_vault.evidence_subjects IS
    'the plain subject behind each subject hash of the consent ledger and the legal hold log; deleted by forget_subject';
--@ schema

-- The chain head: the last entry's id and hash, in one row updated in place
-- by every append.  Appends serialize on its row lock, which only the
-- extension's owner can take (no role is granted UPDATE on it).  No index:
-- a bulk load leaves one row version per append in its transaction, and a
-- unique index would check them all again on every non-HOT update; the row
-- is reached by its ctid instead.  A restore adds the dumped row next to the
-- one CREATE EXTENSION made: the append keeps the one with the higher id.
CREATE TABLE customer_vault.consent_ledger_head (
    last_id   bigint NOT NULL,
    last_hash bytea
);
ALTER TABLE customer_vault.consent_ledger_head REPLICA IDENTITY FULL;
INSERT INTO customer_vault.consent_ledger_head (last_id, last_hash) VALUES (0, NULL);
--@ code
COMMENT ON TABLE customer_vault.consent_ledger_head IS
    'the consent ledger''s chain head (last id and hash); its row lock serializes appends';
--@ schema

SELECT pg_catalog.pg_extension_config_dump('customer_vault.purposes', '');
-- rows of dropped roles are not dumped (their OIDs mean nothing elsewhere)
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purpose_roles',
    'WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) role)');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.consent_state', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.consent_ledger', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.consent_ledger_head', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.evidence_subjects', '');
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
-- (the text of a jsonb array; times as integer microseconds since the epoch):
--   sha256(COALESCE(prev, '') || convert_to(jsonb_build_array(id, subject,
--     purpose, action, evidence, (EXTRACT(epoch FROM valid_until) * 1000000)::bigint,
--     (EXTRACT(epoch FROM recorded_at) * 1000000)::bigint, recorded_by)::text, 'UTF8'))
-- which was its SQL body up to 0.2.0; in C since 0.3.0 (src/import.c), the
-- same bytes (test/sql/import_consents.sql compares both).
CREATE OR REPLACE FUNCTION customer_vault._ledger_hash(prev bytea, id bigint, subject text, purpose text, action text,
                                            evidence jsonb, valid_until timestamptz,
                                            recorded_at timestamptz, recorded_by name)
    RETURNS bytea
    LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_ledger_hash';
COMMENT ON FUNCTION customer_vault._ledger_hash(bytea, bigint, text, text, text, jsonb, timestamptz, timestamptz, name) IS
    'internal: the chained hash of one ledger entry';

-- Hash version 2 (0.5.0): the same, over the UTF-8 text of
-- jsonb_build_array(2, id, subject, encode(subject_hash, 'hex'), purpose,
-- action, evidence, valid_until_us, recorded_at_us, recorded_by) (subject
-- NULL in every entry written so: a subject written into one later breaks its
-- hash).  In C (src/import.c), like version 1.
CREATE OR REPLACE FUNCTION customer_vault._ledger_hash_v2(prev bytea, id bigint, subject text, subject_hash bytea,
                                               purpose text, action text, evidence jsonb,
                                               valid_until timestamptz, recorded_at timestamptz, recorded_by name)
    RETURNS bytea
    LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_ledger_hash_v2';
COMMENT ON FUNCTION customer_vault._ledger_hash_v2(bytea, bigint, text, bytea, text, text, jsonb, timestamptz, timestamptz, name) IS
    'internal: the chained hash of one ledger entry of hash version 2 (subject stored as its keyed hash)';

-- The keyed hash an evidence entry stores for a subject (_subject_hash), or
-- NULL when no root key is configured (the entry is then written in the
-- version-1 form, subject in plain text: without a root key nothing can be
-- erased either).  With record, keeps the plain subject in evidence_subjects.
CREATE OR REPLACE FUNCTION customer_vault._evidence_subject(subject text, record boolean) RETURNS bytea
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_evidence_subject';
COMMENT ON FUNCTION customer_vault._evidence_subject(text, boolean) IS
    'internal: the subject hash an evidence entry stores (NULL without a root key), recording the plain subject in evidence_subjects';

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
-- The logical replication apply worker fires row triggers only (and runs as
-- session_replication_role = replica): these tell the subscriber's sessions
-- about replicated changes.  Ordinary sessions skip them (the statement
-- triggers above serve them at no per-row cost), but for the one on
-- purposes, which fires in every session (ENABLE ALWAYS, part PERF): it tells
-- every session's grant_consent, which keeps the purposes it read within a
-- transaction, of a change at once (a change is rare, a row's cost nothing).
CREATE OR REPLACE TRIGGER consent_state_changed_row BEFORE INSERT OR UPDATE OR DELETE ON customer_vault.consent_state
    FOR EACH ROW EXECUTE FUNCTION customer_vault._consent_changed();
CREATE OR REPLACE TRIGGER purposes_changed_row BEFORE INSERT OR UPDATE OR DELETE ON customer_vault.purposes
    FOR EACH ROW EXECUTE FUNCTION customer_vault._consent_changed();
CREATE OR REPLACE TRIGGER purpose_roles_changed_row BEFORE INSERT OR UPDATE OR DELETE ON customer_vault.purpose_roles
    FOR EACH ROW EXECUTE FUNCTION customer_vault._consent_changed();
ALTER TABLE customer_vault.consent_state ENABLE REPLICA TRIGGER consent_state_changed_row;
ALTER TABLE customer_vault.purposes ENABLE ALWAYS TRIGGER purposes_changed_row;
ALTER TABLE customer_vault.purpose_roles ENABLE REPLICA TRIGGER purpose_roles_changed_row;

CREATE OR REPLACE FUNCTION customer_vault.define_purpose(purpose text, lawful_basis text DEFAULT 'consent',
                                              description text DEFAULT NULL,
                                              consent_valid_for interval DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET DateStyle = 'ISO, YMD'
    SET IntervalStyle = 'postgres'
    SET standard_conforming_strings = on
AS $$
BEGIN
    PERFORM customer_vault._coordinator_only('define_purpose()');
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

-- forget the purposes of roles that no longer exist
CREATE OR REPLACE FUNCTION customer_vault._forget_dropped_roles() RETURNS void
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM customer_vault.purpose_roles r
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles a WHERE a.oid = r.role)
$$;
COMMENT ON FUNCTION customer_vault._forget_dropped_roles() IS
    'internal: removes purpose_roles rows of dropped roles';

-- the arguments of allow_purpose/disallow_purpose: a role and an existing purpose
CREATE OR REPLACE FUNCTION customer_vault._check_role_purpose(role regrole, purpose text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'role must not be null';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles a WHERE a.oid = role) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = pg_catalog.format('role with OID %s does not exist', role::oid);
    END IF;
    IF purpose IS NULL OR purpose = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'purpose must not be null or empty';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM customer_vault.purposes p WHERE p.purpose = _check_role_purpose.purpose) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = pg_catalog.format('purpose %L does not exist', purpose),
            HINT = 'Define it with customer_vault.define_purpose().';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._check_role_purpose(regrole, text) IS
    'internal: validates the role and purpose of allow_purpose/disallow_purpose';

CREATE OR REPLACE FUNCTION customer_vault.allow_purpose(role regrole, purpose text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
BEGIN
    PERFORM customer_vault._coordinator_only('allow_purpose()');
    PERFORM customer_vault._check_role_purpose(role, purpose);
    PERFORM customer_vault._forget_dropped_roles();
    INSERT INTO customer_vault.purpose_roles AS r (role, purpose)
    VALUES (allow_purpose.role, allow_purpose.purpose)
    ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION customer_vault.allow_purpose(regrole, text) IS 'lets a role (and its members) act under a purpose';

CREATE OR REPLACE FUNCTION customer_vault.disallow_purpose(role regrole, purpose text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
BEGIN
    PERFORM customer_vault._coordinator_only('disallow_purpose()');
    PERFORM customer_vault._check_role_purpose(role, purpose);
    PERFORM customer_vault._forget_dropped_roles();
    DELETE FROM customer_vault.purpose_roles r
     WHERE r.role OPERATOR(pg_catalog.=) disallow_purpose.role AND r.purpose = disallow_purpose.purpose;
END
$$;
COMMENT ON FUNCTION customer_vault.disallow_purpose(regrole, text) IS 'withdraws a role''s right to act under a purpose';

-- the ctid of the chain head row as this transaction last wrote it (C: valid
-- for this transaction, forgotten on a subtransaction abort)
CREATE OR REPLACE FUNCTION customer_vault._ledger_head_tid() RETURNS tid
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_ledger_head_tid';
COMMENT ON FUNCTION customer_vault._ledger_head_tid() IS
    'internal: where this transaction last wrote the ledger''s chain head, or NULL';
CREATE OR REPLACE FUNCTION customer_vault._ledger_head_remember(tid) RETURNS void
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_ledger_head_remember';
COMMENT ON FUNCTION customer_vault._ledger_head_remember(tid) IS
    'internal: records where this transaction wrote the ledger''s chain head';

-- One ledger entry, chained to the previous one.  Appends serialize on the
-- row lock of the chain head, which no other role can take; the head row is
-- updated in place, found by its ctid after a transaction's first append, so
-- every append costs the same however many came before (O(1)).
CREATE OR REPLACE FUNCTION customer_vault._ledger_append(subject text, purpose text, action text, evidence jsonb,
                                              valid_until timestamptz, subject_hash bytea DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- the chain head is reached by its ctid: a plan cached while the table
    -- was one page would otherwise scan every version a bulk load leaves
    -- (and the disabled scans' costs must not trigger JIT compilation)
    SET enable_seqscan = off
    SET jit = off
AS $$
DECLARE
    head_tid tid := customer_vault._ledger_head_tid();
    last_id bigint;
    last_hash bytea;
    new_id bigint;
    new_hash bytea;
    ts timestamptz;
    who name := session_user;
    sh bytea;
BEGIN
    -- the ledger is the coordinator's (not on a Citus worker)
    PERFORM customer_vault._coordinator_only('a consent change');
    IF head_tid IS NOT NULL THEN
        SELECT h.last_id, h.last_hash INTO last_id, last_hash
          FROM customer_vault.consent_ledger_head h WHERE h.ctid = head_tid;
    END IF;
    IF last_id IS NULL THEN
        -- the first append of this transaction: lock the chain head
        SELECT h.ctid, h.last_id, h.last_hash INTO head_tid, last_id, last_hash
          FROM customer_vault.consent_ledger_head h ORDER BY h.last_id DESC LIMIT 1 FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = 'the consent ledger has no chain head',
                HINT = 'Insert the last entry''s id and hash into customer_vault.consent_ledger_head.';
        END IF;
        -- a restore leaves the head CREATE EXTENSION made next to the dumped one
        DELETE FROM customer_vault.consent_ledger_head h WHERE h.ctid <> head_tid;
    END IF;
    new_id := last_id + 1;
    ts := pg_catalog.clock_timestamp();
    -- the subject as its keyed hash (version 2: subject_hash when given, as a
    -- redaction does, else that of subject, kept in evidence_subjects); in
    -- plain text only without a root key
    sh := COALESCE(subject_hash, customer_vault._evidence_subject(subject, true));
    IF sh IS NOT NULL THEN
        new_hash := customer_vault._ledger_hash_v2(last_hash, new_id, NULL, sh, purpose, action,
                                                   evidence, valid_until, ts, who);
        INSERT INTO customer_vault.consent_ledger
            (id, subject, subject_hash, hash_version, purpose, action, evidence, valid_until, recorded_at,
             recorded_by, prev_hash, hash)
        VALUES (new_id, NULL, sh, 2, purpose, action, evidence, valid_until, ts, who, last_hash, new_hash);
    ELSE
        new_hash := customer_vault._ledger_hash(last_hash, new_id, subject, purpose, action,
                                                evidence, valid_until, ts, who);
        INSERT INTO customer_vault.consent_ledger
            (id, subject, purpose, action, evidence, valid_until, recorded_at, recorded_by, prev_hash, hash)
        VALUES (new_id, subject, purpose, action, evidence, valid_until, ts, who, last_hash, new_hash);
    END IF;
    UPDATE customer_vault.consent_ledger_head h SET last_id = new_id, last_hash = new_hash
     WHERE h.ctid = head_tid
    RETURNING h.ctid INTO head_tid;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'internal_error', MESSAGE = 'consent ledger chain head not found';
    END IF;
    PERFORM customer_vault._ledger_head_remember(head_tid);
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION customer_vault._ledger_append(text, text, text, jsonb, timestamptz, bytea) IS
    'internal: appends one hash-chained entry to consent_ledger (the subject as its keyed hash)';

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

-- In C (src/import.c): the checks and messages of the plpgsql version it
-- replaced, the entry hashed and chained exactly as _ledger_append() does,
-- with kept plans.  Not SECURITY DEFINER: the C code writes the ledger and
-- the state as the ledger's owner, security-restricted, with a pinned
-- search_path.  Not STRICT: NULL arguments get the errors below.
CREATE OR REPLACE FUNCTION customer_vault.grant_consent(subject text, purpose text, evidence jsonb,
                                             valid_until timestamptz DEFAULT NULL)
    RETURNS bigint
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_grant_consent';
COMMENT ON FUNCTION customer_vault.grant_consent(text, text, jsonb, timestamptz) IS
    'records an explicit opt-in with its evidence; returns the ledger entry id';

CREATE OR REPLACE FUNCTION customer_vault.withdraw_consent(subject text, purpose text, evidence jsonb DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET DateStyle = 'ISO, YMD'
    SET IntervalStyle = 'postgres'
    SET standard_conforming_strings = on
AS $$
DECLARE
    p customer_vault.purposes := customer_vault._check_subject_purpose(subject, purpose);
    entry bigint;
BEGIN
    IF evidence IS NOT NULL AND pg_catalog.jsonb_typeof(evidence) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'evidence must be a JSON object';
    END IF;
    -- the bound of grant_consent and forget_subject (CV_SUBJECT_MAX,
    -- src/customer_vault.h); a longer subject recorded before 0.5.0 can still be withdrawn
    IF pg_catalog.octet_length(subject) > 255
       AND NOT EXISTS (SELECT 1 FROM customer_vault.consent_state s
                        WHERE s.subject = withdraw_consent.subject AND s.purpose = withdraw_consent.purpose) THEN
        RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded', MESSAGE = 'subject identifier is too long',
            DETAIL = 'A subject identifier of consent is at most 255 bytes long.';
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

-- the shared consent cache (src/scache.c): what it holds, and what answers a session's checks
CREATE OR REPLACE FUNCTION customer_vault._consent_shared_cache(
        OUT purpose text, OUT state text, OUT version bigint, OUT subjects bigint, OUT bytes bigint,
        OUT current boolean)
    RETURNS SETOF record
    LANGUAGE C VOLATILE STRICT PARALLEL SAFE ROWS 10
    AS 'MODULE_PATHNAME', 'cv_consent_shared_cache';
COMMENT ON FUNCTION customer_vault._consent_shared_cache() IS
    'internal: the versions of this database''s shared consent cache (for tests and tuning)';
CREATE OR REPLACE FUNCTION customer_vault._consent_cache_source(purpose text) RETURNS text
    LANGUAGE C VOLATILE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_consent_cache_source';
COMMENT ON FUNCTION customer_vault._consent_cache_source(text) IS
    'internal: what answers this session''s consent checks of a purpose now: shared <version>, local, probe or unloaded (for tests)';

CREATE OR REPLACE VIEW customer_vault.current_consents AS
    SELECT s.subject, s.purpose, p.lawful_basis,
           CASE WHEN NOT s.granted THEN 'withdrawn'
                WHEN s.valid_until IS NOT NULL AND s.valid_until <= pg_catalog.now() THEN 'expired'
                ELSE 'granted' END AS status,
           s.granted_at, s.valid_until, s.withdrawn_at, s.ledger_id
      FROM customer_vault.consent_state s
      JOIN customer_vault.purposes p ON p.purpose = s.purpose;
COMMENT ON VIEW customer_vault.current_consents IS 'the consent state per subject and purpose';

-- the first broken entry: a hash or link that does not match, a gap in the
-- ids, a chain head that does not point at the last entry (entries cut off
-- the end, or added past the head), or a 'redact' entry naming anything but
-- earlier non-redact entries of its purpose and its subject (version 2:
-- the entry's subject_hash is the redact entry's; version 1: the keyed hash
-- of the entry's plain subject is, when the root key is loaded to compute
-- it): consent_ledger_redacted and export_subject hide whatever a redact
-- entry names, so one naming another subject's entries would hide them.
-- SECURITY DEFINER: the keyed hash of a version-1 subject (_evidence_subject)
-- is the extension's to compute; the caller gets only an entry id.
CREATE OR REPLACE FUNCTION customer_vault.verify_ledger() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT min(broken) FROM (
        (SELECT id AS broken FROM (
            SELECT l.id, l.hash, l.prev_hash,
                   pg_catalog.lag(l.hash) OVER w AS expected_prev,
                   COALESCE(pg_catalog.lag(l.id) OVER w, 0) AS previous_id,
                   CASE l.hash_version
                        WHEN 1 THEN customer_vault._ledger_hash(l.prev_hash, l.id, l.subject, l.purpose, l.action,
                                                                l.evidence, l.valid_until, l.recorded_at, l.recorded_by)
                        WHEN 2 THEN customer_vault._ledger_hash_v2(l.prev_hash, l.id, l.subject, l.subject_hash,
                                                                   l.purpose, l.action, l.evidence, l.valid_until,
                                                                   l.recorded_at, l.recorded_by)
                   END AS recomputed
              FROM customer_vault.consent_ledger l
            WINDOW w AS (ORDER BY l.id)) e
         WHERE e.hash IS DISTINCT FROM e.recomputed
            OR e.prev_hash IS DISTINCT FROM e.expected_prev
            OR e.id <> e.previous_id + 1
         ORDER BY id
         LIMIT 1)
        UNION ALL
        (SELECT CASE WHEN t.id = COALESCE(h.last_id, 0) THEN t.id
                     ELSE LEAST(t.id, COALESCE(h.last_id, 0)) + 1 END
           FROM (SELECT COALESCE(max(l.id), 0) AS id FROM customer_vault.consent_ledger l) t
           LEFT JOIN (SELECT hh.last_id, hh.last_hash FROM customer_vault.consent_ledger_head hh
                       ORDER BY hh.last_id DESC LIMIT 1) h ON true
          WHERE t.id IS DISTINCT FROM COALESCE(h.last_id, 0)
             OR h.last_hash IS DISTINCT FROM (SELECT l.hash FROM customer_vault.consent_ledger l WHERE l.id = t.id))
        UNION ALL
        (SELECT m.id
           FROM customer_vault.consent_ledger m
          CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(
                    CASE WHEN pg_catalog.jsonb_typeof(m.evidence -> 'redacts') = 'array' THEN m.evidence -> 'redacts'
                         ELSE '[null]'::jsonb END) n(v)
           LEFT JOIN customer_vault.consent_ledger l
                  ON l.id = CASE WHEN pg_catalog.jsonb_typeof(n.v) = 'number'
                                      AND (n.v)::numeric BETWEEN 1 AND 9223372036854775807
                                      AND (n.v)::numeric = pg_catalog.trunc((n.v)::numeric)
                                 THEN (n.v)::numeric::bigint END
          WHERE m.action = 'redact'
            AND (l.id IS NULL OR l.id >= m.id OR l.action = 'redact' OR l.purpose <> m.purpose
                 OR (l.hash_version = 2 AND l.subject_hash IS DISTINCT FROM m.subject_hash)
                 OR (l.hash_version = 1
                     AND CASE WHEN l.subject = '' THEN true
                              ELSE COALESCE(customer_vault._evidence_subject(l.subject, false), m.subject_hash)
                                   OPERATOR(pg_catalog.<>) m.subject_hash END))
          ORDER BY m.id
          LIMIT 1)
    ) b
$$;
COMMENT ON FUNCTION customer_vault.verify_ledger() IS
    'NULL when the consent ledger''s hash chain is intact, else the id of the first broken entry';

-- The ledger as an auditor reads it: every entry with its subject in plain
-- text where it is still known (for entries of hash version 2 the
-- consent_state row of its hash and purpose, else evidence_subjects; for
-- version 1 the entry itself) and NULL once the subject was erased: an
-- erasure names every entry of the subject written before it (either
-- version) in a 'redact' entry, and such an entry stays NULL even when the
-- subject comes back (new consent_state and evidence_subjects rows name only
-- its entries after the erasure); a 'redact' entry never shows a subject.
CREATE OR REPLACE VIEW customer_vault.consent_ledger_redacted AS
    SELECT l.id,
           CASE WHEN l.action = 'redact' OR r.id IS NOT NULL THEN NULL
                WHEN l.hash_version = 1 THEN l.subject
                ELSE COALESCE(cs.subject COLLATE "default", d.subject) END AS subject,
           l.subject_hash, l.purpose, l.action, l.evidence, l.valid_until, l.recorded_at, l.recorded_by,
           l.hash_version,
           l.action = 'redact' OR r.id IS NOT NULL
           OR (l.hash_version = 2 AND cs.subject IS NULL AND d.subject IS NULL) AS redacted,
           l.prev_hash, l.hash
      FROM customer_vault.consent_ledger l
      LEFT JOIN customer_vault.consent_state cs ON cs.subject_hash = l.subject_hash AND cs.purpose = l.purpose
      LEFT JOIN customer_vault.evidence_subjects d ON d.subject_hash = l.subject_hash
      LEFT JOIN (SELECT DISTINCT (x.id)::bigint AS id
                   FROM customer_vault.consent_ledger m
                  CROSS JOIN LATERAL pg_catalog.jsonb_array_elements_text(m.evidence -> 'redacts') x(id)
                  WHERE m.action = 'redact') r ON r.id = l.id;
COMMENT ON VIEW customer_vault.consent_ledger_redacted IS
    'the consent ledger with the subject in plain text while it is known, NULL (redacted) once it was erased';

-- The permissive base policy of a table under the consent policy: it lets
-- the table's grants decide while the table has no permissive policy of the
-- DBA's own, and goes as soon as it has one (permissive policies OR
-- together: USING (true) would void the DBA's).  may_create = false only
-- drops (CREATE/ALTER POLICY: a restore creates the base policy itself).
CREATE OR REPLACE FUNCTION customer_vault._sync_base_policy(tbl regclass, may_create boolean DEFAULT true)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    has_base boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                    WHERE p.polrelid = tbl AND p.polname = 'customer_vault_consent') THEN
        RETURN;
    END IF;
    SELECT n.nspname, c.relname INTO nsp, rel
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = tbl;
    has_base := EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                         WHERE p.polrelid = tbl AND p.polname = 'customer_vault_base');
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                WHERE p.polrelid = tbl AND p.polpermissive AND p.polname <> 'customer_vault_base') THEN
        IF has_base THEN
            EXECUTE pg_catalog.format('DROP POLICY customer_vault_base ON %I.%I', nsp, rel);
        END IF;
    ELSIF NOT has_base AND may_create THEN
        EXECUTE pg_catalog.format(
            'CREATE POLICY customer_vault_base ON %I.%I AS PERMISSIVE FOR ALL USING (true) WITH CHECK (true)',
            nsp, rel);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._sync_base_policy(regclass, boolean) IS
    'internal: keeps customer_vault_base only while a table under the consent policy has no permissive policy of its own';

-- Puts one table under the consent policy check_expr (every step guarded:
-- the event triggers may have done part of it already); check_expr NULL:
-- the policy is there already (copied by _inherit_consent_policy), only row
-- security and the base policy are set up.
CREATE OR REPLACE FUNCTION customer_vault._apply_consent_policy(tbl regclass, check_expr text, force boolean,
                                                     replace boolean)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    kind "char";
BEGIN
    SELECT n.nspname, c.relname, c.relkind INTO nsp, rel, kind
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = tbl;
    IF kind IS NULL OR kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = pg_catalog.format('%s cannot be put under a consent policy', tbl),
            DETAIL = 'Only ordinary and partitioned tables have row-level security; a partition or child of a table under a consent policy must be one.';
    END IF;
    EXECUTE pg_catalog.format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', nsp, rel);
    IF force THEN
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I FORCE ROW LEVEL SECURITY', nsp, rel);
    END IF;
    -- rows are visible only where may_process() holds (restrictive: it narrows any other policy)
    IF replace AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                            WHERE p.polrelid = tbl AND p.polname = 'customer_vault_consent') THEN
        EXECUTE pg_catalog.format('DROP POLICY customer_vault_consent ON %I.%I', nsp, rel);
    END IF;
    IF check_expr IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                    WHERE p.polrelid = tbl AND p.polname = 'customer_vault_consent') THEN
        EXECUTE pg_catalog.format('CREATE POLICY customer_vault_consent ON %I.%I AS RESTRICTIVE FOR SELECT USING (%s)',
                                  nsp, rel, check_expr);
    END IF;
    PERFORM customer_vault._sync_base_policy(tbl, true);
END
$$;
COMMENT ON FUNCTION customer_vault._apply_consent_policy(regclass, text, boolean, boolean) IS
    'internal: enables row-level security on one table with the consent policy and, when it needs one, the base policy';

-- every partition and inheritance child of a table, at any depth
CREATE OR REPLACE FUNCTION customer_vault._descendants(tbl regclass) RETURNS SETOF regclass
    LANGUAGE sql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE d(rel) AS (
        SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = tbl
        UNION
        SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent = d.rel)
    SELECT d.rel::regclass FROM d
$$;
COMMENT ON FUNCTION customer_vault._descendants(regclass) IS
    'internal: the partitions and inheritance children of a table, at any depth';

-- A table that became a partition or a child (and its own partitions and
-- children) gets the consent policy of its nearest ancestor that has one.
-- The policy is copied as its stored expression tree (_copy_consent_policy,
-- in C), never as text: this runs inside the SECURITY DEFINER event trigger,
-- and re-parsing a table owner's expression would run the owner's code (a
-- domain's CHECK on a literal) with the extension owner's rights.
CREATE OR REPLACE FUNCTION customer_vault._inherit_consent_policy(tbl regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    src record;
BEGIN
    FOR t IN SELECT tbl UNION SELECT d FROM customer_vault._descendants(tbl) d LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                               WHERE p.polrelid = t AND p.polname = 'customer_vault_consent');
        WITH RECURSIVE a(rel, depth) AS (
            SELECT i.inhparent, 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = t
            UNION ALL
            SELECT i.inhparent, a.depth + 1 FROM pg_catalog.pg_inherits i JOIN a ON i.inhrelid = a.rel)
        SELECT a.rel::pg_catalog.regclass AS rel, c.relforcerowsecurity AS force
          INTO src
          FROM a
          JOIN pg_catalog.pg_policy p ON p.polrelid = a.rel AND p.polname = 'customer_vault_consent'
          JOIN pg_catalog.pg_class c ON c.oid = a.rel
         ORDER BY a.depth
         LIMIT 1;
        IF FOUND THEN
            PERFORM customer_vault._copy_consent_policy(src.rel, t);
            PERFORM customer_vault._apply_consent_policy(t, NULL, src.force, false);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._inherit_consent_policy(regclass) IS
    'internal: copies the consent policy of the nearest ancestor to a new partition or child and its descendants';

-- Copies a table's customer_vault_consent policy onto one of its partitions
-- or children (node trees, attribute numbers mapped; nothing is parsed).
CREATE OR REPLACE FUNCTION customer_vault._copy_consent_policy(source regclass, child regclass) RETURNS boolean
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_copy_consent_policy';
COMMENT ON FUNCTION customer_vault._copy_consent_policy(regclass, regclass) IS
    'internal: copies the consent policy of a table onto a partition or child as its stored expression (no parsing); whether it made one';

-- Makes a table's consent policy restrictive again, with the same command,
-- roles and expressions: pg_policy.polpermissive is flipped in C (the
-- expression is never turned into text and parsed again as the extension's
-- owner).
CREATE OR REPLACE FUNCTION customer_vault._consent_policy_restrictive(tbl regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM customer_vault._consent_policy_flip(tbl);
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                WHERE p.polrelid = tbl AND p.polname = 'customer_vault_consent' AND p.polpermissive) THEN
        RAISE EXCEPTION USING ERRCODE = 'internal_error',
            MESSAGE = pg_catalog.format('the consent policy of %s could not be made restrictive', tbl);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._consent_policy_restrictive(regclass) IS
    'internal: makes a permissive customer_vault_consent policy (as Citus copies it to shards) restrictive, without re-parsing it';

CREATE OR REPLACE FUNCTION customer_vault._consent_policy_flip(tbl regclass) RETURNS boolean
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_consent_policy_restrictive';
COMMENT ON FUNCTION customer_vault._consent_policy_flip(regclass) IS
    'internal: sets a permissive customer_vault_consent policy restrictive in the catalog (no parsing); whether it changed it';

-- Event trigger (ddl_command_end): partitions and children created or
-- attached under a table with a consent policy get it too; a permissive
-- policy added by the DBA removes customer_vault_base.  SECURITY DEFINER:
-- it runs for any table owner; search_path pinned, names quoted.
CREATE OR REPLACE FUNCTION customer_vault._consent_policy_ddl() RETURNS event_trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cmd record;
    parent record;
BEGIN
    FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        IF cmd.classid = 'pg_catalog.pg_class'::regclass AND cmd.command_tag IN ('CREATE TABLE', 'ALTER TABLE')
           AND customer_vault._ddl_links_tables(cmd.command) THEN
            PERFORM customer_vault._inherit_consent_policy(cmd.objid::regclass);
            -- an ordinary table under a retention policy must not get children
            -- (set_retention refuses inheritance parents; partitioned tables are fine)
            CONTINUE WHEN pg_catalog.to_regclass('customer_vault.retention_policies') IS NULL;
            -- only the tables of this command: the table itself and its parents
            SELECT r.schema_name, r.table_name INTO parent
              FROM customer_vault.retention_policies r
              JOIN pg_catalog.pg_class c ON c.oid = r.relid::oid
             WHERE c.relkind <> 'p'
               AND (c.oid = cmd.objid
                    OR c.oid IN (SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = cmd.objid))
               AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid)
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                    MESSAGE = pg_catalog.format('table %I.%I has a retention policy and cannot have child tables',
                                                parent.schema_name, parent.table_name),
                    HINT = 'Set the retention of each child table instead.';
            END IF;
        ELSIF cmd.classid = 'pg_catalog.pg_policy'::regclass THEN
            -- the consent policy is restrictive wherever it is made: Citus
            -- (13.x) re-creates policies on the shards of a distributed table
            -- and on the workers' copies without AS RESTRICTIVE, which would
            -- OR it with every permissive policy there
            PERFORM customer_vault._consent_policy_restrictive(p.polrelid::regclass)
               FROM pg_catalog.pg_policy p
              WHERE p.oid = cmd.objid AND p.polname = 'customer_vault_consent' AND p.polpermissive;
            PERFORM customer_vault._sync_base_policy(p.polrelid::regclass, false)
               FROM pg_catalog.pg_policy p WHERE p.oid = cmd.objid;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._consent_policy_ddl() IS
    'internal: event trigger extending consent policies to new partitions and children, and keeping DBA policies in force';

-- Event trigger (sql_drop): when the DBA drops the last permissive policy of
-- a table under the consent policy, customer_vault_base comes back.
CREATE OR REPLACE FUNCTION customer_vault._consent_policy_dropped() RETURNS event_trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d record;
    t regclass;
BEGIN
    FOR d IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() o
              WHERE o.object_type = 'policy' AND pg_catalog.cardinality(o.address_names) = 3 LOOP
        t := pg_catalog.to_regclass(pg_catalog.format('%I.%I', d.address_names[1], d.address_names[2]));
        IF t IS NOT NULL THEN
            PERFORM customer_vault._sync_base_policy(t, true);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._consent_policy_dropped() IS
    'internal: event trigger restoring customer_vault_base when a table''s last permissive policy is dropped';

CREATE OR REPLACE FUNCTION customer_vault._ddl_links_tables(pg_ddl_command) RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_ddl_links_tables';
COMMENT ON FUNCTION customer_vault._ddl_links_tables(pg_ddl_command) IS
    'internal: whether a DDL command made a table a partition or an inheritance child';
--@ schema
CREATE EVENT TRIGGER customer_vault_consent_policy_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE POLICY', 'ALTER POLICY')
    EXECUTE FUNCTION customer_vault._consent_policy_ddl();
CREATE EVENT TRIGGER customer_vault_consent_policy_dropped ON sql_drop
    WHEN TAG IN ('DROP POLICY')
    EXECUTE FUNCTION customer_vault._consent_policy_dropped();
--@ code

-- Enables row-level security on the table and on every partition and
-- inheritance child (and, through the event trigger, on those created or
-- attached later), with the restrictive consent policy and, where the table
-- has no permissive policy of its own, the base policy.
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
    child regclass;
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
    -- the table first, then its partitions and children (read directly, they
    -- are not covered by the parent's policies)
    PERFORM customer_vault._apply_consent_policy(tbl, check_expr, force, true);
    FOR child IN SELECT d FROM customer_vault._descendants(tbl) d LOOP
        PERFORM customer_vault._apply_consent_policy(child, check_expr, force, true);
    END LOOP;
    -- the table joins the map of personal data (unless registered already)
    PERFORM customer_vault._register_subject_table(tbl, subject_column, true);
END
$$;
COMMENT ON FUNCTION customer_vault.enable_consent_policy(regclass, name, text, boolean) IS
    'enables row-level security on a table and all its partitions and children with a policy that shows a row only where may_process() holds; idempotent';

GRANT EXECUTE ON FUNCTION
    customer_vault._sync_base_policy(regclass, boolean),
    customer_vault._apply_consent_policy(regclass, text, boolean, boolean),
    customer_vault._descendants(regclass)
    TO customer_vault_admin;
GRANT SELECT ON customer_vault.consent_ledger_head TO customer_vault_admin, customer_vault_auditor;

--@ code
-- Privileges of this concern (may_process, for PUBLIC, is in 90_privileges.sql).
GRANT EXECUTE ON FUNCTION
    customer_vault.define_purpose(text, text, text, interval),
    customer_vault.allow_purpose(regrole, text), customer_vault.disallow_purpose(regrole, text),
    customer_vault.enable_consent_policy(regclass, name, text, boolean),
    customer_vault.grant_consent(text, text, jsonb, timestamptz),
    customer_vault.withdraw_consent(text, text, jsonb),
    customer_vault.has_consent(text, text),
    customer_vault.verify_ledger(),
    customer_vault._consent_cache_builds()
    TO customer_vault_admin;
-- the application that collects consent records it
GRANT EXECUTE ON FUNCTION
    customer_vault.grant_consent(text, text, jsonb, timestamptz),
    customer_vault.withdraw_consent(text, text, jsonb)
    TO customer_vault_writer;
GRANT EXECUTE ON FUNCTION customer_vault.has_consent(text, text), customer_vault.verify_ledger()
    TO customer_vault_auditor;
GRANT EXECUTE ON FUNCTION
    customer_vault._ledger_hash(bytea, bigint, text, text, text, jsonb, timestamptz, timestamptz, name)
    TO customer_vault_admin, customer_vault_auditor;
GRANT SELECT ON customer_vault.purposes, customer_vault.purpose_roles, customer_vault.consent_ledger,
    customer_vault.current_consents, customer_vault.consent_ledger_redacted
    TO customer_vault_admin, customer_vault_auditor;
GRANT EXECUTE ON FUNCTION
    customer_vault._ledger_hash_v2(bytea, bigint, text, bytea, text, text, jsonb, timestamptz, timestamptz, name)
    TO customer_vault_admin, customer_vault_auditor;
