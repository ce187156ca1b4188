-- forget_subject: the findings of review rev-forget (part FORGETREV, session
-- 23).  Each block failed on the code before it.
\set VERBOSITY terse
CREATE SCHEMA regress_fr;
-- a statement's outcome: 'ok', or its SQLSTATE and message (hold ids vary with the tests before)
CREATE FUNCTION regress_fr.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'legal hold [0-9]+', 'legal hold N');
END
$$;

-- 1. a subject column with a nondeterministic (case-insensitive) collation:
-- the walk compared in the column's collation, the holds byte for byte, so
-- forget_subject('ALICE@example.com') deleted the rows of alice@example.com
-- past her legal hold.  Refused at registration and by set_retention; a
-- collation changed afterwards refuses the erasure and the export.
CREATE COLLATION regress_fr.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE regress_fr.cust (email text COLLATE regress_fr.ci, at timestamptz DEFAULT now(), v text);
INSERT INTO regress_fr.cust(email, v) VALUES ('alice@example.com', 'held row of alice'), ('bob@example.com', 'row of bob');
SELECT customer_vault.register_subject_table('regress_fr.cust', 'email');
SELECT customer_vault.set_retention('regress_fr.cust', 'at', '1 year', 'delete', 'email');
SELECT count(*) AS registered FROM customer_vault.subject_tables WHERE relid::oid = 'regress_fr.cust'::regclass::oid;
SELECT count(*) AS policies FROM customer_vault.retention_policies WHERE relid::oid = 'regress_fr.cust'::regclass::oid;
-- registered while byte-wise; the collation changed afterwards
ALTER TABLE regress_fr.cust ALTER COLUMN email TYPE text COLLATE "C";
SELECT customer_vault.register_subject_table('regress_fr.cust', 'email');
SELECT customer_vault.place_legal_hold('alice@example.com', 'litigation: keep everything of alice') AS hold \gset
SELECT regress_fr.try($$SELECT customer_vault.forget_subject('alice@example.com', 'request')$$);
ALTER TABLE regress_fr.cust ALTER COLUMN email TYPE text COLLATE regress_fr.ci;
SELECT customer_vault.forget_subject('ALICE@example.com', 'request');
SELECT customer_vault.export_subject('bob@example.com') IS NOT NULL AS exported;
SELECT email, v FROM regress_fr.cust ORDER BY v;
-- a retention policy's subject column changed afterwards: the purge refuses too
ALTER TABLE regress_fr.cust ALTER COLUMN email TYPE text COLLATE "C";
SELECT customer_vault.set_retention('regress_fr.cust', 'at', '1 year', 'delete', 'email');
ALTER TABLE regress_fr.cust ALTER COLUMN email TYPE text COLLATE regress_fr.ci;
SELECT count(*) FROM customer_vault.purge_preview();
SELECT customer_vault.drop_retention('regress_fr.cust');
ALTER TABLE regress_fr.cust ALTER COLUMN email TYPE text COLLATE "C";
SELECT r -> 'tables' AS tables FROM customer_vault.forget_subject('bob@example.com', 'request') r;
SELECT email, v FROM regress_fr.cust ORDER BY v;
SELECT customer_vault.release_legal_hold(:hold) IS NOT NULL AS released;
SELECT customer_vault.unregister_subject_table('regress_fr.cust');
-- char(n): compared without trailing blanks in the column and in the hold check alike
CREATE TABLE regress_fr.c (subj char(5), v text);
INSERT INTO regress_fr.c VALUES ('abc', 'row of abc');
SELECT customer_vault.register_subject_table('regress_fr.c', 'subj');
SELECT customer_vault.place_legal_hold('abc', 'litigation') AS hold \gset
SELECT regress_fr.try($$SELECT customer_vault.forget_subject('abc  ', 'request')$$);
SELECT regress_fr.try($$SELECT customer_vault.forget_subject('abc', 'request')$$);
SELECT subj, v FROM regress_fr.c;
SELECT customer_vault.release_legal_hold(:hold) IS NOT NULL AS released;
ALTER TABLE regress_fr.c ALTER COLUMN subj TYPE char(5) COLLATE regress_fr.ci;
SELECT customer_vault.forget_subject('ABC', 'request');
SELECT subj, v FROM regress_fr.c;
SELECT customer_vault.unregister_subject_table('regress_fr.c');
SELECT customer_vault.register_subject_table('regress_fr.c', 'subj');

-- 2. a table kept by its retention action 'shred' next to a text subject
-- column: forget_subject('042') kept the bigint row 42 (sealed under '42')
-- and left the key of '42' alive (the text column holds '42' and '042' as two
-- subjects), yet the receipt said '42' was forgotten.  Now refused while that
-- key lives; forgetting '42' first, then '042', erases both.
CREATE TABLE regress_fr.acct (id bigint, at timestamptz DEFAULT now(), secret customer_vault.encrypted_text);
CREATE TABLE regress_fr.notes (who text, note text);
SELECT customer_vault.register_subject_table('regress_fr.acct', 'id');
SELECT customer_vault.register_subject_table('regress_fr.notes', 'who');
SELECT customer_vault.set_retention('regress_fr.acct', 'at', '10 years', 'shred', 'id');
INSERT INTO regress_fr.acct(id, secret) VALUES (42, customer_vault.encrypt_for_subject('42', 'iban of 42'));
INSERT INTO regress_fr.notes VALUES ('042', 'note under 042'), ('42', 'note under 42');
SELECT customer_vault.define_purpose('regress_fr_news', 'consent');
SELECT customer_vault.grant_consent('42', 'regress_fr_news', '{"form":"web"}') IS NOT NULL AS granted;
SELECT customer_vault.forget_subject('042', 'request');
SELECT id, customer_vault.decrypt(secret) FROM regress_fr.acct;
SELECT who, note FROM regress_fr.notes ORDER BY who;
SELECT r -> 'tables' AS tables, r -> 'subject_key_shredded' AS shredded, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('42', 'request') r;
SELECT r -> 'tables' AS tables, r -> 'subject_key_shredded' AS shredded, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('042', 'request') r;
SELECT who, note FROM regress_fr.notes ORDER BY who;
-- the kept row is no longer readable
SELECT id, customer_vault.decrypt(secret) FROM regress_fr.acct;
SELECT customer_vault.was_forgotten('42') AS forgotten_42, customer_vault.was_forgotten('042') AS forgotten_042,
       customer_vault.has_consent('42', 'regress_fr_news') AS consent_42;
