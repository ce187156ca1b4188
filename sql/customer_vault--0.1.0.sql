/* customer_vault 0.1.0: keys, encrypted types and columns */

\echo Use "CREATE EXTENSION customer_vault" to load this file. \quit

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

CREATE FUNCTION customer_vault.version() RETURNS text
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_version';
COMMENT ON FUNCTION customer_vault.version() IS
    'version of the loaded customer_vault library';

---------------------------------------------------------------------------
-- Encrypted types
---------------------------------------------------------------------------

CREATE TYPE customer_vault.encrypted_text;
CREATE TYPE customer_vault.encrypted_bytea;

CREATE FUNCTION customer_vault.encrypted_text_in(cstring) RETURNS customer_vault.encrypted_text
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_text_in';
CREATE FUNCTION customer_vault.encrypted_text_out(customer_vault.encrypted_text) RETURNS cstring
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_text_out';
CREATE FUNCTION customer_vault.encrypted_text_recv(internal) RETURNS customer_vault.encrypted_text
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_text_recv';
CREATE FUNCTION customer_vault.encrypted_text_send(customer_vault.encrypted_text) RETURNS bytea
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_text_send';
CREATE FUNCTION customer_vault.encrypted_bytea_in(cstring) RETURNS customer_vault.encrypted_bytea
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_bytea_in';
CREATE FUNCTION customer_vault.encrypted_bytea_out(customer_vault.encrypted_bytea) RETURNS cstring
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_bytea_out';
CREATE FUNCTION customer_vault.encrypted_bytea_recv(internal) RETURNS customer_vault.encrypted_bytea
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_bytea_recv';
CREATE FUNCTION customer_vault.encrypted_bytea_send(customer_vault.encrypted_bytea) RETURNS bytea
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cv_encrypted_bytea_send';

COMMENT ON FUNCTION customer_vault.encrypted_text_in(cstring) IS 'input: accepts only a ciphertext envelope';
COMMENT ON FUNCTION customer_vault.encrypted_text_out(customer_vault.encrypted_text) IS 'output: the ciphertext envelope';
COMMENT ON FUNCTION customer_vault.encrypted_text_recv(internal) IS 'binary input: a validated envelope';
COMMENT ON FUNCTION customer_vault.encrypted_text_send(customer_vault.encrypted_text) IS 'binary output: the envelope';
COMMENT ON FUNCTION customer_vault.encrypted_bytea_in(cstring) IS 'input: accepts only a ciphertext envelope';
COMMENT ON FUNCTION customer_vault.encrypted_bytea_out(customer_vault.encrypted_bytea) IS 'output: the ciphertext envelope';
COMMENT ON FUNCTION customer_vault.encrypted_bytea_recv(internal) IS 'binary input: a validated envelope';
COMMENT ON FUNCTION customer_vault.encrypted_bytea_send(customer_vault.encrypted_bytea) IS 'binary output: the envelope';

-- Ciphertext does not compress: keep it out of line without trying.
CREATE TYPE customer_vault.encrypted_text (
    INPUT = customer_vault.encrypted_text_in,
    OUTPUT = customer_vault.encrypted_text_out,
    RECEIVE = customer_vault.encrypted_text_recv,
    SEND = customer_vault.encrypted_text_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = external
);
CREATE TYPE customer_vault.encrypted_bytea (
    INPUT = customer_vault.encrypted_bytea_in,
    OUTPUT = customer_vault.encrypted_bytea_out,
    RECEIVE = customer_vault.encrypted_bytea_recv,
    SEND = customer_vault.encrypted_bytea_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = external
);
COMMENT ON TYPE customer_vault.encrypted_text IS
    'text sealed with AES-256-GCM under a data key; no comparison operators on purpose';
COMMENT ON TYPE customer_vault.encrypted_bytea IS
    'bytea sealed with AES-256-GCM under a data key; no comparison operators on purpose';

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
    CONSTRAINT data_keys_pkey PRIMARY KEY (id),
    CONSTRAINT data_keys_name_version_key UNIQUE (name, version),
    CONSTRAINT data_keys_state_check CHECK (state IN ('active', 'decrypt_only', 'destroyed')),
    CONSTRAINT data_keys_kind_check CHECK (name IS NULL OR subject IS NULL),
    CONSTRAINT data_keys_wrapped_check CHECK ((state = 'destroyed') = (wrapped IS NULL))
);
ALTER SEQUENCE customer_vault.data_keys_id_seq OWNED BY customer_vault.data_keys.id;
CREATE UNIQUE INDEX data_keys_subject_live_key ON customer_vault.data_keys (subject)
    WHERE state <> 'destroyed';
CREATE UNIQUE INDEX data_keys_name_active_key ON customer_vault.data_keys (name)
    WHERE state = 'active';
COMMENT ON TABLE customer_vault.data_keys IS
    'data keys, wrapped (AES-256-GCM) under the root key; readable by the extension owner only';

