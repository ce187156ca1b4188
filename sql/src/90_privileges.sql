--@ code

---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC but the type I/O and is_sealed and may_process
---------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA customer_vault FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA customer_vault FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA customer_vault FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA customer_vault FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    customer_vault.encrypted_text_in(cstring), customer_vault.encrypted_text_out(customer_vault.encrypted_text),
    customer_vault.encrypted_text_recv(internal), customer_vault.encrypted_text_send(customer_vault.encrypted_text),
    customer_vault.encrypted_bytea_in(cstring), customer_vault.encrypted_bytea_out(customer_vault.encrypted_bytea),
    customer_vault.encrypted_bytea_recv(internal), customer_vault.encrypted_bytea_send(customer_vault.encrypted_bytea),
    customer_vault.is_sealed(text)
    TO PUBLIC;

-- maintenance statements run as the table's owner call these: every owner
-- must be able to execute them; they work only inside such a statement
-- (src/maint.c), sealing only under the key being protected, blind indexes
-- only for the table being rewritten
GRANT EXECUTE ON FUNCTION
    customer_vault._m_reseal(text, text, boolean),
    customer_vault._m_reseal(customer_vault.encrypted_text, text),
    customer_vault._m_reseal(customer_vault.encrypted_bytea, text),
    customer_vault._m_needs_reseal(text, boolean),
    customer_vault._m_needs_reseal(customer_vault.encrypted_text, boolean),
    customer_vault._m_needs_reseal(customer_vault.encrypted_bytea, boolean),
    customer_vault._m_seal_column(text, text, text),
    customer_vault._m_blind_index_rewrite(regclass, name, text),
    customer_vault._m_subject_has_key(text)
    TO PUBLIC;
