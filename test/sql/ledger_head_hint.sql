-- The chain head of the consent ledger found by the version this backend
-- wrote last (part TEXTSUBJ, issue 15: grant_consent latency).  A transaction
-- that appends many entries leaves as many versions of the head row, with the
-- live one on the table's last page, so consent_ledger_head stays that long
-- and the first append of every later transaction scanned all of it.  Now
-- that first append locks the head version this backend wrote by its ctid,
-- and scans only when that is no longer the head: another append moved it
-- (here withdraw_consent, in SQL), it was rolled back.  The chain stays
-- intact either way, and an extra head row (a restore leaves one) is still
-- removed by the next scan.  pg_stat_get_xact_numscans counts the scans of
-- the head table not yet reported (a lookup by ctid is none): its growth
-- within one transaction is what that transaction scanned.
\set VERBOSITY terse
SELECT customer_vault.define_purpose('hint_news');
-- a bulk transaction: 300 versions of the head row
BEGIN;
SELECT count(customer_vault.grant_consent('hint-' || g, 'hint_news', '{"form": "hint"}')) AS granted
  FROM generate_series(1, 300) g;
COMMIT;
SELECT pg_relation_size('customer_vault.consent_ledger_head') > 8192 AS head_table_grew;
-- the next transaction's first append: by the hint, no scan
BEGIN;
SELECT pg_stat_get_xact_numscans('customer_vault.consent_ledger_head'::regclass) AS scans0 \gset
SELECT customer_vault.grant_consent('hint-x', 'hint_news', '{"form": "hint"}') > 0 AS granted;
SELECT customer_vault.grant_consent('hint-x2', 'hint_news', '{"form": "hint"}') > 0 AS granted;
SELECT pg_stat_get_xact_numscans('customer_vault.consent_ledger_head'::regclass) - :scans0 AS head_scans_by_hint;
COMMIT;
-- and again (the hint follows every append of this backend)
BEGIN;
SELECT pg_stat_get_xact_numscans('customer_vault.consent_ledger_head'::regclass) AS scans0 \gset
SELECT customer_vault.grant_consent('hint-x3', 'hint_news', '{"form": "hint"}') > 0 AS granted;
SELECT pg_stat_get_xact_numscans('customer_vault.consent_ledger_head'::regclass) - :scans0 AS head_scans_by_hint;
COMMIT;
-- another append moved the head: the hint's version is dead, the scan finds the head
SELECT customer_vault.withdraw_consent('hint-1', 'hint_news', '{"form": "hint"}') > 0 AS withdrawn;
BEGIN;
SELECT pg_stat_get_xact_numscans('customer_vault.consent_ledger_head'::regclass) AS scans0 \gset
SELECT customer_vault.grant_consent('hint-y', 'hint_news', '{"form": "hint"}') > 0 AS granted;
SELECT pg_stat_get_xact_numscans('customer_vault.consent_ledger_head'::regclass) - :scans0 AS head_scans_after_other_append;
COMMIT;
-- a rolled-back append: its version was never committed, the scan finds the head
BEGIN;
SELECT customer_vault.grant_consent('hint-z', 'hint_news', '{"form": "hint"}') > 0 AS granted;
ROLLBACK;
BEGIN;
SELECT pg_stat_get_xact_numscans('customer_vault.consent_ledger_head'::regclass) AS scans0 \gset
SELECT customer_vault.grant_consent('hint-z', 'hint_news', '{"form": "hint"}') > 0 AS granted;
SELECT pg_stat_get_xact_numscans('customer_vault.consent_ledger_head'::regclass) - :scans0 AS head_scans_after_rollback;
COMMIT;
-- a rolled-back subtransaction after the hint was taken: the head is still the hinted version
BEGIN;
SAVEPOINT s;
SELECT customer_vault.grant_consent('hint-s', 'hint_news', '{"form": "hint"}') > 0 AS granted;
ROLLBACK TO SAVEPOINT s;
SELECT customer_vault.grant_consent('hint-s', 'hint_news', '{"form": "hint"}') > 0 AS granted;
COMMIT;
-- an extra head row, as a restore leaves (CREATE EXTENSION's, last_id 0): the hint
-- keeps the chain on the head this backend wrote; the next scan removes the extra
INSERT INTO customer_vault.consent_ledger_head (last_id, last_hash) VALUES (0, NULL);
SELECT customer_vault.grant_consent('hint-w', 'hint_news', '{"form": "hint"}') > 0 AS granted;
SELECT count(*) AS head_rows FROM customer_vault.consent_ledger_head;
SELECT customer_vault.withdraw_consent('hint-2', 'hint_news', '{"form": "hint"}') > 0 AS withdrawn;
SELECT count(*) AS head_rows FROM customer_vault.consent_ledger_head;
-- many transactions of one append each (a procedure committing after each):
-- the lookup by ctid prunes the head's page as a scan would, so the table
-- stays a page long (without the pruning every version stayed, about 75
-- bytes each: 600 of them over five pages)
CREATE PROCEDURE hint_many() LANGUAGE plpgsql AS $$
BEGIN
    FOR g IN 1..600 LOOP
        PERFORM customer_vault.grant_consent('many-' || g, 'hint_news', '{"form": "hint"}');
        COMMIT;
    END LOOP;
END $$;
VACUUM FULL customer_vault.consent_ledger_head;
CALL hint_many();
SELECT pg_relation_size('customer_vault.consent_ledger_head') <= 16384 AS head_table_stays_small;
DROP PROCEDURE hint_many();
-- the chain: intact, ids without a gap, the head at the last entry
SELECT customer_vault.verify_ledger() IS NULL AS ledger_intact;
SELECT count(*) = max(id) - min(id) + 1 AS ids_contiguous FROM customer_vault.consent_ledger;
SELECT h.last_id = (SELECT max(id) FROM customer_vault.consent_ledger) AS head_at_last_entry,
       h.last_hash = (SELECT l.hash FROM customer_vault.consent_ledger l ORDER BY l.id DESC LIMIT 1) AS head_hash
  FROM customer_vault.consent_ledger_head h;
SELECT count(*) FILTER (WHERE granted) AS live, count(*) AS states
  FROM customer_vault.consent_state WHERE purpose = 'hint_news';
