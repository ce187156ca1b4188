-- forget_subject (part FORGET4, issue 12): every consent whose subject, read
-- in a registered subject column's type, equals the subject is withdrawn,
-- whatever its spelling: exponents and fractions of a numeric subject ('6e1'
-- for 60), any case and hyphenation of a uuid; other subjects keep theirs.
-- Each block failed before (the spellings were enumerated, not compared).
-- (The receipts' consents_withdrawn counts are not shown: other tests may
-- leave consents of the same subjects under purposes of their own.)
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_fsp_admin IN ROLE customer_vault_admin;
RESET client_min_messages;
CREATE SCHEMA regress_fsp;
GRANT USAGE ON SCHEMA regress_fsp TO regress_fsp_admin;
SELECT customer_vault.define_purpose('regress_fsp_news', 'consent');

-- 1. numeric: '7.3e1', '7.30E1', '730e-1', '+7.3e1', '.73e2', '0.73e2', ' 73.000 ',
-- '7300000e-5' are 73; '7.3e2', '74', '7', '7e1', '735e-1', '73.5' are not
CREATE TABLE regress_fsp.num (subj numeric PRIMARY KEY, v text);
INSERT INTO regress_fsp.num VALUES (73, 'seventy-three'), (730, 'seven hundred thirty');
SELECT customer_vault.register_subject_table('regress_fsp.num', 'subj');
GRANT SELECT, DELETE ON regress_fsp.num TO regress_fsp_admin;
SELECT count(customer_vault.grant_consent(s, 'regress_fsp_news', '{"form": "web"}')) AS granted
  FROM unnest(ARRAY['73', '7.3e1', '7.30E1', '730e-1', '+7.3e1', '.73e2', '0.73e2', ' 73.000 ', '7300000e-5',
                    '7.3e2', '74', '7', '7e1', '735e-1', '73.5', 'x73']) s;
SET ROLE regress_fsp_admin;
SELECT r -> 'tables' -> 'regress_fsp.num' AS num
  FROM customer_vault.forget_subject('73', 'request') r;
RESET ROLE;
SELECT '"' || subject || '"' AS subject, status FROM customer_vault.current_consents
 WHERE purpose = 'regress_fsp_news' ORDER BY subject COLLATE "C";
-- the ledger names the receipt for each withdrawal, in subject order
SELECT '"' || l.subject || '"' AS subject, l.evidence ->> 'reason' AS reason, l.evidence ? 'erasure_receipt' AS names_receipt
  FROM customer_vault.consent_ledger l
 WHERE l.purpose = 'regress_fsp_news' AND l.action = 'withdraw' ORDER BY l.id;
-- the other way round: forget_subject('7.3E2') erases 730 and its consent '7.3e2'
SET ROLE regress_fsp_admin;
SELECT r -> 'tables' -> 'regress_fsp.num' AS num
  FROM customer_vault.forget_subject('7.3E2', 'request') r;
RESET ROLE;
SELECT subject FROM customer_vault.current_consents WHERE purpose = 'regress_fsp_news' AND status = 'granted'
 ORDER BY subject COLLATE "C";
SELECT customer_vault.unregister_subject_table('regress_fsp.num');

-- 2. uuid: mixed case, without hyphens, in braces
CREATE TABLE regress_fsp.acct (id uuid PRIMARY KEY);
INSERT INTO regress_fsp.acct VALUES ('b1ffcd88-1d2a-4c3b-9e4f-5a6b7c8d9e0f');
SELECT customer_vault.register_subject_table('regress_fsp.acct', 'id');
GRANT SELECT, DELETE ON regress_fsp.acct TO regress_fsp_admin;
SELECT count(customer_vault.grant_consent(s, 'regress_fsp_news', '{"form": "web"}')) AS granted
  FROM unnest(ARRAY['b1ffcd88-1d2a-4c3b-9e4f-5a6b7c8d9e0f', 'B1ffcd88-1D2A-4c3b-9E4F-5a6b7c8d9E0f',
                    '{b1ffcd881d2a4c3b9e4f5a6b7c8d9e0f}', 'b1ffcd881d2a-4c3b-9e4f-5a6b-7c8d-9e0f',
                    'b1ffcd88-1d2a-4c3b-9e4f-5a6b7c8d9e0e', 'b1ffcd88']) s;
SET ROLE regress_fsp_admin;
SELECT r -> 'tables' -> 'regress_fsp.acct' AS acct
  FROM customer_vault.forget_subject('{B1FFCD88-1D2A-4C3B-9E4F-5A6B7C8D9E0F}', 'request') r;
RESET ROLE;
SELECT subject, status FROM customer_vault.current_consents
 WHERE purpose = 'regress_fsp_news' AND (subject ILIKE 'b1%' OR subject LIKE '{%') ORDER BY subject COLLATE "C";
SELECT customer_vault.unregister_subject_table('regress_fsp.acct');

-- 3. a hold placed under an exponent spelling stops the erasure of the value
CREATE TABLE regress_fsp.num2 (subj numeric PRIMARY KEY);
INSERT INTO regress_fsp.num2 VALUES (71);
SELECT customer_vault.register_subject_table('regress_fsp.num2', 'subj');
GRANT SELECT, DELETE ON regress_fsp.num2 TO regress_fsp_admin;
SELECT customer_vault.place_legal_hold('7.1e1', 'litigation 71') AS hold \gset
SELECT set_config('regress_fsp.hold', :'hold', false) IS NOT NULL AS hold_set;
SET ROLE regress_fsp_admin;
DO $$
BEGIN
    PERFORM customer_vault.forget_subject('71', 'request');
    RAISE NOTICE 'not refused';
EXCEPTION WHEN object_in_use THEN
    RAISE NOTICE 'refused: %', replace(SQLERRM, current_setting('regress_fsp.hold'), '<id>');
END
$$;
RESET ROLE;
SELECT count(*) AS rows_of_71 FROM regress_fsp.num2;
SELECT customer_vault.release_legal_hold(:hold);
SELECT customer_vault.unregister_subject_table('regress_fsp.num2');

SELECT customer_vault.verify_ledger() AS ledger_broken, customer_vault.verify_receipts() AS receipts_broken;
DROP SCHEMA regress_fsp CASCADE;
DROP ROLE regress_fsp_admin;