-- pg_dump carries the wrapped keys, so a restore with the same root key decrypts.
SELECT pg_catalog.pg_extension_config_dump('customer_vault.data_keys', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.data_keys_id_seq', '');

CREATE FUNCTION customer_vault._keys_invalidate() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'cv_keys_invalidate';
COMMENT ON FUNCTION customer_vault._keys_invalidate() IS
    'trigger: makes every session flush its cache of unwrapped keys';
CREATE TRIGGER data_keys_invalidate
    AFTER UPDATE OR DELETE OR TRUNCATE ON customer_vault.data_keys
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._keys_invalidate();

CREATE VIEW customer_vault.keys AS
    SELECT k.id, k.name, k.version, k.state, k.created_at,
           pg_catalog.encode(k.fingerprint, 'hex') AS fingerprint,
           CASE WHEN k.name IS NULL THEN 'subject' ELSE 'named' END AS kind,
           k.destroyed_at, k.comment
      FROM customer_vault.data_keys k;
COMMENT ON VIEW customer_vault.keys IS
    'data keys without key material: id, name, version, state, created_at, fingerprint';

CREATE FUNCTION customer_vault.create_key(name text, comment text DEFAULT NULL) RETURNS integer
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_create_key';
COMMENT ON FUNCTION customer_vault.create_key(text, text) IS
    'creates a random data key (version 1) wrapped under the root key; returns its id';

CREATE FUNCTION customer_vault.rotate_key(name text) RETURNS integer
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_rotate_key';
COMMENT ON FUNCTION customer_vault.rotate_key(text) IS
    'adds a new active version of a key; older versions stay decrypt-only; returns the new version';

CREATE FUNCTION customer_vault.rewrap_keys() RETURNS integer
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_rewrap_keys';
COMMENT ON FUNCTION customer_vault.rewrap_keys() IS
    're-wraps every data key under the current root key (the old one from previous_root_key_file); returns the count';

CREATE FUNCTION customer_vault.root_key_fingerprint() RETURNS text
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_root_key_fingerprint';
COMMENT ON FUNCTION customer_vault.root_key_fingerprint() IS
    'fingerprint (not the key) of the configured root key';

---------------------------------------------------------------------------
-- Sealing and opening
---------------------------------------------------------------------------

-- Not STRICT: a NULL context means "no context", it must not turn the result NULL.
CREATE FUNCTION customer_vault.encrypt(plaintext text, key_name text, context text DEFAULT NULL)
    RETURNS customer_vault.encrypted_text
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_encrypt_text';
COMMENT ON FUNCTION customer_vault.encrypt(text, text, text) IS
    'seals text with AES-256-GCM under the active version of a key, bound to an optional context';

CREATE FUNCTION customer_vault.encrypt(plaintext bytea, key_name text, context text DEFAULT NULL)
    RETURNS customer_vault.encrypted_bytea
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_encrypt_bytea';
COMMENT ON FUNCTION customer_vault.encrypt(bytea, text, text) IS
    'seals bytea with AES-256-GCM under the active version of a key, bound to an optional context';

CREATE FUNCTION customer_vault.decrypt(value customer_vault.encrypted_text, context text DEFAULT NULL)
    RETURNS text
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_decrypt_text';
COMMENT ON FUNCTION customer_vault.decrypt(customer_vault.encrypted_text, text) IS
    'opens a value; an altered value or a wrong context is an error, a shredded key gives NULL';

CREATE FUNCTION customer_vault.decrypt(value customer_vault.encrypted_bytea, context text DEFAULT NULL)
    RETURNS bytea
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_decrypt_bytea';
COMMENT ON FUNCTION customer_vault.decrypt(customer_vault.encrypted_bytea, text) IS
    'opens a value; an altered value or a wrong context is an error, a shredded key gives NULL';

CREATE FUNCTION customer_vault.key_of(value customer_vault.encrypted_text) RETURNS text
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_key_of';
COMMENT ON FUNCTION customer_vault.key_of(customer_vault.encrypted_text) IS
    '''name:version'' of the data key that sealed the value (''subject:<id>'' for a subject key)';

CREATE FUNCTION customer_vault.key_of(value customer_vault.encrypted_bytea) RETURNS text
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_key_of';
COMMENT ON FUNCTION customer_vault.key_of(customer_vault.encrypted_bytea) IS
    '''name:version'' of the data key that sealed the value (''subject:<id>'' for a subject key)';

CREATE FUNCTION customer_vault.blind_index(plaintext text, key_name text) RETURNS bytea
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_blind_index';
COMMENT ON FUNCTION customer_vault.blind_index(text, text) IS
    'HMAC-SHA-256 of the plaintext under a subkey (HKDF) of the key''s first version: deterministic, for equality search';

CREATE FUNCTION customer_vault.is_sealed(value text) RETURNS boolean
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_is_sealed';
COMMENT ON FUNCTION customer_vault.is_sealed(text) IS
    'whether a text holds a well-formed ciphertext envelope (the CHECK of protected columns)';

---------------------------------------------------------------------------
-- Per-subject keys (crypto-shredding)
---------------------------------------------------------------------------

CREATE FUNCTION customer_vault.encrypt_for_subject(subject text, plaintext text, context text DEFAULT NULL)
    RETURNS customer_vault.encrypted_text
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_encrypt_for_subject';
COMMENT ON FUNCTION customer_vault.encrypt_for_subject(text, text, text) IS
    'seals text under the subject''s own random key, created on first use';

CREATE FUNCTION customer_vault.shred_subject(subject text) RETURNS boolean
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_shred_subject';
COMMENT ON FUNCTION customer_vault.shred_subject(text) IS
    'destroys the subject''s key: every value under it reads as NULL; true if a key existed';

---------------------------------------------------------------------------
-- Protected columns (transparent path) and rotation
---------------------------------------------------------------------------

CREATE TABLE customer_vault.protected_columns (
    schema_name        name NOT NULL,
    table_name         name NOT NULL,
    column_name        name NOT NULL,
    key_name           text NOT NULL,
    binding            text NOT NULL,
    context_column     name,
    blind_index_column name,
    protected_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (schema_name, table_name, column_name)
);
COMMENT ON TABLE customer_vault.protected_columns IS
    'columns converted by protect_column(), with the binding their values are sealed to';
SELECT pg_catalog.pg_extension_config_dump('customer_vault.protected_columns', '');

-- Forget the protection of tables and columns that are dropped, so a new table
-- of the same name can be protected.  SECURITY DEFINER because whoever may drop
-- a table must be able to remove its rows here; the search_path is pinned.
CREATE FUNCTION customer_vault._forget_dropped() RETURNS event_trigger
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
    DELETE FROM customer_vault.protected_columns p
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE (d.object_type OPERATOR(pg_catalog.=) 'table'
            AND p.schema_name OPERATOR(pg_catalog.=) d.schema_name
            AND p.table_name OPERATOR(pg_catalog.=) d.object_name)
        OR (d.object_type OPERATOR(pg_catalog.=) 'table column'
            AND d.address_names OPERATOR(pg_catalog.=)
                ARRAY[p.schema_name::text, p.table_name::text, p.column_name::text]);
END
$$;
COMMENT ON FUNCTION customer_vault._forget_dropped() IS
    'internal: event trigger removing protected_columns rows of dropped tables and columns';
CREATE EVENT TRIGGER customer_vault_forget_dropped ON sql_drop
    EXECUTE FUNCTION customer_vault._forget_dropped();

CREATE FUNCTION customer_vault._check_key(key_name text) RETURNS void
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_check_key';
COMMENT ON FUNCTION customer_vault._check_key(text) IS
    'internal: raises an error unless the named key exists';

-- Not STRICT: a NULL context must be an error, never a NULL result (data loss).
CREATE FUNCTION customer_vault._seal_column(plaintext text, key_name text, context text)
    RETURNS text
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_seal_column';
COMMENT ON FUNCTION customer_vault._seal_column(text, text, text) IS
    'internal: the envelope a protected column stores, used by the conversion rewrite';

CREATE FUNCTION customer_vault._open_column(value text, context text) RETURNS text
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_open_column';
COMMENT ON FUNCTION customer_vault._open_column(text, text) IS
    'decrypts a protected column''s value (what <table>_decrypted shows); NULL when its key was shredded';

CREATE FUNCTION customer_vault._protect_trigger() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'cv_protect_trigger';
COMMENT ON FUNCTION customer_vault._protect_trigger() IS
    'internal: BEFORE ROW trigger that seals plaintext written to a protected column';

CREATE FUNCTION customer_vault._reseal(value customer_vault.encrypted_text, context text)
    RETURNS customer_vault.encrypted_text
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_reseal';
CREATE FUNCTION customer_vault._reseal(value customer_vault.encrypted_bytea, context text)
    RETURNS customer_vault.encrypted_bytea
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_reseal';
CREATE FUNCTION customer_vault._reseal(value text, context text, text_form boolean)
    RETURNS text
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_reseal';
COMMENT ON FUNCTION customer_vault._reseal(customer_vault.encrypted_text, text) IS
    'internal: the value under the active version of its key (reencrypt)';
COMMENT ON FUNCTION customer_vault._reseal(customer_vault.encrypted_bytea, text) IS
    'internal: the value under the active version of its key (reencrypt)';
COMMENT ON FUNCTION customer_vault._reseal(text, text, boolean) IS
    'internal: a protected column''s value under the active version of its key (reencrypt)';

CREATE FUNCTION customer_vault._needs_reseal(value customer_vault.encrypted_text, text_form boolean DEFAULT false)
    RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_needs_reseal';
CREATE FUNCTION customer_vault._needs_reseal(value customer_vault.encrypted_bytea, text_form boolean DEFAULT false)
    RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_needs_reseal';
CREATE FUNCTION customer_vault._needs_reseal(value text, text_form boolean)
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
CREATE FUNCTION customer_vault._table_names(tbl regclass, OUT nsp name, OUT rel name)
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
END
$$;
COMMENT ON FUNCTION customer_vault._table_names(regclass) IS
    'internal: schema and name of an ordinary or partitioned table, or an error';

-- The type of a column of a table; an error naming it ("<what> x of table t") when missing.
CREATE FUNCTION customer_vault._column_type(tbl regclass, col name, what text DEFAULT 'column')
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

-- (Re)creates <table>_decrypted: every column, protected ones decrypted.
CREATE FUNCTION customer_vault._refresh_decrypted_view(tbl regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    vname text;
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
                    pg_catalog.format('customer_vault._open_column(t.%I, %L OPERATOR(pg_catalog.||) t.%I::text) AS %I',
                                      a.attname, p.binding, p.context_column, a.attname)
             END, ', ' ORDER BY a.attnum)
      INTO cols
      FROM pg_catalog.pg_attribute a
      LEFT JOIN customer_vault.protected_columns p
        ON p.schema_name OPERATOR(pg_catalog.=) nsp AND p.table_name OPERATOR(pg_catalog.=) rel
       AND p.column_name OPERATOR(pg_catalog.=) a.attname
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    IF pg_catalog.current_setting('server_version_num')::integer OPERATOR(pg_catalog.>=) 150000 THEN
        -- the reader's own table privileges and row-level security apply
        opts := ' WITH (security_invoker = true)';
    END IF;
    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', nsp, vname)) IS NOT NULL THEN
        EXECUTE pg_catalog.format('DROP VIEW %I.%I', nsp, vname);
    END IF;
    EXECUTE pg_catalog.format('CREATE VIEW %I.%I%s AS SELECT %s FROM %I.%I t', nsp, vname, opts, cols, nsp, rel);
    EXECUTE pg_catalog.format('REVOKE ALL ON %I.%I FROM PUBLIC', nsp, vname);
    EXECUTE pg_catalog.format('GRANT SELECT ON %I.%I TO customer_vault_reader', nsp, vname);
END
$$;
COMMENT ON FUNCTION customer_vault._refresh_decrypted_view(regclass) IS
    'internal: (re)creates the <table>_decrypted view of a protected table';

CREATE FUNCTION customer_vault.protect_column(tbl regclass, col name, key_name text,
                                              context_column name DEFAULT NULL,
                                              blind_index_column name DEFAULT NULL)
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
    qual text;
    bind text;
    ctx_expr text;
    alter_sql text;
BEGIN
    IF tbl IS NULL OR col IS NULL OR key_name IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'table, column and key name must not be null';
    END IF;
    SELECT t.nsp, t.rel INTO nsp, rel FROM customer_vault._table_names(tbl) t;
    coltype := customer_vault._column_type(tbl, col);
    SELECT a.attnum INTO colnum FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) col;
    IF coltype NOT IN ('text'::regtype, 'character varying'::regtype) THEN
        RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
            MESSAGE = pg_catalog.format('column %I of table %s is of type %s', col, tbl, coltype),
            HINT = 'protect_column() converts text and varchar columns; use encrypt() with an encrypted_text or encrypted_bytea column otherwise.';
    END IF;
    IF EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                WHERE p.schema_name OPERATOR(pg_catalog.=) nsp AND p.table_name OPERATOR(pg_catalog.=) rel
                  AND p.column_name OPERATOR(pg_catalog.=) col) THEN
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

    -- the binding: the column's qualified name now, length-prefixed
    qual := pg_catalog.format('%I.%I.%I', nsp, rel, col);
    bind := pg_catalog.length(qual)::text OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) qual;
    IF context_column IS NULL THEN
        ctx_expr := pg_catalog.quote_literal(bind);
    ELSE
        ctx_expr := pg_catalog.format('%L OPERATOR(pg_catalog.||) %I::text', bind, context_column);
    END IF;

    EXECUTE pg_catalog.format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE', nsp, rel);
    -- the <table>_decrypted view of an earlier protect_column() depends on the
    -- columns being rewritten: drop it here, it is made again below
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                WHERE c.relnamespace OPERATOR(pg_catalog.=) (SELECT c2.relnamespace FROM pg_catalog.pg_class c2 WHERE c2.oid OPERATOR(pg_catalog.=) tbl)
                  AND c.relname OPERATOR(pg_catalog.=) (rel OPERATOR(pg_catalog.||) '_decrypted')
                  AND c.relkind OPERATOR(pg_catalog.=) 'v') THEN
        EXECUTE pg_catalog.format('DROP VIEW %I.%I', nsp, rel OPERATOR(pg_catalog.||) '_decrypted');
    END IF;
    IF blind_index_column IS NOT NULL AND bidxtype IS NULL THEN
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I ADD COLUMN %I bytea', nsp, rel, blind_index_column);
    END IF;

    -- one table rewrite: ciphertext replaces plaintext in new files, the old
    -- files (plaintext) are removed at commit, no dead tuples are left behind
    alter_sql := pg_catalog.format(
        'ALTER TABLE %I.%I ALTER COLUMN %I TYPE text USING customer_vault._seal_column(%I::text, %L, %s)',
        nsp, rel, col, col, key_name, ctx_expr);
    IF blind_index_column IS NOT NULL THEN
        alter_sql := alter_sql OPERATOR(pg_catalog.||) pg_catalog.format(
            ', ALTER COLUMN %I TYPE bytea USING customer_vault.blind_index(%I::text, %L)',
            blind_index_column, col, key_name);
    END IF;
    alter_sql := alter_sql OPERATOR(pg_catalog.||) pg_catalog.format(
        ', ADD CONSTRAINT %I CHECK (customer_vault.is_sealed(%I))', 'cv_sealed_' OPERATOR(pg_catalog.||) colnum, col);
    EXECUTE alter_sql;

    EXECUTE pg_catalog.format(
        'CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF %s ON %I.%I FOR EACH ROW'
        ' EXECUTE FUNCTION customer_vault._protect_trigger(%L, %L, %L, %L, %L)',
        'cv_protect_' OPERATOR(pg_catalog.||) colnum,
        pg_catalog.concat_ws(', ', pg_catalog.quote_ident(col), pg_catalog.quote_ident(context_column),
                             pg_catalog.quote_ident(blind_index_column)),
        nsp, rel, col, key_name, bind, COALESCE(context_column, ''), COALESCE(blind_index_column, ''));
    IF blind_index_column IS NOT NULL THEN
        EXECUTE pg_catalog.format('CREATE INDEX ON %I.%I (%I)', nsp, rel, blind_index_column);
    END IF;

    INSERT INTO customer_vault.protected_columns
        (schema_name, table_name, column_name, key_name, binding, context_column, blind_index_column)
    VALUES (nsp, rel, col, key_name, bind, context_column, blind_index_column);

    PERFORM customer_vault._refresh_decrypted_view(tbl);
