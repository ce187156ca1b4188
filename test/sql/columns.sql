-- protect_column: in-place conversion, transparent INSERT/UPDATE (literals,
-- bind parameters, COPY), blind index kept current and used by an Index Scan,
-- <table>_decrypted, values bound to column and row, quoted identifiers.
\set VERBOSITY terse
SELECT customer_vault.create_key('col_key') > 0 AS created;
CREATE TABLE customers (id bigint PRIMARY KEY, email text, phone varchar(20), created_at timestamptz DEFAULT now());
INSERT INTO customers (id, email, phone)
  SELECT g, 'user' || g || '@example.com', '+49 30 ' || g FROM generate_series(1, 200) g;
INSERT INTO customers (id, email) VALUES (201, NULL);

SELECT customer_vault.protect_column('customers', 'email', 'col_key', 'id', 'email_bidx');
SELECT customer_vault.protect_column('customers', 'phone', 'col_key', 'id');
-- no plaintext left in the table; every value is an envelope
SELECT count(*) FILTER (WHERE email LIKE '%@example.com') AS plain_emails,
       count(*) FILTER (WHERE customer_vault.is_sealed(email)) AS sealed_emails,
       count(*) FILTER (WHERE phone LIKE '+49%') AS plain_phones,
       count(*) FILTER (WHERE email IS NULL) AS nulls,
       count(*) FILTER (WHERE email_bidx IS NULL) AS null_bidx
  FROM customers;
SELECT id, email, phone FROM customers_decrypted WHERE id IN (1, 2, 201) ORDER BY id;

-- an unchanged application: literals, bind parameters, multi-row, COPY
INSERT INTO customers (id, email, phone) VALUES (1001, 'lit@example.com', '+1 555');
PREPARE ins(bigint, text, text) AS INSERT INTO customers (id, email, phone) VALUES ($1, $2, $3);
EXECUTE ins(1002, 'bind@example.com', '+1 556');
COPY customers (id, email, phone) FROM stdin;
1003	copy@example.com	+1 557
\.
SELECT id, customer_vault.is_sealed(email) AS sealed, email NOT LIKE '%example%' AS opaque
  FROM customers WHERE id > 1000 ORDER BY id;
SELECT id, email, phone FROM customers_decrypted WHERE id > 1000 ORDER BY id;
UPDATE customers SET email = 'changed@example.com' WHERE id = 1001;
PREPARE upd(bigint, text) AS UPDATE customers SET email = $2 WHERE id = $1;
EXECUTE upd(1002, 'bind-changed@example.com');
SELECT id, email FROM customers_decrypted WHERE id IN (1001, 1002) ORDER BY id;

-- blind index follows the value and is used by an index scan
SELECT id FROM customers WHERE email_bidx = customer_vault.column_blind_index('customers', 'email', 'changed@example.com');
SELECT count(*) AS stale FROM customers WHERE email_bidx = customer_vault.column_blind_index('customers', 'email', 'lit@example.com');
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM customers WHERE email_bidx = customer_vault.column_blind_index('customers', 'email', 'user7@example.com');
SELECT id FROM customers WHERE email_bidx = customer_vault.column_blind_index('customers', 'email', 'user7@example.com');
RESET enable_seqscan;
RESET enable_bitmapscan;
-- an application cannot forge the blind index
UPDATE customers SET email_bidx = '\x00' WHERE id = 5;
SELECT email_bidx = customer_vault.column_blind_index('customers', 'email', 'user5@example.com') AS restored FROM customers WHERE id = 5;
-- an unrelated update does not re-encrypt
CREATE TEMP TABLE before AS SELECT id, email FROM customers WHERE id = 6;
UPDATE customers SET created_at = created_at WHERE id = 6;
SELECT c.email = b.email AS unchanged_ciphertext FROM customers c JOIN before b USING (id);
-- changing the row's context re-binds the value
UPDATE customers SET id = 7006 WHERE id = 6;
SELECT id, email FROM customers_decrypted WHERE id = 7006;

-- ciphertext moved to another row or column is refused by the trigger
UPDATE customers SET email = (SELECT email FROM customers WHERE id = 1) WHERE id = 2;
UPDATE customers SET phone = (SELECT email FROM customers WHERE id = 3) WHERE id = 3;
INSERT INTO customers (id, email) SELECT 5000, email FROM customers WHERE id = 4;
-- ... and if the trigger is bypassed, decrypting it fails
SET session_replication_role = replica;
UPDATE customers SET email = (SELECT email FROM customers WHERE id = 1) WHERE id = 2;
RESET session_replication_role;
SELECT email FROM customers_decrypted WHERE id = 2;
UPDATE customers SET email = 'user2@example.com' WHERE id = 2;
-- the CHECK refuses plaintext even with triggers bypassed
SET session_replication_role = replica;
INSERT INTO customers (id, email) VALUES (5001, 'sneaky@example.com');
RESET session_replication_role;
-- a NULL context is refused, NULL values pass
INSERT INTO customers (id, email) VALUES (5002, NULL);
SELECT email IS NULL AND email_bidx IS NULL AS null_ok FROM customers WHERE id = 5002;

