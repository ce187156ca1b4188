--@ schema

---------------------------------------------------------------------------
-- Key ring: data keys, stored only wrapped under the root key
---------------------------------------------------------------------------

CREATE SEQUENCE customer_vault.data_keys_id_seq AS integer;

CREATE TABLE customer_vault.data_keys (
    id               integer NOT NULL
                     DEFAULT pg_catalog.nextval('customer_vault.data_keys_id_seq'::pg_catalog.regclass),
    name             text COLLATE "C",
    version          integer NOT NULL,
    subject          text COLLATE "C",
    state            text NOT NULL DEFAULT 'active',
    wrapped          bytea,
    root_fingerprint bytea,
    fingerprint      bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    destroyed_at     timestamptz,
    comment          text,
    pad_to           integer NOT NULL DEFAULT 0,
    CONSTRAINT data_keys_pkey PRIMARY KEY (id),
    CONSTRAINT data_keys_name_version_key UNIQUE (name, version),
    CONSTRAINT data_keys_state_check CHECK (state IN ('active', 'decrypt_only', 'destroyed')),
    CONSTRAINT data_keys_kind_check CHECK (name IS NULL OR subject IS NULL),
    CONSTRAINT data_keys_wrapped_check CHECK ((state = 'destroyed') = (wrapped IS NULL)),
    CONSTRAINT data_keys_pad_to_check CHECK (pad_to >= 0 AND pad_to <= 4096)
);
ALTER SEQUENCE customer_vault.data_keys_id_seq OWNED BY customer_vault.data_keys.id;
CREATE UNIQUE INDEX data_keys_subject_live_key ON customer_vault.data_keys (subject)
    WHERE state <> 'destroyed';
CREATE UNIQUE INDEX data_keys_name_active_key ON customer_vault.data_keys (name)
    WHERE state = 'active';
--@ code
COMMENT ON TABLE customer_vault.data_keys IS
    'data keys, wrapped (AES-256-GCM) under the root key; readable by the extension owner only';
--@ schema

-- pg_dump carries the wrapped keys, so a restore with the same root key decrypts.
SELECT pg_catalog.pg_extension_config_dump('customer_vault.data_keys', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.data_keys_id_seq', '');
--@ code

CREATE OR REPLACE FUNCTION customer_vault._keys_invalidate() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'cv_keys_invalidate';
COMMENT ON FUNCTION customer_vault._keys_invalidate() IS
    'trigger: makes every session flush its cache of unwrapped keys';
CREATE OR REPLACE TRIGGER data_keys_invalidate
    AFTER UPDATE OR DELETE OR TRUNCATE ON customer_vault.data_keys
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._keys_invalidate();

CREATE OR REPLACE VIEW customer_vault.keys AS
    SELECT k.id,
           -- the subject-hash key's name starts with a control character (so
           -- no key name given to a function can be it): shown without it
           CASE WHEN k.name OPERATOR(pg_catalog.=) E'\001subject_hash' THEN 'subject_hash' ELSE k.name END AS name,
           k.version, k.state, k.created_at,
           pg_catalog.encode(k.fingerprint, 'hex') AS fingerprint,
           CASE WHEN k.name IS NULL THEN 'subject'
                WHEN k.name OPERATOR(pg_catalog.=) E'\001subject_hash' THEN 'subject_hash'
                ELSE 'named' END AS kind,
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
    SET standard_conforming_strings = on
    AS $$
BEGIN
    PERFORM customer_vault._coordinator_only('set_key_padding()');
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

-- VOLATILE: the first call creates the dedicated key.  STRICT: no subject, no hash.
CREATE OR REPLACE FUNCTION customer_vault._subject_hash(subject text) RETURNS bytea
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_subject_hash';
COMMENT ON FUNCTION customer_vault._subject_hash(text) IS
    'internal: HMAC-SHA-256 of a subject under the dedicated subject-hash key (made on first use; never rotated or shredded); NULL when none exists and none can be made (standby, read-only transaction)';

--@ code
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
-- the auditor reads logs, reports and verify functions only: key_of (which
-- key sealed a value it was given) is none of those; 0.1.0 and 0.2.0 granted
-- it, taken back here so that updates match
GRANT EXECUTE ON FUNCTION customer_vault.version() TO customer_vault_auditor;
REVOKE EXECUTE ON FUNCTION
    customer_vault.key_of(customer_vault.encrypted_text), customer_vault.key_of(customer_vault.encrypted_bytea)
    FROM customer_vault_auditor;
