-- Erasure (GDPR art. 17): forget_subject on the sample schema of the issue
-- (customers; orders -> customers; order_lines -> orders without a subject
-- column; tickets with a pii:special note; invoices kept 10 years, PII
-- anonymized).  No row of the subject stays; values encrypted for them in a
-- copy taken before no longer decrypt; other subjects are untouched; a legal
-- hold blocks it; the receipt verifies and a tampered one is found; a second
-- call changes nothing; the table owner's trigger runs as the owner.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_fs_owner;
CREATE ROLE regress_fs_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_fs_auditor IN ROLE customer_vault_auditor;
CREATE ROLE regress_fs_writer IN ROLE customer_vault_writer;
CREATE ROLE regress_fs_reader IN ROLE customer_vault_reader;
RESET client_min_messages;
-- only the caller may write here, never the owner: a trap's target
CREATE TABLE regress_fs_victim (what text, who name);
GRANT INSERT ON regress_fs_victim TO regress_fs_admin;
CREATE SCHEMA regress_fs AUTHORIZATION regress_fs_owner;
GRANT USAGE ON SCHEMA regress_fs TO regress_fs_admin, regress_fs_auditor;

SET ROLE regress_fs_owner;
CREATE TABLE regress_fs.customers (id bigint PRIMARY KEY, name text, email text,
                                   secret customer_vault.encrypted_text);
CREATE TABLE regress_fs.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES regress_fs.customers,
                                address text, placed date NOT NULL DEFAULT '2026-01-01');
CREATE INDEX ON regress_fs.orders (customer_id);
CREATE TABLE regress_fs.order_lines (order_id bigint NOT NULL REFERENCES regress_fs.orders, line int, item text,
                                     PRIMARY KEY (order_id, line));
-- a child of order_lines through a composite key (two foreign-key levels below orders)
CREATE TABLE regress_fs.shipments (order_id bigint, line int, carrier text,
                                   FOREIGN KEY (order_id, line) REFERENCES regress_fs.order_lines);
CREATE INDEX ON regress_fs.shipments (order_id, line);
-- loyalty points: kept, their values sealed under the subject's key (retention action shred)
CREATE TABLE regress_fs.points (customer_id bigint NOT NULL, earned date NOT NULL, memo customer_vault.encrypted_text);
CREATE INDEX ON regress_fs.points (customer_id);
CREATE TABLE regress_fs.tickets (id serial PRIMARY KEY, customer_id bigint NOT NULL, note text);
CREATE INDEX ON regress_fs.tickets (customer_id);
-- invoices are kept (a legal duty), their PII anonymized; first with a
-- foreign key that would cascade the deletion of the customer into them
CREATE TABLE regress_fs.invoices (id serial PRIMARY KEY,
                                  customer_id bigint REFERENCES regress_fs.customers ON DELETE CASCADE,
                                  issued date NOT NULL, billing_name text, amount numeric);
CREATE INDEX ON regress_fs.invoices (customer_id);
SECURITY LABEL FOR customer_vault ON COLUMN regress_fs.customers.name IS 'pii';
SECURITY LABEL FOR customer_vault ON COLUMN regress_fs.customers.email IS 'pii:contact';
SECURITY LABEL FOR customer_vault ON COLUMN regress_fs.orders.address IS 'pii:contact';
SECURITY LABEL FOR customer_vault ON COLUMN regress_fs.tickets.note IS 'pii:special';
SECURITY LABEL FOR customer_vault ON COLUMN regress_fs.invoices.billing_name IS 'pii';
-- a table with PII no registered table reaches
CREATE TABLE regress_fs.stray (who text);
SECURITY LABEL FOR customer_vault ON COLUMN regress_fs.stray.who IS 'pii';
-- the owner's trap: runs whenever a row of orders is deleted
CREATE TABLE regress_fs.trap_log (who name, escalated boolean, wrote boolean);
CREATE FUNCTION regress_fs.trap() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    esc boolean := false;
    wrote boolean := false;
BEGIN
    BEGIN
        EXECUTE 'ALTER ROLE regress_fs_owner SUPERUSER';
        esc := true;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        INSERT INTO public.regress_fs_victim VALUES ('orders', current_user);
        wrote := true;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    INSERT INTO regress_fs.trap_log VALUES (current_user, esc, wrote);
    RETURN OLD;
