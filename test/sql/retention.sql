-- Retention and legal holds: validation, the limit (a row exactly at it is
-- kept) under different TimeZone settings and column types, holds, the three
-- actions, the purge log, scheduling through pg_cron.
\set VERBOSITY terse
CREATE FUNCTION sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- a fixed "now" for the purge: the limit is as_of - keep, computed in UTC
\set as_of '''2026-06-15 12:00:00+00'''

CREATE TABLE events_tz (id int PRIMARY KEY, customer_id bigint, happened timestamptz, note text);
INSERT INTO events_tz VALUES
  (1, 1, '2026-05-16 11:59:59+00', 'just expired'),
  (2, 1, '2026-05-16 12:00:00+00', 'exactly at the limit'),
  (3, 1, '2026-05-16 12:00:01+00', 'just inside'),
  (4, 2, '2026-01-01 00:00:00+00', 'long expired'),
  (5, 3, '2026-01-01 00:00:00+00', 'long expired, subject on hold'),
  (6, 2, NULL, 'no time');
CREATE TABLE events_date (id int PRIMARY KEY, customer_id bigint, day date);
INSERT INTO events_date VALUES (1, 1, '2026-05-15'), (2, 1, '2026-05-16'), (3, 1, '2026-05-17');
CREATE TABLE events_ts (id int PRIMARY KEY, at timestamp);
INSERT INTO events_ts VALUES (1, '2026-05-16 11:59:59'), (2, '2026-05-16 12:00:00'), (3, '2026-05-16 12:00:01');

-- validation
SELECT sqlstate_of($$SELECT customer_vault.set_retention('events_tz', 'nope', '30 days')$$);
SELECT sqlstate_of($$SELECT customer_vault.set_retention('events_tz', 'note', '30 days')$$);
SELECT sqlstate_of($$SELECT customer_vault.set_retention('events_tz', 'happened', '0 days')$$);
SELECT sqlstate_of($$SELECT customer_vault.set_retention('events_tz', 'happened', '-1 day')$$);
SELECT sqlstate_of($$SELECT customer_vault.set_retention('events_tz', 'happened', '30 days', 'archive')$$);
SELECT sqlstate_of($$SELECT customer_vault.set_retention('events_tz', 'happened', '30 days', 'anonymize')$$);
SELECT sqlstate_of($$SELECT customer_vault.set_retention('events_tz', 'happened', '30 days', 'shred')$$);
SELECT sqlstate_of($$SELECT customer_vault.set_retention('events_tz', 'happened', '30 days', 'delete', 'nope')$$);
SELECT sqlstate_of($$SELECT customer_vault.set_retention('customer_vault.keys', 'created_at', '30 days')$$);
SELECT sqlstate_of($$SELECT customer_vault.set_retention(NULL, 'happened', '30 days')$$);
SELECT count(*) AS no_policy_yet FROM customer_vault.retention_policies;

SELECT customer_vault.set_retention('events_tz', 'happened', '30 days', 'delete', 'customer_id');
SELECT customer_vault.set_retention('events_date', 'day', '30 days');
SELECT customer_vault.set_retention('events_ts', 'at', '1 day');
-- set again: replaces
SELECT customer_vault.set_retention('events_ts', 'at', '30 days');
SELECT schema_name, table_name, time_column, keep, action, subject_column FROM customer_vault.retention_policies ORDER BY 2;

-- legal holds
SELECT sqlstate_of($$SELECT customer_vault.place_legal_hold('3', '')$$);
SELECT sqlstate_of($$SELECT customer_vault.place_legal_hold(NULL, 'case')$$);
SELECT sqlstate_of($$SELECT customer_vault.place_legal_hold('3', 'case', now() - interval '1 day')$$);
SELECT customer_vault.place_legal_hold('3', 'litigation 2026-041') AS hold_id \gset
SELECT sqlstate_of($$SELECT customer_vault.release_legal_hold(999999)$$);

-- the limit does not move with TimeZone
SET TimeZone = 'UTC';
SELECT * FROM customer_vault.purge_preview(:as_of) ORDER BY tbl::text;
SET TimeZone = 'Pacific/Kiritimati';
SELECT * FROM customer_vault.purge_preview(:as_of) ORDER BY tbl::text;
SET TimeZone = 'America/Los_Angeles';
SELECT * FROM customer_vault.purge_preview(:as_of) ORDER BY tbl::text;

-- a dry run changes nothing but is logged
CALL customer_vault.purge(dry_run => true, as_of => :as_of);
SELECT (SELECT count(*) FROM events_tz) AS tz_rows, (SELECT count(*) FROM events_date) AS date_rows, (SELECT count(*) FROM events_ts) AS ts_rows;
SET TimeZone = 'Asia/Kolkata';
CALL customer_vault.purge(batch_size => 1, as_of => :as_of);
RESET TimeZone;
SELECT id, note FROM events_tz ORDER BY id;
SELECT id, day FROM events_date ORDER BY id;
SELECT id, at FROM events_ts ORDER BY id;
SELECT tbl, action, cutoff, rows_purged, rows_held, batches > 0 AS batched, dry_run, role = session_user AS by_me,
       finished_at >= started_at AS finished
  FROM customer_vault.purge_log ORDER BY id;

