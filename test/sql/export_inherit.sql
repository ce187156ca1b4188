-- export_subject reads the inheritance children of a registered table (part
-- EXPORT, issue 12): forget_subject erases their rows (test forget_inherit),
-- so the export must hand them out too, each child as a table of its own
-- with all its columns, read as its own owner; sealed values in a child are
-- withheld from a caller that may not decrypt and opened for one that may;
-- a grandchild added later in the session and a table referencing a child
-- are reached as well; another subject's rows never appear.  Failed before:
-- the export read ONLY the parent and the children's rows were missing.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_ei_owner;
CREATE ROLE regress_ei_other;
CREATE ROLE regress_ei_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_ei_admin_reader IN ROLE customer_vault_admin, customer_vault_reader;
RESET client_min_messages;
SELECT customer_vault.create_key('ei_key') > 0 AS created;
CREATE SCHEMA regress_ei AUTHORIZATION regress_ei_owner;
GRANT USAGE, CREATE ON SCHEMA regress_ei TO regress_ei_other;
SET ROLE regress_ei_owner;
CREATE TABLE regress_ei.people (id bigint, name text, secret customer_vault.encrypted_text);
CREATE INDEX ON regress_ei.people (id);
CREATE TABLE regress_ei.vip_people (tier text, PRIMARY KEY (id)) INHERITS (regress_ei.people);
RESET ROLE;
-- the child belongs to another owner; a table of its own references it
ALTER TABLE regress_ei.vip_people OWNER TO regress_ei_other;
CREATE TABLE regress_ei.vip_perks (vip_id bigint REFERENCES regress_ei.vip_people (id), perk text);
ALTER TABLE regress_ei.vip_perks OWNER TO regress_ei_other;
INSERT INTO regress_ei.people VALUES (9101, 'one', customer_vault.encrypt('hidden one', 'ei_key')),
                                     (9102, 'two', NULL);
INSERT INTO regress_ei.vip_people VALUES (9101, 'one, vip', customer_vault.encrypt('hidden vip', 'ei_key'), 'gold'),
                                         (9102, 'two, vip', NULL, 'silver');
INSERT INTO regress_ei.vip_perks VALUES (9101, 'lounge'), (9102, 'parking');
SELECT customer_vault.register_subject_table('regress_ei.people', 'id');

-- as an admin that may not decrypt (and cannot read the tables itself)
SET ROLE regress_ei_admin;
CREATE TEMP TABLE doc1 AS SELECT customer_vault.export_subject('9101') AS d;
RESET ROLE;
SELECT k.key AS tbl, k.value -> 'rows' AS rows
  FROM doc1, jsonb_each(d -> 'tables') k ORDER BY 1;
SELECT d::text ~ 'two|silver|parking|hidden' AS leaks FROM doc1;

-- as an admin that may decrypt: the child's sealed value opened
SET ROLE regress_ei_admin_reader;
SELECT k.key AS tbl, jsonb_path_query_array(k.value, '$.rows[*].secret') AS secrets
  FROM jsonb_each(customer_vault.export_subject('9101') -> 'tables') k ORDER BY 1;
RESET ROLE;

-- a grandchild added later in the session is read as well
SET ROLE regress_ei_other;
CREATE TABLE regress_ei.vvip_people () INHERITS (regress_ei.vip_people);
INSERT INTO regress_ei.vvip_people VALUES (9101, 'one, vvip', NULL, 'platinum'), (9102, 'two, vvip', NULL, 'iron');
RESET ROLE;
SET ROLE regress_ei_admin;
SELECT k.key AS tbl, jsonb_path_query_array(k.value, '$.rows[*].name') AS names,
       jsonb_path_query_array(k.value, '$.rows[*].tier') AS tiers
  FROM jsonb_each(customer_vault.export_subject('9101') -> 'tables') k ORDER BY 1;
-- the export's record counts the children's rows and withheld values
RESET ROLE;
SELECT tables, rows, withheld FROM customer_vault.subject_exports
 WHERE subject_hash = customer_vault._subject_hash('9101') ORDER BY id;

-- the erasure removes what the export showed
SELECT r -> 'tables' AS erased FROM customer_vault.forget_subject('9101', 'request') r;
SELECT customer_vault.export_subject('9101') -> 'tables' AS after_erasure;
SELECT jsonb_path_query_array(customer_vault.export_subject('9102'), '$.tables.*.rows[*].name') AS other_subject;

SET client_min_messages = warning;
DROP SCHEMA regress_ei CASCADE;
DROP TABLE doc1;
DROP ROLE regress_ei_owner, regress_ei_other, regress_ei_admin, regress_ei_admin_reader;
RESET client_min_messages;
