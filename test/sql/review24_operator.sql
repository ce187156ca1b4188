-- Review 24, HIGH-2: the statements that run as a table's owner compare
-- with the column type's own equality operator and no other.  "OPERATOR(schema.=)" is still resolved by the operand
-- types among the operators of that name in that schema: for a column of a
-- domain over a type whose equality lives outside pg_catalog (citext, here
-- in a schema everyone may create in, as public was before PostgreSQL 15),
-- an operator made on exactly the domain by another role was taken, and its
-- function ran as the table's owner (forget_subject, export_subject).
-- Failed before: the attacker's function raised its notice as
-- regress_r24_owner.  Now the operands are cast to the operator's input
-- types (CvOperatorClause in forget.c, _subject_filter for the export), and
-- no such notice appears.  (lookup()'s context column is of a built-in type
-- only, and the routed Citus statements are in test/citus.)
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_r24_owner IN ROLE customer_vault_admin;
CREATE ROLE regress_r24_attacker;
CREATE SCHEMA regress_r24_ext;
CREATE EXTENSION citext SCHEMA regress_r24_ext;
RESET client_min_messages;
GRANT USAGE, CREATE ON SCHEMA regress_r24_ext TO PUBLIC;
CREATE SCHEMA regress_r24 AUTHORIZATION regress_r24_owner;
GRANT USAGE ON SCHEMA regress_r24 TO PUBLIC;

-- the owner's tables: a domain over citext as a (single and composite) foreign key
SET ROLE regress_r24_owner;
CREATE DOMAIN regress_r24.code AS regress_r24_ext.citext;
CREATE TABLE regress_r24.accounts (id bigint PRIMARY KEY, code regress_r24.code NOT NULL UNIQUE, name text);
CREATE TABLE regress_r24.tickets (id int PRIMARY KEY, account_code regress_r24.code REFERENCES regress_r24.accounts (code),
                                  body text);
CREATE INDEX ON regress_r24.tickets (account_code);
INSERT INTO regress_r24.accounts VALUES (1, 'AB-1', 'one'), (2, 'CD-2', 'two'), (3, 'EF-3', 'three');
INSERT INTO regress_r24.tickets VALUES (10, 'ab-1', 'first of one'), (11, 'AB-1', 'second of one'),
                                       (20, 'cd-2', 'of two'), (30, 'EF-3', 'of three');
-- a composite foreign key holding the domain column too
ALTER TABLE regress_r24.accounts ADD UNIQUE (id, code);
CREATE TABLE regress_r24.notes (id int PRIMARY KEY, account_id bigint, account_code regress_r24.code, body text,
                                FOREIGN KEY (account_id, account_code) REFERENCES regress_r24.accounts (id, code));
INSERT INTO regress_r24.notes VALUES (100, 1, 'Ab-1', 'note of one'), (200, 2, 'CD-2', 'note of two'),
                                     (300, 3, 'ef-3', 'note of three');
RESET ROLE;
SELECT customer_vault.register_subject_table('regress_r24.accounts', 'id');

-- the attacker: an operator "=" on exactly the domain, in citext's schema
SET ROLE regress_r24_attacker;
CREATE FUNCTION regress_r24_ext.code_eq(regress_r24.code, regress_r24.code) RETURNS boolean
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'the attacker''s operator ran as %', current_user;
    RETURN pg_catalog.lower($1::pg_catalog.text) OPERATOR(pg_catalog.=) pg_catalog.lower($2::pg_catalog.text);
END
$$;
CREATE OPERATOR regress_r24_ext.= (LEFTARG = regress_r24.code, RIGHTARG = regress_r24.code,
                                   FUNCTION = regress_r24_ext.code_eq);
-- the operator does exist and is taken for two values of the domain
SELECT 'ab-1'::regress_r24.code OPERATOR(regress_r24_ext.=) 'AB-1'::regress_r24.code AS attacker_operator_works;
RESET ROLE;

-- 1. export_subject (_subject_filter, _maint_run as each owner): no notice, the rows of account 1
SELECT jsonb_path_query_array(d, '$.tables."regress_r24.accounts".rows[*].id') AS accounts,
       jsonb_path_query_array(d, '$.tables."regress_r24.tickets".rows[*].id') AS tickets,
       jsonb_path_query_array(d, '$.tables."regress_r24.notes".rows[*].id') AS notes
  FROM customer_vault.export_subject('1') d;

-- 2. forget_subject (forget.c, as each owner): no notice, account 2, its ticket and note gone, nothing else
SELECT r -> 'tables' AS tables FROM customer_vault.forget_subject('2', 'request') r;
SELECT id, code FROM regress_r24.accounts ORDER BY id;
SELECT id, account_code FROM regress_r24.tickets ORDER BY id;
SELECT id, account_code FROM regress_r24.notes ORDER BY id;

-- clean up
SET client_min_messages = warning;
DROP OPERATOR regress_r24_ext.= (regress_r24.code, regress_r24.code);
DROP FUNCTION regress_r24_ext.code_eq(regress_r24.code, regress_r24.code);
SELECT customer_vault.unregister_subject_table('regress_r24.accounts');
DROP SCHEMA regress_r24 CASCADE;
DROP EXTENSION citext;
DROP SCHEMA regress_r24_ext CASCADE;
DROP ROLE regress_r24_owner, regress_r24_attacker;
RESET client_min_messages;
