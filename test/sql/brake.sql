-- The exfiltration brake (issue 13): customer_vault.decrypt_limit stops a
-- statement that decrypts more values than the login role may; the admin sets
-- it per role; the capped role cannot raise, reset or sidestep it.  The rate
-- (values per minute, per role) is tested across sessions in TAP 031.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_brake_agent LOGIN IN ROLE customer_vault_reader;
CREATE ROLE regress_brake_free LOGIN IN ROLE customer_vault_reader;
CREATE ROLE regress_brake_admin LOGIN IN ROLE customer_vault_admin;
CREATE ROLE regress_brake_owner LOGIN;
RESET client_min_messages;
SELECT customer_vault.create_key('brake_key') > 0 AS key_made;
CREATE TABLE brake_t (id int PRIMARY KEY, email text);
INSERT INTO brake_t SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 200) g;
SELECT customer_vault.protect_column('brake_t', 'email', 'brake_key', 'id');
GRANT SELECT ON brake_t TO customer_vault_reader;
CREATE TABLE brake_x (id int PRIMARY KEY, v customer_vault.encrypted_text);
INSERT INTO brake_x SELECT g, customer_vault.encrypt('secret ' || g, 'brake_key', g::text) FROM generate_series(1, 200) g;
GRANT SELECT ON brake_x TO customer_vault_reader;

-- the settings: superuser-only, no limit by default
SELECT name, setting, context FROM pg_settings
 WHERE name IN ('customer_vault.decrypt_limit', 'customer_vault.decrypt_rate_limit', 'customer_vault.lock_exempt_roles')
 ORDER BY 1;

-- the admin sets a limit for the agent; bad arguments are refused
SET ROLE regress_brake_admin;
SELECT customer_vault.set_decrypt_limit('regress_brake_agent', 50);
SELECT customer_vault.set_decrypt_limit('regress_brake_free', 0, 100);
SELECT customer_vault.set_decrypt_limit('regress_brake_agent', -1);
SELECT customer_vault.set_decrypt_limit('regress_brake_agent', 5, -1);
SELECT customer_vault.set_decrypt_limit(NULL, 5);
SELECT customer_vault.set_decrypt_limit(0::oid::regrole, 5);
-- a group role's settings do not reach its members: a limit on a NOLOGIN
-- role is refused (it would bind no one); clearing one is allowed
SELECT customer_vault.set_decrypt_limit('customer_vault_reader', 5);
SELECT customer_vault.set_decrypt_limit('customer_vault_reader', 5, 20);
SELECT customer_vault.set_decrypt_limit('customer_vault_reader', NULL, 20);
SELECT customer_vault.set_decrypt_limit('customer_vault_reader', NULL);
RESET ROLE;
-- one set behind the function's back is not listed as a cap
ALTER ROLE customer_vault_reader SET customer_vault.decrypt_limit = 5;
SELECT count(*) AS group_listed FROM customer_vault.decrypt_limits WHERE role = 'customer_vault_reader';
ALTER ROLE customer_vault_reader RESET customer_vault.decrypt_limit;
SET ROLE regress_brake_admin;
SELECT * FROM customer_vault.decrypt_limits WHERE role LIKE 'regress_brake%' ORDER BY 1;
RESET ROLE;
-- nobody else may: not the agent, not a table owner, not ALTER ROLE
SET ROLE regress_brake_agent;
SELECT customer_vault.set_decrypt_limit('regress_brake_agent', 0);
SELECT * FROM customer_vault.decrypt_limits;
RESET ROLE;
SET ROLE regress_brake_owner;
SELECT customer_vault.set_decrypt_limit('regress_brake_agent', 0);
RESET ROLE;

-- the capped agent logs in: 30 rows pass, the whole table is stopped
\c - regress_brake_agent
\set VERBOSITY terse
SHOW customer_vault.decrypt_limit;
SELECT count(email) AS thirty FROM brake_t_decrypted WHERE id <= 30;
SELECT count(email) FROM brake_t_decrypted;
SELECT count(customer_vault.decrypt(v, id::text)) FROM brake_x;
SELECT count(customer_vault.decrypt(v, id::text)) AS fifty FROM brake_x WHERE id <= 50;
SELECT count(customer_vault.decrypt(v, id::text)) FROM brake_x WHERE id <= 51;
-- a failed statement does not spoil the next one
SELECT count(email) AS thirty_again FROM brake_t_decrypted WHERE id <= 30;

