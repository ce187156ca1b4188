-- customer_vault 0.1.0 -> 0.2.0: the hand-written part of the upgrade.
-- Changes to tables, and DROPs of functions whose signature or return type
-- changed, go before the replay; data migrations that need the new
-- functions go after it.

-- length padding per key (create_key's pad_to, set_key_padding)
ALTER TABLE customer_vault.data_keys
    ADD COLUMN pad_to integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT data_keys_pad_to_check CHECK (pad_to >= 0 AND pad_to <= 4096);
DROP FUNCTION customer_vault.create_key(text, text);

-- blind indexes bound to their column, truncated to blind_index_bits (NULL:
-- a column protected by 0.1.0, whose index stays unbound and full-length)
ALTER TABLE customer_vault.protected_columns
    ADD COLUMN blind_index_bits integer,
    ADD CONSTRAINT protected_columns_blind_index_bits_check CHECK (blind_index_bits BETWEEN 1 AND 256);
CREATE TABLE customer_vault.blind_index_lookups (
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    role_id     oid NOT NULL,
    schema_name name NOT NULL,
    table_name  name NOT NULL,
    column_name name NOT NULL,
    found       bigint NOT NULL
);
-- the registry names the table by OID too (filled below, from the rows that
-- check out; NOT NULL once the others are gone)
ALTER TABLE customer_vault.protected_columns ADD COLUMN relid regclass;
-- protect_column gained blind_index_bits
DROP FUNCTION customer_vault.protect_column(regclass, name, text, name, name);

-- Retention (issue 9): legal holds and the purge log become append-only,
-- hash-chained evidence (legal_holds and purge_log become views over
-- legal_hold_events and purge_log_entries).  The 0.1.0 tables are renamed, the new ones created
-- as a fresh install does, the rows carried over after the replay (holds keep
-- their ids), and the old tables dropped.
ALTER TABLE customer_vault.legal_holds RENAME TO legal_holds_0_1_0;
ALTER INDEX customer_vault.legal_holds_pkey RENAME TO legal_holds_0_1_0_pkey;
ALTER TABLE customer_vault.purge_log RENAME TO purge_log_0_1_0;
ALTER INDEX customer_vault.purge_log_pkey RENAME TO purge_log_0_1_0_pkey;
DROP FUNCTION customer_vault.release_legal_hold(bigint);
CREATE TABLE customer_vault.evidence_heads (
    chain     text PRIMARY KEY CHECK (chain IN ('legal_hold_events', 'purge_log_entries')),
    last_id   bigint NOT NULL,
    last_hash bytea
);
CREATE TABLE customer_vault.legal_hold_events (
    id           bigint PRIMARY KEY,
    hold_id      bigint NOT NULL,
    action       text NOT NULL CHECK (action IN ('place', 'release')),
    subject      text NOT NULL CHECK (subject <> ''),
    reason       text CHECK (reason <> ''),
    until        timestamptz,
    recorded_at  timestamptz NOT NULL,
    session_role name NOT NULL,
    acting_role  name NOT NULL,
    prev_hash    bytea,
    hash         bytea NOT NULL,
    CONSTRAINT legal_hold_events_place_check CHECK (action <> 'place' OR (hold_id = id AND reason IS NOT NULL)),
    CONSTRAINT legal_hold_events_release_check CHECK (action <> 'release' OR (hold_id < id AND until IS NULL))
);
CREATE UNIQUE INDEX legal_hold_events_release_key ON customer_vault.legal_hold_events (hold_id)
    WHERE action = 'release';
CREATE INDEX legal_hold_events_subject_idx ON customer_vault.legal_hold_events (subject);
CREATE TABLE customer_vault.purge_log_entries (
    id           bigint PRIMARY KEY,
    event        text NOT NULL CHECK (event IN ('start', 'done', 'failed', 'interrupted')),
    ref          bigint,
    run_started  timestamptz NOT NULL,
    tbl          text NOT NULL,
    action       text NOT NULL,
    cutoff       timestamp,
    dry_run      boolean NOT NULL,
    rows_purged  bigint NOT NULL DEFAULT 0,
    rows_held    bigint NOT NULL DEFAULT 0,
    batches      integer NOT NULL DEFAULT 0,
    sqlstate     text,
    message      text,
    pid          integer,
    recorded_at  timestamptz NOT NULL,
    session_role name NOT NULL,
    acting_role  name NOT NULL,
    prev_hash    bytea,
    hash         bytea NOT NULL,
    CONSTRAINT purge_log_entries_ref_check CHECK ((event = 'start') = (ref IS NULL) AND (ref IS NULL OR ref < id))
);
CREATE UNIQUE INDEX purge_log_entries_ref_key ON customer_vault.purge_log_entries (ref);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.evidence_heads', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.legal_hold_events', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purge_log_entries', '');

-- consent (40_consent.sql) -------------------------------------------------
-- purpose_roles keyed on role OIDs: names of roles that no longer exist are
-- dropped (they could only ever pass to a new role of the same name)
DELETE FROM customer_vault.purpose_roles r
 WHERE pg_catalog.to_regrole(pg_catalog.quote_ident(r.role_name)) IS NULL;
ALTER TABLE customer_vault.purpose_roles RENAME COLUMN role_name TO role;
-- PostgreSQL 18 records NOT NULL as a constraint named after its column, and a
-- column rename keeps the old name: give it the name a fresh install has
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_constraint
                WHERE conrelid OPERATOR(pg_catalog.=) 'customer_vault.purpose_roles'::pg_catalog.regclass
                  AND conname OPERATOR(pg_catalog.=) 'purpose_roles_role_name_not_null') THEN
        ALTER TABLE customer_vault.purpose_roles
            RENAME CONSTRAINT purpose_roles_role_name_not_null TO purpose_roles_role_not_null;
    END IF;
