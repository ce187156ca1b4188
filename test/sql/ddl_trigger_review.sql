-- Review of the consent policy event trigger (part FIXDDL, HIGH): the
-- trigger runs as the extension's owner (a superuser) for any table owner's
-- DDL.  It used to turn a policy's expression into text (pg_get_expr) and run
-- CREATE POLICY ... USING (<text>) as the superuser; re-parsing a literal of
-- a user's domain runs the domain's CHECK (user code) with superuser rights.
-- Two entry points, each by a role with nothing but PUBLIC's TEMP right:
--   1. a permissive customer_vault_consent policy (made restrictive),
--   2. a child of a table with a restrictive customer_vault_consent policy
--      (the policy is copied to it).
-- After the fix nobody becomes superuser, and the user's function ran only
-- as that user (every call records current_user).  The legitimate behaviours
-- still work: children and partitions (other column orders, dropped columns)
-- get the policy with the same meaning, and a permissive consent policy (as
-- Citus re-creates it on shards) becomes restrictive with the same check.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_ddl_tmp LOGIN;
CREATE ROLE regress_ddl_reader;
RESET client_min_messages;
SELECT has_database_privilege('regress_ddl_tmp', current_database(), 'TEMP') AS may_temp,
       has_schema_privilege('regress_ddl_tmp', 'public', 'CREATE') AS may_create_in_public;