-- every way to raise or drop the limit is refused
SET customer_vault.decrypt_limit = 0;
SET customer_vault.decrypt_limit = 1000;
BEGIN;
SET LOCAL customer_vault.decrypt_limit = 0;
ROLLBACK;
RESET customer_vault.decrypt_limit;
SELECT set_config('customer_vault.decrypt_limit', '0', false);
SELECT set_config('customer_vault.decrypt_limit', '0', true);
ALTER ROLE regress_brake_agent SET customer_vault.decrypt_limit = 0;
ALTER ROLE regress_brake_agent RESET customer_vault.decrypt_limit;
ALTER ROLE regress_brake_agent IN DATABASE contrib_regression SET customer_vault.decrypt_limit = 0;
ALTER ROLE regress_brake_agent SET customer_vault.decrypt_rate_limit = 0;
ALTER ROLE regress_brake_agent RESET ALL;
ALTER DATABASE contrib_regression SET customer_vault.decrypt_limit = 0;
RESET ALL;
SHOW customer_vault.decrypt_limit;
-- a function of its own with the setting in its SET clause
CREATE FUNCTION pg_temp.unbraked() RETURNS bigint LANGUAGE sql
    SET customer_vault.decrypt_limit = 0 AS 'SELECT count(email) FROM brake_t_decrypted';
-- SET ROLE to a role without a limit of its own: the login's limit holds
SET ROLE customer_vault_reader;
SELECT count(email) FROM brake_t_decrypted;
RESET ROLE;
SHOW customer_vault.decrypt_limit;

-- the values of one statement count together, however the work is split
-- a DO block reading 30 at a time
DO $$
DECLARE n bigint;
BEGIN
    FOR i IN 0..3 LOOP
        SELECT count(email) INTO n FROM brake_t_decrypted WHERE id > i * 30 AND id <= (i + 1) * 30;
    END LOOP;
END
$$;
-- a function calling a function
CREATE FUNCTION pg_temp.chunk(lo int) RETURNS bigint LANGUAGE sql
    AS 'SELECT count(email) FROM brake_t_decrypted WHERE id > lo AND id <= lo + 30';
SELECT pg_temp.chunk(0) + pg_temp.chunk(30);
SELECT pg_temp.chunk(0) AS thirty_by_function;
-- a procedure that commits between its reads
CREATE PROCEDURE pg_temp.read_and_commit() LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    FOR i IN 0..3 LOOP
        SELECT count(email) INTO n FROM brake_t_decrypted WHERE id > i * 30 AND id <= (i + 1) * 30;
        COMMIT;
    END LOOP;
