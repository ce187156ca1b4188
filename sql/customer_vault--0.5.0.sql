/* customer_vault 0.5.0 (assembled from sql/src by sql/assemble.sh; do not edit) */

\echo Use "CREATE EXTENSION customer_vault" to load this file. \quit

-- ==== 00_declared_privileges.sql ====

---------------------------------------------------------------------------
-- The declared privilege matrix (part REPORT).  Every grant the extension's
-- scripts make on its own objects is the declaration: this file runs first
-- (it remembers grants made outside the scripts before an update touches
-- any ACL), 99_privilege_matrix.sql runs last and records what the scripts
-- granted.  privilege_drift() compares the grants of now with it.  Nobody
-- edits the declaration by hand: a new function's GRANTs in sql/src are its
-- declaration, and the tests assert that the drift is empty after a fresh
-- install and after every update.
---------------------------------------------------------------------------

-- one row per grant the install (or the last update) made: object as
-- '<kind> <qualified name>', grantee role (PUBLIC for everybody), privilege
-- (with ' WITH GRANT OPTION' when grantable); the owner's own rights are left
-- out.  Rebuilt by every CREATE EXTENSION and ALTER EXTENSION UPDATE, so not
-- dumped (a restore's CREATE EXTENSION makes it again).
CREATE TABLE customer_vault.privilege_matrix (
    object    text NOT NULL,
    role      name NOT NULL,
    privilege text NOT NULL,
    CONSTRAINT privilege_matrix_pkey PRIMARY KEY (object, role, privilege)
);
-- scratch space of the install and update scripts only (empty otherwise):
-- grants that were not declared when an update started stay undeclared
CREATE TABLE customer_vault._privilege_carry (
    object    text NOT NULL,
    role      name NOT NULL,
    privilege text NOT NULL
);
COMMENT ON TABLE customer_vault.privilege_matrix IS
    'the declared privileges on the extension''s objects: every grant its install and update scripts made (owner''s rights left out); privilege_drift() shows what differs';
COMMENT ON TABLE customer_vault._privilege_carry IS
    'internal: grants found undeclared when an update started (empty outside the install and update scripts)';

-- Every grant on the extension's objects (its members, and anything else in
-- its schema): functions and procedures, tables, views, sequences and their
-- columns, the schema, the types.  as_installed = the grants the extension's
-- scripts recorded (pg_init_privs) instead of the current ones, for members
-- only.  A NULL ACL is the kind's default (PUBLIC may EXECUTE a function,
-- use a type).  Object names are qualified (search_path pinned).  The
-- schema is not a member, but CREATE EXTENSION makes it and the scripts
-- grant on it (00_schema.sql), recorded in pg_init_privs like a member's.
CREATE OR REPLACE FUNCTION customer_vault._granted_privileges(as_installed boolean DEFAULT false)
    RETURNS TABLE(object text, role name, privilege text, by_default boolean)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH ext AS (
        SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'customer_vault'
    ), members AS (
        SELECT d.classid, d.objid FROM pg_catalog.pg_depend d, ext
         WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.refobjid = ext.oid
           AND d.deptype = 'e'
    ), nsp AS (
        SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = 'customer_vault'
    ), objs AS (
        SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass AS classid, p.oid AS objid, 0 AS objsubid,
               CASE p.prokind WHEN 'p' THEN 'procedure ' ELSE 'function ' END
                   OPERATOR(pg_catalog.||) p.oid::pg_catalog.regprocedure::text AS object,
               p.proowner AS owner, 'f'::"char" AS kind, p.proacl AS acl, p.pronamespace AS nspoid,
               p.prosecdef AS secdef
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace IN (SELECT oid FROM nsp)
            OR p.oid IN (SELECT m.objid FROM members m WHERE m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass)
        UNION ALL
        SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0,
               CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' WHEN 'S' THEN 'sequence '
                              WHEN 'f' THEN 'foreign table ' ELSE 'table ' END
                   OPERATOR(pg_catalog.||) c.oid::pg_catalog.regclass::text,
               c.relowner, CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relacl, c.relnamespace, false
          FROM pg_catalog.pg_class c
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
           AND (c.relnamespace IN (SELECT oid FROM nsp)
                OR c.oid IN (SELECT m.objid FROM members m WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass))
        UNION ALL
        SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, a.attnum,
               'column ' OPERATOR(pg_catalog.||) c.oid::pg_catalog.regclass::text OPERATOR(pg_catalog.||) '.'
                   OPERATOR(pg_catalog.||) pg_catalog.quote_ident(a.attname),
               c.relowner, NULL::"char", a.attacl, c.relnamespace, false
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND (c.relnamespace IN (SELECT oid FROM nsp)
                OR c.oid IN (SELECT m.objid FROM members m WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass))
        UNION ALL
        SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, n.oid, 0,
               'schema ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(n.nspname), n.nspowner, 'n'::"char", n.nspacl,
               0::oid, false
          FROM pg_catalog.pg_namespace n WHERE n.oid IN (SELECT oid FROM nsp)
        UNION ALL
        -- types with privileges of their own (not array types nor table rowtypes)
        SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, 0,
               'type ' OPERATOR(pg_catalog.||) t.oid::pg_catalog.regtype::text, t.typowner, 'T'::"char", t.typacl,
               t.typnamespace, false
          FROM pg_catalog.pg_type t
         WHERE (t.typnamespace IN (SELECT oid FROM nsp)
                OR t.oid IN (SELECT m.objid FROM members m WHERE m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass))
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
           AND (t.typrelid = 0
                OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
    ), acls AS (
        SELECT o.object, o.owner, o.kind, o.nspoid,
               CASE WHEN as_installed THEN
                        COALESCE((SELECT i.initprivs FROM pg_catalog.pg_init_privs i
                                   WHERE i.classoid = o.classid AND i.objoid = o.objid AND i.objsubid = o.objsubid),
                                 CASE WHEN o.kind IS NOT NULL THEN pg_catalog.acldefault(o.kind, o.owner) END)
                    ELSE COALESCE(o.acl, CASE WHEN o.kind IS NOT NULL THEN pg_catalog.acldefault(o.kind, o.owner) END)
               END AS acl
          FROM objs o
         WHERE NOT as_installed
            OR EXISTS (SELECT 1 FROM members m WHERE m.classid = o.classid AND m.objid = o.objid)
            OR o.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass   -- made by CREATE EXTENSION
    )
    SELECT DISTINCT a.object,
           CASE WHEN x.grantee = 0 THEN 'PUBLIC'::name
                ELSE (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = x.grantee) END,
           x.privilege_type OPERATOR(pg_catalog.||) CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
           -- the owner's default privileges (ALTER DEFAULT PRIVILEGES, for
           -- all schemas or for the object's) grant this beyond the built-in default
           a.kind IS NOT NULL AND EXISTS (
               SELECT 1 FROM pg_catalog.pg_default_acl da, pg_catalog.aclexplode(da.defaclacl) y
                WHERE da.defaclrole = a.owner AND da.defaclnamespace IN (0, a.nspoid)
                  AND da.defaclobjtype = CASE a.kind WHEN 's' THEN 'S' ELSE a.kind END
                  AND y.grantee = x.grantee AND y.privilege_type = x.privilege_type
                  AND y.is_grantable = x.is_grantable
                  AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(pg_catalog.acldefault(a.kind, a.owner)) z
                                   WHERE z.grantee = y.grantee AND z.privilege_type = y.privilege_type
                                     AND z.is_grantable = y.is_grantable))
      FROM acls a, pg_catalog.aclexplode(a.acl) x
     WHERE x.grantee <> a.owner
    UNION
    -- an object of the extension owned by another role than the extension's
    -- owner (never declared: the scripts create everything as the owner)
    SELECT o.object, r.rolname, CASE WHEN o.secdef THEN 'OWNER, SECURITY DEFINER' ELSE 'OWNER' END, false
      FROM objs o
      JOIN pg_catalog.pg_roles r ON r.oid = o.owner
     WHERE NOT as_installed AND o.objsubid = 0
       AND o.owner <> (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'customer_vault')
$$;
COMMENT ON FUNCTION customer_vault._granted_privileges(boolean) IS
    'internal: every grant on the extension''s objects (members and anything in its schema) but the owner''s own, by_default when the owner''s default privileges grant it; as_installed = as the extension''s scripts left them; and (not as_installed) an OWNER row per object not owned by the extension''s owner';

-- Before an update changes any ACL: grants that are not declared now (not
-- in privilege_matrix, or, updating from a version without one, not made by
-- the extension's scripts) are remembered, so that 99_privilege_matrix.sql
-- keeps them out of the new declaration and privilege_drift() goes on
-- showing them.  On a fresh install this finds nothing.
DELETE FROM customer_vault._privilege_carry;
INSERT INTO customer_vault._privilege_carry
    (SELECT g.object, g.role, g.privilege FROM customer_vault._granted_privileges(false) g
     EXCEPT
     SELECT d.object, d.role, d.privilege FROM customer_vault.privilege_matrix d)
    EXCEPT
    SELECT i.object, i.role, i.privilege FROM customer_vault._granted_privileges(true) i
     WHERE NOT EXISTS (SELECT 1 FROM customer_vault.privilege_matrix);

-- ==== 00_schema.sql ====
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

-- ==== 10_types.sql ====

---------------------------------------------------------------------------
-- Encrypted types
---------------------------------------------------------------------------

CREATE TYPE customer_vault.encrypted_text;
CREATE TYPE customer_vault.encrypted_bytea;

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

-- ==== 20_keys.sql ====

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
COMMENT ON TABLE customer_vault.data_keys IS
    'data keys, wrapped (AES-256-GCM) under the root key; readable by the extension owner only';

-- pg_dump carries the wrapped keys, so a restore with the same root key decrypts.
SELECT pg_catalog.pg_extension_config_dump('customer_vault.data_keys', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.data_keys_id_seq', '');

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

-- ==== 30_columns.sql ====

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
    blind_index_bits   integer,
    relid              regclass NOT NULL,
    PRIMARY KEY (schema_name, table_name, column_name),
    CONSTRAINT protected_columns_blind_index_bits_check CHECK (blind_index_bits BETWEEN 1 AND 256)
);
COMMENT ON TABLE customer_vault.protected_columns IS
    'columns converted by protect_column(), with the binding their values are sealed to; relid is the table (its names cannot change while it is protected)';
SELECT pg_catalog.pg_extension_config_dump('customer_vault.protected_columns', '');

-- Forget the protection of tables and columns that are dropped, so a new table
-- of the same name can be protected, and remake the protect trigger of a
-- table that lost a protected column.  SECURITY DEFINER because whoever may drop
-- a table must be able to remove its rows here; the search_path is pinned.
CREATE OR REPLACE FUNCTION customer_vault._forget_dropped() RETURNS event_trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
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
    -- a column drop that took a table's protect trigger with it (CASCADE: the
    -- trigger lists its columns) gets the trigger remade for the protected
    -- columns left; a DROP TRIGGER alone (the owner giving the protection
    -- up) is left as it is
    FOR r IN SELECT DISTINCT p.relid
               FROM pg_catalog.pg_event_trigger_dropped_objects() d
               JOIN customer_vault.protected_columns p
                 ON p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid
              WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                AND d.object_type OPERATOR(pg_catalog.=) 'table column'
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() dt
                             WHERE dt.object_type OPERATOR(pg_catalog.=) 'trigger'
                               AND dt.address_names OPERATOR(pg_catalog.=)
                                   ARRAY[p.schema_name::pg_catalog.text, p.table_name::pg_catalog.text, 'cv_protect'])
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                                 WHERE t.tgrelid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
                                   AND t.tgname OPERATOR(pg_catalog.=) 'cv_protect')
    LOOP
        PERFORM customer_vault._build_protect_trigger(r.relid);
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._forget_dropped() IS
    'internal: event trigger removing protected_columns rows of dropped tables and columns, and remaking the protect trigger of a table that lost one';
CREATE EVENT TRIGGER customer_vault_forget_dropped ON sql_drop
    EXECUTE FUNCTION customer_vault._forget_dropped();

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

-- (Re)makes the one protect trigger of a table, cv_protect, from its registry
-- rows (never from a caller's arguments): drops the table's per-column
-- triggers of older versions (cv_protect_<attnum>) and its cv_protect, then
-- creates cv_protect BEFORE INSERT OR UPDATE FOR EACH ROW (every UPDATE: an
-- owner's earlier BEFORE trigger may change a column the statement does not
-- set; the trigger compares NEW with OLD) WHEN (ROW(NEW.<every protected,
-- context and blind index column>) IS NULL OR true) with the mark
-- 'cv_protect_table' and six arguments per protected column still in the
-- table, in column order (column, key, binding, context column, blind index
-- column, blind index bits; '' for none, bits '' for a column protected by
-- 0.1.0), or no trigger when none is left.  The WHEN clause is always true
-- (PostgreSQL folds it to a constant once per statement); it names the
-- columns, as the UPDATE OF list of older versions did, so that the trigger
-- recognises them (PostgreSQL keeps the clause through renames and maps it
-- onto partitions), their type cannot change, and dropping one of them
-- (CASCADE) drops the trigger, which the sql_drop event trigger then remakes
-- for the columns left.  Run as the extension's owner only (protect_column,
-- the sql_drop event trigger, the update); granted to nobody.
CREATE OR REPLACE FUNCTION customer_vault._build_protect_trigger(tbl regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    args text;
    cols text;
BEGIN
    -- a partition of a protected partitioned table has its parent's
    -- cv_protect (a clone): its own columns are protected on the parent
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl AND t.tgname OPERATOR(pg_catalog.=) 'cv_protect'
                  AND t.tgparentid OPERATOR(pg_catalog.<>) 0::pg_catalog.oid) THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = pg_catalog.format('table %s is a partition of a table with protected columns', tbl),
            HINT = 'Protect the column on the partitioned table.';
    END IF;
    FOR r IN SELECT t.tgname FROM pg_catalog.pg_trigger t
              WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl
                AND t.tgfoid OPERATOR(pg_catalog.=) 'customer_vault._protect_trigger()'::pg_catalog.regprocedure
                AND NOT t.tgisinternal
                AND t.tgparentid OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                AND (t.tgname OPERATOR(pg_catalog.=) 'cv_protect'
                     OR t.tgname::pg_catalog.text OPERATOR(pg_catalog.~) '^cv_protect_[0-9]+$')
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', r.tgname, tbl);
    END LOOP;
    SELECT pg_catalog.string_agg(pg_catalog.format('%L, %L, %L, %L, %L, %L', p.column_name, p.key_name, p.binding,
                                                   COALESCE(p.context_column, ''), COALESCE(p.blind_index_column, ''),
                                                   COALESCE(p.blind_index_bits::pg_catalog.text, '')),
                                 ', ' ORDER BY a.attnum)
      INTO args
      FROM customer_vault.protected_columns p
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
       AND a.attname OPERATOR(pg_catalog.=) p.column_name AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
     WHERE p.relid OPERATOR(pg_catalog.=) tbl;
    -- the columns the WHEN clause names: every protected, context and blind index column once
    SELECT pg_catalog.string_agg('NEW.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
      INTO cols
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
       AND a.attname OPERATOR(pg_catalog.=) ANY (
             SELECT u.c FROM customer_vault.protected_columns p
              CROSS JOIN LATERAL pg_catalog.unnest(ARRAY[p.column_name, p.context_column, p.blind_index_column]) u(c)
              WHERE p.relid OPERATOR(pg_catalog.=) tbl AND u.c IS NOT NULL);
    IF args IS NOT NULL THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER cv_protect BEFORE INSERT OR UPDATE ON %s FOR EACH ROW'
                                  ' WHEN (ROW(%s) IS NULL OR true)'
                                  ' EXECUTE FUNCTION customer_vault._protect_trigger(%L, %s)',
                                  tbl, cols, 'cv_protect_table', args);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._build_protect_trigger(regclass) IS
    'internal, as the extension owner: (re)makes the one protect trigger of a table from its protected_columns rows';

-- Every trigger calling _protect_trigger (but the clones a trigger on a
-- partitioned table has on its partitions), its arguments (one row per
-- protected column: the per-table trigger cv_protect of 0.5.0 gives one row
-- per group of six arguments after its mark), and whether it is what
-- protect_column makes: on an ordinary or partitioned table, named
-- cv_protect_<attnum> (before 0.5.0) or cv_protect, for a text column, with
-- the binding of that column under the table's current name (a trigger with
-- any other binding computes another column's blind index for whatever is
-- written to it).
CREATE OR REPLACE FUNCTION customer_vault._protect_triggers()
    RETURNS TABLE (trigger_oid oid, relid oid, trigger_name name, column_name text, key_name text,
                   binding text, context_column text, blind_index_column text, blind_index_bits text,
                   checks_out boolean)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.oid, t.tgrelid, t.tgname, g.a[1], g.a[2], g.a[3], NULLIF(g.a[4], ''), NULLIF(g.a[5], ''), NULLIF(g.a[6], ''),
           COALESCE(c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::"char"[])
                    AND pg_catalog.array_length(g.a, 1) OPERATOR(pg_catalog.>=) 5
                    AND att.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.text'::pg_catalog.regtype
                    AND t.tgname::pg_catalog.text OPERATOR(pg_catalog.=)
                        CASE WHEN g.table_form THEN 'cv_protect' ELSE 'cv_protect_' OPERATOR(pg_catalog.||) att.attnum END
                    AND g.a[3] OPERATOR(pg_catalog.=) customer_vault._binding_of(c.oid, g.a[1]::name), false)
      FROM pg_catalog.pg_trigger t
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
     CROSS JOIN LATERAL (SELECT customer_vault._trigger_args(t.tgargs) AS a) ga
     CROSS JOIN LATERAL (
            -- the per-column form: its arguments; the per-table form: each group of six
            SELECT ga.a AS a, false AS table_form
             WHERE ga.a[1] IS DISTINCT FROM 'cv_protect_table'
            UNION ALL
            SELECT ga.a[i OPERATOR(pg_catalog.+) 1 : i OPERATOR(pg_catalog.+) 6], true
              FROM pg_catalog.generate_series(1, pg_catalog.cardinality(ga.a) OPERATOR(pg_catalog.-) 6, 6) i
             WHERE ga.a[1] OPERATOR(pg_catalog.=) 'cv_protect_table'
               AND (pg_catalog.cardinality(ga.a) OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog.%) 6 OPERATOR(pg_catalog.=) 0) g
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

-- The one check of DDL on the views the extension manages: the object a DDL
-- command made or changed (a relation, a rule or trigger on one, a type) is
-- refused when it is, or takes the name of, the <table>_decrypted view of a
-- protected table or the <table>_masked view of a protected or masked table
-- (a type of that name blocks the view's row type), unless the extension
-- itself is (re)defining one of its views.  Called by the guard event
-- trigger, which runs as the extension's owner.
CREATE OR REPLACE FUNCTION customer_vault._guard_managed_view(classid oid, objid oid) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    relid oid;
    onsp oid;
    oname name;
    masking boolean := false;
    kind text;
BEGIN
    -- the masking part's flag exists once 75_masking.sql has run (install, update)
    IF pg_catalog.to_regprocedure('customer_vault._mask_view_active()') IS NOT NULL THEN
        EXECUTE 'SELECT customer_vault._mask_view_active()' INTO masking;
    END IF;
    IF customer_vault._view_refresh_active() OR masking THEN
        RETURN;
    END IF;
    -- the schema and name of the object (of the relation of a rule or trigger)
    relid := CASE classid
               WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN objid
               WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
                 (SELECT w.ev_class FROM pg_catalog.pg_rewrite w WHERE w.oid OPERATOR(pg_catalog.=) objid)
               WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN
                 (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid OPERATOR(pg_catalog.=) objid)
             END;
    IF relid IS NOT NULL THEN
        SELECT c.relnamespace, c.relname INTO onsp, oname FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) relid;
    ELSIF classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass THEN
        SELECT t.typnamespace, t.typname INTO onsp, oname FROM pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) objid;
    END IF;
    IF oname IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                 JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
                WHERE c.relnamespace OPERATOR(pg_catalog.=) onsp
                  AND (c.relname::pg_catalog.text OPERATOR(pg_catalog.||) '_decrypted') OPERATOR(pg_catalog.=) oname::pg_catalog.text) THEN
        kind := 'decrypted';
    ELSIF pg_catalog.to_regclass('customer_vault.mask_rules') IS NOT NULL THEN
        -- (mask_rules exists once 75_masking.sql has run)
        EXECUTE $q$
            SELECT 'masked' FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) $1
               AND (c.relname::pg_catalog.text OPERATOR(pg_catalog.||) '_masked') OPERATOR(pg_catalog.=) $2::pg_catalog.text
               AND (EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                             WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) c.oid)
                    OR EXISTS (SELECT 1 FROM customer_vault.mask_rules m
                                WHERE m.relid::pg_catalog.oid OPERATOR(pg_catalog.=) c.oid))
             LIMIT 1 $q$ INTO kind USING onsp, oname;
    END IF;
    IF kind OPERATOR(pg_catalog.=) 'decrypted' THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('%I.%I is the decrypted view of a protected table and is managed by customer_vault',
                                        (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid OPERATOR(pg_catalog.=) onsp), oname),
            HINT = 'customer_vault.protect_column() defines it; nobody else may redefine, alter or re-own it, or give its name to another object.';
    ELSIF kind OPERATOR(pg_catalog.=) 'masked' THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('%I.%I is the masked view of a table and is managed by customer_vault',
                                        (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid OPERATOR(pg_catalog.=) onsp), oname),
            HINT = 'customer_vault.mask_column() defines it; nobody else may redefine, alter or re-own it, or give its name to another object.';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._guard_managed_view(oid, oid) IS
    'internal: refuses DDL that alters or takes the name of a <table>_decrypted or <table>_masked view, unless the extension is defining it';

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
        -- <table>_decrypted and <table>_masked views (one check for both)
        PERFORM customer_vault._guard_managed_view(r.classid, r.objid);
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._guard_decrypted_views() IS
    'internal: event trigger refusing renames of protected tables and columns, and DDL on decrypted views (or their names) other than the extension''s own';
