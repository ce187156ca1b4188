/* customer_vault 0.1.0--0.2.0 (assembled from sql/src by sql/assemble.sh; do not edit) */

\echo Use "ALTER EXTENSION customer_vault UPDATE TO '0.2.0'" to load this file. \quit
-- customer_vault 0.1.0 -> 0.2.0: the hand-written part of the upgrade.
-- Changes to tables, and DROPs of functions whose signature or return type
-- changed, go before the replay; data migrations that need the new
-- functions go after it.

-- length padding per key (create_key's pad_to, set_key_padding)
ALTER TABLE customer_vault.data_keys
    ADD COLUMN pad_to integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT data_keys_pad_to_check CHECK (pad_to >= 0 AND pad_to <= 4096);
DROP FUNCTION customer_vault.create_key(text, text);

-- blind indexes bound to their column, truncated to blind_index_bits (NULL:
-- a column protected by 0.1.0, whose index stays unbound and full-length)
ALTER TABLE customer_vault.protected_columns
    ADD COLUMN blind_index_bits integer,
    ADD CONSTRAINT protected_columns_blind_index_bits_check CHECK (blind_index_bits BETWEEN 1 AND 256);
CREATE TABLE customer_vault.blind_index_lookups (
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    role_id     oid NOT NULL,
    schema_name name NOT NULL,
    table_name  name NOT NULL,
    column_name name NOT NULL,
    found       bigint NOT NULL
);
-- the registry names the table by OID too (filled below, from the rows that
-- check out; NOT NULL once the others are gone)
ALTER TABLE customer_vault.protected_columns ADD COLUMN relid regclass;
-- protect_column gained blind_index_bits
DROP FUNCTION customer_vault.protect_column(regclass, name, text, name, name);

-- Retention (issue 9): legal holds and the purge log become append-only,
-- hash-chained evidence (legal_holds and purge_log become views over
-- legal_hold_events and purge_log_entries).  The 0.1.0 tables are renamed, the new ones created
-- as a fresh install does, the rows carried over after the replay (holds keep
-- their ids), and the old tables dropped.
ALTER TABLE customer_vault.legal_holds RENAME TO legal_holds_0_1_0;
ALTER INDEX customer_vault.legal_holds_pkey RENAME TO legal_holds_0_1_0_pkey;
ALTER TABLE customer_vault.purge_log RENAME TO purge_log_0_1_0;
ALTER INDEX customer_vault.purge_log_pkey RENAME TO purge_log_0_1_0_pkey;
DROP FUNCTION customer_vault.release_legal_hold(bigint);
CREATE TABLE customer_vault.evidence_heads (
    chain     text PRIMARY KEY CHECK (chain IN ('legal_hold_events', 'purge_log_entries')),
    last_id   bigint NOT NULL,
    last_hash bytea
);
CREATE TABLE customer_vault.legal_hold_events (
    id           bigint PRIMARY KEY,
    hold_id      bigint NOT NULL,
    action       text NOT NULL CHECK (action IN ('place', 'release')),
    subject      text NOT NULL CHECK (subject <> ''),
    reason       text CHECK (reason <> ''),
    until        timestamptz,
    recorded_at  timestamptz NOT NULL,
    session_role name NOT NULL,
    acting_role  name NOT NULL,
    prev_hash    bytea,
    hash         bytea NOT NULL,
    CONSTRAINT legal_hold_events_place_check CHECK (action <> 'place' OR (hold_id = id AND reason IS NOT NULL)),
    CONSTRAINT legal_hold_events_release_check CHECK (action <> 'release' OR (hold_id < id AND until IS NULL))
);
CREATE UNIQUE INDEX legal_hold_events_release_key ON customer_vault.legal_hold_events (hold_id)
    WHERE action = 'release';
CREATE INDEX legal_hold_events_subject_idx ON customer_vault.legal_hold_events (subject);
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
SELECT pg_catalog.pg_extension_config_dump('customer_vault.evidence_heads', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.legal_hold_events', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purge_log_entries', '');

-- consent (40_consent.sql) -------------------------------------------------
-- purpose_roles keyed on role OIDs: names of roles that no longer exist are
-- dropped (they could only ever pass to a new role of the same name)
DELETE FROM customer_vault.purpose_roles r
 WHERE pg_catalog.to_regrole(pg_catalog.quote_ident(r.role_name)) IS NULL;
ALTER TABLE customer_vault.purpose_roles RENAME COLUMN role_name TO role;
-- PostgreSQL 18 records NOT NULL as a constraint named after its column, and a
-- column rename keeps the old name: give it the name a fresh install has
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_constraint
                WHERE conrelid OPERATOR(pg_catalog.=) 'customer_vault.purpose_roles'::pg_catalog.regclass
                  AND conname OPERATOR(pg_catalog.=) 'purpose_roles_role_name_not_null') THEN
        ALTER TABLE customer_vault.purpose_roles
            RENAME CONSTRAINT purpose_roles_role_name_not_null TO purpose_roles_role_not_null;
    END IF;
END
$$;
ALTER TABLE customer_vault.purpose_roles
    ALTER COLUMN role TYPE regrole USING pg_catalog.to_regrole(pg_catalog.quote_ident(role::text));
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purpose_roles',
    'WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) role)');

-- the ledger's chain head, built from the existing ledger
CREATE TABLE customer_vault.consent_ledger_head (
    last_id   bigint NOT NULL,
    last_hash bytea
);
ALTER TABLE customer_vault.consent_ledger_head REPLICA IDENTITY FULL;
INSERT INTO customer_vault.consent_ledger_head (last_id, last_hash)
SELECT COALESCE((SELECT l.id FROM customer_vault.consent_ledger l ORDER BY l.id DESC LIMIT 1), 0),
       (SELECT l.hash FROM customer_vault.consent_ledger l ORDER BY l.id DESC LIMIT 1);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.consent_ledger_head', '');

