-- export_subject (GDPR art. 15/20): exactly the subject's rows of every
-- registered table and of the tables reaching them through foreign keys
-- (two and three levels, a composite key), read as each table's owner;
-- sealed values opened only for readers; types a program can read back;
-- consents with evidence, the ledger, legal holds, retention; every export
-- recorded with a keyed hash; bad input; index scans only.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_ex_owner;
CREATE ROLE regress_ex_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_ex_admin_reader IN ROLE customer_vault_admin, customer_vault_reader;
CREATE ROLE regress_ex_reader IN ROLE customer_vault_reader;
CREATE ROLE regress_ex_writer IN ROLE customer_vault_writer;
CREATE ROLE regress_ex_auditor IN ROLE customer_vault_auditor;
RESET client_min_messages;
SELECT customer_vault.create_key('ex_key') > 0 AS created;
CREATE SCHEMA ex AUTHORIZATION regress_ex_owner;
GRANT USAGE ON SCHEMA ex TO PUBLIC;

-- the tables belong to an owner without any vault role; the admin cannot read them
SET ROLE regress_ex_owner;
CREATE TABLE ex.customers (id bigint PRIMARY KEY, email text, email_bidx bytea, name text, photo bytea, born date,
                           score numeric, vip boolean, prefs jsonb, seen timestamptz);
CREATE TABLE ex.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES ex.customers (id),
                        placed_at timestamptz NOT NULL, total numeric(10, 2));
CREATE INDEX ON ex.orders (customer_id);
CREATE TABLE ex.order_lines (order_id bigint NOT NULL REFERENCES ex.orders (id), line int NOT NULL,
                             item text, PRIMARY KEY (order_id, line));
CREATE TABLE ex.shipments (id int PRIMARY KEY, order_id bigint, line int, carrier text,
                           FOREIGN KEY (order_id, line) REFERENCES ex.order_lines (order_id, line));
CREATE INDEX ON ex.shipments (order_id, line);
CREATE TABLE ex.tickets (id int PRIMARY KEY, customer_id text NOT NULL, note customer_vault.encrypted_text,
                         attachment customer_vault.encrypted_bytea);