CREATE EVENT TRIGGER customer_vault_guard_decrypted_views ON ddl_command_end
    EXECUTE FUNCTION customer_vault._guard_decrypted_views();

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
    -- the masked view depends on the columns being rewritten too (MASK)
    PERFORM customer_vault._drop_masked_view(tbl);
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
    bind text;
    citus_table boolean := false;
    args text[];
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
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1)'
           INTO citus_table USING tbl;
    END IF;
    -- the table's one protect trigger, remade with this column in it
    PERFORM customer_vault._build_protect_trigger(tbl);
    IF p.blind_index_column IS NOT NULL THEN
        EXECUTE pg_catalog.format('CREATE INDEX ON %s (%I)', tbl, p.blind_index_column);
        -- no planner statistics: their most common values and estimates would
        -- tell how many rows (RLS-hidden ones too) share a guessed value.
        -- Citus does not propagate SET STATISTICS: on a Citus table it is set
        -- on the coordinator's table (shards made later copy it), the
        -- existing shards are left to the DBA (README)
        IF citus_table THEN
            PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
        END IF;
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 0',
                                  tbl, p.blind_index_column);
        IF citus_table THEN
            PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'on', true);
        END IF;
    END IF;
    -- a Citus table (protect_column did not rewrite it): its shards are
    -- converted now that the trigger is on every shard, each step as the
    -- table's owner (_maint_run), run by Citus on every shard in this
    -- transaction: the trigger seals every plaintext (and fills the blind
    -- index); a rewrite leaves the dead plaintext rows behind in the old
    -- files (removed at commit), without the trigger (PostgreSQL alters no
    -- type of a column a trigger names; the shards stay locked by the
    -- rewrite until commit), then the trigger again and the CHECK that
    -- every value is sealed
    IF citus_table THEN
        args := ARRAY[p.column_name::text, p.key_name, p.binding, p.context_column::text, p.blind_index_column::text,
                      (SELECT a.attnum::text FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) p.column_name
                          AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)];
        PERFORM customer_vault._maint_run('protect_seal', tbl, args);
        EXECUTE pg_catalog.format('DROP TRIGGER cv_protect ON %s', tbl);
        PERFORM customer_vault._maint_run('protect_rewrite', tbl, args);
        PERFORM customer_vault._build_protect_trigger(tbl);
        PERFORM customer_vault._maint_run('protect_check', tbl, args);
    END IF;
    PERFORM customer_vault._build_decrypted_view(tbl, caller);
    -- and <table>_masked, when the table has masking rules (MASK)
    IF EXISTS (SELECT 1 FROM customer_vault.mask_rules m WHERE m.relid OPERATOR(pg_catalog.=) tbl) THEN
        PERFORM customer_vault._build_masked_view(tbl);
    END IF;
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
    citus_table boolean := false;
    distcol name;
    gen record;
    owner_id oid;
    ext_owner_id oid;
    caller_id oid;
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
    -- one trigger seals every protected column of a row from the row as
    -- written: no protected column is the context or blind index of another
    IF EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                WHERE p.relid OPERATOR(pg_catalog.=) tbl
                  AND (col OPERATOR(pg_catalog.=) ANY (ARRAY[p.context_column, p.blind_index_column])
                       OR p.column_name OPERATOR(pg_catalog.=) ANY (ARRAY[protect_column.context_column,
                                                                          protect_column.blind_index_column])
                       OR p.blind_index_column OPERATOR(pg_catalog.=) ANY (ARRAY[protect_column.context_column,
                                                                                 protect_column.blind_index_column]))) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('column %I of table %s cannot be protected with these columns', col, tbl),
            DETAIL = 'A protected column cannot be the context column or the blind index column of another, and two protected columns cannot share a blind index column.';
    END IF;
    -- a Citus table: converted shard by shard by Citus (_finish_protection),
    -- in this transaction: the protect trigger on every shard seals the
    -- existing rows, a rewrite of every shard drops the plaintext's old files
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1)'
           INTO citus_table USING tbl;
    END IF;
    IF citus_table THEN
        -- the distribution column decides where a row lives: it stays plaintext
        EXECUTE 'SELECT pg_catalog.column_to_column_name(d.logicalrelid, d.partkey) FROM pg_catalog.pg_dist_partition d'
                ' WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1 AND d.partkey IS NOT NULL'
           INTO distcol USING tbl;
        IF distcol OPERATOR(pg_catalog.=) ANY (ARRAY[col, blind_index_column]) THEN
            RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                MESSAGE = pg_catalog.format('column %I is the distribution column of table %s', distcol, tbl),
                HINT = 'Protect another column; the distribution column can be its context column.';
        END IF;
        -- the rows are in the shards; rows left in the coordinator's own table
        -- (create_distributed_table copies them and keeps them) would stay
        -- plaintext there
        IF pg_catalog.pg_relation_size(tbl) OPERATOR(pg_catalog.>) 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = pg_catalog.format('the coordinator''s local table of %s still holds data', tbl),
                DETAIL = 'create_distributed_table copied the rows to the shards and left them in the local table, where they would stay plaintext.',
                HINT = pg_catalog.format('Run SELECT truncate_local_data_after_distributing_table(%L) first.', tbl::text);
        END IF;
        -- one role for every shard: Citus refuses to touch a shard as a second
        -- role once another changed it in the transaction ("modified in this
        -- transaction by a different user", or a distributed deadlock on its
        -- locks), and the conversion makes the trigger as the extension's
        -- owner, rewrites the rows as the table's owner (never as anyone
        -- else: the owner's triggers and index expressions run) and adds the
        -- blind index column as the caller; refused before any change unless
        -- all three are the same role (CITUS14)
        SELECT c.relowner, e.extowner INTO owner_id, ext_owner_id
          FROM pg_catalog.pg_class c, pg_catalog.pg_extension e
         WHERE c.oid OPERATOR(pg_catalog.=) tbl AND e.extname OPERATOR(pg_catalog.=) 'customer_vault';
        SELECT r.oid INTO caller_id FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER;
        IF owner_id OPERATOR(pg_catalog.<>) ext_owner_id OR owner_id OPERATOR(pg_catalog.<>) caller_id THEN
            RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                MESSAGE = pg_catalog.format('cannot protect a column of distributed table %s owned by role %s as role %s',
                                            tbl, owner_id::regrole, caller_id::regrole),
                DETAIL = pg_catalog.format('On Citus the shards are converted in one transaction by the extension''s owner (%s, the protect trigger) and the table''s owner (the rewrite), and Citus cannot run one transaction''s commands on a shard as two roles; only the extension''s owner protecting a table it owns converts it.',
                                           ext_owner_id::regrole),
                HINT = 'Protect the column before distributing the table: protect_column() on the local table, then SET citus.enable_unsafe_triggers = on and create_distributed_table() as a superuser.';
        END IF;
        -- the protect trigger goes to every shard (Citus copies triggers of
        -- distributed tables only with this on; for this call only)
        PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    PERFORM customer_vault._check_key(key_name);
    -- a generated column is computed after BEFORE row triggers (NULL there on
    -- INSERT, its new value unseen on UPDATE): cv_protect cannot seal it, bind
    -- to it or fill it
    SELECT u.what, u.c INTO gen
      FROM (VALUES (col, 'column'), (context_column, 'context column'), (blind_index_column, 'blind index column')) u(c, what)
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) u.c
                                    AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
     WHERE a.attgenerated OPERATOR(pg_catalog.<>) ''
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = pg_catalog.format('%s %I of table %s is a generated column', gen.what, gen.c, tbl),
            DETAIL = 'Generated columns are computed after BEFORE row triggers, so the protect trigger would see the old value or NULL.',
            HINT = 'Use an ordinary column (filled by the application or a DEFAULT) as the context, protected or blind index column.';
    END IF;
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

    IF citus_table THEN
        -- a varchar column becomes text first (the protect trigger seals text);
        -- the rows are sealed by _finish_protection once the trigger is there
        IF coltype OPERATOR(pg_catalog.<>) 'text'::regtype THEN
            PERFORM customer_vault._maint_run('protect_rewrite', tbl,
                ARRAY[col::text, key_name, bind, context_column::text, blind_index_column::text, colnum::text]);
        END IF;
    ELSE
        -- one table rewrite: ciphertext replaces plaintext in new files, the old
        -- files (plaintext) are removed at commit, no dead tuples are left behind;
        -- changing the blind index column's type also drops its old statistics.
        -- It runs as the table's owner, security-restricted (_maint_run), so the
        -- owner's CHECK constraints and index expressions evaluated by it run
        -- with the owner's rights, not the caller's.
        PERFORM customer_vault._maint_run('protect', tbl,
            ARRAY[col::text, key_name, bind, context_column::text, blind_index_column::text, colnum::text]);
    END IF;

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
-- The same on a hash-distributed Citus table with the distribution value of
-- the rows sought (any type, cast to the distribution column's type): both
-- of its queries keep the rows holding that value, so Citus sends them to
-- the one shard holding it instead of every shard (CITUS14).
CREATE OR REPLACE FUNCTION customer_vault.lookup(tbl regclass, col name, plaintext text, distribution_value anyelement)
    RETURNS SETOF text
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10
    AS 'MODULE_PATHNAME', 'cv_lookup';
COMMENT ON FUNCTION customer_vault.lookup(regclass, name, text, anyelement) IS
    'lookup() routed to one shard of a hash-distributed Citus table: among the rows whose distribution column equals distribution_value; logged in blind_index_lookups';

CREATE TABLE customer_vault.blind_index_lookups (
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    role_id     oid NOT NULL,
    schema_name name NOT NULL,
    table_name  name NOT NULL,
    column_name name NOT NULL,
    found       bigint NOT NULL
);
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
GRANT EXECUTE ON FUNCTION customer_vault.lookup(regclass, name, text),
    customer_vault.lookup(regclass, name, text, anyelement) TO customer_vault_writer;
-- the reader decrypts, through the decrypted view too
GRANT EXECUTE ON FUNCTION
    customer_vault._open_column(text, text),
    customer_vault.column_blind_index(regclass, name, text),
    customer_vault.lookup(regclass, name, text),
    customer_vault.lookup(regclass, name, text, anyelement)
    TO customer_vault_reader;

-- ==== 40_consent.sql ====

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

-- keyed on role OIDs (regrole): a role created later under a dropped role's
-- name does not inherit its purposes; rows of dropped roles are ignored by
-- consent checks and removed by allow_purpose/disallow_purpose
CREATE TABLE customer_vault.purpose_roles (
    role    regrole NOT NULL,
    purpose text COLLATE "C" NOT NULL REFERENCES customer_vault.purposes ON DELETE CASCADE,
    PRIMARY KEY (role, purpose)
);
COMMENT ON TABLE customer_vault.purpose_roles IS 'the purposes each role (by OID) may act under';

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
COMMENT ON TABLE customer_vault.consent_ledger IS
    'append-only, hash-chained record of every grant and withdrawal of consent (since 0.5.0 the subject as its keyed hash)';

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
COMMENT ON TABLE customer_vault.evidence_subjects IS
    'the plain subject behind each subject hash of the consent ledger and the legal hold log; deleted by forget_subject';

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
COMMENT ON TABLE customer_vault.consent_ledger_head IS
    'the consent ledger''s chain head (last id and hash); its row lock serializes appends';

SELECT pg_catalog.pg_extension_config_dump('customer_vault.purposes', '');
-- rows of dropped roles are not dumped (their OIDs mean nothing elsewhere)
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purpose_roles',
    'WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) role)');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.consent_state', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.consent_ledger', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.consent_ledger_head', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.evidence_subjects', '');

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
CREATE EVENT TRIGGER customer_vault_consent_policy_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE POLICY', 'ALTER POLICY')
    EXECUTE FUNCTION customer_vault._consent_policy_ddl();
CREATE EVENT TRIGGER customer_vault_consent_policy_dropped ON sql_drop
    WHEN TAG IN ('DROP POLICY')
    EXECUTE FUNCTION customer_vault._consent_policy_dropped();

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

-- ==== 45_consent_import.sql ====

---------------------------------------------------------------------------
-- Bulk consent import (import_consents) and the index it finds earlier
-- grants with
---------------------------------------------------------------------------

-- a subject's ledger entries per purpose: the duplicate check of
-- import_consents (and anyone looking for one subject's entries)
-- a hash index: it stores 4-byte hash codes, so no subject is too long for
-- it (a btree on subject refuses entries over ~2.7 kB)
CREATE INDEX consent_ledger_subject_idx ON customer_vault.consent_ledger USING hash (subject);
-- the same for entries of hash version 2 (0.5.0), which store the subject's
-- keyed hash: a hash index too.  Its keys are uniformly random 32-byte values
-- and every lookup is by equality (duplicate check, erasure, export), so a
-- btree only paid for order nobody reads: 48-byte tuples inserted at random
-- leaves, twice the size of the hash index's 4-byte codes (205 MB against
-- 97 MB at 2.8 million entries), and 100,000 probes plus inserts took 1.6x
-- as long at that size (part GRANTIMPORT, issue 15: import_consents grew
-- faster than linearly with the ledger).
CREATE INDEX consent_ledger_subject_hash_idx ON customer_vault.consent_ledger USING hash (subject_hash);


-- Not SECURITY DEFINER, on purpose: the caller's query runs with the
-- caller's rights and settings; only the writes (src/import.c) run as the
-- ledger's owner, security-restricted, after the rows are read and checked.
-- Not STRICT: NULL arguments get errors.
CREATE OR REPLACE FUNCTION customer_vault.import_consents(query text, allow_duplicates boolean DEFAULT false)
    RETURNS bigint
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_import_consents';
COMMENT ON FUNCTION customer_vault.import_consents(text, boolean) IS
    'records the opt-ins a query returns (subject, purpose, evidence[, granted_at][, valid_until]) in one pass, all or nothing; rows already in the ledger are skipped unless allow_duplicates; returns the entries written';

-- the same roles as grant_consent
GRANT EXECUTE ON FUNCTION customer_vault.import_consents(text, boolean)
    TO customer_vault_admin, customer_vault_writer;

-- ==== 50_retention.sql ====

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
COMMENT ON TABLE customer_vault.retention_policies IS
    'how long rows of each table are kept, and what happens to them then; relid is the table (its names cannot change while it has a policy)';

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
COMMENT ON TABLE customer_vault.evidence_heads IS
    'internal: the last id and hash of each append-only evidence chain (legal_hold_events, purge_log_entries)';

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
COMMENT ON TABLE customer_vault.legal_hold_events IS
    'append-only, hash-chained record of every legal hold placed and released (who, when, why)';

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
COMMENT ON TABLE customer_vault.purge_log_entries IS
    'append-only, hash-chained: per table and purge run a start entry and the entry that ends it (done, failed or interrupted)';

