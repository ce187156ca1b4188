-- Second review (maintenance and retention): fixes that must hold.
-- 1. A subject column's type runs no code of the table owner's in the
--    extension's SECURITY DEFINER paths (place_legal_hold, purge_preview):
--    domains and user types are refused by set_retention and re-checked
--    when used (ALTER TABLE ... TYPE after set_retention).
-- 2. _maint_run returns no subject ids (the shred kind shreds inside it and
--    returns a count only).
-- 3. retention_policies is written only by set_retention / drop_retention;
--    an inheritance parent is never purged, and a purge statement never
--    reaches a child's rows through its parent (ONLY).
\set VERBOSITY terse
CREATE FUNCTION rv2_state(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
GRANT EXECUTE ON FUNCTION rv2_state(text) TO PUBLIC;
CREATE ROLE rv2_owner;
CREATE ROLE rv2_admin;
GRANT customer_vault_admin TO rv2_admin;
CREATE SCHEMA rv2 AUTHORIZATION rv2_owner;
GRANT USAGE ON SCHEMA rv2 TO rv2_admin;

-- 1. the owner (no vault role) plants a domain whose CHECK tries to escalate
SET ROLE rv2_owner;
CREATE FUNCTION rv2.evil(v text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    BEGIN EXECUTE 'ALTER ROLE rv2_owner SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
    RETURN true;
END $$;
CREATE DOMAIN rv2.subj AS text CHECK (rv2.evil(VALUE));
CREATE TABLE rv2.events (id int, ts timestamptz, s rv2.subj);
CREATE TABLE rv2.later (id int, ts timestamptz, s text);
INSERT INTO rv2.later VALUES (1, '2020-01-01', 'a'), (2, now(), 'b');
GRANT SELECT, DELETE ON rv2.later TO rv2_admin;
CREATE TABLE rv2.fresh (id int, ts timestamptz);
INSERT INTO rv2.fresh VALUES (1, now());
GRANT SELECT, DELETE ON rv2.fresh TO rv2_admin;
RESET ROLE;
-- refused: a domain as subject column
SELECT rv2_state($$SELECT customer_vault.set_retention('rv2.events', 'ts', '30 days', 'delete', 's')$$) AS domain_subject;
SELECT count(*) AS policies FROM customer_vault.retention_policies WHERE schema_name = 'rv2';
-- accepted for text; the owner changes the type afterwards
SELECT customer_vault.set_retention('rv2.later', 'ts', '30 days', 'delete', 's');
-- (set_retention registered the table as a subject table, whose subject
-- column keeps an allowed type: refused; unregistered, it is the purge's
-- own re-check below that stops it)
SET ROLE rv2_owner;
ALTER TABLE rv2.later ALTER COLUMN s TYPE rv2.subj;
RESET ROLE;
SELECT customer_vault.unregister_subject_table('rv2.later') AS unregistered;
SET ROLE rv2_owner;
ALTER TABLE rv2.later ALTER COLUMN s TYPE rv2.subj;
RESET ROLE;
SET ROLE rv2_admin;
-- the hold is placed without converting it to the owner's type
SELECT customer_vault.place_legal_hold('b', 'probe') > 0 AS hold_placed;
SELECT rv2_state($$SELECT * FROM customer_vault.purge_preview()$$) AS preview;
SELECT rv2_state($$SELECT * FROM customer_vault.purge_preview_subjects()$$) AS preview_subjects;
CALL customer_vault.purge();
RESET ROLE;
SELECT status, sqlstate FROM customer_vault.purge_log WHERE tbl = 'rv2.later' ORDER BY id;
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'rv2_owner';
SELECT count(*) AS rows_left FROM rv2.later;
-- the operator is pg_catalog's, the types the built-in ones
SELECT customer_vault._eq_operator('bigint'), customer_vault._eq_operator('uuid');
SELECT rv2_state($$SELECT customer_vault._eq_operator('rv2.subj')$$) AS eq_domain;
SELECT rv2_state($$SELECT customer_vault._casts_to('x', 'rv2.subj')$$) AS casts_domain;
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'rv2_owner';
SELECT customer_vault.release_legal_hold(id, 'test over') FROM customer_vault.current_legal_holds WHERE reason = 'probe';

-- 2. no subject ids out of _maint_run, whatever the kind
SET ROLE rv2_admin;
SELECT rv2_state($$SELECT customer_vault._maint_run('purge_subjects', 'rv2.later', ARRAY[customer_vault._maint_time(now())])$$)
    AS purge_subjects;
-- nor counts or purges with a limit in the future (purge and purge_preview refuse one)
SELECT customer_vault.set_retention('rv2.fresh', 'ts', '30 days');
SELECT rv2_state($$SELECT customer_vault._maint_run('purge_counts', 'rv2.fresh', ARRAY['2100-01-01T00:00:00'])$$)
    AS future_counts;
SELECT rv2_state($$SELECT customer_vault._maint_run('purge', 'rv2.fresh', ARRAY['2100-01-01T00:00:00'])$$)
    AS future_purge;
SELECT count(*) AS fresh_rows FROM rv2.fresh;
SELECT customer_vault.drop_retention('rv2.fresh') AS dropped;
RESET ROLE;

-- 3. direct writes to retention_policies are refused to the admin
SET ROLE rv2_admin;
SELECT rv2_state($$INSERT INTO customer_vault.retention_policies (schema_name, table_name, time_column, keep, action)
                   VALUES ('rv2', 'parent', 'ts', '1 day', 'delete')$$) AS admin_insert;
SELECT rv2_state($$DELETE FROM customer_vault.retention_policies$$) AS admin_delete;
SELECT customer_vault.drop_retention('rv2.later') AS dropped;
SELECT customer_vault.drop_retention('rv2.later') AS dropped_again;
RESET ROLE;
-- an inheritance parent with a policy (as 0.1.0 allowed): never purged, and
-- its in-retention row, at the same ctid as an expired child row, stays
SET ROLE rv2_owner;
CREATE TABLE rv2.parent (id int, ts timestamptz);
CREATE TABLE rv2.child () INHERITS (rv2.parent);
INSERT INTO rv2.parent VALUES (1, now());
INSERT INTO rv2.child VALUES (2, '2020-01-01');
RESET ROLE;
SELECT (SELECT ctid FROM ONLY rv2.parent) = (SELECT ctid FROM rv2.child) AS same_ctid;
INSERT INTO customer_vault.retention_policies (schema_name, table_name, time_column, keep, action, relid)
VALUES ('rv2', 'parent', 'ts', '30 days', 'delete', 'rv2.parent');
-- its children do not block partitions of other tables (the DDL check looks
-- only at the command's own tables)
CREATE TABLE rv2.q (ts timestamptz) PARTITION BY RANGE (ts);
CREATE TABLE rv2.q1 PARTITION OF rv2.q FOR VALUES FROM ('2020-01-01') TO ('2030-01-01');
CREATE TABLE rv2.other_parent (id int);
CREATE TABLE rv2.other_child () INHERITS (rv2.other_parent);
CALL customer_vault.purge();
SELECT status, sqlstate FROM customer_vault.purge_log WHERE tbl = 'rv2.parent' ORDER BY id;
SELECT id FROM ONLY rv2.parent;
SELECT rv2_state($$SELECT customer_vault._maint_run('purge', 'rv2.parent', ARRAY[customer_vault._maint_time(now())])$$)
    AS direct_parent_purge;
SELECT id FROM ONLY rv2.parent;
SELECT id FROM rv2.child;
SELECT customer_vault.drop_retention('rv2.parent') AS dropped;

DROP SCHEMA rv2 CASCADE;
DROP ROLE rv2_admin;
DROP OWNED BY rv2_owner;
DROP ROLE rv2_owner;

-- 3b. renames: a table under a retention policy keeps its names (the purge
-- would silently stop); a parent created under the old name cannot block
-- every other table's partitions
CREATE SCHEMA rv2b;
CREATE TABLE rv2b.events (id int, ts timestamptz, s text);
SELECT customer_vault.set_retention('rv2b.events', 'ts', '30 days', 'delete', 's');
SELECT relid FROM customer_vault.retention_policies WHERE schema_name = 'rv2b';
SELECT rv2_state($$ALTER TABLE rv2b.events RENAME TO events_old$$) AS rename_table;
SELECT rv2_state($$ALTER TABLE rv2b.events RENAME COLUMN ts TO ts2$$) AS rename_time_column;
SELECT rv2_state($$ALTER TABLE rv2b.events RENAME COLUMN s TO s2$$) AS rename_subject_column;
SELECT rv2_state($$ALTER TABLE rv2b.events SET SCHEMA public$$) AS set_schema;
SELECT rv2_state($$ALTER SCHEMA rv2b RENAME TO rv2c$$) AS rename_schema;
ALTER TABLE rv2b.events RENAME COLUMN id TO event_id;
-- an unrelated inheritance parent and partitioned table elsewhere still work
CREATE TABLE rv2b.p (ts timestamptz) PARTITION BY RANGE (ts);
CREATE TABLE rv2b.p1 PARTITION OF rv2b.p FOR VALUES FROM ('2020-01-01') TO ('2030-01-01');
-- but the policy's own table cannot get children
SELECT rv2_state($$CREATE TABLE rv2b.events_child () INHERITS (rv2b.events)$$) AS child_of_policy_table;
-- drop_retention, then the rename is allowed
SELECT customer_vault.drop_retention('rv2b.events') AS dropped;
ALTER TABLE rv2b.events RENAME TO events_old;
DROP SCHEMA rv2b CASCADE;
DROP FUNCTION rv2_state(text);
