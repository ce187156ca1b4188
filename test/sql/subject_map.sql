-- The map of personal data: the subject registry, foreign-key reach (two
-- levels, composite keys, cycles), implicit registration, bad input, who may
-- register and label, labels inherited by partitions.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_sm_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_sm_owner;
CREATE ROLE regress_sm_other;
RESET client_min_messages;
CREATE SCHEMA sm;
GRANT USAGE ON SCHEMA sm TO PUBLIC;

-- the sample schema: customers; orders -> customers; order_lines -> orders
-- (no subject column); tickets with a special-category note
CREATE TABLE sm.customers (id bigint PRIMARY KEY, email text, name text);
CREATE TABLE sm.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES sm.customers (id),
                        placed_at timestamptz NOT NULL DEFAULT now(), total numeric);
CREATE TABLE sm.order_lines (order_id bigint NOT NULL REFERENCES sm.orders (id), line int NOT NULL,
                             item text, PRIMARY KEY (order_id, line));
-- a composite key: shipments of an order line
CREATE TABLE sm.shipments (id int PRIMARY KEY, order_id bigint, line int, carrier text,
                           FOREIGN KEY (order_id, line) REFERENCES sm.order_lines (order_id, line));
CREATE TABLE sm.tickets (id int PRIMARY KEY, customer_id bigint NOT NULL, note text);
-- no foreign key to anything registered
CREATE TABLE sm.audit_trail (id int PRIMARY KEY, what text);
-- a cycle below orders: a and b reference each other, b references orders
CREATE TABLE sm.cyc_a (id int PRIMARY KEY, b_id int);
CREATE TABLE sm.cyc_b (id int PRIMARY KEY, a_id int REFERENCES sm.cyc_a (id), order_id bigint REFERENCES sm.orders (id));
ALTER TABLE sm.cyc_a ADD FOREIGN KEY (b_id) REFERENCES sm.cyc_b (id);
-- a self-reference
CREATE TABLE sm.notes (id int PRIMARY KEY, reply_to int REFERENCES sm.notes (id), ticket_id int REFERENCES sm.tickets (id));

SELECT customer_vault.register_subject_table('sm.customers', 'id');
SELECT customer_vault.register_subject_table('sm.tickets', 'customer_id');
SELECT relid, subject_column, registered_by = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS by_me
  FROM customer_vault.subject_tables ORDER BY relid::text;

-- every registered table and every table reaching one, with its path
SELECT relid, depth, parent, fk IS NOT NULL AS has_fk, subject_column, path, cycle
  FROM customer_vault._subject_reach() ORDER BY depth, relid::text, parent::text;
-- the fk column names the constraint from relid to parent
SELECT r.relid, k.conname FROM customer_vault._subject_reach() r JOIN pg_constraint k ON k.oid = r.fk
 WHERE k.conrelid = r.relid AND k.confrelid = r.parent ORDER BY 1, 2;
-- not reached: audit_trail
SELECT count(*) AS audit_trail_reached FROM customer_vault._subject_reach() WHERE relid = 'sm.audit_trail'::regclass;

-- re-registering changes the column; registering orders makes it depth 0
-- (its own column), and its children follow it
SELECT customer_vault.register_subject_table('sm.orders', 'customer_id');
SELECT relid, depth, parent, subject_column, path FROM customer_vault._subject_reach()
 WHERE relid IN ('sm.orders'::regclass, 'sm.order_lines'::regclass) ORDER BY 2, 1;
SELECT customer_vault.unregister_subject_table('sm.orders') AS removed,
       customer_vault.unregister_subject_table('sm.orders') AS removed_again;

-- bad input
SELECT customer_vault.register_subject_table(NULL, 'id');
SELECT customer_vault.register_subject_table('sm.customers', NULL);
SELECT customer_vault.register_subject_table('sm.customers', 'nope');
SELECT customer_vault.register_subject_table('sm.nope', 'id');
CREATE VIEW sm.customers_v AS SELECT * FROM sm.customers;
SELECT customer_vault.register_subject_table('sm.customers_v', 'id');
SELECT customer_vault.register_subject_table('pg_catalog.pg_class', 'relname');
SELECT customer_vault.register_subject_table('customer_vault.data_keys', 'subject');
CREATE TEMP TABLE sm_temp (id int);
SELECT customer_vault.register_subject_table('sm_temp', 'id');
CREATE DOMAIN sm.cid AS bigint;
CREATE TABLE sm.odd (id sm.cid, ts timestamptz);
SELECT customer_vault.register_subject_table('sm.odd', 'id');
SELECT customer_vault.register_subject_table('sm.odd', 'ts');
SELECT customer_vault.unregister_subject_table(NULL);
SELECT customer_vault.unregister_subject_table('sm.audit_trail') AS removed_unregistered;
-- a dropped column
ALTER TABLE sm.audit_trail ADD COLUMN gone bigint;
ALTER TABLE sm.audit_trail DROP COLUMN gone;
SELECT customer_vault.register_subject_table('sm.audit_trail', 'gone');
SELECT count(*) AS registered FROM customer_vault.subject_tables;