SELECT pg_catalog.pg_extension_config_dump('customer_vault.retention_policies', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.evidence_heads', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.legal_hold_events', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purge_log_entries', '');

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

-- ==== 60_maint.sql ====

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

-- ==== 70_audit.sql ====

---------------------------------------------------------------------------
-- The decrypt audit (src/audit.c): customer_vault.audit_decrypt = off |
-- statement | value.  Backends count the values each key opens per
-- statement and queue one record per statement and key in shared memory;
-- a background worker per database writes them here, in transactions of
-- its own (so they survive the reader's ROLLBACK, READ ONLY and
-- SERIALIZABLE transactions), through _access_log_append: the single
-- writer of an append-only, hash-chained table.
---------------------------------------------------------------------------

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

-- ==== 70_subjects.sql ====

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
COMMENT ON TABLE customer_vault.subject_tables IS
    'tables holding data subjects'' rows and the column naming the subject (register_subject_table); relid is the table';

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
CREATE EVENT TRIGGER customer_vault_subject_tables_dropped ON sql_drop
    EXECUTE FUNCTION customer_vault._subject_tables_dropped();

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
CREATE EVENT TRIGGER customer_vault_subject_tables_guard ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION customer_vault._subject_tables_guard();

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

-- ==== 75_brake.sql ====
---------------------------------------------------------------------------
-- The exfiltration brake and stale accounts (src/brake.c): per-role decrypt
-- limits are settings (customer_vault.decrypt_limit, decrypt_rate_limit) set
-- per role by set_decrypt_limit(); login and decrypt times per role live in
-- shared memory (persisted by the server); locks of stale roles are recorded
-- here, append-only.
---------------------------------------------------------------------------
CREATE TABLE customer_vault.role_lock_events (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp(),
    role_id oid NOT NULL,
    role_name name NOT NULL,
    last_seen timestamptz,
    idle interval NOT NULL,
    reason text NOT NULL,
    locked_by oid NOT NULL,
    locked_by_name name NOT NULL
);
COMMENT ON TABLE customer_vault.role_lock_events IS
    'append-only: every role set NOLOGIN by lock_stale_roles(), when, why and by whom (the session user)';
SELECT pg_catalog.pg_extension_config_dump('customer_vault.role_lock_events', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.role_lock_events_id_seq', '');

CREATE OR REPLACE FUNCTION customer_vault._role_lock_events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
        MESSAGE = pg_catalog.format('role_lock_events is append-only: %s is not allowed', TG_OP),
        HINT = 'Locks are recorded by customer_vault.lock_stale_roles(); unlock a role with ALTER ROLE ... LOGIN.';
END
$$;
COMMENT ON FUNCTION customer_vault._role_lock_events_append_only() IS
    'internal: refuses UPDATE, DELETE and TRUNCATE of role_lock_events';
CREATE OR REPLACE TRIGGER role_lock_events_no_update_delete BEFORE UPDATE OR DELETE ON customer_vault.role_lock_events
    FOR EACH ROW EXECUTE FUNCTION customer_vault._role_lock_events_append_only();
CREATE OR REPLACE TRIGGER role_lock_events_no_truncate BEFORE TRUNCATE ON customer_vault.role_lock_events
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._role_lock_events_append_only();
ALTER TABLE customer_vault.role_lock_events ENABLE ALWAYS TRIGGER role_lock_events_no_update_delete;
ALTER TABLE customer_vault.role_lock_events ENABLE ALWAYS TRIGGER role_lock_events_no_truncate;

-- ---------- decrypt limits ----------

-- SECURITY DEFINER (the extension's owner, a superuser): the limits are
-- superuser-only settings, so a role can neither raise nor reset its own; the
-- admin sets them here, for one role at a time, and nothing else.
CREATE OR REPLACE FUNCTION customer_vault.set_decrypt_limit(role regrole, per_statement integer,
                                                     per_minute integer DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rname name;
    login boolean;
BEGIN
    PERFORM customer_vault._coordinator_only('set_decrypt_limit()');
    IF role IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'role must not be null';
    END IF;
    SELECT r.rolname, r.rolcanlogin INTO rname, login FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) role::oid;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object', MESSAGE = 'role does not exist';
    END IF;
    -- PostgreSQL applies the settings of the login role only: a limit on a
    -- group (NOLOGIN) role would bind none of its members, so it is refused
    -- (clearing one, with NULLs, stays allowed)
    IF NOT login AND (per_statement IS NOT NULL OR per_minute IS NOT NULL) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('role %I cannot log in: a decrypt limit on it would bind none of its members', rname),
            DETAIL = 'PostgreSQL applies the settings of the login role only, not those of the roles it is a member of.',
            HINT = 'Set the limits on each login role, for example every member of the group.';
    END IF;
    IF per_statement OPERATOR(pg_catalog.<) 0 OR per_minute OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'decrypt limits must be zero (no limit) or positive',
            HINT = 'Pass NULL to go back to the server''s default.';
    END IF;
    IF per_statement IS NULL THEN
        EXECUTE pg_catalog.format('ALTER ROLE %I RESET customer_vault.decrypt_limit', rname);
    ELSE
        EXECUTE pg_catalog.format('ALTER ROLE %I SET customer_vault.decrypt_limit = %s', rname, per_statement);
    END IF;
    IF per_minute IS NULL THEN
        EXECUTE pg_catalog.format('ALTER ROLE %I RESET customer_vault.decrypt_rate_limit', rname);
    ELSE
        EXECUTE pg_catalog.format('ALTER ROLE %I SET customer_vault.decrypt_rate_limit = %s', rname, per_minute);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault.set_decrypt_limit(regrole, integer, integer) IS
    'sets the most values one statement (per_statement) and one minute over all sessions (per_minute) may decrypt for a login role; 0 = no limit, NULL = the server default; takes effect at the role''s next login';

CREATE OR REPLACE VIEW customer_vault.decrypt_limits AS
SELECT r.rolname AS role,
       (SELECT pg_catalog.split_part(c, '=', 2)::integer FROM pg_catalog.unnest(s.setconfig) c
         WHERE c LIKE 'customer\_vault.decrypt\_limit=%') AS per_statement,
       (SELECT pg_catalog.split_part(c, '=', 2)::integer FROM pg_catalog.unnest(s.setconfig) c
         WHERE c LIKE 'customer\_vault.decrypt\_rate\_limit=%') AS per_minute
  FROM pg_catalog.pg_db_role_setting s
  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) s.setrole
 WHERE s.setdatabase OPERATOR(pg_catalog.=) 0
   AND r.rolcanlogin
   AND EXISTS (SELECT 1 FROM pg_catalog.unnest(s.setconfig) c WHERE c LIKE 'customer\_vault.decrypt\_%');
COMMENT ON VIEW customer_vault.decrypt_limits IS
    'decrypt limits set per login role (set_decrypt_limit or ALTER ROLE ... SET); roles not listed have the server default; a setting on a role that cannot log in binds no one and is not listed';

-- ---------- role activity ----------

CREATE OR REPLACE FUNCTION customer_vault._role_activity()
    RETURNS TABLE(role_id oid, noticed timestamptz, last_login timestamptz, last_decrypt timestamptz,
                  refused bigint, last_refused timestamptz)
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'cv_role_activity';
COMMENT ON FUNCTION customer_vault._role_activity() IS
    'internal: per tracked role the time it was first noticed, its last login, last decrypt and brake refusals (shared memory)';

CREATE OR REPLACE FUNCTION customer_vault._activity_tracking_since() RETURNS timestamptz
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'cv_activity_tracking_since';
COMMENT ON FUNCTION customer_vault._activity_tracking_since() IS
    'internal: when role activity tracking began (the first server start without its file)';

CREATE OR REPLACE FUNCTION customer_vault._activity_notice(roles oid[]) RETURNS integer
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_activity_notice';
COMMENT ON FUNCTION customer_vault._activity_notice(oid[]) IS
    'internal: starts tracking roles not tracked yet (a role never seen is idle from then on); returns how many were new';

CREATE OR REPLACE FUNCTION customer_vault._activity_shift(by interval) RETURNS void
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_activity_shift';
COMMENT ON FUNCTION customer_vault._activity_shift(interval) IS
    'internal, superuser only: moves every tracked time back by whole days (tests age role activity with it)';

CREATE OR REPLACE FUNCTION customer_vault._activity_save() RETURNS void
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_activity_save_now';
COMMENT ON FUNCTION customer_vault._activity_save() IS
    'internal, superuser only: writes the role activity file now (it is written at shutdown and every 5 minutes)';

CREATE OR REPLACE FUNCTION customer_vault._lock_exempt_roles() RETURNS name[]
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_lock_exempt_role_names';
COMMENT ON FUNCTION customer_vault._lock_exempt_roles() IS
    'internal: customer_vault.lock_exempt_roles as an array of role names';

CREATE OR REPLACE VIEW customer_vault.role_activity AS
SELECT r.rolname AS role, a.last_login, a.last_decrypt,
       COALESCE(a.refused, 0) AS decrypt_refusals, a.last_refused
  FROM pg_catalog.pg_roles r
  LEFT JOIN customer_vault._role_activity() a ON a.role_id OPERATOR(pg_catalog.=) r.oid
 WHERE r.rolcanlogin OR a.role_id IS NOT NULL;
COMMENT ON VIEW customer_vault.role_activity IS
    'per login role (and every role seen decrypting) its last successful login, last decrypt, and the statements the decrypt brake stopped';

-- ---------- stale roles ----------

-- the idle period of stale_roles and lock_stale_roles: positive, at least a day
CREATE OR REPLACE FUNCTION customer_vault._check_idle(idle interval) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM customer_vault._check_period(idle, 'idle');
    IF idle OPERATOR(pg_catalog.<) interval '1 day' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'idle must be at least one day',
            HINT = 'For example ''90 days''.';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._check_idle(interval) IS
    'internal: refuses an idle period that is not positive in every field, under a day or over 200 years';

-- SECURITY DEFINER: reads the role activity in shared memory and notes roles
-- not tracked yet; what it answers is visible to its callers (admin, auditor)
-- through pg_roles and has_*_privilege anyway.
CREATE OR REPLACE FUNCTION customer_vault.stale_roles(idle interval DEFAULT '90 days')
    RETURNS TABLE(role name, last_seen timestamptz, can_decrypt boolean)
    LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
    masked regrole := pg_catalog.to_regrole('customer_vault_masked_reader');
BEGIN
    PERFORM customer_vault._check_idle(idle);
    cutoff := pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) idle;
    PERFORM customer_vault._activity_notice(ARRAY(SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolcanlogin));
    RETURN QUERY
    WITH tables AS (
        SELECT DISTINCT p.relid::oid AS relid FROM customer_vault.protected_columns p
        UNION
        SELECT l.objoid FROM pg_catalog.pg_seclabel l
         WHERE l.provider OPERATOR(pg_catalog.=) 'customer_vault'
           AND l.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
           AND l.objsubid OPERATOR(pg_catalog.>) 0
    ), logins AS (
        SELECT r.oid, r.rolname,
               r.rolsuper OR pg_catalog.pg_has_role(r.oid, 'customer_vault_reader', 'MEMBER') AS decrypts,
               r.rolsuper
               OR (masked IS NOT NULL AND pg_catalog.pg_has_role(r.oid, masked::oid, 'MEMBER'))
               OR EXISTS (SELECT 1 FROM tables t
                           WHERE pg_catalog.has_any_column_privilege(r.oid, t.relid, 'SELECT')) AS reads
          FROM pg_catalog.pg_roles r
         WHERE r.rolcanlogin
    )
    SELECT l.rolname,
           CASE WHEN a.last_login IS NULL THEN a.last_decrypt
                WHEN a.last_decrypt IS NULL THEN a.last_login
                ELSE pg_catalog.timestamptz_larger(a.last_login, a.last_decrypt) END,
           l.decrypts
      FROM logins l
      LEFT JOIN customer_vault._role_activity() a ON a.role_id OPERATOR(pg_catalog.=) l.oid
     WHERE (l.decrypts OR l.reads)
       -- a role with a session open now is not idle (a pooled connection
       -- logged in long ago must not be locked out at its next reconnect)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity s
                        WHERE s.usesysid OPERATOR(pg_catalog.=) l.oid)
       AND (a.last_login IS NULL OR a.last_login OPERATOR(pg_catalog.<) cutoff)
       AND (a.last_decrypt IS NULL OR a.last_decrypt OPERATOR(pg_catalog.<) cutoff)
       -- never seen: idle since it was first noticed
       AND COALESCE(a.last_login, a.last_decrypt, a.noticed, pg_catalog.statement_timestamp())
           OPERATOR(pg_catalog.<) cutoff
     ORDER BY l.rolname;
END
$$;
COMMENT ON FUNCTION customer_vault.stale_roles(interval) IS
    'login roles that can reach protected data (superuser, reader or masked reader membership, SELECT on a protected or PII-labelled table), have no session open, and have neither logged in nor decrypted within idle (a role never seen: idle since it was first noticed)';

-- SECURITY DEFINER (the extension's owner): sets NOLOGIN, which the admin
-- cannot do otherwise, but only on roles stale_roles() returns, never on a
-- superuser, the bootstrap superuser, the calling roles, the extension's
-- owner or roles, or a role in customer_vault.lock_exempt_roles.
CREATE OR REPLACE FUNCTION customer_vault._lock_stale_roles(idle interval, dry_run boolean)
    RETURNS SETOF name
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
DECLARE
    s record;
    r record;
    exempt name[] := customer_vault._lock_exempt_roles();
    owner oid;
    -- the role the caller acts as (SET ROLE), derived here, never passed in:
    -- the role GUC survives SECURITY DEFINER; 'none' = no SET ROLE
    acting name := pg_catalog.current_setting('role');
BEGIN
    PERFORM customer_vault._coordinator_only('lock_stale_roles()');
    IF acting OPERATOR(pg_catalog.=) 'none' THEN
        acting := SESSION_USER;
    END IF;
    IF dry_run IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'dry_run must not be null';
    END IF;
    PERFORM customer_vault._check_idle(idle);
    SELECT e.extowner INTO owner FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'customer_vault';
    FOR s IN SELECT * FROM customer_vault.stale_roles(idle) LOOP
        SELECT a.oid, a.rolname, a.rolsuper, a.rolcanlogin INTO r
          FROM pg_catalog.pg_authid a WHERE a.rolname OPERATOR(pg_catalog.=) s.role;
        CONTINUE WHEN NOT FOUND OR r.rolsuper OR NOT r.rolcanlogin
            OR r.oid OPERATOR(pg_catalog.=) 10
            OR r.rolname OPERATOR(pg_catalog.=) acting
            OR r.rolname OPERATOR(pg_catalog.=) SESSION_USER
            OR r.oid OPERATOR(pg_catalog.=) owner
            OR r.rolname OPERATOR(pg_catalog.=) ANY (exempt)
            OR r.rolname::text LIKE 'customer\_vault\_%';
        IF NOT dry_run THEN
            EXECUTE pg_catalog.format('ALTER ROLE %I NOLOGIN', r.rolname);
            INSERT INTO customer_vault.role_lock_events (role_id, role_name, last_seen, idle, reason, locked_by, locked_by_name)
            VALUES (r.oid, r.rolname, s.last_seen, idle,
                    CASE WHEN s.last_seen IS NULL
                         THEN pg_catalog.format('never seen since tracking began; idle longer than %s', idle)
                         ELSE pg_catalog.format('no login or decrypt since %s; idle longer than %s', s.last_seen, idle) END,
                    (SELECT a.oid FROM pg_catalog.pg_authid a WHERE a.rolname OPERATOR(pg_catalog.=) SESSION_USER),
                    SESSION_USER);
            RAISE LOG 'customer_vault: role % set NOLOGIN by lock_stale_roles (idle %)', pg_catalog.quote_ident(r.rolname), idle;
        END IF;
        RETURN NEXT r.rolname;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._lock_stale_roles(interval, boolean) IS
    'internal: the work of lock_stale_roles; the session user and the role it acts as (SET ROLE) are never locked';

CREATE OR REPLACE FUNCTION customer_vault.lock_stale_roles(idle interval DEFAULT '90 days', dry_run boolean DEFAULT true)
    RETURNS SETOF name
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM customer_vault._lock_stale_roles(idle, dry_run)
$$;
COMMENT ON FUNCTION customer_vault.lock_stale_roles(interval, boolean) IS
    'sets NOLOGIN on the roles stale_roles(idle) returns, except superusers, the caller, the extension''s roles and customer_vault.lock_exempt_roles; records each in role_lock_events; dry_run (the default) only lists them';

CREATE OR REPLACE FUNCTION customer_vault.schedule_lock_stale_roles(idle interval DEFAULT '90 days',
                                                             schedule text DEFAULT '30 4 * * *')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint;
BEGIN
    PERFORM customer_vault._require_pg_cron();
    PERFORM customer_vault._check_idle(idle);
    IF schedule IS NULL OR pg_catalog.btrim(schedule) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'schedule must not be empty';
    END IF;
    PERFORM customer_vault._check_cron_schedule(schedule);
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
       INTO job USING 'customer_vault_lock_stale_roles', schedule,
                      pg_catalog.format('SELECT customer_vault.lock_stale_roles(%L::interval, false)', idle);
    RETURN job;
END
$$;
COMMENT ON FUNCTION customer_vault.schedule_lock_stale_roles(interval, text) IS
    'creates or replaces the pg_cron job customer_vault_lock_stale_roles running lock_stale_roles(idle, false); returns its id';

CREATE OR REPLACE FUNCTION customer_vault.unschedule_lock_stale_roles() RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    done boolean;
BEGIN
    PERFORM customer_vault._require_pg_cron();
    IF NOT EXISTS (SELECT 1 FROM cron.job WHERE jobname = 'customer_vault_lock_stale_roles' AND username = current_user) THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT cron.unschedule($1)' INTO done USING 'customer_vault_lock_stale_roles';
    RETURN done;
END
$$;
COMMENT ON FUNCTION customer_vault.unschedule_lock_stale_roles() IS
    'removes the pg_cron job customer_vault_lock_stale_roles; false if there was none';

-- Privileges of this concern: the admin sets limits, reads activity, and
-- locks (or schedules the locking of) stale roles; the auditor reads the
-- activity, the limits, stale roles and the lock log.  _role_activity is what
-- the role_activity view reads (functions in a view run with the reader's
-- EXECUTE right), so both get it.
GRANT EXECUTE ON FUNCTION
    customer_vault.set_decrypt_limit(regrole, integer, integer),
    customer_vault._role_activity(),
    customer_vault.stale_roles(interval),
    customer_vault.lock_stale_roles(interval, boolean),
    customer_vault._lock_stale_roles(interval, boolean),
    customer_vault.schedule_lock_stale_roles(interval, text),
    customer_vault.unschedule_lock_stale_roles(),
    customer_vault._check_idle(interval)
    TO customer_vault_admin;
GRANT SELECT ON customer_vault.role_activity, customer_vault.decrypt_limits, customer_vault.role_lock_events
    TO customer_vault_admin;
GRANT EXECUTE ON FUNCTION customer_vault._role_activity(), customer_vault.stale_roles(interval)
    TO customer_vault_auditor;
GRANT SELECT ON customer_vault.role_activity, customer_vault.decrypt_limits, customer_vault.role_lock_events
    TO customer_vault_auditor;

-- ==== 75_erasure.sql ====

---------------------------------------------------------------------------
-- Erasure (GDPR art. 17): forget_subject and its receipts
---------------------------------------------------------------------------

-- append-only, hash-chained: one receipt per forget_subject call; the subject
-- only as its keyed hash (_subject_hash), so "was X erased?" is answered
-- without keeping X
CREATE TABLE customer_vault.erasure_receipts (
    id           bigint PRIMARY KEY,
    at           timestamptz NOT NULL,
    role_id      oid NOT NULL,
    session_role name NOT NULL,
    acting_role  name NOT NULL,
    subject_hash bytea NOT NULL CHECK (pg_catalog.length(subject_hash) = 32),
    reason       text NOT NULL CHECK (pg_catalog.btrim(reason) <> ''),
    counts       jsonb NOT NULL,
    prev_hash    bytea,
    hash         bytea NOT NULL
);
CREATE INDEX erasure_receipts_subject_hash_idx ON customer_vault.erasure_receipts (subject_hash);
-- the last receipt's id and hash, updated under its row lock by forget_subject
-- only (nobody else has any privilege on it)
CREATE TABLE customer_vault.erasure_receipts_head (
    chain     text PRIMARY KEY CHECK (chain = 'erasure_receipts'),
    last_id   bigint NOT NULL,
    last_hash bytea
);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.erasure_receipts', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.erasure_receipts_head', '');
COMMENT ON TABLE customer_vault.erasure_receipts IS
    'append-only, hash-chained receipts of forget_subject: who, when, why, what was deleted, anonymized or kept per table; the subject only as a keyed hash';
COMMENT ON TABLE customer_vault.erasure_receipts_head IS
    'internal: the last id and hash of the erasure receipt chain';

CREATE OR REPLACE FUNCTION customer_vault._receipts_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
        MESSAGE = pg_catalog.format('%s is append-only: %s is not allowed', TG_TABLE_NAME, TG_OP),
        HINT = 'Receipts are written by customer_vault.forget_subject() only.';
END
$$;
COMMENT ON FUNCTION customer_vault._receipts_append_only() IS
    'internal: refuses UPDATE, DELETE and TRUNCATE of erasure_receipts';
CREATE OR REPLACE TRIGGER erasure_receipts_no_update_delete BEFORE UPDATE OR DELETE ON customer_vault.erasure_receipts
    FOR EACH ROW EXECUTE FUNCTION customer_vault._receipts_append_only();
CREATE OR REPLACE TRIGGER erasure_receipts_no_truncate BEFORE TRUNCATE ON customer_vault.erasure_receipts
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._receipts_append_only();
ALTER TABLE customer_vault.erasure_receipts ENABLE ALWAYS TRIGGER erasure_receipts_no_update_delete;
ALTER TABLE customer_vault.erasure_receipts ENABLE ALWAYS TRIGGER erasure_receipts_no_truncate;

