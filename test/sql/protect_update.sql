-- cv_protect fires on every UPDATE (part TRIGGER3, issue 15): a table owner's
-- BEFORE UPDATE trigger that fires before it (name order) and changes the
-- context column, the blind index column or a protected column, on an UPDATE
-- whose SET names none of them, is seen: the value is re-bound to the new
-- context, another row's or column's ciphertext is refused, plaintext is
-- sealed, the blind index follows the value.  Before, cv_protect fired only
-- for UPDATE OF its columns and missed all of it (the rows then failed to read,
-- or the cv_sealed CHECK refused the plaintext).  An UPDATE that changes none
-- of its columns keeps the row as it is.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE SCHEMA regress_pu;
CREATE ROLE regress_pu_owner;
RESET client_min_messages;
GRANT USAGE, CREATE ON SCHEMA regress_pu TO regress_pu_owner;
SELECT customer_vault.create_key('pu_key') > 0 AS created;

-- the trigger: every INSERT and UPDATE, no column list; its WHEN clause names
-- the protected, context and blind index columns and is always true
CREATE TABLE regress_pu.t (id int PRIMARY KEY, email text, notes text, other int, mode text);
ALTER TABLE regress_pu.t OWNER TO regress_pu_owner;
INSERT INTO regress_pu.t VALUES (1, 'one@example.com', 'note one', 0, NULL),
                                (2, 'two@example.com', 'note two', 0, NULL),
                                (3, 'three@example.com', 'note three', 0, NULL);
SELECT customer_vault.protect_column('regress_pu.t', 'email', 'pu_key', 'id', 'email_bidx');
SELECT customer_vault.protect_column('regress_pu.t', 'notes', 'pu_key', 'id');
SELECT tgname, tgattr::text AS update_of, pg_get_triggerdef(oid) LIKE '%BEFORE INSERT OR UPDATE ON regress_pu.t FOR EACH ROW WHEN%' AS every_update,
       substring(pg_get_triggerdef(oid) FROM 'WHEN \(.*\) EXECUTE') AS when_clause
  FROM pg_trigger WHERE tgrelid = 'regress_pu.t'::regclass AND NOT tgisinternal;
CREATE TEMP TABLE before AS SELECT * FROM regress_pu.t;
GRANT SELECT ON before TO regress_pu_owner;

-- an UPDATE that changes none of the trigger's columns leaves them as they are
UPDATE regress_pu.t SET other = other + 1;
SELECT count(*) FILTER (WHERE t.email = b.email AND t.notes = b.notes AND t.email_bidx = b.email_bidx) AS kept,
       count(*) AS rows
  FROM regress_pu.t t JOIN before b USING (id);

-- the owner's triggers: a_own fires before cv_protect (name order)
SET ROLE regress_pu_owner;
CREATE FUNCTION regress_pu.own() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.mode = 'rekey' THEN
        NEW.id := NEW.id + 100;                         -- the context changes
    ELSIF NEW.mode = 'steal' THEN
        SELECT t.email INTO NEW.email FROM regress_pu.t t WHERE t.id = 1;   -- another row's ciphertext
    ELSIF NEW.mode = 'swap' THEN
        NEW.notes := NEW.email;                         -- another column's ciphertext
    ELSIF NEW.mode = 'plain' THEN
        NEW.notes := 'plaintext from the owner''s trigger';
    ELSIF NEW.mode = 'bidx' THEN
        NEW.email_bidx := '\x00';                        -- a forged blind index
    ELSIF NEW.mode = 'null' THEN
        NEW.email := NULL;                               -- no value, no blind index
    END IF;
    NEW.mode := NULL;
    RETURN NEW;
END $$;
CREATE TRIGGER a_own BEFORE UPDATE ON regress_pu.t FOR EACH ROW EXECUTE FUNCTION regress_pu.own();
RESET ROLE;

-- the context changed by the owner's trigger: both values re-bound, they read
UPDATE regress_pu.t SET mode = 'rekey' WHERE id = 2;
SELECT t.id, t.email <> b.email AS email_rebound, t.notes <> b.notes AS notes_rebound,
       t.email_bidx = b.email_bidx AS bidx_same
  FROM regress_pu.t t, before b WHERE t.id = 102 AND b.id = 2;
SELECT id, email, notes FROM regress_pu.t_decrypted WHERE id = 102;