-- retention policies name their table by OID too (issue review 2): renames
-- of such tables are refused, and the DDL guard looks at the command's own
-- tables.  A policy whose table no longer exists under its names (renamed or
-- dropped under 0.1.0) cannot be resolved and would only fail every purge: dropped.
ALTER TABLE customer_vault.retention_policies ADD COLUMN relid regclass;
UPDATE customer_vault.retention_policies
   SET relid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', schema_name, table_name));
DELETE FROM customer_vault.retention_policies WHERE relid IS NULL;
ALTER TABLE customer_vault.retention_policies ALTER COLUMN relid SET NOT NULL,
    ADD CONSTRAINT retention_policies_relid_key UNIQUE (relid);


-- ==== 00_schema.sql (replayed) ====
-- The schema: usable by everybody (types, may_process), writable by nobody else.
REVOKE ALL ON SCHEMA customer_vault FROM PUBLIC;
GRANT USAGE ON SCHEMA customer_vault TO PUBLIC;

-- Roles: each employee and application gets only what the job needs.
-- Roles are cluster-wide: they survive DROP EXTENSION and are shared by databases.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['customer_vault_admin', 'customer_vault_writer',
                             'customer_vault_reader', 'customer_vault_auditor']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION customer_vault.version() RETURNS text
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_version';
COMMENT ON FUNCTION customer_vault.version() IS
    'version of the loaded customer_vault library';

-- ==== 10_types.sql (replayed) ====

CREATE OR REPLACE FUNCTION customer_vault.encrypted_text_in(cstring) RETURNS customer_vault.encrypted_text
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_text_in';
CREATE OR REPLACE FUNCTION customer_vault.encrypted_text_out(customer_vault.encrypted_text) RETURNS cstring
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_text_out';
CREATE OR REPLACE FUNCTION customer_vault.encrypted_text_recv(internal) RETURNS customer_vault.encrypted_text
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_text_recv';
CREATE OR REPLACE FUNCTION customer_vault.encrypted_text_send(customer_vault.encrypted_text) RETURNS bytea
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_text_send';
CREATE OR REPLACE FUNCTION customer_vault.encrypted_bytea_in(cstring) RETURNS customer_vault.encrypted_bytea
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_bytea_in';
CREATE OR REPLACE FUNCTION customer_vault.encrypted_bytea_out(customer_vault.encrypted_bytea) RETURNS cstring
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_bytea_out';
CREATE OR REPLACE FUNCTION customer_vault.encrypted_bytea_recv(internal) RETURNS customer_vault.encrypted_bytea
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_bytea_recv';
CREATE OR REPLACE FUNCTION customer_vault.encrypted_bytea_send(customer_vault.encrypted_bytea) RETURNS bytea
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_bytea_send';

COMMENT ON FUNCTION customer_vault.encrypted_text_in(cstring) IS 'input: accepts only a ciphertext envelope';
COMMENT ON FUNCTION customer_vault.encrypted_text_out(customer_vault.encrypted_text) IS 'output: the ciphertext envelope';
COMMENT ON FUNCTION customer_vault.encrypted_text_recv(internal) IS 'binary input: a validated envelope';
COMMENT ON FUNCTION customer_vault.encrypted_text_send(customer_vault.encrypted_text) IS 'binary output: the envelope';
COMMENT ON FUNCTION customer_vault.encrypted_bytea_in(cstring) IS 'input: accepts only a ciphertext envelope';
COMMENT ON FUNCTION customer_vault.encrypted_bytea_out(customer_vault.encrypted_bytea) IS 'output: the ciphertext envelope';
COMMENT ON FUNCTION customer_vault.encrypted_bytea_recv(internal) IS 'binary input: a validated envelope';
COMMENT ON FUNCTION customer_vault.encrypted_bytea_send(customer_vault.encrypted_bytea) IS 'binary output: the envelope';
COMMENT ON TYPE customer_vault.encrypted_text IS
    'text sealed with AES-256-GCM under a data key; no comparison operators on purpose';
COMMENT ON TYPE customer_vault.encrypted_bytea IS
    'bytea sealed with AES-256-GCM under a data key; no comparison operators on purpose';

-- ==== 20_keys.sql (replayed) ====
COMMENT ON TABLE customer_vault.data_keys IS
    'data keys, wrapped (AES-256-GCM) under the root key; readable by the extension owner only';

CREATE OR REPLACE FUNCTION customer_vault._keys_invalidate() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'cv_keys_invalidate';
COMMENT ON FUNCTION customer_vault._keys_invalidate() IS
    'trigger: makes every session flush its cache of unwrapped keys';
CREATE OR REPLACE TRIGGER data_keys_invalidate
    AFTER UPDATE OR DELETE OR TRUNCATE ON customer_vault.data_keys
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._keys_invalidate();

CREATE OR REPLACE VIEW customer_vault.keys AS
    SELECT k.id, k.name, k.version, k.state, k.created_at,
           pg_catalog.encode(k.fingerprint, 'hex') AS fingerprint,
           CASE WHEN k.name IS NULL THEN 'subject' ELSE 'named' END AS kind,
           k.destroyed_at, k.comment, k.pad_to
      FROM customer_vault.data_keys k;
COMMENT ON VIEW customer_vault.keys IS
    'data keys without key material: id, name, version, state, created_at, fingerprint, length padding block';

-- Not STRICT: a NULL comment means none; a NULL name or pad_to is an error.
CREATE OR REPLACE FUNCTION customer_vault.create_key(name text, comment text DEFAULT NULL,
                                                     pad_to integer DEFAULT 0) RETURNS integer
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_create_key';
COMMENT ON FUNCTION customer_vault.create_key(text, text, integer) IS
    'creates a random data key (version 1) wrapped under the root key; pad_to > 0 pads every value it seals to a multiple of pad_to bytes (hides short lengths); returns its id';