-- the chained hash of a receipt (over every column but hash): SHA-256 of the
-- previous hash and a canonical JSON array, times as integer microseconds
-- (no SET clause, every name qualified, STABLE like the jsonb_build_array and
-- EXTRACT it calls: inlined into forget_subject's statement)
CREATE OR REPLACE FUNCTION customer_vault._receipt_hash(e customer_vault.erasure_receipts) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.sha256(COALESCE(e.prev_hash, ''::bytea) OPERATOR(pg_catalog.||) pg_catalog.convert_to(
        pg_catalog.jsonb_build_array('erasure_receipts', e.id,
            (EXTRACT(epoch FROM e.at) OPERATOR(pg_catalog.*) 1000000)::bigint,
            e.role_id::bigint, e.session_role, e.acting_role, pg_catalog.encode(e.subject_hash, 'hex'),
            e.reason, e.counts)::text, 'UTF8'))
$$;
COMMENT ON FUNCTION customer_vault._receipt_hash(customer_vault.erasure_receipts) IS
    'internal: the chained hash of one erasure receipt';

-- Locks the head of the receipt chain (only the extension's owner can) and
-- returns the next id and the previous hash; held to the end of the
-- transaction, so receipts are appended one at a time.
CREATE OR REPLACE FUNCTION customer_vault._receipt_next(OUT next_id bigint, OUT prev_hash bytea)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT h.last_id + 1, h.last_hash INTO next_id, prev_hash
      FROM customer_vault.erasure_receipts_head h WHERE h.chain = 'erasure_receipts' FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO customer_vault.erasure_receipts_head AS h (chain, last_id, last_hash)
        VALUES ('erasure_receipts', 0, NULL) ON CONFLICT (chain) DO NOTHING;
        SELECT h.last_id + 1, h.last_hash INTO STRICT next_id, prev_hash
          FROM customer_vault.erasure_receipts_head h WHERE h.chain = 'erasure_receipts' FOR UPDATE;
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._receipt_next() IS
    'internal: locks the head of the erasure receipt chain; returns the next id and the previous hash';

-- a receipt as forget_subject returns it (no SET clause, every name
-- qualified, STABLE like jsonb_build_object: inlined)
CREATE OR REPLACE FUNCTION customer_vault._receipt_json(e customer_vault.erasure_receipts) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.jsonb_build_object('receipt_id', e.id, 'at', e.at, 'role', e.session_role,
                                         'acting_role', e.acting_role,
                                         'subject_hash', pg_catalog.encode(e.subject_hash, 'hex'),
                                         'reason', e.reason) OPERATOR(pg_catalog.||) e.counts
           OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('hash', pg_catalog.encode(e.hash, 'hex'))
$$;
COMMENT ON FUNCTION customer_vault._receipt_json(customer_vault.erasure_receipts) IS
    'internal: an erasure receipt as a JSON document';

-- The first broken receipt: a hash that does not match, a link to anything
-- but the previous receipt, a gap, or a chain whose last receipt is not the
-- head recorded by the last append (receipts removed or added behind the
-- function's back).  NULL when intact.
CREATE OR REPLACE FUNCTION customer_vault.verify_receipts() RETURNS bigint
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    broken bigint;
    last_id bigint;
    last_hash bytea;
    h customer_vault.erasure_receipts_head;
BEGIN
    SELECT e.id INTO broken
      FROM (SELECT r.id, r.hash, r.prev_hash, pg_catalog.lag(r.hash) OVER w AS expected_prev,
                   COALESCE(pg_catalog.lag(r.id) OVER w, 0) AS previous_id,
                   customer_vault._receipt_hash(r) AS recomputed
              FROM customer_vault.erasure_receipts r WINDOW w AS (ORDER BY r.id)) e
     WHERE e.hash IS DISTINCT FROM e.recomputed OR e.prev_hash IS DISTINCT FROM e.expected_prev
        OR e.id <> e.previous_id + 1
     ORDER BY e.id LIMIT 1;
    IF broken IS NOT NULL THEN
        RETURN broken;
    END IF;
    SELECT r.id, r.hash INTO last_id, last_hash FROM customer_vault.erasure_receipts r ORDER BY r.id DESC LIMIT 1;
    SELECT * INTO h FROM customer_vault.erasure_receipts_head eh WHERE eh.chain = 'erasure_receipts';
    IF h.chain IS NULL OR h.last_id = 0 THEN
        IF last_id IS NULL THEN
            RETURN NULL;                    -- nothing was ever appended
        END IF;
        RETURN 1;                           -- receipts without a head: none came through forget_subject
    END IF;
    IF last_id IS NULL OR last_id < h.last_id THEN
        RETURN COALESCE(last_id, 0) + 1;    -- receipts removed at the end
    ELSIF last_id > h.last_id THEN
        RETURN h.last_id + 1;               -- receipts added behind the function's back
    ELSIF last_hash IS DISTINCT FROM h.last_hash THEN
        RETURN last_id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION customer_vault.verify_receipts() IS
    'NULL when the hash chain of erasure_receipts is intact, else the id of the first broken (or missing) receipt';

-- Whether two subject texts name the same subject: equal as text, or equal
-- as values of the type of some registered subject column ('42' and '042'
-- in a bigint column).  Only the built-in subject types are compared.
CREATE OR REPLACE FUNCTION customer_vault._same_subject(a text, b text) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ record;
    same boolean;
BEGIN
    IF a IS NULL OR b IS NULL THEN
        RETURN false;
    END IF;
    IF a = b THEN
        RETURN true;
    END IF;
    FOR typ IN SELECT DISTINCT ty.oid::regtype AS t, pg_catalog.format('%I.%I', tn.nspname, ty.typname) AS name
                 FROM (SELECT s.relid::oid AS rel, s.subject_column AS col FROM customer_vault.subject_tables s
                       UNION SELECT rp.relid::oid, rp.subject_column FROM customer_vault.retention_policies rp
                        WHERE rp.subject_column IS NOT NULL) c
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.rel AND a.attname = c.col AND NOT a.attisdropped
                 JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
                 JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace LOOP
        CONTINUE WHEN NOT customer_vault._subject_type_ok(typ.t)
                 OR typ.t IN ('pg_catalog.text'::regtype, 'pg_catalog.varchar'::regtype);
        IF customer_vault._casts_to(a, typ.t) AND customer_vault._casts_to(b, typ.t) THEN
            EXECUTE pg_catalog.format('SELECT %L::%s OPERATOR(pg_catalog.=) %L::%s', a, typ.name, b, typ.name)
               INTO same;
            IF same THEN
                RETURN true;
            END IF;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
COMMENT ON FUNCTION customer_vault._same_subject(text, text) IS
    'internal: whether two subject texts are equal as text or as values of a registered subject column''s type';

-- The plan of an erasure as this session keeps it (src/forget.c builds it
-- from the catalog and the registry, never from anything a caller passes,
-- and keeps its statements prepared until a planned table, the registry,
-- the retention policies or a label changes): one row per table of the
-- subject reach (the same one _subject_reach() gives: registered tables by
-- their subject column, every other table at its shortest distance in
-- foreign keys, each key towards a table of lower depth), with the
-- statements forget_subject runs on it as its owner.  Statements read alias
-- t; depth 0: $1 is the subject (text, converted to the subject column's
-- type); depth n: $1.. are text[] of the keys its foreign keys reference in
-- the parents' rows of the subject, each column in its own type, compared
-- with the key's FK = FK operator (so the indexes of the key columns are
-- used).  For the tests (EXPLAIN of what runs) and the curious admin: it
-- shows statements, never data.
--   key_pos      position in the order keys are read (parents first)
--   change_pos   position in the order tables are changed: a table goes
--                once no other pending table references it (in a cycle of
--                foreign keys, the deepest first)
--   subject_type the subject column's type (depth 0)
--   keys_sql     the keys this table's rows give its children in the reach
--                (one text[] per key column, NULL when no child needs any)
--   param_src    per parameter ($1..): key_pos of the parent, column of its keys_sql
--   act_sql      DELETE, anonymizing UPDATE or count(*), as treatment says
--   count_sql    count(*) of the subject's rows (a kept table a foreign key
--                would cascade a deletion into: danger = conname, parent,
--                confdeltype; a table the caller may not change)
--   pii          the PII-labelled columns the anonymizing UPDATE clears
CREATE OR REPLACE FUNCTION customer_vault._erasure_plan()
    RETURNS TABLE(relid oid, depth integer, treatment text, key_pos integer, change_pos integer, subject_type oid,
                  keys_sql text, param_src integer[], act_sql text, count_sql text, danger text[], pii text)
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_erasure_plan';
COMMENT ON FUNCTION customer_vault._erasure_plan() IS
    'internal: the statements of an erasure per table of the subject reach, as this session keeps them prepared (src/forget.c)';

-- The walk of an erasure (src/forget.c): every table of the reach, keys
-- read parents first and changes made children first, each as the table's
-- owner inside a security-restricted operation, with the statements of
-- _erasure_plan() kept prepared per session.  Checks the calling role's
-- privilege on each table and refuses a kept table a foreign key would
-- cascade into; the counts per table as a JSON object.  Not STRICT: a NULL
-- is an error raised by the function.  Executable by nobody: forget_subject
-- runs the same walk in C, with the shreds, withdrawals and receipt.
CREATE OR REPLACE FUNCTION customer_vault._forget_walk(subject text, caller oid) RETURNS text
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_forget_walk';
COMMENT ON FUNCTION customer_vault._forget_walk(text, oid) IS
    'internal: forget_subject''s changes to every table of the subject reach, as each table''s owner; the counts per table as JSON';

-- Triggers on the subject registry and the retention policies: every
-- session builds its kept erasure plan again (relcache invalidation) once a
-- row changed.  Row triggers (and a statement trigger for TRUNCATE), not a
-- statement trigger for every DML: the sql_drop event triggers delete from
-- these tables on every DROP of anything, by any role (a temporary
-- function's), and a statement that deleted nothing sent the invalidation
-- all the same (review rev-walk F2: it made walks in flight fail).
CREATE OR REPLACE FUNCTION customer_vault._erasure_invalidate() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'cv_erasure_invalidate';
COMMENT ON FUNCTION customer_vault._erasure_invalidate() IS
    'internal: trigger telling every session to build its erasure plan again';
CREATE OR REPLACE TRIGGER subject_tables_erasure_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON customer_vault.subject_tables
    FOR EACH ROW EXECUTE FUNCTION customer_vault._erasure_invalidate();
CREATE OR REPLACE TRIGGER subject_tables_erasure_invalidate_truncate
    AFTER TRUNCATE ON customer_vault.subject_tables
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._erasure_invalidate();
CREATE OR REPLACE TRIGGER retention_policies_erasure_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON customer_vault.retention_policies
    FOR EACH ROW EXECUTE FUNCTION customer_vault._erasure_invalidate();
CREATE OR REPLACE TRIGGER retention_policies_erasure_invalidate_truncate
    AFTER TRUNCATE ON customer_vault.retention_policies
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._erasure_invalidate();
ALTER TABLE customer_vault.subject_tables ENABLE ALWAYS TRIGGER subject_tables_erasure_invalidate;
ALTER TABLE customer_vault.subject_tables ENABLE ALWAYS TRIGGER subject_tables_erasure_invalidate_truncate;
ALTER TABLE customer_vault.retention_policies ENABLE ALWAYS TRIGGER retention_policies_erasure_invalidate;
ALTER TABLE customer_vault.retention_policies ENABLE ALWAYS TRIGGER retention_policies_erasure_invalidate_truncate;

-- What forget_subject does with one table's rows of the subject: its
-- retention action decides (anonymize: kept with PII-labelled columns set
-- NULL; shred: kept, the subject's key is shredded anyway; delete or no
-- policy: deleted).
CREATE OR REPLACE FUNCTION customer_vault._erasure_treatment(tbl regclass) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE (SELECT rp.action FROM customer_vault.retention_policies rp WHERE rp.relid::oid = tbl::oid)
                WHEN 'anonymize' THEN 'anonymize'
                WHEN 'shred' THEN 'keep'
                ELSE 'delete' END
$$;
COMMENT ON FUNCTION customer_vault._erasure_treatment(regclass) IS
    'internal: delete, anonymize or keep: what forget_subject does with a table''s rows of the subject (from its retention action)';

-- Erasure of one subject, in one transaction (src/forget.c).  SECURITY
-- DEFINER: it writes the receipt chain, shreds, withdraws consents and reads
-- the holds as the extension's owner; each table is changed as that table's
-- owner (security-restricted), and only if the calling role itself holds the
-- privilege the change needs on it (DELETE, UPDATE to anonymize, SELECT to
-- count kept rows), as a purge asks.  Refused while a legal hold stands on
-- the subject under any spelling (equal as text, or as values of a
-- registered subject column's type); the subject's key is shredded under
-- every spelling of the subject (as given, in each subject column's type,
-- zero-padded, uuid variants); every consent whose subject names the same
-- subject (equal as text or in a subject column's type: '042', '+42', '6e1'
-- for 60 in a numeric column, 'a1 ' in a char(n) one) is withdrawn with a
-- ledger entry naming the receipt; the receipt (hash-chained) is appended and
-- returned.  Not STRICT: NULL arguments get errors of their own.
CREATE OR REPLACE FUNCTION customer_vault.forget_subject(subject text, reason text) RETURNS jsonb
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'cv_forget_subject';
COMMENT ON FUNCTION customer_vault.forget_subject(text, text) IS
    'erases a subject (GDPR art. 17) in one transaction: refused under a legal hold; rows deleted children first, or anonymized or kept as each table''s retention action says, as each table''s owner; key shredded; consents withdrawn; returns the hash-chained receipt';

-- Removes an erased subject's plain identifier from the evidence (part of
-- forget_subject, after its consents were withdrawn), for each spelling
-- given: deletes its consent_state rows and its evidence_subjects row, and
-- appends a 'redact' entry naming its keyed hash for every entry of it
-- written so far, of hash version 1 (before 0.5.0, the subject in plain
-- text) and of version 2 (its keyed hash: a returning subject's new
-- consent_state and evidence_subjects rows must not name them again): in
-- the ledger one per purpose (evidence: the ids it redacts and the receipt),
-- in the hold log one per hold; consent_ledger_redacted and legal_holds then
-- show NULL for them for good.  Entries already redacted are not named
-- again.  Returns the number of redact entries appended.
CREATE OR REPLACE FUNCTION customer_vault._redact_subject(subjects text[], receipt_id bigint) RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
DECLARE
    s text;
    h bytea;
    r record;
    n integer := 0;
BEGIN
    FOR s IN SELECT DISTINCT x FROM pg_catalog.unnest(subjects) x WHERE x <> '' ORDER BY 1 LOOP
        -- the current state: an erased subject has none (its consents were withdrawn)
        DELETE FROM customer_vault.consent_state cs WHERE cs.subject = s;
        h := customer_vault._evidence_subject(s, false);
        CONTINUE WHEN h IS NULL;        -- no root key: every entry is of version 1
        DELETE FROM customer_vault.evidence_subjects d WHERE d.subject_hash = h;
        FOR r IN SELECT l.purpose, pg_catalog.jsonb_agg(l.id ORDER BY l.id) AS ids
                   FROM customer_vault.consent_ledger l
                  WHERE ((l.hash_version = 1 AND l.subject = s)
                         OR (l.hash_version = 2 AND l.subject_hash = h AND l.action <> 'redact'))
                    AND NOT EXISTS (SELECT 1 FROM customer_vault.consent_ledger m
                                     WHERE m.subject_hash = h AND m.action = 'redact' AND m.purpose = l.purpose
                                       AND m.evidence -> 'redacts' @> pg_catalog.to_jsonb(l.id))
                  GROUP BY l.purpose ORDER BY l.purpose LOOP
            PERFORM customer_vault._ledger_append(NULL, r.purpose, 'redact',
                pg_catalog.jsonb_build_object('redacts', r.ids, 'erasure_receipt', receipt_id), NULL, h);
            n := n + 1;
        END LOOP;
        FOR r IN SELECT p.id FROM customer_vault.legal_hold_events p
                  WHERE p.action = 'place'
                    AND ((p.hash_version = 1 AND p.subject = s) OR (p.hash_version = 2 AND p.subject_hash = h))
                    AND NOT EXISTS (SELECT 1 FROM customer_vault.legal_hold_events x
                                     WHERE x.hold_id = p.id AND x.action = 'redact')
                  ORDER BY p.id LOOP
            PERFORM customer_vault._legal_hold_append('redact', r.id, NULL, NULL, NULL, h);
            n := n + 1;
        END LOOP;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION customer_vault._redact_subject(text[], bigint) IS
    'internal: removes an erased subject''s plain identifier from consent_state and evidence_subjects and appends redact entries for every evidence entry written for it so far (forget_subject)';

-- The canonical spelling of a subject: its text form in the type of the
-- registered subject columns it is a value of (integers first, then numeric,
-- then uuid: '042' is '42', an upper-case uuid lower case), what a subject
-- column's (id)::text gives; the subject as given when no non-text subject
-- column takes it.  In C (src/forget.c): only built-in input functions run
-- (the registry allows no other subject column types), without a
-- subtransaction per type (soft errors on 16 and later; on 15 a syntactic
-- check first).  Not STRICT: NULL gives NULL.  PARALLEL UNSAFE: on 15 a
-- long number is read in a subtransaction.
CREATE OR REPLACE FUNCTION customer_vault._canonical_subject(subject text) RETURNS text
    LANGUAGE C STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_canonical_subject';
COMMENT ON FUNCTION customer_vault._canonical_subject(text) IS
    'internal: a subject in the type of the registered subject columns it is a value of (''042'' is ''42'' for a bigint column), else as given; the spelling erasure receipts hash';

-- "Was this subject erased?" through the keyed hash: true when a receipt
-- exists for the subject as given or in its canonical spelling
CREATE OR REPLACE FUNCTION customer_vault.was_forgotten(subject text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM customer_vault.erasure_receipts r
                    WHERE r.subject_hash OPERATOR(pg_catalog.=) customer_vault._subject_hash(subject)
                       OR r.subject_hash OPERATOR(pg_catalog.=)
                          customer_vault._subject_hash(customer_vault._canonical_subject(subject)))
$$;
COMMENT ON FUNCTION customer_vault.was_forgotten(text) IS
    'whether forget_subject ever erased the subject (matched by its keyed hash; the receipts do not hold the subject)';

-- Privileges of this concern: the admin erases; admin and auditor read and
-- verify the receipts and ask whether a subject was erased.
GRANT EXECUTE ON FUNCTION customer_vault.forget_subject(text, text) TO customer_vault_admin;
GRANT EXECUTE ON FUNCTION customer_vault.verify_receipts(), customer_vault.was_forgotten(text)
    TO customer_vault_admin, customer_vault_auditor;
GRANT SELECT ON customer_vault.erasure_receipts TO customer_vault_admin, customer_vault_auditor;

-- ==== 75_masking.sql ====
---------------------------------------------------------------------------
-- Masking by job (src/mask.c): rules per column, <table>_masked for the
-- role customer_vault_masked_reader, masked_copy() for development copies.
---------------------------------------------------------------------------

-- the role of people who may see masks, never plaintext (cluster-wide, like
-- the others), and the role that owns every <table>_masked view: it reads
-- the tables for the masked readers (who need no SELECT on their plaintext),
-- has no members, cannot log in, and row-level security applies to it
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles
                    WHERE rolname OPERATOR(pg_catalog.=) 'customer_vault_masked_reader') THEN
        CREATE ROLE customer_vault_masked_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles
                    WHERE rolname OPERATOR(pg_catalog.=) 'customer_vault_mask_owner') THEN
        CREATE ROLE customer_vault_mask_owner NOLOGIN NOINHERIT;
    END IF;
END
$$;

CREATE TABLE customer_vault.mask_rules (
    relid       regclass NOT NULL,
    column_name name NOT NULL,
    rule        text NOT NULL,
    set_by      oid NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (relid, column_name)
);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.mask_rules', '');
COMMENT ON TABLE customer_vault.mask_rules IS
    'masking rules set by mask_column(), in canonical form (''default'': the default of the column''s label); a table with rules has a <table>_masked view';

-- The mask of a protected column's value, from its ciphertext: the rule is
-- the column's own (never the caller's), the context must be the column's.
-- Not STRICT: a NULL context with a value is an error, as in _open_column.
CREATE OR REPLACE FUNCTION customer_vault._mask_sealed(value text, context text, tbl regclass, col name)
    RETURNS text
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_mask_sealed';
COMMENT ON FUNCTION customer_vault._mask_sealed(text, text, regclass, name) IS
    'internal: the mask of a protected column''s value under the column''s rule (what <table>_masked shows); never the plaintext';

CREATE OR REPLACE FUNCTION customer_vault._mask_plain(value text, tbl regclass, col name)
    RETURNS text
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_mask_plain';
COMMENT ON FUNCTION customer_vault._mask_plain(text, regclass, name) IS
    'internal: the mask of a labelled, unencrypted column''s value under the column''s rule; for callers who may select that column';

-- Not STRICT: a NULL rule is an error with a hint; default_key may be NULL.
CREATE OR REPLACE FUNCTION customer_vault._mask_rule(rule text, default_key text)
    RETURNS text
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_mask_rule';
COMMENT ON FUNCTION customer_vault._mask_rule(text, text) IS
    'internal: the canonical text of a masking rule, or an error saying what is wrong';

CREATE OR REPLACE FUNCTION customer_vault._mask_label_rule(label text) RETURNS text
    LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_mask_label_rule';
COMMENT ON FUNCTION customer_vault._mask_label_rule(text) IS
    'internal: the masking rule a column with this label (NULL: none) gets by default; not STRICT: no label is ''null'' (withheld)';

CREATE OR REPLACE FUNCTION customer_vault._mask_view_active() RETURNS boolean
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'cv_mask_view_is_active';
COMMENT ON FUNCTION customer_vault._mask_view_active() IS
    'internal: whether the extension itself is defining a masked view (the guard event trigger lets it)';

CREATE OR REPLACE FUNCTION customer_vault._masked_view_build(tbl regclass) RETURNS void
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_mask_build_view';
COMMENT ON FUNCTION customer_vault._masked_view_build(regclass) IS
    'internal: (re)creates <table>_masked; for the extension''s owner';

-- Not STRICT: NULL arguments are errors with a message of their own.
CREATE OR REPLACE FUNCTION customer_vault._mask_column_set(tbl regclass, col name, rule text) RETURNS text
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_mask_column_set';
COMMENT ON FUNCTION customer_vault._mask_column_set(regclass, name, text) IS
    'internal: records a masking rule and rebuilds <table>_masked as the extension''s owner; for the table''s owner';