END
$$;
ALTER TABLE customer_vault.purpose_roles
    ALTER COLUMN role TYPE regrole USING pg_catalog.to_regrole(pg_catalog.quote_ident(role::text));
SELECT pg_catalog.pg_extension_config_dump('customer_vault.purpose_roles',
    'WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) role)');

-- the ledger's chain head, built from the existing ledger
CREATE TABLE customer_vault.consent_ledger_head (
    last_id   bigint NOT NULL,
    last_hash bytea
);
ALTER TABLE customer_vault.consent_ledger_head REPLICA IDENTITY FULL;
INSERT INTO customer_vault.consent_ledger_head (last_id, last_hash)
SELECT COALESCE((SELECT l.id FROM customer_vault.consent_ledger l ORDER BY l.id DESC LIMIT 1), 0),
       (SELECT l.hash FROM customer_vault.consent_ledger l ORDER BY l.id DESC LIMIT 1);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.consent_ledger_head', '');

-- retention policies name their table by OID too (issue review 2): renames
-- of such tables are refused, and the DDL guard looks at the command's own
-- tables.  A policy whose table no longer exists under its names (renamed or
-- dropped under 0.1.0) cannot be resolved and would only fail every purge: dropped.
ALTER TABLE customer_vault.retention_policies ADD COLUMN relid regclass;
UPDATE customer_vault.retention_policies
   SET relid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', schema_name, table_name));
DELETE FROM customer_vault.retention_policies WHERE relid IS NULL;
ALTER TABLE customer_vault.retention_policies ALTER COLUMN relid SET NOT NULL,
    ADD CONSTRAINT retention_policies_relid_key UNIQUE (relid);

--@ replay