CREATE OR REPLACE FUNCTION customer_vault.set_key_padding(name text, pad_to integer) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF set_key_padding.pad_to < 0 OR set_key_padding.pad_to > 4096 THEN
        RAISE EXCEPTION 'padding block % is out of range', set_key_padding.pad_to
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The padding block is 0 (no padding) or 1 to 4096 bytes.';
    END IF;
    UPDATE customer_vault.data_keys k SET pad_to = set_key_padding.pad_to
     WHERE k.name OPERATOR(pg_catalog.=) set_key_padding.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'key "%" does not exist', set_key_padding.name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create it with customer_vault.create_key().';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault.set_key_padding(text, integer) IS
    'sets the length padding block of every version of a key (0 = none) for values sealed from now on; existing values keep their length until re-sealed';

-- Not STRICT: a NULL name is an error (as for create_key), not a NULL result.
CREATE OR REPLACE FUNCTION customer_vault.rotate_key(name text) RETURNS integer
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_rotate_key';
COMMENT ON FUNCTION customer_vault.rotate_key(text) IS
    'adds a new active version of a key; older versions stay decrypt-only; returns the new version';

CREATE OR REPLACE FUNCTION customer_vault.rewrap_keys() RETURNS integer
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_rewrap_keys';
COMMENT ON FUNCTION customer_vault.rewrap_keys() IS
    're-wraps every data key under the current root key (the old one from previous_root_key_file); returns the count';

CREATE OR REPLACE FUNCTION customer_vault.root_key_fingerprint() RETURNS text
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_root_key_fingerprint';
COMMENT ON FUNCTION customer_vault.root_key_fingerprint() IS
    'fingerprint (not the key) of the configured root key';

---------------------------------------------------------------------------
-- Sealing and opening
---------------------------------------------------------------------------

-- Not STRICT: a NULL context means "no context", it must not turn the result NULL.
CREATE OR REPLACE FUNCTION customer_vault.encrypt(plaintext text, key_name text, context text DEFAULT NULL)
    RETURNS customer_vault.encrypted_text
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_encrypt_text';
COMMENT ON FUNCTION customer_vault.encrypt(text, text, text) IS
    'seals text with AES-256-GCM under the active version of a key, bound to an optional context';

CREATE OR REPLACE FUNCTION customer_vault.encrypt(plaintext bytea, key_name text, context text DEFAULT NULL)
    RETURNS customer_vault.encrypted_bytea
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_encrypt_bytea';
COMMENT ON FUNCTION customer_vault.encrypt(bytea, text, text) IS
    'seals bytea with AES-256-GCM under the active version of a key, bound to an optional context';

CREATE OR REPLACE FUNCTION customer_vault.decrypt(value customer_vault.encrypted_text, context text DEFAULT NULL)
    RETURNS text
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_decrypt_text';
COMMENT ON FUNCTION customer_vault.decrypt(customer_vault.encrypted_text, text) IS
    'opens a value; an altered value or a wrong context is an error, a shredded key gives NULL';

CREATE OR REPLACE FUNCTION customer_vault.decrypt(value customer_vault.encrypted_bytea, context text DEFAULT NULL)
    RETURNS bytea
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_decrypt_bytea';
COMMENT ON FUNCTION customer_vault.decrypt(customer_vault.encrypted_bytea, text) IS
    'opens a value; an altered value or a wrong context is an error, a shredded key gives NULL';

CREATE OR REPLACE FUNCTION customer_vault.key_of(value customer_vault.encrypted_text) RETURNS text
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_key_of';
COMMENT ON FUNCTION customer_vault.key_of(customer_vault.encrypted_text) IS
    '''name:version'' of the data key that sealed the value (''subject:<id>'' for a subject key)';

CREATE OR REPLACE FUNCTION customer_vault.key_of(value customer_vault.encrypted_bytea) RETURNS text
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_key_of';
COMMENT ON FUNCTION customer_vault.key_of(customer_vault.encrypted_bytea) IS
    '''name:version'' of the data key that sealed the value (''subject:<id>'' for a subject key)';

CREATE OR REPLACE FUNCTION customer_vault.blind_index(plaintext text, key_name text) RETURNS bytea
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_blind_index';
COMMENT ON FUNCTION customer_vault.blind_index(text, text) IS
    'HMAC-SHA-256 of the plaintext under a subkey (HKDF) of the key''s first version: deterministic, for equality search';

CREATE OR REPLACE FUNCTION customer_vault.blind_index(plaintext text, key_name text, bits integer) RETURNS bytea
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_blind_index_bits';
COMMENT ON FUNCTION customer_vault.blind_index(text, text, integer) IS
    'blind_index(plaintext, key_name) truncated to its first bits (1-256): each value stands for many plaintexts';

CREATE OR REPLACE FUNCTION customer_vault.is_sealed(value text) RETURNS boolean
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_is_sealed';
COMMENT ON FUNCTION customer_vault.is_sealed(text) IS
    'whether a text holds a well-formed ciphertext envelope (the CHECK of protected columns)';

---------------------------------------------------------------------------
-- Per-subject keys (crypto-shredding)
---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION customer_vault.encrypt_for_subject(subject text, plaintext text, context text DEFAULT NULL)
    RETURNS customer_vault.encrypted_text
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_encrypt_for_subject';
COMMENT ON FUNCTION customer_vault.encrypt_for_subject(text, text, text) IS
    'seals text under the subject''s own random key, created on first use';

CREATE OR REPLACE FUNCTION customer_vault.shred_subject(subject text) RETURNS boolean
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_shred_subject';
COMMENT ON FUNCTION customer_vault.shred_subject(text) IS
    'destroys the subject''s key: every value under it reads as NULL; true if a key existed';