-- The select list of <table>_masked and of masked_copy(): protected columns
-- masked from their ciphertext, labelled or ruled columns masked from their
-- text, explicit encrypted_text/encrypted_bytea columns NULL (their context
-- is unknown), blind index columns left out, every other column as it is.
-- SECURITY DEFINER: it reads the registries for masked readers; it returns
-- SQL text built from quoted identifiers and literals only.
CREATE OR REPLACE FUNCTION customer_vault._masked_select_list(tbl regclass) RETURNS text
    LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text;
BEGIN
    PERFORM customer_vault._table_names(tbl);
    IF (SELECT c.relispartition FROM pg_class c WHERE c.oid = tbl) THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
            MESSAGE = format('table %s is a partition', tbl),
            HINT = 'Mask its partitioned table: the masked view of that table covers every partition.';
    END IF;
    SELECT string_agg(
             CASE
               WHEN p.column_name IS NOT NULL THEN
                 format('customer_vault._mask_sealed(t.%I::pg_catalog.text, %s, %s::pg_catalog.regclass, %L::pg_catalog.name) AS %I',
                        a.attname,
                        CASE WHEN p.context_column IS NULL THEN quote_literal(p.binding)
                             ELSE format('customer_vault._row_context(%L, t.%I)', p.binding, p.context_column) END,
                        tbl::oid, a.attname, a.attname)
               WHEN a.atttypid IN ('customer_vault.encrypted_text'::regtype, 'customer_vault.encrypted_bytea'::regtype) THEN
                 format('NULL::%s AS %I', a.atttypid::regtype, a.attname)
               WHEN customer_vault._column_label(tbl, a.attnum) IS NOT NULL OR r.rule IS NOT NULL THEN
                 format('customer_vault._mask_plain(%s, %s::pg_catalog.regclass, %L::pg_catalog.name) AS %I',
                        CASE WHEN a.atttypid = 'date'::regtype THEN format('pg_catalog.to_char(t.%I, ''YYYY-MM-DD'')', a.attname)
                             WHEN a.atttypid IN ('timestamp'::regtype, 'timestamptz'::regtype)
                               THEN format('pg_catalog.to_char(t.%I, ''YYYY-MM-DD HH24:MI:SS'')', a.attname)
                             ELSE format('t.%I::pg_catalog.text', a.attname) END,
                        tbl::oid, a.attname, a.attname)
               ELSE format('t.%I', a.attname)
             END, ', ' ORDER BY a.attnum)
      INTO cols
      FROM pg_attribute a
      LEFT JOIN customer_vault.protected_columns p
        ON p.relid = tbl AND p.column_name = a.attname
      LEFT JOIN customer_vault.mask_rules r
        ON r.relid = tbl AND r.column_name = a.attname
     WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
       -- blind index columns tell which rows share a value: never shown
       AND NOT EXISTS (SELECT 1 FROM customer_vault.protected_columns b
                        WHERE b.relid = tbl AND b.blind_index_column = a.attname);
    IF cols IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('table %s has no column to show', tbl);
    END IF;
    RETURN cols;
END
$$;
COMMENT ON FUNCTION customer_vault._masked_select_list(regclass) IS
    'internal: the select list (over alias t) of <table>_masked and masked_copy()';

-- Drops <table>_masked when the extension made it; refuses anybody else's object.
CREATE OR REPLACE FUNCTION customer_vault._drop_masked_view(tbl regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    vname text;
    vowner oid;
    vkind "char";
    deps text;
BEGIN
    SELECT n.nspname, c.relname OPERATOR(pg_catalog.||) '_masked' INTO nsp, vname
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    SELECT c.relowner, c.relkind INTO vowner, vkind
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE n.nspname OPERATOR(pg_catalog.=) nsp AND c.relname OPERATOR(pg_catalog.=) vname;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- the extension's views: owned by customer_vault_mask_owner (0.4.0: by the extension's owner)
    IF vkind OPERATOR(pg_catalog.<>) 'v'
       OR vowner OPERATOR(pg_catalog.<>) ALL (SELECT r.oid FROM pg_catalog.pg_roles r
                                               WHERE r.rolname OPERATOR(pg_catalog.=) ANY (ARRAY[current_user, 'customer_vault_mask_owner'])) THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = pg_catalog.format('relation %I.%I already exists', nsp, vname),
            DETAIL = 'The masked view of a table takes that name.';
    END IF;
    -- other people's objects over the view (any role may create one) must not
    -- freeze the table's DDL: they are dropped with it, named in a WARNING
    SELECT pg_catalog.string_agg(DISTINCT COALESCE(rw.ev_class::pg_catalog.regclass::pg_catalog.text,
                                                   pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)), ', ')
      INTO deps
      FROM pg_catalog.pg_depend d
      LEFT JOIN pg_catalog.pg_rewrite rw
        ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND rw.oid OPERATOR(pg_catalog.=) d.objid
     WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.refobjid OPERATOR(pg_catalog.=) (pg_catalog.quote_ident(nsp) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(vname))::pg_catalog.regclass::pg_catalog.oid
       AND d.deptype OPERATOR(pg_catalog.=) 'n'
       AND rw.ev_class IS DISTINCT FROM (pg_catalog.quote_ident(nsp) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(vname))::pg_catalog.regclass::pg_catalog.oid;
    IF deps IS NOT NULL THEN
        RAISE WARNING USING MESSAGE = pg_catalog.format('dropping the objects that depend on view %I.%I', nsp, vname),
            DETAIL = pg_catalog.format('The masked view is rebuilt; these objects over it are dropped: %s.', deps),
            HINT = 'Objects over a masked view do not survive a change of its columns; create them again.';
    END IF;
    EXECUTE pg_catalog.format('DROP VIEW %I.%I CASCADE', nsp, vname);
END
$$;
COMMENT ON FUNCTION customer_vault._drop_masked_view(regclass) IS
    'internal, as the extension owner: drops the <table>_masked view the extension made, and (with a WARNING naming them) the objects over it';

-- Pins the rule of every column <table>_masked masks: a column without a
-- rule (or with 'default', as 0.4.0 stored it) gets its label's default now,
-- so that relabelling a column later (its table's owner may, without the
-- admin role) never weakens its mask; only mask_column changes a rule.
CREATE OR REPLACE FUNCTION customer_vault._pin_mask_rules(tbl regclass) RETURNS void
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO customer_vault.mask_rules AS m (relid, column_name, rule, set_by)
    SELECT tbl, a.attname, customer_vault._mask_label_rule(customer_vault._column_label(tbl, a.attnum)),
           (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user)
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
       AND a.atttypid OPERATOR(pg_catalog.<>) ALL (ARRAY['customer_vault.encrypted_text'::pg_catalog.regtype,
                                                         'customer_vault.encrypted_bytea'::pg_catalog.regtype]::pg_catalog.oid[])
       AND NOT EXISTS (SELECT 1 FROM customer_vault.protected_columns b
                        WHERE b.relid OPERATOR(pg_catalog.=) tbl AND b.blind_index_column OPERATOR(pg_catalog.=) a.attname)
       AND (EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                     WHERE p.relid OPERATOR(pg_catalog.=) tbl AND p.column_name OPERATOR(pg_catalog.=) a.attname)
            OR customer_vault._column_label(tbl, a.attnum) IS NOT NULL)
    ON CONFLICT (relid, column_name) DO UPDATE SET rule = EXCLUDED.rule, set_at = pg_catalog.now()
     WHERE m.rule OPERATOR(pg_catalog.=) 'default'
$$;
COMMENT ON FUNCTION customer_vault._pin_mask_rules(regclass) IS
    'internal, as the extension owner: records the label default as the rule of every masked column without one';

-- The masked reader's scope, checked once per query of <table>_masked (a
-- condition without columns): SELECT on every column the view shows as it
-- is (shown), or on some column when it shows none so; so the view gives a
-- masked reader nothing but masks beyond its own rights.
CREATE OR REPLACE FUNCTION customer_vault._masked_scope(tbl regclass, shown name[]) RETURNS boolean
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
    pol name;
BEGIN
    -- the view reads the table as customer_vault_mask_owner: a policy aimed
    -- at particular roles (restrictive or permissive) would be applied for
    -- that role, not for the caller; refused, so the view never shows a row
    -- the caller could not read directly (nor hides one silently)
    SELECT p.polname INTO pol
      FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.polrelid
     WHERE p.polrelid OPERATOR(pg_catalog.=) tbl AND c.relrowsecurity
       AND p.polcmd OPERATOR(pg_catalog.=) ANY (ARRAY['r', '*']::"char"[])
       AND p.polroles OPERATOR(pg_catalog.<>) '{0}'::pg_catalog.oid[]
     ORDER BY p.polname LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = pg_catalog.format('policy %I of table %s applies to particular roles', pol, tbl),
            DETAIL = 'The masked view reads the table as customer_vault_mask_owner, so row-level security policies aimed at roles cannot be applied as they apply to the caller.',
            HINT = 'Make every SELECT policy of the table apply TO PUBLIC and test the role in its expression, e.g. USING (NOT pg_has_role(current_user, ''some_role'', ''MEMBER'') OR region = ''eu'').';
    END IF;
    IF pg_catalog.cardinality(shown) OPERATOR(pg_catalog.=) 0 THEN
        IF NOT pg_catalog.has_any_column_privilege(tbl, 'SELECT') THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = pg_catalog.format('permission denied for table %s', tbl),
                DETAIL = 'A masked reader needs SELECT on some column of the table (its key column, for example).';
        END IF;
        RETURN true;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ' ORDER BY o) INTO missing
      FROM pg_catalog.unnest(shown) WITH ORDINALITY u(c, o)
     WHERE NOT pg_catalog.has_column_privilege(tbl, c::pg_catalog.text, 'SELECT');
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('permission denied for table %s', tbl),
            DETAIL = pg_catalog.format('The masked view shows %s as stored; a masked reader needs SELECT on those columns (never on the masked ones).', missing);
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION customer_vault._masked_scope(regclass, name[]) IS
    'internal: raises 42501 unless the caller may SELECT the columns <table>_masked shows unmasked (or some column when there are none), 0A000 when a SELECT policy of the table applies to particular roles';

-- (Re)creates <table>_masked as the extension's owner, then gives it to
-- customer_vault_mask_owner, which may SELECT the table: the masked reader
-- needs no SELECT on its plaintext columns, its blind index or its
-- ciphertext.  Row-level security applies to customer_vault_mask_owner (no
-- superuser, not the table's owner), with every policy expression
-- (may_process of a consent policy, current_user) evaluated as the caller;
-- a SELECT policy aimed at particular roles makes the view refuse every
-- query (_masked_scope), since it would apply to customer_vault_mask_owner
-- rather than to the caller.  security_barrier: the caller's own conditions run
-- after those.  The caller's scope (_masked_scope): SELECT on the columns the
-- view shows as they are; SELECT for customer_vault_masked_reader only.
CREATE OR REPLACE FUNCTION customer_vault._build_masked_view(tbl regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    vname text;
    cols text;
    shown name[];
    def text;
    replaced boolean := false;
BEGIN
    SELECT t.nsp, t.rel INTO nsp, rel FROM customer_vault._table_names(tbl) t;
    vname := rel OPERATOR(pg_catalog.||) '_masked';
    IF pg_catalog.octet_length(vname) OPERATOR(pg_catalog.>) 63 THEN
        RAISE EXCEPTION USING ERRCODE = 'name_too_long',
            MESSAGE = pg_catalog.format('view name %s is too long', pg_catalog.quote_ident(vname)),
            HINT = 'Rename the table to a shorter name.';
    END IF;
    cols := customer_vault._masked_select_list(tbl);
    PERFORM customer_vault._pin_mask_rules(tbl);
    -- the columns the select list shows as they are (its last branch)
    SELECT COALESCE(pg_catalog.array_agg(a.attname ORDER BY a.attnum), '{}') INTO shown
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
       AND a.atttypid OPERATOR(pg_catalog.<>) ALL (ARRAY['customer_vault.encrypted_text'::pg_catalog.regtype,
                                                         'customer_vault.encrypted_bytea'::pg_catalog.regtype]::pg_catalog.oid[])
       AND NOT EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                        WHERE p.relid OPERATOR(pg_catalog.=) tbl
                          AND a.attname OPERATOR(pg_catalog.=) ANY (ARRAY[p.column_name, p.blind_index_column]))
       AND NOT EXISTS (SELECT 1 FROM customer_vault.mask_rules m
                        WHERE m.relid OPERATOR(pg_catalog.=) tbl AND m.column_name OPERATOR(pg_catalog.=) a.attname)
       AND customer_vault._column_label(tbl, a.attnum) IS NULL;
    def := pg_catalog.format('VIEW %I.%I WITH (security_barrier = true) AS SELECT %s FROM %I.%I t'
                             ' WHERE customer_vault._masked_scope(%s::pg_catalog.regclass, %L::pg_catalog.name[])',
                             nsp, vname, cols, nsp, rel, tbl::pg_catalog.oid, shown::pg_catalog.text);
    -- the extension's own view is replaced in place when its columns allow
    -- (objects over it survive); else dropped (with them) and made again
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class v
                WHERE v.relnamespace OPERATOR(pg_catalog.=) (SELECT c.relnamespace FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl)
                  AND v.relname OPERATOR(pg_catalog.=) vname AND v.relkind OPERATOR(pg_catalog.=) 'v'
                  AND v.relowner OPERATOR(pg_catalog.=) ANY (SELECT r.oid FROM pg_catalog.pg_roles r
                                                              WHERE r.rolname OPERATOR(pg_catalog.=) ANY (ARRAY[current_user, 'customer_vault_mask_owner']))) THEN
        BEGIN
            EXECUTE 'CREATE OR REPLACE ' OPERATOR(pg_catalog.||) def;
            replaced := true;
        -- (55000: in an extension script, the view is no member of the extension)
        EXCEPTION WHEN invalid_table_definition OR datatype_mismatch OR feature_not_supported
                       OR object_not_in_prerequisite_state THEN
            replaced := false;
        END;
    END IF;
    IF NOT replaced THEN
        PERFORM customer_vault._drop_masked_view(tbl);
        EXECUTE 'CREATE ' OPERATOR(pg_catalog.||) def;
    END IF;
    EXECUTE pg_catalog.format('ALTER VIEW %I.%I OWNER TO customer_vault_mask_owner', nsp, vname);
    EXECUTE pg_catalog.format('REVOKE ALL ON %I.%I FROM PUBLIC', nsp, vname);
    EXECUTE pg_catalog.format('GRANT SELECT ON %I.%I TO customer_vault_masked_reader', nsp, vname);
    EXECUTE pg_catalog.format('GRANT SELECT ON %I.%I TO customer_vault_mask_owner', nsp, rel);
END
$$;
COMMENT ON FUNCTION customer_vault._build_masked_view(regclass) IS
    'internal, as the extension owner: (re)creates the <table>_masked view';

-- mask_column's work as the extension's owner (the caller owns the table).
CREATE OR REPLACE FUNCTION customer_vault._mask_column_as_owner(tbl regclass, col name, rule text, caller oid)
    RETURNS text
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    coltype regtype;
    p customer_vault.protected_columns;
    canon text;
BEGIN
    PERFORM customer_vault._table_names(tbl);
    coltype := customer_vault._column_type(tbl, col);
    IF EXISTS (SELECT 1 FROM customer_vault.protected_columns b
                WHERE b.relid = tbl AND b.blind_index_column = col) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('column %I of table %s is a blind index column', col, tbl),
            DETAIL = 'Blind index columns are never shown to masked readers.';
    END IF;
    IF coltype IN ('customer_vault.encrypted_text'::regtype, 'customer_vault.encrypted_bytea'::regtype) THEN
        RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
            MESSAGE = format('column %I of table %s is of type %s', col, tbl, coltype),
            DETAIL = 'Masked readers see NULL for encrypted_text and encrypted_bytea columns, whose context is not known.',
            HINT = 'Protect a text column with protect_column() to mask it.';
    END IF;
    SELECT pc.* INTO p FROM customer_vault.protected_columns pc
     WHERE pc.relid = tbl AND pc.column_name = col;
    IF (SELECT c.relispartition FROM pg_catalog.pg_class c WHERE c.oid = tbl) THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
            MESSAGE = format('table %s is a partition', tbl),
            HINT = 'Mask its partitioned table: the masked view of that table covers every partition.';
    END IF;
    canon := customer_vault._mask_rule(rule, p.key_name);
    -- 'default': the label's default, pinned now (a later relabel does not change it)
    IF canon = 'default' THEN
        canon := customer_vault._mask_label_rule(customer_vault._column_label(tbl,
                     (SELECT a.attnum FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attname = col)));
    END IF;
    INSERT INTO customer_vault.mask_rules AS m (relid, column_name, rule, set_by)
    VALUES (tbl, col, canon, caller)
    ON CONFLICT (relid, column_name)
    DO UPDATE SET rule = EXCLUDED.rule, set_by = EXCLUDED.set_by, set_at = pg_catalog.now();
    PERFORM customer_vault._build_masked_view(tbl);
    RETURN canon;
END
$$;
COMMENT ON FUNCTION customer_vault._mask_column_as_owner(regclass, name, text, oid) IS
    'internal, as the extension owner: records a masking rule and rebuilds <table>_masked';

CREATE OR REPLACE FUNCTION customer_vault.mask_column(tbl regclass, col name, rule text) RETURNS text
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'table and column must not be null';
    END IF;
    RETURN customer_vault._mask_column_set(tbl, col, rule);
END
$$;
COMMENT ON FUNCTION customer_vault.mask_column(regclass, name, text) IS
    'sets the masking rule of a column (''default'': its label''s default) and (re)creates <table>_masked; returns the rule as stored';

