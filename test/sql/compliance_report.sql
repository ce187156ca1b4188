-- compliance_report(): a clean setup reports nothing; the sample schema of
-- issue 12 (customers; orders -> customers; order_lines -> orders without a
-- subject column; tickets with pii:special notes in plaintext) lists exactly
-- the expected findings, and none once each is fixed; every setting finding
-- is provoked and cleared in this session (the test runs as a superuser, so
-- it may SET the superuser-only ones), a role with an MD5 hash, a second
-- login superuser, an old key and a broken hash chain each show and go.
-- The harness cluster (initdb -A trust) has trust lines for loopback
-- addresses only: they are local, not reported.
\set VERBOSITY terse
\set orig_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_cv_report;
CREATE DATABASE regress_cv_report;
\c regress_cv_report
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
CREATE ROLE regress_cr_marketing;
CREATE ROLE regress_cr_billing;
CREATE ROLE regress_cr_auditor IN ROLE customer_vault_auditor;
CREATE ROLE regress_cr_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_cr_reader IN ROLE customer_vault_reader;
CREATE ROLE regress_cr_writer IN ROLE customer_vault_writer;
CREATE ROLE regress_cr_none;
RESET client_min_messages;

-- clean: nothing to report
SELECT * FROM customer_vault.compliance_report();
-- (the harness's trust lines are there, and local)
SELECT count(*) > 0 AS loopback_trust_lines FROM pg_hba_file_rules WHERE auth_method = 'trust' AND type <> 'local';

-- the sample schema (subject_tables and _subject_reach() of part MAP give the
-- reachability, cycle and index findings)
CREATE TABLE customers (id bigint PRIMARY KEY, email text, name text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers, shipping_address text,
                     created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE order_lines (order_id bigint NOT NULL REFERENCES orders, line int NOT NULL, product text,
                          PRIMARY KEY (order_id, line));
CREATE TABLE tickets (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers, notes text,
                      created_at timestamptz NOT NULL DEFAULT now());
SECURITY LABEL FOR customer_vault ON COLUMN customers.email IS 'pii:contact';
SECURITY LABEL FOR customer_vault ON COLUMN customers.name IS 'pii';
SECURITY LABEL FOR customer_vault ON COLUMN orders.shipping_address IS 'pii:contact';
SECURITY LABEL FOR customer_vault ON COLUMN tickets.notes IS 'pii:special';
-- customers are the subjects; a referral table whose foreign keys loop; a
-- newsletter list that no foreign key ties to a customer
SELECT customer_vault.register_subject_table('customers', 'id');
CREATE TABLE referrals (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers, referred_by bigint REFERENCES referrals);
CREATE INDEX ON referrals (customer_id);
CREATE TABLE newsletter (email text);
SECURITY LABEL FOR customer_vault ON COLUMN newsletter.email IS 'pii:contact';
INSERT INTO customers VALUES (1, 'ann@example.com', 'Ann'), (2, 'bob@example.com', 'Bob');
INSERT INTO orders VALUES (10, 1, '1 Main St'), (20, 2, '2 High St');
INSERT INTO order_lines VALUES (10, 1, 'tea'), (20, 1, 'coffee');
INSERT INTO tickets VALUES (100, 1, 'asthma, asked for a callback');
-- marketing runs on consent, and its role reads the customers
SELECT customer_vault.define_purpose('marketing', 'consent');
SELECT customer_vault.allow_purpose('regress_cr_marketing', 'marketing');
GRANT SELECT ON customers TO regress_cr_marketing;
-- a contract purpose needs no consent policy
SELECT customer_vault.define_purpose('billing', 'contract');
SELECT customer_vault.allow_purpose('regress_cr_billing', 'billing');
GRANT SELECT ON orders TO regress_cr_billing;
-- a key made long ago and never rotated, and a fresh one
SELECT customer_vault.create_key('cr_old') > 0 AS created, customer_vault.create_key('cr_key') > 0 AS created;
UPDATE customer_vault.data_keys SET created_at = now() - interval '400 days' WHERE name = 'cr_old';
-- subject keys and the subject-hash key are never rotated: never reported
SELECT customer_vault.encrypt_for_subject('1', 'x') IS NOT NULL AS subject_key,
       customer_vault._subject_hash('1') IS NOT NULL AS subject_hash_key;
UPDATE customer_vault.data_keys SET created_at = now() - interval '400 days' WHERE name IS NULL OR name LIKE E'\001%';
SELECT kind, count(*) FROM customer_vault.keys WHERE created_at < now() - interval '365 days' GROUP BY 1 ORDER BY 1;

SELECT * FROM customer_vault.compliance_report();

-- key_max_age decides what is old (superuser only); 0 turns it off
SET customer_vault.key_max_age = '500d';
SELECT count(*) AS old_keys FROM customer_vault.compliance_report() WHERE object LIKE 'key %';
SET customer_vault.key_max_age = 0;
SELECT count(*) AS old_keys FROM customer_vault.compliance_report() WHERE object LIKE 'key %';
RESET customer_vault.key_max_age;
SHOW customer_vault.key_max_age;
SET ROLE regress_cr_admin;
SET customer_vault.key_max_age = '1d';
RESET ROLE;

-- the auditor and the admin run it; the reader, the writer and others cannot
SET ROLE regress_cr_auditor;
SELECT count(*) AS auditor_findings FROM customer_vault.compliance_report();
SET ROLE regress_cr_admin;
SELECT count(*) AS admin_findings FROM customer_vault.compliance_report();
RESET ROLE;
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
SET ROLE regress_cr_reader;
SELECT pg_temp.sqlstate_of('SELECT customer_vault.compliance_report()') AS reader;
SET ROLE regress_cr_writer;
SELECT pg_temp.sqlstate_of('SELECT customer_vault.compliance_report()') AS writer;
SET ROLE regress_cr_none;
SELECT pg_temp.sqlstate_of('SELECT customer_vault.compliance_report()') AS none,
       pg_temp.sqlstate_of('SELECT customer_vault._report_findings()') AS helper,
       pg_temp.sqlstate_of('SELECT customer_vault._report_settings()') AS settings_helper;
RESET ROLE;

-- fix each finding
SELECT customer_vault.protect_column('customers', 'email', 'cr_key', 'id');
SELECT customer_vault.protect_column('customers', 'name', 'cr_key', 'id');
SELECT customer_vault.protect_column('orders', 'shipping_address', 'cr_key', 'id');
SELECT customer_vault.protect_column('tickets', 'notes', 'cr_key', 'id');
SELECT customer_vault.set_retention('customers', 'created_at', '6 years');
SELECT customer_vault.set_retention('orders', 'created_at', '10 years');
SELECT customer_vault.set_retention('tickets', 'created_at', '2 years');
SELECT customer_vault.enable_consent_policy('customers', 'id', 'marketing');
SELECT customer_vault.rotate_key('cr_old');
CREATE INDEX ON orders (customer_id);
CREATE INDEX ON tickets (customer_id);
ALTER TABLE referrals DROP CONSTRAINT referrals_referred_by_fkey;
DROP TABLE newsletter;   -- (merged into customers)
SELECT * FROM customer_vault.compliance_report();

-- broken hash chains (each in a transaction rolled back)
SELECT customer_vault.grant_consent('1', 'marketing', '{"form": "signup"}') > 0 AS granted;
SELECT customer_vault.place_legal_hold('2', 'tax audit') > 0 AS held;
BEGIN;
ALTER TABLE customer_vault.consent_ledger DISABLE TRIGGER USER;
UPDATE customer_vault.consent_ledger SET evidence = '{"form": "forged"}';
ALTER TABLE customer_vault.legal_hold_events DISABLE TRIGGER USER;
UPDATE customer_vault.legal_hold_events SET reason = 'forged';
SELECT severity, object, finding FROM customer_vault.compliance_report();
ROLLBACK;
SELECT * FROM customer_vault.compliance_report();

-- settings that copy values into logs or statistics, one at a time
CREATE FUNCTION pg_temp.settings_findings() RETURNS TABLE (severity text, object text, finding text)
LANGUAGE sql AS $$ SELECT severity, object, finding FROM customer_vault.compliance_report() $$;
SET log_statement = 'mod';
SELECT * FROM pg_temp.settings_findings();
SET log_parameter_max_length = 0;
SELECT * FROM pg_temp.settings_findings();
SET log_statement = 'all';
SELECT count(*) AS findings FROM pg_temp.settings_findings();
SET log_statement = 'ddl';
SELECT count(*) AS findings FROM pg_temp.settings_findings();
RESET log_statement;
RESET log_parameter_max_length;
SET log_min_duration_statement = 0;
SELECT * FROM pg_temp.settings_findings();
RESET log_min_duration_statement;
SET log_min_duration_sample = 100;
SELECT * FROM pg_temp.settings_findings();
SET log_statement_sample_rate = 0;
SELECT count(*) AS findings FROM pg_temp.settings_findings();
RESET log_min_duration_sample;
RESET log_statement_sample_rate;
SET log_parameter_max_length_on_error = 64;
SELECT * FROM pg_temp.settings_findings();
RESET log_parameter_max_length_on_error;
SET log_min_error_statement = warning;
SELECT object FROM pg_temp.settings_findings();
SET log_min_error_statement = log;
SELECT count(*) AS findings FROM pg_temp.settings_findings();
RESET log_min_error_statement;
SET session_preload_libraries = '"$libdir/auto_explain"';
SELECT * FROM pg_temp.settings_findings();
RESET session_preload_libraries;
SET local_preload_libraries = 'pg_stat_statements, other';
SELECT * FROM pg_temp.settings_findings();
RESET local_preload_libraries;
SET client_min_messages = error;   -- PostgreSQL 18 warns of MD5
SET password_encryption = md5;
RESET client_min_messages;
SELECT * FROM pg_temp.settings_findings();
RESET password_encryption;
-- set for a role: applies to its sessions
ALTER ROLE regress_cr_marketing SET log_statement = 'all';
SELECT * FROM pg_temp.settings_findings();
ALTER ROLE regress_cr_marketing RESET log_statement;
SELECT count(*) AS findings FROM pg_temp.settings_findings();

-- roles: an MD5 password hash (the hash is never shown), a second superuser
-- that can log in
SET client_min_messages = error;
CREATE ROLE regress_cr_md5 LOGIN PASSWORD 'md5a3556571e93b0d20722ba62be61e8c2d';
RESET client_min_messages;
SELECT * FROM pg_temp.settings_findings();
SELECT count(*) AS hash_shown FROM customer_vault.compliance_report()
 WHERE concat(object, finding, hint) LIKE '%a3556571e93b0d20722ba62be61e8c2d%';
DROP ROLE regress_cr_md5;
CREATE ROLE regress_cr_super SUPERUSER LOGIN;
SELECT * FROM pg_temp.settings_findings();
ALTER ROLE regress_cr_super NOLOGIN;
SELECT count(*) AS findings FROM pg_temp.settings_findings();
DROP ROLE regress_cr_super;

-- which pg_hba.conf addresses are local (loopback only)
SELECT a, m, customer_vault._loopback_only(a, m) AS local
  FROM (VALUES ('127.0.0.1', '255.255.255.255'), ('127.0.0.0', '255.0.0.0'), ('::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'),
               ('samehost', NULL), ('127.0.0.1', '0.0.0.0'), ('10.0.0.1', '255.0.0.0'), ('0.0.0.0', '0.0.0.0'),
               ('::', '::'), ('all', NULL), ('samenet', NULL), ('cafe', NULL), ('db.example.com', NULL)) v(a, m);

\c :orig_db
SET client_min_messages = warning;
DROP DATABASE regress_cv_report;
DROP ROLE regress_cr_marketing, regress_cr_billing, regress_cr_auditor, regress_cr_admin, regress_cr_reader, regress_cr_writer, regress_cr_none;
