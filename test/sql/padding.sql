-- Length padding: a key created with pad_to seals every value padded to a
-- multiple of that block, so short values ("yes"/"Female") give envelopes of
-- one length; the padding is authenticated and stripped on decryption;
-- values sealed without padding (all of 0.1.0) still open.
\set VERBOSITY terse
SELECT customer_vault.create_key('pad_off') > 0 AS created;
SELECT customer_vault.create_key('pad_16', 'padded to 16 bytes', 16) > 0 AS created;
SELECT customer_vault.create_key('pad_1', NULL, 1) > 0 AS created;
SELECT name, version, pad_to FROM customer_vault.keys WHERE name LIKE 'pad%' ORDER BY name;

-- off by default: lengths differ with the plaintext
SELECT octet_length(customer_vault.encrypt('yes', 'pad_off')::text) AS yes_len,
       octet_length(customer_vault.encrypt('Female', 'pad_off')::text) AS female_len;

-- on: every value of up to 15 bytes gives an envelope of one length
SELECT count(DISTINCT octet_length(customer_vault.encrypt(v, 'pad_16')::text)) AS distinct_lengths,
       min(octet_length(customer_vault.encrypt(v, 'pad_16')::text)) AS envelope_len
  FROM unnest(ARRAY['', 'M', 'no', 'yes', 'Male', 'Female', 'fifteen bytes!!']) AS v;
-- 16 bytes need the next block (the padding always adds at least one byte)
SELECT octet_length(customer_vault.encrypt(repeat('x', 16), 'pad_16')::text)
     > octet_length(customer_vault.encrypt('yes', 'pad_16')::text) AS next_block;
-- the same for bytea, and with a context
SELECT octet_length(customer_vault.encrypt('\x01'::bytea, 'pad_16')::text)
     = octet_length(customer_vault.encrypt('\x0102030405'::bytea, 'pad_16')::text) AS bytea_equal;
SELECT octet_length(customer_vault.encrypt('yes', 'pad_16', 'row-1')::text)
     = octet_length(customer_vault.encrypt('Female', 'pad_16', 'row-1')::text) AS ctx_equal;

-- round trips (lengths around the block, trailing zero bytes and 0x80 in the value itself)
SELECT v, customer_vault.decrypt(customer_vault.encrypt(v, 'pad_16')) = v AS ok
  FROM unnest(ARRAY['', 'yes', 'Female', repeat('a', 15), repeat('b', 16), repeat('c', 17), 'Grüße 東京']) AS v;
SELECT n, customer_vault.decrypt(customer_vault.encrypt(b, 'pad_16')) = b AS ok
  FROM (SELECT n, decode(repeat('80', n) || repeat('00', n), 'hex') AS b FROM generate_series(0, 9) n) s;
SELECT customer_vault.decrypt(customer_vault.encrypt('ctx', 'pad_16', 'row-1'), 'row-1') AS ctx_rt;
SELECT customer_vault.decrypt(customer_vault.encrypt('x', 'pad_1')) AS pad_1_rt,
       octet_length(decode(substr(customer_vault.encrypt('x', 'pad_1')::text, 5), 'base64'))
     - octet_length(decode(substr(customer_vault.encrypt('x', 'pad_off')::text, 5), 'base64')) AS pad_1_extra_bytes;
SELECT customer_vault.decrypt(customer_vault.encrypt(repeat('ab€', 350000), 'pad_16')) = repeat('ab€', 350000) AS one_mb_ok;

-- the padding flag is in the header: padded and unpadded envelopes differ in byte 2
SELECT get_byte(decode(substr(customer_vault.encrypt('yes', 'pad_16')::text, 5), 'base64'), 2) AS padded_flags,
       get_byte(decode(substr(customer_vault.encrypt('yes', 'pad_off')::text, 5), 'base64'), 2) AS plain_flags;

-- tampering: clearing the padding flag, or changing any byte of the padded
-- ciphertext (which covers the padding), fails authentication
CREATE TABLE pad_tamper AS
  SELECT decode(substr(customer_vault.encrypt('yes', 'pad_16', 'row-1')::text, 5), 'base64') AS raw;
SELECT customer_vault.decrypt(('cv1$' || encode(set_byte(raw, 2, 1), 'base64'))::customer_vault.encrypted_text, 'row-1')
  FROM pad_tamper;
CREATE FUNCTION pad_try(raw bytea) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN customer_vault.decrypt(('cv1$' || encode(raw, 'base64'))::customer_vault.encrypted_text, 'row-1');
EXCEPTION WHEN data_corrupted OR invalid_text_representation THEN
    RETURN 'rejected:' || SQLSTATE;
