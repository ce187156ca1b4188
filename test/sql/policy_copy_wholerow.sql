-- The consent policy copied to a new child or partition (C, _copy_consent_policy)
-- maps a whole-row reference onto the child's own row type: a child whose
-- columns lie in another order, or with a dropped column, reads under the
-- copied policy instead of failing with a row type mismatch.
\set VERBOSITY terse
CREATE TABLE wr_parent (id int, junk int, name text);
CREATE POLICY customer_vault_consent ON wr_parent AS RESTRICTIVE
    USING (wr_parent IS NOT NULL AND (wr_parent).id > 1);
CREATE POLICY p_all ON wr_parent USING (true);
ALTER TABLE wr_parent ENABLE ROW LEVEL SECURITY;
-- an inheritance child with a dropped column and its own column order
CREATE TABLE wr_child (extra text, id int, name text, junk int);
ALTER TABLE wr_child DROP COLUMN extra;
INSERT INTO wr_child VALUES (1, 'a', 0), (2, 'b', 0);
ALTER TABLE wr_child INHERIT wr_parent;
SELECT polname, polpermissive, pg_get_expr(polqual, polrelid)
  FROM pg_policy WHERE polrelid = 'wr_child'::regclass ORDER BY polname;
-- a partitioned table and a partition attached with another column order
CREATE TABLE wr_part (id int, region text, name text) PARTITION BY LIST (region);
CREATE POLICY customer_vault_consent ON wr_part AS RESTRICTIVE
    USING (wr_part IS NOT NULL AND (wr_part).id > 1);
CREATE POLICY p_all ON wr_part USING (true);
ALTER TABLE wr_part ENABLE ROW LEVEL SECURITY;
CREATE TABLE wr_part_eu (gone int, name text, region text, id int);
ALTER TABLE wr_part_eu DROP COLUMN gone;
INSERT INTO wr_part_eu VALUES ('x', 'eu', 1), ('y', 'eu', 2), ('z', 'eu', 3);
ALTER TABLE wr_part ATTACH PARTITION wr_part_eu FOR VALUES IN ('eu');
SELECT polname, polpermissive, pg_get_expr(polqual, polrelid)
  FROM pg_policy WHERE polrelid = 'wr_part_eu'::regclass ORDER BY polname;
CREATE ROLE wr_reader;
GRANT SELECT ON wr_parent, wr_child, wr_part, wr_part_eu TO wr_reader;
SET ROLE wr_reader;
SELECT * FROM wr_child ORDER BY id;
SELECT * FROM wr_parent ORDER BY id;
SELECT id, name FROM wr_part_eu ORDER BY id;
SELECT id, name FROM wr_part ORDER BY id;
RESET ROLE;
DROP TABLE wr_child, wr_parent, wr_part;
DROP ROLE wr_reader;
