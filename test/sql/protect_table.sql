-- One protect trigger per table (0.5.0): cv_protect seals every protected
-- column of a row in one tuple re-form; protect_column and column drops remake
-- it from the registry; an UPDATE re-seals only the values that changed (or
-- whose row context changed); partitions; what a table owner's own triggers
-- can and cannot make it do; the per-column triggers of older versions still
-- work with this library; the update from 0.4.0 converts them.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE SCHEMA regress_pt;
CREATE ROLE regress_pt_owner;
CREATE ROLE regress_pt_reader IN ROLE customer_vault_reader;
RESET client_min_messages;
GRANT USAGE ON SCHEMA regress_pt TO regress_pt_owner, regress_pt_reader;
GRANT CREATE ON SCHEMA regress_pt TO regress_pt_owner;
SELECT customer_vault.create_key('pt_key') > 0 AS created;

-- three protected columns, one with a blind index: one trigger
CREATE TABLE regress_pt.c3 (id bigint PRIMARY KEY, email text, phone text, notes text, other int);
INSERT INTO regress_pt.c3 VALUES (1, 'a@example.com', '+1 1', 'note one', 1), (2, 'b@example.com', NULL, 'note two', 2);
SELECT customer_vault.protect_column('regress_pt.c3', 'email', 'pt_key', 'id', 'email_bidx');
SELECT customer_vault.protect_column('regress_pt.c3', 'phone', 'pt_key', 'id');
SELECT customer_vault.protect_column('regress_pt.c3', 'notes', 'pt_key', 'id');
SELECT tgname, tgnargs, tgtype, tgattr::text FROM pg_trigger
 WHERE tgrelid = 'regress_pt.c3'::regclass AND NOT tgisinternal;
SELECT trigger_name, column_name, context_column, blind_index_column, blind_index_bits, checks_out
  FROM customer_vault._protect_triggers() WHERE relid = 'regress_pt.c3'::regclass ORDER BY column_name;
INSERT INTO regress_pt.c3 VALUES (3, 'c@example.com', '+1 3', 'note three', 3), (4, NULL, NULL, NULL, 4);
SELECT id, customer_vault.is_sealed(email) AS email_sealed, customer_vault.is_sealed(phone) AS phone_sealed,
       customer_vault.is_sealed(notes) AS notes_sealed, email_bidx IS NOT NULL AS has_bidx
  FROM regress_pt.c3 ORDER BY id;
SELECT id, email, phone, notes FROM regress_pt.c3_decrypted ORDER BY id;
-- the blind index is the column's, as lookups compute it
SELECT email_bidx = customer_vault.column_blind_index('regress_pt.c3', 'email', 'c@example.com') AS bidx_matches
  FROM regress_pt.c3 WHERE id = 3;

-- an UPDATE re-seals only what changed
CREATE TEMP TABLE before AS SELECT id, email, phone, notes, email_bidx FROM regress_pt.c3;
UPDATE regress_pt.c3 SET phone = '+1 new' WHERE id = 1;
SELECT c.id, c.email = b.email AS email_kept, c.phone = b.phone AS phone_kept, c.notes = b.notes AS notes_kept,
       c.email_bidx = b.email_bidx AS bidx_kept
  FROM regress_pt.c3 c JOIN before b USING (id) WHERE id = 1;
SELECT phone FROM regress_pt.c3_decrypted WHERE id = 1;
-- an update of another column changes no value
UPDATE regress_pt.c3 SET other = other + 10;
SELECT count(*) FILTER (WHERE c.email IS DISTINCT FROM b.email OR c.notes IS DISTINCT FROM b.notes) AS changed
  FROM regress_pt.c3 c JOIN before b USING (id);
-- the blind index follows the value, not the statement
UPDATE regress_pt.c3 SET email_bidx = '\x00' WHERE id = 3;
SELECT c.email_bidx = b.email_bidx AS bidx_restored FROM regress_pt.c3 c JOIN before b USING (id) WHERE id = 3;
-- a value written as it is (the same ciphertext) is kept
UPDATE regress_pt.c3 SET email = (SELECT email FROM before WHERE id = 2) WHERE id = 2;
SELECT c.email = b.email AS kept FROM regress_pt.c3 c JOIN before b USING (id) WHERE id = 2;
-- a new row context re-binds every value of the row, and they still read
UPDATE regress_pt.c3 SET id = 30 WHERE id = 3;
SELECT c.email <> b.email AS email_rebound, c.notes <> b.notes AS notes_rebound, c.email_bidx = b.email_bidx AS bidx_same
  FROM regress_pt.c3 c, before b WHERE c.id = 30 AND b.id = 3;
