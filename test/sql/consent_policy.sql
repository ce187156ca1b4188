-- Consent policy coverage: enable_consent_policy covers every partition and
-- inheritance child, including those created or attached later (a policy on
-- the parent does not apply to a partition read directly), and the base
-- policy never voids a permissive policy of the DBA's (tenant isolation),
-- whether added before or after enable_consent_policy, altered or dropped.
-- Also what protect_column and set_retention do on partitioned tables.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_cvp_a;
CREATE ROLE regress_cvp_b;
RESET client_min_messages;
SELECT customer_vault.define_purpose('cvp_mail');
SELECT customer_vault.allow_purpose('regress_cvp_a', 'cvp_mail');
SELECT customer_vault.allow_purpose('regress_cvp_b', 'cvp_mail');
-- subjects 1 consented, 2 did not
SELECT customer_vault.grant_consent('1', 'cvp_mail', '{"form": "t"}') > 0 AS granted;

-- ---------- partitioned table: partitions made before and after ----------
CREATE TABLE cvp_orders (id bigint, subject bigint, tenant text) PARTITION BY RANGE (id);
CREATE TABLE cvp_orders_1 PARTITION OF cvp_orders FOR VALUES FROM (0) TO (100);
SELECT customer_vault.enable_consent_policy('cvp_orders', 'subject', 'cvp_mail');
-- created later with PARTITION OF
CREATE TABLE cvp_orders_2 PARTITION OF cvp_orders FOR VALUES FROM (100) TO (200);
-- created on its own (other column order), attached later
CREATE TABLE cvp_orders_3 (tenant text, subject bigint, id bigint);
ALTER TABLE cvp_orders ATTACH PARTITION cvp_orders_3 FOR VALUES FROM (200) TO (300);
-- a partitioned partition with a partition of its own, attached later
CREATE TABLE cvp_orders_4 (id bigint, subject bigint, tenant text) PARTITION BY RANGE (id);
CREATE TABLE cvp_orders_4a PARTITION OF cvp_orders_4 FOR VALUES FROM (300) TO (400);
ALTER TABLE cvp_orders ATTACH PARTITION cvp_orders_4 FOR VALUES FROM (300) TO (400);
-- and a partition of it made after that
CREATE TABLE cvp_orders_4b PARTITION OF cvp_orders_4 FOR VALUES FROM (400) TO (500);
ALTER TABLE cvp_orders DETACH PARTITION cvp_orders_4;
ALTER TABLE cvp_orders ATTACH PARTITION cvp_orders_4 FOR VALUES FROM (300) TO (500);
INSERT INTO cvp_orders SELECT g, 1 + g % 2, 'a' FROM generate_series(0, 499) g;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO regress_cvp_a;
SELECT c.relname, c.relrowsecurity AS rls,
       (SELECT string_agg(p.polname || CASE WHEN p.polpermissive THEN '(permissive)' ELSE '(restrictive)' END, ', ' ORDER BY p.polname)
          FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
  FROM pg_class c WHERE c.relname LIKE 'cvp\_orders%' ORDER BY 1;
SET customer_vault.purpose = 'cvp_mail';
SET ROLE regress_cvp_a;
-- every way in shows subject 1 only
SELECT 'cvp_orders' AS tbl, count(*), count(*) FILTER (WHERE subject = 2) AS unconsented FROM cvp_orders
UNION ALL SELECT 'cvp_orders_1', count(*), count(*) FILTER (WHERE subject = 2) FROM cvp_orders_1
UNION ALL SELECT 'cvp_orders_2', count(*), count(*) FILTER (WHERE subject = 2) FROM cvp_orders_2
UNION ALL SELECT 'cvp_orders_3', count(*), count(*) FILTER (WHERE subject = 2) FROM cvp_orders_3
UNION ALL SELECT 'cvp_orders_4', count(*), count(*) FILTER (WHERE subject = 2) FROM cvp_orders_4
UNION ALL SELECT 'cvp_orders_4a', count(*), count(*) FILTER (WHERE subject = 2) FROM cvp_orders_4a
UNION ALL SELECT 'cvp_orders_4b', count(*), count(*) FILTER (WHERE subject = 2) FROM cvp_orders_4b;
RESET ROLE;
-- a withdrawal hides the rows in every partition
SELECT customer_vault.withdraw_consent('1', 'cvp_mail') > 0 AS withdrawn;
SET ROLE regress_cvp_a;
SELECT (SELECT count(*) FROM cvp_orders) + (SELECT count(*) FROM cvp_orders_3) + (SELECT count(*) FROM cvp_orders_4b) AS visible;
RESET ROLE;
SELECT customer_vault.grant_consent('1', 'cvp_mail', '{"form": "t2"}') > 0 AS granted;

-- ---------- inheritance: children made before and after, INHERIT later ----------
CREATE TABLE cvp_hist (subject bigint, note text);
CREATE TABLE cvp_hist_old () INHERITS (cvp_hist);
SELECT customer_vault.enable_consent_policy('cvp_hist', 'subject', 'cvp_mail', force => true);
CREATE TABLE cvp_hist_new (extra int) INHERITS (cvp_hist);
CREATE TABLE cvp_hist_late (subject bigint, note text);
ALTER TABLE cvp_hist_late INHERIT cvp_hist;
INSERT INTO cvp_hist_old VALUES (1, 'x'), (2, 'y');
INSERT INTO cvp_hist_new VALUES (1, 'x', 0), (2, 'y', 0);
INSERT INTO cvp_hist_late VALUES (1, 'x'), (2, 'y');
SELECT c.relname, c.relrowsecurity AS rls, c.relforcerowsecurity AS force,
       (SELECT string_agg(p.polname, ', ' ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
  FROM pg_class c WHERE c.relname LIKE 'cvp\_hist%' ORDER BY 1;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO regress_cvp_a;
SET ROLE regress_cvp_a;
SELECT 'cvp_hist' AS tbl, count(*), count(*) FILTER (WHERE subject = 2) AS unconsented FROM cvp_hist
UNION ALL SELECT 'cvp_hist_old', count(*), count(*) FILTER (WHERE subject = 2) FROM cvp_hist_old
UNION ALL SELECT 'cvp_hist_new', count(*), count(*) FILTER (WHERE subject = 2) FROM cvp_hist_new
UNION ALL SELECT 'cvp_hist_late', count(*), count(*) FILTER (WHERE subject = 2) FROM cvp_hist_late;
RESET ROLE;
-- only DDL that links tables copies the policy: an ALTER TABLE of a child
-- that lost it (as in a restore, which creates the policy right after) adds none
DROP POLICY customer_vault_consent ON cvp_hist_late;
ALTER TABLE cvp_hist_late ENABLE ROW LEVEL SECURITY;
SELECT count(*) AS consent_policies FROM pg_policy WHERE polrelid = 'cvp_hist_late'::regclass AND polname = 'customer_vault_consent';
CREATE POLICY customer_vault_consent ON cvp_hist_late AS RESTRICTIVE FOR SELECT
    USING (customer_vault.may_process((subject)::bigint, 'cvp_mail'::text));

-- ---------- the DBA's permissive policies stay in force ----------
-- tenant isolation added BEFORE enable_consent_policy
CREATE TABLE cvp_tenant_before (subject bigint, tenant name);
INSERT INTO cvp_tenant_before VALUES (1, 'regress_cvp_a'), (1, 'regress_cvp_b'), (2, 'regress_cvp_a');
ALTER TABLE cvp_tenant_before ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON cvp_tenant_before USING (tenant = current_user);
SELECT customer_vault.enable_consent_policy('cvp_tenant_before', 'subject', 'cvp_mail');
-- tenant isolation added AFTER enable_consent_policy
CREATE TABLE cvp_tenant_after (subject bigint, tenant name);
INSERT INTO cvp_tenant_after VALUES (1, 'regress_cvp_a'), (1, 'regress_cvp_b'), (2, 'regress_cvp_a');
SELECT customer_vault.enable_consent_policy('cvp_tenant_after', 'subject', 'cvp_mail');
SELECT string_agg(polname, ', ' ORDER BY polname) AS policies_before_tenant FROM pg_policy WHERE polrelid = 'cvp_tenant_after'::regclass;
CREATE POLICY tenant_isolation ON cvp_tenant_after USING (tenant = current_user);
GRANT SELECT ON cvp_tenant_before, cvp_tenant_after TO regress_cvp_a, regress_cvp_b;
SELECT c.relname, string_agg(p.polname, ', ' ORDER BY p.polname) AS policies
  FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid
 WHERE c.relname LIKE 'cvp\_tenant%' GROUP BY 1 ORDER BY 1;
SET ROLE regress_cvp_a;
SELECT 'before' AS added, tenant, subject FROM cvp_tenant_before
UNION ALL SELECT 'after', tenant, subject FROM cvp_tenant_after ORDER BY 1, 2, 3;
RESET ROLE;
SET ROLE regress_cvp_b;
SELECT 'before' AS added, tenant, subject FROM cvp_tenant_before
UNION ALL SELECT 'after', tenant, subject FROM cvp_tenant_after ORDER BY 1, 2, 3;
RESET ROLE;
-- re-running enable_consent_policy keeps the tenant policy in force
SELECT customer_vault.enable_consent_policy('cvp_tenant_after', 'subject', 'cvp_mail');
-- ALTER POLICY: still in force
ALTER POLICY tenant_isolation ON cvp_tenant_after USING (tenant = current_user AND subject > 0);
SET ROLE regress_cvp_a;
SELECT tenant, subject FROM cvp_tenant_after ORDER BY 1, 2;
RESET ROLE;
-- a second permissive policy, then both dropped: the base policy comes back
-- only when none is left (the table's grants decide again)
CREATE POLICY tenant_admin ON cvp_tenant_after USING (current_user = 'regress_cvp_b');
DROP POLICY tenant_isolation ON cvp_tenant_after;
SELECT string_agg(polname, ', ' ORDER BY polname) AS policies FROM pg_policy WHERE polrelid = 'cvp_tenant_after'::regclass;
SET ROLE regress_cvp_a;
SELECT count(*) AS a_sees FROM cvp_tenant_after;
RESET ROLE;
DROP POLICY tenant_admin ON cvp_tenant_after;
SELECT string_agg(polname, ', ' ORDER BY polname) AS policies FROM pg_policy WHERE polrelid = 'cvp_tenant_after'::regclass;
SET ROLE regress_cvp_a;
SELECT tenant, subject FROM cvp_tenant_after ORDER BY 1, 2;
RESET ROLE;
-- a partition of a table with a tenant policy, created later: its own base
-- policy until it gets a permissive policy of its own
CREATE TABLE cvp_tp (subject bigint, tenant name) PARTITION BY LIST (tenant);
CREATE POLICY tenant_isolation ON cvp_tp USING (tenant = current_user);
SELECT customer_vault.enable_consent_policy('cvp_tp', 'subject', 'cvp_mail');
CREATE TABLE cvp_tp_a PARTITION OF cvp_tp FOR VALUES IN ('regress_cvp_a');
CREATE TABLE cvp_tp_b PARTITION OF cvp_tp FOR VALUES IN ('regress_cvp_b');
INSERT INTO cvp_tp VALUES (1, 'regress_cvp_a'), (2, 'regress_cvp_a'), (1, 'regress_cvp_b');
GRANT SELECT ON cvp_tp, cvp_tp_a, cvp_tp_b TO regress_cvp_a;
CREATE POLICY tenant_isolation ON cvp_tp_b USING (tenant = current_user);
SELECT c.relname, string_agg(p.polname, ', ' ORDER BY p.polname) AS policies
  FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid
 WHERE c.relname LIKE 'cvp\_tp%' GROUP BY 1 ORDER BY 1;
SET ROLE regress_cvp_a;
SELECT 'cvp_tp' AS tbl, tenant, subject FROM cvp_tp
UNION ALL SELECT 'cvp_tp_a', tenant, subject FROM cvp_tp_a
UNION ALL SELECT 'cvp_tp_b', tenant, subject FROM cvp_tp_b ORDER BY 1, 2, 3;
RESET ROLE;
RESET customer_vault.purpose;


-- ---------- protect_column on a partitioned table ----------
-- One conversion of every partition (ALTER TABLE recurses); the CHECK and the
-- trigger are cloned to partitions made later; values are bound to the
-- parent's name, so they read the same through the parent's decrypted view
-- whichever partition they were written through.
SELECT customer_vault.create_key('cvp_key') > 0 AS key_made;
CREATE TABLE cvp_pii (id bigint, email text) PARTITION BY RANGE (id);
CREATE TABLE cvp_pii_1 PARTITION OF cvp_pii FOR VALUES FROM (0) TO (100);
INSERT INTO cvp_pii VALUES (1, 'one@example.com');
SELECT customer_vault.protect_column('cvp_pii', 'email', 'cvp_key', context_column => 'id');
CREATE TABLE cvp_pii_2 PARTITION OF cvp_pii FOR VALUES FROM (100) TO (200);
INSERT INTO cvp_pii VALUES (101, 'two@example.com');
INSERT INTO cvp_pii_1 VALUES (2, 'three@example.com');
INSERT INTO cvp_pii_2 VALUES (102, 'four@example.com');
-- a table holding plaintext cannot be attached: the partition lacks the CHECK
CREATE TABLE cvp_pii_3 (id bigint, email text);
INSERT INTO cvp_pii_3 VALUES (201, 'plain@example.com');
ALTER TABLE cvp_pii ATTACH PARTITION cvp_pii_3 FOR VALUES FROM (200) TO (300);
ALTER TABLE cvp_pii_3 ADD CONSTRAINT cv_sealed_2 CHECK (customer_vault.is_sealed(email));
DELETE FROM cvp_pii_3;
ALTER TABLE cvp_pii_3 ADD CONSTRAINT cv_sealed_2 CHECK (customer_vault.is_sealed(email));
ALTER TABLE cvp_pii ATTACH PARTITION cvp_pii_3 FOR VALUES FROM (200) TO (300);
INSERT INTO cvp_pii_3 VALUES (201, 'five@example.com');
SELECT tableoid::regclass AS part, id, customer_vault.is_sealed(email) AS sealed FROM cvp_pii ORDER BY id;
SELECT id, email FROM cvp_pii_decrypted ORDER BY id;

-- ---------- set_retention: partitioned tables yes, inheritance parents no ----------
-- (the purge walks a partitioned table partition by partition, see the
-- maintenance test, but an inheritance parent by its own blocks, which do not
-- hold its children's rows)
ALTER TABLE cvp_pii ADD COLUMN at timestamptz;
SELECT customer_vault.set_retention('cvp_pii', 'at', '1 year');
CREATE TABLE cvp_pii_4 PARTITION OF cvp_pii FOR VALUES FROM (300) TO (400);
CREATE TABLE cvp_ret (at timestamptz);
CREATE TABLE cvp_ret_child () INHERITS (cvp_ret);
SELECT customer_vault.set_retention('cvp_ret', 'at', '1 year');
CREATE TABLE cvp_ret2 (at timestamptz);
SELECT customer_vault.set_retention('cvp_ret2', 'at', '1 year');
-- ... and an ordinary table under a retention policy cannot get children later
CREATE TABLE cvp_ret2_child () INHERITS (cvp_ret2);
CREATE TABLE cvp_ret2_late (at timestamptz);
ALTER TABLE cvp_ret2_late INHERIT cvp_ret2;
SELECT schema_name, table_name FROM customer_vault.retention_policies WHERE table_name LIKE 'cvp%' ORDER BY 2;
DROP TABLE cvp_pii, cvp_ret, cvp_ret2, cvp_ret2_late CASCADE;
SELECT count(*) AS policies_left FROM customer_vault.retention_policies WHERE table_name LIKE 'cvp%';

DROP TABLE cvp_orders, cvp_hist, cvp_tenant_before, cvp_tenant_after, cvp_tp CASCADE;
SELECT customer_vault.disallow_purpose('regress_cvp_a', 'cvp_mail');
SELECT customer_vault.disallow_purpose('regress_cvp_b', 'cvp_mail');
DROP ROLE regress_cvp_a, regress_cvp_b;