-- Privileges of this concern (PUBLIC's few are all in 90_privileges.sql).
GRANT EXECUTE ON FUNCTION
    customer_vault.version(),
    customer_vault.create_key(text, text, integer), customer_vault.set_key_padding(text, integer),
    customer_vault.rotate_key(text), customer_vault.rewrap_keys(),
    customer_vault.root_key_fingerprint(),
    customer_vault.shred_subject(text),
    customer_vault.key_of(customer_vault.encrypted_text), customer_vault.key_of(customer_vault.encrypted_bytea)
    TO customer_vault_admin;
GRANT SELECT ON customer_vault.keys TO customer_vault_admin, customer_vault_auditor;
-- the writer stores data and never reads it back
GRANT EXECUTE ON FUNCTION
    customer_vault.encrypt(text, text, text), customer_vault.encrypt(bytea, text, text),
    customer_vault.encrypt_for_subject(text, text, text)
    TO customer_vault_writer;
-- the reader decrypts
GRANT EXECUTE ON FUNCTION
    customer_vault.decrypt(customer_vault.encrypted_text, text),
    customer_vault.decrypt(customer_vault.encrypted_bytea, text),
    customer_vault.key_of(customer_vault.encrypted_text), customer_vault.key_of(customer_vault.encrypted_bytea),
    customer_vault.blind_index(text, text), customer_vault.blind_index(text, text, integer)
    TO customer_vault_reader;
GRANT EXECUTE ON FUNCTION customer_vault.version(),
    customer_vault.key_of(customer_vault.encrypted_text), customer_vault.key_of(customer_vault.encrypted_bytea)
    TO customer_vault_auditor;

-- ==== 30_columns.sql (replayed) ====
COMMENT ON TABLE customer_vault.protected_columns IS
    'columns converted by protect_column(), with the binding their values are sealed to; relid is the table (its names cannot change while it is protected)';

-- Forget the protection of tables and columns that are dropped, so a new table
-- of the same name can be protected.  SECURITY DEFINER because whoever may drop
-- a table must be able to remove its rows here; the search_path is pinned.
CREATE OR REPLACE FUNCTION customer_vault._forget_dropped() RETURNS event_trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
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
END
$$;
COMMENT ON FUNCTION customer_vault._forget_dropped() IS
    'internal: event trigger removing protected_columns rows of dropped tables and columns';

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

-- Every trigger calling _protect_trigger (but the clones a trigger on a
-- partitioned table has on its partitions), its arguments, and whether it is
-- what protect_column makes: on an ordinary or partitioned table, named
-- cv_protect_<attnum> of a text column, with the binding of that column
-- under the table's current name (a trigger with any other binding computes
-- another column's blind index for whatever is written to it).
CREATE OR REPLACE FUNCTION customer_vault._protect_triggers()
    RETURNS TABLE (trigger_oid oid, relid oid, trigger_name name, column_name text, key_name text,
                   binding text, context_column text, blind_index_column text, blind_index_bits text,
                   checks_out boolean)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.oid, t.tgrelid, t.tgname, g.a[1], g.a[2], g.a[3], NULLIF(g.a[4], ''), NULLIF(g.a[5], ''), g.a[6],
           COALESCE(c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::"char"[])
                    AND t.tgnargs OPERATOR(pg_catalog.>=) 5
                    AND att.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.text'::pg_catalog.regtype
                    AND t.tgname::pg_catalog.text OPERATOR(pg_catalog.=) ('cv_protect_' OPERATOR(pg_catalog.||) att.attnum)
                    AND g.a[3] OPERATOR(pg_catalog.=) customer_vault._binding_of(c.oid, g.a[1]::name), false)
      FROM pg_catalog.pg_trigger t
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
     CROSS JOIN LATERAL (SELECT customer_vault._trigger_args(t.tgargs) AS a) g
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
    relid oid;
    onsp oid;
    oname name;
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
        IF customer_vault._view_refresh_active() THEN
            CONTINUE;
        END IF;
        -- the schema and name of the object (of the relation of a rule or trigger)
        relid := CASE r.classid
                   WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN r.objid
                   WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
                     (SELECT w.ev_class FROM pg_catalog.pg_rewrite w WHERE w.oid OPERATOR(pg_catalog.=) r.objid)
                   WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN
                     (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid OPERATOR(pg_catalog.=) r.objid)
                 END;
        IF relid IS NOT NULL THEN
            SELECT c.relnamespace, c.relname INTO onsp, oname FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) relid;
        ELSIF r.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass THEN
            SELECT t.typnamespace, t.typname INTO onsp, oname FROM pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) r.objid;
        ELSE
            CONTINUE;
        END IF;
        IF EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                     JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
                    WHERE c.relnamespace OPERATOR(pg_catalog.=) onsp
                      AND (c.relname::pg_catalog.text OPERATOR(pg_catalog.||) '_decrypted') OPERATOR(pg_catalog.=) oname::pg_catalog.text) THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = pg_catalog.format('%I.%I is the decrypted view of a protected table and is managed by customer_vault',
                                            (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid OPERATOR(pg_catalog.=) onsp), oname),
                HINT = 'customer_vault.protect_column() defines it; nobody else may redefine, alter or re-own it, or give its name to another object.';
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._guard_decrypted_views() IS
    'internal: event trigger refusing renames of protected tables and columns, and DDL on decrypted views (or their names) other than the extension''s own';

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
    colnum smallint;
    bind text;
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
    SELECT a.attnum INTO colnum FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) col;
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF %s ON %I.%I FOR EACH ROW'
        ' EXECUTE FUNCTION customer_vault._protect_trigger(%L, %L, %L, %L, %L, %L)',
        'cv_protect_' OPERATOR(pg_catalog.||) colnum,
        pg_catalog.concat_ws(', ', pg_catalog.quote_ident(col), pg_catalog.quote_ident(p.context_column),
                             pg_catalog.quote_ident(p.blind_index_column)),
        p.schema_name, p.table_name, col, p.key_name, bind, COALESCE(p.context_column, ''),
        COALESCE(p.blind_index_column, ''), COALESCE(p.blind_index_bits, 256));
    IF p.blind_index_column IS NOT NULL THEN
        EXECUTE pg_catalog.format('CREATE INDEX ON %s (%I)', tbl, p.blind_index_column);
        -- no planner statistics: their most common values and estimates would
        -- tell how many rows (RLS-hidden ones too) share a guessed value
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 0',
                                  tbl, p.blind_index_column);
    END IF;
    PERFORM customer_vault._build_decrypted_view(tbl, caller);
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
    PERFORM customer_vault._check_key(key_name);
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

    -- one table rewrite: ciphertext replaces plaintext in new files, the old
    -- files (plaintext) are removed at commit, no dead tuples are left behind;
    -- changing the blind index column's type also drops its old statistics.
    -- It runs as the table's owner, security-restricted (_maint_run), so the
    -- owner's CHECK constraints and index expressions evaluated by it run
    -- with the owner's rights, not the caller's.
    PERFORM customer_vault._maint_run('protect', tbl,
        ARRAY[col::text, key_name, bind, context_column::text, blind_index_column::text, colnum::text]);

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
GRANT EXECUTE ON FUNCTION customer_vault.lookup(regclass, name, text) TO customer_vault_writer;
-- the reader decrypts, through the decrypted view too
GRANT EXECUTE ON FUNCTION
    customer_vault._open_column(text, text),
    customer_vault.column_blind_index(regclass, name, text),
    customer_vault.lookup(regclass, name, text)
    TO customer_vault_reader;

