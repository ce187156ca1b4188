-- encrypted_text / encrypted_bytea: input accepts only well-formed envelopes,
-- output prints ciphertext only, binary COPY round trips, no comparisons.
\set VERBOSITY terse
SELECT customer_vault.create_key('types_key') > 0 AS created;

CREATE TABLE enc_t (id int, v customer_vault.encrypted_text, b customer_vault.encrypted_bytea);
INSERT INTO enc_t VALUES
    (1, customer_vault.encrypt('hello', 'types_key'), customer_vault.encrypt('\x0001'::bytea, 'types_key')),
    (2, customer_vault.encrypt('', 'types_key', '2'), customer_vault.encrypt(''::bytea, 'types_key'));

-- the text form is the opaque envelope: prefix and base64, never plaintext
SELECT id, v::text LIKE 'cv1$%' AS has_prefix, v::text NOT LIKE '%hello%' AS opaque,
       length(v::text) AS text_len FROM enc_t ORDER BY id;

-- text round trip through the input function keeps the value decryptable
SELECT customer_vault.decrypt(v::text::customer_vault.encrypted_text) FROM enc_t WHERE id = 1;

-- malformed literals: 22P02 with a hint, and the literal is never echoed
\set VERBOSITY default
SELECT 'hello world'::customer_vault.encrypted_text;
\set VERBOSITY terse
CREATE FUNCTION input_error(lit text, typ text DEFAULT 'encrypted_text') RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d text;
BEGIN
    EXECUTE format('SELECT %L::customer_vault.%I', lit, typ);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || d;
END $$;
CREATE FUNCTION b64(b bytea) RETURNS text LANGUAGE sql AS $$ SELECT 'cv1$' || replace(encode(b, 'base64'), E'\n', '') $$;
SELECT input_error('') AS empty, input_error('cv1$') AS prefix_only, input_error('cv1$!!!!') AS bad_chars;
SELECT input_error('cv1$AAAA') AS short, input_error('cv1$AQEAAAAAAAE=') AS header_only;
SELECT input_error('CV1$' || substr(v::text, 5)) AS wrong_case_prefix FROM enc_t WHERE id = 1;
-- non-canonical base64: missing padding, stray bits, embedded newline
SELECT input_error(rtrim(v::text, '=')) AS no_padding FROM enc_t WHERE id = 1;
SELECT input_error('cv1$AQEAAAAAAAHtqn8MytPFITbBGIRuHxGjU4aKYi4j9HaRshodoDY2Xe9=') AS stray_bits;
SELECT input_error(substr(v::text, 1, 20) || E'\n' || substr(v::text, 21)) AS newline FROM enc_t WHERE id = 1;
-- a bytea envelope is not a text envelope, and the other way round
SELECT input_error(b::text) AS bytea_as_text, input_error(v::text, 'encrypted_bytea') AS text_as_bytea FROM enc_t WHERE id = 1;
-- header fields checked: version, reserved byte, unknown flags, key id 0, type 3
SELECT input_error(b64(set_byte(decode(substr(v::text, 5), 'base64'), 0, 2))) AS version,
       input_error(b64(set_byte(decode(substr(v::text, 5), 'base64'), 3, 1))) AS reserved,
       input_error(b64(set_byte(decode(substr(v::text, 5), 'base64'), 2, 4))) AS flags,
       input_error(b64(set_byte(decode(substr(v::text, 5), 'base64'), 1, 3))) AS type,
       input_error(b64(overlay(decode(substr(v::text, 5), 'base64') placing '\x00000000'::bytea from 5 for 4))) AS key_zero,
       input_error(b64(overlay(decode(substr(v::text, 5), 'base64') placing '\xffffffff'::bytea from 5 for 4))) AS key_huge
  FROM enc_t WHERE id = 1;
-- a well-formed envelope is accepted (what COPY and restore rely on)
SELECT input_error(v::text) AS well_formed FROM enc_t WHERE id = 1;

-- no ordering or equality on ciphertext: comparisons fail clearly
SELECT v = v FROM enc_t;
SELECT v < v FROM enc_t;
SELECT DISTINCT v FROM enc_t;
SELECT count(*) FROM enc_t GROUP BY v;
SELECT * FROM enc_t ORDER BY v;

-- binary COPY round trip: ciphertext is stored as it is (no double encryption)
CREATE TABLE enc_copy (LIKE enc_t);
COPY enc_t TO '/tmp/customer_vault_types_copy.bin' WITH (FORMAT binary);
COPY enc_copy FROM '/tmp/customer_vault_types_copy.bin' WITH (FORMAT binary);
SELECT c.id, c.v::text = t.v::text AS same_ciphertext,
       customer_vault.decrypt(c.v, CASE WHEN c.id = 2 THEN '2' END) AS plain
  FROM enc_copy c JOIN enc_t t USING (id) ORDER BY c.id;
-- text COPY round trip
CREATE TABLE enc_copy2 (LIKE enc_t);
COPY enc_t TO '/tmp/customer_vault_types_copy.txt';
COPY enc_copy2 FROM '/tmp/customer_vault_types_copy.txt';
SELECT count(*) FILTER (WHERE c.v::text = t.v::text AND c.b::text = t.b::text) AS same
  FROM enc_copy2 c JOIN enc_t t USING (id);
-- binary input with a broken envelope is refused
COPY (SELECT 1, 'not an envelope'::bytea, NULL::bytea) TO '/tmp/customer_vault_types_bad.bin' WITH (FORMAT binary);
COPY enc_copy FROM '/tmp/customer_vault_types_bad.bin' WITH (FORMAT binary);

-- NULLs pass through
SELECT customer_vault.encrypt(NULL::text, 'types_key') IS NULL AS enc_null,
       customer_vault.decrypt(NULL::customer_vault.encrypted_text) IS NULL AS dec_null;

DROP TABLE enc_t, enc_copy, enc_copy2;
DROP FUNCTION input_error(text, text), b64(bytea);
