-- customer_vault 0.4.0 -> 0.5.0: the hand-written part of the upgrade.
-- Changes to tables, and DROPs of functions whose signature or return type
-- changed, go before the replay; data migrations that need the new
-- functions go after it.

-- part FORGET2: forget_subject's walk moved into C (_forget_walk, statements
-- from _erasure_plan() kept per session); its SQL-built statements and the
-- second reach implementation are gone (one reach: _subject_reach())
DROP FUNCTION customer_vault._erasure_sql(text, regclass, text[]);
DROP FUNCTION customer_vault._erasure_filter(regclass, text, jsonb);
DROP FUNCTION customer_vault._erasure_reach();

-- part LEDGER (issue 12): the consent ledger and the legal hold log store the
-- subject as its keyed hash (hash version 2) from now on, the plain subject
-- in evidence_subjects (deleted by forget_subject); entries written before
-- keep their plain subject and hash version 1, and verify as written
-- (the form check's function before the check; replayed below with its comment)
CREATE FUNCTION customer_vault._ledger_subject_form(hash_version smallint, subject text,
                                                    subject_hash bytea, action text)
    RETURNS boolean
    LANGUAGE C IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_ledger_subject_form';
ALTER TABLE customer_vault.consent_ledger
    ALTER COLUMN subject DROP NOT NULL,
    ADD COLUMN subject_hash bytea,
    ADD COLUMN hash_version smallint NOT NULL DEFAULT 1,
    -- one check for the action and the subject's form (part PERF: each check
    -- is prepared anew by every INSERT); 0.4.0's entries (grant, withdraw,
    -- hash version 1) pass it
    DROP CONSTRAINT consent_ledger_action_check,
    ADD CONSTRAINT consent_ledger_subject_form_check
        CHECK (customer_vault._ledger_subject_form(hash_version, subject, subject_hash, action));
CREATE INDEX consent_ledger_subject_hash_idx ON customer_vault.consent_ledger USING hash (subject_hash);
ALTER TABLE customer_vault.consent_state ADD COLUMN subject_hash bytea;
CREATE INDEX consent_state_subject_hash_idx ON customer_vault.consent_state USING hash (subject_hash);
CREATE TABLE customer_vault.evidence_subjects (
    subject_hash bytea PRIMARY KEY CHECK (pg_catalog.length(subject_hash) = 32),
    subject      text NOT NULL CHECK (subject <> '')
);
-- part FORGETREV: forget_subject finds the subject's other spellings by ranges (C collation)
CREATE INDEX evidence_subjects_subject_idx ON customer_vault.evidence_subjects (subject COLLATE "C");
SELECT pg_catalog.pg_extension_config_dump('customer_vault.evidence_subjects', '');
ALTER TABLE customer_vault.legal_hold_events
    ALTER COLUMN subject DROP NOT NULL,
    ADD COLUMN subject_hash bytea,
    ADD COLUMN hash_version smallint NOT NULL DEFAULT 1,
    DROP CONSTRAINT legal_hold_events_action_check,
    ADD CONSTRAINT legal_hold_events_action_check CHECK (action IN ('place', 'release', 'redact')),
    ADD CONSTRAINT legal_hold_events_redact_check CHECK (action <> 'redact' OR (hold_id < id AND until IS NULL)),
    ADD CONSTRAINT legal_hold_events_subject_form_check CHECK (CASE hash_version
        WHEN 1 THEN subject IS NOT NULL AND subject_hash IS NULL AND action <> 'redact'
        WHEN 2 THEN subject IS NULL AND pg_catalog.length(subject_hash) = 32
        ELSE false END);
CREATE INDEX legal_hold_events_subject_hash_idx ON customer_vault.legal_hold_events (subject_hash);
-- the append functions take the subject's hash (new last argument)
DROP FUNCTION customer_vault._ledger_append(text, text, text, jsonb, timestamptz);
DROP FUNCTION customer_vault._legal_hold_append(text, bigint, text, text, timestamptz);

--@ replay

-- part MASK2 (issue 14): the <table>_masked views of 0.4.0 are security_invoker
-- views of the extension's owner (a masked reader needed SELECT on the whole
-- table, plaintext included); rebuild each as a view of customer_vault_mask_owner
-- (which also pins every masked column's rule).  A view that cannot be rebuilt
-- is dropped with a WARNING; compliance_report lists its table.
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT DISTINCT m.relid FROM customer_vault.mask_rules m
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) m.relid::pg_catalog.oid
              WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class v
                             WHERE v.relnamespace OPERATOR(pg_catalog.=) c.relnamespace
                               AND v.relname::pg_catalog.text OPERATOR(pg_catalog.=) (c.relname::pg_catalog.text OPERATOR(pg_catalog.||) '_masked')
                               AND v.relkind OPERATOR(pg_catalog.=) 'v')
    LOOP
        BEGIN
            PERFORM customer_vault._masked_view_build(t);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING USING MESSAGE = pg_catalog.format('the masked view of table %s could not be rebuilt', t),
                DETAIL = SQLERRM,
                HINT = 'Run customer_vault.mask_column() on the table to make it again.';
        END;
    END LOOP;
END
$$;

-- TRIGGER (issue 15): one protect trigger per table.  Every table with
-- protected columns gets cv_protect, made from its registry rows, in place of
-- its per-column triggers cv_protect_<attnum> (the arguments carry the same
-- keys, bindings and contexts, so values written before stay readable and
-- blind indexes stay comparable).
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT p.relid
               FROM customer_vault.protected_columns p
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
    LOOP
        PERFORM customer_vault._build_protect_trigger(r.relid);
    END LOOP;
END
$$;