END
$$;
COMMENT ON FUNCTION customer_vault.protect_column(regclass, name, text, name, name) IS
    'encrypts a text column in place (one table rewrite) and seals every later INSERT/UPDATE; creates <table>_decrypted';

CREATE PROCEDURE customer_vault.reencrypt(tbl regclass, col name, batch_size integer DEFAULT 10000,
                                          context_column name DEFAULT NULL)
    LANGUAGE plpgsql
    -- no SET search_path here: a procedure with SET clauses cannot COMMIT;
    -- every name below is schema-qualified instead
AS $$
DECLARE
    nsp name;
    rel name;
    coltype regtype;
    p customer_vault.protected_columns;
    ctx_expr text := 'NULL';
    new_expr text;
    need_expr text;
    nblocks bigint;
    per_page double precision;
    step bigint;
    blk bigint := 0;
    n bigint;
    passes integer := 0;
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'table and column must not be null';
    END IF;
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'batch_size must be at least 1';
    END IF;
    SELECT t.nsp, t.rel INTO nsp, rel FROM customer_vault._table_names(tbl) t;
    coltype := customer_vault._column_type(tbl, col);
    SELECT * INTO p FROM customer_vault.protected_columns pc
     WHERE pc.schema_name OPERATOR(pg_catalog.=) nsp AND pc.table_name OPERATOR(pg_catalog.=) rel
       AND pc.column_name OPERATOR(pg_catalog.=) col;
    IF FOUND THEN
        IF p.context_column IS NULL THEN
            ctx_expr := pg_catalog.quote_literal(p.binding);
        ELSE
            ctx_expr := pg_catalog.format('%L OPERATOR(pg_catalog.||) %I::text', p.binding, p.context_column);
        END IF;
        new_expr := pg_catalog.format('customer_vault._reseal(%I, %s, true)', col, ctx_expr);
        need_expr := pg_catalog.format('customer_vault._needs_reseal(%I, true)', col);
    ELSIF coltype OPERATOR(pg_catalog.=) ANY (ARRAY['customer_vault.encrypted_text'::pg_catalog.regtype,
                                                     'customer_vault.encrypted_bytea'::pg_catalog.regtype]) THEN
        IF context_column IS NOT NULL THEN
            ctx_expr := pg_catalog.format('%I::pg_catalog.text', context_column);
        END IF;
        new_expr := pg_catalog.format('customer_vault._reseal(%I, %s)', col, ctx_expr);
        need_expr := pg_catalog.format('customer_vault._needs_reseal(%I)', col);
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
            MESSAGE = pg_catalog.format('column %I of table %s is neither encrypted nor protected', col, tbl);
    END IF;

    -- walk the table in block ranges of about batch_size rows, one commit each;
    -- a rerun after an interruption only finds the values still to do
    nblocks := pg_catalog.pg_relation_size(tbl) OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::pg_catalog.int8;
    SELECT CASE WHEN c.relpages OPERATOR(pg_catalog.>) 0 AND c.reltuples OPERATOR(pg_catalog.>) 0
                THEN c.reltuples OPERATOR(pg_catalog./) c.relpages ELSE 50 END
      INTO per_page FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    step := GREATEST(1, (batch_size OPERATOR(pg_catalog./) GREATEST(per_page, 1))::bigint);
    WHILE blk OPERATOR(pg_catalog.<) nblocks LOOP
        EXECUTE pg_catalog.format(
            'UPDATE %I.%I SET %I = %s WHERE ctid OPERATOR(pg_catalog.>=) %L::pg_catalog.tid AND ctid OPERATOR(pg_catalog.<) %L::pg_catalog.tid AND %s',
            nsp, rel, col, new_expr,
            pg_catalog.format('(%s,0)', blk), pg_catalog.format('(%s,0)', blk OPERATOR(pg_catalog.+) step), need_expr);
        blk := blk OPERATOR(pg_catalog.+) step;
        COMMIT;
    END LOOP;
    -- rows that moved or arrived meanwhile
    LOOP
        EXECUTE pg_catalog.format(
            'UPDATE %I.%I SET %I = %s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ctid FROM %I.%I WHERE %s LIMIT %s))',
            nsp, rel, col, new_expr, nsp, rel, need_expr, batch_size);
        GET DIAGNOSTICS n = ROW_COUNT;
        COMMIT;
        passes := passes OPERATOR(pg_catalog.+) 1;
        EXIT WHEN n OPERATOR(pg_catalog.=) 0 OR passes OPERATOR(pg_catalog.>) 1000;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE customer_vault.reencrypt(regclass, name, integer, name) IS
    'moves every value of a column to the active version of its key in committed batches; resumable';

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
COMMENT ON TABLE customer_vault.purposes IS 'processing purposes and their GDPR lawful basis';

