-- forget_subject (part FORGET2): the walk in C with its statements kept per
-- session.  Consents under another spelling of the subject are withdrawn; a
-- table that joins the reach through REFERENCES stops no erasure it holds no
-- rows for; the kept statements follow DDL, the registry, the retention
-- policies and the labels within one session.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_ff_owner;
CREATE ROLE regress_ff_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_ff_intruder;
RESET client_min_messages;
CREATE SCHEMA regress_ff AUTHORIZATION regress_ff_owner;
CREATE SCHEMA regress_ff_x AUTHORIZATION regress_ff_intruder;
GRANT USAGE ON SCHEMA regress_ff TO regress_ff_admin, regress_ff_intruder;
GRANT USAGE ON SCHEMA regress_ff_x TO regress_ff_admin;
SET ROLE regress_ff_owner;
CREATE TABLE regress_ff.customers (id bigint PRIMARY KEY, name text);
CREATE TABLE regress_ff.orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES regress_ff.customers, address text);
CREATE INDEX ON regress_ff.orders (customer_id);
SECURITY LABEL FOR customer_vault ON COLUMN regress_ff.customers.name IS 'pii';
SECURITY LABEL FOR customer_vault ON COLUMN regress_ff.orders.address IS 'pii:contact';
INSERT INTO regress_ff.customers SELECT g, 'name ' || g FROM generate_series(101, 109) g;
INSERT INTO regress_ff.orders SELECT 10 * g + o, g, 'street ' || g FROM generate_series(101, 109) g, generate_series(1, 2) o;
GRANT REFERENCES ON regress_ff.customers TO regress_ff_intruder;
RESET ROLE;
SELECT customer_vault.register_subject_table('regress_ff.customers', 'id');
GRANT SELECT, DELETE ON ALL TABLES IN SCHEMA regress_ff TO regress_ff_admin;

-- 1. consents are withdrawn under every spelling of the subject: as given,
-- in the subject column's type ('42' for '042' in a bigint column, what the
-- consent policy compares), zero-padded, or starting with a sign or blank;
-- other subjects keep theirs
SELECT customer_vault.define_purpose('regress_ff_news', 'consent');
SELECT count(customer_vault.grant_consent(s, 'regress_ff_news', '{"form": "web"}')) AS granted
  FROM unnest(ARRAY['101', '00101', '+101', ' 101', '1010', 'x101', '102', '000107', '107']) s;
SET ROLE regress_ff_admin;
SELECT (customer_vault.forget_subject('101', 'request') ->> 'consents_withdrawn')::int AS withdrawn_for_101;
-- the other way round: '0107' erases subject 107, whose consents are under '107' and '000107'
SELECT (customer_vault.forget_subject('0107', 'request') ->> 'consents_withdrawn')::int AS withdrawn_for_0107;
RESET ROLE;
SELECT subject, status FROM customer_vault.current_consents WHERE purpose = 'regress_ff_news' ORDER BY subject COLLATE "C";
-- each withdrawal names the receipt in the ledger
-- (the entry stores the keyed hash of the spelling since 0.5.0: matched against the spellings)
SELECT COALESCE(l.subject, sp.s) AS subject, l.evidence ? 'erasure_receipt' AS names_receipt
  FROM customer_vault.consent_ledger l
  LEFT JOIN (SELECT s, customer_vault._subject_hash(s) AS h
               FROM unnest(ARRAY[' 101', '+101', '00101', '101', '000107', '107']) s) sp ON sp.h = l.subject_hash
 WHERE l.purpose = 'regress_ff_news' AND l.action = 'withdraw' ORDER BY l.id;
-- a text subject column compares as text: 'FF-A1' is not 'ff-a1' there
SET ROLE regress_ff_owner;
CREATE TABLE regress_ff.people (handle text PRIMARY KEY);
INSERT INTO regress_ff.people VALUES ('ff-a1'), ('FF-A1');
RESET ROLE;
SELECT customer_vault.register_subject_table('regress_ff.people', 'handle');
GRANT SELECT, DELETE ON regress_ff.people TO regress_ff_admin;
SELECT count(customer_vault.grant_consent(s, 'regress_ff_news', '{"form": "web"}')) AS granted
  FROM unnest(ARRAY['ff-a1', 'FF-A1']) s;
SET ROLE regress_ff_admin;
SELECT r -> 'tables' -> 'regress_ff.people' AS people, (r ->> 'consents_withdrawn')::int AS withdrawn
  FROM customer_vault.forget_subject('ff-a1', 'request') r;
RESET ROLE;
SELECT subject, status FROM customer_vault.current_consents WHERE subject IN ('ff-a1', 'FF-A1') ORDER BY subject COLLATE "C";

