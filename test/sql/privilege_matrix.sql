-- The privilege matrix: for each role (none, writer, reader, auditor, admin,
-- masked reader, and an ordinary table owner with no vault role), every way to obtain
-- plaintext, compute a blind index for a guess, or change what readers run,
-- and what it gives.  ok = it worked; denied = 42501; otherwise the SQLSTATE.
-- Each probe runs in a subtransaction that is rolled back, so none changes
-- the next one.  Only the reader may decrypt or index a guess; nobody but the
-- extension's owner defines protect triggers, the registry or decrypted views.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_pm_none;
CREATE ROLE regress_pm_writer IN ROLE customer_vault_writer;
CREATE ROLE regress_pm_reader IN ROLE customer_vault_reader;
CREATE ROLE regress_pm_auditor IN ROLE customer_vault_auditor;
CREATE ROLE regress_pm_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_pm_owner;
CREATE ROLE regress_pm_masked IN ROLE customer_vault_masked_reader;
RESET client_min_messages;
SELECT customer_vault.create_key('pm_key') > 0 AS created;
SELECT customer_vault.define_purpose('pm_news');

-- a protected table owned by an ordinary role, and an explicit one
CREATE TABLE pm_t (id int PRIMARY KEY, email text);
ALTER TABLE pm_t OWNER TO regress_pm_owner;
INSERT INTO pm_t VALUES (1, 'pm1@example.com'), (2, 'pm2@example.com');
SELECT customer_vault.protect_column('pm_t', 'email', 'pm_key', 'id', 'email_bidx');
SELECT customer_vault.mask_column('pm_t', 'email', 'default');   -- makes pm_t_masked
-- as README advises: everybody may read the table but not its blind index
GRANT SELECT (id, email), INSERT, UPDATE ON pm_t TO PUBLIC;
GRANT SELECT ON pm_t TO regress_pm_reader;
CREATE TABLE pm_plain (id int PRIMARY KEY, note text);
CREATE TABLE pm_x (id int PRIMARY KEY, v customer_vault.encrypted_text);
INSERT INTO pm_x VALUES (1, customer_vault.encrypt('explicit secret', 'pm_key', '1'));
GRANT SELECT ON pm_x TO PUBLIC;
SELECT binding AS bind FROM customer_vault.protected_columns WHERE table_name = 'pm_t' \gset

