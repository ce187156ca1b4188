-- What the review of the blind-index change found, each closed:
--  * lookup() re-checks the matching ROWS as the caller, not their context
--    values: a row hidden by row security never counts, even when a visible
--    row (or one the writer inserted) shares its context value;
--  * the registry names the table by OID: protected tables, their columns
--    and schema cannot be renamed; a table that merely has a protected
--    table's old name gets nothing of its protection, and dropping it
--    leaves the protected table's row alone;
--  * _finish_protection completes only what _register_protection just
--    registered (protect_column), never a registry row found lying around;
--  * no type (composite, enum) takes the name of a decrypted view;
--  * updating from 0.1.0 trusts nothing a 0.1.0 admin could plant: views
--    named <table>_decrypted are dropped and rebuilt (never re-owned),
--    registry rows and protect triggers that do not check out are removed.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_br_app IN ROLE customer_vault_writer;
CREATE ROLE regress_br_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_br_reader IN ROLE customer_vault_reader;
RESET client_min_messages;
SELECT customer_vault.create_key('br_key') > 0 AS created;
CREATE SCHEMA regress_br AUTHORIZATION regress_br_admin;
GRANT USAGE ON SCHEMA regress_br TO regress_br_app, regress_br_reader;

-- lookup and row security: rows 1-10 visible to the writer, the rest hidden
SET ROLE regress_br_admin;
CREATE TABLE regress_br.orders (id int PRIMARY KEY, customer int, note text, other text);
INSERT INTO regress_br.orders VALUES (1, 7, 'visible note', 'a'), (20, 7, 'hidden secret', 'b'),
                                     (21, 99, 'another secret', 'c');
SELECT customer_vault.protect_column('regress_br.orders', 'note', 'br_key', 'customer', 'note_bidx');
ALTER TABLE regress_br.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY writer_sees ON regress_br.orders TO regress_br_app USING (id <= 10);
GRANT SELECT (id, customer, note), INSERT ON regress_br.orders TO regress_br_app;
RESET ROLE;
SET ROLE regress_br_app;
-- by primary key (the writer may read some columns only)
SELECT * FROM customer_vault.lookup('regress_br.orders', 'note', 'visible note');
SELECT count(*) AS hidden_row_sharing_context FROM customer_vault.lookup('regress_br.orders', 'note', 'hidden secret');
INSERT INTO regress_br.orders (id, customer, note) VALUES (5, 99, 'mine');
SELECT count(*) AS hidden_row_sharing_own_context FROM customer_vault.lookup('regress_br.orders', 'note', 'another secret');
SELECT * FROM customer_vault.lookup('regress_br.orders', 'note', 'mine');
RESET ROLE;
-- by (tableoid, ctid) (the writer may read the whole table)
GRANT SELECT ON regress_br.orders TO regress_br_app;
SET ROLE regress_br_app;
SELECT * FROM customer_vault.lookup('regress_br.orders', 'note', 'visible note');
SELECT count(*) AS hidden_row_sharing_context FROM customer_vault.lookup('regress_br.orders', 'note', 'hidden secret');
SELECT count(*) AS hidden_row_sharing_own_context FROM customer_vault.lookup('regress_br.orders', 'note', 'another secret');
RESET ROLE;
-- without a primary key and without the table-wide privilege: the same error, match or not
CREATE TABLE regress_br.nopk (customer int, note text);
ALTER TABLE regress_br.nopk OWNER TO regress_br_admin;
INSERT INTO regress_br.nopk VALUES (1, 'x');
SELECT customer_vault.protect_column('regress_br.nopk', 'note', 'br_key', 'customer', 'note_bidx');
GRANT SELECT (customer, note) ON regress_br.nopk TO regress_br_app;
GRANT SELECT ON regress_br.nopk TO regress_br_reader;
SET ROLE regress_br_app;
SELECT customer_vault.lookup('regress_br.nopk', 'note', 'x');
SELECT customer_vault.lookup('regress_br.nopk', 'note', 'y');
RESET ROLE;
SELECT role, table_name, calls, found FROM customer_vault.blind_index_lookup_counts
 WHERE schema_name = 'regress_br' ORDER BY 1, 2;