END
$$;
CREATE TRIGGER trap BEFORE DELETE ON regress_fs.orders FOR EACH ROW EXECUTE FUNCTION regress_fs.trap();
RESET ROLE;

-- three customers, each with orders, lines, tickets and invoices
INSERT INTO regress_fs.customers
SELECT g, 'name ' || g, 'c' || g || '@example.com', customer_vault.encrypt_for_subject(g::text, 'secret of ' || g)
  FROM generate_series(1, 3) g;
INSERT INTO regress_fs.orders SELECT c * 10 + o, c, 'street ' || c || '/' || o FROM generate_series(1, 3) c, generate_series(1, 2) o;
INSERT INTO regress_fs.order_lines SELECT o.id, l, 'item ' || l FROM regress_fs.orders o, generate_series(1, 3) l;
INSERT INTO regress_fs.shipments SELECT order_id, line, 'carrier ' || line FROM regress_fs.order_lines WHERE line < 3;
INSERT INTO regress_fs.points SELECT c, '2026-01-01', customer_vault.encrypt_for_subject(c::text, 'points of ' || c)
  FROM generate_series(1, 3) c;
INSERT INTO regress_fs.tickets (customer_id, note) SELECT c, 'diagnosis of ' || c FROM generate_series(1, 3) c;
INSERT INTO regress_fs.invoices (customer_id, issued, billing_name, amount)
SELECT c, '2026-01-01', 'billed ' || c, c * 100 FROM generate_series(1, 3) c;
-- a copy taken before the erasure
CREATE TABLE regress_fs_copy AS SELECT id, secret FROM regress_fs.customers;

SELECT customer_vault.register_subject_table('regress_fs.customers', 'id');
SELECT customer_vault.register_subject_table('regress_fs.tickets', 'customer_id');
SELECT customer_vault.set_retention('regress_fs.invoices', 'issued', '10 years', 'anonymize', 'customer_id');
SELECT customer_vault.set_retention('regress_fs.points', 'earned', '3 years', 'shred', 'customer_id');
SELECT customer_vault.define_purpose('regress_fs_news', 'consent');
SELECT customer_vault.grant_consent('1', 'regress_fs_news', '{"form": "signup"}') > 0 AS consent_1,
       customer_vault.grant_consent('2', 'regress_fs_news', '{"form": "signup"}') > 0 AS consent_2;
-- the plan of the erasure (src/forget.c keeps its statements prepared): the
-- tables of _subject_reach(), what happens to each, children changed first
SELECT p.relid::regclass AS tbl, p.depth, p.treatment,
       rank() OVER (ORDER BY p.change_pos) AS change_order, p.keys_sql IS NOT NULL AS gives_keys,
       pg_catalog.cardinality(p.param_src) / 2 AS key_params, p.danger
  FROM customer_vault._erasure_plan() p WHERE p.relid::regclass::text LIKE 'regress_fs.%'
 ORDER BY p.change_pos;
-- the statement of a table two foreign-key levels down, through a composite key
SELECT act_sql FROM customer_vault._erasure_plan() WHERE relid = 'regress_fs.shipments'::regclass;
GRANT SELECT, DELETE ON ALL TABLES IN SCHEMA regress_fs TO regress_fs_admin;
GRANT UPDATE ON regress_fs.invoices TO regress_fs_admin;
REVOKE DELETE ON regress_fs.points, regress_fs.invoices FROM regress_fs_admin;

-- what the other subjects hold, to compare after
CREATE TABLE regress_fs_before AS
SELECT 'customers' AS t, md5(string_agg(format('%s', (c.id, c.name, c.email, customer_vault.decrypt(c.secret))), ',' ORDER BY c.id)) AS h, count(*) AS n
  FROM regress_fs.customers c WHERE c.id <> 1
UNION ALL SELECT 'orders', md5(string_agg(format('%s', o), ',' ORDER BY o.id)), count(*) FROM regress_fs.orders o WHERE o.customer_id <> 1
UNION ALL SELECT 'order_lines', md5(string_agg(format('%s', l), ',' ORDER BY l.order_id, l.line)), count(*)
  FROM regress_fs.order_lines l WHERE l.order_id / 10 <> 1
