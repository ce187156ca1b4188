-- The privilege matrix: PUBLIC gets nothing but the type I/O and is_sealed;
-- writer encrypts, reader decrypts, admin manages keys; nobody reads wrapped
-- keys; a hostile search_path does not reach into the extension's functions.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_cv_nobody;
CREATE ROLE regress_cv_app IN ROLE customer_vault_writer;
CREATE ROLE regress_cv_analyst IN ROLE customer_vault_reader;
CREATE ROLE regress_cv_admin IN ROLE customer_vault_admin;
RESET client_min_messages;

-- what PUBLIC may execute
SELECT p.oid::regprocedure AS public_executable
  FROM pg_proc p
 WHERE p.pronamespace = 'customer_vault'::regnamespace
   AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))
 ORDER BY p.oid::regprocedure::text;
-- no table, view or sequence of the extension is open to PUBLIC
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'customer_vault'::regnamespace AND c.relkind IN ('r', 'v', 'S', 'm')
   AND (c.relacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0));
-- SECURITY DEFINER only where needed, and then with a pinned search_path
SELECT p.oid::regprocedure AS security_definer, p.proconfig
  FROM pg_proc p WHERE p.pronamespace = 'customer_vault'::regnamespace AND p.prosecdef
 ORDER BY p.oid::regprocedure::text;

SELECT customer_vault.create_key('priv_key') > 0 AS created;
CREATE TABLE priv_t (id int PRIMARY KEY, v customer_vault.encrypted_text);
INSERT INTO priv_t VALUES (1, customer_vault.encrypt('top secret', 'priv_key', '1'));
GRANT SELECT, INSERT ON priv_t TO regress_cv_nobody, regress_cv_app, regress_cv_analyst, regress_cv_admin;

-- a role with no grant: nothing works, nothing about keys is visible
SET ROLE regress_cv_nobody;
SELECT customer_vault.decrypt(v, '1') FROM priv_t;
SELECT customer_vault.encrypt('x', 'priv_key');
SELECT customer_vault.blind_index('x', 'priv_key');
SELECT customer_vault.create_key('nobody_key');
SELECT customer_vault.encrypt_for_subject('s', 'x');
SELECT customer_vault.shred_subject('s');
SELECT * FROM customer_vault.data_keys;
SELECT * FROM customer_vault.keys;
SELECT customer_vault.root_key_fingerprint();
SELECT customer_vault.key_of(v) FROM priv_t;
-- the type itself is usable (ciphertext in, ciphertext out)
SELECT v::text LIKE 'cv1$%' AS ciphertext_only FROM priv_t;
RESET ROLE;

-- the writer stores data and never reads it back
SET ROLE regress_cv_app;
INSERT INTO priv_t VALUES (2, customer_vault.encrypt('written by app', 'priv_key', '2'));
INSERT INTO priv_t VALUES (3, customer_vault.encrypt_for_subject('cust-3', 'subject data', '3'));
-- computing a blind index for a guess is a read right: not the writer's
SELECT length(customer_vault.blind_index('x', 'priv_key')) AS bidx_len;
SELECT customer_vault.decrypt(v, '2') FROM priv_t WHERE id = 2;
SELECT * FROM customer_vault.data_keys;
INSERT INTO customer_vault.data_keys (name, version, fingerprint) VALUES ('forged', 1, '\x00');
SELECT customer_vault.create_key('app_key');
RESET ROLE;

-- the reader decrypts, and cannot manage keys or see wrapped keys
SET ROLE regress_cv_analyst;
SELECT id, customer_vault.decrypt(v, id::text) FROM priv_t ORDER BY id;
SELECT customer_vault.encrypt('x', 'priv_key');
SELECT customer_vault.rotate_key('priv_key');
SELECT wrapped FROM customer_vault.data_keys;
RESET ROLE;

-- the admin manages keys without being able to decrypt
SET ROLE regress_cv_admin;
SELECT customer_vault.rotate_key('priv_key') AS rotated;
SELECT name, version, state FROM customer_vault.keys WHERE name = 'priv_key' ORDER BY version;
SELECT customer_vault.decrypt(v, '1') FROM priv_t WHERE id = 1;
SELECT wrapped FROM customer_vault.data_keys;
SELECT customer_vault.shred_subject('cust-3') AS shredded;
RESET ROLE;
SELECT id, customer_vault.decrypt(v, id::text) IS NULL AS unreadable FROM priv_t ORDER BY id;

-- protected table: the app writes plaintext and the trigger seals it; only
-- readers with table access see plaintext through <table>_decrypted
CREATE TABLE priv_customers (id int PRIMARY KEY, email text);
SELECT customer_vault.protect_column('priv_customers', 'email', 'priv_key', 'id');
GRANT SELECT, INSERT, UPDATE ON priv_customers TO regress_cv_app, regress_cv_analyst;
SET ROLE regress_cv_app;
INSERT INTO priv_customers VALUES (1, 'app@example.com');
SELECT customer_vault.is_sealed(email) AS sealed FROM priv_customers;
SELECT * FROM priv_customers_decrypted;
RESET ROLE;
SET ROLE regress_cv_analyst;
SELECT * FROM priv_customers_decrypted;
RESET ROLE;
SET ROLE regress_cv_nobody;
SELECT * FROM priv_customers_decrypted;
RESET ROLE;

-- a hostile search_path: shadowing functions and operators in a schema the
-- caller searches first must not change what the extension runs
CREATE SCHEMA regress_evil;
CREATE TABLE regress_evil.calls (what text);
CREATE FUNCTION regress_evil.format(text, text, text) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO regress_evil.calls VALUES ('format') RETURNING 'SELECT 1' $$;
CREATE FUNCTION regress_evil.length(text) RETURNS integer LANGUAGE sql
    AS $$ INSERT INTO regress_evil.calls VALUES ('length') RETURNING 1 $$;
CREATE FUNCTION regress_evil.quote_ident(text) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO regress_evil.calls VALUES ('quote_ident') RETURNING 'x' $$;
CREATE FUNCTION regress_evil.texteq_evil(text, text) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO regress_evil.calls VALUES ('=') RETURNING true $$;
CREATE OPERATOR regress_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_evil.texteq_evil);
CREATE TABLE evil_target (id int PRIMARY KEY, secret text);
INSERT INTO evil_target VALUES (1, 'evil-test@example.com');
SET search_path = regress_evil, public, pg_catalog;
SELECT customer_vault.protect_column('evil_target', 'secret', 'priv_key', 'id');
SELECT customer_vault.rotate_key('priv_key') > 0 AS rotated;
CALL customer_vault.reencrypt('evil_target', 'secret', 10);
RESET search_path;
SELECT count(*) AS evil_calls FROM regress_evil.calls;
SELECT secret FROM evil_target_decrypted;

DROP TABLE priv_t, priv_customers, evil_target CASCADE;
DROP SCHEMA regress_evil CASCADE;
DROP ROLE regress_cv_nobody, regress_cv_app, regress_cv_analyst, regress_cv_admin;
