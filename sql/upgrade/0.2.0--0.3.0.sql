-- customer_vault 0.2.0 -> 0.3.0: the hand-written part of the upgrade.
-- Changes to tables, and DROPs of functions whose signature or return type
-- changed, go before the replay; data migrations that need the new
-- functions go after it.

-- part MAP (70_subjects.sql): the subject registry and the export records
CREATE TABLE customer_vault.subject_tables (
    relid          regclass PRIMARY KEY,
    subject_column name NOT NULL,
    registered_by  oid NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.subject_tables', '');
CREATE TABLE customer_vault.subject_exports (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    role_id      oid NOT NULL,
    subject_hash bytea NOT NULL,
    tables       integer NOT NULL,
    rows         bigint NOT NULL,
    withheld     bigint NOT NULL
);
CREATE INDEX subject_exports_subject_hash_idx ON customer_vault.subject_exports (subject_hash);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.subject_exports', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.subject_exports_id_seq', '');
-- part FORGET (75_erasure.sql): erasure receipts, append-only and hash-chained
CREATE TABLE customer_vault.erasure_receipts (
    id           bigint PRIMARY KEY,
    at           timestamptz NOT NULL,
    role_id      oid NOT NULL,
    session_role name NOT NULL,
    acting_role  name NOT NULL,
    subject_hash bytea NOT NULL CHECK (pg_catalog.length(subject_hash) = 32),
    reason       text NOT NULL CHECK (pg_catalog.btrim(reason) <> ''),
    counts       jsonb NOT NULL,
    prev_hash    bytea,
    hash         bytea NOT NULL
);
CREATE INDEX erasure_receipts_subject_hash_idx ON customer_vault.erasure_receipts (subject_hash);
CREATE TABLE customer_vault.erasure_receipts_head (
    chain     text PRIMARY KEY CHECK (chain = 'erasure_receipts'),
    last_id   bigint NOT NULL,
    last_hash bytea
);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.erasure_receipts', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.erasure_receipts_head', '');
-- AUDIT (issue 13): the decrypt audit's append-only, hash-chained log
CREATE TABLE customer_vault.access_log_head (
    single    boolean PRIMARY KEY DEFAULT true CHECK (single),
    last_id   bigint NOT NULL,
    last_hash bytea NOT NULL
);
CREATE TABLE customer_vault.access_log_entries (
    id               bigint PRIMARY KEY,
    at               timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL,
    session_role     name NOT NULL,
    acting_role      name NOT NULL,
    purpose          text,
    key_id           integer NOT NULL,
    key              text,
    value_count      bigint NOT NULL CHECK (value_count > 0),
    query_id         bigint,
    application_name text,
    client_addr      text,
    pid              integer,
    mode             text NOT NULL CHECK (mode IN ('statement', 'value')),
    subject_hashes   bytea[],
    subject_values   integer[],
    more_values      bigint,
    prev_hash        bytea,
    hash             bytea NOT NULL,
    CONSTRAINT access_log_entries_value_check CHECK ((mode = 'value') = (subject_hashes IS NOT NULL))
);
CREATE INDEX access_log_entries_subjects_idx ON customer_vault.access_log_entries USING gin (subject_hashes);
CREATE INDEX access_log_entries_at_idx ON customer_vault.access_log_entries (at);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.access_log_head', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.access_log_entries', '');

-- BRAKE (issue 13): the append-only log of roles locked by lock_stale_roles()
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

-- part REPORT: the declared privilege matrix and the scratch table of the
-- scripts (sql/src/00_declared_privileges.sql; filled by the replay)
CREATE TABLE customer_vault.privilege_matrix (
    object    text NOT NULL,
    role      name NOT NULL,
    privilege text NOT NULL,
    CONSTRAINT privilege_matrix_pkey PRIMARY KEY (object, role, privilege)
);
CREATE TABLE customer_vault._privilege_carry (
    object    text NOT NULL,
    role      name NOT NULL,
    privilege text NOT NULL
);

-- IMPORT (issue 15): the index import_consents finds earlier grants with
-- a hash index: it stores 4-byte hash codes, so no subject is too long for
-- it (a btree on subject refuses entries over ~2.7 kB)
CREATE INDEX consent_ledger_subject_idx ON customer_vault.consent_ledger USING hash (subject);

-- MASK: masking rules (sql/src/75_masking.sql)
CREATE TABLE customer_vault.mask_rules (
    relid       regclass NOT NULL,
    column_name name NOT NULL,
    rule        text NOT NULL,
    set_by      oid NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (relid, column_name)
);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.mask_rules', '');

--@ replay

-- part MAP: event triggers need their functions (replayed above)
CREATE EVENT TRIGGER customer_vault_subject_tables_dropped ON sql_drop
    EXECUTE FUNCTION customer_vault._subject_tables_dropped();
CREATE EVENT TRIGGER customer_vault_subject_tables_guard ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION customer_vault._subject_tables_guard();
-- part MAP: tables with a retention subject column or a consent policy are
-- registered, as set_retention and enable_consent_policy now do
INSERT INTO customer_vault.subject_tables (relid, subject_column, registered_by)
SELECT DISTINCT ON (t.relid) t.relid, t.col, (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
  FROM (SELECT rp.relid, rp.subject_column AS col, 0 AS pref
          FROM customer_vault.retention_policies rp
         WHERE rp.subject_column IS NOT NULL
        UNION ALL
        SELECT pol.polrelid::pg_catalog.regclass, a.attname, 1
          FROM pg_catalog.pg_policy pol
          JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid AND NOT c.relispartition
          JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND d.objid = pol.oid
                                     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                     AND d.refobjid = pol.polrelid AND d.refobjsubid > 0
          JOIN pg_catalog.pg_attribute a ON a.attrelid = pol.polrelid AND a.attnum = d.refobjsubid
         WHERE pol.polname = 'customer_vault_consent') t
  JOIN pg_catalog.pg_class c ON c.oid = t.relid::pg_catalog.oid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = t.col AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND NOT c.relispartition
   AND n.nspname NOT IN ('customer_vault', 'pg_catalog', 'information_schema', 'pg_toast')
   AND customer_vault._subject_type_ok(a.atttypid::pg_catalog.regtype)
 ORDER BY t.relid, t.pref
ON CONFLICT (relid) DO NOTHING;

-- MASK: the event triggers of masking (their functions come with the replay)
CREATE EVENT TRIGGER customer_vault_mask_forget_dropped ON sql_drop
    EXECUTE FUNCTION customer_vault._mask_forget_dropped();
CREATE EVENT TRIGGER customer_vault_guard_masked_views ON ddl_command_end
    EXECUTE FUNCTION customer_vault._guard_masked_views();
