-- customer_vault quick start: the story `make demo` tells on a sample table.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
\echo '== 1. Install (pgcrypto comes along)'
CREATE EXTENSION customer_vault CASCADE;
SELECT extname, extversion FROM pg_extension WHERE extname IN ('customer_vault', 'pgcrypto') ORDER BY 1;

\echo '== 2. A data key, wrapped under the root key from customer_vault.root_key_file'
SELECT customer_vault.create_key('customer_pii', 'contact data of customers') AS key_id;
SELECT id, name, version, state, fingerprint FROM customer_vault.keys;

\echo '== 3. An existing customers table with plaintext PII'
CREATE TABLE customers (id bigint PRIMARY KEY, name text, email text, phone text,
                        created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO customers (id, name, email, phone) VALUES
  (1, 'Ada Lovelace',  'ada@example.com',   '+44 20 7946 0001'),
  (2, 'Alan Turing',   'alan@example.com',  '+44 20 7946 0002'),
  (3, 'Grace Hopper',  'grace@example.com', '+1 202 555 0003');
SECURITY LABEL FOR customer_vault ON COLUMN customers.email IS 'pii:contact';
SECURITY LABEL FOR customer_vault ON COLUMN customers.phone IS 'pii:contact';

\echo '== 4. Protect two columns in place: one rewrite, then every write is sealed'
SELECT customer_vault.protect_column('customers', 'email', 'customer_pii', 'id', 'email_bidx');
SELECT customer_vault.protect_column('customers', 'phone', 'customer_pii', 'id');
\echo 'What the table (and pg_dump, replicas, backups) now holds:'
SELECT id, name, left(email, 40) || '...' AS email_stored, left(phone, 30) || '...' AS phone_stored FROM customers ORDER BY id;

\echo '== 5. The application is unchanged: a plain INSERT stores ciphertext'
INSERT INTO customers (id, name, email, phone) VALUES (4, 'Katherine Johnson', 'katherine@example.com', '+1 757 555 0004');
SELECT id, customer_vault.is_sealed(email) AS email_sealed FROM customers WHERE id = 4;

\echo '== 6. Roles allowed to decrypt read through customers_decrypted'
SELECT id, name, email, phone FROM customers_decrypted ORDER BY id;

\echo '== 7. Equality search through the blind index (a btree, no decryption)'
SELECT id, name FROM customers WHERE email_bidx = customer_vault.column_blind_index('customers', 'email', 'grace@example.com');

\echo '== 8. A moved value does not decrypt: ciphertext is bound to its column and row'
\set VERBOSITY terse
\set ON_ERROR_STOP 0
UPDATE customers SET email = (SELECT email FROM customers WHERE id = 1) WHERE id = 2;
\set ON_ERROR_STOP 1

\echo '== 9. Key rotation online: new version, then re-encrypt in committed batches'
SELECT customer_vault.rotate_key('customer_pii') AS new_version;
CALL customer_vault.reencrypt('customers', 'email', 1000);
CALL customer_vault.reencrypt('customers', 'phone', 1000);
SELECT customer_vault.key_of(email::customer_vault.encrypted_text) AS key, count(*) FROM customers GROUP BY 1;

\echo '== 10. Per-customer keys and crypto-shredding'
CREATE TABLE support_notes (id serial PRIMARY KEY, customer_id bigint, note customer_vault.encrypted_text);
INSERT INTO support_notes (customer_id, note) VALUES
  (1, customer_vault.encrypt_for_subject('1', 'Prefers e-mail contact', '1')),
  (2, customer_vault.encrypt_for_subject('2', 'Asked about invoice 2024-17', '1'));
SELECT customer_id, customer_vault.decrypt(note, '1') AS note FROM support_notes ORDER BY id;
SELECT customer_vault.shred_subject('2') AS shredded_customer_2;
SELECT customer_id, customer_vault.decrypt(note, '1') AS note FROM support_notes ORDER BY id;

\echo '== 11. Purposes with a lawful basis; explicit consent with evidence'
SELECT customer_vault.define_purpose('newsletter', 'consent', 'monthly product news');
SELECT customer_vault.define_purpose('billing', 'contract', 'invoices for orders');
SELECT customer_vault.grant_consent('1', 'newsletter', '{"form": "signup-v3", "channel": "web"}') AS ledger_entry;
SELECT customer_vault.grant_consent('3', 'newsletter', '{"form": "app settings", "channel": "ios"}') AS ledger_entry;
SELECT subject, purpose, lawful_basis, status FROM customer_vault.current_consents ORDER BY 1;

\echo '== 12. A consent policy in row-level security: the marketing role sees only who opted in'
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_marketing') THEN CREATE ROLE demo_marketing; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_billing') THEN CREATE ROLE demo_billing; END IF;
END $$;
SELECT customer_vault.allow_purpose('demo_marketing', 'newsletter');
SELECT customer_vault.allow_purpose('demo_billing', 'billing');
SELECT customer_vault.enable_consent_policy('customers', 'id');
GRANT SELECT ON customers TO demo_marketing, demo_billing;
SET ROLE demo_marketing;
SET customer_vault.purpose = 'newsletter';
SELECT id, name FROM customers ORDER BY id;
RESET ROLE;
SET ROLE demo_billing;
SET customer_vault.purpose = 'billing';
\echo 'billing rests on the contract: every customer, no consent needed'
SELECT id, name FROM customers ORDER BY id;
SET customer_vault.purpose = 'newsletter';
\echo 'billing staff may not act for the newsletter: nothing'
SELECT count(*) AS rows_visible FROM customers;
RESET ROLE;
RESET customer_vault.purpose;

