-- Every function and procedure of the API with NULL, empty, unknown,
-- out-of-range and infinite arguments (issue 10): each call either gives a
-- clear error with a proper SQLSTATE (never XX000, the class of internal
-- errors) or a documented harmless answer (a STRICT reader's NULL, false),
-- and none changes anything: the contents of every table of the extension
-- are the same before and after each call.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE SCHEMA ba;
CREATE TABLE ba.t (id bigint PRIMARY KEY, email text, created date, note customer_vault.encrypted_text);
CREATE TABLE ba.u (id bigint PRIMARY KEY, created date);
CREATE TABLE ba."q'uote" (id bigint);
CREATE ROLE regress_ba_role;
RESET client_min_messages;
SELECT customer_vault.create_key('ba_key') > 0 AS key_made;
SELECT customer_vault.define_purpose('ba_purpose');
SELECT customer_vault.set_retention('ba.u', 'created', '1 year', 'delete', 'id');
CREATE EXTENSION pg_cron;

-- a digest of every table of the extension (the state a failed call must not change)
CREATE FUNCTION ba.state() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r regclass;
    d text;
    acc text := '';
BEGIN
    FOR r IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'customer_vault'::regnamespace
                AND c.relkind = 'r' ORDER BY c.relname LOOP
        EXECUTE format('SELECT md5(COALESCE(string_agg(t::text, %L ORDER BY t::text), %L)) FROM %s t', ',', '', r)
           INTO d;
        acc := acc || r::text || ':' || d || ';';
    END LOOP;
    RETURN md5(acc || (SELECT COALESCE(string_agg(j::text, ',' ORDER BY jobid), '') FROM cron.job j)
                   || (SELECT COALESCE(string_agg(polname, ','), '') FROM pg_policy WHERE polrelid = 'ba.t'::regclass));
END $$;

CREATE TABLE ba.cases (n serial, fn text, arg_case text, stmt text);
INSERT INTO ba.cases (fn, arg_case, stmt) VALUES
  ('create_key', 'null name', $$SELECT customer_vault.create_key(NULL)$$),
  ('create_key', 'empty name', $$SELECT customer_vault.create_key('')$$),
  ('create_key', 'existing name', $$SELECT customer_vault.create_key('ba_key')$$),
  ('rotate_key', 'null name', $$SELECT customer_vault.rotate_key(NULL)$$),
  ('rotate_key', 'empty name', $$SELECT customer_vault.rotate_key('')$$),
  ('rotate_key', 'unknown name', $$SELECT customer_vault.rotate_key('no_such_key')$$),
  ('encrypt', 'null key', $$SELECT customer_vault.encrypt('x'::text, NULL)$$),
  ('encrypt', 'unknown key', $$SELECT customer_vault.encrypt('x'::text, 'no_such_key')$$),
  ('encrypt', 'bytea, unknown key', $$SELECT customer_vault.encrypt('\x00'::bytea, 'no_such_key')$$),
  ('decrypt', 'null value', $$SELECT customer_vault.decrypt(NULL::customer_vault.encrypted_text)$$),
  ('decrypt', 'malformed value', $$SELECT customer_vault.decrypt('cv1$garbage'::customer_vault.encrypted_text)$$),
  ('key_of', 'null value', $$SELECT customer_vault.key_of(NULL::customer_vault.encrypted_text)$$),
  ('blind_index', 'unknown key', $$SELECT customer_vault.blind_index('x', 'no_such_key')$$),
  ('blind_index', 'null key', $$SELECT customer_vault.blind_index('x', NULL)$$),
  ('encrypt_for_subject', 'null subject', $$SELECT customer_vault.encrypt_for_subject(NULL, 'x')$$),
  ('encrypt_for_subject', 'empty subject', $$SELECT customer_vault.encrypt_for_subject('', 'x')$$),
  ('shred_subject', 'null subject', $$SELECT customer_vault.shred_subject(NULL)$$),
  ('shred_subject', 'empty subject', $$SELECT customer_vault.shred_subject('')$$),
  ('protect_column', 'null table', $$SELECT customer_vault.protect_column(NULL, 'email', 'ba_key')$$),
  ('protect_column', 'null column', $$SELECT customer_vault.protect_column('ba.t', NULL, 'ba_key')$$),
  ('protect_column', 'unknown column', $$SELECT customer_vault.protect_column('ba.t', 'nope', 'ba_key')$$),
  ('protect_column', 'unknown key', $$SELECT customer_vault.protect_column('ba.t', 'email', 'no_such_key')$$),
  ('protect_column', 'the ledger', $$SELECT customer_vault.protect_column('customer_vault.consent_ledger', 'subject', 'ba_key')$$),
  ('protect_column', 'a catalog', $$SELECT customer_vault.protect_column('pg_catalog.pg_description', 'description', 'ba_key')$$),
  ('reencrypt', 'null table', $$CALL customer_vault.reencrypt(NULL, 'note')$$),
  ('reencrypt', 'null column', $$CALL customer_vault.reencrypt('ba.t', NULL)$$),
  ('reencrypt', 'zero batch', $$CALL customer_vault.reencrypt('ba.t', 'note', 0)$$),
  ('reencrypt', 'the key ring', $$CALL customer_vault.reencrypt('customer_vault.data_keys', 'wrapped')$$),
  ('define_purpose', 'null purpose', $$SELECT customer_vault.define_purpose(NULL)$$),
  ('define_purpose', 'empty purpose', $$SELECT customer_vault.define_purpose('')$$),
  ('define_purpose', 'unknown basis', $$SELECT customer_vault.define_purpose('p2', 'whim')$$),
  ('define_purpose', 'null basis', $$SELECT customer_vault.define_purpose('p2', NULL)$$),
  ('define_purpose', 'lifetime -1 year 360 days', $$SELECT customer_vault.define_purpose('p2', 'consent', NULL, '-1 year 360 days')$$),
  ('define_purpose', 'lifetime 1 year -400 days', $$SELECT customer_vault.define_purpose('p2', 'consent', NULL, '1 year -400 days')$$),
  ('define_purpose', 'lifetime 300000 years', $$SELECT customer_vault.define_purpose('p2', 'consent', NULL, '300000 years')$$),
  ('define_purpose', 'lifetime 0', $$SELECT customer_vault.define_purpose('p2', 'consent', NULL, '0')$$),
  ('allow_purpose', 'null role', $$SELECT customer_vault.allow_purpose(NULL, 'ba_purpose')$$),
  ('allow_purpose', 'null purpose', $$SELECT customer_vault.allow_purpose('regress_ba_role', NULL)$$),
  ('allow_purpose', 'unknown purpose', $$SELECT customer_vault.allow_purpose('regress_ba_role', 'nope')$$),
  ('allow_purpose', 'unknown role', $$SELECT customer_vault.allow_purpose('regress_no_such_role', 'ba_purpose')$$),
  ('disallow_purpose', 'null role', $$SELECT customer_vault.disallow_purpose(NULL, 'ba_purpose')$$),
  ('disallow_purpose', 'null purpose', $$SELECT customer_vault.disallow_purpose('regress_ba_role', NULL)$$),
  ('disallow_purpose', 'unknown purpose', $$SELECT customer_vault.disallow_purpose('regress_ba_role', 'nope')$$),
  ('disallow_purpose', 'dropped role oid', $$SELECT customer_vault.disallow_purpose(4294967290::oid::regrole, 'ba_purpose')$$),
  ('grant_consent', 'null subject', $$SELECT customer_vault.grant_consent(NULL, 'ba_purpose', '{"form": "x"}')$$),
  ('grant_consent', 'empty subject', $$SELECT customer_vault.grant_consent('', 'ba_purpose', '{"form": "x"}')$$),
  ('grant_consent', 'unknown purpose', $$SELECT customer_vault.grant_consent('1', 'nope', '{"form": "x"}')$$),
  ('grant_consent', 'null evidence', $$SELECT customer_vault.grant_consent('1', 'ba_purpose', NULL)$$),
  ('grant_consent', 'empty evidence', $$SELECT customer_vault.grant_consent('1', 'ba_purpose', '{}')$$),
  ('grant_consent', 'valid_until infinity', $$SELECT customer_vault.grant_consent('1', 'ba_purpose', '{"form": "x"}', 'infinity')$$),
  ('grant_consent', 'valid_until -infinity', $$SELECT customer_vault.grant_consent('1', 'ba_purpose', '{"form": "x"}', '-infinity')$$),
  ('grant_consent', 'valid_until in the past', $$SELECT customer_vault.grant_consent('1', 'ba_purpose', '{"form": "x"}', now() - interval '1 day')$$),
  ('withdraw_consent', 'null subject', $$SELECT customer_vault.withdraw_consent(NULL, 'ba_purpose')$$),
  ('withdraw_consent', 'unknown purpose', $$SELECT customer_vault.withdraw_consent('1', 'nope')$$),
  ('withdraw_consent', 'array evidence', $$SELECT customer_vault.withdraw_consent('1', 'ba_purpose', '[1]')$$),
  ('has_consent', 'null subject', $$SELECT customer_vault.has_consent(NULL, 'ba_purpose')$$),
  ('may_process', 'null subject', $$SELECT customer_vault.may_process(NULL::text, 'ba_purpose')$$),
  ('may_process', 'unknown purpose', $$SELECT customer_vault.may_process('1', 'nope')$$),
  ('enable_consent_policy', 'null table', $$SELECT customer_vault.enable_consent_policy(NULL, 'id')$$),
  ('enable_consent_policy', 'null column', $$SELECT customer_vault.enable_consent_policy('ba.t', NULL)$$),
  ('enable_consent_policy', 'unknown column', $$SELECT customer_vault.enable_consent_policy('ba.t', 'nope')$$),
  ('enable_consent_policy', 'unknown purpose', $$SELECT customer_vault.enable_consent_policy('ba.t', 'id', 'nope')$$),
  ('enable_consent_policy', 'the ledger', $$SELECT customer_vault.enable_consent_policy('customer_vault.consent_ledger', 'subject')$$),
  ('enable_consent_policy', 'the purge log', $$SELECT customer_vault.enable_consent_policy('customer_vault.purge_log_entries', 'tbl')$$),
  ('set_retention', 'null table', $$SELECT customer_vault.set_retention(NULL, 'created', '1 year')$$),
  ('set_retention', 'null keep', $$SELECT customer_vault.set_retention('ba.t', 'created', NULL)$$),
  ('set_retention', 'keep -1 year 360 days 1 hour', $$SELECT customer_vault.set_retention('ba.t', 'created', '-1 year 360 days 1 hour')$$),
  ('set_retention', 'keep 1 year -400 days', $$SELECT customer_vault.set_retention('ba.t', 'created', '1 year -400 days')$$),
  ('set_retention', 'keep 1 day -25 hours', $$SELECT customer_vault.set_retention('ba.t', 'created', '1 day -25 hours')$$),
  ('set_retention', 'keep 300000 years', $$SELECT customer_vault.set_retention('ba.t', 'created', '300000 years')$$),
  ('set_retention', 'keep 0', $$SELECT customer_vault.set_retention('ba.t', 'created', '0')$$),
  ('set_retention', 'unknown action', $$SELECT customer_vault.set_retention('ba.t', 'created', '1 year', 'archive')$$),
  ('set_retention', 'null action', $$SELECT customer_vault.set_retention('ba.t', 'created', '1 year', NULL)$$),
  ('set_retention', 'the ledger', $$SELECT customer_vault.set_retention('customer_vault.consent_ledger', 'recorded_at', '1 year')$$),
  ('set_retention', 'the hold entries', $$SELECT customer_vault.set_retention('customer_vault.legal_hold_events', 'recorded_at', '1 day')$$),
  ('set_retention', 'a catalog', $$SELECT customer_vault.set_retention('pg_catalog.pg_class', 'relname', '1 day')$$),
  ('place_legal_hold', 'null subject', $$SELECT customer_vault.place_legal_hold(NULL, 'case')$$),
  ('place_legal_hold', 'empty subject', $$SELECT customer_vault.place_legal_hold('', 'case')$$),
  ('place_legal_hold', 'null reason', $$SELECT customer_vault.place_legal_hold('1', NULL)$$),
  ('place_legal_hold', 'blank reason', $$SELECT customer_vault.place_legal_hold('1', '  ')$$),
  ('place_legal_hold', 'until infinity', $$SELECT customer_vault.place_legal_hold('1', 'case', 'infinity')$$),
  ('place_legal_hold', 'until in the past', $$SELECT customer_vault.place_legal_hold('1', 'case', now() - interval '1 day')$$),
  ('place_legal_hold', 'not a subject id', $$SELECT customer_vault.place_legal_hold('42x', 'case')$$),
  ('citus_check_policies', 'a quote in the table name', $$SELECT * FROM customer_vault.citus_check_policies('ba."q''uote"')$$),
  ('citus_check_policies', 'no Citus', $$SELECT * FROM customer_vault.citus_check_policies('ba.u')$$),
  ('place_legal_hold', 'subject of 256 bytes', $$SELECT customer_vault.place_legal_hold(repeat('7', 256), 'case')$$),
  ('place_legal_hold', 'subject of 3000 bytes', $$SELECT customer_vault.place_legal_hold(repeat('7', 3000), 'case')$$),
  ('release_legal_hold', 'null id', $$SELECT customer_vault.release_legal_hold(NULL)$$),
  ('release_legal_hold', 'unknown id', $$SELECT customer_vault.release_legal_hold(-1)$$),
  ('purge_preview', 'as_of infinity', $$SELECT * FROM customer_vault.purge_preview('infinity')$$),
  ('purge_preview', 'as_of -infinity', $$SELECT * FROM customer_vault.purge_preview('-infinity')$$),
  ('purge_preview', 'as_of in the future', $$SELECT * FROM customer_vault.purge_preview(now() + interval '1 day')$$),
  ('purge', 'null dry_run', $$CALL customer_vault.purge(NULL)$$),
  ('purge', 'null batch', $$CALL customer_vault.purge(false, NULL)$$),
  ('purge', 'zero batch', $$CALL customer_vault.purge(false, 0)$$),
  ('purge', 'as_of infinity', $$CALL customer_vault.purge(false, 100, 'infinity')$$),
  ('purge', 'as_of in the future', $$CALL customer_vault.purge(false, 100, now() + interval '1 day')$$),
  ('schedule_purge', 'null', $$SELECT customer_vault.schedule_purge(NULL)$$),
  ('schedule_purge', 'empty', $$SELECT customer_vault.schedule_purge('')$$),
  ('schedule_purge', 'seven fields', $$SELECT customer_vault.schedule_purge('* * * * * * *')$$),
  ('schedule_purge', 'six fields', $$SELECT customer_vault.schedule_purge('0 15 3 * * *')$$),
  ('schedule_purge', 'minute 60', $$SELECT customer_vault.schedule_purge('60 3 * * *')$$),
  ('schedule_purge', 'hour 24', $$SELECT customer_vault.schedule_purge('0 24 * * *')$$),
  ('schedule_purge', 'day 0', $$SELECT customer_vault.schedule_purge('0 3 0 * *')$$),
  ('schedule_purge', 'step 0', $$SELECT customer_vault.schedule_purge('*/0 * * * *')$$),
  ('schedule_purge', 'words', $$SELECT customer_vault.schedule_purge('every night')$$),
  ('schedule_purge', '0 seconds', $$SELECT customer_vault.schedule_purge('0 seconds')$$);

CREATE TABLE ba.outcomes (n int, fn text, arg_case text, outcome text, unchanged boolean);
DO $$
DECLARE
    c record;
    before text;
    st text;
    msg text;
BEGIN
    FOR c IN SELECT * FROM ba.cases ORDER BY n LOOP
        before := ba.state();
        st := 'ok';
        BEGIN
            EXECUTE c.stmt;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
            st := st || ' ' || msg;
        END;
        INSERT INTO ba.outcomes VALUES (c.n, c.fn, c.arg_case, st, ba.state() = before);
    END LOOP;
END $$;
SELECT fn, arg_case, outcome, unchanged FROM ba.outcomes ORDER BY n;
-- the summary the issue asks for: no internal error, no change, every function
SELECT count(*) FILTER (WHERE outcome LIKE 'XX%') AS internal_errors,
       count(*) FILTER (WHERE NOT unchanged) AS changed_something,
       count(DISTINCT fn) AS functions
  FROM ba.outcomes;
-- the harmless answers are readers' answers only
SELECT fn, arg_case FROM ba.outcomes WHERE outcome = 'ok' ORDER BY n;
-- and the valid schedules pg_cron 1.4 runs pass the check
SELECT customer_vault.schedule_purge(s) > 0 AS accepted, s
  FROM unnest(ARRAY['15 3 * * *', '*/5 * * * *', '0 0 1 jan *', '0 9 * * mon-fri', '@daily', '0,30 8-18 * * 1-5']) s;
SELECT customer_vault.unschedule_purge();

SET client_min_messages = warning;
DROP EXTENSION pg_cron;
DELETE FROM customer_vault.retention_policies WHERE schema_name = 'ba';
DROP SCHEMA ba CASCADE;
DROP ROLE regress_ba_role;
RESET client_min_messages;
