-- The erasure's walk through a foreign-key child whose key compares in a
-- nondeterministic collation (review24 HIGH-1).  The registered tables'
-- subject columns were checked (forget_rev block 1), the children's key
-- columns were not: a case-insensitive key column in a child matched the rows
-- of another subject ('ALICE@example.com' for 'alice@example.com'), so
-- forget_subject('ALICE@example.com') deleted alice's rows past her legal
-- hold and export_subject('ALICE@example.com') handed them out.  Now both
-- refuse (0A000) while such a key is in the reach, also when the collation
-- is changed after the plan was built.
\set VERBOSITY terse
CREATE SCHEMA regress_fc;
-- a statement's outcome: 'ok', or its SQLSTATE and message
CREATE FUNCTION regress_fc.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'legal hold [0-9]+', 'legal hold N');
END
$$;
CREATE COLLATION regress_fc.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
-- 1. (every major) a grandchild whose key and the key it references are
-- both case-insensitive: the walk compares in that collation; refused
CREATE TABLE regress_fc.cust (email text COLLATE "C" PRIMARY KEY, v text);
CREATE TABLE regress_fc.orders (id int PRIMARY KEY, email text COLLATE "C"
                                REFERENCES regress_fc.cust ON DELETE CASCADE, item text,
                                ref text COLLATE regress_fc.ci UNIQUE);
CREATE TABLE regress_fc.lines (ref text COLLATE regress_fc.ci REFERENCES regress_fc.orders(ref), qty int);
INSERT INTO regress_fc.cust VALUES ('bob@example.com', 'bob');
INSERT INTO regress_fc.orders VALUES (10, 'bob@example.com', 'order of bob', 'r10');
INSERT INTO regress_fc.lines VALUES ('R10', 1);
SELECT customer_vault.register_subject_table('regress_fc.cust', 'email');
SELECT regress_fc.try($$SELECT customer_vault.forget_subject('bob@example.com', 'request')$$);
SELECT regress_fc.try($$SELECT customer_vault.export_subject('bob@example.com')$$);
SELECT (SELECT count(*) FROM regress_fc.cust) AS cust, (SELECT count(*) FROM regress_fc.orders) AS orders,
       (SELECT count(*) FROM regress_fc.lines) AS lines;
SELECT customer_vault.unregister_subject_table('regress_fc.cust');
DROP TABLE regress_fc.lines, regress_fc.orders, regress_fc.cust;

-- 2. (before PostgreSQL 18, which refuses a foreign key between columns of
-- different collations when one is nondeterministic) the key column of a
-- child case-insensitive, the parent's subject column byte-wise
SELECT current_setting('server_version_num')::int >= 180000 AS pg18 \gset
\if :pg18
SET client_min_messages = warning;
DROP SCHEMA regress_fc CASCADE;
\quit
\endif
-- the registered parent: its subject column byte-wise (two subjects differing in case)
CREATE TABLE regress_fc.cust (email text COLLATE "C" PRIMARY KEY, v text);
-- the child: its foreign key column case-insensitive
CREATE TABLE regress_fc.orders (id int PRIMARY KEY, email text COLLATE regress_fc.ci
                                REFERENCES regress_fc.cust ON DELETE CASCADE, item text);
INSERT INTO regress_fc.cust VALUES ('alice@example.com', 'alice'), ('ALICE@example.com', 'ALICE');
INSERT INTO regress_fc.orders VALUES (1, 'alice@example.com', 'held order of alice'),
                                     (2, 'ALICE@example.com', 'order of ALICE');
SELECT customer_vault.register_subject_table('regress_fc.cust', 'email');
SELECT customer_vault.place_legal_hold('alice@example.com', 'litigation: keep everything of alice') AS hold \gset
-- the other subject: refused, nothing deleted, nothing exported
SELECT regress_fc.try($$SELECT customer_vault.forget_subject('ALICE@example.com', 'request')$$);
SELECT regress_fc.try($$SELECT customer_vault.export_subject('ALICE@example.com')$$);
SELECT email, v FROM regress_fc.cust ORDER BY v COLLATE "C";
SELECT id, email, item FROM regress_fc.orders ORDER BY id;
-- the held subject: still refused by its hold
SELECT regress_fc.try($$SELECT customer_vault.forget_subject('alice@example.com', 'request')$$);
SELECT count(*) AS holds_active FROM customer_vault.legal_holds WHERE id = :hold AND released_at IS NULL;

-- a byte-wise key: the erasure of ALICE reaches her order only
ALTER TABLE regress_fc.orders ALTER COLUMN email TYPE text COLLATE "C";
SELECT r -> 'tables' AS tables FROM customer_vault.forget_subject('ALICE@example.com', 'request') r;
SELECT email, v FROM regress_fc.cust ORDER BY v COLLATE "C";
SELECT id, email, item FROM regress_fc.orders ORDER BY id;
-- the collation changed after the plan was built (in this session): refused again
INSERT INTO regress_fc.cust VALUES ('ALICE@example.com', 'ALICE again');
INSERT INTO regress_fc.orders VALUES (3, 'ALICE@example.com', 'order of ALICE again');
ALTER TABLE regress_fc.orders ALTER COLUMN email TYPE text COLLATE regress_fc.ci;
SELECT regress_fc.try($$SELECT customer_vault.forget_subject('ALICE@example.com', 'request')$$);
SELECT id, email, item FROM regress_fc.orders ORDER BY id;

-- a grandchild whose byte-wise key references a case-insensitive key of the
-- child: the parent's referenced column (the values handed down) is checked too
ALTER TABLE regress_fc.orders ALTER COLUMN email TYPE text COLLATE "C";
ALTER TABLE regress_fc.orders ADD COLUMN ref text COLLATE regress_fc.ci UNIQUE;
CREATE TABLE regress_fc.lines (ref text COLLATE "C" REFERENCES regress_fc.orders(ref), qty int);
SELECT regress_fc.try($$SELECT customer_vault.forget_subject('ALICE@example.com', 'request')$$);
SELECT regress_fc.try($$SELECT customer_vault.export_subject('ALICE@example.com')$$);
DROP TABLE regress_fc.lines;
SELECT r -> 'tables' AS tables FROM customer_vault.forget_subject('ALICE@example.com', 'request') r;
SELECT id, email, item FROM regress_fc.orders ORDER BY id;

SELECT customer_vault.release_legal_hold(:hold) IS NOT NULL AS released;
SELECT customer_vault.unregister_subject_table('regress_fc.cust');
SET client_min_messages = warning;
DROP SCHEMA regress_fc CASCADE;
RESET client_min_messages;
