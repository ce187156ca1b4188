-- forget_subject review (part FORGET3, issue 12).  Each block failed before
-- its fix.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_fr_admin IN ROLE customer_vault_admin;
RESET client_min_messages;
CREATE SCHEMA regress_fr;
GRANT USAGE ON SCHEMA regress_fr TO regress_fr_admin;

-- 2. the subject in another spelling of its bigint column's value: the rows
-- of 42 are deleted, and the key sealed under '42' (what a protected
-- column's (id)::text and the consent policy use) is shredded too; the
-- receipt hashes the canonical spelling, so was_forgotten answers for each
CREATE TABLE regress_fr.customers (id bigint PRIMARY KEY, name text);
INSERT INTO regress_fr.customers VALUES (42, 'forty-two'), (43, 'forty-three');
SELECT customer_vault.register_subject_table('regress_fr.customers', 'id');
CREATE TABLE regress_fr.sealed (who text, v customer_vault.encrypted_text);
INSERT INTO regress_fr.sealed VALUES
  ('42', customer_vault.encrypt_for_subject('42', 'secret of 42')),
  ('43', customer_vault.encrypt_for_subject('43', 'secret of 43'));
GRANT SELECT, DELETE ON ALL TABLES IN SCHEMA regress_fr TO regress_fr_admin;
SELECT customer_vault._canonical_subject('042') AS c042, customer_vault._canonical_subject(' 42 ') AS c42,
       customer_vault._canonical_subject('abc') AS cabc, customer_vault._canonical_subject(NULL) AS cnull;
SET ROLE regress_fr_admin;
SELECT r -> 'tables' AS tables, r -> 'subject_key_shredded' AS shredded
  FROM customer_vault.forget_subject('042', 'request') r;
RESET ROLE;
SELECT who, customer_vault.decrypt(v) AS plain FROM regress_fr.sealed ORDER BY who;
SELECT id FROM regress_fr.customers ORDER BY id;
SELECT customer_vault.was_forgotten('42') AS w42, customer_vault.was_forgotten('042') AS w042,
       customer_vault.was_forgotten('+0042') AS wplus, customer_vault.was_forgotten('43') AS w43;
-- a second call: idempotent, nothing left to shred
SET ROLE regress_fr_admin;
SELECT r -> 'subject_key_shredded' AS shredded_again FROM customer_vault.forget_subject('42', 'again') r;
RESET ROLE;

-- uuid: the upper-case spelling erases the key of the lower-case one
CREATE TABLE regress_fr.accounts (id uuid PRIMARY KEY);
INSERT INTO regress_fr.accounts VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
SELECT customer_vault.register_subject_table('regress_fr.accounts', 'id');
GRANT SELECT, DELETE ON regress_fr.accounts TO regress_fr_admin;
INSERT INTO regress_fr.sealed VALUES
  ('uuid', customer_vault.encrypt_for_subject('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'secret of the uuid'));
SET ROLE regress_fr_admin;
SELECT r -> 'tables' -> 'regress_fr.accounts' AS accounts, r -> 'subject_key_shredded' AS shredded
  FROM customer_vault.forget_subject('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'request') r;
RESET ROLE;
SELECT who, customer_vault.decrypt(v) AS plain FROM regress_fr.sealed WHERE who = 'uuid';
SELECT customer_vault.was_forgotten('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11') AS w_uuid;
-- a subject no non-text subject column takes is hashed as given
SELECT customer_vault._canonical_subject('not-a-number') AS as_given;
SELECT customer_vault.verify_receipts() AS receipts_broken;

SELECT customer_vault.unregister_subject_table('regress_fr.customers');
SELECT customer_vault.unregister_subject_table('regress_fr.accounts');

-- 3. foreign-key values travel from parent to child under pinned output
-- settings: the caller's extra_float_digits = -15 (1.25 printed as 1) made
-- the erasure of 50 clear the event of 51 and miss its own
CREATE TABLE regress_fr.acct (k float8 PRIMARY KEY, customer_id bigint);
CREATE TABLE regress_fr.acct_ev (id int PRIMARY KEY, k float8 REFERENCES regress_fr.acct ON DELETE SET NULL, note text);
INSERT INTO regress_fr.acct VALUES (1.25, 50), (1.0, 51);
INSERT INTO regress_fr.acct_ev VALUES (1, 1.25, 'of 50'), (2, 1.0, 'of 51, must stay');
SELECT customer_vault.register_subject_table('regress_fr.acct', 'customer_id');
GRANT SELECT, DELETE ON regress_fr.acct, regress_fr.acct_ev TO regress_fr_admin;
SET extra_float_digits = -15;
SET ROLE regress_fr_admin;
SELECT r -> 'tables' AS tables FROM customer_vault.forget_subject('50', 'request') r;
RESET ROLE;
RESET extra_float_digits;
SELECT * FROM regress_fr.acct_ev ORDER BY id;
SELECT customer_vault.unregister_subject_table('regress_fr.acct');

-- 4. consents under another spelling of a numeric or char(n) subject: '60'
-- and '60.00' for forget_subject('60.0'), 'a1 ' for 'a1'; '600', '60.5'
-- and 'a1x' are other subjects and keep theirs.  (Each type registered
-- alone: with both, the char(4) column holds '60' and '60.0' as two
-- subjects, and only the spelling given is withdrawn; test forget_mixed.)
CREATE TABLE regress_fr.num (subj numeric, v text);
INSERT INTO regress_fr.num VALUES (60, 'n60');
CREATE TABLE regress_fr.chr (subj char(4), v text);
INSERT INTO regress_fr.chr VALUES ('a1', 'c a1');
SELECT customer_vault.register_subject_table('regress_fr.num', 'subj');
GRANT SELECT, DELETE ON regress_fr.num, regress_fr.chr TO regress_fr_admin;
SELECT customer_vault.define_purpose('regress_fr_news', 'consent');
SELECT count(customer_vault.grant_consent(s, 'regress_fr_news', '{"form": "web"}'))
  FROM unnest(ARRAY['60', '60.00', '600', '60.5', 'a1', 'a1 ', 'a1x']) s;
SET ROLE regress_fr_admin;
SELECT r -> 'tables' -> 'regress_fr.num' AS num, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('60.0', 'request') r;
RESET ROLE;
SELECT customer_vault.unregister_subject_table('regress_fr.num');
SELECT customer_vault.register_subject_table('regress_fr.chr', 'subj');
SET ROLE regress_fr_admin;
SELECT r -> 'tables' -> 'regress_fr.chr' AS chr, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('a1', 'request') r;
RESET ROLE;
SELECT '"' || subject || '"' AS subject, status FROM customer_vault.current_consents
 WHERE purpose = 'regress_fr_news' ORDER BY 1;
SELECT customer_vault.unregister_subject_table('regress_fr.chr');

DROP SCHEMA regress_fr CASCADE;
DROP ROLE regress_fr_admin;