UNION ALL SELECT 'shipments', md5(string_agg(format('%s', h), ',' ORDER BY h.order_id, h.line)), count(*)
  FROM regress_fs.shipments h WHERE h.order_id / 10 <> 1
UNION ALL SELECT 'points', md5(string_agg(format('%s', (p.customer_id, customer_vault.decrypt(p.memo))), ',' ORDER BY p.customer_id)), count(*)
  FROM regress_fs.points p WHERE p.customer_id <> 1
UNION ALL SELECT 'tickets', md5(string_agg(format('%s', t), ',' ORDER BY t.id)), count(*) FROM regress_fs.tickets t WHERE t.customer_id <> 1
UNION ALL SELECT 'invoices', md5(string_agg(format('%s', i), ',' ORDER BY i.id)), count(*) FROM regress_fs.invoices i WHERE i.customer_id <> 1;

-- not for writers, readers, auditors or roles without a vault role
SET ROLE regress_fs_writer;
SELECT customer_vault.forget_subject('1', 'test');
SET ROLE regress_fs_reader;
SELECT customer_vault.forget_subject('1', 'test');
SET ROLE regress_fs_auditor;
SELECT customer_vault.forget_subject('1', 'test');
SET ROLE regress_fs_owner;
SELECT customer_vault.forget_subject('1', 'test');
RESET ROLE;

-- bad input
SET ROLE regress_fs_admin;
SELECT customer_vault.forget_subject(NULL, 'request');
SELECT customer_vault.forget_subject('', 'request');
SELECT customer_vault.forget_subject(repeat('x', 256), 'request');
SELECT customer_vault.forget_subject('1', NULL);
SELECT customer_vault.forget_subject('1', '   ');
RESET ROLE;