-- ---------- entry 1: a permissive consent policy on a temp table ----------
SET ROLE regress_ddl_tmp;
CREATE TEMP TABLE calls (who name, super boolean);
CREATE FUNCTION pg_temp.evil(text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.calls SELECT current_user, r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE regress_ddl_tmp SUPERUSER';
    END IF;
    RETURN true;
END $$;
CREATE DOMAIN pg_temp.d AS text CHECK (pg_temp.evil(VALUE));
CREATE TEMP TABLE t (id int);
CREATE POLICY customer_vault_consent ON t USING ('{x}'::pg_temp.d[] IS NOT NULL);
RESET ROLE;
SELECT rolsuper AS became_superuser FROM pg_roles WHERE rolname = 'regress_ddl_tmp';
-- the policy is restrictive now, same command and expression
SELECT polname, polpermissive, polcmd, pg_get_expr(polqual, polrelid) AS qual
  FROM pg_policy WHERE polrelid = 'pg_temp.t'::regclass ORDER BY polname;
-- every call so far ran as the role itself, none as a superuser
SELECT who, super, count(*) > 0 AS called FROM pg_temp.calls GROUP BY who, super ORDER BY 1, 2;

-- ---------- entry 2: a child of a table with such a restrictive policy ----------
SET ROLE regress_ddl_tmp;
TRUNCATE pg_temp.calls;
CREATE TEMP TABLE p (id int);
CREATE POLICY customer_vault_consent ON p AS RESTRICTIVE USING ('{x}'::pg_temp.d[] IS NOT NULL);
CREATE TEMP TABLE c () INHERITS (p);
-- and through ALTER TABLE ... INHERIT
CREATE TEMP TABLE c2 (id int);
ALTER TABLE c2 INHERIT p;
RESET ROLE;
SELECT rolsuper AS became_superuser FROM pg_roles WHERE rolname = 'regress_ddl_tmp';
SELECT count(*) FILTER (WHERE super) AS calls_as_superuser,
       count(*) FILTER (WHERE who <> 'regress_ddl_tmp') AS calls_as_another_role
  FROM pg_temp.calls;
-- the children got the policy, with the parent's expression (nothing re-parsed)
SELECT c.relname, c.relrowsecurity AS rls, p.polpermissive, p.polcmd,
       pg_get_expr(p.polqual, p.polrelid) AS qual
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE p.polrelid IN ('pg_temp.c'::regclass, 'pg_temp.c2'::regclass) AND p.polname = 'customer_vault_consent'
 ORDER BY 1;

-- the same with a schema of the attacker's own (an ordinary table owner)
CREATE SCHEMA regress_ddl_s AUTHORIZATION regress_ddl_tmp;
SET ROLE regress_ddl_tmp;
TRUNCATE pg_temp.calls;
CREATE FUNCTION regress_ddl_s.evil2(text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.calls SELECT current_user, r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE regress_ddl_tmp SUPERUSER';
    END IF;
    RETURN true;
END $$;
CREATE DOMAIN regress_ddl_s.d AS text CHECK (regress_ddl_s.evil2(VALUE));
CREATE TABLE regress_ddl_s.t (id int);
CREATE POLICY customer_vault_consent ON regress_ddl_s.t FOR ALL USING ('{x}'::regress_ddl_s.d[] IS NOT NULL)
    WITH CHECK ('{y}'::regress_ddl_s.d[] IS NOT NULL);
CREATE TABLE regress_ddl_s.pp (id int, v text) PARTITION BY LIST (id);
CREATE POLICY customer_vault_consent ON regress_ddl_s.pp AS RESTRICTIVE USING (('{x}'::regress_ddl_s.d[])[1] <> v);
CREATE TABLE regress_ddl_s.pp1 PARTITION OF regress_ddl_s.pp FOR VALUES IN (1);
CREATE TABLE regress_ddl_s.pp2 (v text, junk int, id int);
ALTER TABLE regress_ddl_s.pp2 DROP COLUMN junk;
ALTER TABLE regress_ddl_s.pp ATTACH PARTITION regress_ddl_s.pp2 FOR VALUES IN (2);
-- re-created permissive, then altered: each time through the trigger again
DROP POLICY customer_vault_consent ON regress_ddl_s.t;
CREATE POLICY customer_vault_consent ON regress_ddl_s.t AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ('{z}'::regress_ddl_s.d[] IS NOT NULL);
ALTER POLICY customer_vault_consent ON regress_ddl_s.t USING ('{w}'::regress_ddl_s.d[] IS NOT NULL);
RESET ROLE;
SELECT rolsuper AS became_superuser FROM pg_roles WHERE rolname = 'regress_ddl_tmp';
SELECT count(*) FILTER (WHERE super) AS calls_as_superuser,
       count(*) FILTER (WHERE who <> 'regress_ddl_tmp') AS calls_as_another_role
  FROM pg_temp.calls;
SELECT c.relname, p.polpermissive, p.polcmd, pg_get_expr(p.polqual, p.polrelid) AS qual,
       pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace = 'regress_ddl_s'::regnamespace AND p.polname = 'customer_vault_consent'
 ORDER BY 1;
-- the copied policy depends on the partition's own column (attribute numbers mapped)
SELECT a.attname, a.attnum
  FROM pg_depend d JOIN pg_policy p ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE d.refclassid = 'pg_class'::regclass AND p.polrelid = 'regress_ddl_s.pp2'::regclass AND d.refobjsubid > 0;
-- and on the same objects as the partitioned table's own policy (the domain's array type, ...)
SELECT c.relname, string_agg(d.refclassid::regclass || ' ' || pg_describe_object(d.refclassid, d.refobjid, 0), ', '
                             ORDER BY 1) AS depends_on
  FROM pg_depend d JOIN pg_policy p ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid
  JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace = 'regress_ddl_s'::regnamespace AND d.refclassid <> 'pg_class'::regclass
 GROUP BY c.relname ORDER BY 1;

-- ---------- legitimate: enable_consent_policy, then children of all kinds ----------
SELECT customer_vault.define_purpose('ddl_mail');
SELECT customer_vault.allow_purpose('regress_ddl_reader', 'ddl_mail');
SELECT customer_vault.grant_consent('1', 'ddl_mail', '{"form": "ddl"}') > 0 AS granted;
CREATE TABLE ddl_parent (x int, subject bigint, note text);
SELECT customer_vault.enable_consent_policy('ddl_parent', 'subject', 'ddl_mail', force => true);
-- a child whose subject column has another attribute number
CREATE TABLE ddl_child (junk int, note text, x int, subject bigint);
ALTER TABLE ddl_child DROP COLUMN junk;
ALTER TABLE ddl_child INHERIT ddl_parent;
CREATE TABLE ddl_child2 (extra text) INHERITS (ddl_parent);
-- a grandchild made later gets it too
CREATE TABLE ddl_grandchild () INHERITS (ddl_child);
INSERT INTO ddl_child (x, subject, note) VALUES (1, 1, 'a'), (2, 2, 'b');
INSERT INTO ddl_child2 (x, subject, note) VALUES (1, 1, 'a'), (2, 2, 'b');
INSERT INTO ddl_grandchild (x, subject, note) VALUES (1, 1, 'a'), (2, 2, 'b');
GRANT SELECT ON ddl_parent, ddl_child, ddl_child2, ddl_grandchild TO regress_ddl_reader;
SELECT c.relname, c.relrowsecurity AS rls, c.relforcerowsecurity AS force,
       string_agg(p.polname || CASE WHEN p.polpermissive THEN '(permissive)' ELSE '(restrictive)' END
                  || ':' || pg_get_expr(p.polqual, p.polrelid), ', ' ORDER BY p.polname) AS policies
  FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
 WHERE c.relname LIKE 'ddl\_%' GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity ORDER BY 1;
SET customer_vault.purpose = 'ddl_mail';
SET ROLE regress_ddl_reader;
-- only subject 1, read through each table directly
SELECT 'ddl_child' AS tbl, count(*), count(*) FILTER (WHERE subject = 2) AS unconsented FROM ddl_child
UNION ALL SELECT 'ddl_child2', count(*), count(*) FILTER (WHERE subject = 2) FROM ddl_child2
UNION ALL SELECT 'ddl_grandchild', count(*), count(*) FILTER (WHERE subject = 2) FROM ddl_grandchild
UNION ALL SELECT 'ddl_parent', count(*), count(*) FILTER (WHERE subject = 2) FROM ddl_parent;
RESET ROLE;
RESET customer_vault.purpose;
-- dropping a child drops its copied policy with it
DROP TABLE ddl_grandchild;
SELECT count(*) AS orphan_policies FROM pg_policy p WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.polrelid);