-- ==== 40_consent.sql (replayed) ====
COMMENT ON TABLE customer_vault.purposes IS 'processing purposes and their GDPR lawful basis';
COMMENT ON TABLE customer_vault.purpose_roles IS 'the purposes each role (by OID) may act under';
COMMENT ON TABLE customer_vault.consent_state IS 'current consent per subject and purpose (see consent_ledger for the evidence)';
COMMENT ON TABLE customer_vault.consent_ledger IS
    'append-only, hash-chained record of every grant and withdrawal of consent';
COMMENT ON TABLE customer_vault.consent_ledger_head IS
    'the consent ledger''s chain head (last id and hash); its row lock serializes appends';

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
-- The logical replication apply worker fires row triggers only (and runs as
-- session_replication_role = replica): these tell the subscriber's sessions
-- about replicated changes.  Ordinary sessions skip them (the statement
-- triggers above serve them at no per-row cost).
CREATE OR REPLACE TRIGGER consent_state_changed_row BEFORE INSERT OR UPDATE OR DELETE ON customer_vault.consent_state
    FOR EACH ROW EXECUTE FUNCTION customer_vault._consent_changed();
CREATE OR REPLACE TRIGGER purposes_changed_row BEFORE INSERT OR UPDATE OR DELETE ON customer_vault.purposes
    FOR EACH ROW EXECUTE FUNCTION customer_vault._consent_changed();
CREATE OR REPLACE TRIGGER purpose_roles_changed_row BEFORE INSERT OR UPDATE OR DELETE ON customer_vault.purpose_roles
    FOR EACH ROW EXECUTE FUNCTION customer_vault._consent_changed();
ALTER TABLE customer_vault.consent_state ENABLE REPLICA TRIGGER consent_state_changed_row;
ALTER TABLE customer_vault.purposes ENABLE REPLICA TRIGGER purposes_changed_row;
ALTER TABLE customer_vault.purpose_roles ENABLE REPLICA TRIGGER purpose_roles_changed_row;

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
AS $$
BEGIN
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
AS $$
BEGIN
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
                                              valid_until timestamptz)
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
BEGIN
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
    new_hash := customer_vault._ledger_hash(last_hash, new_id, subject, purpose, action,
                                            evidence, valid_until, ts, who);
    INSERT INTO customer_vault.consent_ledger
        (id, subject, purpose, action, evidence, valid_until, recorded_at, recorded_by, prev_hash, hash)
    VALUES (new_id, subject, purpose, action, evidence, valid_until, ts, who, last_hash, new_hash);
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

-- the first broken entry: a hash or link that does not match, a gap in the
-- ids, or a chain head that does not point at the last entry (entries cut
-- off the end, or added past the head)
CREATE OR REPLACE FUNCTION customer_vault.verify_ledger() RETURNS bigint
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT min(broken) FROM (
        (SELECT id AS broken FROM (
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
         LIMIT 1)
        UNION ALL
        (SELECT CASE WHEN t.id = COALESCE(h.last_id, 0) THEN t.id
                     ELSE LEAST(t.id, COALESCE(h.last_id, 0)) + 1 END
           FROM (SELECT COALESCE(max(l.id), 0) AS id FROM customer_vault.consent_ledger l) t
           LEFT JOIN (SELECT hh.last_id, hh.last_hash FROM customer_vault.consent_ledger_head hh
                       ORDER BY hh.last_id DESC LIMIT 1) h ON true
          WHERE t.id IS DISTINCT FROM COALESCE(h.last_id, 0)
             OR h.last_hash IS DISTINCT FROM (SELECT l.hash FROM customer_vault.consent_ledger l WHERE l.id = t.id))
    ) b
$$;
COMMENT ON FUNCTION customer_vault.verify_ledger() IS
    'NULL when the consent ledger''s hash chain is intact, else the id of the first broken entry';

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
-- the event triggers may have done part of it already).
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
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
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
        SELECT pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS expr, c.relforcerowsecurity AS force
          INTO src
          FROM a
          JOIN pg_catalog.pg_policy p ON p.polrelid = a.rel AND p.polname = 'customer_vault_consent'
          JOIN pg_catalog.pg_class c ON c.oid = a.rel
         ORDER BY a.depth
         LIMIT 1;
        IF FOUND THEN
            PERFORM customer_vault._apply_consent_policy(t, src.expr, src.force, false);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._inherit_consent_policy(regclass) IS
    'internal: copies the consent policy of the nearest ancestor to a new partition or child and its descendants';

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
    customer_vault.current_consents
    TO customer_vault_admin, customer_vault_auditor;