-- another row's ciphertext copied in by the owner's trigger: refused
UPDATE regress_pu.t SET mode = 'steal' WHERE id = 3;
-- another column's ciphertext of the same row: refused
UPDATE regress_pu.t SET mode = 'swap' WHERE id = 3;
SELECT t.email = b.email AND t.notes = b.notes AS unchanged FROM regress_pu.t t JOIN before b USING (id) WHERE id = 3;

-- plaintext put in by the owner's trigger: sealed (not refused by the CHECK)
UPDATE regress_pu.t SET mode = 'plain' WHERE id = 3;
SELECT customer_vault.is_sealed(notes) AS sealed FROM regress_pu.t WHERE id = 3;
SELECT id, email, notes FROM regress_pu.t_decrypted WHERE id = 3;

-- a blind index changed by the owner's trigger: the value's is put back
UPDATE regress_pu.t SET mode = 'bidx' WHERE id = 3;
SELECT t.email_bidx = b.email_bidx AS bidx_restored FROM regress_pu.t t JOIN before b USING (id) WHERE id = 3;

-- a value set to NULL by the owner's trigger: its blind index goes too
UPDATE regress_pu.t SET mode = 'null' WHERE id = 3;
SELECT email IS NULL AS no_email, email_bidx IS NULL AS no_bidx FROM regress_pu.t WHERE id = 3;

-- every row still reads
SELECT id, email, notes FROM regress_pu.t_decrypted ORDER BY id;

-- the same on a partitioned table whose partition has another column order
-- (the cloned trigger's WHEN clause is mapped onto the partition's columns)
CREATE TABLE regress_pu.p (region int NOT NULL, id int NOT NULL, email text, mode text) PARTITION BY LIST (region);
CREATE TABLE regress_pu.p_2 (dropped int, mode text, email text, id int NOT NULL, region int NOT NULL);
ALTER TABLE regress_pu.p_2 DROP COLUMN dropped;
ALTER TABLE regress_pu.p ATTACH PARTITION regress_pu.p_2 FOR VALUES IN (2);
ALTER TABLE regress_pu.p OWNER TO regress_pu_owner;
ALTER TABLE regress_pu.p_2 OWNER TO regress_pu_owner;
SELECT customer_vault.protect_column('regress_pu.p', 'email', 'pu_key', 'id');
INSERT INTO regress_pu.p VALUES (2, 1, 'p1@example.com', NULL), (2, 2, 'p2@example.com', NULL);
SET ROLE regress_pu_owner;
CREATE FUNCTION regress_pu.own_p() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.mode = 'rekey' THEN
        NEW.id := NEW.id + 100;
    ELSIF NEW.mode = 'steal' THEN
        SELECT p.email INTO NEW.email FROM regress_pu.p p WHERE p.id = 1;
    END IF;
    NEW.mode := NULL;
    RETURN NEW;
END $$;
CREATE TRIGGER a_own BEFORE UPDATE ON regress_pu.p FOR EACH ROW EXECUTE FUNCTION regress_pu.own_p();
RESET ROLE;
UPDATE regress_pu.p SET mode = 'steal' WHERE id = 2;
UPDATE regress_pu.p_2 SET mode = 'steal' WHERE id = 2;
UPDATE regress_pu.p SET mode = 'rekey' WHERE id = 1;
SELECT region, id, email FROM regress_pu.p_decrypted ORDER BY id;

-- the columns the WHEN clause names keep their type, and a protected column
-- dropped with CASCADE takes the trigger, which is remade for the rest
ALTER TABLE regress_pu.t ALTER COLUMN id TYPE bigint;
ALTER TABLE regress_pu.t DROP COLUMN notes CASCADE;
SELECT tgname, substring(pg_get_triggerdef(oid) FROM 'WHEN \(.*\) EXECUTE') AS when_clause
  FROM pg_trigger WHERE tgrelid = 'regress_pu.t'::regclass AND tgname = 'cv_protect';
UPDATE regress_pu.t SET mode = 'rekey' WHERE id = 1;
SELECT customer_vault._refresh_decrypted_view('regress_pu.t');
SELECT id, email FROM regress_pu.t_decrypted ORDER BY id;

DROP TABLE before;
SET client_min_messages = warning;
DROP SCHEMA regress_pu CASCADE;
DROP ROLE regress_pu_owner;
RESET client_min_messages;
