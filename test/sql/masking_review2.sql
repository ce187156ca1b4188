-- Masking review 2 (issue 14, part MASK3), each finding shown failing on
-- the code before it: (1) a SELECT policy aimed at particular roles makes
-- <table>_masked refuse (it would apply to customer_vault_mask_owner, not to
-- the caller); (2) keyed masks are withheld from a session that can SET ROLE
-- to a writer (NOINHERIT chains, the group role itself); (4) keyed masks are
-- withheld when a table whose owner is not trusted has policies (a policy
-- runs the owner's code as the masked reader); (5) a view over <table>_masked
-- made by anybody does not freeze the table's DDL.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_m3_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_m3_masked IN ROLE customer_vault_masked_reader;
CREATE ROLE regress_m3_appw;
CREATE ROLE regress_m3_user;
GRANT customer_vault_masked_reader TO regress_m3_user;
CREATE ROLE regress_m3_mid NOINHERIT;
GRANT regress_m3_appw TO regress_m3_mid;
GRANT regress_m3_mid TO regress_m3_user;
CREATE ROLE regress_m3_w2 IN ROLE customer_vault_masked_reader;
CREATE ROLE regress_m3_pub;
CREATE ROLE regress_m3_owner;
RESET client_min_messages;
SELECT customer_vault.create_key('m3_key') > 0 AS created;
CREATE TABLE m3_c (id int PRIMARY KEY, email text, region text);
ALTER TABLE m3_c OWNER TO regress_m3_admin;
INSERT INTO m3_c VALUES (1, 'ann@example.com', 'eu'), (2, 'bob@example.org', 'us'), (3, 'cy@example.net', 'eu');
SET ROLE regress_m3_admin;
SELECT customer_vault.protect_column('m3_c', 'email', 'm3_key', 'id');
SELECT customer_vault.mask_column('m3_c', 'email', 'hash');
GRANT SELECT (id, region) ON m3_c TO regress_m3_masked, regress_m3_user;
GRANT INSERT, DELETE ON m3_c TO regress_m3_appw;
RESET ROLE;

-- (1) policies aimed at roles: the view refuses instead of showing rows
-- the caller cannot read directly (restrictive) or hiding them (permissive)
SET ROLE regress_m3_admin;
ALTER TABLE m3_c ENABLE ROW LEVEL SECURITY;
CREATE POLICY m3_all ON m3_c FOR SELECT TO PUBLIC USING (true);
CREATE POLICY m3_eu ON m3_c AS RESTRICTIVE FOR SELECT TO regress_m3_masked USING (region = 'eu');
RESET ROLE;
SET ROLE regress_m3_masked;
SELECT id, region FROM m3_c ORDER BY id;
SELECT id, region FROM m3_c_masked ORDER BY id;
SELECT count(*) FROM m3_c_masked WHERE id = 2;
RESET ROLE;
SET ROLE regress_m3_admin;
ALTER POLICY m3_eu ON m3_c TO customer_vault_masked_reader;
RESET ROLE;
SET ROLE regress_m3_masked;
SELECT id, region FROM m3_c_masked ORDER BY id;
RESET ROLE;
-- permissive ones too, even naming the view's owner role
SET ROLE regress_m3_admin;
DROP POLICY m3_eu ON m3_c;
CREATE POLICY m3_mo ON m3_c FOR SELECT TO customer_vault_mask_owner USING (true);
RESET ROLE;
SET ROLE regress_m3_masked;
SELECT id, region FROM m3_c_masked ORDER BY id;
RESET ROLE;
-- a policy for other commands only does not matter; the same condition
-- written TO PUBLIC applies to the caller
SET ROLE regress_m3_admin;
DROP POLICY m3_mo ON m3_c;
CREATE POLICY m3_ins ON m3_c FOR INSERT TO regress_m3_appw WITH CHECK (true);
CREATE POLICY m3_eu2 ON m3_c AS RESTRICTIVE FOR SELECT TO PUBLIC
    USING (NOT pg_has_role(current_user, 'regress_m3_masked', 'MEMBER') OR region = 'eu');
RESET ROLE;
SET ROLE regress_m3_masked;
SELECT id, region, email IS NOT NULL AS hashed FROM m3_c_masked ORDER BY id;
RESET ROLE;
-- with row-level security off, policies do not apply to anybody
SET ROLE regress_m3_admin;
CREATE POLICY m3_eu ON m3_c AS RESTRICTIVE FOR SELECT TO regress_m3_masked USING (region = 'eu');
ALTER TABLE m3_c DISABLE ROW LEVEL SECURITY;
RESET ROLE;
SET ROLE regress_m3_masked;
SELECT id, region FROM m3_c_masked ORDER BY id;
RESET ROLE;
SET ROLE regress_m3_admin;
DROP POLICY m3_eu ON m3_c; DROP POLICY m3_eu2 ON m3_c; DROP POLICY m3_all ON m3_c; DROP POLICY m3_ins ON m3_c;
RESET ROLE;

-- (2) a masked reader that can SET ROLE to a writer through a NOINHERIT
-- chain gets no keyed masks (it could plant guesses as the writer)
SET ROLE regress_m3_user;
SELECT has_table_privilege('m3_c', 'INSERT') AS user_can_insert_as_self;
SELECT id, email IS NULL AS withheld FROM m3_c_masked WHERE id = 1;
RESET ROLE;
SET ROLE regress_m3_masked;
SELECT id, email IS NULL AS withheld FROM m3_c_masked WHERE id = 1;
SELECT email AS h_ann FROM m3_c_masked WHERE id = 1 \gset
RESET ROLE;
SET ROLE regress_m3_appw;
INSERT INTO m3_c VALUES (100, 'ann@example.com', 'xx');
SET ROLE regress_m3_user;
SELECT id, email IS NULL AS withheld, email IS NOT DISTINCT FROM :'h_ann' AS guess_matches FROM m3_c_masked WHERE id = 100;
RESET ROLE;
-- a writer whose scope is granted to the group gets none as the group
-- either (its session can SET ROLE back to itself)
GRANT SELECT (id, region) ON m3_c TO customer_vault_masked_reader;
GRANT INSERT ON m3_c TO regress_m3_w2;
SET SESSION AUTHORIZATION regress_m3_w2;
SELECT id, email IS NULL AS withheld FROM m3_c_masked WHERE id = 100;
SET ROLE customer_vault_masked_reader;
SELECT id, email IS NULL AS withheld, email IS NOT DISTINCT FROM :'h_ann' AS guess_matches FROM m3_c_masked WHERE id = 100;
RESET SESSION AUTHORIZATION;
-- nor one whose sealing right is reachable by SET ROLE
REVOKE INSERT ON m3_c FROM regress_m3_w2;
GRANT customer_vault_writer TO regress_m3_w2;
SET SESSION AUTHORIZATION regress_m3_w2;
SET ROLE customer_vault_masked_reader;
SELECT id, email IS NULL AS withheld FROM m3_c_masked WHERE id = 1;
RESET SESSION AUTHORIZATION;
REVOKE customer_vault_writer FROM regress_m3_w2;
REVOKE SELECT (id, region) ON m3_c FROM customer_vault_masked_reader;
DELETE FROM m3_c WHERE id >= 100;

-- (4) a table owner that is not trusted (not an admin) can plant guesses
-- and, through a policy (run as the masked reader), call _mask_sealed:
-- keyed masks are withheld while the table has any policy
CREATE TABLE m3_o (id int PRIMARY KEY, email text);
INSERT INTO m3_o VALUES (1, 'ann@example.com'), (2, 'bob@example.org');
SELECT customer_vault.protect_column('m3_o', 'email', 'm3_key', 'id');
SELECT customer_vault.mask_column('m3_o', 'email', 'hash');
ALTER TABLE m3_o OWNER TO regress_m3_owner;
GRANT CREATE ON SCHEMA public TO regress_m3_owner;
GRANT SELECT (id) ON m3_o TO regress_m3_masked;
SET ROLE regress_m3_masked;
SELECT id, email IS NULL AS withheld FROM m3_o_masked ORDER BY id;
RESET ROLE;
SELECT binding AS obind FROM customer_vault.protected_columns WHERE relid = 'm3_o'::regclass \gset
SET ROLE regress_m3_owner;
INSERT INTO m3_o VALUES (50, 'ann@example.com');
CREATE TABLE m3_loot (id int, h text);
GRANT INSERT ON m3_loot TO PUBLIC;
SELECT format($f$CREATE FUNCTION m3_spy(i int, v text) RETURNS boolean LANGUAGE plpgsql AS $g$
BEGIN
  INSERT INTO public.m3_loot VALUES (i, customer_vault._mask_sealed(v, customer_vault._row_context(%L, i), 'public.m3_o'::regclass, 'email'));
  RETURN true;
END $g$$f$, :'obind') \gexec
ALTER TABLE m3_o ENABLE ROW LEVEL SECURITY;
CREATE POLICY m3_trap ON m3_o FOR SELECT TO PUBLIC USING (public.m3_spy(id, email::text));
RESET ROLE;
SET ROLE regress_m3_masked;
SELECT id, email IS NULL AS withheld FROM m3_o_masked ORDER BY id;
RESET ROLE;
SET ROLE regress_m3_owner;
SELECT count(*) AS spied, count(h) AS masks_obtained FROM m3_loot;
DROP POLICY m3_trap ON m3_o;
ALTER TABLE m3_o DISABLE ROW LEVEL SECURITY;
RESET ROLE;
-- an admin's table with a policy keeps its keyed masks (m3_c, above);
-- without the policy the masks come back
SET ROLE regress_m3_masked;
SELECT id, email IS NULL AS withheld FROM m3_o_masked ORDER BY id;
RESET ROLE;

-- (5) anybody's view over <table>_masked does not block the table's DDL:
-- replaced in place when the columns allow, else dropped with a warning
SET ROLE regress_m3_masked;
CREATE TEMP VIEW m3_dep AS SELECT id FROM public.m3_c_masked;
RESET ROLE;
SELECT customer_vault.mask_column('m3_c', 'email', 'null');
SET ROLE regress_m3_admin;
ALTER TABLE m3_c ADD COLUMN extra text;
GRANT SELECT (extra) ON m3_c TO regress_m3_masked;
RESET ROLE;
SET ROLE regress_m3_masked;
SELECT * FROM m3_dep ORDER BY id;
RESET ROLE;
-- a column whose type or collation changes: the view is made again, the
-- objects over it are dropped and named in a WARNING
\set VERBOSITY default
\set SHOW_CONTEXT never
SET ROLE regress_m3_admin;
SECURITY LABEL FOR customer_vault ON COLUMN m3_c.region IS 'pii';
RESET ROLE;
\set VERBOSITY terse
SELECT pg_catalog.to_regclass('pg_temp.m3_dep') IS NOT NULL AS dependent_kept;
SET ROLE regress_m3_masked;
SELECT id, region, email FROM m3_c_masked ORDER BY id;
RESET ROLE;
SELECT relid::regclass, column_name, rule FROM customer_vault.mask_rules WHERE relid = 'm3_c'::regclass ORDER BY 2;
-- compliance_report checks as the view does: regress_m3_user reaches a
-- writer through SET ROLE (NOINHERIT); write paths the check cannot see
-- (a view over the table, a rule); keyed masks withheld for policies of a
-- non-admin owner
SELECT customer_vault.mask_column('m3_c', 'email', 'hash');
CREATE VIEW m3_signup AS SELECT id, email, region FROM m3_c;
SET ROLE regress_m3_admin;
CREATE RULE m3_r AS ON UPDATE TO m3_c WHERE false DO ALSO NOTHING;
RESET ROLE;
SET ROLE regress_m3_owner;
CREATE POLICY m3_p ON m3_o FOR SELECT TO PUBLIC USING (true);
RESET ROLE;
SELECT severity, object, finding FROM customer_vault.compliance_report()
 WHERE object ~ 'm3_' AND finding ~ 'hash or fake' ORDER BY 1, 2, 3;

-- clean up
REVOKE CREATE ON SCHEMA public FROM regress_m3_owner;
SET client_min_messages = warning;
DROP VIEW m3_signup;
DROP TABLE m3_c, m3_o, m3_loot CASCADE;
DROP FUNCTION m3_spy(int, text);
DROP OWNED BY regress_m3_pub, regress_m3_masked, regress_m3_user, regress_m3_appw, regress_m3_w2;
DROP ROLE regress_m3_admin, regress_m3_masked, regress_m3_appw, regress_m3_user, regress_m3_mid,
          regress_m3_w2, regress_m3_pub, regress_m3_owner;
RESET client_min_messages;