-- who may register: the admin role, for a table it owns or may read
CREATE TABLE sm.private (id bigint, secret text);
ALTER TABLE sm.private OWNER TO regress_sm_owner;
SET ROLE regress_sm_other;
SELECT customer_vault.register_subject_table('sm.private', 'id');
SELECT customer_vault.unregister_subject_table('sm.customers');
SELECT * FROM customer_vault._subject_reach();
INSERT INTO customer_vault.subject_tables VALUES ('sm.private', 'id', 10);
RESET ROLE;
SET ROLE regress_sm_admin;
SELECT customer_vault.register_subject_table('sm.private', 'id');
SELECT * FROM customer_vault._subject_reach();
INSERT INTO customer_vault.subject_tables VALUES ('sm.private', 'id', 10);
DELETE FROM customer_vault.subject_tables;
SELECT count(*) AS admin_reads_registry FROM customer_vault.subject_tables;
RESET ROLE;
GRANT SELECT ON sm.private TO regress_sm_admin;
SET ROLE regress_sm_admin;
SELECT customer_vault.register_subject_table('sm.private', 'id');
RESET ROLE;
SELECT registered_by = 'regress_sm_admin'::regrole::oid AS registered_by_admin
  FROM customer_vault.subject_tables WHERE relid = 'sm.private'::regclass;
SELECT customer_vault.unregister_subject_table('sm.private') AS removed;
REVOKE SELECT ON sm.private FROM regress_sm_admin;
GRANT regress_sm_owner TO regress_sm_admin;
SET ROLE regress_sm_admin;
SELECT customer_vault.register_subject_table('sm.private', 'id');
RESET ROLE;
SELECT customer_vault.unregister_subject_table('sm.private') AS removed;
REVOKE regress_sm_owner FROM regress_sm_admin;

-- implicit registration: set_retention with a subject column and
-- enable_consent_policy; an existing registration is kept; nothing is
-- registered for a caller who could not register the table
SELECT customer_vault.set_retention('sm.orders', 'placed_at', '7 years', 'delete', 'customer_id');
SELECT relid, subject_column FROM customer_vault.subject_tables WHERE relid = 'sm.orders'::regclass;
SELECT customer_vault.set_retention('sm.orders', 'placed_at', '7 years', 'delete', 'id');
SELECT relid, subject_column FROM customer_vault.subject_tables WHERE relid = 'sm.orders'::regclass;
SELECT customer_vault.drop_retention('sm.orders');
SELECT customer_vault.unregister_subject_table('sm.orders') AS removed;
SELECT customer_vault.set_retention('sm.orders', 'placed_at', '7 years');
SELECT count(*) AS registered_without_subject_column FROM customer_vault.subject_tables WHERE relid = 'sm.orders'::regclass;
SELECT customer_vault.drop_retention('sm.orders');
ALTER TABLE sm.private ADD COLUMN at timestamptz;
GRANT DELETE ON sm.private TO regress_sm_admin;
SET ROLE regress_sm_admin;
SELECT customer_vault.set_retention('sm.private', 'at', '1 year', 'delete', 'id');
RESET ROLE;
SELECT count(*) AS registered_for_non_reader FROM customer_vault.subject_tables WHERE relid = 'sm.private'::regclass;
SELECT customer_vault.drop_retention('sm.private');
CREATE TABLE sm.newsletter (subscriber text, topic text);
SELECT customer_vault.define_purpose('sm_news');
SELECT customer_vault.enable_consent_policy('sm.newsletter', 'subscriber', 'sm_news');
SELECT relid, subject_column FROM customer_vault.subject_tables WHERE relid = 'sm.newsletter'::regclass;

-- renames: the table may be renamed (kept by OID), its subject column not;
-- dropping the column or the table drops the registration
ALTER TABLE sm.tickets RENAME TO support_tickets;
SELECT relid, subject_column FROM customer_vault.subject_tables WHERE relid = 'sm.support_tickets'::regclass;
ALTER TABLE sm.support_tickets RENAME customer_id TO cust;
ALTER TABLE sm.support_tickets ALTER customer_id TYPE timestamptz USING now();
ALTER TABLE sm.support_tickets ALTER customer_id TYPE numeric;
ALTER TABLE sm.support_tickets RENAME note TO body;
SELECT customer_vault.register_subject_table('sm.newsletter', 'topic');
ALTER TABLE sm.newsletter DROP COLUMN topic;
SELECT count(*) AS newsletter_registered FROM customer_vault.subject_tables WHERE relid = 'sm.newsletter'::regclass;
DROP TABLE sm.newsletter;
SELECT relid FROM customer_vault.subject_tables ORDER BY 1::text;

