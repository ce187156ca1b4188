-- Inheritance children and partitions in the subject reach (review
-- rev-walk, part WALKINV).  Each block failed on the previous code.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE SCHEMA regress_wc;
RESET client_min_messages;

-- F3: a child registered itself with a subject column of its own is matched
-- by its registered parent's subject column too: the row naming subject 77
-- as its owner was neither exported nor erased (only co_id was compared)
CREATE TABLE regress_wc.owner (owner_id bigint, note text);
SELECT customer_vault.register_subject_table('regress_wc.owner', 'owner_id');
CREATE TABLE regress_wc.shared (co_id bigint) INHERITS (regress_wc.owner);
SELECT customer_vault.register_subject_table('regress_wc.shared', 'co_id');
INSERT INTO regress_wc.shared VALUES (77, 'owned by 77', 88), (78, 'co-owned by 77', 77), (79, 'neither', 80);
SELECT jsonb_path_query_array(customer_vault.export_subject('77') -> 'tables' -> 'regress_wc.shared', '$.rows[*].note') AS export_77;
SELECT r -> 'tables' -> 'regress_wc.shared' AS erased FROM customer_vault.forget_subject('77', 'f3') r;
SELECT * FROM regress_wc.shared ORDER BY 1;
-- text and varchar compare as text
CREATE TABLE regress_wc.towner (tid text);
SELECT customer_vault.register_subject_table('regress_wc.towner', 'tid');
CREATE TABLE regress_wc.tchild (vid varchar(10)) INHERITS (regress_wc.towner);
SELECT customer_vault.register_subject_table('regress_wc.tchild', 'vid');
INSERT INTO regress_wc.tchild VALUES ('t-1', 'v-1'), ('t-2', 't-1'), ('t-3', 'v-3');
SELECT r -> 'tables' -> 'regress_wc.tchild' AS erased FROM customer_vault.forget_subject('t-1', 'f3') r;
SELECT * FROM regress_wc.tchild;
-- a registered child's own column of another type than its parent's: every
-- walk refused (0A000), nothing erased; it was matched by its own column
CREATE TABLE regress_wc.mixed (code text) INHERITS (regress_wc.owner);
SELECT customer_vault.register_subject_table('regress_wc.mixed', 'code');
INSERT INTO regress_wc.mixed VALUES (90, 'owned by 90', 'c-90');
SELECT customer_vault.forget_subject('c-90', 'f3');
SELECT customer_vault.export_subject('90');
SELECT count(*) AS mixed_rows FROM regress_wc.mixed;
SELECT customer_vault.unregister_subject_table('regress_wc.mixed');
DROP TABLE regress_wc.mixed;

-- note: an inheritance child without a retention policy of its own has its
-- parent's applied by the erasure (here kept: shred), and the export shows
-- that policy (it showed none).  A parent with a policy gets no children
-- through DDL; a restore (tables first, then the policies) or DDL with the
-- event triggers off (as here) makes them all the same.
CREATE TABLE regress_wc.acct (cust bigint, at timestamptz NOT NULL DEFAULT '2026-01-01 00:00+00', info text);
SELECT customer_vault.register_subject_table('regress_wc.acct', 'cust');
SELECT customer_vault.set_retention('regress_wc.acct', 'at', '10 years', 'shred', 'cust');
SET session_replication_role = replica;
CREATE TABLE regress_wc.acct_eu () INHERITS (regress_wc.acct);
RESET session_replication_role;
INSERT INTO regress_wc.acct_eu (cust, info) VALUES (5, 'eu');
SELECT customer_vault.export_subject('5') -> 'tables' -> 'regress_wc.acct_eu' -> 'retention' ->> 'action' AS export_action,
       customer_vault.export_subject('5') -> 'tables' -> 'regress_wc.acct_eu' ->> 'retention_until' AS until;
SELECT r -> 'tables' -> 'regress_wc.acct_eu' AS erased FROM customer_vault.forget_subject('5', 'note') r;
SELECT customer_vault.drop_retention('regress_wc.acct');

-- F4: a foreign key declared on a partition (not on its partitioned table)
-- is followed: the partition is a table of the reach of its own; the row
-- was missing from the export, and the erasure failed on the key (NO ACTION)
CREATE TABLE regress_wc.people (id bigint PRIMARY KEY, name text);
SELECT customer_vault.register_subject_table('regress_wc.people', 'id');
INSERT INTO regress_wc.people VALUES (41, 'forty-one'), (42, 'forty-two');
CREATE TABLE regress_wc.events (region text, person bigint, what text) PARTITION BY LIST (region);
CREATE TABLE regress_wc.events_eu PARTITION OF regress_wc.events FOR VALUES IN ('eu');
CREATE TABLE regress_wc.events_us PARTITION OF regress_wc.events FOR VALUES IN ('us');
ALTER TABLE regress_wc.events_eu ADD FOREIGN KEY (person) REFERENCES regress_wc.people(id);
INSERT INTO regress_wc.events VALUES ('eu', 41, 'visited'), ('us', 41, 'no key'), ('eu', 42, 'other');
SELECT jsonb_path_query_array(customer_vault.export_subject('41') -> 'tables', '$.*.rows[*].what') AS export_41;
SELECT r -> 'tables' -> 'regress_wc.people' AS people, r -> 'tables' -> 'regress_wc.events_eu' AS events_eu
  FROM customer_vault.forget_subject('41', 'f4') r;
SELECT * FROM regress_wc.events ORDER BY 1, 2;
-- its partitioned table's retention policy applies (kept: shred, the key
-- ON DELETE SET NULL)
ALTER TABLE regress_wc.events_eu DROP CONSTRAINT events_eu_person_fkey,
    ADD FOREIGN KEY (person) REFERENCES regress_wc.people(id) ON DELETE SET NULL;
ALTER TABLE regress_wc.events ADD COLUMN at timestamptz NOT NULL DEFAULT '2026-01-01 00:00+00';
SELECT customer_vault.set_retention('regress_wc.events', 'at', '1 year', 'shred', 'person');
SELECT r -> 'tables' -> 'regress_wc.events_eu' AS erased FROM customer_vault.forget_subject('42', 'f4') r;
SELECT region, person, what FROM regress_wc.events ORDER BY 1, 2;
SELECT customer_vault.drop_retention('regress_wc.events');
-- a foreign key towards a partition itself is not followed (its keys are
-- not the partitioned table's): the referencing table is named in not_reached
CREATE TABLE regress_wc.ppl (region text, id bigint, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
CREATE TABLE regress_wc.ppl_eu PARTITION OF regress_wc.ppl FOR VALUES IN ('eu');
ALTER TABLE regress_wc.ppl_eu ADD UNIQUE (id);
SELECT customer_vault.register_subject_table('regress_wc.ppl', 'id');
CREATE TABLE regress_wc.notes (ppl_id bigint REFERENCES regress_wc.ppl_eu(id), body text);
SELECT r -> 'not_reached' AS not_reached FROM customer_vault.forget_subject('43', 'f4') r;

SET client_min_messages = warning;
SELECT count(customer_vault.unregister_subject_table(t))
  FROM unnest(ARRAY['regress_wc.owner', 'regress_wc.shared', 'regress_wc.towner', 'regress_wc.tchild',
                    'regress_wc.acct', 'regress_wc.people', 'regress_wc.ppl']) t;
DROP SCHEMA regress_wc CASCADE;
RESET client_min_messages;