-- Under 0.1.0 the admin could write protected_columns, define views and
-- create triggers calling _protect_trigger with any arguments.  Nothing it
-- left is trusted:
--  * a registry row stands only if it checks out: its table exists (an
--    ordinary or partitioned table), the column is text, and a trigger
--    cv_protect_<attnum> on it calls _protect_trigger with exactly the row's
--    key, binding, context and blind index columns, the binding being the
--    column's qualified name as the table is named now; it then gets the
--    table's OID; every other row is deleted;
--  * a trigger of 0.1.0's form that checks out but whose row does not (the
--    row was edited) gives the row back (from its own arguments);
--  * every trigger calling _protect_trigger without such a row is dropped
--    (a trigger with a victim's binding on a table of the admin computes the
--    victim's blind index for whatever is written to it);
--  * every view named <table>_decrypted of a registry row is dropped (never
--    re-owned: its definition, ACL, rules and triggers are the admin's) and
--    the views of the rows that stand are made again by the extension's
--    owner.  A view of the user's that depends on one makes the update fail
--    ("cannot drop view ... because other objects depend on it"): drop it
--    first, make it again after the update.
DO $$
DECLARE
    r record;
BEGIN
    UPDATE customer_vault.protected_columns p
       SET relid = t.relid
      FROM customer_vault._protect_triggers() t
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE t.checks_out
       AND n.nspname OPERATOR(pg_catalog.=) p.schema_name AND c.relname OPERATOR(pg_catalog.=) p.table_name
       AND t.column_name OPERATOR(pg_catalog.=) p.column_name::pg_catalog.text
       AND t.key_name OPERATOR(pg_catalog.=) p.key_name
       AND t.binding OPERATOR(pg_catalog.=) p.binding
       AND t.context_column IS NOT DISTINCT FROM p.context_column::pg_catalog.text
       AND t.blind_index_column IS NOT DISTINCT FROM p.blind_index_column::pg_catalog.text
       AND t.blind_index_bits IS NULL AND p.blind_index_bits IS NULL;
    FOR r IN SELECT DISTINCT c.oid::pg_catalog.regclass AS v
               FROM customer_vault.protected_columns p
               JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) p.schema_name
               JOIN pg_catalog.pg_class c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid
                AND c.relname::pg_catalog.text OPERATOR(pg_catalog.=) (p.table_name::pg_catalog.text OPERATOR(pg_catalog.||) '_decrypted')
                AND c.relkind OPERATOR(pg_catalog.=) 'v'
    LOOP
        EXECUTE pg_catalog.format('DROP VIEW %s', r.v);
    END LOOP;
    FOR r IN SELECT p.schema_name, p.table_name, p.column_name
               FROM customer_vault.protected_columns p WHERE p.relid IS NULL
    LOOP
        RAISE WARNING 'customer_vault: registry row of column %.%.% removed: it does not match a protected column',
            pg_catalog.quote_ident(r.schema_name), pg_catalog.quote_ident(r.table_name), pg_catalog.quote_ident(r.column_name);
    END LOOP;
    DELETE FROM customer_vault.protected_columns p WHERE p.relid IS NULL;
    -- a trigger of 0.1.0's form that checks out on its own table but has no
    -- row (its row was edited, hence deleted above) gets its row back from
    -- the trigger's arguments, which only the table's owner could set
    FOR r IN SELECT t.*, n.nspname, c.relname
               FROM customer_vault._protect_triggers() t
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
              WHERE t.checks_out AND t.blind_index_bits IS NULL
                AND NOT EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                                 WHERE (p.schema_name OPERATOR(pg_catalog.=) n.nspname
                                        AND p.table_name OPERATOR(pg_catalog.=) c.relname
                                        AND p.column_name::pg_catalog.text OPERATOR(pg_catalog.=) t.column_name)
                                    OR (p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) t.relid
                                        AND p.column_name::pg_catalog.text OPERATOR(pg_catalog.=) t.column_name))
    LOOP
        RAISE WARNING 'customer_vault: registry row of column %.%.% restored from its protect trigger',
            pg_catalog.quote_ident(r.nspname), pg_catalog.quote_ident(r.relname), pg_catalog.quote_ident(r.column_name);
        INSERT INTO customer_vault.protected_columns
            (schema_name, table_name, column_name, key_name, binding, context_column, blind_index_column, relid)
        VALUES (r.nspname, r.relname, r.column_name, r.key_name, r.binding, r.context_column, r.blind_index_column,
                r.relid);
    END LOOP;
    FOR r IN SELECT t.trigger_name, t.relid::pg_catalog.regclass AS tbl
               FROM customer_vault._protect_triggers() t
              WHERE NOT EXISTS (
                    SELECT 1 FROM customer_vault.protected_columns p
                     WHERE t.checks_out
                       AND p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) t.relid
                       AND p.column_name::pg_catalog.text OPERATOR(pg_catalog.=) t.column_name
                       AND p.key_name OPERATOR(pg_catalog.=) t.key_name
                       AND p.binding OPERATOR(pg_catalog.=) t.binding
                       AND p.context_column::pg_catalog.text IS NOT DISTINCT FROM t.context_column
                       AND p.blind_index_column::pg_catalog.text IS NOT DISTINCT FROM t.blind_index_column)
    LOOP
        RAISE WARNING 'customer_vault: trigger % on % dropped: it calls customer_vault._protect_trigger for no protected column of that table',
            pg_catalog.quote_ident(r.trigger_name), r.tbl;
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', r.trigger_name, r.tbl);
    END LOOP;
    FOR r IN SELECT DISTINCT p.relid, c.relowner, n.nspname, c.relname
               FROM customer_vault.protected_columns p
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    LOOP
        PERFORM customer_vault._build_decrypted_view(r.relid, r.relowner);
        -- made inside the update script: not a member of the extension
        EXECUTE pg_catalog.format('ALTER EXTENSION customer_vault DROP VIEW %I.%I',
                                  r.nspname, r.relname::pg_catalog.text OPERATOR(pg_catalog.||) '_decrypted');
    END LOOP;
