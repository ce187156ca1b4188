-- Review of the per-table protect trigger (issue 15): a generated column is
-- computed after BEFORE row triggers, so cv_protect would see NULL (INSERT) or
-- the old value (UPDATE): protect_column refuses one as the context, the
-- protected or the blind index column.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE SCHEMA regress_prv;
RESET client_min_messages;
SELECT customer_vault.create_key('prv_key') > 0 AS created;

CREATE TABLE regress_prv.gen (a int, id int GENERATED ALWAYS AS (a * 10) STORED, s text,
                              g text GENERATED ALWAYS AS ('x' || a) STORED,
                              b bytea GENERATED ALWAYS AS ('\x00'::bytea) STORED, b2 bytea);
INSERT INTO regress_prv.gen (a, s) VALUES (1, 'gen one');
-- generated context column
SELECT customer_vault.protect_column('regress_prv.gen', 's', 'prv_key', 'id');
-- generated protected column
SELECT customer_vault.protect_column('regress_prv.gen', 'g', 'prv_key');
SELECT customer_vault.protect_column('regress_prv.gen', 'g', 'prv_key', 'a');
-- generated blind index column
SELECT customer_vault.protect_column('regress_prv.gen', 's', 'prv_key', 'a', 'b');
-- nothing was registered, the column is still plaintext
SELECT count(*) FROM customer_vault.protected_columns WHERE relid = 'regress_prv.gen'::regclass;
SELECT s, g FROM regress_prv.gen;
-- an ordinary context column still works; the row decrypts after an update of it
SELECT customer_vault.protect_column('regress_prv.gen', 's', 'prv_key', 'a', 'b2');
INSERT INTO regress_prv.gen (a, s) VALUES (2, 'gen two');
UPDATE regress_prv.gen SET a = 3, s = 'gen three' WHERE a = 1;
SELECT a, id, s FROM regress_prv.gen_decrypted ORDER BY a;
-- an unknown context column is still reported as such
ALTER TABLE regress_prv.gen ADD COLUMN t text;
SELECT customer_vault.protect_column('regress_prv.gen', 't', 'prv_key', 'nope');

SET client_min_messages = warning;
DROP SCHEMA regress_prv CASCADE;
RESET client_min_messages;
