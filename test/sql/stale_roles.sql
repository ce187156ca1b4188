-- Stale accounts (issue 13): login roles that can reach protected data and
-- have neither logged in nor decrypted within the idle period are listed by
-- stale_roles() and set NOLOGIN by lock_stale_roles() (never superusers, the
-- caller, exempt roles or the extension's roles; a dry run changes nothing).
-- Time is faked with _activity_shift() (superuser only), which moves every
-- tracked time back.  Login tracking across a restart: TAP 031.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_stale_reader LOGIN IN ROLE customer_vault_reader;    -- never seen
CREATE ROLE regress_stale_exempt LOGIN IN ROLE customer_vault_reader;    -- never seen, exempt
CREATE ROLE regress_stale_seller LOGIN;                                  -- SELECT on a labelled table
CREATE ROLE regress_stale_clerk LOGIN;                                   -- SELECT on a protected table
CREATE ROLE regress_stale_plain LOGIN;                                   -- reaches nothing
CREATE ROLE regress_stale_fresh LOGIN IN ROLE customer_vault_reader;     -- logs in after the shift
CREATE ROLE regress_stale_user LOGIN IN ROLE customer_vault_reader;      -- decrypts after the shift
CREATE ROLE regress_stale_nologin IN ROLE customer_vault_reader;         -- cannot log in anyway
CREATE ROLE regress_stale_super LOGIN SUPERUSER;
CREATE ROLE regress_stale_admin LOGIN IN ROLE customer_vault_admin;
CREATE ROLE regress_stale_auditor LOGIN IN ROLE customer_vault_auditor;
RESET client_min_messages;
CREATE TABLE stale_labelled (id int, email text);
SECURITY LABEL FOR customer_vault ON COLUMN stale_labelled.email IS 'pii:contact';
GRANT SELECT (id, email) ON stale_labelled TO regress_stale_seller;
-- the admin reaches data too (so it would be stale), but never locks itself
GRANT SELECT ON stale_labelled TO regress_stale_admin;
SELECT customer_vault.create_key('stale_key') > 0 AS key_made;
CREATE TABLE stale_protected (id int PRIMARY KEY, email text);
INSERT INTO stale_protected VALUES (1, 'a@example.com');
SELECT customer_vault.protect_column('stale_protected', 'email', 'stale_key', 'id');
GRANT SELECT ON stale_protected TO regress_stale_clerk, customer_vault_reader;

-- wrong idle periods
SELECT * FROM customer_vault.stale_roles('1 hour');
SELECT * FROM customer_vault.stale_roles('-90 days');
SELECT * FROM customer_vault.stale_roles('1 month -40 days');
SELECT * FROM customer_vault.stale_roles('1000 years');
SELECT count(*) AS null_idle FROM customer_vault.stale_roles(NULL);
SELECT * FROM customer_vault.lock_stale_roles(NULL);
SELECT * FROM customer_vault.lock_stale_roles('90 days', NULL);
SELECT * FROM customer_vault._activity_shift('1 hour');
SELECT * FROM customer_vault._activity_shift('-1 day');

-- a role logs in; nobody is stale yet (roles never seen are idle only from
-- the time they were first noticed, which is now)
\c - regress_stale_admin
\c - postgres
\set VERBOSITY terse
SELECT * FROM customer_vault.stale_roles('1 day') WHERE role LIKE 'regress_stale%';
SELECT role, last_login IS NOT NULL AS logged_in, last_decrypt IS NOT NULL AS decrypted
  FROM customer_vault.role_activity WHERE role LIKE 'regress_stale%' ORDER BY 1;

-- 100 days pass; then one role logs in and one decrypts (through SET ROLE)
SELECT customer_vault._activity_shift('100 days');
\c - regress_stale_fresh
\c - postgres
\set VERBOSITY terse
SET ROLE regress_stale_user;
SELECT email FROM stale_protected_decrypted;
RESET ROLE;
SELECT role, last_login IS NOT NULL AS logged_in, last_login > now() - interval '1 hour' AS login_recent,
       last_decrypt > now() - interval '1 hour' AS decrypt_recent
  FROM customer_vault.role_activity WHERE role LIKE 'regress_stale%' ORDER BY 1;
SELECT role, last_seen IS NULL AS never_seen, last_seen < now() - interval '99 days' AS seen_long_ago, can_decrypt
  FROM customer_vault.stale_roles('90 days') WHERE role LIKE 'regress_stale%' ORDER BY 1;
SELECT count(*) AS stale_at_200_days FROM customer_vault.stale_roles('200 days') WHERE role LIKE 'regress_stale%';

-- the exempt list is a superuser setting
SET customer_vault.lock_exempt_roles = 'regress_stale_exempt, "no such role"';
SET customer_vault.lock_exempt_roles = 'a,,b';
SET ROLE regress_stale_admin;
SET customer_vault.lock_exempt_roles = '';
-- a dry run (the default) lists without locking
SELECT * FROM customer_vault.lock_stale_roles('90 days') AS r WHERE r LIKE 'regress_stale%' ORDER BY 1;
-- the internal helper takes no caller: the role the admin acts as (stale
-- itself) is never listed, whichever way it is called
SELECT count(*) AS self_listed FROM customer_vault._lock_stale_roles('90 days', true) AS r WHERE r = 'regress_stale_admin';
SELECT * FROM customer_vault._lock_stale_roles('90 days', true, 0);
RESET ROLE;
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'regress_stale%' ORDER BY 1;
SELECT count(*) AS events FROM customer_vault.role_lock_events;
-- the auditor sees stale roles but cannot lock
SET ROLE regress_stale_auditor;
SELECT count(*) > 0 AS auditor_sees FROM customer_vault.stale_roles('90 days');
SELECT * FROM customer_vault.lock_stale_roles('90 days', false);
SELECT * FROM customer_vault._lock_stale_roles('90 days', false);
RESET ROLE;
-- the admin locks them: not the exempt one, not the superuser, not itself
SET ROLE regress_stale_admin;
SELECT * FROM customer_vault.lock_stale_roles('90 days', false) AS r WHERE r LIKE 'regress_stale%' ORDER BY 1;
RESET ROLE;
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'regress_stale%' ORDER BY 1;
SELECT role_name, last_seen IS NULL AS never_seen, idle, reason LIKE '%idle longer than%' AS has_reason,
       locked_by_name, at > now() - interval '1 hour' AS recent
  FROM customer_vault.role_lock_events WHERE role_name LIKE 'regress_stale%' ORDER BY role_name;
-- locked roles are no longer listed (they cannot log in); a second run locks nothing
SELECT role, last_seen IS NULL AS never_seen, can_decrypt
  FROM customer_vault.stale_roles('90 days') WHERE role LIKE 'regress_stale%' ORDER BY 1;
SET ROLE regress_stale_admin;
SELECT count(*) AS locked_again FROM customer_vault.lock_stale_roles('90 days', false);
RESET ROLE;
-- the lock log is append-only, for the superuser too
UPDATE customer_vault.role_lock_events SET reason = 'x';
DELETE FROM customer_vault.role_lock_events;
TRUNCATE customer_vault.role_lock_events;
SET ROLE regress_stale_admin;
INSERT INTO customer_vault.role_lock_events (role_id, role_name, idle, reason, locked_by, locked_by_name)
VALUES (1, 'x', '1 day', 'x', 1, 'x');
RESET ROLE;
-- the shift is for the superuser only
SET ROLE regress_stale_admin;
SELECT customer_vault._activity_shift('1 day');
RESET ROLE;
SET ROLE regress_stale_super;
SELECT customer_vault._activity_shift('1 day');
RESET ROLE;

-- scheduling with pg_cron: refused without it, a job with it
SET ROLE regress_stale_admin;
SELECT customer_vault.schedule_lock_stale_roles('90 days', '30 4 * * *');
SELECT customer_vault.unschedule_lock_stale_roles();
RESET ROLE;
SET client_min_messages = warning;
CREATE EXTENSION pg_cron;
RESET client_min_messages;
GRANT USAGE ON SCHEMA cron TO regress_stale_admin;
SET ROLE regress_stale_admin;
SELECT customer_vault.schedule_lock_stale_roles('90 days', 'every night');
SELECT customer_vault.schedule_lock_stale_roles('1 hour');
SELECT customer_vault.schedule_lock_stale_roles('120 days', '30 4 * * *') > 0 AS scheduled;
SELECT jobname, schedule, command, username FROM cron.job WHERE jobname = 'customer_vault_lock_stale_roles';
SELECT customer_vault.unschedule_lock_stale_roles() AS unscheduled;
SELECT customer_vault.unschedule_lock_stale_roles() AS again;
RESET ROLE;
DROP EXTENSION pg_cron;

-- a role with a session open is not stale, however long ago it logged in
\c - regress_stale_super
\set VERBOSITY terse
SELECT customer_vault._activity_shift('100 days');
SELECT role_activity.role, last_login < now() - interval '99 days' AS login_long_ago
  FROM customer_vault.role_activity WHERE role = 'regress_stale_super';
SELECT count(*) AS super_stale_while_connected FROM customer_vault.stale_roles('90 days') WHERE role = 'regress_stale_super';
\c - postgres
\set VERBOSITY terse
-- (the backend of the closed session may take a moment to exit)
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE usename = 'regress_stale_super');
        PERFORM pg_sleep(0.05);
        PERFORM pg_stat_clear_snapshot();
    END LOOP;
END
$$;
SELECT count(*) AS super_stale_once_gone FROM customer_vault.stale_roles('90 days') WHERE role = 'regress_stale_super';

-- a dropped role's history is forgotten (a role that gets its OID later starts clean)
CREATE ROLE regress_stale_dropped LOGIN;
\c - regress_stale_dropped
\c - postgres
\set VERBOSITY terse
SELECT oid AS dropped_oid FROM pg_roles WHERE rolname = 'regress_stale_dropped' \gset
SELECT count(*) AS tracked_before FROM customer_vault._role_activity() WHERE role_id = :dropped_oid;
DROP ROLE regress_stale_dropped;
SELECT count(*) >= 0 AS checked FROM customer_vault.stale_roles();
SELECT count(*) AS tracked_after FROM customer_vault._role_activity() WHERE role_id = :dropped_oid;

DROP TABLE stale_labelled, stale_protected CASCADE;
DROP ROLE regress_stale_reader, regress_stale_exempt, regress_stale_seller, regress_stale_clerk,
          regress_stale_plain, regress_stale_fresh, regress_stale_user, regress_stale_nologin,
          regress_stale_super, regress_stale_admin, regress_stale_auditor;