CREATE TABLE pm_probes (n int, probe text, sql text);
INSERT INTO pm_probes VALUES
 (1, 'decrypt()', 'SELECT customer_vault.decrypt(v, id::text) FROM pm_x'),
 (2, 'decrypted view', 'SELECT email FROM pm_t_decrypted'),
 (3, '_open_column()', format('SELECT customer_vault._open_column(email, %L || id) FROM pm_t', :'bind')),
 (4, 'blind_index(guess, key)', 'SELECT customer_vault.blind_index(''pm1@example.com'', ''pm_key'')'),
 (5, 'blind_index(guess, key, bits)', 'SELECT customer_vault.blind_index(''pm1@example.com'', ''pm_key'', 16)'),
 (6, 'column_blind_index()', 'SELECT customer_vault.column_blind_index(''pm_t'', ''email'', ''pm1@example.com'')'),
 (7, '_blind_index_rewrite()', 'SELECT customer_vault._blind_index_rewrite(''pm_t'', ''email'', ''pm1@example.com'')'),
 (8, 'read blind index column', 'SELECT email_bidx FROM pm_t'),
 (9, 'lookup()', 'SELECT customer_vault.lookup(''pm_t'', ''email'', ''pm1@example.com'')'),
 (10, 'write registry', 'UPDATE customer_vault.protected_columns SET key_name = key_name'),
 (11, 'read registry', 'SELECT * FROM customer_vault.protected_columns'),
 (12, '_register_protection()', 'SELECT customer_vault._register_protection(''pm_t'', ''id'', ''pm_key'', NULL, NULL, NULL)'),
 (13, '_finish_protection()', 'SELECT customer_vault._finish_protection(''pm_t'', ''email'')'),
 (14, '_refresh_decrypted_view()', 'SELECT customer_vault._refresh_decrypted_view(''pm_t'')'),
 (15, '_build_decrypted_view()', 'SELECT customer_vault._build_decrypted_view(''pm_t'', 10)'),
 (16, '_finish_protection_as_owner()', 'SELECT customer_vault._finish_protection_as_owner(''pm_t'', ''email'', 10)'),
 (17, '_drop_decrypted_view()', 'SELECT customer_vault._drop_decrypted_view(''public'', ''pm_t_decrypted'', 10)'),
 (18, 'protect trigger of its own', 'CREATE TEMP TABLE s (v text, b bytea); CREATE TRIGGER f BEFORE INSERT ON s FOR EACH ROW EXECUTE FUNCTION customer_vault._protect_trigger(''v'', ''pm_key'', ''x'', '''', ''b'', ''16'')'),
 (19, 'redefine decrypted view', 'CREATE OR REPLACE VIEW pm_t_decrypted AS SELECT * FROM pm_t'),
 (20, 're-own decrypted view', 'ALTER VIEW pm_t_decrypted OWNER TO CURRENT_USER'),
 (21, 'rule on decrypted view', 'CREATE RULE r AS ON INSERT TO pm_t_decrypted DO INSTEAD NOTHING'),
 (22, 'wrapped keys', 'SELECT wrapped FROM customer_vault.data_keys'),
 (23, 'lookup log', 'SELECT * FROM customer_vault.blind_index_lookups'),
 (24, 'erase lookup log', 'DELETE FROM customer_vault.blind_index_lookups'),
 (25, 'protect_column(), not owner', 'SELECT customer_vault.protect_column(''pm_plain'', ''note'', ''pm_key'')'),
 (26, 'reseal (ciphertext out)', format('SELECT customer_vault._reseal(email, %L || id, true) FROM pm_t', :'bind'));
-- the map of personal data (part MAP)
INSERT INTO pm_probes VALUES
 (200, 'register_subject_table()', 'SELECT customer_vault.register_subject_table(''pm_t'', ''id'')'),
 (201, 'unregister_subject_table()', 'SELECT customer_vault.unregister_subject_table(''pm_t'')'),
 (202, '_register_subject_table()', 'SELECT customer_vault._register_subject_table(''pm_t'', ''id'', false)'),
 (203, '_subject_table_check()', 'SELECT customer_vault._subject_table_check(''pm_t'', ''id'')'),
 (204, '_subject_reach()', 'SELECT * FROM customer_vault._subject_reach()'),
 (205, '_column_label()', 'SELECT customer_vault._column_label(''pm_t'', 1::smallint)'),
 (206, 'read subject_tables', 'SELECT * FROM customer_vault.subject_tables'),
 (207, 'write subject_tables', 'INSERT INTO customer_vault.subject_tables VALUES (''pm_plain'', ''id'', 10)'),
 (208, 'read subject_exports', 'SELECT * FROM customer_vault.subject_exports'),
 (209, 'erase subject_exports', 'DELETE FROM customer_vault.subject_exports'),
 (210, 'export_subject()', 'SELECT customer_vault.export_subject(''1'')'),
 (211, '_export_collect()', 'SELECT customer_vault._export_collect(''1'')'),
 (212, '_export_bytea()', 'SELECT customer_vault._export_bytea(''\\x00'')'),
 (213, '_subject_filter()', 'SELECT customer_vault._subject_filter(''pm_t'', ''1'')'),
 (214, '_subject_sql()', 'SELECT customer_vault._subject_sql(''subject_rows'', ''pm_t'', ARRAY[''1''])'),
 (215, '_maint_run(subject_rows)', 'SELECT customer_vault._maint_run(''subject_rows'', ''pm_t'', ARRAY[''1''], NULL, NULL, NULL, false)'),
 (216, 'read inventory', 'SELECT * FROM customer_vault.inventory'),
 (217, '_inventory()', 'SELECT * FROM customer_vault._inventory()'),
 (218, '_reach_json()', 'SELECT customer_vault._reach_json()');
-- masking by job (part MASK)
INSERT INTO pm_probes VALUES
 (400, 'masked view', 'SELECT email FROM pm_t_masked'),
 (401, '_mask_sealed()', format('SELECT customer_vault._mask_sealed(email, %L || id, ''pm_t'', ''email'') FROM pm_t', :'bind')),
 (402, '_mask_plain() of a guess', 'SELECT customer_vault._mask_plain(''pm1@example.com'', ''pm_t'', ''email'')'),
 (403, '_masked_select_list()', 'SELECT customer_vault._masked_select_list(''pm_t'')'),
 (404, 'masked_copy() (temp)', 'SELECT customer_vault.masked_copy(''pm_t'', ''pm_copy'', ''pg_temp'')'),
 (405, 'mask_column() (owner and admin only)', 'SELECT customer_vault.mask_column(''pm_t'', ''email'', ''partial(100,"",0)'')'),
 (406, '_mask_column_set()', 'SELECT customer_vault._mask_column_set(''pm_t'', ''email'', ''partial(100,"",0)'')'),
 (407, '_mask_column_as_owner()', 'SELECT customer_vault._mask_column_as_owner(''pm_t'', ''email'', ''partial(100,"",0)'', 10)'),
 (408, '_mask_rule()', 'SELECT customer_vault._mask_rule(''hash'', ''pm_key'')'),
 (409, '_masked_view_build()', 'SELECT customer_vault._masked_view_build(''pm_t'')'),
 (410, '_build_masked_view()', 'SELECT customer_vault._build_masked_view(''pm_t'')'),
 (411, '_drop_masked_view()', 'SELECT customer_vault._drop_masked_view(''pm_t'')'),
 (412, '_mask_view_active()', 'SELECT customer_vault._mask_view_active()'),
 (413, 'write mask rules', 'INSERT INTO customer_vault.mask_rules VALUES (''pm_t'', ''email'', ''partial(100,"",0)'', 10)'),
 (414, 'read mask rules', 'SELECT * FROM customer_vault.mask_rules'),
 (415, 'redefine masked view', 'CREATE OR REPLACE VIEW pm_t_masked AS SELECT * FROM pm_t'),
 (416, 're-own masked view', 'ALTER VIEW pm_t_masked OWNER TO CURRENT_USER'),
 (417, 'masked view event trigger fn', 'SELECT customer_vault._guard_masked_views()'),
 (418, '_mask_label_rule()', 'SELECT customer_vault._mask_label_rule(''pii'')'),
 (419, '_pin_mask_rules()', 'SELECT customer_vault._pin_mask_rules(''pm_t'')'),
 (420, '_report_masking()', 'SELECT count(*) FROM customer_vault._report_masking()'),
 (421, '_masked_scope()', 'SELECT customer_vault._masked_scope(''pm_t'', ''{id}'')'),
 (422, '_guard_managed_view()', 'SELECT customer_vault._guard_managed_view(''pg_class''::regclass, ''pm_t''::regclass)');
-- the decrypt audit (access_log): read by auditor and admin, written by its worker only
INSERT INTO pm_probes VALUES
 (170, 'access_log', 'SELECT * FROM customer_vault.access_log'),
 (171, 'verify_access_log()', 'SELECT customer_vault.verify_access_log()'),
 (172, 'access_log_entries', 'SELECT * FROM customer_vault.access_log_entries'),
 (173, 'write access_log_entries', 'INSERT INTO customer_vault.access_log_entries (id) VALUES (0)'),
 (174, 'access_log_head', 'SELECT * FROM customer_vault.access_log_head'),
 (175, '_access_log_append()', 'SELECT customer_vault._access_log_append(now(), 10, 10, 1, 1, 0, NULL, NULL, NULL, 0, NULL, NULL, 0, false)'),
 (176, '_access_log_hash()', 'SELECT customer_vault._access_log_hash(NULL::customer_vault.access_log_entries)'),
 (177, '_access_log_append_only()', 'SELECT customer_vault._access_log_append_only()'),
 (178, 'SET audit_decrypt = off', 'SET customer_vault.audit_decrypt = off'),
 (179, 'subject_access()', 'SELECT customer_vault.subject_access(''1'')');

-- part BRAKE (issue 13): the exfiltration brake and stale accounts
INSERT INTO pm_probes VALUES
 (120, 'set_decrypt_limit()', 'SELECT customer_vault.set_decrypt_limit(''regress_pm_none'', NULL)'),
 (121, 'raise own decrypt_limit', 'SET customer_vault.decrypt_limit = 0'),
 (122, 'raise own decrypt_rate_limit', 'SELECT set_config(''customer_vault.decrypt_rate_limit'', ''0'', true)'),
 (123, 'decrypt_limits', 'SELECT * FROM customer_vault.decrypt_limits'),
 (124, 'role_activity', 'SELECT * FROM customer_vault.role_activity'),
 (125, '_role_activity()', 'SELECT * FROM customer_vault._role_activity()'),
 (126, 'stale_roles()', 'SELECT * FROM customer_vault.stale_roles()'),
 (127, 'lock_stale_roles() dry run', 'SELECT * FROM customer_vault.lock_stale_roles()'),
 (128, '_lock_stale_roles()', 'SELECT * FROM customer_vault._lock_stale_roles(''90 days'', true)'),
 (129, 'schedule_lock_stale_roles()', 'SELECT customer_vault.schedule_lock_stale_roles()'),
 (130, 'unschedule_lock_stale_roles()', 'SELECT customer_vault.unschedule_lock_stale_roles()'),
 (131, 'role_lock_events', 'SELECT * FROM customer_vault.role_lock_events'),
 (132, 'write role_lock_events', 'INSERT INTO customer_vault.role_lock_events (role_id, role_name, idle, reason, locked_by, locked_by_name) VALUES (1, ''x'', ''1 day'', ''x'', 1, ''x'')'),
 (133, '_activity_shift()', 'SELECT customer_vault._activity_shift(''1 day'')'),
 (134, '_activity_save()', 'SELECT customer_vault._activity_save()'),
 (135, '_activity_notice()', 'SELECT customer_vault._activity_notice(ARRAY[0]::oid[])'),
 (136, '_activity_tracking_since()', 'SELECT customer_vault._activity_tracking_since()'),
 (137, '_lock_exempt_roles()', 'SELECT customer_vault._lock_exempt_roles()'),
 (138, '_check_idle()', 'SELECT customer_vault._check_idle(''90 days'')');

-- part FORGET (erasure): the keyed subject hash and the erasure helpers are
-- internal; the admin erases, admin and auditor verify and ask
INSERT INTO pm_probes VALUES
 (60, '_subject_hash()', 'SELECT customer_vault._subject_hash(''42'')'),
 (61, 'forget_subject()', 'SELECT customer_vault.forget_subject(''pm-nobody'', ''probe'')'),
 (62, 'verify_receipts()', 'SELECT customer_vault.verify_receipts()'),
 (63, 'was_forgotten()', 'SELECT customer_vault.was_forgotten(''pm-nobody'')'),
 (64, 'read erasure_receipts', 'SELECT * FROM customer_vault.erasure_receipts'),
 (65, 'write erasure_receipts', 'INSERT INTO customer_vault.erasure_receipts SELECT * FROM customer_vault.erasure_receipts LIMIT 1'),
 (66, 'erasure_receipts_head', 'UPDATE customer_vault.erasure_receipts_head SET last_id = 0'),
 (67, '_receipt_next()', 'SELECT customer_vault._receipt_next()'),
 (68, '_receipt_hash()', 'SELECT customer_vault._receipt_hash(r) FROM customer_vault.erasure_receipts r'),
 (69, '_receipt_json()', 'SELECT customer_vault._receipt_json(NULL::customer_vault.erasure_receipts)'),
 (70, '_erasure_plan()', 'SELECT * FROM customer_vault._erasure_plan()'),
 (71, '_forget_walk()', 'SELECT customer_vault._forget_walk(''pm-nobody'', 0)'),
 (72, '_erasure_treatment()', 'SELECT customer_vault._erasure_treatment(''pm_t'')'),
 (73, '_same_subject()', 'SELECT customer_vault._same_subject(''1'', ''01'')'),
 (74, '_erasure_invalidate()', 'SELECT customer_vault._erasure_invalidate()'),
 (75, '_canonical_subject()', 'SELECT customer_vault._canonical_subject(''042'')');
-- part TRIGGER (issue 15): the one protect trigger per table is made by the
-- extension's owner only; its owner may drop it (as it could drop the
-- per-column triggers): the protection of a table is its owner's to give up
INSERT INTO pm_probes VALUES
 (160, '_build_protect_trigger()', 'SELECT customer_vault._build_protect_trigger(''pm_t'')'),
 (161, 'per-table protect trigger of its own', 'CREATE TEMP TABLE s2 (v text); CREATE TRIGGER f BEFORE INSERT ON s2 FOR EACH ROW EXECUTE FUNCTION customer_vault._protect_trigger(''cv_protect_table'', ''v'', ''pm_key'', ''x'', '''', '''', ''16'')'),
 (162, 'drop the protect trigger', 'DROP TRIGGER cv_protect ON pm_t');
-- part SCACHE (issue 15): the shared consent cache's helpers are internal
INSERT INTO pm_probes VALUES
 (150, '_consent_shared_cache()', 'SELECT * FROM customer_vault._consent_shared_cache()'),
 (151, '_consent_cache_source()', 'SELECT customer_vault._consent_cache_source(''pm'')');
-- part REPORT: the reports are for the admin and the auditor; their helpers
-- and the declared matrix's writes for nobody
INSERT INTO pm_probes VALUES
 (80, 'compliance_report()', 'SELECT customer_vault.compliance_report()'),
 (81, '_report_findings()', 'SELECT customer_vault._report_findings()'),
 (82, 'privilege_drift()', 'SELECT customer_vault.privilege_drift()'),
 (83, 'read privilege matrix', 'SELECT * FROM customer_vault.privilege_matrix'),
 (84, 'write privilege matrix', 'DELETE FROM customer_vault.privilege_matrix'),
 (85, '_granted_privileges()', 'SELECT customer_vault._granted_privileges(true)');
-- part IMPORT: import_consents is for whoever records consent (admin,
-- writer); its query reads with the caller's rights only
INSERT INTO pm_probes VALUES
 (90, 'import_consents()', $p$SELECT customer_vault.import_consents('SELECT ''pm1'' AS subject, ''pm_news'' AS purpose, ''{"a": 1}''::jsonb AS evidence')$p$),
 (91, 'import_consents() of wrapped keys', $p$SELECT customer_vault.import_consents('SELECT encode(wrapped, ''hex'') AS subject, ''pm_news'' AS purpose, ''{"a": 1}''::jsonb AS evidence FROM customer_vault.data_keys')$p$);
-- part CITUS: citus_setup is for superusers only, citus_check_policies for
-- the admin and the auditor (without Citus: 55000), the event trigger's
-- helper for nobody
INSERT INTO pm_probes VALUES
 (163, 'citus_setup()', 'SELECT customer_vault.citus_setup()'),
 (164, 'citus_check_policies()', 'SELECT customer_vault.citus_check_policies(''pm_t'')'),
 (165, '_consent_policy_restrictive()', 'SELECT customer_vault._consent_policy_restrictive(''pm_t'')');
-- part FIXDDL: the event trigger's catalog helpers (no parsing) are for nobody
-- (numbered 167-168: 401-402 are MASK's, and ties sort in no fixed order)
INSERT INTO pm_probes VALUES
 (167, '_consent_policy_flip()', 'SELECT customer_vault._consent_policy_flip(''pm_t'')'),
 (168, '_copy_consent_policy()', 'SELECT customer_vault._copy_consent_policy(''pm_t'', ''pm_plain'')'),
 (169, '_coordinator_only()', 'SELECT customer_vault._coordinator_only(''x'')');
-- part LEDGER (issue 12): the redacted ledger is read like the ledger (admin,
-- auditor); the plain subjects behind the hashes and the helpers are internal
INSERT INTO pm_probes VALUES
 (180, 'read consent_ledger_redacted', 'SELECT * FROM customer_vault.consent_ledger_redacted'),
 (181, 'read evidence_subjects', 'SELECT * FROM customer_vault.evidence_subjects'),
 (182, '_evidence_subject()', 'SELECT customer_vault._evidence_subject(''pm1'', true)'),
 (183, '_redact_subject()', 'SELECT customer_vault._redact_subject(ARRAY[''pm1''], 1)'),
 (184, '_ledger_hash_v2()', 'SELECT customer_vault._ledger_hash_v2(NULL, 1, NULL, decode(''00'', ''hex''), ''p'', ''grant'', ''{}'', NULL, now(), ''x'')');

SELECT count(*) AS lookups_before FROM customer_vault.blind_index_lookups \gset
CREATE FUNCTION pg_temp.probe(r name, q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE format('SET LOCAL ROLE %I', r);
        EXECUTE q;
        RAISE EXCEPTION 'cv_probe_ok';
    EXCEPTION WHEN OTHERS THEN
        IF SQLERRM = 'cv_probe_ok' THEN
            RETURN 'ok';
        ELSIF SQLSTATE = '42501' THEN
            RETURN 'denied';
        END IF;
        RETURN SQLSTATE;
    END;
END
$$;
SELECT p.probe,
       pg_temp.probe('regress_pm_none', p.sql) AS "none",
       pg_temp.probe('regress_pm_writer', p.sql) AS writer,
       pg_temp.probe('regress_pm_reader', p.sql) AS reader,
       pg_temp.probe('regress_pm_auditor', p.sql) AS auditor,
       pg_temp.probe('regress_pm_admin', p.sql) AS admin,
       pg_temp.probe('regress_pm_masked', p.sql) AS masked,
       pg_temp.probe('regress_pm_owner', p.sql) AS tbl_owner
  FROM pm_probes p ORDER BY p.n;
-- nothing the probes did stayed
SELECT count(*) - :lookups_before AS lookups_logged FROM customer_vault.blind_index_lookups;
SELECT c.relowner = e.extowner AS view_owned_by_extension_owner
  FROM pg_class c, pg_extension e WHERE e.extname = 'customer_vault' AND c.relname = 'pm_t_decrypted';

-- hostile identifiers reach the extension's owner only quoted: a protected
-- column and a context column whose names are SQL
CREATE TABLE pm_evil ("id'); DROP TABLE pm_x; --" int PRIMARY KEY, "e"";DROP TABLE pm_x;--" text);
ALTER TABLE pm_evil OWNER TO regress_pm_admin;
SET ROLE regress_pm_admin;
INSERT INTO pm_evil VALUES (1, 'evil@example.com');
SELECT customer_vault.protect_column('pm_evil', 'e";DROP TABLE pm_x;--', 'pm_key',
                                     'id''); DROP TABLE pm_x; --', 'b"; DROP TABLE pm_x; --');
INSERT INTO pm_evil VALUES (2, 'evil2@example.com');
GRANT SELECT ("id'); DROP TABLE pm_x; --", "e"";DROP TABLE pm_x;--") ON pm_evil TO regress_pm_writer;
GRANT SELECT ON pm_evil TO regress_pm_reader;
RESET ROLE;
-- and a hostile search_path: operators shadowing pg_catalog's are not used
CREATE SCHEMA regress_pm_evil;
CREATE TABLE regress_pm_evil.calls (what text);
GRANT USAGE ON SCHEMA regress_pm_evil TO PUBLIC;
GRANT INSERT ON regress_pm_evil.calls TO PUBLIC;
CREATE FUNCTION regress_pm_evil.int4eq_evil(int, int) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO regress_pm_evil.calls VALUES ('int4 =') RETURNING true $$;
CREATE FUNCTION regress_pm_evil.byteaeq_evil(bytea, bytea) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO regress_pm_evil.calls VALUES ('bytea =') RETURNING true $$;
CREATE OPERATOR regress_pm_evil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = regress_pm_evil.int4eq_evil);
CREATE OPERATOR regress_pm_evil.= (LEFTARG = bytea, RIGHTARG = bytea, FUNCTION = regress_pm_evil.byteaeq_evil);
SET ROLE regress_pm_writer;
SET search_path = regress_pm_evil, public, pg_catalog;
SELECT * FROM customer_vault.lookup('pm_evil', 'e";DROP TABLE pm_x;--', 'evil2@example.com');
SELECT * FROM customer_vault.lookup('pm_t', 'email', 'pm2@example.com');
RESET search_path;
RESET ROLE;
SELECT count(*) AS evil_calls FROM regress_pm_evil.calls;
DROP SCHEMA regress_pm_evil CASCADE;
SELECT to_regclass('pm_x') IS NOT NULL AS pm_x_still_there;
SET ROLE regress_pm_reader;
SELECT "id'); DROP TABLE pm_x; --", "e"";DROP TABLE pm_x;--" FROM pm_evil_decrypted ORDER BY 1;
RESET ROLE;

DROP TABLE pm_t, pm_x, pm_plain, pm_evil, pm_probes CASCADE;
DELETE FROM customer_vault.purposes WHERE purpose = 'pm_news';
DROP ROLE regress_pm_none, regress_pm_writer, regress_pm_reader, regress_pm_auditor, regress_pm_admin,
          regress_pm_owner, regress_pm_masked;
