-- The findings of the review of the export/erasure walk (part WALKFIX, issue
-- 12).  Each block failed on the old code:
--  - a child's own protected column hid its parent's: the inherited sealed
--    column was exported as a raw envelope, its blind index in base64;
--  - the inheritance children of tables reaching a registered table through
--    a foreign key were neither exported nor erased (at every depth, also
--    a child added later in the session);
--  - a child of two registered tables was matched by the first one's
--    subject column only (forget_subject left its row).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_wf_owner;
CREATE ROLE regress_wf_admin IN ROLE customer_vault_admin;
RESET client_min_messages;
SELECT customer_vault.create_key('wf_key') > 0 AS created;
CREATE SCHEMA regress_wf AUTHORIZATION regress_wf_owner;

-- 1. a child's own protected column and its parent's
SET ROLE regress_wf_owner;
CREATE TABLE regress_wf.px (id bigint, ssn text, ssn_bidx bytea);
CREATE TABLE regress_wf.cx (note text, note_bidx bytea) INHERITS (regress_wf.px);
RESET ROLE;
SELECT customer_vault.protect_column('regress_wf.px', 'ssn', 'wf_key', 'id', 'ssn_bidx') IS NOT NULL AS protected;
SELECT customer_vault.protect_column('regress_wf.cx', 'note', 'wf_key', 'id', 'note_bidx') IS NOT NULL AS protected;
INSERT INTO regress_wf.px VALUES (8101, '111-22-3333');
INSERT INTO regress_wf.cx SELECT id, ssn, ssn_bidx, 'child note' FROM ONLY regress_wf.px;
SELECT customer_vault.register_subject_table('regress_wf.px', 'id');
SET ROLE regress_wf_admin;
SELECT k AS col, CASE WHEN jsonb_typeof(v) = 'object' THEN 'withheld: ' || (v ->> 'withheld') ELSE jsonb_typeof(v) END AS exported
  FROM jsonb_each(customer_vault.export_subject('8101') -> 'tables' -> 'regress_wf.cx' -> 'rows' -> 0) e(k, v)
 ORDER BY 1;
RESET ROLE;
SELECT withheld FROM customer_vault.subject_exports WHERE subject_hash = customer_vault._subject_hash('8101') ORDER BY id DESC LIMIT 1;
SELECT customer_vault.unregister_subject_table('regress_wf.px');

-- 2. children of a table reaching the registered one through a foreign key
SET ROLE regress_wf_owner;
CREATE TABLE regress_wf.sa (id int PRIMARY KEY, cust text);
CREATE TABLE regress_wf.sb (a_id int REFERENCES regress_wf.sa (id), info text);
CREATE TABLE regress_wf.sbc (extra text) INHERITS (regress_wf.sb);
CREATE TABLE regress_wf.sbcc () INHERITS (regress_wf.sbc);
INSERT INTO regress_wf.sa VALUES (1, 'c1'), (2, 'c2');
INSERT INTO regress_wf.sb VALUES (1, 'sb1'), (2, 'sb2');
INSERT INTO regress_wf.sbc VALUES (1, 'sbc1', 'x'), (2, 'sbc2', 'y');
INSERT INTO regress_wf.sbcc VALUES (1, 'sbcc1', 'z'), (2, 'sbcc2', 'w');
RESET ROLE;
SELECT customer_vault.register_subject_table('regress_wf.sa', 'cust');
SELECT relid::regclass, depth FROM customer_vault._export_walk('nobody')
 WHERE relid::regclass::text LIKE 'regress_wf.%' ORDER BY 2, relid::regclass::text;
SET ROLE regress_wf_admin;
SELECT k.key AS tbl, jsonb_path_query_array(k.value, '$.rows[*].info') AS infos
  FROM jsonb_each(customer_vault.export_subject('c1') -> 'tables') k ORDER BY 1;
RESET ROLE;
-- a child added later in the session, below a referencing table
SET ROLE regress_wf_owner;
CREATE TABLE regress_wf.sbd () INHERITS (regress_wf.sb);
INSERT INTO regress_wf.sbd VALUES (1, 'sbd1'), (2, 'sbd2');
RESET ROLE;
SET ROLE regress_wf_admin;
SELECT jsonb_path_query_array(customer_vault.export_subject('c1') -> 'tables', '$.*.rows[*].info') AS infos;
RESET ROLE;
SELECT r -> 'tables' AS erased FROM customer_vault.forget_subject('c1', 'request') r;
SELECT tableoid::regclass, a_id, info FROM regress_wf.sb ORDER BY tableoid::regclass::text, 2;
SELECT customer_vault.unregister_subject_table('regress_wf.sa');

-- 3. a child of two registered tables
SET ROLE regress_wf_owner;
CREATE TABLE regress_wf.mp1 (cust1 text, a text);
CREATE TABLE regress_wf.mp2 (cust2 text, b text);
CREATE TABLE regress_wf.mc () INHERITS (regress_wf.mp1, regress_wf.mp2);
INSERT INTO regress_wf.mc VALUES ('s1', 'a', 's2', 'b'), ('s3', 'a3', 's4', 'b4');
RESET ROLE;
SELECT customer_vault.register_subject_table('regress_wf.mp1', 'cust1');
SELECT customer_vault.register_subject_table('regress_wf.mp2', 'cust2');
SELECT customer_vault.export_subject('s1') -> 'tables' -> 'regress_wf.mc' -> 'rows' AS s1,
       customer_vault.export_subject('s2') -> 'tables' -> 'regress_wf.mc' -> 'rows' AS s2;
SELECT r -> 'tables' -> 'regress_wf.mc' AS erased FROM customer_vault.forget_subject('s2', 'request') r;
SELECT * FROM regress_wf.mc;
-- subject columns of different types: refused with a hint, not half-erased
SET ROLE regress_wf_owner;
CREATE TABLE regress_wf.mp3 (cust3 bigint);
CREATE TABLE regress_wf.mc2 () INHERITS (regress_wf.mp1, regress_wf.mp3);
RESET ROLE;
SELECT customer_vault.register_subject_table('regress_wf.mp3', 'cust3');
SELECT customer_vault.forget_subject('s3', 'request');
SET ROLE regress_wf_owner;
DROP TABLE regress_wf.mc2;
RESET ROLE;
SELECT r -> 'tables' -> 'regress_wf.mc' AS erased FROM customer_vault.forget_subject('s3', 'request') r;

SET client_min_messages = warning;
SELECT customer_vault.unregister_subject_table(t)
  FROM unnest(ARRAY['regress_wf.mp1', 'regress_wf.mp2', 'regress_wf.mp3']) t;
DROP SCHEMA regress_wf CASCADE;
DROP ROLE regress_wf_owner, regress_wf_admin;
RESET client_min_messages;