-- ==== 50_retention.sql (replayed) ====
COMMENT ON TABLE customer_vault.retention_policies IS
    'how long rows of each table are kept, and what happens to them then; relid is the table (its names cannot change while it has a policy)';
COMMENT ON TABLE customer_vault.evidence_heads IS
    'internal: the last id and hash of each append-only evidence chain (legal_hold_events, purge_log_entries)';
COMMENT ON TABLE customer_vault.legal_hold_events IS
    'append-only, hash-chained record of every legal hold placed and released (who, when, why)';
COMMENT ON TABLE customer_vault.purge_log_entries IS
    'append-only, hash-chained: per table and purge run a start entry and the entry that ends it (done, failed or interrupted)';

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

-- the chained hash of a legal hold entry (over every column but hash)
CREATE OR REPLACE FUNCTION customer_vault._evidence_hash(e customer_vault.legal_hold_events) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.sha256(COALESCE(e.prev_hash, '\x'::bytea) OPERATOR(pg_catalog.||) pg_catalog.convert_to(
        pg_catalog.jsonb_build_array('legal_hold_events', e.id, e.hold_id, e.action, e.subject, e.reason,
            (EXTRACT(epoch FROM e.until) OPERATOR(pg_catalog.*) 1000000)::bigint,
            (EXTRACT(epoch FROM e.recorded_at) OPERATOR(pg_catalog.*) 1000000)::bigint,
            e.session_role, e.acting_role)::text, 'UTF8'))
$$;
COMMENT ON FUNCTION customer_vault._evidence_hash(customer_vault.legal_hold_events) IS
    'internal: the chained hash of one legal_hold_events entry';