SELECT id, email, phone, notes FROM regress_pt.c3_decrypted WHERE id = 30;
-- another row's ciphertext, or another column's, is refused, naming no value
UPDATE regress_pt.c3 SET notes = (SELECT notes FROM before WHERE id = 1) WHERE id = 2;
UPDATE regress_pt.c3 SET notes = phone WHERE id = 1;
-- a NULL context with a value is refused; NULL values need none
INSERT INTO regress_pt.c3 (id, email) VALUES (NULL, 'x');
-- no protected column serves as the context or blind index of another
CREATE TABLE regress_pt.ctx (id int, k text, v text, w text);
SELECT customer_vault.protect_column('regress_pt.ctx', 'v', 'pt_key', 'k');
SELECT customer_vault.protect_column('regress_pt.ctx', 'k', 'pt_key', 'id');
SELECT customer_vault.protect_column('regress_pt.ctx', 'w', 'pt_key', 'v');
SELECT customer_vault.protect_column('regress_pt.ctx', 'w', 'pt_key', 'id', 'k');

-- dropping one of three protected columns: the trigger is remade for the
-- other two (CASCADE drops the decrypted view, which reads the column)
ALTER TABLE regress_pt.c3 DROP COLUMN phone CASCADE;
SELECT column_name FROM customer_vault.protected_columns WHERE relid = 'regress_pt.c3'::regclass ORDER BY 1;
SELECT tgname, tgnargs FROM pg_trigger WHERE tgrelid = 'regress_pt.c3'::regclass AND NOT tgisinternal;
INSERT INTO regress_pt.c3 VALUES (5, 'e@example.com', 'note five', 5);
SELECT customer_vault.is_sealed(email) AND customer_vault.is_sealed(notes) AS sealed FROM regress_pt.c3 WHERE id = 5;
SELECT customer_vault._refresh_decrypted_view('regress_pt.c3');
SELECT id, email, notes FROM regress_pt.c3_decrypted ORDER BY id;
-- renames stay refused
ALTER TABLE regress_pt.c3 RENAME COLUMN notes TO remarks;
-- a dropped unprotected column changes nothing
ALTER TABLE regress_pt.c3 DROP COLUMN other CASCADE;
SELECT tgnargs FROM pg_trigger WHERE tgrelid = 'regress_pt.c3'::regclass AND tgname = 'cv_protect';
INSERT INTO regress_pt.c3 VALUES (6, 'f@example.com', 'note six');
SELECT customer_vault._refresh_decrypted_view('regress_pt.c3');
SELECT id, email, notes FROM regress_pt.c3_decrypted WHERE id = 6;
-- a context column cannot be dropped while its protected column stays
CREATE TABLE regress_pt.lostctx (id int, cid int, v text);
SELECT customer_vault.protect_column('regress_pt.lostctx', 'v', 'pt_key', 'cid');
ALTER TABLE regress_pt.lostctx DROP COLUMN cid CASCADE;
-- the last protected column dropped: no trigger left
ALTER TABLE regress_pt.c3 DROP COLUMN email CASCADE;
ALTER TABLE regress_pt.c3 DROP COLUMN notes CASCADE;
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'regress_pt.c3'::regclass AND NOT tgisinternal;
SELECT count(*) AS rows_left FROM customer_vault.protected_columns WHERE relid = 'regress_pt.c3'::regclass;

-- a partitioned table: the trigger is cloned to every partition, whose
-- columns may lie elsewhere (a dropped column, another order)
CREATE TABLE regress_pt.parts (id int NOT NULL, region int NOT NULL, email text, notes text) PARTITION BY LIST (region);
CREATE TABLE regress_pt.parts_1 PARTITION OF regress_pt.parts FOR VALUES IN (1);
CREATE TABLE regress_pt.parts_2 (dropped int, notes text, email text, region int NOT NULL, id int NOT NULL);
ALTER TABLE regress_pt.parts_2 DROP COLUMN dropped;
ALTER TABLE regress_pt.parts ATTACH PARTITION regress_pt.parts_2 FOR VALUES IN (2);
INSERT INTO regress_pt.parts VALUES (1, 1, 'p1@example.com', 'n1'), (2, 2, 'p2@example.com', 'n2');
SELECT customer_vault.protect_column('regress_pt.parts', 'email', 'pt_key', 'id');
SELECT customer_vault.protect_column('regress_pt.parts', 'notes', 'pt_key', 'id');
SELECT tgrelid::regclass, tgname, tgparentid <> 0 AS clone FROM pg_trigger
 WHERE tgrelid IN ('regress_pt.parts'::regclass, 'regress_pt.parts_1'::regclass, 'regress_pt.parts_2'::regclass)
   AND NOT tgisinternal ORDER BY 1;