END $$;
-- every byte after the nonce (the padded ciphertext and the tag), each bit flipped
SELECT count(*) AS tampered, count(*) FILTER (WHERE r = 'rejected:XX001') AS rejected
  FROM pad_tamper, generate_series(20, length(raw) - 1) i, generate_series(0, 7) b,
       LATERAL pad_try(set_byte(raw, i, get_byte(raw, i) # (1 << b))) r;
-- truncating a padded envelope by one block or one byte fails
SELECT pad_try(substr(raw, 1, length(raw) - 16)) AS minus_block, pad_try(substr(raw, 1, length(raw) - 1)) AS minus_byte
  FROM pad_tamper;
-- untouched it opens
SELECT pad_try(raw) AS untouched FROM pad_tamper;

-- old unpadded values still decrypt once their key pads: set_key_padding
-- changes what is sealed from now on, never what is stored
CREATE TABLE pad_old AS SELECT customer_vault.encrypt('stored before', 'pad_off') AS v;
SELECT customer_vault.set_key_padding('pad_off', 32);
SELECT pad_to FROM customer_vault.keys WHERE name = 'pad_off';
SELECT customer_vault.decrypt(v) AS old_value FROM pad_old;
SELECT octet_length(customer_vault.encrypt('a', 'pad_off')::text)
     = octet_length(customer_vault.encrypt(repeat('a', 31), 'pad_off')::text) AS now_padded_32;
-- rotation keeps the padding; reseal under the new version pads old values
SELECT customer_vault.rotate_key('pad_off') AS new_version;
SELECT version, pad_to FROM customer_vault.keys WHERE name = 'pad_off' ORDER BY version;
SELECT customer_vault.decrypt(customer_vault._reseal(v, NULL)) AS resealed,
       octet_length(customer_vault._reseal(v, NULL)::text) = octet_length(customer_vault.encrypt('a', 'pad_off')::text) AS resealed_padded
  FROM pad_old;
SELECT customer_vault.set_key_padding('pad_off', 0);
SELECT octet_length(customer_vault.encrypt('yes', 'pad_off')::text)
     < octet_length(customer_vault.encrypt('Female', 'pad_off')::text) AS off_again;

-- a protected column under a padding key: stored envelopes of one length,
-- the decrypted view strips the padding
CREATE TABLE pad_people (id int PRIMARY KEY, gender text);
INSERT INTO pad_people VALUES (1, 'M'), (2, 'Female'), (3, 'yes'), (4, NULL);
SELECT customer_vault.protect_column('pad_people', 'gender', 'pad_16', 'id');
INSERT INTO pad_people VALUES (5, 'no');
SELECT count(DISTINCT octet_length(gender)) AS distinct_stored_lengths FROM pad_people WHERE gender IS NOT NULL;
SELECT id, gender FROM pad_people_decrypted ORDER BY id;
UPDATE pad_people SET id = 6 WHERE id = 5;
SELECT id, gender FROM pad_people_decrypted WHERE id = 6;

-- the blind index is computed over the value, never over its padding: on
-- insert of plaintext and when the stored envelope comes back as it is (restore)
CREATE TABLE pad_bidx (id int, email text, email_bidx bytea);
INSERT INTO pad_bidx VALUES (1, 'a@example.org', NULL);
SELECT customer_vault.protect_column('pad_bidx', 'email', 'pad_16', 'id', 'email_bidx');
INSERT INTO pad_bidx (id, email) VALUES (2, 'bb@example.org');
CREATE TABLE pad_bidx_dump AS SELECT id, email, email_bidx FROM pad_bidx;
DELETE FROM pad_bidx;
INSERT INTO pad_bidx (id, email) SELECT id, email FROM pad_bidx_dump;
SELECT p.id, p.email = d.email AS restored_as_is,
       p.email_bidx = d.email_bidx AS same_index,
       p.email_bidx = customer_vault.column_blind_index('pad_bidx', 'email', v.pt) AS index_of_value
  FROM pad_bidx p JOIN pad_bidx_dump d USING (id)
  JOIN (VALUES (1, 'a@example.org'), (2, 'bb@example.org')) v(id, pt) USING (id)
 ORDER BY p.id;

-- bad arguments
SELECT customer_vault.create_key('pad_bad', NULL, -1);
SELECT customer_vault.create_key('pad_bad', NULL, 4097);
SELECT customer_vault.create_key('pad_bad', NULL, NULL);
SELECT customer_vault.set_key_padding('pad_16', 5000);
SELECT customer_vault.set_key_padding('no_such_key', 16);
SELECT count(*) AS pad_bad_keys FROM customer_vault.keys WHERE name = 'pad_bad';

DROP TABLE pad_tamper, pad_old, pad_people, pad_bidx, pad_bidx_dump CASCADE;
DROP FUNCTION pad_try(bytea);
