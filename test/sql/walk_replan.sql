-- A kept statement is never analysed again in the middle of a walk (part
-- WALKFIX, issue 12, HIGH): code a table's owner runs inside the walk (here a
-- cast to json that to_jsonb calls, and a trigger) drops another table of
-- the reach and makes a view of the same name calling a function; before,
-- the walk then ran the kept statement of the dropped table, analysed again
-- by name against the view, as the dropped table's owner (a superuser): the
-- schema's owner became a superuser through export_subject run by an admin
-- and through forget_subject run by a superuser.  Now the walk locks every
-- table of the reach at its start and refuses (40001, nothing changed) a
-- statement whose tables changed during it.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_wr_schema;
CREATE ROLE regress_wr_admin IN ROLE customer_vault_admin;
RESET client_min_messages;
CREATE SCHEMA regress_wr AUTHORIZATION regress_wr_schema;
-- the superuser's tables in the schema owner's schema
CREATE TABLE regress_wr.r (id int PRIMARY KEY, cust text);
INSERT INTO regress_wr.r VALUES (1, 'wr-victim');
SELECT customer_vault.register_subject_table('regress_wr.r', 'cust');
GRANT REFERENCES ON regress_wr.r TO regress_wr_schema;
SET ROLE regress_wr_schema;
CREATE TYPE regress_wr.e AS ENUM ('x');
CREATE TABLE regress_wr.log (who name, super boolean, what text);
CREATE FUNCTION regress_wr.pwn() RETURNS int LANGUAGE plpgsql AS $f$
BEGIN
  INSERT INTO regress_wr.log SELECT current_user, r.rolsuper, 'pwn' FROM pg_roles r WHERE r.rolname = current_user;
  EXECUTE 'ALTER ROLE regress_wr_schema SUPERUSER';
  RETURN 1;
END $f$;
CREATE FUNCTION regress_wr.iod() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM regress_wr.pwn(); RETURN OLD; END $f$;
CREATE FUNCTION regress_wr.e_json(regress_wr.e) RETURNS json LANGUAGE plpgsql AS $f$
BEGIN
  INSERT INTO regress_wr.log VALUES (current_user, false, 'cast');
  IF to_regclass('regress_wr.v') IS NOT NULL
     AND (SELECT relkind FROM pg_class WHERE oid = 'regress_wr.v'::regclass) = 'r' THEN
    DROP TABLE regress_wr.v;
    CREATE VIEW regress_wr.v AS SELECT 1 AS rid, regress_wr.pwn() AS payload;
    CREATE TRIGGER iod INSTEAD OF DELETE ON regress_wr.v FOR EACH ROW EXECUTE FUNCTION regress_wr.iod();
  END IF;
  RETURN '"x"';
END $f$;
CREATE CAST (regress_wr.e AS json) WITH FUNCTION regress_wr.e_json(regress_wr.e);
CREATE FUNCTION regress_wr.trg() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM regress_wr.e_json('x'); RETURN OLD; END $f$;
CREATE TABLE regress_wr.a1 (rid int REFERENCES regress_wr.r(id), tag regress_wr.e);
CREATE TRIGGER t BEFORE DELETE ON regress_wr.a1 FOR EACH ROW EXECUTE FUNCTION regress_wr.trg();
INSERT INTO regress_wr.a1 VALUES (1, 'x');
RESET ROLE;
-- another table of the superuser in the reach, read and changed after a1
CREATE TABLE regress_wr.v (rid int REFERENCES regress_wr.r(id), payload text);
INSERT INTO regress_wr.v VALUES (1, 'p');
SELECT relid::regclass, depth FROM customer_vault._export_walk('nobody')
 WHERE relid::regclass::text LIKE 'regress_wr.%' ORDER BY 1::text;

-- an ordinary admin exports the subject: refused, nothing ran as the superuser
SET ROLE regress_wr_admin;
SELECT customer_vault.export_subject('wr-victim') -> 'tables' -> 'regress_wr.v' AS exported_v;
RESET ROLE;
SELECT * FROM regress_wr.log;
SELECT rolsuper AS schema_owner_is_superuser FROM pg_roles WHERE rolname = 'regress_wr_schema';
SELECT relkind FROM pg_class WHERE oid = 'regress_wr.v'::regclass;

-- a superuser erases the subject: refused, nothing erased, nobody promoted
SELECT r -> 'tables' FROM customer_vault.forget_subject('wr-victim', 'request') r;
SELECT * FROM regress_wr.log;
SELECT rolsuper AS schema_owner_is_superuser FROM pg_roles WHERE rolname = 'regress_wr_schema';
SELECT (SELECT count(*) FROM regress_wr.r) AS r_rows, (SELECT count(*) FROM regress_wr.a1) AS a1_rows,
       (SELECT count(*) FROM regress_wr.v) AS v_rows;

-- without the owner's trick the export and the erasure go through
DROP CAST (regress_wr.e AS json);
DROP TRIGGER t ON regress_wr.a1;
SET ROLE regress_wr_admin;
SELECT jsonb_path_query_array(customer_vault.export_subject('wr-victim') -> 'tables', '$.*.rows[*].rid') AS exported;
RESET ROLE;
SELECT r -> 'tables' -> 'regress_wr.v' AS erased_v FROM customer_vault.forget_subject('wr-victim', 'request') r;
SELECT * FROM regress_wr.log;
SELECT rolsuper AS schema_owner_is_superuser FROM pg_roles WHERE rolname = 'regress_wr_schema';

SET client_min_messages = warning;
DROP SCHEMA regress_wr CASCADE;
DROP ROLE regress_wr_schema, regress_wr_admin;
RESET client_min_messages;
