-- Review 24, MEDIUM-2: lookup()'s query that runs as the table's owner does
-- so with search_path = pg_catalog, pg_temp (as CvBecomeTableOwner pins it),
-- so the caller's search_path cannot change what the owner's code runs.
-- Here the owner's row security policy (FORCE ROW LEVEL SECURITY) calls an
-- SQL function of the owner's written with unqualified names; the caller
-- puts a schema of its own first on its search_path, with an abs(integer)
-- of its own.  Failed before: the caller's abs ran as regress_r24p_owner
-- (a notice per row the owner's query read).  Now no notice, and lookup()
-- finds the same rows.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_r24p_owner IN ROLE customer_vault_admin;
CREATE ROLE regress_r24p_caller IN ROLE customer_vault_writer;
RESET client_min_messages;
SELECT customer_vault.create_key('r24p_key') > 0 AS created;
CREATE SCHEMA regress_r24p AUTHORIZATION regress_r24p_owner;
GRANT USAGE ON SCHEMA regress_r24p TO regress_r24p_caller;
CREATE SCHEMA regress_r24p_evil AUTHORIZATION regress_r24p_caller;

SET ROLE regress_r24p_owner;
CREATE FUNCTION regress_r24p.row_visible(id integer) RETURNS boolean
    LANGUAGE sql STABLE AS 'SELECT abs(id) >= 0';
CREATE TABLE regress_r24p.people (id int PRIMARY KEY, customer int, email text, email_bidx bytea);
INSERT INTO regress_r24p.people VALUES (1, 7, 'one@example.org'), (2, 8, 'two@example.org'),
                                       (3, 9, 'one@example.org');
SELECT customer_vault.protect_column('regress_r24p.people', 'email', 'r24p_key', 'customer', 'email_bidx');
ALTER TABLE regress_r24p.people ENABLE ROW LEVEL SECURITY;
ALTER TABLE regress_r24p.people FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_rows ON regress_r24p.people TO regress_r24p_owner USING (regress_r24p.row_visible(id));
CREATE POLICY caller_rows ON regress_r24p.people TO regress_r24p_caller USING (true);
GRANT SELECT, INSERT ON regress_r24p.people TO regress_r24p_caller;
RESET ROLE;

-- the caller: an abs(integer) of its own in a schema everyone may use, first
-- on its search_path (before pg_catalog)
SET ROLE regress_r24p_caller;
GRANT USAGE ON SCHEMA regress_r24p_evil TO PUBLIC;
CREATE FUNCTION regress_r24p_evil.abs(integer) RETURNS integer
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'the caller''s abs ran as %', current_user;
    RETURN pg_catalog.abs($1);
END
$$;
-- lookup() under the caller's own search_path: no notice, customers 7 and 9
SELECT * FROM customer_vault.lookup('regress_r24p.people', 'email', 'one@example.org') ORDER BY 1;
SET search_path = regress_r24p_evil, pg_catalog;
SELECT * FROM customer_vault.lookup('regress_r24p.people', 'email', 'one@example.org') ORDER BY 1;
SELECT count(*) AS no_match FROM customer_vault.lookup('regress_r24p.people', 'email', 'nobody@example.org');
-- the caller's path is its own again afterwards
SHOW search_path;
SELECT abs(-1) AS own_abs_still_first;
RESET search_path;
RESET ROLE;

-- clean up
SET client_min_messages = warning;
DROP SCHEMA regress_r24p CASCADE;
DROP SCHEMA regress_r24p_evil CASCADE;
DROP ROLE regress_r24p_owner, regress_r24p_caller;
RESET client_min_messages;