-- a legal hold blocks it, also written another way ('001' is 1 in a bigint
-- column); the error names the hold, never another subject
SELECT customer_vault.place_legal_hold('001', 'litigation 2026-041') AS hold \gset
CREATE FUNCTION pg_temp.try_forget(s text, hold bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    msg text;
    det text;
BEGIN
    PERFORM customer_vault.forget_subject(s, 'request of the customer');
    RETURN 'erased';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN st || ': ' || regexp_replace(msg || ' / ' || det, 'hold ' || COALESCE(hold::text, '-') || '\M', 'hold <id>', 'g');
END
$$;
SET ROLE regress_fs_admin;
SELECT pg_temp.try_forget('1', :hold) AS refused;
RESET ROLE;
SELECT count(*) AS customers_1_still_there FROM regress_fs.customers WHERE id = 1;
SELECT customer_vault.release_legal_hold(:hold, 'case closed');

-- the kept invoices would be deleted by ON DELETE CASCADE: refused, nothing changes
SET ROLE regress_fs_admin;
SELECT pg_temp.try_forget('1', NULL) AS refused;
RESET ROLE;
SELECT count(*) AS customers_1_still_there FROM regress_fs.customers WHERE id = 1;
ALTER TABLE regress_fs.invoices DROP CONSTRAINT invoices_customer_id_fkey,
    ADD FOREIGN KEY (customer_id) REFERENCES regress_fs.customers ON DELETE SET NULL;

-- an admin without the DELETE privilege on a table is refused, nothing changes
REVOKE DELETE ON regress_fs.tickets FROM regress_fs_admin;
SET ROLE regress_fs_admin;
SELECT customer_vault.forget_subject('1', 'request of the customer');
RESET ROLE;
GRANT DELETE ON regress_fs.tickets TO regress_fs_admin;
SELECT count(*) AS customers_1_still_there FROM regress_fs.customers WHERE id = 1;
SELECT count(*) AS receipts_so_far FROM customer_vault.erasure_receipts;

-- the erasure
SET ROLE regress_fs_admin;
SELECT customer_vault.forget_subject('1', 'request of the customer, ticket 4711') AS receipt \gset
RESET ROLE;
SELECT jsonb_pretty((:'receipt'::jsonb) - 'at' - 'hash' - 'subject_hash' - 'receipt_id' - 'consents_withdrawn') AS receipt;
SELECT ((:'receipt'::jsonb)->>'consents_withdrawn')::int >= 1 AS consents_withdrawn;
SELECT (:'receipt'::jsonb)->>'receipt_id' ~ '^[0-9]+$' AS has_id, length((:'receipt'::jsonb)->>'hash') AS hash_hex_len,
       ((:'receipt'::jsonb)->>'at')::timestamptz <= now() + interval '1 minute' AS has_time;
SELECT (:'receipt'::jsonb)->>'subject_hash' = encode(customer_vault._subject_hash('1'), 'hex') AS hash_of_subject;
-- nothing of subject 1 is left in any registered or reached table
SELECT (SELECT count(*) FROM regress_fs.customers WHERE id = 1) AS customers,
       (SELECT count(*) FROM regress_fs.orders WHERE customer_id = 1) AS orders,
       (SELECT count(*) FROM regress_fs.order_lines WHERE order_id / 10 = 1) AS order_lines,
       (SELECT count(*) FROM regress_fs.shipments WHERE order_id / 10 = 1) AS shipments,
       (SELECT count(*) FROM regress_fs.tickets WHERE customer_id = 1) AS tickets;
-- the loyalty points are kept, unreadable (the subject's key is shredded)
SELECT customer_id, customer_vault.decrypt(memo) FROM regress_fs.points WHERE customer_id = 1;
-- the invoice is kept, its PII gone, unlinked by its foreign key (SET NULL)
SELECT customer_id, billing_name, amount FROM regress_fs.invoices WHERE amount = 100;
-- values encrypted for them in the copy taken before no longer decrypt
SELECT id, customer_vault.decrypt(secret) FROM regress_fs_copy ORDER BY id;
-- the other subjects are untouched
SELECT b.t, b.n AS rows_before, a.n AS rows_after, a.h = b.h AS same_content
  FROM regress_fs_before b
  JOIN (SELECT 'customers' AS t, md5(string_agg(format('%s', (c.id, c.name, c.email, customer_vault.decrypt(c.secret))), ',' ORDER BY c.id)) AS h, count(*) AS n
          FROM regress_fs.customers c WHERE c.id <> 1
        UNION ALL SELECT 'orders', md5(string_agg(format('%s', o), ',' ORDER BY o.id)), count(*) FROM regress_fs.orders o WHERE o.customer_id <> 1
        UNION ALL SELECT 'order_lines', md5(string_agg(format('%s', l), ',' ORDER BY l.order_id, l.line)), count(*)
          FROM regress_fs.order_lines l WHERE l.order_id / 10 <> 1
        UNION ALL SELECT 'shipments', md5(string_agg(format('%s', h), ',' ORDER BY h.order_id, h.line)), count(*)
          FROM regress_fs.shipments h WHERE h.order_id / 10 <> 1
        UNION ALL SELECT 'points', md5(string_agg(format('%s', (p.customer_id, customer_vault.decrypt(p.memo))), ',' ORDER BY p.customer_id)), count(*)
          FROM regress_fs.points p WHERE p.customer_id <> 1
        UNION ALL SELECT 'tickets', md5(string_agg(format('%s', t), ',' ORDER BY t.id)), count(*) FROM regress_fs.tickets t WHERE t.customer_id <> 1
        UNION ALL SELECT 'invoices', md5(string_agg(format('%s', i), ',' ORDER BY i.id)), count(*) FROM regress_fs.invoices i WHERE i.customer_id <> 1) a
    ON a.t = b.t ORDER BY b.t;
-- the consent is withdrawn, the ledger entry carries the reason and the receipt
SELECT subject, purpose, status FROM customer_vault.current_consents WHERE purpose = 'regress_fs_news' ORDER BY subject;
SELECT action, evidence->>'reason' AS reason, (evidence->>'erasure_receipt')::bigint = (:'receipt'::jsonb->>'receipt_id')::bigint AS names_receipt
  FROM customer_vault.consent_ledger
 WHERE (subject = '1' OR subject_hash = customer_vault._subject_hash('1')) AND purpose = 'regress_fs_news' ORDER BY id;
-- the owner's trigger ran as the owner and gained nothing
SELECT who, escalated, wrote, count(*) FROM regress_fs.trap_log GROUP BY 1, 2, 3;
SELECT count(*) AS victim_rows FROM regress_fs_victim;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_fs_owner';

-- the receipt: stored with the subject only as its hash, chained, verifiable
SELECT id = (:'receipt'::jsonb->>'receipt_id')::bigint AS same_id, session_role, acting_role,
       role_id = 'regress_fs_admin'::regrole::oid AS role_id_ok, reason,
       subject_hash = customer_vault._subject_hash('1') AS hashed
  FROM customer_vault.erasure_receipts ORDER BY id DESC LIMIT 1;
SELECT customer_vault.verify_receipts() AS broken;
SET ROLE regress_fs_auditor;
SELECT customer_vault.verify_receipts() AS broken_for_auditor,
       customer_vault.was_forgotten('1') AS forgotten_1,
       customer_vault.was_forgotten('2') AS forgotten_2,
       customer_vault.was_forgotten('never-seen') AS forgotten_unknown;
SELECT count(*) AS receipts_visible FROM customer_vault.erasure_receipts;
RESET ROLE;

-- a second call changes nothing and says so
SET ROLE regress_fs_admin;
SELECT jsonb_pretty((customer_vault.forget_subject('1', 'repeated request')) - 'at' - 'hash' - 'subject_hash' - 'receipt_id') AS second;
-- an unknown subject: a receipt with zero counts
SELECT (customer_vault.forget_subject('no-such-customer', 'request'))->'tables' AS unknown;
RESET ROLE;
SELECT count(*) AS receipts, count(DISTINCT subject_hash) AS subjects FROM customer_vault.erasure_receipts;
SET ROLE regress_fs_admin;
RESET ROLE;
SELECT customer_vault.verify_receipts() AS broken;

-- receipts are append-only, also for a superuser and under replica role
UPDATE customer_vault.erasure_receipts SET reason = 'nothing happened';
DELETE FROM customer_vault.erasure_receipts;
TRUNCATE customer_vault.erasure_receipts;
SET session_replication_role = replica;
UPDATE customer_vault.erasure_receipts SET reason = 'nothing happened';
RESET session_replication_role;
-- a tampered receipt is found (trigger disabled by a superuser), then put back
SELECT min(id) AS first_receipt FROM customer_vault.erasure_receipts \gset
SELECT reason AS orig_reason FROM customer_vault.erasure_receipts WHERE id = :first_receipt \gset
ALTER TABLE customer_vault.erasure_receipts DISABLE TRIGGER erasure_receipts_no_update_delete;
UPDATE customer_vault.erasure_receipts SET reason = 'nothing happened' WHERE id = :first_receipt;
SELECT customer_vault.verify_receipts() = :first_receipt AS tamper_found;
UPDATE customer_vault.erasure_receipts SET reason = :'orig_reason' WHERE id = :first_receipt;
-- a receipt removed at the end is found too
CREATE TEMP TABLE saved AS SELECT * FROM customer_vault.erasure_receipts WHERE id = (SELECT max(id) FROM customer_vault.erasure_receipts);
DELETE FROM customer_vault.erasure_receipts WHERE id = (SELECT id FROM saved);
SELECT customer_vault.verify_receipts() = (SELECT id FROM saved) AS removal_found;
INSERT INTO customer_vault.erasure_receipts SELECT * FROM saved;
ALTER TABLE customer_vault.erasure_receipts ENABLE ALWAYS TRIGGER erasure_receipts_no_update_delete;
SELECT customer_vault.verify_receipts() AS broken_after_restore;

-- at scale the subject's rows are found through the indexes: EXPLAIN of
-- every statement the erasure runs (the keys read from a parent and the
-- DELETE), as custom and as generic plans (the kept SPI plans may become
-- either), shows no sequential scan
CREATE TABLE regress_fs.big_customers (id bigint PRIMARY KEY, name text);
CREATE TABLE regress_fs.big_orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES regress_fs.big_customers);
CREATE INDEX ON regress_fs.big_orders (customer_id);
CREATE TABLE regress_fs.big_lines (order_id bigint REFERENCES regress_fs.big_orders, line int, PRIMARY KEY (order_id, line));
INSERT INTO regress_fs.big_customers SELECT g, 'n' || g FROM generate_series(1, 20000) g;
INSERT INTO regress_fs.big_orders SELECT g, 1 + (g * 7919) % 20000 FROM generate_series(1, 20000) g;
INSERT INTO regress_fs.big_lines SELECT 1 + g % 20000, g FROM generate_series(1, 40000) g;
ANALYZE regress_fs.big_customers, regress_fs.big_orders, regress_fs.big_lines;
SELECT customer_vault.register_subject_table('regress_fs.big_customers', 'id');
-- the plan lines of one table's statements (keys and change), prepared with
-- its parameters, under a plan_cache_mode
CREATE FUNCTION pg_temp.erasure_explain(tbl regclass, mode text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    p record;
    q text;
    line text;
    types text;
    args text;
BEGIN
    SELECT * INTO STRICT p FROM customer_vault._erasure_plan() x WHERE x.relid = tbl;
    IF p.depth = 0 THEN
        types := 'text';
        args := '''7''';
    ELSE
        SELECT string_agg('text[]', ', '), string_agg('''{1,2,3}''', ', ') INTO types, args
          FROM generate_series(1, cardinality(p.param_src) / 2);
    END IF;
    PERFORM set_config('plan_cache_mode', mode, true);
    FOREACH q IN ARRAY ARRAY[p.keys_sql, p.act_sql] LOOP
        CONTINUE WHEN q IS NULL;
        EXECUTE format('PREPARE regress_fs_stmt(%s) AS %s', types, q);
        FOR line IN EXECUTE format('EXPLAIN (COSTS OFF) EXECUTE regress_fs_stmt(%s)', args) LOOP
            RETURN NEXT line;
        END LOOP;
        DEALLOCATE regress_fs_stmt;
    END LOOP;
END
$$;
SELECT t AS tbl, m AS plan_cache_mode, count(*) FILTER (WHERE l ~ 'Index') > 0 AS uses_index,
       count(*) FILTER (WHERE l ~ 'Seq Scan') AS seq_scans
  FROM unnest(ARRAY['regress_fs.big_customers', 'regress_fs.big_orders', 'regress_fs.big_lines']::regclass[]) t,
       unnest(ARRAY['force_custom_plan', 'force_generic_plan']) m,
       LATERAL pg_temp.erasure_explain(t, m) l
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT jsonb_pretty(customer_vault.forget_subject('7', 'index check')->'tables'->'regress_fs.big_lines') AS big_lines;
-- the same check sees it when an index is missing
DROP INDEX regress_fs.big_orders_customer_id_idx;
SELECT t AS tbl, count(*) FILTER (WHERE l ~ 'Seq Scan on big_orders') AS seq_scans_of_big_orders
  FROM unnest(ARRAY['regress_fs.big_orders']::regclass[]) t, LATERAL pg_temp.erasure_explain(t, 'force_generic_plan') l
 GROUP BY 1;
SELECT (customer_vault.forget_subject('8', 'index check')->'tables'->'regress_fs.big_orders'->>'deleted')::int AS orders_deleted;

DROP TABLE regress_fs_copy, regress_fs_before, regress_fs_victim;
SELECT customer_vault.drop_retention('regress_fs.invoices'), customer_vault.drop_retention('regress_fs.points');
DROP SCHEMA regress_fs CASCADE;
DROP ROLE regress_fs_owner, regress_fs_admin, regress_fs_auditor, regress_fs_writer, regress_fs_reader;

-- in a database where no hold was ever placed, the lock an erasure takes on
-- the (new) head of the hold log leaves that log intact
\set orig_db :DBNAME
CREATE DATABASE regress_fs_fresh;
\c regress_fs_fresh
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
SELECT (customer_vault.forget_subject('x', 'request'))->'tables' AS tables;
SELECT customer_vault.verify_legal_holds() AS holds_broken, customer_vault.verify_receipts() AS receipts_broken,
       (SELECT count(*) FROM customer_vault.legal_hold_events) AS hold_entries;
\c :orig_db
DROP DATABASE regress_fs_fresh;
