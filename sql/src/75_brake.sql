--@ schema
---------------------------------------------------------------------------
-- The exfiltration brake and stale accounts (src/brake.c): per-role decrypt
-- limits are settings (customer_vault.decrypt_limit, decrypt_rate_limit) set
-- per role by set_decrypt_limit(); login and decrypt times per role live in
-- shared memory (persisted by the server); locks of stale roles are recorded
-- here, append-only.
---------------------------------------------------------------------------
CREATE TABLE customer_vault.role_lock_events (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp(),
    role_id oid NOT NULL,
    role_name name NOT NULL,
    last_seen timestamptz,
    idle interval NOT NULL,
    reason text NOT NULL,
    locked_by oid NOT NULL,
    locked_by_name name NOT NULL
);
COMMENT ON TABLE customer_vault.role_lock_events IS
    'append-only: every role set NOLOGIN by lock_stale_roles(), when, why and by whom (the session user)';
SELECT pg_catalog.pg_extension_config_dump('customer_vault.role_lock_events', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.role_lock_events_id_seq', '');

--@ code
CREATE OR REPLACE FUNCTION customer_vault._role_lock_events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
        MESSAGE = pg_catalog.format('role_lock_events is append-only: %s is not allowed', TG_OP),
        HINT = 'Locks are recorded by customer_vault.lock_stale_roles(); unlock a role with ALTER ROLE ... LOGIN.';
END
$$;
COMMENT ON FUNCTION customer_vault._role_lock_events_append_only() IS
    'internal: refuses UPDATE, DELETE and TRUNCATE of role_lock_events';
CREATE OR REPLACE TRIGGER role_lock_events_no_update_delete BEFORE UPDATE OR DELETE ON customer_vault.role_lock_events
    FOR EACH ROW EXECUTE FUNCTION customer_vault._role_lock_events_append_only();
CREATE OR REPLACE TRIGGER role_lock_events_no_truncate BEFORE TRUNCATE ON customer_vault.role_lock_events
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._role_lock_events_append_only();
ALTER TABLE customer_vault.role_lock_events ENABLE ALWAYS TRIGGER role_lock_events_no_update_delete;
ALTER TABLE customer_vault.role_lock_events ENABLE ALWAYS TRIGGER role_lock_events_no_truncate;

-- ---------- decrypt limits ----------

-- SECURITY DEFINER (the extension's owner, a superuser): the limits are
-- superuser-only settings, so a role can neither raise nor reset its own; the
-- admin sets them here, for one role at a time, and nothing else.
CREATE OR REPLACE FUNCTION customer_vault.set_decrypt_limit(role regrole, per_statement integer,
                                                     per_minute integer DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rname name;
    login boolean;
BEGIN
    PERFORM customer_vault._coordinator_only('set_decrypt_limit()');
    IF role IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'role must not be null';
    END IF;
    SELECT r.rolname, r.rolcanlogin INTO rname, login FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) role::oid;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object', MESSAGE = 'role does not exist';
    END IF;
    -- PostgreSQL applies the settings of the login role only: a limit on a
    -- group (NOLOGIN) role would bind none of its members, so it is refused
    -- (clearing one, with NULLs, stays allowed)
    IF NOT login AND (per_statement IS NOT NULL OR per_minute IS NOT NULL) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('role %I cannot log in: a decrypt limit on it would bind none of its members', rname),
            DETAIL = 'PostgreSQL applies the settings of the login role only, not those of the roles it is a member of.',
            HINT = 'Set the limits on each login role, for example every member of the group.';
    END IF;
    IF per_statement OPERATOR(pg_catalog.<) 0 OR per_minute OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'decrypt limits must be zero (no limit) or positive',
            HINT = 'Pass NULL to go back to the server''s default.';
    END IF;
    IF per_statement IS NULL THEN
        EXECUTE pg_catalog.format('ALTER ROLE %I RESET customer_vault.decrypt_limit', rname);
    ELSE
        EXECUTE pg_catalog.format('ALTER ROLE %I SET customer_vault.decrypt_limit = %s', rname, per_statement);
    END IF;
    IF per_minute IS NULL THEN
        EXECUTE pg_catalog.format('ALTER ROLE %I RESET customer_vault.decrypt_rate_limit', rname);
    ELSE
        EXECUTE pg_catalog.format('ALTER ROLE %I SET customer_vault.decrypt_rate_limit = %s', rname, per_minute);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault.set_decrypt_limit(regrole, integer, integer) IS
    'sets the most values one statement (per_statement) and one minute over all sessions (per_minute) may decrypt for a login role; 0 = no limit, NULL = the server default; takes effect at the role''s next login';

CREATE OR REPLACE VIEW customer_vault.decrypt_limits AS
SELECT r.rolname AS role,
       (SELECT pg_catalog.split_part(c, '=', 2)::integer FROM pg_catalog.unnest(s.setconfig) c
         WHERE c LIKE 'customer\_vault.decrypt\_limit=%') AS per_statement,
       (SELECT pg_catalog.split_part(c, '=', 2)::integer FROM pg_catalog.unnest(s.setconfig) c
         WHERE c LIKE 'customer\_vault.decrypt\_rate\_limit=%') AS per_minute
  FROM pg_catalog.pg_db_role_setting s
  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) s.setrole
 WHERE s.setdatabase OPERATOR(pg_catalog.=) 0
   AND r.rolcanlogin
   AND EXISTS (SELECT 1 FROM pg_catalog.unnest(s.setconfig) c WHERE c LIKE 'customer\_vault.decrypt\_%');
COMMENT ON VIEW customer_vault.decrypt_limits IS
    'decrypt limits set per login role (set_decrypt_limit or ALTER ROLE ... SET); roles not listed have the server default; a setting on a role that cannot log in binds no one and is not listed';

-- ---------- role activity ----------

CREATE OR REPLACE FUNCTION customer_vault._role_activity()
    RETURNS TABLE(role_id oid, noticed timestamptz, last_login timestamptz, last_decrypt timestamptz,
                  refused bigint, last_refused timestamptz)
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'cv_role_activity';
COMMENT ON FUNCTION customer_vault._role_activity() IS
    'internal: per tracked role the time it was first noticed, its last login, last decrypt and brake refusals (shared memory)';

CREATE OR REPLACE FUNCTION customer_vault._activity_tracking_since() RETURNS timestamptz
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'cv_activity_tracking_since';
COMMENT ON FUNCTION customer_vault._activity_tracking_since() IS
    'internal: when role activity tracking began (the first server start without its file)';

CREATE OR REPLACE FUNCTION customer_vault._activity_notice(roles oid[]) RETURNS integer
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_activity_notice';
COMMENT ON FUNCTION customer_vault._activity_notice(oid[]) IS
    'internal: starts tracking roles not tracked yet (a role never seen is idle from then on); returns how many were new';

CREATE OR REPLACE FUNCTION customer_vault._activity_shift(by interval) RETURNS void
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_activity_shift';
COMMENT ON FUNCTION customer_vault._activity_shift(interval) IS
    'internal, superuser only: moves every tracked time back by whole days (tests age role activity with it)';

CREATE OR REPLACE FUNCTION customer_vault._activity_save() RETURNS void
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_activity_save_now';
COMMENT ON FUNCTION customer_vault._activity_save() IS
    'internal, superuser only: writes the role activity file now (it is written at shutdown and every 5 minutes)';

CREATE OR REPLACE FUNCTION customer_vault._lock_exempt_roles() RETURNS name[]
    LANGUAGE C STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_lock_exempt_role_names';
COMMENT ON FUNCTION customer_vault._lock_exempt_roles() IS
    'internal: customer_vault.lock_exempt_roles as an array of role names';

CREATE OR REPLACE VIEW customer_vault.role_activity AS
SELECT r.rolname AS role, a.last_login, a.last_decrypt,
       COALESCE(a.refused, 0) AS decrypt_refusals, a.last_refused
  FROM pg_catalog.pg_roles r
  LEFT JOIN customer_vault._role_activity() a ON a.role_id OPERATOR(pg_catalog.=) r.oid
 WHERE r.rolcanlogin OR a.role_id IS NOT NULL;
COMMENT ON VIEW customer_vault.role_activity IS
    'per login role (and every role seen decrypting) its last successful login, last decrypt, and the statements the decrypt brake stopped';

-- ---------- stale roles ----------

-- the idle period of stale_roles and lock_stale_roles: positive, at least a day
CREATE OR REPLACE FUNCTION customer_vault._check_idle(idle interval) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM customer_vault._check_period(idle, 'idle');
    IF idle OPERATOR(pg_catalog.<) interval '1 day' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'idle must be at least one day',
            HINT = 'For example ''90 days''.';
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._check_idle(interval) IS
    'internal: refuses an idle period that is not positive in every field, under a day or over 200 years';

-- SECURITY DEFINER: reads the role activity in shared memory and notes roles
-- not tracked yet; what it answers is visible to its callers (admin, auditor)
-- through pg_roles and has_*_privilege anyway.
CREATE OR REPLACE FUNCTION customer_vault.stale_roles(idle interval DEFAULT '90 days')
    RETURNS TABLE(role name, last_seen timestamptz, can_decrypt boolean)
    LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
    masked regrole := pg_catalog.to_regrole('customer_vault_masked_reader');
BEGIN
    PERFORM customer_vault._check_idle(idle);
    cutoff := pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) idle;
    PERFORM customer_vault._activity_notice(ARRAY(SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolcanlogin));
    RETURN QUERY
    WITH tables AS (
        SELECT DISTINCT p.relid::oid AS relid FROM customer_vault.protected_columns p
        UNION
        SELECT l.objoid FROM pg_catalog.pg_seclabel l
         WHERE l.provider OPERATOR(pg_catalog.=) 'customer_vault'
           AND l.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
           AND l.objsubid OPERATOR(pg_catalog.>) 0
    ), logins AS (
        SELECT r.oid, r.rolname,
               r.rolsuper OR pg_catalog.pg_has_role(r.oid, 'customer_vault_reader', 'MEMBER') AS decrypts,
               r.rolsuper
               OR (masked IS NOT NULL AND pg_catalog.pg_has_role(r.oid, masked::oid, 'MEMBER'))
               OR EXISTS (SELECT 1 FROM tables t
                           WHERE pg_catalog.has_any_column_privilege(r.oid, t.relid, 'SELECT')) AS reads
          FROM pg_catalog.pg_roles r
         WHERE r.rolcanlogin
    )
    SELECT l.rolname,
           CASE WHEN a.last_login IS NULL THEN a.last_decrypt
                WHEN a.last_decrypt IS NULL THEN a.last_login
                ELSE pg_catalog.timestamptz_larger(a.last_login, a.last_decrypt) END,
           l.decrypts
      FROM logins l
      LEFT JOIN customer_vault._role_activity() a ON a.role_id OPERATOR(pg_catalog.=) l.oid
     WHERE (l.decrypts OR l.reads)
       -- a role with a session open now is not idle (a pooled connection
       -- logged in long ago must not be locked out at its next reconnect)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity s
                        WHERE s.usesysid OPERATOR(pg_catalog.=) l.oid)
       AND (a.last_login IS NULL OR a.last_login OPERATOR(pg_catalog.<) cutoff)
       AND (a.last_decrypt IS NULL OR a.last_decrypt OPERATOR(pg_catalog.<) cutoff)
       -- never seen: idle since it was first noticed
       AND COALESCE(a.last_login, a.last_decrypt, a.noticed, pg_catalog.statement_timestamp())
           OPERATOR(pg_catalog.<) cutoff
     ORDER BY l.rolname;