END
$$;
ALTER TABLE customer_vault.protected_columns ALTER COLUMN relid SET NOT NULL;
CREATE EVENT TRIGGER customer_vault_guard_decrypted_views ON ddl_command_end
    EXECUTE FUNCTION customer_vault._guard_decrypted_views();

-- Retention: the 0.1.0 holds and purge log rows, chained in their order.
DO $$
DECLARE
    o record;
    e customer_vault.legal_hold_events;
    l customer_vault.purge_log_entries;
    prev bytea;
    next_id bigint;
BEGIN
    -- holds keep their ids; releases follow, in the order they happened
    FOR o IN SELECT * FROM customer_vault.legal_holds_0_1_0 ORDER BY id LOOP
        e := ROW(o.id, o.id, 'place', o.subject, o.reason, o.until, o.placed_at, o.placed_by, o.placed_by,
                 prev, NULL);
        e.hash := customer_vault._evidence_hash(e);
        INSERT INTO customer_vault.legal_hold_events SELECT e.*;
        prev := e.hash;
        next_id := o.id;
    END LOOP;
    FOR o IN SELECT * FROM customer_vault.legal_holds_0_1_0 WHERE released_at IS NOT NULL ORDER BY released_at, id LOOP
        next_id := next_id + 1;
        e := ROW(next_id, o.id, 'release', o.subject, NULL, NULL, o.released_at, COALESCE(o.released_by, o.placed_by),
                 COALESCE(o.released_by, o.placed_by), prev, NULL);
        e.hash := customer_vault._evidence_hash(e);
        INSERT INTO customer_vault.legal_hold_events SELECT e.*;
        prev := e.hash;
    END LOOP;
    IF next_id IS NOT NULL THEN
        INSERT INTO customer_vault.evidence_heads VALUES ('legal_hold_events', next_id, prev);
    END IF;
    -- each 0.1.0 purge log row: a start entry, and a done entry when it
    -- finished, else an interrupted one
    prev := NULL;
    next_id := 0;
    FOR o IN SELECT * FROM customer_vault.purge_log_0_1_0 ORDER BY id LOOP
        next_id := next_id + 1;
        l := ROW(next_id, 'start', NULL, o.run_started, o.tbl, o.action, o.cutoff, o.dry_run, 0, 0, 0, NULL, NULL,
                 NULL, o.started_at, o.role, o.role, prev, NULL);
        l.hash := customer_vault._evidence_hash(l);
        INSERT INTO customer_vault.purge_log_entries SELECT l.*;
        prev := l.hash;
        next_id := next_id + 1;
        l := ROW(next_id, CASE WHEN o.finished_at IS NULL THEN 'interrupted' ELSE 'done' END, next_id - 1,
                 o.run_started, o.tbl, o.action, o.cutoff, o.dry_run, o.rows_purged, o.rows_held, o.batches, NULL, NULL,
                 NULL, COALESCE(o.finished_at, o.started_at), o.role, o.role, prev, NULL);
        l.hash := customer_vault._evidence_hash(l);
        INSERT INTO customer_vault.purge_log_entries SELECT l.*;
        prev := l.hash;
    END LOOP;
    IF next_id > 0 THEN
        INSERT INTO customer_vault.evidence_heads VALUES ('purge_log_entries', next_id, prev);
    END IF;
END
$$;
-- out of the extension first: that also takes them out of its pg_dump configuration
ALTER EXTENSION customer_vault DROP TABLE customer_vault.legal_holds_0_1_0;
ALTER EXTENSION customer_vault DROP SEQUENCE customer_vault.legal_holds_id_seq;
ALTER EXTENSION customer_vault DROP TABLE customer_vault.purge_log_0_1_0;
ALTER EXTENSION customer_vault DROP SEQUENCE customer_vault.purge_log_id_seq;
DROP TABLE customer_vault.legal_holds_0_1_0, customer_vault.purge_log_0_1_0;

-- consent (40_consent.sql): event triggers need their functions (replayed above)
CREATE EVENT TRIGGER customer_vault_consent_policy_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE POLICY', 'ALTER POLICY')
    EXECUTE FUNCTION customer_vault._consent_policy_ddl();
CREATE EVENT TRIGGER customer_vault_consent_policy_dropped ON sql_drop
    WHEN TAG IN ('DROP POLICY')
    EXECUTE FUNCTION customer_vault._consent_policy_dropped();