-- 2. a table of another owner that references a registered table (REFERENCES
-- is all it takes) joins the reach; where it holds no rows of the subject the
-- erasure goes on without any privilege on it
SET ROLE regress_ff_intruder;
CREATE TABLE regress_ff_x.notes (customer_id bigint REFERENCES regress_ff.customers, note text);
INSERT INTO regress_ff_x.notes VALUES (103, 'a note on 103');
RESET ROLE;
SELECT count(*) AS notes_in_reach FROM customer_vault._subject_reach() WHERE relid = 'regress_ff_x.notes'::regclass;
SET ROLE regress_ff_admin;
SELECT customer_vault.forget_subject('102', 'request') -> 'tables' -> 'regress_ff_x.notes' AS notes_for_102;
-- where it holds rows of the subject, the erasure is refused and changes nothing
SELECT customer_vault.forget_subject('103', 'request');
RESET ROLE;
SELECT (SELECT count(*) FROM regress_ff.customers WHERE id = 103) AS customer_103,
       (SELECT count(*) FROM regress_ff.orders WHERE customer_id = 103) AS orders_of_103,
       (SELECT count(*) FROM regress_ff_x.notes) AS notes;
-- the compliance report names such a table (only the index finding stays once an admin may delete there)
SELECT severity, object, finding FROM customer_vault.compliance_report() WHERE object LIKE 'regress_ff_x%' ORDER BY severity;
GRANT DELETE ON regress_ff_x.notes TO regress_ff_admin;
SELECT count(*) AS findings_after_grant FROM customer_vault.compliance_report() WHERE object LIKE 'regress_ff_x%';
DROP TABLE regress_ff_x.notes;
SET ROLE regress_ff_admin;
SELECT customer_vault.forget_subject('103', 'request') -> 'tables' -> 'regress_ff.customers' AS customers_of_103;
RESET ROLE;

-- 3. the kept statements follow changes made in the same session
SET ROLE regress_ff_admin;
SELECT customer_vault.forget_subject('104', 'request') -> 'tables' AS tables_before;
RESET ROLE;
-- a new table reaching the registered one (its foreign key) is erased too
SET ROLE regress_ff_owner;
CREATE TABLE regress_ff.payments (order_id bigint REFERENCES regress_ff.orders ON DELETE SET NULL, amount numeric,
                                  card text, holder text, paid date NOT NULL DEFAULT '2026-01-01');
CREATE INDEX ON regress_ff.payments (order_id);
INSERT INTO regress_ff.payments SELECT id, customer_id, 'card of ' || customer_id, 'holder ' || customer_id
  FROM regress_ff.orders;
RESET ROLE;
GRANT SELECT, DELETE ON regress_ff.payments TO regress_ff_admin;
SET ROLE regress_ff_admin;
SELECT customer_vault.forget_subject('105', 'request') -> 'tables' -> 'regress_ff.payments' AS payments_of_105;
RESET ROLE;
SELECT count(*) AS payments_of_105_left FROM regress_ff.payments p JOIN regress_ff.orders o ON o.id = p.order_id WHERE o.customer_id = 105;
-- a retention policy that anonymizes (registry change), then a new label
SET ROLE regress_ff_owner;
SECURITY LABEL FOR customer_vault ON COLUMN regress_ff.payments.card IS 'pii:financial';
RESET ROLE;
SELECT customer_vault.set_retention('regress_ff.payments', 'paid', '10 years', 'anonymize');
GRANT UPDATE ON regress_ff.payments TO regress_ff_admin;
SET ROLE regress_ff_admin;
SELECT customer_vault.forget_subject('106', 'request') -> 'tables' -> 'regress_ff.payments' AS payments_of_106;
RESET ROLE;
-- kept, unlinked from the deleted orders (SET NULL), the card cleared
SELECT p.order_id, p.amount, p.card, p.holder FROM regress_ff.payments p WHERE p.amount = 106;
SET ROLE regress_ff_owner;
SECURITY LABEL FOR customer_vault ON COLUMN regress_ff.payments.holder IS 'pii';
RESET ROLE;
SET ROLE regress_ff_admin;
SELECT customer_vault.forget_subject('108', 'request') -> 'tables' -> 'regress_ff.payments' AS payments_of_108;
RESET ROLE;
-- the holder, labelled since, is cleared too
SELECT p.order_id, p.amount, p.card, p.holder FROM regress_ff.payments p WHERE p.amount = 108;
-- an unregistered table leaves the plan
SELECT customer_vault.unregister_subject_table('regress_ff.people');
SET ROLE regress_ff_admin;
SELECT customer_vault.forget_subject('109', 'request') -> 'tables' ? 'regress_ff.people' AS people_still_planned;
RESET ROLE;
SELECT customer_vault.verify_receipts() AS receipts_broken;

SELECT customer_vault.drop_retention('regress_ff.payments');
DROP SCHEMA regress_ff, regress_ff_x CASCADE;
DROP ROLE regress_ff_owner, regress_ff_admin, regress_ff_intruder;
