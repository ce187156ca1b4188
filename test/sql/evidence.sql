-- Evidence nobody can rewrite (issue 9): legal holds and the purge log are
-- append-only and hash-chained.  Placing and releasing a hold are entries
-- (who, as whom, when, why); the admin changes them only through the
-- functions; UPDATE, DELETE and TRUNCATE are refused even to a superuser and
-- under session_replication_role = replica; a rewritten, removed or forged
-- entry is found by verify_legal_holds() / verify_purge_log().
-- Holds compare in the subject column's own type (issue 10).
\set VERBOSITY terse
CREATE FUNCTION sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE ROLE regress_ev_admin;
GRANT customer_vault_admin TO regress_ev_admin;
CREATE ROLE regress_ev_auditor;
GRANT customer_vault_auditor TO regress_ev_auditor;
CREATE ROLE regress_ev_nobody;

SELECT customer_vault.verify_legal_holds() AS holds_broken, customer_vault.verify_purge_log() AS log_broken;

-- placing and releasing are entries recording who (session and current role), when and why
SET ROLE regress_ev_admin;
SELECT customer_vault.place_legal_hold('s-1', 'litigation 2026-041') AS h1 \gset
SELECT customer_vault.place_legal_hold('s-2', 'tax audit', now() + interval '10 years') AS h2 \gset
SELECT customer_vault.release_legal_hold(:h1, 'case settled');
SELECT left(sqlstate_of(format('SELECT customer_vault.release_legal_hold(%s)', :h1)), 5) AS release_twice;
SELECT left(sqlstate_of(format('SELECT customer_vault.release_legal_hold(%s)', :h1 + 2)), 5) AS release_a_release_entry;
SELECT sqlstate_of('SELECT customer_vault.release_legal_hold(NULL)') AS release_null;
SELECT sqlstate_of(format('SELECT customer_vault.release_legal_hold(%s, %L)', :h2, ' ')) AS release_empty_reason;
SELECT sqlstate_of($$SELECT customer_vault.place_legal_hold('s-3', 'x', 'infinity')$$) AS until_infinity;
SELECT * FROM (
    -- (since 0.5.0 an entry stores the subject's keyed hash: its hold in legal_holds names it)
    SELECT id - :h1 AS rel_id, hold_id - :h1 AS rel_hold, action,
           COALESCE(subject, (SELECT h.subject FROM customer_vault.legal_holds h WHERE h.id = ev.hold_id)) AS subject,
           reason, until IS NOT NULL AS has_until,
           session_role = session_user AS by_session_user, acting_role,
           prev_hash IS NOT DISTINCT FROM lag(hash) OVER (ORDER BY id) AS chained
      FROM customer_vault.legal_hold_events ev) e
 WHERE rel_id >= 0 ORDER BY rel_id;
SELECT id - :h1 AS rel_id, subject, reason, placed_as, released_as, release_reason, active
  FROM customer_vault.legal_holds WHERE id >= :h1 ORDER BY id;
SELECT subject, reason FROM customer_vault.current_legal_holds;

-- the admin cannot write the evidence directly, nor the chain head
SELECT sqlstate_of(format('UPDATE customer_vault.legal_hold_events SET reason = %L', 'edited')) AS update_events;
SELECT sqlstate_of('DELETE FROM customer_vault.legal_hold_events') AS delete_events;
SELECT sqlstate_of($$INSERT INTO customer_vault.legal_hold_events (id, hold_id, action, subject, reason, recorded_at, session_role, acting_role, hash)
                     VALUES (1000, 1000, 'place', 'x', 'x', now(), 'x', 'x', '\x00')$$) AS insert_events;
SELECT sqlstate_of('UPDATE customer_vault.legal_holds SET until = now()') AS update_view;
SELECT sqlstate_of('UPDATE customer_vault.purge_log_entries SET rows_purged = 0') AS update_log;
SELECT sqlstate_of('SELECT * FROM customer_vault.evidence_heads FOR UPDATE') AS lock_head;
SELECT sqlstate_of('LOCK TABLE customer_vault.evidence_heads') AS lock_head_table;
RESET ROLE;
-- no one else can take the lock appends serialize on either
SET ROLE regress_ev_nobody;
SELECT sqlstate_of('SELECT * FROM customer_vault.evidence_heads FOR UPDATE') AS nobody_lock_head;
SELECT sqlstate_of($$SELECT customer_vault.place_legal_hold('s-9', 'no right')$$) AS nobody_places;
RESET ROLE;
SET ROLE regress_ev_auditor;
SELECT customer_vault.verify_legal_holds() AS auditor_verifies_holds, customer_vault.verify_purge_log() AS auditor_verifies_log;
SELECT count(*) AS auditor_reads FROM customer_vault.legal_holds WHERE id >= :h1;
SELECT sqlstate_of($$SELECT customer_vault.place_legal_hold('s-9', 'no right')$$) AS auditor_places;
RESET ROLE;

-- not even a superuser, not even as a replica
SELECT sqlstate_of(format('UPDATE customer_vault.legal_hold_events SET reason = %L', 'edited')) AS su_update;
SELECT sqlstate_of('DELETE FROM customer_vault.legal_hold_events') AS su_delete;
SELECT sqlstate_of('TRUNCATE customer_vault.legal_hold_events') AS su_truncate;
SET session_replication_role = replica;
SELECT sqlstate_of('DELETE FROM customer_vault.legal_hold_events') AS replica_delete;
SELECT sqlstate_of('TRUNCATE customer_vault.purge_log_entries') AS replica_truncate;
RESET session_replication_role;

-- the purge log: written by the purge through _purge_log_write only, each
-- start and each end an entry of purge_log_entries; purge_log shows one row per run
SET ROLE regress_ev_admin;
SELECT customer_vault._purge_log_write(NULL, now(), 'public.t', 'delete', '2026-01-01', false, 'running') AS s1 \gset
SELECT customer_vault._purge_log_write(:s1, now(), 'public.t', 'delete', '2026-01-01', false, 'done', 5, 1, 2) = :s1 AS ended;
SELECT left(sqlstate_of(format('SELECT customer_vault._purge_log_write(%s, now(), %L, %L, NULL, false, %L)',
                               :s1, 'public.t', 'delete', 'failed')), 5) AS end_twice;
SELECT left(sqlstate_of(format('SELECT customer_vault._purge_log_write(%s, now(), %L, %L, NULL, false, %L)',
                               :s1 + 1, 'public.t', 'delete', 'done')), 5) AS end_an_end;
SELECT sqlstate_of($$SELECT customer_vault._purge_log_write(NULL, now(), NULL, 'delete', NULL, false, 'running')$$) AS start_incomplete;
SELECT sqlstate_of($$SELECT customer_vault._purge_log_write(NULL, now(), 'public.t', 'delete', NULL, false, 'rewritten')$$) AS unknown_status;
SELECT customer_vault._purge_log_write(NULL, now(), 'public.u', 'delete', NULL, true, 'failed',
                                       sqlstate => '42501', message => 'permission denied') AS s2 \gset
SELECT event, ref IS NOT NULL AS has_ref, tbl, rows_purged, rows_held, batches, dry_run, acting_role, sqlstate
  FROM customer_vault.purge_log_entries WHERE id >= :s1 ORDER BY id;
SELECT tbl, status, rows_purged, rows_held, batches, finished_at >= started_at AS finished, sqlstate, message,
       role = session_user AS by_me
  FROM customer_vault.purge_log WHERE id >= :s1 ORDER BY id;
SELECT sqlstate_of($$UPDATE customer_vault.purge_log SET status = 'done'$$) AS update_view;
RESET ROLE;
SELECT customer_vault.verify_legal_holds() AS holds_broken, customer_vault.verify_purge_log() AS log_broken;

-- tampering behind the triggers' back is found: an edited entry, a removed
-- last entry, a forged entry appended directly
CREATE TEMP TABLE h2_orig AS SELECT * FROM customer_vault.legal_hold_events WHERE id = :h2;
ALTER TABLE customer_vault.legal_hold_events DISABLE TRIGGER legal_hold_events_no_update_delete;
UPDATE customer_vault.legal_hold_events SET until = NULL WHERE id = :h2;
SELECT customer_vault.verify_legal_holds() = :h2 AS edit_found;
UPDATE customer_vault.legal_hold_events SET until = now() + interval '10 years' WHERE id = :h2;
SELECT customer_vault.verify_legal_holds() = :h2 AS still_broken_after_a_guess;
UPDATE customer_vault.legal_hold_events SET until = (SELECT until FROM h2_orig) WHERE id = :h2;
ALTER TABLE customer_vault.legal_hold_events ENABLE ALWAYS TRIGGER legal_hold_events_no_update_delete;
SELECT customer_vault.verify_legal_holds() IS NULL AS holds_intact_again;
ALTER TABLE customer_vault.purge_log_entries DISABLE TRIGGER purge_log_entries_no_update_delete;
CREATE TEMP TABLE last_log AS SELECT * FROM customer_vault.purge_log_entries ORDER BY id DESC LIMIT 1;
DELETE FROM customer_vault.purge_log_entries WHERE id = (SELECT id FROM last_log);
SELECT customer_vault.verify_purge_log() = (SELECT id FROM last_log) AS removal_found;
INSERT INTO customer_vault.purge_log_entries SELECT * FROM last_log;
SELECT customer_vault.verify_purge_log() IS NULL AS restored;
INSERT INTO customer_vault.purge_log_entries (id, event, run_started, tbl, action, dry_run, session_role, acting_role,
                                              recorded_at, prev_hash, hash)
SELECT id + 1, 'start', now(), 'x', 'delete', false, 'x', 'x', now(), hash, '\x00' FROM last_log;
SELECT customer_vault.verify_purge_log() = (SELECT id + 1 FROM last_log) AS forgery_found;
DELETE FROM customer_vault.purge_log_entries WHERE id > (SELECT id FROM last_log);
ALTER TABLE customer_vault.purge_log_entries ENABLE ALWAYS TRIGGER purge_log_entries_no_update_delete;
SELECT customer_vault.verify_purge_log() IS NULL AS log_intact_again;

-- holds compare in the subject column's own type; a hold that is no value of
-- a registered subject column is refused when placed
CREATE TABLE orders_int (id int, customer_id bigint, placed date);
INSERT INTO orders_int VALUES (1, 42, '2020-01-01'), (2, 43, '2020-01-01');
CREATE TABLE orders_uuid (id int, customer uuid, placed date);
INSERT INTO orders_uuid VALUES (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2020-01-01'),
                               (2, 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '2020-01-01');
SELECT customer_vault.set_retention('orders_int', 'placed', '1 year', 'delete', 'customer_id');
SELECT customer_vault.set_retention('orders_uuid', 'placed', '1 year', 'delete', 'customer');
SELECT sqlstate_of($$SELECT customer_vault.place_legal_hold('42x', 'typo')$$) AS not_an_id;
SELECT customer_vault.place_legal_hold('00042', 'zero-padded') > 0 AS padded;
SELECT customer_vault.place_legal_hold('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'upper case') > 0 AS upper;
SELECT tbl, expired, held, to_purge FROM customer_vault.purge_preview() WHERE tbl::text LIKE 'orders%' ORDER BY 1;
CALL customer_vault.purge();
SELECT customer_id FROM orders_int;
SELECT customer FROM orders_uuid;
SELECT customer_vault.verify_legal_holds() AS holds_broken, customer_vault.verify_purge_log() AS log_broken;

-- clean up (holds are released, never deleted)
SELECT count(customer_vault.release_legal_hold(id, 'test done')) AS released FROM customer_vault.current_legal_holds;
DELETE FROM customer_vault.retention_policies WHERE table_name IN ('orders_int', 'orders_uuid');
DROP TABLE orders_int, orders_uuid;
DROP FUNCTION sqlstate_of(text);
DROP ROLE regress_ev_admin, regress_ev_auditor, regress_ev_nobody;

-- an update from 0.1.0 carries its holds (same ids, releases as entries) and
-- its purge log (start and done entries) into the chains, which verify
\set orig_db :DBNAME
DROP DATABASE IF EXISTS regress_cv_evidence_upgrade;
CREATE DATABASE regress_cv_evidence_upgrade;
\c regress_cv_evidence_upgrade
SET client_min_messages = warning;
CREATE EXTENSION customer_vault VERSION '0.1.0' CASCADE;
RESET client_min_messages;
CREATE TABLE ev (id int, customer_id text, at timestamptz);
INSERT INTO ev VALUES (1, 'c1', '2020-01-01'), (2, 'c2', '2020-01-01'), (3, 'c3', '2020-01-01');
SELECT customer_vault.set_retention('ev', 'at', '1 year', 'delete', 'customer_id');
SELECT customer_vault.place_legal_hold('c1', 'kept') AS old_h1 \gset
SELECT customer_vault.place_legal_hold('c2', 'released') AS old_h2 \gset
SELECT customer_vault.release_legal_hold(:old_h2);
CALL customer_vault.purge();
ALTER EXTENSION customer_vault UPDATE;
SELECT id = CASE subject WHEN 'c1' THEN :old_h1 ELSE :old_h2 END AS same_id, subject, reason, released_at IS NOT NULL AS released, active
  FROM customer_vault.legal_holds ORDER BY id;
SELECT action, subject FROM customer_vault.legal_hold_events ORDER BY id;
SELECT tbl, status, rows_purged, rows_held FROM customer_vault.purge_log;
SELECT customer_vault.verify_legal_holds() AS holds_broken, customer_vault.verify_purge_log() AS log_broken;
SELECT customer_vault.release_legal_hold(:old_h1, 'after the update');
SELECT customer_vault.verify_legal_holds() AS holds_broken;
SELECT count(*) AS dangling_config_entries
  FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'customer_vault' AND c::regclass::text ~ '^[0-9]+$';
\c :orig_db
DROP DATABASE regress_cv_evidence_upgrade;
