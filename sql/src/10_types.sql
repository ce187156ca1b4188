--@ schema

---------------------------------------------------------------------------
-- Encrypted types
---------------------------------------------------------------------------

CREATE TYPE customer_vault.encrypted_text;
CREATE TYPE customer_vault.encrypted_bytea;
--@ code

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
--@ schema

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
--@ code
COMMENT ON TYPE customer_vault.encrypted_text IS
    'text sealed with AES-256-GCM under a data key; no comparison operators on purpose';
COMMENT ON TYPE customer_vault.encrypted_bytea IS
    'bytea sealed with AES-256-GCM under a data key; no comparison operators on purpose';
