-- forget_subject (part FORGET4, issue 12): the inheritance children of a
-- registered table are erased too (the parent's statements read ONLY the
-- parent), each as its own owner, with the caller's privilege checked on
-- it; a child added after the session built its plan is seen.  Failed
-- before: the child's rows stayed and the receipt did not name it.  The
-- caller's privileges are checked up front (block 4).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_fi_owner;
CREATE ROLE regress_fi_other;
CREATE ROLE regress_fi_admin IN ROLE customer_vault_admin;
RESET client_min_messages;
CREATE SCHEMA regress_fi AUTHORIZATION regress_fi_owner;
GRANT USAGE ON SCHEMA regress_fi TO regress_fi_admin, regress_fi_other;
GRANT CREATE ON SCHEMA regress_fi TO regress_fi_other;
SET ROLE regress_fi_owner;
CREATE TABLE regress_fi.people (id bigint, name text);
CREATE INDEX ON regress_fi.people (id);
CREATE TABLE regress_fi.vip_people (tier text) INHERITS (regress_fi.people);
INSERT INTO regress_fi.people VALUES (9101, 'one'), (9102, 'two');
INSERT INTO regress_fi.vip_people VALUES (9101, 'one, vip', 'gold'), (9102, 'two, vip', 'silver');
SECURITY LABEL FOR customer_vault ON COLUMN regress_fi.people.name IS 'pii';
RESET ROLE;
-- the child belongs to another owner, whose trigger records who it ran as
ALTER TABLE regress_fi.vip_people OWNER TO regress_fi_other;
CREATE TABLE regress_fi.audit (who name, what text);
ALTER TABLE regress_fi.audit OWNER TO regress_fi_other;
CREATE FUNCTION regress_fi.vip_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO regress_fi.audit VALUES (current_user, OLD.name);
    RETURN OLD;
END
$$;
ALTER FUNCTION regress_fi.vip_gone() OWNER TO regress_fi_other;
CREATE TRIGGER vip_gone BEFORE DELETE ON regress_fi.vip_people FOR EACH ROW EXECUTE FUNCTION regress_fi.vip_gone();
SELECT customer_vault.register_subject_table('regress_fi.people', 'id');
GRANT SELECT, DELETE ON regress_fi.people TO regress_fi_admin;

-- 1. the admin may delete from the parent only: refused where the child holds rows, nothing erased
SET ROLE regress_fi_admin;
SELECT customer_vault.forget_subject('9101', 'request');
RESET ROLE;
SELECT tableoid::regclass AS tbl, id FROM regress_fi.people ORDER BY 1, 2;

-- 2. with DELETE on the child, its rows go too, deleted as its owner
GRANT SELECT, DELETE ON regress_fi.vip_people TO regress_fi_admin;
SET ROLE regress_fi_admin;
SELECT r -> 'tables' AS tables FROM customer_vault.forget_subject('9101', 'request') r;
RESET ROLE;
SELECT tableoid::regclass AS tbl, id FROM regress_fi.people ORDER BY 1, 2;
SELECT who, what FROM regress_fi.audit;

-- 3. a grandchild added later in the same session is erased as well
SET ROLE regress_fi_other;
CREATE TABLE regress_fi.vvip_people () INHERITS (regress_fi.vip_people);
INSERT INTO regress_fi.vvip_people VALUES (9102, 'two, vvip', 'platinum');
GRANT SELECT, DELETE ON regress_fi.vvip_people TO regress_fi_admin;
RESET ROLE;
SET ROLE regress_fi_admin;
-- (a reason with quotes, a backslash and a control character: the receipt still verifies)
SELECT r -> 'tables' AS tables FROM customer_vault.forget_subject('9102', E'request "3" \\ \x01 end') r;
RESET ROLE;
SELECT count(*) AS rows_left FROM regress_fi.people;
SELECT customer_vault.verify_receipts() AS receipts_broken;

-- 4. the caller's privileges are checked on every table of the plan before
-- anything is read: without DELETE on a registered table the erasure is
-- refused the same way whether the subject has rows there or not (it used
-- to go on where there were none, telling the admin which subjects have rows
-- in a table it may not change)
SET ROLE regress_fi_owner;
CREATE TABLE regress_fi.notes (person bigint, note text);
INSERT INTO regress_fi.notes VALUES (9104, 'a note');
RESET ROLE;
SELECT customer_vault.register_subject_table('regress_fi.notes', 'person');
SET ROLE regress_fi_admin;
SELECT customer_vault.forget_subject('9103', 'request');
SELECT customer_vault.forget_subject('9104', 'request');
RESET ROLE;
SELECT count(*) AS notes_left FROM regress_fi.notes;
SELECT customer_vault.unregister_subject_table('regress_fi.notes');

SELECT customer_vault.unregister_subject_table('regress_fi.people');
DROP SCHEMA regress_fi CASCADE;
DROP ROLE regress_fi_owner, regress_fi_other, regress_fi_admin;
