-- Crypto-shredding is per subject, retention per row (issue 10): the shred
-- action destroys a subject's key only when none of their data, in this
-- table or any other with a retention policy naming a subject column, is
-- still inside its retention, and no hold stands; otherwise their expired
-- rows stay readable until their last data expires.  purge_preview_subjects
-- shows which subjects a shred would take and what keeps the others.
\set VERBOSITY terse
\set as_of '''2026-06-15 12:00:00+00'''
CREATE SCHEMA sr;
CREATE TABLE sr.accounts (id int PRIMARY KEY, customer_id text, last_seen timestamptz, address customer_vault.encrypted_text);
CREATE TABLE sr.orders (id int PRIMARY KEY, customer_id bigint, placed date);
INSERT INTO sr.accounts
SELECT g, s, t, customer_vault.encrypt_for_subject(s, 'street of ' || s)
  FROM (VALUES (1, '1', '2020-01-01+00'::timestamptz),   -- expired; an order inside retention
               (2, '2', '2020-01-01+00'),                -- expired; nothing else
               (3, '3', '2020-01-01+00'),                -- expired; an expired order
               (4, '4', '2020-01-01+00'),                -- expired; held
               (5, '5', '2020-01-01+00'),                -- expired; another account row inside retention
               (6, '5', '2026-06-01+00'),
               (7, '6', '2020-01-01+00')) v(g, s, t);    -- expired; an order without a date
INSERT INTO sr.orders VALUES (1, 1, '2026-01-01'), (2, 3, '2010-01-01'), (3, 6, NULL);
SELECT customer_vault.set_retention('sr.accounts', 'last_seen', '1 year', 'shred', 'customer_id');
SELECT customer_vault.set_retention('sr.orders', 'placed', '7 years', 'delete', 'customer_id');
SELECT customer_vault.place_legal_hold('00004', 'litigation') AS hold \gset

SELECT subject, expired_rows, shred, kept_because FROM customer_vault.purge_preview_subjects(:as_of) ORDER BY subject;
SELECT tbl, expired, held, to_purge FROM customer_vault.purge_preview(:as_of) ORDER BY tbl::text;
CALL customer_vault.purge(as_of => :as_of);
-- only subjects 2 and 3 lost their keys (4 is held: '00004' is 4 in sr.orders); every other value still decrypts
SELECT id, customer_id, customer_vault.decrypt(address) AS address FROM sr.accounts ORDER BY id;
SELECT id, customer_id FROM sr.orders ORDER BY id;
SELECT tbl, status, rows_purged FROM customer_vault.purge_log WHERE tbl LIKE 'sr.%' ORDER BY id;
-- nothing more to shred
SELECT count(*) FILTER (WHERE shred) AS still_to_shred FROM customer_vault.purge_preview_subjects(:as_of);
SELECT customer_vault.release_legal_hold(:hold, 'done');
-- released, subject 4 goes with the next purge
SELECT subject, shred, kept_because FROM customer_vault.purge_preview_subjects(:as_of) WHERE subject = '4';

SET client_min_messages = warning;
DELETE FROM customer_vault.retention_policies WHERE schema_name = 'sr';
DROP SCHEMA sr CASCADE;
RESET client_min_messages;