-- releasing the hold lets the next purge remove the row; an expired hold stops protecting
SELECT customer_vault.release_legal_hold(:hold_id);
SELECT sqlstate_of(format('SELECT customer_vault.release_legal_hold(%s)', :hold_id));
INSERT INTO events_tz VALUES (7, 4, '2026-01-01 00:00:00+00', 'subject 4, hold ends soon');
SELECT customer_vault.place_legal_hold('4', 'short hold', now() + interval '1 second') > 0 AS placed;
SELECT held FROM customer_vault.purge_preview(:as_of) WHERE tbl = 'events_tz'::regclass;
SELECT pg_sleep(1.2);
CALL customer_vault.purge(as_of => :as_of);
SELECT id, note FROM events_tz ORDER BY id;

-- anonymize: PII-labelled columns are set NULL, the rows stay
CREATE TABLE tickets (id int PRIMARY KEY, customer_id bigint, opened date, email text, body text, status text);
INSERT INTO tickets VALUES (1, 1, '2020-01-01', 'a@example.com', 'old complaint', 'closed'),
                           (2, 2, '2026-06-01', 'b@example.com', 'recent', 'open'),
                           (3, 3, '2020-01-01', 'c@example.com', 'held', 'closed');
SECURITY LABEL FOR customer_vault ON COLUMN tickets.email IS 'pii:contact';
SECURITY LABEL FOR customer_vault ON COLUMN tickets.body IS 'pii';
SELECT customer_vault.set_retention('tickets', 'opened', '1 year', 'anonymize', 'customer_id');
SELECT customer_vault.place_legal_hold('3', 'tax audit') > 0 AS placed;
SELECT * FROM customer_vault.purge_preview(:as_of) WHERE tbl = 'tickets'::regclass;
CALL customer_vault.purge(as_of => :as_of);
SELECT * FROM tickets ORDER BY id;
SELECT to_purge FROM customer_vault.purge_preview(:as_of) WHERE tbl = 'tickets'::regclass;

-- shred: the expired rows' subjects lose their keys
CREATE TABLE accounts (customer_id text PRIMARY KEY, last_seen timestamptz, address customer_vault.encrypted_text);
INSERT INTO accounts VALUES
  ('s-old', '2020-01-01+00', customer_vault.encrypt_for_subject('s-old', 'Old Street 1')),
  ('s-new', '2026-06-10+00', customer_vault.encrypt_for_subject('s-new', 'New Street 2'));
SELECT customer_vault.set_retention('accounts', 'last_seen', '1 year', 'shred', 'customer_id');
CALL customer_vault.purge(as_of => :as_of);
SELECT customer_id, customer_vault.decrypt(address) AS address FROM accounts ORDER BY 1;
SELECT to_purge FROM customer_vault.purge_preview(:as_of) WHERE tbl = 'accounts'::regclass;

-- subject columns named like columns of legal_holds are not confused with them
CREATE TABLE held_by_id (id bigint, created_at timestamptz);
CREATE TABLE held_by_subject (subject text, created_at timestamptz);
INSERT INTO held_by_id VALUES (42, '2020-01-01+00'), (7, '2020-01-01+00');
INSERT INTO held_by_subject VALUES ('42', '2020-01-01+00'), ('7', '2020-01-01+00');
SELECT customer_vault.set_retention('held_by_id', 'created_at', '30 days', 'delete', 'id');
SELECT customer_vault.set_retention('held_by_subject', 'created_at', '30 days', 'delete', 'subject');
SELECT customer_vault.place_legal_hold('42', 'case 42') > 0 AS placed;
SELECT * FROM customer_vault.purge_preview(:as_of) WHERE tbl::text LIKE 'held%' ORDER BY tbl::text;
CALL customer_vault.purge(as_of => :as_of);
SELECT id FROM held_by_id;
SELECT subject FROM held_by_subject;
DROP TABLE held_by_id, held_by_subject;

-- a dropped table's policy is forgotten
DROP TABLE events_ts;
SELECT table_name FROM customer_vault.retention_policies ORDER BY 1;

-- scheduling needs pg_cron in this database
SELECT sqlstate_of($$SELECT customer_vault.schedule_purge()$$);
SELECT sqlstate_of($$SELECT customer_vault.unschedule_purge()$$);
SET client_min_messages = warning;
CREATE EXTENSION pg_cron;
RESET client_min_messages;
SELECT customer_vault.schedule_purge('30 2 * * *') > 0 AS scheduled;
SELECT customer_vault.schedule_purge('45 2 * * *') > 0 AS rescheduled;
SELECT jobname, schedule, command FROM cron.job;
SELECT sqlstate_of($$SELECT customer_vault.schedule_purge('')$$);
SELECT customer_vault.unschedule_purge() AS removed, customer_vault.unschedule_purge() AS again;
SELECT count(*) AS jobs_left FROM cron.job;
DROP EXTENSION pg_cron;

DROP TABLE events_tz, events_date, tickets, accounts;
DROP FUNCTION sqlstate_of(text);
SELECT count(customer_vault.release_legal_hold(id)) AS holds_released
  FROM customer_vault.legal_holds WHERE released_at IS NULL AND (until IS NULL OR until > now());
