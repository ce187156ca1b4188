-- test/bench/subjects_schema.sql: the data-subject schema of the export and
-- erasure benchmarks (export_subject, forget_subject), :n rows per table,
-- every subject column and foreign-key column indexed.
--
--   bench_subj.customers    (id)                  registered, subject column id; email protected
--   bench_subj.orders       (customer_id)         registered; -> customers
--   bench_subj.order_lines  (order_id, line)      reached through orders (no subject column)
--   bench_subj.tickets      (customer_id)         registered; note labelled pii:special
--   bench_subj.addresses    (customer_id)         registered
--
-- Customers are 1..n; orders, tickets and addresses spread over them with a
-- multiplicative hash (customer 1 + (g * 7919) % n), so a customer's rows are
-- scattered through the table, about one of each per customer; order_lines
-- are n rows over the orders (1 + (g - 1) % n, line number g).
-- Usage: psql -v n=100000 -f test/bench/subjects_schema.sql
-- Other sections' registered tables are unregistered first.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS customer_vault CASCADE;
SELECT customer_vault.create_key('bench_subj', 'subject benchmark key')
 WHERE NOT EXISTS (SELECT 1 FROM customer_vault.keys WHERE name = 'bench_subj');
DROP SCHEMA IF EXISTS bench_subj CASCADE;
-- tables other sections registered (enable_consent_policy registers its
-- table): erasure and export would reach them too and the comparison with the
-- hand-written statements over these five tables would not be like for like
SELECT customer_vault.unregister_subject_table(t.relid)
  FROM customer_vault.subject_tables t
 WHERE t.relid::oid NOT IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                             WHERE n.nspname = 'bench_subj');
DELETE FROM customer_vault.protected_columns WHERE schema_name = 'bench_subj';
CREATE SCHEMA bench_subj;

CREATE TABLE bench_subj.customers (id bigint PRIMARY KEY, email text, name text NOT NULL,
                                   created_at timestamptz NOT NULL);
INSERT INTO bench_subj.customers
SELECT g, 'customer' || g || '@example.com', 'Customer ' || g, now() - (g % 1000) * interval '1 day'
  FROM generate_series(1::bigint, :n) g;

CREATE TABLE bench_subj.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES bench_subj.customers (id),
                                placed_at timestamptz NOT NULL, total numeric(12, 2) NOT NULL);
INSERT INTO bench_subj.orders
SELECT g, 1 + (g * 7919) % :n, now() - (g % 700) * interval '1 day', (g % 10000) / 100.0
  FROM generate_series(1::bigint, :n) g;
CREATE INDEX ON bench_subj.orders (customer_id);

CREATE TABLE bench_subj.order_lines (order_id bigint NOT NULL REFERENCES bench_subj.orders (id), line int NOT NULL,
                                     item text NOT NULL, qty int NOT NULL, PRIMARY KEY (order_id, line));
INSERT INTO bench_subj.order_lines
SELECT 1 + (g - 1) % :n, g, 'item ' || (g % 5000), 1 + g % 4
  FROM generate_series(1::bigint, :n) g;

CREATE TABLE bench_subj.tickets (id bigint PRIMARY KEY, customer_id bigint NOT NULL, opened_at timestamptz NOT NULL,
                                 note text);
INSERT INTO bench_subj.tickets
SELECT g, 1 + (g * 7919 + 13) % :n, now() - (g % 500) * interval '1 day', 'ticket note ' || g
  FROM generate_series(1::bigint, :n) g;
CREATE INDEX ON bench_subj.tickets (customer_id);

CREATE TABLE bench_subj.addresses (id bigint PRIMARY KEY, customer_id bigint NOT NULL, street text NOT NULL,
                                   city text NOT NULL, valid_from date NOT NULL);
INSERT INTO bench_subj.addresses
SELECT g, 1 + (g * 7919 + 29) % :n, g || ' Main Street', 'City ' || (g % 300), current_date - (g % 3000)::int
  FROM generate_series(1::bigint, :n) g;
CREATE INDEX ON bench_subj.addresses (customer_id);

SECURITY LABEL FOR customer_vault ON COLUMN bench_subj.customers.email IS 'pii:contact';
SECURITY LABEL FOR customer_vault ON COLUMN bench_subj.customers.name IS 'pii';
SECURITY LABEL FOR customer_vault ON COLUMN bench_subj.tickets.note IS 'pii:special';
SECURITY LABEL FOR customer_vault ON COLUMN bench_subj.addresses.street IS 'pii:contact';
SELECT customer_vault.protect_column('bench_subj.customers', 'email', 'bench_subj', 'id');

SELECT customer_vault.register_subject_table('bench_subj.customers', 'id');
SELECT customer_vault.register_subject_table('bench_subj.orders', 'customer_id');
SELECT customer_vault.register_subject_table('bench_subj.tickets', 'customer_id');
SELECT customer_vault.register_subject_table('bench_subj.addresses', 'customer_id');
VACUUM ANALYZE bench_subj.customers, bench_subj.orders, bench_subj.order_lines, bench_subj.tickets,
               bench_subj.addresses;
RESET client_min_messages;
