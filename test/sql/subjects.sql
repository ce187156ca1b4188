-- Per-subject keys: random, created on first use, stored only wrapped;
-- shred_subject makes every value under the key read as NULL.
\set VERBOSITY terse
CREATE TABLE orders (id int, customer_id bigint, address customer_vault.encrypted_text);
INSERT INTO orders SELECT g, g % 3, customer_vault.encrypt_for_subject((g % 3)::text, 'street ' || g, g::text)
  FROM generate_series(1, 30) g;
SELECT count(*) AS subject_keys FROM customer_vault.keys WHERE kind = 'subject' AND state = 'active';
SELECT count(DISTINCT customer_vault.key_of(address)) AS distinct_keys FROM orders;
SELECT customer_vault.key_of(address) LIKE 'subject:%' AS key_of_hides_subject FROM orders LIMIT 1;
SELECT count(*) AS readable FROM orders WHERE customer_vault.decrypt(address, id::text) = 'street ' || id;
-- the subject identifier is not in the keys view
SELECT count(*) AS subject_column_in_view FROM pg_attribute
 WHERE attrelid = 'customer_vault.keys'::regclass AND attname = 'subject';

-- subject keys are random: the same subject id in a fresh key gives another key
SELECT customer_vault.shred_subject('1') AS shredded;
SELECT count(*) FILTER (WHERE customer_vault.decrypt(address, id::text) IS NULL) AS now_null,
       count(*) FILTER (WHERE customer_vault.decrypt(address, id::text) IS NOT NULL) AS still_readable
  FROM orders;
SELECT customer_vault.shred_subject('1') AS shredded_again;
SELECT customer_vault.shred_subject('never-seen') AS unknown_subject;
-- the destroyed key keeps no key material and no subject identifier
SELECT state, wrapped IS NULL AS no_wrapped_key, subject IS NULL AS no_subject, destroyed_at IS NOT NULL AS dated
  FROM customer_vault.data_keys WHERE state = 'destroyed';
-- a returning customer gets a new key; old values stay unreadable
INSERT INTO orders VALUES (100, 1, customer_vault.encrypt_for_subject('1', 'new street', '100'));
SELECT customer_vault.decrypt(address, '100') FROM orders WHERE id = 100;
SELECT count(*) FILTER (WHERE customer_vault.decrypt(address, id::text) IS NULL) AS old_values_null FROM orders WHERE customer_id = 1;
-- shredding inside a transaction that rolls back destroys nothing
BEGIN;
SELECT customer_vault.shred_subject('2');
SELECT count(*) FILTER (WHERE customer_vault.decrypt(address, id::text) IS NULL) AS null_inside FROM orders WHERE customer_id = 2;
ROLLBACK;
SELECT count(*) FILTER (WHERE customer_vault.decrypt(address, id::text) IS NOT NULL) AS readable_after_rollback FROM orders WHERE customer_id = 2;

-- bad input
SELECT customer_vault.encrypt_for_subject(NULL, 'x');
SELECT customer_vault.encrypt_for_subject('', 'x');
SELECT customer_vault.encrypt_for_subject(repeat('s', 256), 'x');
SELECT customer_vault.encrypt_for_subject('3', NULL) IS NULL AS null_plaintext;
SELECT customer_vault.shred_subject(NULL);
DROP TABLE orders;

-- a key created in a transaction that rolls back never existed: nothing may
-- be sealed under it afterwards
BEGIN;
SELECT customer_vault.key_of(customer_vault.encrypt_for_subject('rolled-back', 'x')) LIKE 'subject:%' AS made;
ROLLBACK;
CREATE TABLE after_rollback AS SELECT customer_vault.encrypt_for_subject('rolled-back', 'kept', 'c') AS v;
SELECT customer_vault.decrypt(v, 'c') AS readable FROM after_rollback;
BEGIN;
SELECT customer_vault.create_key('rolled_back_key') > 0 AS made;
SELECT customer_vault.encrypt('x', 'rolled_back_key') IS NOT NULL AS sealed;
ROLLBACK;
SELECT customer_vault.encrypt('x', 'rolled_back_key');
BEGIN;
SAVEPOINT s1;
SELECT customer_vault.key_of(customer_vault.encrypt_for_subject('sub-rolled-back', 'x')) LIKE 'subject:%' AS made;
ROLLBACK TO s1;
CREATE TABLE after_savepoint AS SELECT customer_vault.encrypt_for_subject('sub-rolled-back', 'kept', 'c') AS v;
COMMIT;
SELECT customer_vault.decrypt(v, 'c') AS readable FROM after_savepoint;
DROP TABLE after_rollback, after_savepoint;
