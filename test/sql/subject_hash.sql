-- The keyed subject hash (_subject_hash, CvSubjectHash in C): what erasure
-- receipts, export records and the access log store instead of the subject.
-- HMAC-SHA-256 under a dedicated key: stable across sessions, different per
-- subject, untouched by shred_subject and by user key operations, and no key
-- name a user can give reaches it.
\set VERBOSITY terse
SELECT customer_vault._subject_hash('42') AS h42 \gset
SELECT length(:'h42'::bytea) AS hash_bytes,
       customer_vault._subject_hash('42') = :'h42'::bytea AS deterministic,
       customer_vault._subject_hash('43') <> :'h42'::bytea AS differs_43,
       customer_vault._subject_hash('042') <> :'h42'::bytea AS differs_042,
       customer_vault._subject_hash('42 ') <> :'h42'::bytea AS differs_trailing_space,
       sha256('42') <> :'h42'::bytea AS not_a_plain_hash,
       customer_vault._subject_hash(NULL) IS NULL AS strict;
-- one dedicated key, shown as kind subject_hash, stored only wrapped
SELECT name, kind, version, state, comment IS NOT NULL AS has_comment FROM customer_vault.keys WHERE kind = 'subject_hash';
SELECT count(*) AS hash_keys, bool_and(wrapped IS NOT NULL AND subject IS NULL) AS wrapped_not_subject
  FROM customer_vault.data_keys WHERE name = E'\001subject_hash';
-- many subjects: no collisions, always 32 bytes
SELECT count(DISTINCT customer_vault._subject_hash(g::text)) AS distinct_hashes,
       min(length(customer_vault._subject_hash(g::text))) AS min_len
  FROM generate_series(1, 1000) g;

-- shred_subject destroys subject keys, never the hash key; the hash stays
SELECT customer_vault.encrypt_for_subject('42', 'secret') IS NOT NULL AS subject_key_made;
SELECT customer_vault.shred_subject('42') AS shredded;
SELECT customer_vault._subject_hash('42') = :'h42'::bytea AS same_after_shred;
SELECT state FROM customer_vault.keys WHERE kind = 'subject_hash';
-- the subject's own key is a different thing: a returning subject gets a
-- new key, the hash stays the same
SELECT customer_vault.encrypt_for_subject('42', 'again') IS NOT NULL AS new_subject_key;
SELECT customer_vault._subject_hash('42') = :'h42'::bytea AS same_for_returning_subject;

-- no key name a user can give reaches the hash key
SELECT customer_vault.create_key(E'\001subject_hash');
SELECT customer_vault.rotate_key(E'\001subject_hash');
SELECT customer_vault.encrypt('x', E'\001subject_hash');
SELECT customer_vault.blind_index('42', E'\001subject_hash');
SELECT customer_vault.shred_subject(E'\001subject_hash') AS shredded_by_name;
-- a user key called subject_hash is an ordinary key, and changes nothing
SELECT customer_vault.create_key('subject_hash') > 0 AS user_key_made;
SELECT customer_vault.rotate_key('subject_hash') AS rotated_user_key;
SELECT customer_vault.blind_index('42', 'subject_hash') <> :'h42'::bytea AS user_key_differs;
SELECT name, kind, version, state FROM customer_vault.keys WHERE name = 'subject_hash' ORDER BY kind, version;
SELECT customer_vault._subject_hash('42') = :'h42'::bytea AS same_after_user_key;
-- re-wrapping every key (same root key: nothing to do) changes nothing
SELECT customer_vault.rewrap_keys() >= 0 AS rewrapped;
SELECT customer_vault._subject_hash('42') = :'h42'::bytea AS same_after_rewrap;

-- stable across sessions (a new backend unwraps the key again)
\c
SELECT customer_vault._subject_hash('42') = :'h42'::bytea AS same_in_new_session;
-- in a read-only transaction the existing key is used
BEGIN READ ONLY;
SELECT customer_vault._subject_hash('42') = :'h42'::bytea AS same_read_only;
ROLLBACK;
SELECT count(*) AS hash_keys FROM customer_vault.data_keys WHERE name = E'\001subject_hash';

-- nobody but the extension's owner may call it (the matrix checks every role)
CREATE ROLE regress_sh_admin IN ROLE customer_vault_admin;
SET ROLE regress_sh_admin;
SELECT customer_vault._subject_hash('42');
RESET ROLE;
DROP ROLE regress_sh_admin;
