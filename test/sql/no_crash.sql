-- No input crashes the server (issue 9, crashes): a NULL argument of a
-- non-STRICT C function, a key cache that outgrows its limit in the middle of
-- a statement (key references stay valid for the whole statement), and a
-- protected table whose columns were changed under the protect trigger.
\set VERBOSITY terse
SELECT customer_vault.create_key('nc_key') > 0 AS created;

-- NULL arguments of every non-STRICT C function: NULL or a clear error, never a crash
SELECT customer_vault._reseal(NULL::customer_vault.encrypted_text, NULL) IS NULL AS reseal_text_null;
SELECT customer_vault._reseal(NULL::customer_vault.encrypted_bytea, 'ctx') IS NULL AS reseal_bytea_null;
SELECT customer_vault._reseal(NULL::text, NULL, true) IS NULL AS reseal_form_null;
SELECT customer_vault._reseal('x'::text, NULL, NULL);
SELECT customer_vault._seal_column(NULL, NULL, NULL) IS NULL AS seal_null;
SELECT customer_vault._seal_column('x', NULL, 'c');
SELECT customer_vault._seal_column('x', 'nc_key', NULL);
SELECT customer_vault._open_column(NULL, NULL) IS NULL AS open_null;
SELECT customer_vault._open_column('x', NULL);
SELECT customer_vault.encrypt(NULL::text, 'nc_key') IS NULL AS encrypt_null;
SELECT customer_vault.encrypt('x'::text, NULL);
SELECT customer_vault.decrypt(NULL::customer_vault.encrypted_text) IS NULL AS decrypt_null;
SELECT customer_vault.decrypt(customer_vault.encrypt('x', 'nc_key'), NULL) AS decrypt_null_context;
SELECT customer_vault.encrypt_for_subject(NULL, 'x');
SELECT customer_vault.encrypt_for_subject('nc-subject', NULL) IS NULL AS subject_null_plaintext;
SELECT customer_vault.create_key(NULL);
SELECT customer_vault.shred_subject(NULL);
SELECT customer_vault._row_context(NULL, 1) IS NULL AS row_context_null;
SELECT customer_vault._row_context('b', NULL::int) IS NULL AS row_context_null_value;

-- More keys than the cache holds (4,096), all used by one statement: re-sealing
-- a value reads its key, then the active version of the name; on 0.1.0 the
-- second lookup flushed the cache under the first (use-after-free, a crash).
SET client_min_messages = warning;
DO $$
BEGIN
    FOR i IN 1 .. 2100 LOOP
        PERFORM customer_vault.create_key('nc_many_' || i);
    END LOOP;
END $$;
CREATE TABLE nc_many (i int, v customer_vault.encrypted_text);
INSERT INTO nc_many SELECT i, customer_vault.encrypt('value ' || i, 'nc_many_' || i, i::text)
  FROM generate_series(1, 2100) i;
DO $$
BEGIN
    FOR i IN 1 .. 2100 LOOP
        PERFORM customer_vault.rotate_key('nc_many_' || i);
    END LOOP;
END $$;
RESET client_min_messages;
SELECT count(*) AS key_versions FROM customer_vault.keys WHERE name LIKE 'nc\_many\_%';
-- one statement touches all 4,200 key versions
UPDATE nc_many SET v = customer_vault._reseal(v, i::text);
SELECT count(*) FILTER (WHERE customer_vault.key_of(v) = 'nc_many_' || i || ':2') AS on_version_2,
       count(*) FILTER (WHERE customer_vault.decrypt(v, i::text) = 'value ' || i) AS readable
  FROM nc_many;
-- and again in the next statements, after the cache was trimmed at the boundary
SELECT count(*) AS readable_again FROM nc_many WHERE customer_vault.decrypt(v, i::text) = 'value ' || i;
SELECT count(*) AS readable_in_one_function FROM (
    SELECT customer_vault.decrypt(v, i::text) AS p, i FROM nc_many) s WHERE p = 'value ' || i;
DROP TABLE nc_many;

-- the session's own shred holds at once, also later in the same statement
DO $$
DECLARE
    v customer_vault.encrypted_text := customer_vault.encrypt_for_subject('nc-shred', 'secret');
BEGIN
    IF customer_vault.decrypt(v) IS DISTINCT FROM 'secret' THEN
        RAISE EXCEPTION 'not readable before the shred';
    END IF;
    PERFORM customer_vault.shred_subject('nc-shred');
    RAISE NOTICE 'after the shred, in the same statement: %', customer_vault.decrypt(v);
END $$;

-- the owner renames the protected column and adds an integer column under
-- its old name: the trigger refuses (on 0.1.0 the server crashed)
CREATE TABLE nc_prot (id bigint PRIMARY KEY, email text, note text);
INSERT INTO nc_prot VALUES (1, 'one@example.com', 'n1');
SELECT customer_vault.protect_column('nc_prot', 'email', 'nc_key', 'id', 'email_bidx');
-- (the guard event trigger refuses such renames, see blind_index_review; a
-- superuser can switch it off, and the trigger must hold without it)
ALTER TABLE nc_prot RENAME COLUMN email TO email_old;
ALTER EVENT TRIGGER customer_vault_guard_decrypted_views DISABLE;
ALTER TABLE nc_prot RENAME COLUMN email TO email_old;
ALTER TABLE nc_prot ADD COLUMN email integer;
INSERT INTO nc_prot (id, email) VALUES (2, 42);
INSERT INTO nc_prot (id, email_old) VALUES (3, 'three@example.com');
UPDATE nc_prot SET email_old = 'x' WHERE id = 1;
ALTER TABLE nc_prot DROP COLUMN email;
ALTER TABLE nc_prot RENAME COLUMN email_old TO email;
INSERT INTO nc_prot (id, email) VALUES (4, 'four@example.com');
SELECT id, email FROM nc_prot_decrypted ORDER BY id;
-- the blind index column replaced by one of another type
ALTER TABLE nc_prot RENAME COLUMN email_bidx TO email_bidx_old;
ALTER TABLE nc_prot ADD COLUMN email_bidx text;
INSERT INTO nc_prot (id, email) VALUES (5, 'five@example.com');
ALTER TABLE nc_prot DROP COLUMN email_bidx;
ALTER TABLE nc_prot RENAME COLUMN email_bidx_old TO email_bidx;
ALTER EVENT TRIGGER customer_vault_guard_decrypted_views ENABLE;
-- (a column named in the trigger cannot change its type: PostgreSQL refuses)
ALTER TABLE nc_prot ALTER COLUMN id TYPE text;
-- as it was: works again
INSERT INTO nc_prot (id, email) VALUES (8, 'eight@example.com');
SELECT id, email, email_bidx IS NOT NULL AS has_bidx
  FROM nc_prot_decrypted ORDER BY id;
DROP TABLE nc_prot CASCADE;
