-- may_process's fast path (part TEXTSUBJ, issue 15): a call site whose purpose
-- is a constant answers its rows after the first straight from the shared
-- version, while the cache, the snapshot served, the transaction and the
-- current role are those of the call that armed it.  Call sites that live
-- longer than one statement are where that can go wrong:
--  1. a cursor: the current role changes between FETCHes (same snapshot);
--  2. a plpgsql simple expression (its state lives for the transaction):
--     the transaction withdraws, grants, changes the role between calls;
--  3. every answer of the fast path equals consent_state read directly
--     (text subjects interned by prefix, integers, uuids and e-mails in the
--     hash table, end dates past and future, both overloads).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_fp_marketer;
CREATE ROLE regress_fp_other;
RESET client_min_messages;
SELECT customer_vault.define_purpose('fp_news');
SELECT customer_vault.allow_purpose('regress_fp_marketer', 'fp_news');
CREATE TABLE fp_subjects (id bigint PRIMARY KEY, subject text NOT NULL);
INSERT INTO fp_subjects
SELECT g, CASE WHEN g % 10 = 1 THEN md5(g::text)::uuid::text
               WHEN g % 10 = 3 THEN 'person' || g || '@example.com'
               WHEN g % 10 IN (6, 7) THEN g::text
               ELSE 'cust-' || g END
  FROM generate_series(1, 400) g;
GRANT SELECT ON fp_subjects TO regress_fp_marketer, regress_fp_other;
-- even ids consent, and half the uuids and e-mails (hash table); 1 in 6 with an
-- end date in the future, ids 10, 38, 52, .. one in the past
INSERT INTO customer_vault.consent_state (subject, purpose, granted, valid_until, granted_at, ledger_id)
SELECT subject, 'fp_news', true,
       CASE WHEN id % 6 = 0 OR id % 20 = 1 THEN now() + interval '1 year'
            WHEN id % 14 = 10 OR id % 20 = 3 THEN now() - interval '1 day' END,
       now() - interval '30 days', 0
  FROM fp_subjects WHERE id % 2 = 0 OR id % 20 IN (1, 3, 41, 43);
-- what may_process must answer, read directly
CREATE TABLE fp_truth AS
SELECT s.id, s.subject, EXISTS (SELECT 1 FROM customer_vault.consent_state c
                                 WHERE c.subject = s.subject AND c.purpose = 'fp_news' AND c.granted
                                   AND (c.valid_until IS NULL OR c.valid_until > now())) AS ok
  FROM fp_subjects s;
GRANT SELECT ON fp_truth TO regress_fp_marketer;
SELECT count(*) FILTER (WHERE ok) AS consenting, count(*) AS subjects FROM fp_truth;
SELECT customer_vault.may_process('cust-2', 'fp_news') AS cust2;
SELECT customer_vault._consent_cache_source('fp_news') ~ '^shared [0-9]+$' AS answered_by_shared_version;

-- ---------- 1. a cursor, the role changed between FETCHes ----------
BEGIN;
SET LOCAL ROLE regress_fp_marketer;
DECLARE fp_cur NO SCROLL CURSOR FOR
  SELECT id, customer_vault.may_process(subject, 'fp_news') AS by_text,
         customer_vault.may_process(id, 'fp_news') AS by_bigint
    FROM fp_subjects WHERE id IN (2, 4, 5, 6, 8, 10, 12, 14, 16, 18, 26, 36) ORDER BY id;
FETCH 4 FROM fp_cur;
-- a role without the purpose: the same call sites answer false
RESET ROLE;
SET LOCAL ROLE regress_fp_other;
FETCH 4 FROM fp_cur;
-- allowed again
RESET ROLE;
SET LOCAL ROLE regress_fp_marketer;
FETCH 4 FROM fp_cur;
COMMIT;

-- ---------- 2. a plpgsql simple expression across statements ----------
CREATE FUNCTION fp_check(s text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RETURN customer_vault.may_process(s, 'fp_news');
END $$;
CREATE FUNCTION fp_check_id(i bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RETURN customer_vault.may_process(i, 'fp_news');
END $$;
BEGIN;
SET LOCAL ROLE regress_fp_marketer;
SELECT fp_check('cust-2') AS cust2_before, fp_check('cust-4') AS cust4_before, fp_check_id(16) AS id16_before;
RESET ROLE;
-- this transaction withdraws cust-2 and 16 and grants cust-5: its next statements see that
SELECT customer_vault.withdraw_consent('cust-2', 'fp_news', '{"form": "fastpath"}') > 0 AS withdrawn;
SELECT customer_vault.withdraw_consent('16', 'fp_news', '{"form": "fastpath"}') > 0 AS withdrawn;
SELECT customer_vault.grant_consent('cust-5', 'fp_news', '{"form": "fastpath"}') > 0 AS granted;
SET LOCAL ROLE regress_fp_marketer;
SELECT fp_check('cust-2') AS cust2_after, fp_check('cust-4') AS cust4_after, fp_check('cust-5') AS cust5_after,
       fp_check_id(16) AS id16_after;
-- a role without the purpose, in the same transaction
RESET ROLE;
SET LOCAL ROLE regress_fp_other;
SELECT fp_check('cust-4') AS cust4_other_role, fp_check_id(26) AS id26_other_role;
ROLLBACK;
-- rolled back: as before, from a new shared version
BEGIN;
SET LOCAL ROLE regress_fp_marketer;
SELECT fp_check('cust-2') AS cust2_rolled_back, fp_check('cust-5') AS cust5_rolled_back,
       fp_check_id(16) AS id16_rolled_back;
COMMIT;
SELECT customer_vault._consent_cache_source('fp_news') ~ '^shared [0-9]+$' AS answered_by_shared_version;

-- ---------- 3. every answer equals consent_state ----------
SET ROLE regress_fp_marketer;
SELECT count(*) FILTER (WHERE customer_vault.may_process(s.subject, 'fp_news') IS DISTINCT FROM t.ok) AS text_mismatches,
       count(*) FILTER (WHERE s.subject ~ '^[0-9]+$'
                          AND customer_vault.may_process(s.id, 'fp_news') IS DISTINCT FROM t.ok) AS bigint_mismatches,
       count(*) FILTER (WHERE customer_vault.may_process(s.subject, 'fp_news')) AS visible
  FROM fp_subjects s JOIN fp_truth t USING (id);
-- near misses of the interned form are not interned subjects: no opt-in
SELECT string_agg(customer_vault.may_process(x, 'fp_news')::text, ',' ORDER BY o) AS near_misses
  FROM (VALUES (1, 'cust-4'), (2, 'cust-04'), (3, 'cust-'), (4, 'Cust-4'), (5, 'cust-4 '), (6, 'cust4'),
               (7, 'cust--4'), (8, 'cust-4x'), (9, 'cust-' || repeat('9', 30)), (10, '0'), (11, ''),
               (12, 'cust-6'), (13, '07'), (14, '7'), (15, '016'), (16, '16')) v(o, x);
RESET ROLE;

DROP FUNCTION fp_check(text);
DROP FUNCTION fp_check_id(bigint);
DROP TABLE fp_truth, fp_subjects;
DELETE FROM customer_vault.consent_state WHERE purpose = 'fp_news';
SELECT customer_vault.disallow_purpose('regress_fp_marketer', 'fp_news');
DROP ROLE regress_fp_marketer;
DROP ROLE regress_fp_other;
