-- forget_subject (part FORGET4, issue 12): every consent whose subject, read
-- in a registered subject column's type, equals the subject is withdrawn,
-- whatever its spelling: exponents and fractions of a numeric subject ('6e1'
-- for 60), any case and hyphenation of a uuid; other subjects keep theirs.
-- Each block failed before (the spellings were enumerated, not compared).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_fs_admin IN ROLE customer_vault_admin;
RESET client_min_messages;
CREATE SCHEMA regress_fs;
GRANT USAGE ON SCHEMA regress_fs TO regress_fs_admin;
SELECT customer_vault.define_purpose('regress_fs_news', 'consent');

-- 1. numeric: '6e1', '6.0E1', '600e-1', '+6e1', '.6e2', '0.6e2', ' 60.000 '
-- are 60; '6e2', '61', '6', '6e0', '605e-1', '60.5' are not
CREATE TABLE regress_fs.num (subj numeric PRIMARY KEY, v text);
INSERT INTO regress_fs.num VALUES (60, 'sixty'), (600, 'six hundred');
SELECT customer_vault.register_subject_table('regress_fs.num', 'subj');
GRANT SELECT, DELETE ON regress_fs.num TO regress_fs_admin;
SELECT count(customer_vault.grant_consent(s, 'regress_fs_news', '{"form": "web"}')) AS granted
  FROM unnest(ARRAY['60', '6e1', '6.0E1', '600e-1', '+6e1', '.6e2', '0.6e2', ' 60.000 ', '6000000e-5',
                    '6e2', '61', '6', '6e0', '605e-1', '60.5', 'x60']) s;
SET ROLE regress_fs_admin;
SELECT r -> 'tables' -> 'regress_fs.num' AS num, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('60', 'request') r;
RESET ROLE;
SELECT '"' || subject || '"' AS subject, status FROM customer_vault.current_consents
 WHERE purpose = 'regress_fs_news' ORDER BY subject COLLATE "C";
-- the ledger names the receipt for each withdrawal, in subject order
SELECT '"' || l.subject || '"' AS subject, l.evidence ->> 'reason' AS reason, l.evidence ? 'erasure_receipt' AS names_receipt
  FROM customer_vault.consent_ledger l
 WHERE l.purpose = 'regress_fs_news' AND l.action = 'withdraw' ORDER BY l.id;
-- the other way round: forget_subject('6E2') erases 600 and its consent '6e2'
SET ROLE regress_fs_admin;
SELECT r -> 'tables' -> 'regress_fs.num' AS num, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('6E2', 'request') r;
RESET ROLE;
SELECT subject FROM customer_vault.current_consents WHERE purpose = 'regress_fs_news' AND status = 'granted'
 ORDER BY subject COLLATE "C";
SELECT customer_vault.unregister_subject_table('regress_fs.num');

-- 2. uuid: mixed case, without hyphens, in braces
CREATE TABLE regress_fs.acct (id uuid PRIMARY KEY);
INSERT INTO regress_fs.acct VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
SELECT customer_vault.register_subject_table('regress_fs.acct', 'id');
GRANT SELECT, DELETE ON regress_fs.acct TO regress_fs_admin;
SELECT count(customer_vault.grant_consent(s, 'regress_fs_news', '{"form": "web"}')) AS granted
  FROM unnest(ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'A0eebc99-9C0B-4ef8-BB6D-6bb9bd380A11',
                    '{a0eebc999c0b4ef8bb6d6bb9bd380a11}', 'a0eebc999c0b-4ef8-bb6d-6bb9-bd38-0a11',
                    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 'a0eebc99']) s;
SET ROLE regress_fs_admin;
SELECT r -> 'tables' -> 'regress_fs.acct' AS acct, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}', 'request') r;
RESET ROLE;
SELECT subject, status FROM customer_vault.current_consents
 WHERE purpose = 'regress_fs_news' AND (subject ILIKE 'a0%' OR subject LIKE '{%') ORDER BY subject COLLATE "C";
SELECT customer_vault.unregister_subject_table('regress_fs.acct');

-- 3. a hold placed under an exponent spelling stops the erasure of the value
CREATE TABLE regress_fs.num2 (subj numeric PRIMARY KEY);
INSERT INTO regress_fs.num2 VALUES (70);
SELECT customer_vault.register_subject_table('regress_fs.num2', 'subj');
GRANT SELECT, DELETE ON regress_fs.num2 TO regress_fs_admin;
SELECT customer_vault.place_legal_hold('7e1', 'litigation 7') AS hold \gset
SELECT set_config('regress_fs.hold', :'hold', false) IS NOT NULL AS hold_set;
SET ROLE regress_fs_admin;
DO $$
BEGIN
    PERFORM customer_vault.forget_subject('70', 'request');
    RAISE NOTICE 'not refused';
EXCEPTION WHEN object_in_use THEN
    RAISE NOTICE 'refused: %', replace(SQLERRM, current_setting('regress_fs.hold'), '<id>');
END
$$;
RESET ROLE;
SELECT count(*) AS rows_of_70 FROM regress_fs.num2;
SELECT customer_vault.release_legal_hold(:hold);
SELECT customer_vault.unregister_subject_table('regress_fs.num2');

SELECT customer_vault.verify_ledger() AS ledger_broken, customer_vault.verify_receipts() AS receipts_broken;
DROP SCHEMA regress_fs CASCADE;
DROP ROLE regress_fs_admin;
