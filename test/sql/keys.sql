-- Key lifecycle: create, rotate, the keys view (never key bytes), reencrypt,
-- rewrap without a previous root key, bad input.
\set VERBOSITY terse
SELECT customer_vault.create_key('kl', 'customer e-mail addresses') > 0 AS created;
SELECT customer_vault.create_key('kl');
SELECT customer_vault.create_key(NULL);
SELECT customer_vault.rotate_key('no_such');

CREATE TABLE kt (id int PRIMARY KEY, v customer_vault.encrypted_text, b customer_vault.encrypted_bytea);
INSERT INTO kt SELECT g, customer_vault.encrypt('value ' || g, 'kl', g::text),
                      customer_vault.encrypt(convert_to('bytes ' || g, 'UTF8'), 'kl')
  FROM generate_series(1, 500) g;
SELECT customer_vault.key_of(v) AS key, count(*) FROM kt GROUP BY 1;

-- rotation: new values use version 2, old ones still decrypt
SELECT customer_vault.rotate_key('kl') AS new_version;
SELECT customer_vault.key_of(customer_vault.encrypt('x', 'kl')) AS new_values_use;
SELECT name, version, state, kind, length(fingerprint) AS fp_hex_len, comment FROM customer_vault.keys WHERE name = 'kl' ORDER BY version;
SELECT count(*) AS old_values_decrypt FROM kt WHERE customer_vault.decrypt(v, id::text) = 'value ' || id;

-- the keys view shows no key material: no bytea column, fingerprints differ per version
SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) AS columns
  FROM pg_attribute WHERE attrelid = 'customer_vault.keys'::regclass AND attnum > 0;
SELECT count(DISTINCT fingerprint) AS distinct_fingerprints FROM customer_vault.keys WHERE name = 'kl';

-- reencrypt moves every value to version 2, in batches, and nothing is lost
CALL customer_vault.reencrypt('kt', 'v', 37, 'id');
CALL customer_vault.reencrypt('kt', 'b', 100);
SELECT customer_vault.key_of(v) AS v_key, customer_vault.key_of(b) AS b_key, count(*) FROM kt GROUP BY 1, 2;
SELECT count(*) AS all_decrypt FROM kt
 WHERE customer_vault.decrypt(v, id::text) = 'value ' || id
   AND convert_from(customer_vault.decrypt(b), 'UTF8') = 'bytes ' || id;
-- a second run finds nothing to do
CALL customer_vault.reencrypt('kt', 'v', 37, 'id');
SELECT customer_vault.key_of(v) AS v_key, count(*) FROM kt GROUP BY 1;
-- a wrong context makes reencrypt fail, not corrupt
SELECT customer_vault.rotate_key('kl') AS new_version;
CALL customer_vault.reencrypt('kt', 'v', 1000);
SELECT customer_vault.key_of(v) AS v_key, count(*) FROM kt GROUP BY 1;
CALL customer_vault.reencrypt('kt', 'v', 0);
CALL customer_vault.reencrypt('kt', 'nope');
CALL customer_vault.reencrypt('kt', 'id');
-- reencrypt cannot run inside a transaction block (it commits per batch)
BEGIN;
CALL customer_vault.reencrypt('kt', 'v', 1000, 'id');
ROLLBACK;

-- rewrap with nothing to move
SELECT customer_vault.rewrap_keys() AS rewrapped;
SELECT length(customer_vault.root_key_fingerprint()) AS root_fp_len;

-- the wrapped keys in the table are not the keys: a wrapped key is 60 bytes
-- (nonce, ciphertext, tag) and no two are alike
SELECT count(*) = count(DISTINCT wrapped) AS all_distinct, min(length(wrapped)) AS wrapped_len
  FROM customer_vault.data_keys WHERE wrapped IS NOT NULL;
-- tampering with a wrapped key is detected, not used
BEGIN;
UPDATE customer_vault.data_keys SET wrapped = set_byte(wrapped, 20, get_byte(wrapped, 20) # 1) WHERE name = 'kl' AND version = 2;
SELECT customer_vault.decrypt(v, id::text) FROM kt LIMIT 1;
ROLLBACK;
-- swapping two wrapped keys is detected too (the key id is bound)
BEGIN;
UPDATE customer_vault.data_keys d SET wrapped = (SELECT wrapped FROM customer_vault.data_keys WHERE name = 'kl' AND version = 1)
 WHERE name = 'kl' AND version = 2;
SELECT customer_vault.decrypt(v, id::text) FROM kt LIMIT 1;
ROLLBACK;
SELECT count(*) AS intact_after_rollback FROM kt WHERE customer_vault.decrypt(v, id::text) = 'value ' || id;

DROP TABLE kt;