-- A masked copy of a table, made by and owned by the caller (a masked
-- reader): what <table>_masked shows the caller (its scope and row-level
-- security), written as plaintext masks; no plaintext of a masked column
-- reaches the copy's files.  A partition is copied through its partitioned
-- table (its own rows would be read without the parent's registry).
CREATE OR REPLACE FUNCTION customer_vault.masked_copy(src regclass, dst name, dst_schema name DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    kind "char";
    part boolean;
    n bigint;
BEGIN
    IF src IS NULL OR dst IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'source table and copy name must not be null';
    END IF;
    SELECT n.nspname, c.relname, c.relkind, c.relispartition INTO nsp, rel, kind, part
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = src;
    IF kind IS NULL OR kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type', MESSAGE = format('%s is not a table', src);
    END IF;
    IF part THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
            MESSAGE = format('table %s is a partition', src),
            HINT = 'Copy its partitioned table (or CREATE TABLE AS from that table''s masked view with a condition).';
    END IF;
    IF dst_schema IN ('customer_vault', 'pg_catalog', 'information_schema', 'pg_toast') THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('a masked copy cannot be created in schema %I', dst_schema);
    END IF;
    -- the extension's masked view of the table, never an object of that name
    IF NOT EXISTS (SELECT 1 FROM pg_class v
                    WHERE v.relnamespace = (SELECT c.relnamespace FROM pg_class c WHERE c.oid = src)
                      AND v.relname = rel || '_masked' AND v.relkind = 'v'
                      AND v.relowner = (SELECT r.oid FROM pg_roles r WHERE r.rolname = 'customer_vault_mask_owner')) THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('table %s has no masked view', src),
            HINT = 'Its owner makes one with customer_vault.mask_column().';
    END IF;
    EXECUTE format('CREATE TABLE %I.%I AS SELECT * FROM %I.%I',
                   COALESCE(dst_schema, nsp), dst, nsp, rel || '_masked');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION customer_vault.masked_copy(regclass, name, name) IS
    'creates a table (in the source''s schema unless given) holding what <table>_masked shows, owned by the caller; returns the rows copied';

-- Forget the rules of dropped tables and columns (by OID and name).
CREATE OR REPLACE FUNCTION customer_vault._mask_forget_dropped() RETURNS event_trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('customer_vault.mask_rules') IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM customer_vault.mask_rules m
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objid OPERATOR(pg_catalog.=) m.relid::pg_catalog.oid
       AND (d.object_type OPERATOR(pg_catalog.=) 'table'
            OR (d.object_type OPERATOR(pg_catalog.=) 'table column'
                AND d.address_names[3] OPERATOR(pg_catalog.=) m.column_name::pg_catalog.text));
END
$$;
COMMENT ON FUNCTION customer_vault._mask_forget_dropped() IS
    'internal: event trigger removing the masking rules of dropped tables and columns';

-- At the end of every DDL command (that nobody but the extension defines,
-- alters or re-owns <table>_masked, or takes its name, is checked by
-- _guard_managed_view, for the decrypted views too):
--  * a column with a rule keeps its name (the rule names it);
--  * a SECURITY LABEL or ALTER TABLE on a table with a masked view rebuilds
--    the view, so a new label, a new column or a renamed one shows at once.
CREATE OR REPLACE FUNCTION customer_vault._guard_masked_views() RETURNS event_trigger
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    bad record;
    rebuild oid[] := '{}';
    t oid;
BEGIN
    IF pg_catalog.to_regclass('customer_vault.mask_rules') IS NULL THEN
        RETURN;
    END IF;
    FOR r IN SELECT d.classid, d.objid, d.command_tag FROM pg_catalog.pg_event_trigger_ddl_commands() d LOOP
        IF r.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass THEN
            SELECT m.column_name INTO bad FROM customer_vault.mask_rules m
             WHERE m.relid::pg_catalog.oid OPERATOR(pg_catalog.=) r.objid
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                WHERE a.attrelid OPERATOR(pg_catalog.=) r.objid
                                  AND a.attname OPERATOR(pg_catalog.=) m.column_name
                                  AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'object_in_use',
                    MESSAGE = pg_catalog.format('column %I of table %s has a masking rule', bad.column_name, r.objid::pg_catalog.regclass),
                    DETAIL = 'A column with a masking rule (every column the masked view masks has one) cannot be renamed.',
                    HINT = 'Keep its name; to rename it, copy the data to a new column and drop the old one.';
            END IF;
            IF r.command_tag IN ('SECURITY LABEL', 'ALTER TABLE')
               AND NOT customer_vault._mask_view_active()
               AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c, pg_catalog.pg_class v
                            WHERE c.oid OPERATOR(pg_catalog.=) r.objid
                              AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::"char"[])
                              AND v.relnamespace OPERATOR(pg_catalog.=) c.relnamespace
                              AND v.relname::pg_catalog.text OPERATOR(pg_catalog.=) (c.relname::pg_catalog.text OPERATOR(pg_catalog.||) '_masked')
                              AND v.relkind OPERATOR(pg_catalog.=) 'v'
                              AND v.relowner OPERATOR(pg_catalog.=) ANY (SELECT o.oid FROM pg_catalog.pg_roles o
                                                                          WHERE o.rolname OPERATOR(pg_catalog.=) ANY (ARRAY[current_user, 'customer_vault_mask_owner']))) THEN
                rebuild := rebuild OPERATOR(pg_catalog.||) r.objid;
            END IF;
        END IF;
        -- DDL on <table>_masked itself, or on its name: _guard_managed_view
        -- (30_columns.sql), called by customer_vault_guard_decrypted_views
    END LOOP;
    -- a view that cannot be rebuilt (a column changed under it) is dropped:
    -- masked readers then see nothing until mask_column() makes it again
    FOREACH t IN ARRAY rebuild LOOP
        BEGIN
            PERFORM customer_vault._masked_view_build(t::pg_catalog.regclass);
        EXCEPTION WHEN OTHERS THEN
            PERFORM customer_vault._drop_masked_view(t::pg_catalog.regclass);
            RAISE WARNING USING MESSAGE = pg_catalog.format('the masked view of table %s was dropped', t::pg_catalog.regclass),
                DETAIL = pg_catalog.format('It could not be rebuilt after the change: %s', SQLERRM),
                HINT = 'Run customer_vault.mask_column() on the table to make it again.';
        END;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._guard_masked_views() IS
    'internal: event trigger keeping the names of masked columns and rebuilding a masked view after SECURITY LABEL or ALTER TABLE';
CREATE EVENT TRIGGER customer_vault_mask_forget_dropped ON sql_drop
    EXECUTE FUNCTION customer_vault._mask_forget_dropped();
CREATE EVENT TRIGGER customer_vault_guard_masked_views ON ddl_command_end
    EXECUTE FUNCTION customer_vault._guard_masked_views();

-- Privileges of this concern (PUBLIC's few are all in 90_privileges.sql).
GRANT EXECUTE ON FUNCTION
    customer_vault.mask_column(regclass, name, text),
    customer_vault._mask_column_set(regclass, name, text)
    TO customer_vault_admin;
GRANT SELECT ON customer_vault.mask_rules TO customer_vault_admin, customer_vault_auditor;
-- the masked reader: the masks (through <table>_masked, whose functions run
-- as the caller) and copies of them
GRANT EXECUTE ON FUNCTION
    customer_vault._mask_sealed(text, text, regclass, name),
    customer_vault._mask_plain(text, regclass, name),
    customer_vault._masked_scope(regclass, name[]),
    customer_vault.masked_copy(regclass, name, name)
    TO customer_vault_masked_reader;
-- 0.4.0's masked_copy built its own select list; it reads the view now
REVOKE EXECUTE ON FUNCTION customer_vault._masked_select_list(regclass) FROM customer_vault_masked_reader;

-- ==== 80_report.sql ====

---------------------------------------------------------------------------
-- The compliance report and the privilege drift (part REPORT).
--
-- compliance_report() runs as the extension's owner (SECURITY DEFINER):
-- it reads what only a superuser may read (password hashes in pg_authid,
-- pg_hba_file_rules, the preload settings) and returns only names and
-- findings, never a hash, a value or a subject.  It runs no code of anyone
-- but the extension's (catalogs, the extension's tables and functions).
-- Checks of parts that land separately (receipts, access log, stale roles,
-- the subject registry) run when their functions exist.
---------------------------------------------------------------------------

-- the declared grants against the current ones (see 00_declared_privileges.sql),
-- and what the declaration cannot hold, all undeclared (expected false):
-- memberships of the extension's roles in any role ('role <granted role>',
-- the member, MEMBER), grants on its settings ('parameter customer_vault.x'),
-- objects owned by another role than the extension's owner (OWNER), and
-- default privileges that would grant on objects the extension creates
-- ('default privileges for role <r> [in schema customer_vault]': any entry
-- for the schema, and the extension owner's entries that add to the built-in
-- default; privilege '<privilege> ON <kind>')
CREATE OR REPLACE FUNCTION customer_vault.privilege_drift()
    RETURNS TABLE(object text, role name, privilege text, expected boolean, actual boolean)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
    WITH ext_roles(rolname) AS (
        VALUES ('customer_vault_admin'::name), ('customer_vault_writer'), ('customer_vault_reader'),
               ('customer_vault_auditor'), ('customer_vault_masked_reader'), ('customer_vault_mask_owner')
    ), drift AS (
        SELECT COALESCE(d.object, a.object) AS object, COALESCE(d.role, a.role) AS role,
               COALESCE(d.privilege, a.privilege) AS privilege,
               d.object IS NOT NULL AS expected, a.object IS NOT NULL AS actual
          FROM customer_vault.privilege_matrix d
          FULL JOIN customer_vault._granted_privileges(false) a
            ON a.object = d.object AND a.role = d.role AND a.privilege = d.privilege
         WHERE d.object IS NULL OR a.object IS NULL
        UNION
        SELECT 'role ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(g.rolname), m.rolname,
               'MEMBER' OPERATOR(pg_catalog.||) CASE WHEN am.admin_option THEN ' WITH ADMIN OPTION' ELSE '' END,
               false, true
          FROM pg_catalog.pg_auth_members am
          JOIN pg_catalog.pg_roles m ON m.oid = am.member
          JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
         WHERE m.rolname IN (SELECT e.rolname FROM ext_roles e)
        UNION
        SELECT 'parameter ' OPERATOR(pg_catalog.||) pa.parname,
               CASE WHEN x.grantee = 0 THEN 'PUBLIC'::name
                    ELSE (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = x.grantee) END,
               x.privilege_type OPERATOR(pg_catalog.||) CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
               false, true
          FROM pg_catalog.pg_parameter_acl pa, pg_catalog.aclexplode(pa.paracl) x
         WHERE pa.parname LIKE 'customer\_vault.%'
           AND x.grantee <> 10            -- the bootstrap superuser's own entries
        UNION
        SELECT 'default privileges for role ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(o.rolname)
                   OPERATOR(pg_catalog.||) CASE WHEN da.defaclnamespace = 0 THEN ''
                                                ELSE ' in schema customer_vault' END,
               CASE WHEN x.grantee = 0 THEN 'PUBLIC'::name
                    ELSE (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = x.grantee) END,
               x.privilege_type OPERATOR(pg_catalog.||) ' ON '
                   OPERATOR(pg_catalog.||) CASE da.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
                                                WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END
                   OPERATOR(pg_catalog.||) CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
               false, true
          FROM pg_catalog.pg_default_acl da
          JOIN pg_catalog.pg_roles o ON o.oid = da.defaclrole,
               pg_catalog.aclexplode(da.defaclacl) x
         WHERE (da.defaclnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = 'customer_vault')
                OR (da.defaclnamespace = 0
                    AND da.defaclrole = (SELECT e.extowner FROM pg_catalog.pg_extension e
                                          WHERE e.extname = 'customer_vault')))
           AND x.grantee <> da.defaclrole
           AND (da.defaclnamespace <> 0
                OR NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(pg_catalog.acldefault(
                                   CASE da.defaclobjtype WHEN 'S' THEN 's' ELSE da.defaclobjtype END, da.defaclrole)) z
                            WHERE z.grantee = x.grantee AND z.privilege_type = x.privilege_type
                              AND z.is_grantable = x.is_grantable))
    )
    SELECT d.object, d.role, d.privilege, d.expected, d.actual FROM drift d ORDER BY 1, 2, 3
$$;
COMMENT ON FUNCTION customer_vault.privilege_drift() IS
    'grants on the extension''s objects that differ from the declared privilege_matrix (expected = declared, actual = granted now), and, all undeclared: memberships of the extension''s roles, grants on customer_vault.* parameters, objects not owned by the extension''s owner, default privileges that would grant on the extension''s objects';

-- The settings that copy statement texts or bind values into the server
-- log or statistics, as one finding each (name, severity, finding, hint).
-- Reads the session's values (what the caller's statements would do), and
-- ALTER ROLE / ALTER DATABASE settings of the same names.
CREATE OR REPLACE FUNCTION customer_vault._report_settings()
    RETURNS TABLE(severity text, object text, finding text, hint text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
#variable_conflict use_column
DECLARE
    logs_statements boolean;
    lib text;
    src text;
    loaded text;
    below_error constant text[] := ARRAY['debug5', 'debug4', 'debug3', 'debug2', 'debug1', 'info', 'notice',
                                         'warning'];
    min_duration integer;
    min_duration_sample integer;
    sample_rate float8;
    param_length integer;
    param_length_on_error integer;
BEGIN
    -- integer settings in their base unit (current_setting() adds units)
    SELECT max(s.setting) FILTER (WHERE s.name = 'log_min_duration_statement')::integer,
           max(s.setting) FILTER (WHERE s.name = 'log_min_duration_sample')::integer,
           max(s.setting) FILTER (WHERE s.name = 'log_statement_sample_rate')::float8,
           max(s.setting) FILTER (WHERE s.name = 'log_parameter_max_length')::integer,
           max(s.setting) FILTER (WHERE s.name = 'log_parameter_max_length_on_error')::integer
      INTO min_duration, min_duration_sample, sample_rate, param_length, param_length_on_error
      FROM pg_catalog.pg_settings s
     WHERE s.name IN ('log_min_duration_statement', 'log_min_duration_sample', 'log_statement_sample_rate',
                      'log_parameter_max_length', 'log_parameter_max_length_on_error');
    IF pg_catalog.current_setting('log_statement') IN ('all', 'mod') THEN
        RETURN QUERY SELECT 'medium', 'setting log_statement',
            pg_catalog.format('log_statement = %s writes the text of every %sstatement, with the values it carries, to the server log',
                              pg_catalog.current_setting('log_statement'),
                              CASE pg_catalog.current_setting('log_statement') WHEN 'all' THEN '' ELSE 'data-changing ' END),
            'Set log_statement = ''ddl'' or ''none''; use pgaudit or the access log for who did what.';
    END IF;
    IF min_duration >= 0 THEN
        RETURN QUERY SELECT 'medium', 'setting log_min_duration_statement',
            'log_min_duration_statement >= 0 writes the text of slow statements, with the values they carry, to the server log',
            'Set log_min_duration_statement = -1, or send only durations (log_duration) without statement texts.';
    END IF;
    IF min_duration_sample >= 0
       AND sample_rate > 0 THEN
        RETURN QUERY SELECT 'medium', 'setting log_min_duration_sample',
            'log_min_duration_sample >= 0 writes the text of sampled statements, with the values they carry, to the server log',
            'Set log_min_duration_sample = -1.';
    END IF;
    logs_statements := pg_catalog.current_setting('log_statement') IN ('all', 'mod')
        OR min_duration >= 0
        OR (min_duration_sample >= 0
            AND sample_rate > 0);
    IF logs_statements AND param_length <> 0 THEN
        RETURN QUERY SELECT 'medium', 'setting log_parameter_max_length',
            'log_parameter_max_length <> 0 adds the bind parameters (the values) of logged statements to the server log',
            'Set log_parameter_max_length = 0.';
    END IF;
    IF param_length_on_error <> 0 THEN
        RETURN QUERY SELECT 'medium', 'setting log_parameter_max_length_on_error',
            'log_parameter_max_length_on_error <> 0 adds the bind parameters (the values) of failing statements to the server log',
            'Set log_parameter_max_length_on_error = 0.';
    END IF;
    IF pg_catalog.lower(pg_catalog.current_setting('log_min_error_statement')) OPERATOR(pg_catalog.=) ANY (below_error) THEN
        RETURN QUERY SELECT 'medium', 'setting log_min_error_statement',
            pg_catalog.format('log_min_error_statement = %s writes the text of statements that raise a mere warning or notice, with the values they carry, to the server log (pg_stat_activity keeps the first %s of each statement)',
                              pg_catalog.lower(pg_catalog.current_setting('log_min_error_statement')),
                              pg_catalog.current_setting('track_activity_query_size')),
            'Set log_min_error_statement = error (the default) or higher.';
    END IF;
    -- statistics and plan logging: loaded at start, per session, or in this backend
    FOREACH lib IN ARRAY ARRAY['pg_stat_statements', 'auto_explain'] LOOP
        loaded := NULL;
        FOREACH src IN ARRAY ARRAY['shared_preload_libraries', 'session_preload_libraries', 'local_preload_libraries'] LOOP
            IF lib OPERATOR(pg_catalog.=) ANY (
                   SELECT pg_catalog.regexp_replace(pg_catalog.btrim(l, ' "'), '^.*/|\.so$', '', 'g')
                     FROM pg_catalog.unnest(pg_catalog.string_to_array(pg_catalog.current_setting(src), ',')) l) THEN
                loaded := COALESCE(loaded || ', ', '') || src;
            END IF;
        END LOOP;
        -- a library loaded into this backend defines its settings (a mere
        -- placeholder is of type string)
        IF loaded IS NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_settings s
                                       WHERE s.name = CASE lib WHEN 'pg_stat_statements' THEN 'pg_stat_statements.max'
                                                          ELSE 'auto_explain.log_min_duration' END
                                         AND s.vartype = 'integer') THEN
            loaded := 'LOAD';
        END IF;
        IF loaded IS NOT NULL THEN
            RETURN QUERY SELECT 'medium', 'library ' || lib,
                pg_catalog.format('%s is loaded (%s): %s', lib, loaded,
                    CASE lib WHEN 'pg_stat_statements'
                        THEN 'it keeps statement texts, the literal values of utility statements included, readable by pg_read_all_stats'
                        ELSE 'it writes statement texts and plans, with the values they carry, to the server log' END),
                CASE lib WHEN 'pg_stat_statements'
                    THEN 'Remove it from the preload settings, or pass values only as bind parameters and set pg_stat_statements.track_utility = off.'
                    ELSE 'Remove it from the preload settings (or set auto_explain.log_min_duration = -1).' END;
        END IF;
    END LOOP;
    -- the same leaks set for a role or a database (they apply to its sessions)
    RETURN QUERY
    SELECT 'medium',
           pg_catalog.format('setting %s for %s', pg_catalog.split_part(cfg, '=', 1),
                             CASE WHEN s.setrole = 0 AND s.setdatabase = 0 THEN 'everybody'
                                  WHEN s.setrole = 0 THEN 'database ' || pg_catalog.quote_ident(d.datname)
                                  WHEN s.setdatabase = 0 THEN 'role ' || pg_catalog.quote_ident(r.rolname)
                                  ELSE 'role ' || pg_catalog.quote_ident(r.rolname) || ' in database '
                                       || pg_catalog.quote_ident(d.datname) END),
           pg_catalog.format('%s is set by ALTER %s ... SET: it copies statement texts or values into the server log',
                             cfg, CASE WHEN s.setrole = 0 THEN 'DATABASE' ELSE 'ROLE' END),
           pg_catalog.format('ALTER %s ... RESET %s.', CASE WHEN s.setrole = 0 THEN 'DATABASE' ELSE 'ROLE' END,
                             pg_catalog.split_part(cfg, '=', 1))
      FROM pg_catalog.pg_db_role_setting s
      CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) cfg
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
      LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
     WHERE (s.setdatabase = 0 OR s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
       AND (pg_catalog.lower(cfg) ~ '^log_statement=(all|mod)$'
            OR pg_catalog.lower(cfg) ~ '^log_min_duration_(statement|sample)=[0-9]'
            OR pg_catalog.lower(cfg) ~ '^log_parameter_max_length_on_error=([1-9]|-)'
            OR pg_catalog.lower(cfg) ~ '^log_min_error_statement=(debug|info|notice|warning)'
            OR pg_catalog.lower(cfg) ~ '^(session|local)_preload_libraries=.*(pg_stat_statements|auto_explain)');
END
$$;
COMMENT ON FUNCTION customer_vault._report_settings() IS
    'internal: compliance_report''s findings on settings that copy statement texts or values into logs or statistics';

-- The columns holding personal data: labelled (SECURITY LABEL FOR
-- customer_vault) or protected by protect_column; encrypted = of an
-- encrypted type (or an array of one) or protected.
CREATE OR REPLACE FUNCTION customer_vault._report_pii()
    RETURNS TABLE(relid oid, attname name, label text, encrypted boolean)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid, a.attname, COALESCE(l.label, 'pii'),
           a.atttypid IN (SELECT t.oid FROM pg_catalog.pg_type t
                           WHERE t.oid IN ('customer_vault.encrypted_text'::pg_catalog.regtype,
                                           'customer_vault.encrypted_bytea'::pg_catalog.regtype)
                              OR t.typelem IN ('customer_vault.encrypted_text'::pg_catalog.regtype,
                                               'customer_vault.encrypted_bytea'::pg_catalog.regtype))
           OR EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                       WHERE p.relid::oid = c.oid AND p.column_name = a.attname)
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_catalog.pg_seclabel l ON l.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
           AND l.objoid = c.oid AND l.objsubid = a.attnum AND l.provider = 'customer_vault'
     WHERE c.relkind IN ('r', 'p', 'f') AND c.relpersistence <> 't'
       AND (l.label IS NOT NULL
            OR EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                        WHERE p.relid::oid = c.oid AND p.column_name = a.attname))
$$;
COMMENT ON FUNCTION customer_vault._report_pii() IS
    'internal: the labelled or protected columns of every table, and whether each is encrypted';

