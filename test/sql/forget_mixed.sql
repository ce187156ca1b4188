-- forget_subject (part FORGETFIX, issue 12 review): one rule for subjects
-- when registered tables mix subject column types.  Rows: every registered
-- table's rows whose subject column equals the subject as that column's type
-- compares (integer and numeric columns compare numerically: '6e1' and
-- '60.0' are 60 in a bigint column too, '1.5' is no bigint).  Consents and
-- subject keys: those of every spelling that every registered type takes as
-- the same subject, never another subject's (next to a text column, 'bob'
-- and 'bob ' are two subjects, though a char(n) column cannot tell them
-- apart).  Also: a foreign-table inheritance child is listed in not_reached;
-- a FORCE ROW LEVEL SECURITY child is erased as its owner; a hold whose
-- evidence_subjects row names another subject stays on its own subject.
-- Each block failed on the old code.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_fm_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_fm_owner;
RESET client_min_messages;
CREATE SCHEMA regress_fm;
GRANT USAGE ON SCHEMA regress_fm TO regress_fm_admin, regress_fm_owner;
SELECT customer_vault.define_purpose('regress_fm_news', 'consent');

-- the keys of these spellings, live or not (data_keys as the extension's owner)
CREATE FUNCTION regress_fm.live_keys(s text[]) RETURNS text
    LANGUAGE sql AS $$
    SELECT coalesce(string_agg('"' || k.subject || '"', ' ' ORDER BY k.subject COLLATE "C"), '-')
      FROM customer_vault.data_keys k WHERE k.subject = ANY (s) AND k.state <> 'destroyed' $$;

-- 1. bigint + numeric: '6e1', '60.0' and '60' name one subject (60) in both
CREATE TABLE regress_fm.b (id bigint, v text);
CREATE TABLE regress_fm.n (subj numeric, v text);
INSERT INTO regress_fm.b VALUES (60, 'b60'), (600, 'b600'), (61, 'b61'), (1, 'b1'), (2, 'b2');
INSERT INTO regress_fm.n VALUES (60, 'n60'), (60.00, 'n60.00'), (600, 'n600'), (1.0, 'n1.0'), (1.5, 'n1.5'), (2, 'n2');
SELECT customer_vault.register_subject_table('regress_fm.b', 'id');
SELECT customer_vault.register_subject_table('regress_fm.n', 'subj');
GRANT SELECT, DELETE ON regress_fm.b, regress_fm.n TO regress_fm_admin;
SELECT count(customer_vault.grant_consent(s, 'regress_fm_news', '{"form": "web"}')) AS granted
  FROM unnest(ARRAY['60', '60.0', '6e1', '060', '600', '61', '1', '1.0', '1.5', '1.50', '2']) s;
SELECT count(customer_vault.encrypt_for_subject(s, 'secret')) AS sealed
  FROM unnest(ARRAY['60', '60.00', '600', '1', '1.0', '1.5', '2']) s;
SET ROLE regress_fm_admin;
SELECT r -> 'tables' AS tables, r -> 'subject_key_shredded' AS shredded, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('6e1', 'request') r;
RESET ROLE;
SELECT * FROM regress_fm.b ORDER BY id;
SELECT * FROM regress_fm.n ORDER BY subj, v;
SELECT regress_fm.live_keys(ARRAY['60', '60.00', '600']) AS live_keys;
SELECT customer_vault.was_forgotten('60') AS forgotten_60, customer_vault.was_forgotten('60.000') AS forgotten_60_000,
       customer_vault.was_forgotten('600') AS forgotten_600;
-- '1.0': the bigint 1 and the numeric 1.0, not 1.5 nor 2
SET ROLE regress_fm_admin;
SELECT r -> 'tables' AS tables, r -> 'subject_key_shredded' AS shredded, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('1.0', 'request') r;
-- '1.5': no bigint row (1.5 is no bigint, not 2), the numeric 1.5
SELECT r -> 'tables' AS tables, r -> 'subject_key_shredded' AS shredded, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('1.5', 'request') r;
RESET ROLE;
SELECT * FROM regress_fm.b ORDER BY id;
SELECT * FROM regress_fm.n ORDER BY subj, v;
SELECT regress_fm.live_keys(ARRAY['1', '1.0', '1.5', '2']) AS live_keys;
SELECT '"' || subject || '"' AS subject, status FROM customer_vault.current_consents
 WHERE purpose = 'regress_fm_news' ORDER BY subject COLLATE "C";
SELECT customer_vault.unregister_subject_table('regress_fm.b');
SELECT customer_vault.unregister_subject_table('regress_fm.n');

-- 2. char(n) + text: 'bob ' and 'bob' are two subjects of the text table;
-- the char(5) table's 'bob' equals both, and its rows go with either, but
-- the consents and keys are only those of the spelling the text table
-- shares
CREATE TABLE regress_fm.c (subj char(5), v text);
CREATE TABLE regress_fm.t (subj text, v text);
INSERT INTO regress_fm.c VALUES ('bob', 'c bob'), ('al', 'c al'), ('eve', 'c eve');
INSERT INTO regress_fm.t VALUES ('bob', 't bob'), ('bob ', 't bob_'), ('al ', 't al_'), ('al', 't al'), ('eve', 't eve');
SELECT customer_vault.register_subject_table('regress_fm.c', 'subj');
SELECT customer_vault.register_subject_table('regress_fm.t', 'subj');
GRANT SELECT, DELETE ON regress_fm.c, regress_fm.t TO regress_fm_admin;
SELECT count(customer_vault.grant_consent(s, 'regress_fm_news', '{"form": "web"}')) AS granted
  FROM unnest(ARRAY['bob', 'bob ', 'al', 'al ']) s;
SELECT count(customer_vault.encrypt_for_subject(s, 'secret')) AS sealed
  FROM unnest(ARRAY['bob', 'bob ', 'al', 'al ']) s;
SET ROLE regress_fm_admin;
SELECT r -> 'tables' AS tables, r -> 'subject_key_shredded' AS shredded, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('bob ', 'request') r;
SELECT r -> 'tables' AS tables, r -> 'subject_key_shredded' AS shredded, r -> 'consents_withdrawn' AS withdrawn
  FROM customer_vault.forget_subject('al', 'request') r;
RESET ROLE;
SELECT '"' || subj || '"' AS subj, v FROM regress_fm.c ORDER BY v;
SELECT '"' || subj || '"' AS subj, v FROM regress_fm.t ORDER BY v;
SELECT regress_fm.live_keys(ARRAY['bob', 'bob ', 'al', 'al ']) AS live_keys;
SELECT '"' || subject || '"' AS subject, status FROM customer_vault.current_consents
 WHERE purpose = 'regress_fm_news' AND (subject LIKE 'al%' OR subject LIKE 'bob%') ORDER BY subject COLLATE "C";

-- 5. a hold names its subject through evidence_subjects; a row there naming
-- another subject (only the extension's owner can write one) is ignored with
-- a warning: the hold still stands on the subject it was placed for, and
-- does not move to the other one
SELECT customer_vault.place_legal_hold('eve', 'litigation eve') AS hold \gset
SELECT set_config('regress_fm.hold', :'hold', false) IS NOT NULL AS hold_set;
UPDATE customer_vault.evidence_subjects SET subject = 'mallory'
 WHERE subject_hash = customer_vault._subject_hash('eve');
SET ROLE regress_fm_admin;
DO $$
BEGIN
    PERFORM customer_vault.forget_subject('eve', 'request');
    RAISE NOTICE 'eve: not refused';
EXCEPTION WHEN object_in_use THEN
    RAISE NOTICE 'eve: refused: %', replace(SQLERRM, current_setting('regress_fm.hold'), '<id>');
END
$$;
DO $$
BEGIN
    PERFORM customer_vault.forget_subject('mallory', 'request');
    RAISE NOTICE 'mallory: not refused';
EXCEPTION WHEN object_in_use THEN
    RAISE NOTICE 'mallory: refused: %', replace(SQLERRM, current_setting('regress_fm.hold'), '<id>');
END
$$;
RESET ROLE;
SELECT count(*) AS rows_of_eve FROM regress_fm.t WHERE subj = 'eve';
UPDATE customer_vault.evidence_subjects SET subject = 'eve'
 WHERE subject_hash = customer_vault._subject_hash('eve');
SELECT customer_vault.release_legal_hold(:hold) IS NOT NULL AS released;
SELECT customer_vault.unregister_subject_table('regress_fm.c');
SELECT customer_vault.unregister_subject_table('regress_fm.t');

-- 3 and 4. inheritance children of a registered table: a foreign table (its
-- rows cannot be deleted here: named in not_reached, no error) and a child
-- whose owner forces row-level security on himself with a policy hiding the
-- rows (erased as its owner all the same)
CREATE FOREIGN DATA WRAPPER regress_fm_fdw;
CREATE SERVER regress_fm_srv FOREIGN DATA WRAPPER regress_fm_fdw;
CREATE TABLE regress_fm.p (subj int, v text);
CREATE FOREIGN TABLE regress_fm.pf () INHERITS (regress_fm.p) SERVER regress_fm_srv;
CREATE TABLE regress_fm.pc () INHERITS (regress_fm.p);
ALTER TABLE regress_fm.p OWNER TO regress_fm_owner;
ALTER TABLE regress_fm.pc OWNER TO regress_fm_owner;
INSERT INTO regress_fm.p VALUES (7, 'p7'), (8, 'p8');
INSERT INTO regress_fm.pc VALUES (7, 'pc7'), (8, 'pc8');
ALTER TABLE regress_fm.pc ENABLE ROW LEVEL SECURITY;
ALTER TABLE regress_fm.pc FORCE ROW LEVEL SECURITY;
CREATE POLICY hide ON regress_fm.pc USING (false);
SELECT customer_vault.register_subject_table('regress_fm.p', 'subj');
GRANT SELECT, DELETE ON regress_fm.p, regress_fm.pc TO regress_fm_admin;
SET ROLE regress_fm_admin;
SELECT r -> 'tables' AS tables, r -> 'not_reached' AS not_reached
  FROM customer_vault.forget_subject('7', 'request') r;
RESET ROLE;
SELECT * FROM ONLY regress_fm.p ORDER BY subj;
SELECT * FROM regress_fm.pc ORDER BY subj;
SELECT customer_vault.unregister_subject_table('regress_fm.p');

SELECT customer_vault.verify_ledger() AS ledger_broken, customer_vault.verify_receipts() AS receipts_broken,
       customer_vault.verify_legal_holds() AS holds_broken;
SET client_min_messages = warning;
DROP SCHEMA regress_fm CASCADE;
DROP SERVER regress_fm_srv;
DROP FOREIGN DATA WRAPPER regress_fm_fdw;
DROP ROLE regress_fm_admin;
DROP OWNED BY regress_fm_owner;
DROP ROLE regress_fm_owner;
RESET client_min_messages;