INSERT INTO regress_pt.parts VALUES (3, 1, 'p3@example.com', 'n3'), (4, 2, 'p4@example.com', 'n4');
INSERT INTO regress_pt.parts_2 (id, region, email, notes) VALUES (5, 2, 'p5@example.com', 'n5');
UPDATE regress_pt.parts SET region = 2 WHERE id = 3;   -- moves to the other partition
SELECT tableoid::regclass, id, customer_vault.is_sealed(email) AND customer_vault.is_sealed(notes) AS sealed
  FROM regress_pt.parts ORDER BY id;
SELECT id, region, email, notes FROM regress_pt.parts_decrypted ORDER BY id;
-- a partition's own column is protected on the partitioned table only
ALTER TABLE regress_pt.parts ADD COLUMN phone text;
-- (the message only: PostgreSQL 18 adds a position to it)
DO $$
BEGIN
    PERFORM customer_vault.protect_column('regress_pt.parts_1', 'phone', 'pt_key', 'id');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE '% %', SQLSTATE, SQLERRM;
END
$$;

-- a table owner's own triggers, before and after cv_protect (triggers fire
-- in name order): what runs before it is sealed as it leaves it; what runs
-- after it can only spoil its own rows, which then fail to read instead of
-- showing another value; it never gets the trigger to open someone else's
-- ciphertext for it
CREATE TABLE regress_pt.victim (id int PRIMARY KEY, secret text);
INSERT INTO regress_pt.victim VALUES (1, 'victim secret');
SELECT customer_vault.protect_column('regress_pt.victim', 'secret', 'pt_key', 'id', 'secret_bidx');
GRANT SELECT (id, secret) ON regress_pt.victim TO PUBLIC;
CREATE TABLE regress_pt.own (id int PRIMARY KEY, secret text, note text, mode text);
ALTER TABLE regress_pt.own OWNER TO regress_pt_owner;
SELECT customer_vault.protect_column('regress_pt.own', 'secret', 'pt_key', 'id', 'secret_bidx');
SELECT customer_vault.protect_column('regress_pt.own', 'note', 'pt_key', 'id');
GRANT SELECT, INSERT, UPDATE ON regress_pt.own TO regress_pt_reader;
GRANT SELECT ON regress_pt.own_decrypted TO regress_pt_reader;
SET ROLE regress_pt_owner;
CREATE FUNCTION regress_pt.early() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.mode = 'steal' THEN
        -- the victim's ciphertext (and its row id) into this row, to have it
        -- opened and indexed here
        SELECT v.secret, v.id INTO NEW.secret, NEW.id FROM regress_pt.victim v WHERE v.id = 1;
    ELSIF NEW.mode = 'copy' THEN
        NEW.note := NEW.secret;   -- plaintext into the other protected column: sealed too
    END IF;
    RETURN NEW;
END $$;
CREATE FUNCTION regress_pt.late() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.mode = 'swap' THEN
        NEW.note := NEW.secret;   -- a sealed value moved to another column
    ELSIF NEW.mode = 'rebind' THEN
        NEW.id := NEW.id + 100;   -- the context changed after sealing
    ELSIF NEW.mode = 'plain' THEN
        NEW.note := 'plaintext after the trigger';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER a_early BEFORE INSERT OR UPDATE ON regress_pt.own FOR EACH ROW EXECUTE FUNCTION regress_pt.early();
CREATE TRIGGER z_late BEFORE INSERT OR UPDATE ON regress_pt.own FOR EACH ROW EXECUTE FUNCTION regress_pt.late();
RESET ROLE;
SET ROLE regress_pt_reader;
INSERT INTO regress_pt.own VALUES (1, 'mine', 'x', 'steal');
INSERT INTO regress_pt.own VALUES (2, 'mine two', 'x', 'copy');
INSERT INTO regress_pt.own VALUES (3, 'mine three', 'x', 'swap');
INSERT INTO regress_pt.own VALUES (4, 'mine four', 'x', 'rebind');
INSERT INTO regress_pt.own VALUES (5, 'mine five', 'x', 'plain');
SELECT id, customer_vault.is_sealed(secret) AS secret_sealed, customer_vault.is_sealed(note) AS note_sealed
  FROM regress_pt.own ORDER BY id;
SELECT id, secret, note FROM regress_pt.own_decrypted WHERE id = 2;
SELECT id, note FROM regress_pt.own_decrypted WHERE id = 3;
SELECT id, secret FROM regress_pt.own_decrypted WHERE id = 104;
RESET ROLE;