-- whether a pg_hba.conf address and netmask cover loopback addresses only
-- (127.0.0.0/8, ::1): connections from this machine, as local ones
CREATE OR REPLACE FUNCTION customer_vault._loopback_only(address text, netmask text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN address = 'samehost' THEN true
        WHEN address IS NULL OR netmask IS NULL OR address !~ '^([0-9.]+|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)$'
             OR netmask !~ '^([0-9.]+|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)$' THEN false
        ELSE (SELECT (lo <<= '127.0.0.0/8'::inet AND hi <<= '127.0.0.0/8'::inet)
                     OR (lo = '::1'::inet AND hi = '::1'::inet)
                FROM (SELECT pg_catalog.host(address::inet & netmask::inet)::inet AS lo,
                             pg_catalog.host(address::inet | ~ netmask::inet)::inet AS hi) r)
    END
$$;
COMMENT ON FUNCTION customer_vault._loopback_only(text, text) IS
    'internal: whether a pg_hba.conf address and netmask cover loopback addresses only';

-- The findings on masked readers (members of customer_vault_masked_reader,
-- but superusers and the extension's roles): direct SELECT on plaintext
-- labelled columns, blind index columns or ciphertext (which the masked view
-- does not need), write or seal rights next to keyed rules (whose masks are
-- then withheld from them), the reader role as well; and rules that show a
-- special category, or that have no view.
CREATE OR REPLACE FUNCTION customer_vault._report_masking()
    RETURNS TABLE(severity text, object text, finding text, hint text)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
    WITH masked AS (
        SELECT r.oid, r.rolname FROM pg_catalog.pg_roles r
         WHERE pg_catalog.pg_has_role(r.oid, 'customer_vault_masked_reader', 'MEMBER')
           AND NOT r.rolsuper AND r.rolname::text NOT LIKE 'customer\_vault\_%'
    ), cols AS (
        -- plaintext labelled columns, blind index columns, protected (ciphertext) columns
        SELECT p.relid, p.attname, 'plain' AS kind FROM customer_vault._report_pii() p WHERE NOT p.encrypted
        UNION ALL
        SELECT pc.relid::oid, pc.blind_index_column, 'bidx' FROM customer_vault.protected_columns pc
         WHERE pc.blind_index_column IS NOT NULL
        UNION ALL
        SELECT pc.relid::oid, pc.column_name, 'sealed' FROM customer_vault.protected_columns pc
    ), direct AS (
        SELECT m.rolname, c.relid, c.kind,
               pg_catalog.string_agg(pg_catalog.quote_ident(c.attname), ', ' ORDER BY c.attname) AS list
          FROM masked m, cols c
         WHERE pg_catalog.has_column_privilege(m.oid, c.relid, c.attname::text, 'SELECT')
         GROUP BY m.rolname, c.relid, c.kind
    ), keyed AS (
        SELECT DISTINCT r.relid::oid AS relid FROM customer_vault.mask_rules r
         WHERE r.rule LIKE 'hash(%' OR r.rule LIKE 'fake(%'
    )
    SELECT CASE d.kind WHEN 'plain' THEN 'high' WHEN 'bidx' THEN 'medium' ELSE 'low' END,
           d.relid::pg_catalog.regclass::text,
           pg_catalog.format(CASE d.kind
                   WHEN 'plain' THEN 'masked reader %s may SELECT personal data stored in plaintext (%s) from the table itself: the mask protects nothing'
                   WHEN 'bidx' THEN 'masked reader %s may SELECT the blind index column (%s): grouping or comparing it shows which rows share a value'
                   ELSE 'masked reader %s may SELECT the ciphertext of protected columns (%s): its length shows the length of the plaintext' END,
               pg_catalog.quote_ident(d.rolname), d.list),
           pg_catalog.format('REVOKE SELECT ON %s FROM %s; GRANT SELECT (<key column>) ON %s TO %s: the masked view reads the table itself and needs no more.',
               d.relid::pg_catalog.regclass::text, pg_catalog.quote_ident(d.rolname),
               d.relid::pg_catalog.regclass::text, pg_catalog.quote_ident(d.rolname))
      FROM direct d
    UNION ALL
    -- as the C check (mask.c, cv_mask_can_plant): the masked reader or any
    -- role it can SET ROLE to (NOINHERIT chains too) writes the table or a
    -- partition or child at any level, or seals values
    SELECT 'medium', k.relid::pg_catalog.regclass::text,
           pg_catalog.format('masked reader %s can write this table or seal values (itself or through SET ROLE to %s) and it has hash or fake rules: the masked view withholds those masks from its sessions (NULL)',
                             pg_catalog.quote_ident(m.rolname), w.roles),
           'Keep writing and masked reading in separate login roles that cannot SET ROLE to each other (a writer''s INSERT/UPDATE and encrypt() make a dictionary of keyed masks).'
      FROM masked m, keyed k,
           LATERAL (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(x.rolname), ', ' ORDER BY x.rolname) AS roles
                      FROM pg_catalog.pg_roles x
                     WHERE pg_catalog.pg_has_role(m.oid, x.oid, 'MEMBER')
                       AND (EXISTS (SELECT 1 FROM (WITH RECURSIVE tr(rel) AS (
                                                        SELECT k.relid
                                                        UNION
                                                        SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tr ON i.inhparent = tr.rel)
                                                     SELECT tr.rel FROM tr) t
                                     WHERE pg_catalog.has_table_privilege(x.oid, t.rel, 'INSERT, UPDATE')
                                        OR pg_catalog.has_any_column_privilege(x.oid, t.rel, 'INSERT, UPDATE'))
                            OR pg_catalog.has_function_privilege(x.oid, 'customer_vault.encrypt(text, text, text)', 'EXECUTE')
                            OR pg_catalog.has_function_privilege(x.oid, 'customer_vault.encrypt(bytea, text, text)', 'EXECUTE')
                            OR pg_catalog.has_function_privilege(x.oid, 'customer_vault.encrypt_for_subject(text, text, text)', 'EXECUTE')
                            OR pg_catalog.has_function_privilege(x.oid, 'customer_vault._seal_column(text, text, text)', 'EXECUTE'))) w
     WHERE w.roles IS NOT NULL
    UNION ALL
    -- write paths the check cannot see: views and rules over the table
    SELECT 'medium', k.relid::pg_catalog.regclass::text,
           pg_catalog.format('the table has hash or fake rules and can be written through %s: whoever may write through it can read the masks of its own guesses (the masked view cannot tell)',
                             pg_catalog.string_agg(DISTINCT pg_catalog.format(CASE WHEN rw.ev_class = k.relid THEN 'rule %s' ELSE 'view %s' END,
                                                                              CASE WHEN rw.ev_class = k.relid THEN pg_catalog.quote_ident(rw.rulename::text)
                                                                                   ELSE rw.ev_class::pg_catalog.regclass::text END), ', ')),
           'Deterministic masks are equality oracles like a blind index: keep write paths of the table away from masked readers, or use a non-keyed rule.'
      FROM keyed k
      JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = k.relid
                                 AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
      JOIN pg_catalog.pg_rewrite rw ON rw.oid = d.objid
      JOIN pg_catalog.pg_class v ON v.oid = rw.ev_class
     WHERE (rw.ev_class = k.relid AND rw.ev_type <> '1')
        OR (rw.ev_class <> k.relid AND v.relkind = 'v'
            AND v.relname::text NOT IN ((SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = k.relid) || '_masked',
                                        (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = k.relid) || '_decrypted'))
     GROUP BY k.relid
    UNION ALL
    -- keyed masks withheld from everybody: policies on a table of an owner that is not trusted
    SELECT 'low', k.relid::pg_catalog.regclass::text,
           'the table has hash or fake rules and row-level security policies, and its owner is not an admin: the masked view withholds those masks (NULL), since a policy runs the owner''s code as the masked reader',
           'Give the table to a member of customer_vault_admin, or drop its policies, for masked readers to see keyed masks.'
      FROM keyed k JOIN pg_catalog.pg_class c ON c.oid = k.relid
      JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
     WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = k.relid)
       AND NOT o.rolsuper AND NOT pg_catalog.pg_has_role(o.oid, 'customer_vault_admin', 'USAGE')
       AND o.oid <> (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'customer_vault')
    UNION ALL
    SELECT 'high', 'role ' || pg_catalog.quote_ident(r.rolname),
           'a role is a member of customer_vault_mask_owner, which reads every masked table as it is',
           pg_catalog.format('REVOKE customer_vault_mask_owner FROM %s; nobody is a member of it.', pg_catalog.quote_ident(r.rolname))
      FROM pg_catalog.pg_auth_members am
      JOIN pg_catalog.pg_roles r ON r.oid = am.member
     WHERE am.roleid = (SELECT o.oid FROM pg_catalog.pg_roles o WHERE o.rolname = 'customer_vault_mask_owner')
    UNION ALL
    SELECT 'high', 'role customer_vault_mask_owner',
           'the owner of the masked views can log in or bypasses row-level security: whoever logs in as it reads every masked table as it is',
           'ALTER ROLE customer_vault_mask_owner NOLOGIN NOBYPASSRLS NOSUPERUSER PASSWORD NULL;'
      FROM pg_catalog.pg_roles o
     WHERE o.rolname = 'customer_vault_mask_owner' AND (o.rolcanlogin OR o.rolbypassrls OR o.rolsuper)
    UNION ALL
    SELECT 'medium', 'role ' || pg_catalog.quote_ident(m.rolname),
           'a role is both a masked reader and a reader (customer_vault_reader): it decrypts, the masks limit nothing',
           pg_catalog.format('REVOKE customer_vault_reader FROM %s, or customer_vault_masked_reader if it needs plaintext.',
                             pg_catalog.quote_ident(m.rolname))
      FROM masked m
     WHERE pg_catalog.pg_has_role(m.oid, 'customer_vault_reader', 'MEMBER')
    UNION ALL
    SELECT 'medium', r.relid::pg_catalog.regclass::text || '.' || pg_catalog.quote_ident(r.column_name),
           pg_catalog.format('special-category data (pii:special) is shown to masked readers by the rule %s', r.rule),
           pg_catalog.format('Withhold it: SELECT customer_vault.mask_column(%L, %L, ''null'').',
                             r.relid::pg_catalog.regclass::text, r.column_name)
      FROM customer_vault.mask_rules r
      JOIN pg_catalog.pg_attribute a ON a.attrelid = r.relid AND a.attname = r.column_name
     WHERE r.rule <> 'null' AND customer_vault._column_label(r.relid, a.attnum) = 'pii:special'
    UNION ALL
    SELECT 'low', t.relid::pg_catalog.regclass::text,
           'the table has masking rules but no masked view (a change it could not follow dropped it, or it predates 0.5.0): masked readers see nothing of it',
           pg_catalog.format('Make it again: SELECT customer_vault.mask_column(%L, <column>, <its rule>) as the table''s owner.',
                             t.relid::pg_catalog.regclass::text)
      FROM (SELECT DISTINCT r.relid FROM customer_vault.mask_rules r) t
      JOIN pg_catalog.pg_class c ON c.oid = t.relid
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class v
                        WHERE v.relnamespace = c.relnamespace AND v.relname::text = c.relname || '_masked'
                          AND v.relkind = 'v'
                          AND v.relowner = (SELECT o.oid FROM pg_catalog.pg_roles o WHERE o.rolname = 'customer_vault_mask_owner'))
$$;
COMMENT ON FUNCTION customer_vault._report_masking() IS
    'internal: compliance_report''s findings on masked readers and masking rules';

-- Every finding, unordered (compliance_report orders them).
CREATE OR REPLACE FUNCTION customer_vault._report_findings()
    RETURNS TABLE(severity text, object text, finding text, hint text)
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
#variable_conflict use_column
DECLARE
    broken bigint;
    max_age integer;
    chain record;
BEGIN
    PERFORM customer_vault.version();   -- the library (and its settings) loaded
    -- personal data in plaintext
    RETURN QUERY
    SELECT CASE WHEN p.label = 'pii:special' THEN 'high' ELSE 'medium' END,
           p.relid::pg_catalog.regclass::text || '.' || pg_catalog.quote_ident(p.attname),
           CASE WHEN p.label = 'pii:special'
                THEN 'special-category personal data (pii:special) is stored in plaintext'
                ELSE pg_catalog.format('personal data (%s) is stored in plaintext', p.label) END,
           pg_catalog.format('Encrypt it: SELECT customer_vault.protect_column(%L, %L, ''<key>'', ''<id column>'').',
                             p.relid::pg_catalog.regclass::text, p.attname)
      FROM customer_vault._report_pii() p
     WHERE NOT p.encrypted;

    -- tables with personal data and no retention (on them or an ancestor)
    RETURN QUERY
    SELECT 'medium', t.relid::pg_catalog.regclass::text,
           'a table with personal data has no retention policy: its rows are kept forever',
           pg_catalog.format('Set one: SELECT customer_vault.set_retention(%L, ''<time column>'', ''<period>'').',
                             t.relid::pg_catalog.regclass::text)
      FROM (SELECT DISTINCT p.relid FROM customer_vault._report_pii() p) t
     WHERE NOT EXISTS (
        WITH RECURSIVE up(rel) AS (
            SELECT t.relid
            UNION
            SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.rel)
        SELECT 1 FROM up JOIN customer_vault.retention_policies r ON r.relid::oid = up.rel);

    -- consent-based purposes whose roles read personal data that no consent
    -- policy filters: a purpose reaches a table through the roles allowed it
    -- (allow_purpose) that may SELECT from it
    RETURN QUERY
    SELECT 'medium', t.relid::pg_catalog.regclass::text,
           pg_catalog.format('roles allowed the consent-based purpose %s (%s) read this table''s personal data, but no consent policy filters its rows',
                             pg_catalog.quote_literal(pu.purpose),
                             pg_catalog.string_agg(pg_catalog.quote_ident(r.rolname), ', ' ORDER BY r.rolname)),
           pg_catalog.format('SELECT customer_vault.enable_consent_policy(%L, ''<subject column>'', %L), or revoke SELECT from those roles.',
                             t.relid::pg_catalog.regclass::text, pu.purpose)
      FROM (SELECT DISTINCT p.relid FROM customer_vault._report_pii() p) t
      JOIN pg_catalog.pg_class c ON c.oid = t.relid
      CROSS JOIN customer_vault.purposes pu
      JOIN customer_vault.purpose_roles pr ON pr.purpose = pu.purpose
      JOIN pg_catalog.pg_roles r ON r.oid = pr.role::oid
     WHERE pu.lawful_basis = 'consent'
       AND pg_catalog.has_any_column_privilege(r.oid, t.relid, 'SELECT')
       AND NOT (c.relrowsecurity AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy po
                                              WHERE po.polrelid = t.relid AND po.polname = 'customer_vault_consent'))
     GROUP BY t.relid, pu.purpose;

    -- the subject registry (part MAP): tables with personal data that no path
    -- reaches from a subject, foreign-key cycles, subject and foreign-key
    -- columns without an index (export and erasure scan the table)
    IF pg_catalog.to_regprocedure('customer_vault._subject_reach()') IS NOT NULL THEN
        RETURN QUERY EXECUTE $q$
            WITH reach AS (SELECT * FROM customer_vault._subject_reach())
            SELECT 'medium', t.relid::pg_catalog.regclass::text,
                   'a table with personal data is neither a registered subject table nor reaches one through foreign keys: export_subject and forget_subject miss it',
                   pg_catalog.format('Register it (customer_vault.register_subject_table(%L, ''<subject column>'')) or add a foreign key to a registered table.',
                                     t.relid::pg_catalog.regclass::text)
              FROM (SELECT DISTINCT p.relid FROM customer_vault._report_pii() p) t
             WHERE NOT EXISTS (SELECT 1 FROM reach r WHERE r.relid::oid = t.relid)
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.relid AND c.relispartition)
            UNION ALL
            SELECT DISTINCT 'low', r.relid::pg_catalog.regclass::text,
                   pg_catalog.format('its foreign keys form a cycle (not followed); its way to a subject: %s', r.path),
                   'Check that its rows belong to the subject the way shown: export and erasure follow that way only, never the foreign keys of the cycle.'
              FROM reach r WHERE r.cycle
            UNION ALL
            -- a table of another owner joined the reach through a foreign key
            -- (REFERENCES is all it takes) and the admin may not change it: an
            -- erasure of a subject it holds rows of is refused
            SELECT DISTINCT 'medium', r.relid::pg_catalog.regclass::text,
                   pg_catalog.format('a table of another owner (%s) reaches %s through a foreign key, but no member of customer_vault_admin may %s it: forget_subject is refused for every subject it holds rows of',
                                     pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(c.relowner)), r.parent::text,
                                     CASE rp.action WHEN 'anonymize' THEN 'UPDATE' WHEN 'shred' THEN 'SELECT' ELSE 'DELETE FROM' END),
                   pg_catalog.format('Grant customer_vault_admin %s on it, or drop its foreign key (check who granted REFERENCES on %s).',
                                     CASE rp.action WHEN 'anonymize' THEN 'UPDATE' WHEN 'shred' THEN 'SELECT' ELSE 'DELETE' END,
                                     r.parent::text)
              FROM reach r
              JOIN pg_catalog.pg_class c ON c.oid = r.relid
              JOIN pg_catalog.pg_class pc ON pc.oid = r.parent
              LEFT JOIN customer_vault.retention_policies rp ON rp.relid::oid = r.relid::oid
             WHERE r.depth > 0 AND c.relowner <> pc.relowner
               AND NOT EXISTS (
                   SELECT 1 FROM pg_catalog.pg_roles ro
                    WHERE NOT ro.rolsuper AND pg_catalog.pg_has_role(ro.oid, 'customer_vault_admin', 'MEMBER')
                      AND pg_catalog.has_table_privilege(ro.oid, r.relid,
                              CASE rp.action WHEN 'anonymize' THEN 'UPDATE' WHEN 'shred' THEN 'SELECT' ELSE 'DELETE' END))
            UNION ALL
            SELECT 'low', r.relid::pg_catalog.regclass::text,
                   pg_catalog.format('no index on %s: export_subject and forget_subject scan the whole table', cols.list),
                   pg_catalog.format('CREATE INDEX ON %s (%s);', r.relid::pg_catalog.regclass::text, cols.list)
              FROM reach r
              CROSS JOIN LATERAL (
                  SELECT CASE WHEN r.fk IS NULL
                              THEN ARRAY[(SELECT a.attnum FROM pg_catalog.pg_attribute a
                                           WHERE a.attrelid = r.relid AND a.attname = r.subject_column)]
                              ELSE (SELECT co.conkey FROM pg_catalog.pg_constraint co WHERE co.oid = r.fk) END AS keys) k
              CROSS JOIN LATERAL (
                  SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY u.n) AS list
                    FROM pg_catalog.unnest(k.keys) WITH ORDINALITY u(attnum, n)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = r.relid AND a.attnum = u.attnum) cols
             WHERE k.keys IS NOT NULL AND pg_catalog.array_position(k.keys, NULL) IS NULL
               AND NOT EXISTS (
                   SELECT 1 FROM pg_catalog.pg_index i
                    WHERE i.indrelid = r.relid AND i.indisvalid AND i.indpred IS NULL
                      AND i.indnkeyatts >= pg_catalog.cardinality(k.keys)
                      AND ARRAY(SELECT x FROM pg_catalog.unnest(i.indkey::smallint[]) x
                                 LIMIT pg_catalog.cardinality(k.keys)) @> k.keys)
        $q$;
    END IF;

    -- named keys whose active version is older than customer_vault.key_max_age
    -- (subject keys are never rotated, nor is the subject-hash key)
    SELECT s.setting::integer INTO max_age FROM pg_catalog.pg_settings s WHERE s.name = 'customer_vault.key_max_age';
    IF COALESCE(max_age, 0) > 0 THEN
        RETURN QUERY
        SELECT 'medium', 'key ' || pg_catalog.quote_ident(k.name),
               pg_catalog.format('its active version %s is older than customer_vault.key_max_age (%s)',
                                 k.version, pg_catalog.current_setting('customer_vault.key_max_age')),
               pg_catalog.format('Rotate it: SELECT customer_vault.rotate_key(%L); then CALL customer_vault.reencrypt(...) for its columns.',
                                 k.name)
          FROM customer_vault.keys k
         WHERE k.kind = 'named' AND k.state = 'active'
           AND k.created_at < pg_catalog.now() - pg_catalog.make_interval(secs => max_age);
    END IF;

    -- hash chains: the consent ledger, legal holds, the purge log, and (when
    -- their parts are installed) erasure receipts and the access log
    FOR chain IN
        SELECT * FROM (VALUES ('consent_ledger', 'customer_vault.verify_ledger()'),
                              ('legal_hold_events', 'customer_vault.verify_legal_holds()'),
                              ('purge_log', 'customer_vault.verify_purge_log()'),
                              ('erasure_receipts', 'customer_vault.verify_receipts()'),
                              ('access_log', 'customer_vault.verify_access_log()')) v(name, fn)
    LOOP
        IF pg_catalog.to_regprocedure(chain.fn) IS NOT NULL THEN
            EXECUTE 'SELECT ' || chain.fn INTO broken;
            IF broken IS NOT NULL THEN
                RETURN QUERY SELECT 'high', 'customer_vault.' || chain.name,
                    pg_catalog.format('the hash chain is broken at entry %s: an entry was changed, removed or added past the functions', broken),
                    pg_catalog.format('Investigate who could write %s (only the extension''s owner can), restore the entries from a backup, and keep the evidence: %s stays broken until then.',
                                      'customer_vault.' || chain.name, pg_catalog.regexp_replace(chain.fn, '^customer_vault\.', ''));
            END IF;
        END IF;
    END LOOP;

    -- settings that copy values into logs or statistics
    RETURN QUERY SELECT * FROM customer_vault._report_settings();

    -- passwords and authentication
    IF pg_catalog.current_setting('password_encryption') = 'md5' THEN
        RETURN QUERY SELECT 'medium', 'setting password_encryption',
            'password_encryption = md5: new passwords are stored as MD5 hashes, which a stolen hash replays',
            'Set password_encryption = ''scram-sha-256'' and have the roles set their passwords again.';
    END IF;
    RETURN QUERY
    SELECT 'medium', 'role ' || pg_catalog.quote_ident(a.rolname),
           'a login role has an MD5 password hash',
           'Set password_encryption = ''scram-sha-256'' and set the role''s password again (\password).'
      FROM pg_catalog.pg_authid a
     WHERE a.rolcanlogin AND a.rolpassword LIKE 'md5%';
    RETURN QUERY
    SELECT 'high', pg_catalog.format('pg_hba.conf line %s', h.line_number),
           pg_catalog.format('"trust" lets %s connections in without a password', h.type),
           'Use scram-sha-256 (or cert) for connections over the network; keep trust, if at all, for local socket connections.'
      FROM pg_catalog.pg_hba_file_rules h
     WHERE h.auth_method = 'trust' AND h.type <> 'local' AND h.error IS NULL
       AND NOT customer_vault._loopback_only(h.address, h.netmask);
    RETURN QUERY
    SELECT 'medium', 'role ' || pg_catalog.quote_ident(r.rolname),
           'a superuser that can log in (besides the bootstrap superuser)',
           'ALTER ROLE ' || pg_catalog.quote_ident(r.rolname) || ' NOLOGIN (or NOSUPERUSER); give people roles with the rights their job needs.'
      FROM pg_catalog.pg_roles r
     WHERE r.rolsuper AND r.rolcanlogin AND r.oid <> 10;

    -- stale roles (part BRAKE), when installed
    IF pg_catalog.to_regprocedure('customer_vault.stale_roles(interval)') IS NOT NULL THEN
        RETURN QUERY EXECUTE $q$
            SELECT CASE WHEN s.can_decrypt THEN 'medium' ELSE 'low' END,
                   'role ' || pg_catalog.quote_ident(s.role),
                   CASE WHEN s.can_decrypt THEN 'a role that can decrypt has been idle for 90 days or more'
                        ELSE 'a role that can reach personal data has been idle for 90 days or more' END,
                   CASE WHEN s.role OPERATOR(pg_catalog.=) ANY (customer_vault._lock_exempt_roles())
                        THEN 'It is listed in customer_vault.lock_exempt_roles, so lock_stale_roles leaves it alone: check that it still needs this access, or take it away.'
                        WHEN r.rolsuper OR s.role::text LIKE 'customer\_vault\_%'
                        THEN 'lock_stale_roles never locks a superuser or a role of the extension: ALTER ROLE ... NOLOGIN by hand if nobody needs it.'
                        ELSE 'Lock it: SELECT customer_vault.lock_stale_roles(dry_run => false), or list it in customer_vault.lock_exempt_roles.' END
              FROM customer_vault.stale_roles() s
              JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) s.role
        $q$;
    END IF;

    -- grants that differ from the declared privilege matrix, memberships of
    -- the extension's roles, grants on its settings, owners, default privileges
    RETURN QUERY
    SELECT CASE WHEN d.privilege = 'OWNER' OR d.object LIKE 'default privileges %' THEN 'medium'
                WHEN d.actual THEN 'high' ELSE 'low' END,
           d.object,
           CASE WHEN d.object LIKE 'role %' THEN
                    pg_catalog.format('%s is a member of %s: the extension''s roles are members of no role',
                                      pg_catalog.quote_ident(d.role), pg_catalog.substr(d.object, 6))
                WHEN d.privilege LIKE 'OWNER%' THEN
                    pg_catalog.format(CASE WHEN d.privilege = 'OWNER' THEN '%s owns it instead of the extension''s owner'
                                           ELSE '%s owns this SECURITY DEFINER function instead of the extension''s owner: it runs with that role''s rights' END,
                                      pg_catalog.quote_ident(d.role))
                WHEN d.object LIKE 'default privileges %' THEN
                    pg_catalog.format('%s is granted to %s on every new object: an update of the extension would grant it on the objects it creates',
                                      d.privilege, CASE WHEN d.role = 'PUBLIC' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(d.role) END)
                ELSE pg_catalog.format(CASE WHEN d.actual THEN '%s is granted to %s: the declared privilege matrix does not grant it'
                                            ELSE '%s is declared for %s but not granted' END,
                                       d.privilege, CASE WHEN d.role = 'PUBLIC' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(d.role) END)
           END,
           CASE WHEN d.object LIKE 'role %' THEN
                    pg_catalog.format('REVOKE %s FROM %s; give people the extension''s roles one by one instead.',
                                      pg_catalog.substr(d.object, 6), pg_catalog.quote_ident(d.role))
                WHEN d.privilege LIKE 'OWNER%' THEN
                    pg_catalog.format('ALTER %s OWNER TO %s;', d.object,
                                      (SELECT pg_catalog.quote_ident(r.rolname) FROM pg_catalog.pg_extension e
                                         JOIN pg_catalog.pg_roles r ON r.oid = e.extowner
                                        WHERE e.extname = 'customer_vault'))
                WHEN d.object LIKE 'default privileges %' THEN
                    pg_catalog.format('ALTER DEFAULT PRIVILEGES %s REVOKE %s FROM %s;',
                                      pg_catalog.substr(d.object, 20),
                                      pg_catalog.regexp_replace(d.privilege, ' WITH GRANT OPTION$', ''),
                                      CASE WHEN d.role = 'PUBLIC' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(d.role) END)
                WHEN d.object LIKE 'parameter %' THEN
                    pg_catalog.format('REVOKE %s ON PARAMETER %s FROM %s; a role that may set the extension''s settings can lift its own limits.',
                                      pg_catalog.regexp_replace(d.privilege, ' WITH GRANT OPTION$', ''),
                                      pg_catalog.substr(d.object, 11),
                                      CASE WHEN d.role = 'PUBLIC' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(d.role) END)
                WHEN d.actual
                THEN pg_catalog.format('REVOKE %s ON %s FROM %s; or grant a role of the extension instead.',
                                       pg_catalog.regexp_replace(d.privilege, ' WITH GRANT OPTION$', ''),
                                       d.object, CASE WHEN d.role = 'PUBLIC' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(d.role) END)
                ELSE pg_catalog.format('GRANT %s ON %s TO %s; or ALTER EXTENSION customer_vault UPDATE again.',
                                       d.privilege, d.object, CASE WHEN d.role = 'PUBLIC' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(d.role) END)
           END
      FROM customer_vault.privilege_drift() d;

    -- masked readers (part MASK2): what would give them more than the masks
    RETURN QUERY SELECT * FROM customer_vault._report_masking();