-- partitions: a partition registers its partitioned table; labels of the
-- partitioned table apply to its partitions (also to one attached later)
CREATE TABLE sm.events (customer_id bigint, at date, detail text, extra text) PARTITION BY RANGE (at);
CREATE TABLE sm.events_2025 PARTITION OF sm.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
SELECT customer_vault.register_subject_table('sm.events_2025', 'customer_id');
SELECT relid, subject_column FROM customer_vault.subject_tables WHERE relid::text LIKE 'sm.events%';
SECURITY LABEL FOR customer_vault ON COLUMN sm.events.detail IS 'pii:special';
SECURITY LABEL FOR customer_vault ON COLUMN sm.events_2025.extra IS 'pii';
CREATE TABLE sm.events_2026 (extra text, detail text, at date, customer_id bigint);
ALTER TABLE sm.events ATTACH PARTITION sm.events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT c.relname, a.attname, customer_vault._column_label(c.oid, a.attnum) AS label
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relname IN ('events', 'events_2025', 'events_2026') AND c.relnamespace = 'sm'::regnamespace
 ORDER BY 1, 2;
-- a label of its own wins over the inherited one
SECURITY LABEL FOR customer_vault ON COLUMN sm.events_2026.detail IS 'pii:contact';
SELECT customer_vault._column_label('sm.events_2026', (SELECT attnum FROM pg_attribute WHERE attrelid = 'sm.events_2026'::regclass AND attname = 'detail')) AS own_label;
SELECT customer_vault._pii_columns('sm.events_2025') AS pii_2025, customer_vault._pii_columns('sm.events_2026') AS pii_2026;
SELECT customer_vault._column_label(NULL, 1::smallint) IS NULL AS null_relid,
       customer_vault._column_label('sm.events', 99::smallint) IS NULL AS no_column;

-- the inventory: every labelled, protected or encrypted column, with its
-- protection, retention, consent policy and how its table reaches a subject
SECURITY LABEL FOR customer_vault ON COLUMN sm.customers.email IS 'pii:contact';
SECURITY LABEL FOR customer_vault ON COLUMN sm.customers.name IS 'pii';
SECURITY LABEL FOR customer_vault ON COLUMN sm.support_tickets.body IS 'pii:special';
SECURITY LABEL FOR customer_vault ON COLUMN sm.order_lines.item IS 'pii';
SECURITY LABEL FOR customer_vault ON COLUMN sm.audit_trail.what IS 'pii';
SELECT customer_vault.create_key('sm_key') > 0 AS key_created;
DROP VIEW sm.customers_v;
SELECT customer_vault.protect_column('sm.customers', 'email', 'sm_key', 'id');
ALTER TABLE sm.orders ADD COLUMN card customer_vault.encrypted_text;
SELECT customer_vault.set_retention('sm.orders', 'placed_at', '7 years', 'delete', 'customer_id');
SELECT customer_vault.unregister_subject_table('sm.orders') AS unregistered;
SELECT customer_vault.enable_consent_policy('sm.support_tickets', 'customer_id', 'sm_news');
SELECT schema_name, table_name, column_name, label, type, protection, retention_keep, retention_action,
       consent_policy, reaches_subject
  FROM customer_vault.inventory WHERE schema_name = 'sm' ORDER BY 2, 3;
SET ROLE regress_sm_other;
SELECT count(*) FROM customer_vault.inventory;
RESET ROLE;
SET ROLE regress_sm_admin;
SELECT count(*) AS admin_reads_inventory, count(DISTINCT reaches_subject) AS paths
  FROM customer_vault.inventory WHERE schema_name = 'sm';
RESET ROLE;

-- labelling: the owner, the admin role, a superuser; nobody else
CREATE TABLE sm.owned (id bigint, email text);
ALTER TABLE sm.owned OWNER TO regress_sm_owner;
SET ROLE regress_sm_owner;
SECURITY LABEL FOR customer_vault ON COLUMN sm.owned.email IS 'pii:contact';
SECURITY LABEL FOR customer_vault ON COLUMN sm.owned.email IS 'secret';
RESET ROLE;
SET ROLE regress_sm_other;
SECURITY LABEL FOR customer_vault ON COLUMN sm.owned.email IS 'pii';
SECURITY LABEL FOR customer_vault ON COLUMN sm.owned.email IS NULL;
RESET ROLE;
SET ROLE regress_sm_admin;
SECURITY LABEL FOR customer_vault ON COLUMN sm.owned.email IS 'pii';
RESET ROLE;
SELECT label FROM pg_seclabel WHERE objoid = 'sm.owned'::regclass AND provider = 'customer_vault';

SET client_min_messages = warning;
DROP SCHEMA sm CASCADE;
RESET client_min_messages;
SELECT count(*) AS left_registered FROM customer_vault.subject_tables;
DROP TABLE sm_temp;
DROP ROLE regress_sm_admin;
DROP ROLE regress_sm_owner;
DROP ROLE regress_sm_other;
