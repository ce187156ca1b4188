-- Maintenance acts as the table owner: purge, reencrypt and protect_column's
-- rewrite run on a table as its owner inside a security-restricted operation
-- (like VACUUM), with row security off.  A non-superuser table owner plants
-- a trigger, a rule, a generated column, a CHECK constraint, an index
-- expression and a policy function that try to become superuser, to write a
-- table only the caller may write, to SET ROLE to the caller and to change a
-- setting of the caller's session; a superuser and a non-owner admin run the
-- maintenance; the owner gains nothing, and the maintenance completes (the
-- planted code runs as the owner, its attempts fail inside it).  Rows a
-- consent policy hides from the admin are still purged and counted.  One
-- failing table stops no other: each failure is logged with its SQLSTATE.
\set VERBOSITY terse
\set as_of '''2026-06-15 12:00:00+00'''
SELECT count(*) AS other_policies FROM customer_vault.retention_policies;
CREATE ROLE regress_mt_owner;
CREATE ROLE regress_mt_admin;
GRANT customer_vault_admin TO regress_mt_admin;
-- only the caller (a superuser, or the admin) may write here, never the owner
CREATE TABLE regress_mt_victim (what text, who name);
GRANT INSERT ON regress_mt_victim TO regress_mt_admin;
CREATE SCHEMA regress_mt AUTHORIZATION regress_mt_owner;
GRANT USAGE ON SCHEMA regress_mt TO regress_mt_admin;
SELECT customer_vault.create_key('regress_mt_key') > 0 AS key_made;
SELECT customer_vault.create_key('regress_mt_other') > 0 AS other_key_made;

SET ROLE regress_mt_owner;
CREATE TABLE regress_mt.trap_log (tag text, who name, escalated boolean, wrote boolean, set_role boolean,
                                  other_key boolean);