CREATE INDEX ON ex.tickets (customer_id);
CREATE TABLE ex.events (customer_id bigint, at date, what text) PARTITION BY RANGE (at);
CREATE TABLE ex.events_2025 PARTITION OF ex.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE ex.events_2026 PARTITION OF ex.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE ex.audit (id int, what text);
INSERT INTO ex.customers VALUES
 (1, 'ada@example.com', NULL, 'Ada', '\x00ff10', '1990-05-01', 12.5, true, '{"lang": "en", "tags": [1, 2]}', '2026-03-01 10:00:00+00'),
 (2, 'bob@example.com', NULL, 'Bob', NULL, NULL, 3, false, NULL, NULL),
 (3, 'cy@example.com', NULL, 'Cy', NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO ex.orders VALUES (10, 1, '2026-01-02 00:00:00+00', 19.99), (11, 1, '2026-02-03 00:00:00+00', 5),
                             (20, 2, '2026-01-05 00:00:00+00', 7);
INSERT INTO ex.order_lines VALUES (10, 1, 'book'), (10, 2, 'pen'), (11, 1, 'lamp'), (20, 1, 'chair');
INSERT INTO ex.shipments VALUES (100, 10, 2, 'DHL'), (101, 20, 1, 'UPS'), (102, 11, 1, 'DPD');
INSERT INTO ex.events VALUES (1, '2025-06-01', 'login'), (1, '2026-06-01', 'logout'), (2, '2026-06-02', 'login');
INSERT INTO ex.audit VALUES (1, 'nothing personal');
RESET ROLE;
-- the admin's writes go through the extension's functions; a ticket sealed
-- without context, one with a context (which export cannot know), one bytea
INSERT INTO ex.tickets VALUES
 (1, '1', customer_vault.encrypt('my diagnosis', 'ex_key'), customer_vault.encrypt('\xcafe'::bytea, 'ex_key')),
 (2, '1', customer_vault.encrypt('bound to its row', 'ex_key', 'ticket 2'), NULL),
 (3, '2', customer_vault.encrypt('bob''s diagnosis', 'ex_key'), NULL);
SELECT customer_vault.protect_column('ex.customers', 'email', 'ex_key', 'id', 'email_bidx');
SECURITY LABEL FOR customer_vault ON COLUMN ex.tickets.note IS 'pii:special';
SELECT customer_vault.register_subject_table('ex.customers', 'id');
SELECT customer_vault.register_subject_table('ex.tickets', 'customer_id');
SELECT customer_vault.register_subject_table('ex.events', 'customer_id');
SELECT customer_vault.set_retention('ex.orders', 'placed_at', '7 years', 'delete', 'customer_id');
SELECT customer_vault.define_purpose('ex_news');
SELECT customer_vault.grant_consent('1', 'ex_news', '{"form": "signup-v3"}') > 0 AS granted;
SELECT customer_vault.withdraw_consent('1', 'ex_news', '{"form": "unsubscribe"}') > 0 AS withdrawn;
SELECT customer_vault.grant_consent('2', 'ex_news', '{"form": "signup-v3"}') > 0 AS granted;
SELECT customer_vault.place_legal_hold('1', 'tax audit 2026') > 0 AS held;

-- as an admin that may not decrypt (and cannot read the tables itself)
SET ROLE regress_ex_admin;
SELECT count(*) FROM ex.customers;
CREATE TEMP TABLE doc1 AS SELECT customer_vault.export_subject('1') AS d;
RESET ROLE;
SELECT pg_catalog.jsonb_object_keys(d) AS top_keys FROM doc1 ORDER BY 1;
SELECT length(d ->> 'subject_hash') AS hash_hex_len, d ->> 'subject_hash' <> '1' AS hashed,
       (d ->> 'generated_at')::timestamptz <= now() AS generated_at_is_time FROM doc1;
-- the tables, in order of reach, and exactly the subject's rows
SELECT k.key AS tbl, jsonb_array_length(k.value -> 'rows') AS nrows
  FROM doc1, jsonb_each(d -> 'tables') k ORDER BY 1;
SELECT jsonb_path_query_array(d, '$.tables."ex.orders".rows[*].id') AS order_ids,
       jsonb_path_query_array(d, '$.tables."ex.order_lines".rows[*].item') AS items,
       jsonb_path_query_array(d, '$.tables."ex.shipments".rows[*].carrier') AS shipments,
       jsonb_path_query_array(d, '$.tables."ex.events".rows[*].what') AS events
  FROM doc1;
-- nothing of another subject anywhere in the document
SELECT (d -> 'tables')::text ~ 'bob|Bob|chair|UPS|"id": 20\M' AS has_other_subjects FROM doc1;
-- sealed values withheld from a non-reader, plaintext nowhere
SELECT d -> 'tables' -> 'ex.customers' -> 'rows' -> 0 -> 'email' AS email,
       d -> 'tables' -> 'ex.tickets' -> 'rows' -> 0 -> 'note' AS note,
       d -> 'tables' -> 'ex.tickets' -> 'rows' -> 0 -> 'attachment' AS attachment,
       d::text ~ 'ada@|diagnosis|\$sealed' AS leaks
  FROM doc1;
-- types a program can read back
SELECT jsonb_typeof(r -> 'id') AS id, jsonb_typeof(r -> 'score') AS score, r -> 'score' AS score_value,
       jsonb_typeof(r -> 'vip') AS vip, r -> 'born' AS born, r -> 'photo' AS photo,
       r -> 'prefs' AS prefs, (r ->> 'seen')::timestamptz = '2026-03-01 10:00:00+00' AS seen_iso,
       r ? 'email_bidx' AS has_blind_index
  FROM doc1, LATERAL (SELECT d -> 'tables' -> 'ex.customers' -> 'rows' -> 0 AS r) x;
-- retention of the orders: the policy and the last date it keeps a row
SELECT d -> 'tables' -> 'ex.orders' -> 'retention' AS retention,
       (d -> 'tables' -> 'ex.orders' ->> 'retention_until')::timestamptz = '2033-02-03 00:00:00+00' AS until_ok,
       d -> 'tables' -> 'ex.customers' -> 'retention' AS no_retention
  FROM doc1;
-- consents with evidence, the ledger, the legal hold (of this test's
-- purpose and hold: other tests leave consents of subject '1' behind)
SELECT jsonb_path_query_array(d, '$.consents[*] ? (@.purpose == "ex_news").status') AS consent_status,
       jsonb_path_query_array(d, '$.consents[*] ? (@.purpose == "ex_news").evidence') AS consent_evidence,
       jsonb_path_query_array(d, '$.ledger[*] ? (@.purpose == "ex_news").action') AS ledger_actions,
       jsonb_path_query_array(d, '$.ledger[*] ? (@.purpose == "ex_news").evidence.form') AS ledger_forms,
       jsonb_path_query_array(d, '$.legal_holds[*] ? (@.reason == "tax audit 2026").active') AS hold_active
  FROM doc1;

-- as an admin that is also a reader: the sealed values opened
SET ROLE regress_ex_admin_reader;
CREATE TEMP TABLE doc2 AS SELECT customer_vault.export_subject('1') AS d;
RESET ROLE;
SELECT d -> 'tables' -> 'ex.customers' -> 'rows' -> 0 -> 'email' AS email,
       jsonb_path_query_array(d, '$.tables."ex.tickets".rows[*].note') AS notes,
       d -> 'tables' -> 'ex.tickets' -> 'rows' -> 0 -> 'attachment' AS attachment,
       (d -> 'tables')::text ~ 'bob|Bob' AS has_other_subjects
  FROM doc2;
-- the two exports differ only in the sealed values and the time
SELECT (SELECT jsonb_path_query_array(d, '$.tables.*.rows[*].id') FROM doc1)
     = (SELECT jsonb_path_query_array(d, '$.tables.*.rows[*].id') FROM doc2) AS same_rows;

-- a subject with no data, or that no subject column can hold: the empty document
SET ROLE regress_ex_admin;
SELECT d - 'subject_hash' - 'generated_at' AS empty_doc FROM (SELECT customer_vault.export_subject('999') AS d) x;
SELECT d - 'subject_hash' - 'generated_at' AS not_a_number FROM (SELECT customer_vault.export_subject('1x') AS d) x;
-- bad input
SELECT customer_vault.export_subject(NULL);
SELECT customer_vault.export_subject('');
-- the internal pieces are not the admin's to call
SELECT customer_vault._maint_run('subject_rows', 'ex.customers', ARRAY['2'], NULL, NULL, NULL, false);
SELECT customer_vault._maint_run('subject_keys', 'ex.orders', ARRAY['2', '0'], NULL, NULL, NULL, false);
SELECT customer_vault._subject_filter('ex.orders', '2');
RESET ROLE;
-- roles without the admin role
SET ROLE regress_ex_reader;
SELECT customer_vault.export_subject('1');
RESET ROLE;
SET ROLE regress_ex_writer;
SELECT customer_vault.export_subject('1');
RESET ROLE;
SET ROLE regress_ex_auditor;
SELECT customer_vault.export_subject('1');
RESET ROLE;
SET ROLE regress_ex_owner;
SELECT customer_vault.export_subject('1');
RESET ROLE;
-- a table neither registered nor reaching one
SELECT customer_vault._subject_filter('ex.audit', '1');
SELECT customer_vault._subject_filter('ex.audit', NULL);

-- every export is recorded: who, which subject as a keyed hash, how much
SELECT r.rolname, e.tables, e.rows, e.withheld, e.subject_hash = decode((SELECT d ->> 'subject_hash' FROM doc1), 'hex') AS same_hash
  FROM customer_vault.subject_exports e JOIN pg_roles r ON r.oid = e.role_id ORDER BY e.id;
SELECT count(DISTINCT subject_hash) AS distinct_hashes,
       count(*) FILTER (WHERE subject_hash = customer_vault._subject_hash('1')) AS exports_of_subject_1
  FROM customer_vault.subject_exports;
-- append-only, also for the superuser
UPDATE customer_vault.subject_exports SET rows = 0;
DELETE FROM customer_vault.subject_exports;
TRUNCATE customer_vault.subject_exports;
SET ROLE regress_ex_auditor;
SELECT count(*) AS auditor_reads_exports FROM customer_vault.subject_exports;
RESET ROLE;

-- the statements use the indexes: at 20,000 rows per table, every table is
-- read by an index scan, none sequentially (EXPLAIN of the very statements
-- the export keeps prepared, _export_walk's rows_sql, as generic plans as
-- it prepares them, with the subject or parent keys bound)
SET client_min_messages = warning;
INSERT INTO ex.customers (id, name) SELECT g, 'c' || g FROM generate_series(1000, 20999) g;
INSERT INTO ex.orders SELECT g, 1000 + g % 20000, now(), 1 FROM generate_series(1000, 20999) g;
INSERT INTO ex.order_lines SELECT g, 1, 'x' FROM generate_series(1000, 20999) g;
INSERT INTO ex.shipments SELECT g, g, 1, 'x' FROM generate_series(1000, 20999) g;
INSERT INTO ex.tickets SELECT g, (1000 + g % 20000)::text, NULL, NULL FROM generate_series(1000, 20999) g;
INSERT INTO ex.events SELECT 1000 + g % 20000, '2026-01-01'::date + g % 300, 'x' FROM generate_series(1, 20000) g;
CREATE INDEX ON ex.events (customer_id);
ANALYZE ex.customers, ex.orders, ex.order_lines, ex.shipments, ex.tickets, ex.events;
RESET client_min_messages;
CREATE FUNCTION pg_temp.explain_export(tbl regclass, subject text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    w record;
    types text;
    args text;
    line text;
BEGIN
    SELECT * INTO STRICT w FROM customer_vault._export_walk(subject) x WHERE x.relid = tbl;
    IF w.depth = 0 THEN
        types := 'text';
        args := pg_catalog.quote_literal(subject);
    ELSE
        SELECT string_agg('text[]', ', '), string_agg('''{1005,1006}''', ', ') INTO types, args
          FROM generate_series(1, w.nparams);
    END IF;
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    EXECUTE format('PREPARE regress_ex_stmt(%s) AS %s', types, w.rows_sql);
    FOR line IN EXECUTE format('EXPLAIN (COSTS OFF) EXECUTE regress_ex_stmt(%s)', args) LOOP
        RETURN NEXT line;
    END LOOP;
    DEALLOCATE regress_ex_stmt;
END
$$;
-- (the 2025 partition of events holds one row: a sequential scan of its one page is right)
SELECT t AS tbl, bool_or(l ~ 'Index') AS index_scan,
       array_agg(substring(l from 'Seq Scan on (\S+)')) FILTER (WHERE l ~ 'Seq Scan') AS seq_scans
  FROM unnest(ARRAY['ex.customers', 'ex.orders', 'ex.order_lines', 'ex.shipments', 'ex.tickets', 'ex.events']) t,
       LATERAL pg_temp.explain_export(t::regclass, '1005') l
 GROUP BY t ORDER BY t;
-- and the export finds the same rows through them
SET ROLE regress_ex_admin;
SELECT k.key AS tbl, jsonb_array_length(k.value -> 'rows') AS nrows
  FROM jsonb_each(customer_vault.export_subject('1005') -> 'tables') k ORDER BY 1;
RESET ROLE;

-- a table's own JSON that looks like a sealed value is data: the export opens
-- only the columns it sealed itself (review rev3: a table owner could plant
-- another subject's ciphertext, or a protected value with another row's
-- context, and have the export decrypt it for the subject's request)
CREATE TABLE ex.prefs (customer_id bigint PRIMARY KEY, prefs jsonb);
SELECT customer_vault.register_subject_table('ex.prefs', 'customer_id');
INSERT INTO ex.prefs VALUES (1005, jsonb_build_object(
    '$sealed', customer_vault.encrypt('planted secret', 'ex_key')::text, 'type', 'encrypted_text'));
SET ROLE regress_ex_admin_reader;
SELECT (customer_vault.export_subject('1005') -> 'tables' -> 'ex.prefs' -> 'rows' -> 0 -> 'prefs') ? '$sealed' AS planted_left_sealed,
       customer_vault.export_subject('1005')::text LIKE '%planted secret%' AS planted_opened,
       customer_vault.export_subject('1005')::text LIKE '%$sealed_columns%' AS bookkeeping_shown;
RESET ROLE;
SELECT customer_vault.unregister_subject_table('ex.prefs');
DROP TABLE ex.prefs;

DROP TABLE doc1, doc2;
SET client_min_messages = warning;
DROP SCHEMA ex CASCADE;
RESET client_min_messages;
SELECT count(*) AS policies_left FROM customer_vault.retention_policies WHERE schema_name = 'ex';
SELECT customer_vault.release_legal_hold(id) FROM customer_vault.current_legal_holds WHERE reason = 'tax audit 2026';
SELECT count(*) AS left_registered FROM customer_vault.subject_tables;
DROP ROLE regress_ex_owner;
DROP ROLE regress_ex_admin;
DROP ROLE regress_ex_admin_reader;
DROP ROLE regress_ex_reader;
DROP ROLE regress_ex_writer;
DROP ROLE regress_ex_auditor;