END
$$;
COMMENT ON FUNCTION customer_vault.stale_roles(interval) IS
    'login roles that can reach protected data (superuser, reader or masked reader membership, SELECT on a protected or PII-labelled table), have no session open, and have neither logged in nor decrypted within idle (a role never seen: idle since it was first noticed)';

-- SECURITY DEFINER (the extension's owner): sets NOLOGIN, which the admin
-- cannot do otherwise, but only on roles stale_roles() returns, never on a
-- superuser, the bootstrap superuser, the calling roles, the extension's
-- owner or roles, or a role in customer_vault.lock_exempt_roles.
CREATE OR REPLACE FUNCTION customer_vault._lock_stale_roles(idle interval, dry_run boolean)
    RETURNS SETOF name
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
DECLARE
    s record;
    r record;
    exempt name[] := customer_vault._lock_exempt_roles();
    owner oid;
    -- the role the caller acts as (SET ROLE), derived here, never passed in:
    -- the role GUC survives SECURITY DEFINER; 'none' = no SET ROLE
    acting name := pg_catalog.current_setting('role');
BEGIN
    PERFORM customer_vault._coordinator_only('lock_stale_roles()');
    IF acting OPERATOR(pg_catalog.=) 'none' THEN
        acting := SESSION_USER;
    END IF;
    IF dry_run IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'dry_run must not be null';
    END IF;
    PERFORM customer_vault._check_idle(idle);
    SELECT e.extowner INTO owner FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'customer_vault';
    FOR s IN SELECT * FROM customer_vault.stale_roles(idle) LOOP
        SELECT a.oid, a.rolname, a.rolsuper, a.rolcanlogin INTO r
          FROM pg_catalog.pg_authid a WHERE a.rolname OPERATOR(pg_catalog.=) s.role;
        CONTINUE WHEN NOT FOUND OR r.rolsuper OR NOT r.rolcanlogin
            OR r.oid OPERATOR(pg_catalog.=) 10
            OR r.rolname OPERATOR(pg_catalog.=) acting
            OR r.rolname OPERATOR(pg_catalog.=) SESSION_USER
            OR r.oid OPERATOR(pg_catalog.=) owner
            OR r.rolname OPERATOR(pg_catalog.=) ANY (exempt)
            OR r.rolname::text LIKE 'customer\_vault\_%';
        IF NOT dry_run THEN
            EXECUTE pg_catalog.format('ALTER ROLE %I NOLOGIN', r.rolname);
            INSERT INTO customer_vault.role_lock_events (role_id, role_name, last_seen, idle, reason, locked_by, locked_by_name)
            VALUES (r.oid, r.rolname, s.last_seen, idle,
                    CASE WHEN s.last_seen IS NULL
                         THEN pg_catalog.format('never seen since tracking began; idle longer than %s', idle)
                         ELSE pg_catalog.format('no login or decrypt since %s; idle longer than %s', s.last_seen, idle) END,
                    (SELECT a.oid FROM pg_catalog.pg_authid a WHERE a.rolname OPERATOR(pg_catalog.=) SESSION_USER),
                    SESSION_USER);
            RAISE LOG 'customer_vault: role % set NOLOGIN by lock_stale_roles (idle %)', pg_catalog.quote_ident(r.rolname), idle;
        END IF;
        RETURN NEXT r.rolname;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._lock_stale_roles(interval, boolean) IS
    'internal: the work of lock_stale_roles; the session user and the role it acts as (SET ROLE) are never locked';

CREATE OR REPLACE FUNCTION customer_vault.lock_stale_roles(idle interval DEFAULT '90 days', dry_run boolean DEFAULT true)
    RETURNS SETOF name
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM customer_vault._lock_stale_roles(idle, dry_run)
$$;
COMMENT ON FUNCTION customer_vault.lock_stale_roles(interval, boolean) IS
    'sets NOLOGIN on the roles stale_roles(idle) returns, except superusers, the caller, the extension''s roles and customer_vault.lock_exempt_roles; records each in role_lock_events; dry_run (the default) only lists them';

CREATE OR REPLACE FUNCTION customer_vault.schedule_lock_stale_roles(idle interval DEFAULT '90 days',
                                                             schedule text DEFAULT '30 4 * * *')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint;
BEGIN
    PERFORM customer_vault._require_pg_cron();
    PERFORM customer_vault._check_idle(idle);
    IF schedule IS NULL OR pg_catalog.btrim(schedule) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'schedule must not be empty';
    END IF;
    PERFORM customer_vault._check_cron_schedule(schedule);
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
       INTO job USING 'customer_vault_lock_stale_roles', schedule,
                      pg_catalog.format('SELECT customer_vault.lock_stale_roles(%L::interval, false)', idle);
    RETURN job;
END
$$;
COMMENT ON FUNCTION customer_vault.schedule_lock_stale_roles(interval, text) IS
    'creates or replaces the pg_cron job customer_vault_lock_stale_roles running lock_stale_roles(idle, false); returns its id';

CREATE OR REPLACE FUNCTION customer_vault.unschedule_lock_stale_roles() RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    done boolean;
BEGIN
    PERFORM customer_vault._require_pg_cron();
    IF NOT EXISTS (SELECT 1 FROM cron.job WHERE jobname = 'customer_vault_lock_stale_roles' AND username = current_user) THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT cron.unschedule($1)' INTO done USING 'customer_vault_lock_stale_roles';
    RETURN done;
END
$$;
COMMENT ON FUNCTION customer_vault.unschedule_lock_stale_roles() IS
    'removes the pg_cron job customer_vault_lock_stale_roles; false if there was none';

--@ code
-- Privileges of this concern: the admin sets limits, reads activity, and
-- locks (or schedules the locking of) stale roles; the auditor reads the
-- activity, the limits, stale roles and the lock log.  _role_activity is what
-- the role_activity view reads (functions in a view run with the reader's
-- EXECUTE right), so both get it.
GRANT EXECUTE ON FUNCTION
    customer_vault.set_decrypt_limit(regrole, integer, integer),
    customer_vault._role_activity(),
    customer_vault.stale_roles(interval),
    customer_vault.lock_stale_roles(interval, boolean),
    customer_vault._lock_stale_roles(interval, boolean),
    customer_vault.schedule_lock_stale_roles(interval, text),
    customer_vault.unschedule_lock_stale_roles(),
    customer_vault._check_idle(interval)
    TO customer_vault_admin;
GRANT SELECT ON customer_vault.role_activity, customer_vault.decrypt_limits, customer_vault.role_lock_events
    TO customer_vault_admin;
GRANT EXECUTE ON FUNCTION customer_vault._role_activity(), customer_vault.stale_roles(interval)
    TO customer_vault_auditor;
GRANT SELECT ON customer_vault.role_activity, customer_vault.decrypt_limits, customer_vault.role_lock_events
    TO customer_vault_auditor;