-- bad calls
SELECT customer_vault.protect_column('customers', 'email', 'col_key', 'id');
SELECT customer_vault.protect_column('customers', 'nope', 'col_key');
SELECT customer_vault.protect_column('customers', 'id', 'col_key');
SELECT customer_vault.protect_column('customers', 'created_at', 'col_key');
SELECT customer_vault.protect_column('customers_decrypted', 'email', 'col_key');
SELECT customer_vault.protect_column('no_such_table', 'email', 'col_key');
CREATE TABLE other (id int, secret text);
SELECT customer_vault.protect_column('other', 'secret', 'no_such_key');
SELECT customer_vault.protect_column('other', 'secret', 'col_key', 'nope');
SELECT customer_vault.protect_column('other', 'secret', 'col_key', 'secret');
SELECT customer_vault.protect_column('other', 'secret', 'col_key', 'id', 'id');
SELECT customer_vault.protect_column(NULL, 'secret', 'col_key');
-- a row with a value but no context: the conversion is refused, nothing is lost
INSERT INTO other VALUES (1, 'has context'), (NULL, 'no context'), (NULL, NULL);
SELECT customer_vault.protect_column('other', 'secret', 'col_key', 'id');
SELECT id, secret FROM other ORDER BY id NULLS LAST, secret NULLS LAST;

-- identifiers are quoted throughout: odd table and column names
CREATE SCHEMA "odd schema";
CREATE TABLE "odd schema"."Odd ""Table""; DROP TABLE customers; --" ("Id" int PRIMARY KEY, "e-mail; x" text);
INSERT INTO "odd schema"."Odd ""Table""; DROP TABLE customers; --" VALUES (1, 'odd@example.com');
SELECT customer_vault.protect_column('"odd schema"."Odd ""Table""; DROP TABLE customers; --"', 'e-mail; x', 'col_key', 'Id', 'bidx "x"');
INSERT INTO "odd schema"."Odd ""Table""; DROP TABLE customers; --" VALUES (2, 'odd2@example.com');
SELECT "Id", "e-mail; x" FROM "odd schema"."Odd ""Table""; DROP TABLE customers; --_decrypted" ORDER BY 1;
SELECT count(*) AS customers_still_there FROM customers;

-- rotation of a protected column
SELECT customer_vault.rotate_key('col_key') AS v;
CALL customer_vault.reencrypt('customers', 'email', 50);
SELECT customer_vault.key_of(email::customer_vault.encrypted_text) AS key, count(*) FROM customers WHERE email IS NOT NULL GROUP BY 1;
SELECT count(*) AS readable FROM customers_decrypted WHERE email LIKE '%@example.com';
-- blind indexes stay comparable across rotations
SELECT id FROM customers WHERE email_bidx = customer_vault.column_blind_index('customers', 'email', 'user9@example.com');
INSERT INTO customers (id, email) VALUES (6000, 'after-rotation@example.com');
SELECT id FROM customers WHERE email_bidx = customer_vault.column_blind_index('customers', 'email', 'after-rotation@example.com');

SELECT schema_name, table_name, column_name, key_name, binding, context_column, blind_index_column
  FROM customer_vault.protected_columns ORDER BY 1, 2, 3;
DROP TABLE other;
DROP SCHEMA "odd schema" CASCADE;
-- dropped tables and columns are forgotten: a new table of the same name can be protected
SELECT schema_name, table_name, column_name FROM customer_vault.protected_columns ORDER BY 1, 2, 3;
ALTER TABLE customers DROP COLUMN phone CASCADE;
SELECT column_name FROM customer_vault.protected_columns WHERE table_name = 'customers';
DROP TABLE customers CASCADE;
SELECT count(*) AS rows_left FROM customer_vault.protected_columns;
CREATE TABLE customers (id bigint PRIMARY KEY, email text, phone text);
INSERT INTO customers VALUES (1, 'again@example.com', '+1');
SELECT customer_vault.protect_column('customers', 'email', 'col_key', 'id');
SELECT id, email, phone FROM customers_decrypted;
DROP TABLE customers CASCADE;