-- ... and the row context builder, a pure function of its arguments (it
-- reveals nothing: the binding and the context value are the caller's own)
GRANT EXECUTE ON FUNCTION customer_vault._row_context(text, anyelement) TO PUBLIC;

GRANT EXECUTE ON FUNCTION
    customer_vault.version(),
    customer_vault.create_key(text, text, integer), customer_vault.set_key_padding(text, integer),
    customer_vault.rotate_key(text), customer_vault.rewrap_keys(),
    customer_vault.root_key_fingerprint(),
    customer_vault.shred_subject(text),
    customer_vault.key_of(customer_vault.encrypted_text), customer_vault.key_of(customer_vault.encrypted_bytea),
    customer_vault.protect_column(regclass, name, text, name, name, integer),
    customer_vault._check_key(text), customer_vault._seal_column(text, text, text),
    customer_vault._table_names(regclass), customer_vault._column_type(regclass, name, text),
    customer_vault._refresh_decrypted_view(regclass),
    customer_vault._register_protection(regclass, name, text, name, name, integer),
    customer_vault._finish_protection(regclass, name),
    customer_vault._blind_index_rewrite(regclass, name, text),
    customer_vault._reseal(customer_vault.encrypted_text, text),
    customer_vault._reseal(customer_vault.encrypted_bytea, text),
    customer_vault._reseal(text, text, boolean),
    customer_vault._needs_reseal(customer_vault.encrypted_text, boolean),
    customer_vault._needs_reseal(customer_vault.encrypted_bytea, boolean),
    customer_vault._needs_reseal(text, boolean)
    TO customer_vault_admin;
GRANT EXECUTE ON PROCEDURE customer_vault.reencrypt(regclass, name, integer, name) TO customer_vault_admin;
GRANT SELECT ON customer_vault.keys TO customer_vault_admin, customer_vault_auditor;
-- the registry is written by protect_column as the extension's owner only
GRANT SELECT ON customer_vault.protected_columns TO customer_vault_admin, customer_vault_auditor;
GRANT SELECT ON customer_vault.blind_index_lookups, customer_vault.blind_index_lookup_counts
    TO customer_vault_admin, customer_vault_auditor;

-- Computing a blind index for a guess is a read right (it tests guesses
-- against stored values): readers only.  0.1.0 granted it to the writer and
-- the admin, and the admin could write the registry and create protect
-- triggers of its own choosing; taken back here so that updates match.
REVOKE EXECUTE ON FUNCTION customer_vault.blind_index(text, text)
    FROM customer_vault_writer, customer_vault_admin;
REVOKE EXECUTE ON FUNCTION customer_vault._protect_trigger() FROM customer_vault_admin;
REVOKE INSERT, UPDATE, DELETE ON customer_vault.protected_columns FROM customer_vault_admin;

-- the writer stores data and never reads it back; it finds rows by lookup()
GRANT EXECUTE ON FUNCTION
    customer_vault.encrypt(text, text, text), customer_vault.encrypt(bytea, text, text),
    customer_vault.encrypt_for_subject(text, text, text),
    customer_vault.lookup(regclass, name, text)
    TO customer_vault_writer;

-- the reader decrypts
GRANT EXECUTE ON FUNCTION
    customer_vault._open_column(text, text),
    customer_vault.decrypt(customer_vault.encrypted_text, text),
    customer_vault.decrypt(customer_vault.encrypted_bytea, text),
    customer_vault.key_of(customer_vault.encrypted_text), customer_vault.key_of(customer_vault.encrypted_bytea),
    customer_vault.blind_index(text, text), customer_vault.blind_index(text, text, integer),
    customer_vault.column_blind_index(regclass, name, text),
    customer_vault.lookup(regclass, name, text)
    TO customer_vault_reader;

GRANT EXECUTE ON FUNCTION customer_vault.version(),
    customer_vault.key_of(customer_vault.encrypted_text), customer_vault.key_of(customer_vault.encrypted_bytea)
    TO customer_vault_auditor;

-- consent: may_process is what a policy evaluates; it answers only for
-- purposes the calling role is allowed, so it reveals nothing to others
GRANT EXECUTE ON FUNCTION customer_vault.may_process(text, text), customer_vault.may_process(bigint, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    customer_vault.define_purpose(text, text, text, interval),
    customer_vault.allow_purpose(regrole, text), customer_vault.disallow_purpose(regrole, text),
    customer_vault.enable_consent_policy(regclass, name, text, boolean),
    customer_vault.grant_consent(text, text, jsonb, timestamptz),
    customer_vault.withdraw_consent(text, text, jsonb),
    customer_vault.has_consent(text, text),
    customer_vault.verify_ledger(),
    customer_vault._consent_cache_builds()
    TO customer_vault_admin;
-- the application that collects consent records it
GRANT EXECUTE ON FUNCTION
    customer_vault.grant_consent(text, text, jsonb, timestamptz),
    customer_vault.withdraw_consent(text, text, jsonb)
    TO customer_vault_writer;
GRANT EXECUTE ON FUNCTION customer_vault.has_consent(text, text), customer_vault.verify_ledger()
    TO customer_vault_auditor;
GRANT EXECUTE ON FUNCTION
    customer_vault._ledger_hash(bytea, bigint, text, text, text, jsonb, timestamptz, timestamptz, name)
    TO customer_vault_admin, customer_vault_auditor;
GRANT SELECT ON customer_vault.purposes, customer_vault.purpose_roles, customer_vault.consent_ledger,
    customer_vault.current_consents
    TO customer_vault_admin, customer_vault_auditor;

-- retention: the admin sets policies and holds and runs (or schedules) the
-- purge, but changes holds and the purge log only through the functions (no
-- INSERT, UPDATE or DELETE on them); the auditor reads and verifies; nobody
-- but the extension touches evidence_heads
GRANT EXECUTE ON FUNCTION
    customer_vault.set_retention(regclass, name, interval, text, name),
    customer_vault.drop_retention(regclass),
    customer_vault._subject_type_ok(regtype), customer_vault._check_subject_type(regtype, text),
    customer_vault.place_legal_hold(text, text, timestamptz), customer_vault.release_legal_hold(bigint, text),
    customer_vault.purge_preview(timestamptz), customer_vault._retention_sql(customer_vault.retention_policies, timestamptz),
    customer_vault._pii_columns(regclass), customer_vault._subject_has_key(text),
    customer_vault._casts_to(text, regtype), customer_vault._eq_operator(regtype), customer_vault._held_subjects(regtype),
    customer_vault._subject_type(customer_vault.retention_policies),
    customer_vault._check_period(interval, text), customer_vault._check_as_of(timestamptz),
    customer_vault._check_cron_schedule(text),
    customer_vault._retention_expired(customer_vault.retention_policies, timestamptz),
    customer_vault._shred_plan(customer_vault.retention_policies, timestamptz),
    customer_vault.purge_preview_subjects(timestamptz),
    customer_vault.shred_subject(text),
    customer_vault.schedule_purge(text), customer_vault.unschedule_purge(), customer_vault._require_pg_cron(),
    customer_vault._purge_log_write(bigint, timestamptz, text, text, timestamp, boolean, text, bigint, bigint,
                                    integer, text, text),
    customer_vault._purge_log_interrupted(),
    customer_vault.verify_legal_holds(), customer_vault.verify_purge_log()
    TO customer_vault_admin;
GRANT EXECUTE ON PROCEDURE customer_vault.purge(boolean, integer, timestamptz) TO customer_vault_admin;
GRANT SELECT ON customer_vault.retention_policies TO customer_vault_admin;
-- policies change only through set_retention and drop_retention (0.1.0
-- granted direct writes: an inheritance parent could be registered past
-- set_retention's checks)
REVOKE INSERT, UPDATE, DELETE ON customer_vault.retention_policies FROM customer_vault_admin;
GRANT SELECT ON customer_vault.legal_hold_events, customer_vault.legal_holds, customer_vault.current_legal_holds,
    customer_vault.purge_log_entries, customer_vault.purge_log
    TO customer_vault_admin;
GRANT EXECUTE ON FUNCTION customer_vault.verify_legal_holds(), customer_vault.verify_purge_log()
    TO customer_vault_auditor;
GRANT SELECT ON customer_vault.retention_policies, customer_vault.legal_hold_events, customer_vault.legal_holds,
    customer_vault.current_legal_holds, customer_vault.purge_log_entries, customer_vault.purge_log
    TO customer_vault_auditor;