CREATE TABLE customer_vault.purpose_roles (
    role_name name NOT NULL,
    purpose   text COLLATE "C" NOT NULL REFERENCES customer_vault.purposes ON DELETE CASCADE,
    PRIMARY KEY (role_name, purpose)
);
COMMENT ON TABLE customer_vault.purpose_roles IS 'the purposes each role may act under';

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
COMMENT ON TABLE customer_vault.consent_state IS 'current consent per subject and purpose (see consent_ledger for the evidence)';

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
COMMENT ON TABLE customer_vault.consent_ledger IS
    'append-only, hash-chained record of every grant and withdrawal of consent';

SELECT pg_catalog.pg_extension_config_dump('customer_vault.purposes', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purpose_roles', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.consent_state', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.consent_ledger', '');

CREATE FUNCTION customer_vault._ledger_append_only() RETURNS trigger
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
CREATE TRIGGER consent_ledger_no_update_delete BEFORE UPDATE OR DELETE ON customer_vault.consent_ledger
    FOR EACH ROW EXECUTE FUNCTION customer_vault._ledger_append_only();
CREATE TRIGGER consent_ledger_no_truncate BEFORE TRUNCATE ON customer_vault.consent_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._ledger_append_only();
-- also under session_replication_role = replica
ALTER TABLE customer_vault.consent_ledger ENABLE ALWAYS TRIGGER consent_ledger_no_update_delete;
ALTER TABLE customer_vault.consent_ledger ENABLE ALWAYS TRIGGER consent_ledger_no_truncate;

-- SHA-256 over the previous hash and a canonical encoding of the entry
-- (a JSON array; times as integer microseconds since the epoch)
CREATE FUNCTION customer_vault._ledger_hash(prev bytea, id bigint, subject text, purpose text, action text,
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
CREATE FUNCTION customer_vault._consent_changed() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'cv_consent_changed';
COMMENT ON FUNCTION customer_vault._consent_changed() IS
    'internal: marks the transaction as changing consent data (cache coherence of has_consent/may_process)';
CREATE TRIGGER consent_state_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON customer_vault.consent_state
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._consent_changed();
CREATE TRIGGER purposes_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON customer_vault.purposes
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._consent_changed();
CREATE TRIGGER purpose_roles_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON customer_vault.purpose_roles
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._consent_changed();
ALTER TABLE customer_vault.consent_state ENABLE ALWAYS TRIGGER consent_state_changed;
ALTER TABLE customer_vault.purposes ENABLE ALWAYS TRIGGER purposes_changed;
ALTER TABLE customer_vault.purpose_roles ENABLE ALWAYS TRIGGER purpose_roles_changed;

CREATE FUNCTION customer_vault.define_purpose(purpose text, lawful_basis text DEFAULT 'consent',
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
    IF consent_valid_for IS NOT NULL AND (lawful_basis <> 'consent' OR consent_valid_for <= '0'::interval) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'consent_valid_for must be a positive interval, and only for the consent basis';
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

CREATE FUNCTION customer_vault.allow_purpose(role regrole, purpose text) RETURNS void
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

CREATE FUNCTION customer_vault.disallow_purpose(role regrole, purpose text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM customer_vault.purpose_roles r
     WHERE r.role_name = (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = role)
       AND r.purpose = disallow_purpose.purpose;
END
$$;
COMMENT ON FUNCTION customer_vault.disallow_purpose(regrole, text) IS 'withdraws a role''s right to act under a purpose';

-- one ledger entry, chained to the previous one (serialized by an advisory lock)
CREATE FUNCTION customer_vault._ledger_append(subject text, purpose text, action text, evidence jsonb,
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

CREATE FUNCTION customer_vault._check_subject_purpose(subject text, purpose text) RETURNS customer_vault.purposes
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

CREATE FUNCTION customer_vault.grant_consent(subject text, purpose text, evidence jsonb,
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

CREATE FUNCTION customer_vault.withdraw_consent(subject text, purpose text, evidence jsonb DEFAULT NULL)
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

CREATE FUNCTION customer_vault.has_consent(subject text, purpose text) RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_has_consent';
COMMENT ON FUNCTION customer_vault.has_consent(text, text) IS
    'whether an explicit, unexpired, unwithdrawn opt-in of the subject for the purpose exists';

-- Not STRICT: a NULL purpose means the session's customer_vault.purpose.
CREATE FUNCTION customer_vault.may_process(subject text, purpose text DEFAULT NULL) RETURNS boolean
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_may_process';
COMMENT ON FUNCTION customer_vault.may_process(text, text) IS
    'whether the current role may process the subject''s data for the purpose (default: customer_vault.purpose)';

-- the same for integer subject keys, without turning every key into text
CREATE FUNCTION customer_vault.may_process(subject bigint, purpose text DEFAULT NULL) RETURNS boolean
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_may_process_int8';
COMMENT ON FUNCTION customer_vault.may_process(bigint, text) IS
    'may_process(subject::text, purpose) for integer subject keys';

CREATE FUNCTION customer_vault._consent_cache_builds() RETURNS bigint
    LANGUAGE C VOLATILE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_consent_cache_builds';
COMMENT ON FUNCTION customer_vault._consent_cache_builds() IS
    'internal: how often this backend has read its consent cache (for tests and tuning)';

CREATE VIEW customer_vault.current_consents AS
    SELECT s.subject, s.purpose, p.lawful_basis,
           CASE WHEN NOT s.granted THEN 'withdrawn'
                WHEN s.valid_until IS NOT NULL AND s.valid_until <= pg_catalog.now() THEN 'expired'
                ELSE 'granted' END AS status,
           s.granted_at, s.valid_until, s.withdrawn_at, s.ledger_id
      FROM customer_vault.consent_state s
      JOIN customer_vault.purposes p ON p.purpose = s.purpose;
COMMENT ON VIEW customer_vault.current_consents IS 'the consent state per subject and purpose';

CREATE FUNCTION customer_vault.verify_ledger() RETURNS bigint
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

CREATE FUNCTION customer_vault.enable_consent_policy(tbl regclass, subject_column name, purpose text DEFAULT NULL,
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
COMMENT ON TABLE customer_vault.retention_policies IS 'how long rows of each table are kept, and what happens to them then';

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
COMMENT ON TABLE customer_vault.legal_holds IS 'legal holds: a held subject''s rows are never purged';

CREATE TABLE customer_vault.purge_log (
    id          bigserial PRIMARY KEY,
    run_started timestamptz NOT NULL,
    tbl         text NOT NULL,
    action      text NOT NULL,
    cutoff      timestamp NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    rows_purged bigint NOT NULL DEFAULT 0,
    rows_held   bigint NOT NULL DEFAULT 0,
    batches     integer NOT NULL DEFAULT 0,
    dry_run     boolean NOT NULL,
    role        name NOT NULL DEFAULT session_user
);
COMMENT ON TABLE customer_vault.purge_log IS
    'one row per table and purge run: what was purged or anonymized or shredded, what was held';

SELECT pg_catalog.pg_extension_config_dump('customer_vault.retention_policies', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.legal_holds', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.legal_holds_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purge_log', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purge_log_id_seq', '');

CREATE FUNCTION customer_vault._subject_has_key(subject text) RETURNS boolean
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_subject_has_key';
COMMENT ON FUNCTION customer_vault._subject_has_key(text) IS
    'internal: whether a subject still has a live key (the shred retention action''s pending rows)';

-- the PII-labelled columns of a table (SECURITY LABEL FOR customer_vault)
CREATE FUNCTION customer_vault._pii_columns(tbl regclass) RETURNS name[]
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

CREATE FUNCTION customer_vault.set_retention(tbl regclass, time_column name, keep interval,
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

CREATE FUNCTION customer_vault.place_legal_hold(subject text, reason text, until timestamptz DEFAULT NULL)
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

CREATE FUNCTION customer_vault.release_legal_hold(hold_id bigint) RETURNS void
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
CREATE FUNCTION customer_vault._retention_sql(r customer_vault.retention_policies, as_of timestamptz,
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
        held := pg_catalog.format(
            'EXISTS (SELECT 1 FROM customer_vault.legal_holds h WHERE h.released_at IS NULL'
            ' AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now())'
            ' AND h.subject OPERATOR(pg_catalog.=) (t.%I)::text)', r.subject_column);
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
        pending := pg_catalog.format('customer_vault._subject_has_key((t.%I)::text)', r.subject_column);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._retention_sql(customer_vault.retention_policies, timestamptz) IS
    'internal: the cutoff and the predicates of one retention policy';

CREATE FUNCTION customer_vault.purge_preview(as_of timestamptz DEFAULT NULL)
    RETURNS TABLE(tbl regclass, expired bigint, held bigint, to_purge bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r customer_vault.retention_policies;
    q record;
BEGIN
    FOR r IN SELECT * FROM customer_vault.retention_policies ORDER BY schema_name, table_name LOOP
        q := customer_vault._retention_sql(r, COALESCE(as_of, pg_catalog.now()));
        tbl := pg_catalog.format('%I.%I', r.schema_name, r.table_name)::regclass;
        EXECUTE pg_catalog.format(
            'SELECT count(*) FILTER (WHERE %3$s), count(*) FILTER (WHERE %3$s AND %4$s),'
            '       count(*) FILTER (WHERE %3$s AND NOT %4$s AND %5$s)'
            '  FROM %1$I.%2$I t', r.schema_name, r.table_name, q.expired, q.held, q.pending)
            INTO expired, held, to_purge;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault.purge_preview(timestamptz) IS
    'per table with a retention policy: rows past retention, rows kept by a legal hold, rows a purge would change';

-- Not SET search_path: a procedure with SET clauses cannot COMMIT; every
-- name is schema-qualified instead.  Runs as the caller, who needs DELETE
-- (or UPDATE) on the tables.
CREATE PROCEDURE customer_vault.purge(dry_run boolean DEFAULT false, batch_size integer DEFAULT 10000,
                                      as_of timestamptz DEFAULT NULL)
    LANGUAGE plpgsql
AS $$
DECLARE
    r customer_vault.retention_policies;
    q record;
    run_started timestamptz := pg_catalog.clock_timestamp();
    asof timestamptz := COALESCE(as_of, pg_catalog.now());
    log_id bigint;
    nblocks bigint;
    per_page double precision;
    step bigint;
    blk bigint;
    n bigint;
    total bigint;
    nbatches integer;
    held_count bigint;
    subj text;
    pol record;
BEGIN
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'batch_size must be at least 1';
    END IF;
    FOR pol IN SELECT p.schema_name, p.table_name FROM customer_vault.retention_policies p
                ORDER BY p.schema_name, p.table_name LOOP
        SELECT * INTO r FROM customer_vault.retention_policies p
         WHERE p.schema_name OPERATOR(pg_catalog.=) pol.schema_name AND p.table_name OPERATOR(pg_catalog.=) pol.table_name;
        CONTINUE WHEN NOT FOUND;
        q := customer_vault._retention_sql(r, asof);
        INSERT INTO customer_vault.purge_log (run_started, tbl, action, cutoff, started_at, dry_run)
        VALUES (run_started, pg_catalog.format('%I.%I', r.schema_name, r.table_name), r.action, q.cutoff,
                pg_catalog.clock_timestamp(), dry_run)
        RETURNING id INTO log_id;
        COMMIT;
        total := 0;
        nbatches := 0;
        -- rows kept by a hold (a full scan, so only when some hold is active)
        held_count := 0;
        IF q.held OPERATOR(pg_catalog.<>) 'false' AND EXISTS (
               SELECT 1 FROM customer_vault.legal_holds h WHERE h.released_at IS NULL
                  AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) pg_catalog.now())) THEN
            EXECUTE pg_catalog.format('SELECT count(*) FROM %I.%I t WHERE %s AND %s', r.schema_name, r.table_name,
                                      q.expired, q.held) INTO held_count;
        END IF;
        IF dry_run THEN
            EXECUTE pg_catalog.format('SELECT count(*) FROM %I.%I t WHERE %s AND NOT %s AND %s', r.schema_name,
                                      r.table_name, q.expired, q.held, q.pending) INTO total;
        ELSIF r.action OPERATOR(pg_catalog.=) 'shred' THEN
            FOR subj IN EXECUTE pg_catalog.format(
                    'SELECT DISTINCT (t.%I)::text FROM %I.%I t WHERE %s AND NOT %s AND %s AND t.%I IS NOT NULL',
                    r.subject_column, r.schema_name, r.table_name, q.expired, q.held, q.pending, r.subject_column) LOOP
                IF customer_vault.shred_subject(subj) THEN
                    total := total OPERATOR(pg_catalog.+) 1;
                    IF total OPERATOR(pg_catalog.%) batch_size OPERATOR(pg_catalog.=) 0 THEN
                        nbatches := nbatches OPERATOR(pg_catalog.+) 1;
                        COMMIT;
                    END IF;
                END IF;
            END LOOP;
            nbatches := nbatches OPERATOR(pg_catalog.+) 1;
        ELSE
            -- walk the table in block ranges of about batch_size rows, one short
            -- transaction each; rows locked by others are skipped (next run)
            nblocks := pg_catalog.pg_relation_size(pg_catalog.format('%I.%I', r.schema_name, r.table_name)::regclass)
                       OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::pg_catalog.int8;
            SELECT CASE WHEN c.relpages OPERATOR(pg_catalog.>) 0 AND c.reltuples OPERATOR(pg_catalog.>) 0
                        THEN c.reltuples OPERATOR(pg_catalog./) c.relpages ELSE 100 END
              INTO per_page FROM pg_catalog.pg_class c
             WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.format('%I.%I', r.schema_name, r.table_name)::regclass;
            step := GREATEST(1, (batch_size OPERATOR(pg_catalog./) GREATEST(per_page, 1))::bigint);
            blk := 0;
            WHILE blk OPERATOR(pg_catalog.<) nblocks LOOP
                -- a lost batch after a crash is simply done again by the next run
                PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
                IF r.action OPERATOR(pg_catalog.=) 'delete' THEN
                    EXECUTE pg_catalog.format(
                        'DELETE FROM %1$I.%2$I WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY('
                        'SELECT t.ctid FROM %1$I.%2$I t WHERE t.ctid OPERATOR(pg_catalog.>=) %3$L::pg_catalog.tid'
                        ' AND t.ctid OPERATOR(pg_catalog.<) %4$L::pg_catalog.tid AND %5$s AND NOT %6$s'
                        ' FOR UPDATE OF t SKIP LOCKED))',
                        r.schema_name, r.table_name, pg_catalog.format('(%s,0)', blk),
                        pg_catalog.format('(%s,0)', blk OPERATOR(pg_catalog.+) step), q.expired, q.held);
                ELSE
                    EXECUTE pg_catalog.format(
                        'UPDATE %1$I.%2$I SET %7$s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY('
                        'SELECT t.ctid FROM %1$I.%2$I t WHERE t.ctid OPERATOR(pg_catalog.>=) %3$L::pg_catalog.tid'
                        ' AND t.ctid OPERATOR(pg_catalog.<) %4$L::pg_catalog.tid AND %5$s AND NOT %6$s AND %8$s'
                        ' FOR UPDATE OF t SKIP LOCKED))',
                        r.schema_name, r.table_name, pg_catalog.format('(%s,0)', blk),
                        pg_catalog.format('(%s,0)', blk OPERATOR(pg_catalog.+) step), q.expired, q.held,
                        q.change, q.pending);
                END IF;
                GET DIAGNOSTICS n = ROW_COUNT;
                total := total OPERATOR(pg_catalog.+) n;
                nbatches := nbatches OPERATOR(pg_catalog.+) 1;
                blk := blk OPERATOR(pg_catalog.+) step;
                COMMIT;
            END LOOP;
        END IF;
        UPDATE customer_vault.purge_log l SET finished_at = pg_catalog.clock_timestamp(), rows_purged = total,
               rows_held = held_count, batches = nbatches
         WHERE l.id OPERATOR(pg_catalog.=) log_id;
        COMMIT;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE customer_vault.purge(boolean, integer, timestamptz) IS
    'removes, anonymizes or shreds rows past retention in short committed batches, keeping held subjects; logs every table';

-- a clear error, with the way to install it, when pg_cron is not in this database
CREATE FUNCTION customer_vault._require_pg_cron() RETURNS void
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

CREATE FUNCTION customer_vault.schedule_purge(schedule text DEFAULT '15 3 * * *') RETURNS bigint
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

CREATE FUNCTION customer_vault.unschedule_purge() RETURNS boolean
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

---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC but the type I/O and is_sealed and may_process
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

GRANT EXECUTE ON FUNCTION
    customer_vault.version(),
    customer_vault.create_key(text, text), customer_vault.rotate_key(text), customer_vault.rewrap_keys(),
    customer_vault.root_key_fingerprint(),
    customer_vault.shred_subject(text),
    customer_vault.key_of(customer_vault.encrypted_text), customer_vault.key_of(customer_vault.encrypted_bytea),
    customer_vault.blind_index(text, text),
    customer_vault.protect_column(regclass, name, text, name, name),
    customer_vault._check_key(text), customer_vault._seal_column(text, text, text),
    customer_vault._table_names(regclass), customer_vault._column_type(regclass, name, text),
    customer_vault._protect_trigger(), customer_vault._refresh_decrypted_view(regclass),
    customer_vault._reseal(customer_vault.encrypted_text, text),
    customer_vault._reseal(customer_vault.encrypted_bytea, text),
    customer_vault._reseal(text, text, boolean),
    customer_vault._needs_reseal(customer_vault.encrypted_text, boolean),
    customer_vault._needs_reseal(customer_vault.encrypted_bytea, boolean),
    customer_vault._needs_reseal(text, boolean)
    TO customer_vault_admin;
GRANT EXECUTE ON PROCEDURE customer_vault.reencrypt(regclass, name, integer, name) TO customer_vault_admin;
GRANT SELECT ON customer_vault.keys TO customer_vault_admin, customer_vault_auditor;
GRANT SELECT, INSERT, UPDATE, DELETE ON customer_vault.protected_columns TO customer_vault_admin;
GRANT SELECT ON customer_vault.protected_columns TO customer_vault_auditor;

-- the writer stores data and never reads it back
GRANT EXECUTE ON FUNCTION
    customer_vault.encrypt(text, text, text), customer_vault.encrypt(bytea, text, text),
    customer_vault.encrypt_for_subject(text, text, text),
    customer_vault.blind_index(text, text)
    TO customer_vault_writer;

-- the reader decrypts
GRANT EXECUTE ON FUNCTION
    customer_vault._open_column(text, text),
    customer_vault.decrypt(customer_vault.encrypted_text, text),
    customer_vault.decrypt(customer_vault.encrypted_bytea, text),
    customer_vault.key_of(customer_vault.encrypted_text), customer_vault.key_of(customer_vault.encrypted_bytea),
    customer_vault.blind_index(text, text)
    TO customer_vault_reader;

GRANT EXECUTE ON FUNCTION customer_vault.version(),
    customer_vault.key_of(customer_vault.encrypted_text), customer_vault.key_of(customer_vault.encrypted_bytea)
    TO customer_vault_auditor;

-- consent: may_process is what a policy evaluates; it answers only for
-- purposes the calling role is allowed, so it reveals nothing to others
GRANT EXECUTE ON FUNCTION customer_vault.may_process(text, text), customer_vault.may_process(bigint, text) TO PUBLIC;
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

-- retention: the admin sets policies and holds and runs (or schedules) the purge
GRANT EXECUTE ON FUNCTION
    customer_vault.set_retention(regclass, name, interval, text, name),
    customer_vault.place_legal_hold(text, text, timestamptz), customer_vault.release_legal_hold(bigint),
    customer_vault.purge_preview(timestamptz), customer_vault._retention_sql(customer_vault.retention_policies, timestamptz),
    customer_vault._pii_columns(regclass), customer_vault._subject_has_key(text),
    customer_vault.shred_subject(text),
    customer_vault.schedule_purge(text), customer_vault.unschedule_purge(), customer_vault._require_pg_cron()
    TO customer_vault_admin;
GRANT EXECUTE ON PROCEDURE customer_vault.purge(boolean, integer, timestamptz) TO customer_vault_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON customer_vault.retention_policies TO customer_vault_admin;
GRANT SELECT, INSERT, UPDATE ON customer_vault.legal_holds, customer_vault.purge_log TO customer_vault_admin;
GRANT USAGE ON SEQUENCE customer_vault.legal_holds_id_seq, customer_vault.purge_log_id_seq TO customer_vault_admin;
GRANT SELECT ON customer_vault.retention_policies, customer_vault.legal_holds, customer_vault.purge_log
    TO customer_vault_auditor;