-- the chained hash of a purge log entry (over every column but hash)
CREATE OR REPLACE FUNCTION customer_vault._evidence_hash(e customer_vault.purge_log_entries) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.sha256(COALESCE(e.prev_hash, '\x'::bytea) OPERATOR(pg_catalog.||) pg_catalog.convert_to(
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

-- one legal hold entry, chained; returns its id
CREATE OR REPLACE FUNCTION customer_vault._legal_hold_append(action text, hold_id bigint, subject text, reason text,
                                                  until timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e customer_vault.legal_hold_events;
BEGIN
    SELECT n.next_id, n.prev_hash INTO e.id, e.prev_hash FROM customer_vault._evidence_next('legal_hold_events') n;
    e.hold_id := COALESCE(hold_id, e.id);
    e.action := action;
    e.subject := subject;
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
COMMENT ON FUNCTION customer_vault._legal_hold_append(text, bigint, text, text, timestamptz) IS
    'internal: appends one hash-chained entry to legal_hold_events';

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
    IF last_id IS NULL OR last_id < h.last_id THEN
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

-- every hold, placed and (maybe) released, one row each
CREATE OR REPLACE VIEW customer_vault.legal_holds AS
    SELECT p.id, p.subject, p.reason, p.recorded_at AS placed_at, p.session_role AS placed_by,
           p.acting_role AS placed_as, p.until,
           r.recorded_at AS released_at, r.session_role AS released_by, r.acting_role AS released_as,
           r.reason AS release_reason,
           (r.id IS NULL AND (p.until IS NULL OR p.until > pg_catalog.now())) AS active
      FROM customer_vault.legal_hold_events p
      LEFT JOIN customer_vault.legal_hold_events r ON r.hold_id = p.id AND r.action = 'release'
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
    PERFORM customer_vault._legal_hold_append('release', p.id, p.subject, reason, NULL);
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
    RETURN t;
END
$$;
COMMENT ON FUNCTION customer_vault._subject_type(customer_vault.retention_policies) IS
    'internal: the type of a retention policy''s subject column, NULL without one';

-- the limit of one policy (UTC wall clock) and its expired predicate (alias t)
CREATE OR REPLACE FUNCTION customer_vault._retention_expired(r customer_vault.retention_policies, as_of timestamptz,
                                                  OUT cutoff timestamp, OUT expired text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
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

-- Privileges of this concern.
-- retention: the admin sets policies and holds and runs (or schedules) the
-- purge, but changes holds and the purge log only through the functions (no
-- INSERT, UPDATE or DELETE on them); the auditor reads and verifies; nobody
-- but the extension touches evidence_heads
GRANT EXECUTE ON FUNCTION
    customer_vault.set_retention(regclass, name, interval, text, name),
    customer_vault.drop_retention(regclass),
    customer_vault._subject_type_ok(regtype), customer_vault._check_subject_type(regtype, text),
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

-- ==== 60_maint.sql (replayed) ====

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
--   kind 'purge'          params {as_of}: rows past retention, not held (delete or anonymize)
--   kind 'purge_counts'   params {as_of}: expired, held, to_purge
--   kind 'purge_shred'    params {as_of}: shreds the subjects a shred takes (as
--                         the caller, after the query); only their number comes back
-- op: delete | update | select | alter; list: SET list, select list or ALTER
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
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = format('unknown maintenance kind %L', kind);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._maint_sql(text, regclass, text[]) IS
    'internal: the pieces of one kind of maintenance statement (reencrypt, protect, purge, purge_counts, purge_shred)';

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

-- ==== 90_privileges.sql (replayed) ====

---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC but the type I/O, is_sealed, may_process and
-- the maintenance helpers below; every PUBLIC grant is in this file, after the
-- REVOKEs.  Grants to the extension's roles stand next to their objects, at
-- the end of each concern's file.
---------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA customer_vault FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA customer_vault FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA customer_vault FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA customer_vault FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    customer_vault.encrypted_text_in(cstring), customer_vault.encrypted_text_out(customer_vault.encrypted_text),
    customer_vault.encrypted_text_recv(internal), customer_vault.encrypted_text_send(customer_vault.encrypted_text),
    customer_vault.encrypted_bytea_in(cstring), customer_vault.encrypted_bytea_out(customer_vault.encrypted_bytea),
    customer_vault.encrypted_bytea_recv(internal), customer_vault.encrypted_bytea_send(customer_vault.encrypted_bytea),
    customer_vault.is_sealed(text)
    TO PUBLIC;

-- maintenance statements run as the table's owner call these: every owner
-- must be able to execute them; they work only inside such a statement
-- (src/maint.c), sealing only under the key being protected, blind indexes
-- only for the table being rewritten
GRANT EXECUTE ON FUNCTION
    customer_vault._m_reseal(text, text, boolean),
    customer_vault._m_reseal(customer_vault.encrypted_text, text),
    customer_vault._m_reseal(customer_vault.encrypted_bytea, text),
    customer_vault._m_needs_reseal(text, boolean),
    customer_vault._m_needs_reseal(customer_vault.encrypted_text, boolean),
    customer_vault._m_needs_reseal(customer_vault.encrypted_bytea, boolean),
    customer_vault._m_seal_column(text, text, text),
    customer_vault._m_blind_index_rewrite(regclass, name, text),
    customer_vault._m_subject_has_key(text)
    TO PUBLIC;
-- ... and the row context builder, a pure function of its arguments (it
-- reveals nothing: the binding and the context value are the caller's own)
GRANT EXECUTE ON FUNCTION customer_vault._row_context(text, anyelement) TO PUBLIC;

-- consent: may_process is what a policy evaluates; it answers only for
-- purposes the calling role is allowed, so it reveals nothing to others
GRANT EXECUTE ON FUNCTION customer_vault.may_process(text, text), customer_vault.may_process(bigint, text) TO PUBLIC;


-- Under 0.1.0 the admin could write protected_columns, define views and
-- create triggers calling _protect_trigger with any arguments.  Nothing it
-- left is trusted:
--  * a registry row stands only if it checks out: its table exists (an
--    ordinary or partitioned table), the column is text, and a trigger
--    cv_protect_<attnum> on it calls _protect_trigger with exactly the row's
--    key, binding, context and blind index columns, the binding being the
--    column's qualified name as the table is named now; it then gets the
--    table's OID; every other row is deleted;
--  * a trigger of 0.1.0's form that checks out but whose row does not (the
--    row was edited) gives the row back (from its own arguments);
--  * every trigger calling _protect_trigger without such a row is dropped
--    (a trigger with a victim's binding on a table of the admin computes the
--    victim's blind index for whatever is written to it);
--  * every view named <table>_decrypted of a registry row is dropped (never
--    re-owned: its definition, ACL, rules and triggers are the admin's) and
--    the views of the rows that stand are made again by the extension's
--    owner.  A view of the user's that depends on one makes the update fail
--    ("cannot drop view ... because other objects depend on it"): drop it
--    first, make it again after the update.
DO $$
DECLARE
    r record;
BEGIN
    UPDATE customer_vault.protected_columns p
       SET relid = t.relid
      FROM customer_vault._protect_triggers() t
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE t.checks_out
       AND n.nspname OPERATOR(pg_catalog.=) p.schema_name AND c.relname OPERATOR(pg_catalog.=) p.table_name
       AND t.column_name OPERATOR(pg_catalog.=) p.column_name::pg_catalog.text
       AND t.key_name OPERATOR(pg_catalog.=) p.key_name
       AND t.binding OPERATOR(pg_catalog.=) p.binding
       AND t.context_column IS NOT DISTINCT FROM p.context_column::pg_catalog.text
       AND t.blind_index_column IS NOT DISTINCT FROM p.blind_index_column::pg_catalog.text
       AND t.blind_index_bits IS NULL AND p.blind_index_bits IS NULL;
    FOR r IN SELECT DISTINCT c.oid::pg_catalog.regclass AS v
               FROM customer_vault.protected_columns p
               JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) p.schema_name
               JOIN pg_catalog.pg_class c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid
                AND c.relname::pg_catalog.text OPERATOR(pg_catalog.=) (p.table_name::pg_catalog.text OPERATOR(pg_catalog.||) '_decrypted')
                AND c.relkind OPERATOR(pg_catalog.=) 'v'
    LOOP
        EXECUTE pg_catalog.format('DROP VIEW %s', r.v);
    END LOOP;
    FOR r IN SELECT p.schema_name, p.table_name, p.column_name
               FROM customer_vault.protected_columns p WHERE p.relid IS NULL
    LOOP
        RAISE WARNING 'customer_vault: registry row of column %.%.% removed: it does not match a protected column',
            pg_catalog.quote_ident(r.schema_name), pg_catalog.quote_ident(r.table_name), pg_catalog.quote_ident(r.column_name);
    END LOOP;
    DELETE FROM customer_vault.protected_columns p WHERE p.relid IS NULL;
    -- a trigger of 0.1.0's form that checks out on its own table but has no
    -- row (its row was edited, hence deleted above) gets its row back from
    -- the trigger's arguments, which only the table's owner could set
    FOR r IN SELECT t.*, n.nspname, c.relname
               FROM customer_vault._protect_triggers() t
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
              WHERE t.checks_out AND t.blind_index_bits IS NULL
                AND NOT EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                                 WHERE (p.schema_name OPERATOR(pg_catalog.=) n.nspname
                                        AND p.table_name OPERATOR(pg_catalog.=) c.relname
                                        AND p.column_name::pg_catalog.text OPERATOR(pg_catalog.=) t.column_name)
                                    OR (p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) t.relid
                                        AND p.column_name::pg_catalog.text OPERATOR(pg_catalog.=) t.column_name))
    LOOP
        RAISE WARNING 'customer_vault: registry row of column %.%.% restored from its protect trigger',
            pg_catalog.quote_ident(r.nspname), pg_catalog.quote_ident(r.relname), pg_catalog.quote_ident(r.column_name);
        INSERT INTO customer_vault.protected_columns
            (schema_name, table_name, column_name, key_name, binding, context_column, blind_index_column, relid)
        VALUES (r.nspname, r.relname, r.column_name, r.key_name, r.binding, r.context_column, r.blind_index_column,
                r.relid);
    END LOOP;
    FOR r IN SELECT t.trigger_name, t.relid::pg_catalog.regclass AS tbl
               FROM customer_vault._protect_triggers() t
              WHERE NOT EXISTS (
                    SELECT 1 FROM customer_vault.protected_columns p
                     WHERE t.checks_out
                       AND p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) t.relid
                       AND p.column_name::pg_catalog.text OPERATOR(pg_catalog.=) t.column_name
                       AND p.key_name OPERATOR(pg_catalog.=) t.key_name
                       AND p.binding OPERATOR(pg_catalog.=) t.binding
                       AND p.context_column::pg_catalog.text IS NOT DISTINCT FROM t.context_column
                       AND p.blind_index_column::pg_catalog.text IS NOT DISTINCT FROM t.blind_index_column)
    LOOP
        RAISE WARNING 'customer_vault: trigger % on % dropped: it calls customer_vault._protect_trigger for no protected column of that table',
            pg_catalog.quote_ident(r.trigger_name), r.tbl;
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', r.trigger_name, r.tbl);
    END LOOP;
    FOR r IN SELECT DISTINCT p.relid, c.relowner, n.nspname, c.relname
               FROM customer_vault.protected_columns p
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    LOOP
        PERFORM customer_vault._build_decrypted_view(r.relid, r.relowner);
        -- made inside the update script: not a member of the extension
        EXECUTE pg_catalog.format('ALTER EXTENSION customer_vault DROP VIEW %I.%I',
                                  r.nspname, r.relname::pg_catalog.text OPERATOR(pg_catalog.||) '_decrypted');
    END LOOP;
END
$$;
ALTER TABLE customer_vault.protected_columns ALTER COLUMN relid SET NOT NULL;
CREATE EVENT TRIGGER customer_vault_guard_decrypted_views ON ddl_command_end
    EXECUTE FUNCTION customer_vault._guard_decrypted_views();

-- Retention: the 0.1.0 holds and purge log rows, chained in their order.
DO $$
DECLARE
    o record;
    e customer_vault.legal_hold_events;
    l customer_vault.purge_log_entries;
    prev bytea;
    next_id bigint;
BEGIN
    -- holds keep their ids; releases follow, in the order they happened
    FOR o IN SELECT * FROM customer_vault.legal_holds_0_1_0 ORDER BY id LOOP
        e := ROW(o.id, o.id, 'place', o.subject, o.reason, o.until, o.placed_at, o.placed_by, o.placed_by,
                 prev, NULL);
        e.hash := customer_vault._evidence_hash(e);
        INSERT INTO customer_vault.legal_hold_events SELECT e.*;
        prev := e.hash;
        next_id := o.id;
    END LOOP;
    FOR o IN SELECT * FROM customer_vault.legal_holds_0_1_0 WHERE released_at IS NOT NULL ORDER BY released_at, id LOOP
        next_id := next_id + 1;
        e := ROW(next_id, o.id, 'release', o.subject, NULL, NULL, o.released_at, COALESCE(o.released_by, o.placed_by),
                 COALESCE(o.released_by, o.placed_by), prev, NULL);
        e.hash := customer_vault._evidence_hash(e);
        INSERT INTO customer_vault.legal_hold_events SELECT e.*;
        prev := e.hash;
    END LOOP;
    IF next_id IS NOT NULL THEN
        INSERT INTO customer_vault.evidence_heads VALUES ('legal_hold_events', next_id, prev);
    END IF;
    -- each 0.1.0 purge log row: a start entry, and a done entry when it
    -- finished, else an interrupted one
    prev := NULL;
    next_id := 0;
    FOR o IN SELECT * FROM customer_vault.purge_log_0_1_0 ORDER BY id LOOP
        next_id := next_id + 1;
        l := ROW(next_id, 'start', NULL, o.run_started, o.tbl, o.action, o.cutoff, o.dry_run, 0, 0, 0, NULL, NULL,
                 NULL, o.started_at, o.role, o.role, prev, NULL);
        l.hash := customer_vault._evidence_hash(l);
        INSERT INTO customer_vault.purge_log_entries SELECT l.*;
        prev := l.hash;
        next_id := next_id + 1;
        l := ROW(next_id, CASE WHEN o.finished_at IS NULL THEN 'interrupted' ELSE 'done' END, next_id - 1,
                 o.run_started, o.tbl, o.action, o.cutoff, o.dry_run, o.rows_purged, o.rows_held, o.batches, NULL, NULL,
                 NULL, COALESCE(o.finished_at, o.started_at), o.role, o.role, prev, NULL);
        l.hash := customer_vault._evidence_hash(l);
        INSERT INTO customer_vault.purge_log_entries SELECT l.*;
        prev := l.hash;
    END LOOP;
    IF next_id > 0 THEN
        INSERT INTO customer_vault.evidence_heads VALUES ('purge_log_entries', next_id, prev);
    END IF;
END
$$;
-- out of the extension first: that also takes them out of its pg_dump configuration
ALTER EXTENSION customer_vault DROP TABLE customer_vault.legal_holds_0_1_0;
ALTER EXTENSION customer_vault DROP SEQUENCE customer_vault.legal_holds_id_seq;
ALTER EXTENSION customer_vault DROP TABLE customer_vault.purge_log_0_1_0;
ALTER EXTENSION customer_vault DROP SEQUENCE customer_vault.purge_log_id_seq;
DROP TABLE customer_vault.legal_holds_0_1_0, customer_vault.purge_log_0_1_0;

-- consent (40_consent.sql): event triggers need their functions (replayed above)
CREATE EVENT TRIGGER customer_vault_consent_policy_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE POLICY', 'ALTER POLICY')
    EXECUTE FUNCTION customer_vault._consent_policy_ddl();
CREATE EVENT TRIGGER customer_vault_consent_policy_dropped ON sql_drop
    WHEN TAG IN ('DROP POLICY')
    EXECUTE FUNCTION customer_vault._consent_policy_dropped();