-- what planted code tries, each attempt in a block of its own (so the
-- maintenance goes on), and the log of what worked
CREATE FUNCTION regress_mt.trap(tag text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    esc boolean := false;
    wrote boolean := false;
    sr boolean := false;
    orc boolean := false;
    prev name := current_user;
BEGIN
    -- inert until armed (the superuser arms it once the tables are set up)
    IF current_setting('regress_mt.armed', true) IS DISTINCT FROM 'on' THEN
        RETURN true;
    END IF;
    BEGIN
        EXECUTE 'ALTER ROLE regress_mt_owner SUPERUSER';
        esc := true;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        INSERT INTO public.regress_mt_victim VALUES (tag, current_user);
        wrote := true;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        EXECUTE format('SET ROLE %I', session_user);
        sr := true;
        EXECUTE format('SET ROLE %I', prev);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        PERFORM customer_vault._m_seal_column('guess', 'regress_mt_other', 'any context');
        orc := true;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    PERFORM set_config('work_mem', '77kB', false);
    INSERT INTO regress_mt.trap_log VALUES (tag, current_user, esc, wrote, sr, orc);
    RETURN true;
END $$;
GRANT INSERT ON regress_mt.trap_log TO PUBLIC;
GRANT USAGE ON SCHEMA regress_mt TO PUBLIC;
-- index expressions, CHECK constraints and generated columns must be immutable: they call the trap
CREATE FUNCTION regress_mt.trap_imm(tag text, v text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM regress_mt.trap(tag);
    RETURN v;
END $$;
CREATE FUNCTION regress_mt.trap_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM regress_mt.trap('trigger ' || TG_OP);
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;

-- a protected table (protect_column, reencrypt) full of traps
CREATE TABLE regress_mt.people (id int PRIMARY KEY, email text
                                CHECK (regress_mt.trap_imm('check', email) IS NOT NULL),
                                shadow text GENERATED ALWAYS AS (regress_mt.trap_imm('generated', id::text)) STORED);
CREATE INDEX people_trap_idx ON regress_mt.people (regress_mt.trap_imm('index', email));
CREATE TRIGGER zz_trap BEFORE UPDATE ON regress_mt.people FOR EACH ROW EXECUTE FUNCTION regress_mt.trap_trg();
CREATE RULE trap_rule AS ON UPDATE TO regress_mt.people DO ALSO SELECT regress_mt.trap('rule');
INSERT INTO regress_mt.people (id, email) SELECT g, 'person' || g || '@example.com' FROM generate_series(1, 20) g;
-- a table under retention, with traps on DELETE
CREATE TABLE regress_mt.events (id int PRIMARY KEY, customer_id text, created_at timestamptz);
CREATE TRIGGER zz_trap BEFORE DELETE ON regress_mt.events FOR EACH ROW EXECUTE FUNCTION regress_mt.trap_trg();
CREATE RULE trap_rule AS ON DELETE TO regress_mt.events DO ALSO SELECT regress_mt.trap('rule');
INSERT INTO regress_mt.events SELECT g, 'c' || (g % 3), '2026-01-01+00'::timestamptz + g * interval '1 day'
  FROM generate_series(1, 200) g;
RESET ROLE;
SET regress_mt.armed = on;
SHOW work_mem;

-- ---------- a superuser protects a column of the owner's table ----------
SELECT customer_vault.protect_column('regress_mt.people', 'email', 'regress_mt_key', 'id', 'email_bidx');
SHOW work_mem;
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = 'regress_mt_owner';
SELECT count(*) AS victim_rows FROM regress_mt_victim;
SELECT DISTINCT tag, who, escalated, wrote, set_role, other_key FROM regress_mt.trap_log ORDER BY tag;
SELECT count(*) AS sealed FROM regress_mt.people WHERE customer_vault.is_sealed(email) AND email_bidx IS NOT NULL;
SELECT count(*) AS readable FROM regress_mt.people_decrypted WHERE email = 'person' || id || '@example.com';
TRUNCATE regress_mt.trap_log;

-- ---------- a superuser re-encrypts it after a rotation ----------
SELECT customer_vault.rotate_key('regress_mt_key') AS version;
CALL customer_vault.reencrypt('regress_mt.people', 'email', 7);
SHOW work_mem;
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = 'regress_mt_owner';
SELECT count(*) AS victim_rows FROM regress_mt_victim;
SELECT DISTINCT tag, who, escalated, wrote, set_role, other_key FROM regress_mt.trap_log ORDER BY tag;
SELECT customer_vault.key_of(email::customer_vault.encrypted_text) AS key, count(*) FROM regress_mt.people GROUP BY 1;
SELECT count(*) AS readable FROM regress_mt.people_decrypted WHERE email = 'person' || id || '@example.com';
TRUNCATE regress_mt.trap_log;

-- ---------- a superuser purges the owner's table ----------
SELECT customer_vault.set_retention('regress_mt.events', 'created_at', '60 days', 'delete', 'customer_id');
SELECT customer_vault.place_legal_hold('c1', 'regress case') AS hold_id \gset
SELECT * FROM customer_vault.purge_preview(:as_of);
CALL customer_vault.purge(batch_size => 50, as_of => :as_of);
SHOW work_mem;
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = 'regress_mt_owner';
SELECT count(*) AS victim_rows FROM regress_mt_victim;
SELECT DISTINCT tag, who, escalated, wrote, set_role, other_key FROM regress_mt.trap_log ORDER BY tag;
SELECT count(*) FILTER (WHERE created_at < :as_of::timestamptz - interval '60 days') AS expired_left,
       count(*) FILTER (WHERE created_at < :as_of::timestamptz - interval '60 days' AND customer_id = 'c1') AS held_left,
       count(*) AS total_left
  FROM regress_mt.events;
SELECT tbl, status, rows_purged, rows_held, batches > 1 AS batched, sqlstate FROM customer_vault.purge_log
 WHERE tbl LIKE 'regress_mt.%' ORDER BY id;
SELECT customer_vault.release_legal_hold(:hold_id);
TRUNCATE regress_mt.trap_log;
SELECT customer_vault.set_retention('regress_mt.events', 'created_at', '60 days', 'delete', NULL);

-- ---------- a non-owner admin purges rows a consent policy hides from it ----------
SELECT customer_vault.define_purpose('regress_mt_news');
SELECT customer_vault.grant_consent('s1', 'regress_mt_news', '{"form": "regress"}') > 0 AS granted;
SELECT customer_vault.grant_consent('s2', 'regress_mt_news', '{"form": "regress"}') > 0 AS granted;
SELECT customer_vault.withdraw_consent('s2', 'regress_mt_news') > 0 AS withdrawn;
SELECT customer_vault.allow_purpose('regress_mt_admin', 'regress_mt_news');
SET ROLE regress_mt_owner;
CREATE TABLE regress_mt.contacts (id int PRIMARY KEY, subject text, created_at timestamptz);
INSERT INTO regress_mt.contacts SELECT g, 's' || (g % 3), '2026-01-01+00'::timestamptz + g * interval '1 day'
  FROM generate_series(1, 90) g;
-- a table whose policy function is a trap (run as the caller by 0.1.0)
CREATE TABLE regress_mt.policed (id int PRIMARY KEY, created_at timestamptz);
INSERT INTO regress_mt.policed SELECT g, '2026-01-01+00'::timestamptz + g * interval '1 day' FROM generate_series(1, 90) g;
ALTER TABLE regress_mt.policed ENABLE ROW LEVEL SECURITY;
CREATE POLICY trap_pol ON regress_mt.policed USING (regress_mt.trap('policy') AND id % 2 = 0);
GRANT SELECT, DELETE ON regress_mt.contacts, regress_mt.policed, regress_mt.events TO regress_mt_admin;
RESET ROLE;
SELECT customer_vault.enable_consent_policy('regress_mt.contacts', 'subject', 'regress_mt_news');
SELECT customer_vault.set_retention('regress_mt.contacts', 'created_at', '60 days');
SELECT customer_vault.set_retention('regress_mt.policed', 'created_at', '60 days');
SET ROLE regress_mt_admin;
SET customer_vault.purpose = 'regress_mt_news';
SELECT subject, count(*) AS visible_to_admin FROM regress_mt.contacts GROUP BY 1 ORDER BY 1;
SELECT * FROM customer_vault.purge_preview(:as_of) ORDER BY tbl::text;
CALL customer_vault.purge(batch_size => 20, as_of => :as_of);
RESET customer_vault.purpose;
RESET ROLE;
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = 'regress_mt_owner';
SELECT count(*) AS victim_rows FROM regress_mt_victim;
SELECT DISTINCT tag, who, escalated, wrote, set_role, other_key FROM regress_mt.trap_log ORDER BY tag;
SELECT count(*) AS policy_trap_calls FROM regress_mt.trap_log WHERE tag = 'policy';
SELECT (SELECT count(*) FROM regress_mt.contacts) AS contacts_left, (SELECT count(*) FROM regress_mt.policed) AS policed_left;
SELECT tbl, status, rows_purged, role FROM customer_vault.purge_log
 WHERE tbl IN ('regress_mt.contacts', 'regress_mt.policed') ORDER BY id;

-- ---------- one failing table stops no other ----------
SET ROLE regress_mt_owner;
CREATE TABLE regress_mt.forced (id int, created_at timestamptz);
CREATE TABLE regress_mt.gone (id int, created_at timestamptz);
CREATE TABLE regress_mt.norights (id int, created_at timestamptz);
CREATE TABLE regress_mt.fine (id int, created_at timestamptz);
INSERT INTO regress_mt.forced VALUES (1, '2020-01-01+00');
INSERT INTO regress_mt.gone VALUES (1, '2020-01-01+00');
INSERT INTO regress_mt.norights VALUES (1, '2020-01-01+00');
INSERT INTO regress_mt.fine VALUES (1, '2020-01-01+00'), (2, '2026-06-01+00');
ALTER TABLE regress_mt.forced ENABLE ROW LEVEL SECURITY;
ALTER TABLE regress_mt.forced FORCE ROW LEVEL SECURITY;
CREATE POLICY everything ON regress_mt.forced USING (true);
GRANT SELECT, DELETE ON regress_mt.forced, regress_mt.gone, regress_mt.fine TO regress_mt_admin;
GRANT SELECT ON regress_mt.norights TO regress_mt_admin;
RESET ROLE;
SELECT customer_vault.set_retention(t, 'created_at', '30 days')
  FROM unnest('{regress_mt.forced,regress_mt.gone,regress_mt.norights,regress_mt.fine}'::regclass[]) t;
-- (renames are refused now: the owner changes the time column's type instead)
ALTER TABLE regress_mt.gone ALTER COLUMN created_at TYPE text;
SET ROLE regress_mt_admin;
CALL customer_vault.purge(as_of => :as_of);
RESET ROLE;
SELECT tbl, status, rows_purged, sqlstate, message, finished_at IS NOT NULL AS ended
  FROM customer_vault.purge_log WHERE tbl IN ('regress_mt.forced', 'regress_mt.gone', 'regress_mt.norights', 'regress_mt.fine')
 ORDER BY tbl;
SELECT (SELECT count(*) FROM regress_mt.fine) AS fine_left, (SELECT count(*) FROM regress_mt.forced) AS forced_left,
       (SELECT count(*) FROM regress_mt.norights) AS norights_left;
DROP TABLE regress_mt.forced, regress_mt.gone, regress_mt.norights;
DELETE FROM customer_vault.retention_policies WHERE table_name = 'gone';

-- ---------- a partitioned table is purged partition by partition ----------
SET ROLE regress_mt_owner;
CREATE TABLE regress_mt.parted (id int, created_at timestamptz) PARTITION BY RANGE (id);
CREATE TABLE regress_mt.parted_1 PARTITION OF regress_mt.parted FOR VALUES FROM (0) TO (100);
CREATE TABLE regress_mt.parted_2 PARTITION OF regress_mt.parted FOR VALUES FROM (100) TO (200);
INSERT INTO regress_mt.parted
SELECT g, CASE WHEN g % 2 = 0 THEN '2020-01-01+00' ELSE '2026-06-10+00' END::timestamptz FROM generate_series(0, 199) g;
GRANT SELECT, DELETE ON regress_mt.parted TO regress_mt_admin;
RESET ROLE;
SELECT customer_vault.set_retention('regress_mt.parted', 'created_at', '30 days');
SET ROLE regress_mt_admin;
SELECT * FROM customer_vault.purge_preview(:as_of) WHERE tbl = 'regress_mt.parted'::regclass;
CALL customer_vault.purge(batch_size => 30, as_of => :as_of);
RESET ROLE;
SELECT tableoid::regclass AS part, count(*), min(created_at) > '2026-01-01' AS only_fresh
  FROM regress_mt.parted GROUP BY 1 ORDER BY 1;
SELECT tbl, status, rows_purged, batches >= 2 AS batched FROM customer_vault.purge_log WHERE tbl = 'regress_mt.parted';
-- and re-encrypted partition by partition
SET ROLE regress_mt_owner;
CREATE TABLE regress_mt.parted_enc (id int, v customer_vault.encrypted_text) PARTITION BY LIST (id);
CREATE TABLE regress_mt.parted_enc_a PARTITION OF regress_mt.parted_enc FOR VALUES IN (1, 2, 3);
CREATE TABLE regress_mt.parted_enc_b PARTITION OF regress_mt.parted_enc FOR VALUES IN (4, 5, 6);
RESET ROLE;
INSERT INTO regress_mt.parted_enc SELECT g, customer_vault.encrypt('v' || g, 'regress_mt_other', g::text) FROM generate_series(1, 6) g;
SELECT customer_vault.rotate_key('regress_mt_other') AS version;
CALL customer_vault.reencrypt('regress_mt.parted_enc', 'v', 2, 'id');
SELECT tableoid::regclass AS part, customer_vault.key_of(v) AS key, count(*) AS n,
       bool_and(customer_vault.decrypt(v, id::text) = 'v' || id) AS readable
  FROM regress_mt.parted_enc GROUP BY 1, 2 ORDER BY 1, 2;

-- ---------- bad arguments: clear errors, nothing logged ----------
SELECT count(*) AS log_rows FROM customer_vault.purge_log \gset
CALL customer_vault.purge(NULL);
CALL customer_vault.purge(batch_size => NULL);
CALL customer_vault.purge(batch_size => 0);
CALL customer_vault.purge(as_of => 'infinity');
CALL customer_vault.purge(as_of => '-infinity');
CALL customer_vault.purge(as_of => now() + interval '1 day');
CALL customer_vault.reencrypt(NULL, 'email');
CALL customer_vault.reencrypt('regress_mt.people', 'email', 0);
SELECT count(*) = :log_rows AS nothing_logged FROM customer_vault.purge_log;

-- ---------- the maintenance-only functions work nowhere else ----------
SELECT customer_vault._m_blind_index_rewrite('regress_mt.people', 'email', 'x');
SELECT customer_vault._m_seal_column('x', 'regress_mt_key', 'ctx');
SELECT customer_vault._m_needs_reseal(email, true) FROM regress_mt.people LIMIT 1;
SELECT customer_vault._m_reseal(email, 'ctx', true) FROM regress_mt.people LIMIT 1;
SELECT customer_vault._m_subject_has_key('s1');
-- and the statement is never the caller's: an unknown kind is refused
SELECT customer_vault._maint_run('DROP TABLE x', 'regress_mt.fine', NULL);
-- an admin who may not update a table cannot re-encrypt it as its owner
SET ROLE regress_mt_admin;
CALL customer_vault.reencrypt('regress_mt.people', 'email', 7);
RESET ROLE;

-- ---------- a purge that died is marked interrupted by the next run ----------
SELECT customer_vault._purge_log_write(NULL, now(), 'regress_mt.fine', 'delete', NULL, false, 'running') AS dead_id \gset
CALL customer_vault.purge(as_of => :as_of);
SELECT status, finished_at IS NULL AS no_end FROM customer_vault.purge_log WHERE id = :dead_id;
SELECT count(*) AS still_running FROM customer_vault.purge_log WHERE status = 'running';

DROP SCHEMA regress_mt CASCADE;
DROP TABLE regress_mt_victim;
SELECT count(*) AS policies_left FROM customer_vault.retention_policies;
SELECT customer_vault.disallow_purpose('regress_mt_admin', 'regress_mt_news');
DROP ROLE regress_mt_admin;
DROP ROLE regress_mt_owner;