SELECT customer_vault.drop_retention('regress_fr.acct');
SELECT customer_vault.unregister_subject_table('regress_fr.acct');
SELECT customer_vault.unregister_subject_table('regress_fr.notes');
-- a text subject column (of a retention policy only) next to a bigint one:
-- forget_subject('07043') deletes the bigint row 7043 but leaves the consent of
-- '7043' (another subject for the text column): the receipt names '07043' only
CREATE TABLE regress_fr.b (id bigint, v text);
CREATE TABLE regress_fr.weblog (visitor text, at timestamptz DEFAULT now());
SELECT customer_vault.register_subject_table('regress_fr.b', 'id');
SELECT customer_vault.set_retention('regress_fr.weblog', 'at', '30 days', 'delete', 'visitor');
INSERT INTO regress_fr.b VALUES (7043, 'b7043');
SELECT customer_vault.grant_consent('7043', 'regress_fr_news', '{"form":"web"}') IS NOT NULL AS granted;
SELECT r -> 'tables' AS tables, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('07043', 'request') r;
SELECT count(*) AS b_rows FROM regress_fr.b;
SELECT customer_vault.was_forgotten('7043') AS forgotten_7043, customer_vault.was_forgotten('07043') AS forgotten_07043,
       customer_vault.has_consent('7043', 'regress_fr_news') AS consent_7043;
SELECT customer_vault.drop_retention('regress_fr.weblog');
SELECT customer_vault.unregister_subject_table('regress_fr.weblog');
SELECT customer_vault.unregister_subject_table('regress_fr.b');

-- 3. a numeric subject column and a short spelling of a huge number: the
-- candidate ranges grew quadratically with the exponent (1e131071: tens of
-- GB, the OOM killer, a crash restart of the cluster).  Spellings are
-- bounded by the subject limit; the spellings within it are still found.
CREATE TABLE regress_fr.n (subj numeric, v text);
SELECT customer_vault.register_subject_table('regress_fr.n', 'subj');
INSERT INTO regress_fr.n VALUES (1e300, 'big'), (1e301, 'bigger');
SELECT count(customer_vault.grant_consent(s, 'regress_fr_news', '{"form":"web"}')) AS granted
  FROM unnest(ARRAY['1e300', '10e299', '1.0e300', '0.1e301', '1e301']) s;
SELECT r -> 'tables' AS tables, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('1e131071', 'request') r;
SELECT r -> 'tables' AS tables, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('1e300', 'request') r;
SELECT v FROM regress_fr.n;
SELECT s, customer_vault.has_consent(s, 'regress_fr_news') AS consent
  FROM unnest(ARRAY['1e300', '10e299', '1.0e300', '0.1e301', '1e301']) s;
SELECT customer_vault.was_forgotten('1e300') AS forgotten, customer_vault.was_forgotten('10e299') AS forgotten_too;
SELECT customer_vault.unregister_subject_table('regress_fr.n');

-- 4. a hold placed under another spelling of the subject ('+60' for 60): its
-- plain identifier stayed in evidence_subjects and the hold log after
-- forget_subject('60'); another subject's ('61') stays.
CREATE TABLE regress_fr.h (id bigint, at timestamptz DEFAULT now(), v text);
SELECT customer_vault.register_subject_table('regress_fr.h', 'id');
SELECT customer_vault.set_retention('regress_fr.h', 'at', '1 year', 'delete', 'id');
INSERT INTO regress_fr.h(id, v) VALUES (60, 'h60'), (61, 'h61');
SELECT customer_vault.place_legal_hold('+60', 'litigation') AS h \gset
SELECT customer_vault.release_legal_hold(:h) IS NOT NULL AS released;
SELECT customer_vault.place_legal_hold('61', 'other litigation') AS h61 \gset
SELECT customer_vault.release_legal_hold(:h61) IS NOT NULL AS released;
SELECT subject FROM customer_vault.evidence_subjects WHERE subject IN ('+60', '61') ORDER BY 1;
SELECT r -> 'tables' AS tables FROM customer_vault.forget_subject('60', 'request') r;
SELECT subject FROM customer_vault.evidence_subjects WHERE subject IN ('+60', '61') ORDER BY 1;
SELECT id = :h AS hold_60, subject FROM customer_vault.legal_holds WHERE id IN (:h, :h61) ORDER BY id;
SELECT customer_vault.drop_retention('regress_fr.h');
SELECT customer_vault.unregister_subject_table('regress_fr.h');

SELECT customer_vault.verify_ledger() AS ledger_broken, customer_vault.verify_receipts() AS receipts_broken,
       customer_vault.verify_legal_holds() AS holds_broken;
SET client_min_messages = warning;
DROP SCHEMA regress_fr CASCADE;
RESET client_min_messages;