\echo '== 13. Withdrawal: honoured by the next statement; the ledger is hash-chained'
SELECT customer_vault.withdraw_consent('3', 'newsletter', '{"channel": "unsubscribe link"}') AS ledger_entry;
SET ROLE demo_marketing;
SET customer_vault.purpose = 'newsletter';
SELECT id, name FROM customers ORDER BY id;
RESET ROLE;
RESET customer_vault.purpose;
SELECT id, subject, purpose, action, evidence, encode(hash, 'hex') AS hash FROM customer_vault.consent_ledger ORDER BY id;
SELECT customer_vault.verify_ledger() AS first_broken_entry_or_null;

\echo '== 14. Retention with a legal hold: preview, then a batched purge'
CREATE TABLE orders (id serial PRIMARY KEY, customer_id bigint, placed_at timestamptz, total numeric);
INSERT INTO orders (customer_id, placed_at, total) VALUES
  (1, now() - interval '8 years', 120.00), (2, now() - interval '9 years', 75.50),
  (3, now() - interval '2 years', 42.00), (4, now() - interval '1 day', 99.90);
SELECT customer_vault.set_retention('orders', 'placed_at', '7 years', 'delete', 'customer_id');
SELECT customer_vault.place_legal_hold('2', 'tax audit 2026') AS hold_id;
SELECT * FROM customer_vault.purge_preview();
CALL customer_vault.purge();
SELECT id, customer_id, placed_at::date, total FROM orders ORDER BY id;
SELECT tbl, action, rows_purged, rows_held, dry_run FROM customer_vault.purge_log;

\echo '== 15a. The map of personal data: subject tables, foreign keys, the inventory'
CREATE TABLE order_lines (order_id int REFERENCES orders (id), line int, item text, PRIMARY KEY (order_id, line));
INSERT INTO order_lines SELECT id, 1, 'item of order ' || id FROM orders;
SELECT customer_vault.register_subject_table('customers', 'id');
\echo 'orders was registered by set_retention; order_lines reaches customers through orders'
SELECT relid, depth, path FROM customer_vault._subject_reach() ORDER BY depth, relid::text;
SELECT table_name, column_name, label, protection, retention_keep, consent_policy, reaches_subject
  FROM customer_vault.inventory WHERE schema_name = 'public' ORDER BY 1, 2;

\echo '== 15b. Access request (GDPR art. 15/20): everything held on customer 2, recorded'
SELECT jsonb_pretty(customer_vault.export_subject('2') - 'generated_at' - 'subject_hash') AS export;
SELECT role_id::regrole AS exported_by, tables, rows, withheld, length(subject_hash) AS hash_bytes
  FROM customer_vault.subject_exports ORDER BY id;

\echo '== 16. Erasure request (GDPR art. 17): refused while a legal hold stands, then done, with a receipt'
\set ON_ERROR_STOP 0
SELECT customer_vault.forget_subject('2', 'erasure request of 2026-03-01');
\set ON_ERROR_STOP 1
SELECT jsonb_pretty(customer_vault.forget_subject('4', 'erasure request of 2026-03-01, ticket 4711')) AS receipt;
SELECT id, name FROM customers ORDER BY id;
SELECT id, customer_id, placed_at::date FROM orders ORDER BY id;
SELECT customer_vault.was_forgotten('4') AS customer_4_erased, customer_vault.was_forgotten('1') AS customer_1_erased,
       customer_vault.verify_receipts() AS first_broken_receipt_or_null;