-- statements prepared before the owner's DDL keep sealing correctly after it
-- (the trigger's column numbers are resolved again after every change)
PREPARE ins_own(int, text) AS INSERT INTO regress_pt.own (id, secret, note) VALUES ($1, $2, $2);
EXECUTE ins_own(10, 'ten');
ALTER TABLE regress_pt.own ADD COLUMN extra int, DROP COLUMN mode CASCADE;
EXECUTE ins_own(11, 'eleven');
SELECT customer_vault._refresh_decrypted_view('regress_pt.own');
SELECT id, secret, note FROM regress_pt.own_decrypted WHERE id IN (10, 11) ORDER BY id;

-- a per-column trigger of an older version (not updated yet) still seals
CREATE TABLE regress_pt.legacy (id int, v text, v_bidx bytea);
CREATE TRIGGER cv_protect_2 BEFORE INSERT OR UPDATE OF v, id, v_bidx ON regress_pt.legacy FOR EACH ROW
    EXECUTE FUNCTION customer_vault._protect_trigger('v', 'pt_key', '22:regress_pt.legacy.v', 'id', 'v_bidx', '256');
INSERT INTO regress_pt.legacy VALUES (1, 'old form');
SELECT customer_vault.is_sealed(v) AS sealed, customer_vault._open_column(v, '22:regress_pt.legacy.v' || id) AS v,
       v_bidx IS NOT NULL AS has_bidx
  FROM regress_pt.legacy;
-- malformed per-table arguments are refused
CREATE TABLE regress_pt.bad (id int, v text);
CREATE TRIGGER cv_protect BEFORE INSERT ON regress_pt.bad FOR EACH ROW
    EXECUTE FUNCTION customer_vault._protect_trigger('cv_protect_table', 'v', 'pt_key', 'b', '', '', '', 'extra');
INSERT INTO regress_pt.bad VALUES (1, 'x');
DROP TRIGGER cv_protect ON regress_pt.bad;
CREATE TRIGGER cv_protect BEFORE INSERT ON regress_pt.bad FOR EACH ROW
    EXECUTE FUNCTION customer_vault._protect_trigger('cv_protect_table', 'v', 'pt_key', 'b', '', '', '',
                                                      'v', 'pt_key', 'b', '', '', '');
INSERT INTO regress_pt.bad VALUES (1, 'x');
DROP TRIGGER cv_protect ON regress_pt.bad;
CREATE TRIGGER cv_protect BEFORE INSERT ON regress_pt.bad FOR EACH ROW
    EXECUTE FUNCTION customer_vault._protect_trigger('cv_protect_table', 'id', 'pt_key', 'b', '', '', '');
INSERT INTO regress_pt.bad VALUES (1, 'x');
SELECT count(*) AS rows_written FROM regress_pt.bad;

-- the update from 0.4.0 replaces the per-column triggers by one; values
-- written before still read, blind indexes stay comparable
\set orig_db :DBNAME
DROP DATABASE IF EXISTS regress_cv_pt_upgrade;
CREATE DATABASE regress_cv_pt_upgrade;
\c regress_cv_pt_upgrade
SET client_min_messages = warning;
CREATE EXTENSION pgcrypto;
CREATE EXTENSION customer_vault VERSION '0.4.0';
RESET client_min_messages;
SELECT customer_vault.create_key('up_key') > 0 AS created;
CREATE TABLE t (id bigint PRIMARY KEY, email text, phone text, notes text);
INSERT INTO t VALUES (1, 'u1@example.com', '+1', 'n1'), (2, 'u2@example.com', '+2', 'n2');
SELECT customer_vault.protect_column('t', 'email', 'up_key', 'id', 'email_bidx', 32);
SELECT customer_vault.protect_column('t', 'phone', 'up_key', 'id');
SELECT customer_vault.protect_column('t', 'notes', 'up_key');
SELECT tgname FROM pg_trigger WHERE tgrelid = 't'::regclass AND NOT tgisinternal ORDER BY 1;
ALTER EXTENSION customer_vault UPDATE;
SELECT tgname, tgnargs FROM pg_trigger WHERE tgrelid = 't'::regclass AND NOT tgisinternal ORDER BY 1;
SELECT count(*) FILTER (WHERE checks_out) AS checking_out, count(*) AS columns FROM customer_vault._protect_triggers();
INSERT INTO t VALUES (3, 'u1@example.com', '+3', 'n3');
SELECT id, email, phone, notes FROM t_decrypted ORDER BY id;
SELECT (SELECT email_bidx FROM t WHERE id = 1) = (SELECT email_bidx FROM t WHERE id = 3) AS same_bidx;
\c :orig_db
DROP DATABASE regress_cv_pt_upgrade;

SET client_min_messages = warning;
DROP SCHEMA regress_pt CASCADE;
DROP ROLE regress_pt_owner, regress_pt_reader;
RESET client_min_messages;