-- ---------- legitimate: a permissive consent policy (as Citus makes on shards) ----------
CREATE TABLE ddl_shard (x int, subject bigint);
CREATE POLICY customer_vault_consent ON ddl_shard AS PERMISSIVE FOR SELECT
    USING (customer_vault.may_process((subject)::bigint, 'ddl_mail'));
SELECT polname, polpermissive, polcmd, polroles::regrole[] AS roles, pg_get_expr(polqual, polrelid) AS qual
  FROM pg_policy WHERE polrelid = 'ddl_shard'::regclass ORDER BY 1;

-- ---------- the helpers are for the extension's owner only ----------
SET ROLE regress_ddl_tmp;
SELECT customer_vault._consent_policy_flip('pg_temp.t');
SELECT customer_vault._copy_consent_policy('ddl_parent', 'pg_temp.t');
RESET ROLE;
-- bad arguments (as the superuser): NULLs, a missing table, not a descendant
SELECT customer_vault._consent_policy_flip(NULL) IS NULL AS null_flip;
SELECT customer_vault._copy_consent_policy(NULL, 'ddl_parent') IS NULL AS null_copy;
SELECT customer_vault._consent_policy_flip('ddl_parent') AS flipped_restrictive_again;
SELECT customer_vault._copy_consent_policy('ddl_parent', 'ddl_parent') AS copied_onto_itself;
SELECT customer_vault._copy_consent_policy('ddl_parent', 'ddl_child') AS copied_twice;

-- clean up
DROP TABLE ddl_shard, ddl_parent, ddl_child, ddl_child2;
DROP SCHEMA regress_ddl_s CASCADE;
DROP TABLE pg_temp.c, pg_temp.c2, pg_temp.p, pg_temp.t, pg_temp.calls;
DROP DOMAIN pg_temp.d;
DROP FUNCTION pg_temp.evil(text);
SELECT customer_vault.disallow_purpose('regress_ddl_reader', 'ddl_mail');
DROP ROLE regress_ddl_tmp;
DROP OWNED BY regress_ddl_reader;
DROP ROLE regress_ddl_reader;