END
$$;
COMMENT ON FUNCTION customer_vault._report_findings() IS
    'internal: every finding of compliance_report, unordered';

CREATE OR REPLACE FUNCTION customer_vault.compliance_report()
    RETURNS TABLE(severity text, object text, finding text, hint text)
    LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f.severity, f.object, f.finding, f.hint
      FROM customer_vault._report_findings() f
     ORDER BY pg_catalog.array_position(ARRAY['high', 'medium', 'low'], f.severity), f.object, f.finding
$$;
COMMENT ON FUNCTION customer_vault.compliance_report() IS
    'findings (high, medium, low) on how personal data is kept: plaintext PII, no retention, consent purposes without a policy, subject paths and indexes, old keys, broken hash chains, settings that leak values into logs or statistics, weak authentication, superusers, stale roles, privilege drift, masked readers who can read more than the masks';

-- Privileges of this concern: the admin and the auditor read the reports.
GRANT EXECUTE ON FUNCTION customer_vault.compliance_report(), customer_vault.privilege_drift()
    TO customer_vault_admin, customer_vault_auditor;
GRANT SELECT ON customer_vault.privilege_matrix TO customer_vault_admin, customer_vault_auditor;

-- ==== 87_citus.sql ====

---------------------------------------------------------------------------
-- Citus: the extension's tables that every node must read locally
---------------------------------------------------------------------------

-- On a Citus cluster, decrypt() and the consent policy run on the workers,
-- per shard, where a query Citus would have to distribute fails: they read
-- the data keys and the consent state from local relations only
-- (src/citus.c).  This makes those tables reference tables, a copy on every
-- node, written through the coordinator in two-phase commits.  The
-- extension's ledgers and logs stay on the coordinator.
-- Superuser only (granted to nobody): it changes the cluster's layout, and
-- create_reference_table needs the tables' owner.  Not STRICT: no arguments.
-- Idempotent: tables already known to Citus are left as they are.
CREATE OR REPLACE FUNCTION customer_vault.citus_setup()
    RETURNS SETOF regclass
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- referenced tables first
    tables pg_catalog.regclass[] := ARRAY['customer_vault.data_keys', 'customer_vault.purposes',
                                          'customer_vault.purpose_roles', 'customer_vault.consent_state'];
    t pg_catalog.regclass;
    fk record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'extension "citus" is not installed in this database'
            USING ERRCODE = '55000',
                  HINT = 'customer_vault.citus_setup() is for databases distributed with Citus.';
    END IF;
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
        RAISE EXCEPTION 'permission denied for function citus_setup'
            USING ERRCODE = '42501',
                  DETAIL = 'Only a superuser may change where the extension''s tables are stored.';
    END IF;
    IF NOT pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'customer_vault.citus_setup() must run on the coordinator'
            USING ERRCODE = '55000';
    END IF;
    -- the tables keep their triggers (cache invalidation, consent counters):
    -- Citus copies them to every shard
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    -- The foreign keys between these tables (purpose_roles and consent_state
    -- reference purposes) are taken off while the tables are converted one by
    -- one (Citus would otherwise turn the referencing tables into Citus local
    -- tables, which clash with the extension's tables on the workers) and put
    -- back, with the same names and definitions, between reference tables.
    CREATE TEMP TABLE _cv_citus_fks ON COMMIT DROP AS
    SELECT c.conrelid::pg_catalog.regclass AS tbl, c.conname, pg_catalog.pg_get_constraintdef(c.oid) AS def
      FROM pg_catalog.pg_constraint c
     WHERE c.contype OPERATOR(pg_catalog.=) 'f'
       AND c.conrelid OPERATOR(pg_catalog.=) ANY (tables)
       AND c.confrelid OPERATOR(pg_catalog.=) ANY (tables)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                        WHERE p.logicalrelid OPERATOR(pg_catalog.=) c.conrelid);
    FOR fk IN SELECT * FROM _cv_citus_fks LOOP
        -- the workers' copies of the extension's tables (CREATE EXTENSION
        -- made them there) have it too, and ADD CONSTRAINT on a reference
        -- table is sent to every node.  run_command_on_workers commits on its
        -- own (hence IF EXISTS: a second run after a failure goes through),
        -- and must run before this transaction locks anything on the workers.
        PERFORM pg_catalog.run_command_on_workers(
            pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', fk.tbl, fk.conname));
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
    END LOOP;
    FOREACH t IN ARRAY tables LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) t) THEN
            PERFORM pg_catalog.create_reference_table(t);
            -- the rows now live in the shards: the shell must not keep an old copy
            PERFORM pg_catalog.truncate_local_data_after_distributing_table(t);
            RETURN NEXT t;
        END IF;
    END LOOP;
    FOR fk IN SELECT * FROM _cv_citus_fks LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.tbl, fk.conname, fk.def);
    END LOOP;
    DROP TABLE _cv_citus_fks;
END
$$;
COMMENT ON FUNCTION customer_vault.citus_setup() IS
    'on a Citus coordinator: makes the key and consent tables reference tables, so that every node opens values and checks consent from local data; returns the tables converted';

-- Compares the row-level security of every placement of a distributed (or
-- reference) table, and of its partitions and inheritance children, with
-- the coordinator's table: RLS enabled and forced,
-- each policy's name, kind (permissive or restrictive), command, roles (by
-- name: OIDs differ between nodes) and checks.
-- Citus copies policies to shards itself (and, in 13.x, without AS
-- RESTRICTIVE: the event trigger corrects that for the consent policy on
-- every node); this shows whether each shard ended up as it should.  It
-- reads the workers through new connections: run it after the change has
-- committed.  Not SECURITY DEFINER: the caller's own connections read
-- pg_policy, which everyone may read.  STRICT: NULL lists nothing.
CREATE OR REPLACE FUNCTION customer_vault.citus_check_policies(tbl regclass)
    RETURNS TABLE(shard text, node text, finding text)
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- the policies of one relation (%s: Citus puts each shard's name there)
    q constant text := $q$WITH t(id) AS (SELECT '%s'::pg_catalog.regclass)
      SELECT (SELECT c.relrowsecurity::text || '/' || c.relforcerowsecurity::text
                FROM pg_catalog.pg_class c, t WHERE c.oid OPERATOR(pg_catalog.=) t.id)
          || ' ' || COALESCE((SELECT pg_catalog.string_agg(p.polname || ':'
                || CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END
                || ':' || p.polcmd::text
                || ':' || (SELECT pg_catalog.string_agg(x.n, ',' ORDER BY x.n)
                             FROM (SELECT CASE WHEN r.r OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                                               ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.r)) END AS n
                                     FROM pg_catalog.unnest(p.polroles) r(r)) x)
                || ':' || COALESCE(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '')
                || ':' || COALESCE(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), ''), ', ' ORDER BY p.polname)
                FROM pg_catalog.pg_policy p, t WHERE p.polrelid OPERATOR(pg_catalog.=) t.id), '')$q$;
    want text;
    r record;
    rel pg_catalog.regclass;
BEGIN
    -- the quote check of each table name (below) first for the table itself
    IF pg_catalog.strpos(tbl::text, '''') OPERATOR(pg_catalog.>) 0
       OR pg_catalog.strpos(tbl::text, pg_catalog.chr(92)) OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION 'table name % contains a quote or a backslash', pg_catalog.quote_literal(tbl::text)
            USING ERRCODE = '22023',
                  HINT = 'Rename the table to check its placements, or compare their policies with run_command_on_placements.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'extension "citus" is not installed in this database'
            USING ERRCODE = '55000';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid OPERATOR(pg_catalog.=) tbl) THEN
        RAISE EXCEPTION '% is not a Citus table', tbl
            USING ERRCODE = '55000';
    END IF;
    -- the table, then its partitions and inheritance children at any depth
    -- (their shards are shards of their own, with the policies copied there)
    FOR rel IN SELECT tbl
               UNION ALL
               (WITH RECURSIVE d(rel) AS (
                    SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent OPERATOR(pg_catalog.=) tbl
                    UNION
                    SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent OPERATOR(pg_catalog.=) d.rel)
                SELECT d.rel::pg_catalog.regclass FROM d
                 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                                WHERE p.logicalrelid OPERATOR(pg_catalog.=) d.rel)
                 ORDER BY d.rel::pg_catalog.regclass::pg_catalog.text) LOOP
        -- the name goes into the text of q, inside a literal, where Citus puts each
        -- shard's name as it is: a quote or backslash in it could end the literal
        -- (a table owner's SQL run with the caller's rights on every placement)
        IF pg_catalog.strpos(rel::text, '''') OPERATOR(pg_catalog.>) 0
           OR pg_catalog.strpos(rel::text, pg_catalog.chr(92)) OPERATOR(pg_catalog.>) 0 THEN
            RAISE EXCEPTION 'table name % contains a quote or a backslash', pg_catalog.quote_literal(rel::text)
                USING ERRCODE = '22023',
                      HINT = 'Rename the table to check its placements, or compare their policies with run_command_on_placements.';
        END IF;
        EXECUTE pg_catalog.replace(q, '%s', rel::text) INTO want;
        FOR r IN SELECT * FROM pg_catalog.run_command_on_placements(rel, q) LOOP
            -- the shard's name in the expressions' column references does not appear
            -- (pg_get_expr prints bare column names): the texts compare as they are
            IF NOT r.success THEN
                shard := rel::text || '_' || r.shardid; node := r.nodename || ':' || r.nodeport;
                finding := 'could not be read: ' || r.result;
                RETURN NEXT;
            ELSIF r.result IS DISTINCT FROM want THEN
                shard := rel::text || '_' || r.shardid; node := r.nodename || ':' || r.nodeport;
                finding := 'policies differ: expected ' || want || '; found ' || r.result;
                RETURN NEXT;
            END IF;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault.citus_check_policies(regclass) IS
    'on a Citus coordinator: the placements of a table whose row-level security (policies, their kind, command, roles and checks) differs from the table''s; none when every shard is in order';

GRANT EXECUTE ON FUNCTION customer_vault.citus_check_policies(regclass)
    TO customer_vault_admin, customer_vault_auditor;

-- An error (0A000) when the owner of a Citus table is under FORCE ROW LEVEL
-- SECURITY on any of its shards (set by hand there: the coordinator's table
-- does not show it), asked on every placement as the owner (src/citus.c).
-- The purge calls it for each table before its first batch; forget_subject
-- and export_subject check in C.  Not STRICT: a NULL table checks nothing, a
-- NULL name is named generically.  Not SECURITY DEFINER: for callers that may
-- read or change the table (the purge's), checked in C.
CREATE OR REPLACE FUNCTION customer_vault._citus_refuse_forced_shards(tbl regclass, what text) RETURNS void
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_citus_refuse_forced_shards';
COMMENT ON FUNCTION customer_vault._citus_refuse_forced_shards(regclass, text) IS
    'internal: an error (0A000) when a Citus table''s owner is under FORCE ROW LEVEL SECURITY on one of its shards, nothing otherwise';

GRANT EXECUTE ON FUNCTION customer_vault._citus_refuse_forced_shards(regclass, text) TO customer_vault_admin;

-- ==== 88_citus_coordinator.sql ====

---------------------------------------------------------------------------
-- Citus: what writes evidence runs on the coordinator only (part FIXDDL)
---------------------------------------------------------------------------
-- The consent ledger, the legal holds and the erasure receipts are local
-- tables of the coordinator, while consent_state (which they change) is a
-- reference table on every node: a consent change made on a worker
-- connected directly would change consent everywhere with its evidence left
-- on that worker, out of the coordinator's verify_ledger and reports.
-- grant_consent and import_consents check in C (CvRefuseOnCitusWorker);
-- _ledger_append (withdraw_consent), _legal_hold_append (place and release)
-- call this; forget_subject checks in C too.  Not STRICT: a NULL name is named generically.

CREATE OR REPLACE FUNCTION customer_vault._coordinator_only(what text) RETURNS void
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_coordinator_only';
COMMENT ON FUNCTION customer_vault._coordinator_only(text) IS
    'internal: an error (55000) on a Citus worker, nothing elsewhere: evidence is written on the coordinator only';

-- ==== 90_privileges.sql ====

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


-- ==== 99_privilege_matrix.sql ====

---------------------------------------------------------------------------
-- The declared privilege matrix, recorded last (after every grant and the
-- REVOKEs of 90_privileges.sql): what the install or update scripts granted
-- on the extension's objects, less the grants that were undeclared before an
-- update began (00_declared_privileges.sql).  Keep this file last.
-- Only grants to PUBLIC and to the extension's own roles can be declared:
-- the scripts grant to nobody else, so a grant to any other role (made by
-- hand, or by ALTER DEFAULT PRIVILEGES when the install or an update
-- created the object) is drift.  Grants the owner's default privileges
-- would make are left out too (the scripts cannot be told from them), as
-- are ownership rows (the scripts create everything as the extension's owner).
---------------------------------------------------------------------------

DELETE FROM customer_vault.privilege_matrix;
INSERT INTO customer_vault.privilege_matrix (object, role, privilege)
    SELECT g.object, g.role, g.privilege FROM customer_vault._granted_privileges(false) g
     WHERE g.role IN ('PUBLIC', 'customer_vault_admin', 'customer_vault_writer', 'customer_vault_reader',
                      'customer_vault_auditor', 'customer_vault_masked_reader', 'customer_vault_mask_owner')
       AND NOT g.by_default AND g.privilege NOT LIKE 'OWNER%'
    EXCEPT
    SELECT c.object, c.role, c.privilege FROM customer_vault._privilege_carry c;
DELETE FROM customer_vault._privilege_carry;