-- the registry holds the table's OID
SELECT table_name, column_name, relid = 'regress_br.orders'::regclass AS same_table
  FROM customer_vault.protected_columns WHERE schema_name = 'regress_br' AND table_name = 'orders';
-- renames and moves of a protected table, its columns and its schema are
-- refused, to its owner and to a superuser
CREATE SCHEMA regress_br2 AUTHORIZATION regress_br_admin;
ALTER TABLE regress_br.orders SET SCHEMA regress_br2;
ALTER SCHEMA regress_br RENAME TO regress_br3;
SET ROLE regress_br_admin;
ALTER TABLE regress_br.orders RENAME TO orders_old;
ALTER TABLE regress_br.orders RENAME COLUMN note TO remark;
ALTER TABLE regress_br.orders RENAME COLUMN customer TO client;
ALTER TABLE regress_br.orders RENAME COLUMN note_bidx TO nb;
ALTER TABLE regress_br.orders SET SCHEMA regress_br2;
-- other columns may be renamed
ALTER TABLE regress_br.orders RENAME COLUMN other TO other2;
-- finishing a protection nobody started is refused, even on one's own table
SELECT customer_vault._finish_protection('regress_br.orders', 'note');
SELECT customer_vault._register_protection('regress_br.orders', 'note', 'br_key', NULL, NULL, NULL);
RESET ROLE;
SELECT count(*) AS protect_triggers FROM pg_trigger
 WHERE tgrelid = 'regress_br.orders'::regclass AND tgname LIKE 'cv\_protect%';

-- a superuser goes around the guard: the row keeps naming the old table; a
-- new table of that name gets nothing, and dropping it keeps the row
ALTER EVENT TRIGGER customer_vault_guard_decrypted_views DISABLE;
ALTER TABLE regress_br.orders RENAME TO orders_old;
ALTER EVENT TRIGGER customer_vault_guard_decrypted_views ENABLE;
SET ROLE regress_br_admin;
CREATE TABLE regress_br.orders (id int PRIMARY KEY, customer int, note text, note_bidx bytea);
SELECT customer_vault._finish_protection('regress_br.orders', 'note');
SELECT customer_vault._blind_index_rewrite('regress_br.orders', 'note', 'hidden secret');
DROP TABLE regress_br.orders;
RESET ROLE;
SELECT table_name, relid::regclass FROM customer_vault.protected_columns
 WHERE schema_name = 'regress_br' ORDER BY 1;

-- no type takes the decrypted view's name (it would block the view's rebuild)
SET ROLE regress_br_admin;
DROP VIEW regress_br.nopk_decrypted;
CREATE TYPE regress_br.nopk_decrypted AS (a int);
CREATE TYPE regress_br.nopk_decrypted AS ENUM ('a');
CREATE DOMAIN regress_br.nopk_decrypted AS int;
CREATE TYPE regress_br.other AS (a int);
ALTER TYPE regress_br.other RENAME TO nopk_decrypted;
DROP TYPE regress_br.other;
SELECT customer_vault._refresh_decrypted_view('regress_br.nopk');
RESET ROLE;
SET ROLE regress_br_reader;
SELECT customer, note FROM regress_br.nopk_decrypted;
RESET ROLE;

DROP SCHEMA regress_br, regress_br2 CASCADE;
DELETE FROM customer_vault.blind_index_lookups;