END
$$;
CALL pg_temp.read_and_commit();
-- a multi-statement query string is one statement
SELECT count(email) AS thirty FROM brake_t_decrypted WHERE id <= 30 \; SELECT count(email) AS thirty FROM brake_t_decrypted WHERE id > 30 AND id <= 60;
-- a cursor: its FETCHes count together, also with other statements in between
BEGIN;
DECLARE c CURSOR FOR SELECT email FROM brake_t_decrypted ORDER BY id;
MOVE 30 FROM c;
SELECT count(email) AS other_statement FROM brake_t_decrypted WHERE id <= 40;
MOVE 20 FROM c;
MOVE 1 FROM c;
ROLLBACK;
-- one statement draining cursors declared by earlier statements: the values
-- count for the running statement too (3 x 20 > 50 refused; 2 x 20 passes)
BEGIN;
DECLARE c1 CURSOR FOR SELECT customer_vault.decrypt(v, id::text) d FROM brake_x WHERE id <= 20;
DECLARE c2 CURSOR FOR SELECT customer_vault.decrypt(v, id::text) d FROM brake_x WHERE id > 20 AND id <= 40;
DECLARE c3 CURSOR FOR SELECT customer_vault.decrypt(v, id::text) d FROM brake_x WHERE id > 40 AND id <= 60;
CREATE FUNCTION pg_temp.drain(c refcursor) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint := 0; r record; BEGIN LOOP FETCH c INTO r; EXIT WHEN NOT FOUND; n := n + 1; END LOOP; RETURN n; END $$;
SELECT pg_temp.drain('c1') + pg_temp.drain('c2') AS forty;
SAVEPOINT s;
SELECT pg_temp.drain('c3') + 0 AS twenty;
ROLLBACK TO s;
ROLLBACK;
BEGIN;
DECLARE c1 CURSOR FOR SELECT customer_vault.decrypt(v, id::text) d FROM brake_x WHERE id <= 20;
DECLARE c2 CURSOR FOR SELECT customer_vault.decrypt(v, id::text) d FROM brake_x WHERE id > 20 AND id <= 40;
DECLARE c3 CURSOR FOR SELECT customer_vault.decrypt(v, id::text) d FROM brake_x WHERE id > 40 AND id <= 60;
CREATE FUNCTION pg_temp.drain(c refcursor) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint := 0; r record; BEGIN LOOP FETCH c INTO r; EXIT WHEN NOT FOUND; n := n + 1; END LOOP; RETURN n; END $$;
SELECT pg_temp.drain('c1') + pg_temp.drain('c2') + pg_temp.drain('c3') AS sixty;
ROLLBACK;
-- two statements of 30 each, in one transaction, pass
BEGIN;
SELECT count(email) AS first_thirty FROM brake_t_decrypted WHERE id <= 30;
SELECT count(email) AS next_thirty FROM brake_t_decrypted WHERE id > 30 AND id <= 60;
COMMIT;
-- a SECURITY DEFINER function owned by another role changes nothing, and
-- such a role cannot put the setting in a function's SET clause either
\c - postgres
CREATE SCHEMA brake_owned AUTHORIZATION regress_brake_owner;
GRANT USAGE ON SCHEMA brake_owned TO PUBLIC;
GRANT SELECT ON brake_x TO regress_brake_owner;
GRANT customer_vault_reader TO regress_brake_owner;
\c - regress_brake_owner
\set VERBOSITY terse
CREATE FUNCTION brake_owned.unbraked() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    SET customer_vault.decrypt_limit = 0 AS 'SELECT count(customer_vault.decrypt(v, id::text)) FROM brake_x';
CREATE FUNCTION brake_owned.read_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS 'SELECT count(customer_vault.decrypt(v, id::text)) FROM brake_x';
GRANT EXECUTE ON FUNCTION brake_owned.read_all() TO PUBLIC;
\c - regress_brake_agent
\set VERBOSITY terse
SELECT brake_owned.read_all();

-- no parallel plans under a limit (a worker's values would count apart)
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
CREATE FUNCTION pg_temp.plan_has_gather(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    l text;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF l LIKE '%Gather%' THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
SELECT pg_temp.plan_has_gather('SELECT count(customer_vault.decrypt(v, id::text)) FROM brake_x') AS capped_gather;
\c - regress_brake_free
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
CREATE FUNCTION pg_temp.plan_has_gather(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    l text;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF l LIKE '%Gather%' THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
SELECT pg_temp.plan_has_gather('SELECT count(customer_vault.decrypt(v, id::text)) FROM brake_x') AS uncapped_gather;
RESET ALL;

-- the rate: 100 values a minute for regress_brake_free (no per-statement cap)
\set VERBOSITY terse
SHOW customer_vault.decrypt_rate_limit;
SELECT count(email) AS thirty FROM brake_t_decrypted WHERE id <= 30;
SELECT count(email) FROM brake_t_decrypted;

-- every refusal is counted for the role (outside the failed transactions)
\c - postgres
\set VERBOSITY terse
SELECT role, decrypt_refusals > 0 AS refused, last_refused IS NOT NULL AS when_refused,
       last_login IS NOT NULL AS logged_in, last_decrypt IS NOT NULL AS decrypted
  FROM customer_vault.role_activity WHERE role LIKE 'regress_brake%' ORDER BY 1;
-- a superuser has no limit unless one is set
SELECT count(email) AS two_hundred FROM brake_t_decrypted;
-- NULL gives the role back the server default
SET ROLE regress_brake_admin;
SELECT customer_vault.set_decrypt_limit('regress_brake_agent', NULL);
SELECT customer_vault.set_decrypt_limit('regress_brake_free', NULL, NULL);
SELECT * FROM customer_vault.decrypt_limits WHERE role LIKE 'regress_brake%' ORDER BY 1;
RESET ROLE;
\c - regress_brake_agent
SHOW customer_vault.decrypt_limit;
SELECT count(email) AS two_hundred FROM brake_t_decrypted;
\c - postgres
DROP SCHEMA brake_owned CASCADE;
DROP TABLE brake_t, brake_x CASCADE;
DROP ROLE regress_brake_agent, regress_brake_free, regress_brake_admin, regress_brake_owner;
