-- The hash chains (legal holds, purge log, erasure receipts, access log) do
-- not depend on the session's standard_conforming_strings, which a database
-- owner can set for every session: entries appended with it off verify with
-- it on and the other way round (the first entry's hash once used '\x').
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE SCHEMA regress_cs;
CREATE TABLE regress_cs.visits (id bigint PRIMARY KEY, customer_id bigint NOT NULL, at timestamptz NOT NULL);
INSERT INTO regress_cs.visits SELECT g, 900 + g % 3, now() - interval '400 days' FROM generate_series(1, 6) g;
SELECT customer_vault.set_retention('regress_cs.visits', 'at', interval '1 year', 'delete', 'customer_id') IS NOT NULL AS retention_set;
-- each chain gets entries with the setting off, then on
SET standard_conforming_strings = off;
SELECT customer_vault.place_legal_hold('901', 'case cs-1') > 0 AS hold_placed_off;
SELECT (customer_vault.forget_subject('902', 'request cs') ->> 'subject_key_shredded') IS NOT NULL AS receipt_off;
CALL customer_vault.purge();
SELECT customer_vault.verify_legal_holds() AS holds_off, customer_vault.verify_receipts() AS receipts_off,
       customer_vault.verify_purge_log() AS purge_log_off;
RESET standard_conforming_strings;
SELECT customer_vault.place_legal_hold('900', 'case cs-2') > 0 AS hold_placed_on;
SELECT (customer_vault.forget_subject('905', 'request cs') ->> 'subject_key_shredded') IS NOT NULL AS receipt_on;
SELECT customer_vault.verify_legal_holds() AS holds_on, customer_vault.verify_receipts() AS receipts_on,
       customer_vault.verify_purge_log() AS purge_log_on;
SET standard_conforming_strings = off;
SELECT customer_vault.verify_legal_holds() AS holds_off_again, customer_vault.verify_receipts() AS receipts_off_again,
       customer_vault.verify_purge_log() AS purge_log_off_again;
RESET standard_conforming_strings;
-- the rows the purge kept: subject 901 is held, 902 was erased, 900 held later
-- (subjects 9xx: other tests read subjects 1 and 2 from the access log)
SELECT customer_id, count(*) FROM regress_cs.visits GROUP BY 1 ORDER BY 1;
SELECT count(customer_vault.release_legal_hold(h.id, 'case closed')) AS released
  FROM customer_vault.legal_holds h WHERE h.subject IN ('900', '901') AND h.active;
SELECT customer_vault.drop_retention('regress_cs.visits') AS dropped;
DROP SCHEMA regress_cs CASCADE;