-- the update from 0.1.0, with what a 0.1.0 admin could plant
\set orig_db :DBNAME
DROP DATABASE IF EXISTS regress_cv_review;
CREATE DATABASE regress_cv_review;
\c regress_cv_review
SET client_min_messages = warning;
CREATE EXTENSION pgcrypto;
CREATE EXTENSION customer_vault VERSION '0.1.0';
RESET client_min_messages;
SELECT customer_vault.create_key('uk') > 0 AS created;
-- the victim: a protected table of the superuser
CREATE TABLE victim (id int PRIMARY KEY, diag text);
INSERT INTO victim VALUES (1, 'rare'), (2, 'common');
SELECT customer_vault.protect_column('victim', 'diag', 'uk', 'id', 'diag_bidx');
GRANT SELECT ON victim TO regress_br_reader;
SELECT binding AS victim_binding FROM customer_vault.protected_columns WHERE table_name = 'victim' \gset
CREATE TABLE victim2 (id int PRIMARY KEY, note text);
INSERT INTO victim2 VALUES (1, 'two');
SELECT customer_vault.protect_column('victim2', 'note', 'uk', 'id');
GRANT SELECT ON victim2 TO regress_br_reader;
CREATE SCHEMA adm AUTHORIZATION regress_br_admin;
SET ROLE regress_br_admin;
-- 1. a view of pg_authid named like a decrypted view, and a registry row for it
CREATE TABLE adm.x (v text);
CREATE VIEW adm.x_decrypted AS SELECT * FROM pg_authid;
GRANT SELECT, UPDATE ON adm.x_decrypted TO PUBLIC;
INSERT INTO customer_vault.protected_columns (schema_name, table_name, column_name, key_name, binding)
VALUES ('adm', 'x', 'v', 'uk', '8:adm.x.v');
-- 2. a protect trigger with the victim's binding on a table of the admin,
-- and a registry row for it with the victim's binding
CREATE TABLE adm.g (id int, v text, v_bidx bytea);
CREATE TRIGGER cv_protect_2 BEFORE INSERT ON adm.g FOR EACH ROW
    EXECUTE FUNCTION customer_vault._protect_trigger('v', 'uk', :'victim_binding', '', 'v_bidx');
INSERT INTO customer_vault.protected_columns (schema_name, table_name, column_name, key_name, binding, blind_index_column)
VALUES ('adm', 'g', 'v', 'uk', :'victim_binding', 'v_bidx');
-- 3. the row of another victim edited: it is restored from the victim's trigger
UPDATE customer_vault.protected_columns SET key_name = 'other', context_column = NULL WHERE table_name = 'victim2';
RESET ROLE;
ALTER EXTENSION customer_vault UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'customer_vault';
-- the planted view is gone (never re-owned), and so are the rows and the trigger
SELECT to_regclass('adm.x_decrypted') AS planted_view;
SELECT schema_name, table_name, column_name, key_name, context_column, relid::regclass
  FROM customer_vault.protected_columns ORDER BY 1, 2;
SELECT tgrelid::regclass, tgname FROM pg_trigger WHERE tgname LIKE 'cv\_protect%' ORDER BY 1;
SET ROLE regress_br_admin;
UPDATE adm.x_decrypted SET rolsuper = true WHERE rolname = 'regress_br_admin';
INSERT INTO adm.g VALUES (1, 'rare');
SELECT customer_vault._finish_protection('adm.g', 'v');
RESET ROLE;
SELECT count(*) AS victim_index_computed FROM adm.g g JOIN victim v ON v.diag_bidx = g.v_bidx;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_br_admin';
-- the victim's protection stands: its view, made by the extension's owner
SELECT c.relowner = e.extowner AS owned_by_extension_owner
  FROM pg_class c, pg_extension e WHERE e.extname = 'customer_vault' AND c.oid = 'victim_decrypted'::regclass;
SET ROLE regress_br_reader;
SELECT id, diag FROM victim_decrypted ORDER BY id;
SELECT id, note FROM victim2_decrypted;
RESET ROLE;
INSERT INTO victim2 VALUES (2, 'plain');
SELECT id, customer_vault.is_sealed(note) AS sealed FROM victim2 ORDER BY id;
INSERT INTO victim VALUES (3, 'rare');
SELECT count(DISTINCT diag_bidx) AS distinct_indexes FROM victim;
\c :orig_db
DROP DATABASE regress_cv_review;
DROP ROLE regress_br_app, regress_br_admin, regress_br_reader;
