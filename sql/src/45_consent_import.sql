--@ schema

---------------------------------------------------------------------------
-- Bulk consent import (import_consents) and the index it finds earlier
-- grants with
---------------------------------------------------------------------------

-- a subject's ledger entries per purpose: the duplicate check of
-- import_consents (and anyone looking for one subject's entries)
-- a hash index: it stores 4-byte hash codes, so no subject is too long for
-- it (a btree on subject refuses entries over ~2.7 kB)
CREATE INDEX consent_ledger_subject_idx ON customer_vault.consent_ledger USING hash (subject);
-- the same for entries of hash version 2 (0.5.0), which store the subject's
-- keyed hash: a hash index too.  Its keys are uniformly random 32-byte values
-- and every lookup is by equality (duplicate check, erasure, export), so a
-- btree only paid for order nobody reads: 48-byte tuples inserted at random
-- leaves, twice the size of the hash index's 4-byte codes (205 MB against
-- 97 MB at 2.8 million entries), and 100,000 probes plus inserts took 1.6x
-- as long at that size (part GRANTIMPORT, issue 15: import_consents grew
-- faster than linearly with the ledger).
CREATE INDEX consent_ledger_subject_hash_idx ON customer_vault.consent_ledger USING hash (subject_hash);

--@ code

-- Not SECURITY DEFINER, on purpose: the caller's query runs with the
-- caller's rights and settings; only the writes (src/import.c) run as the
-- ledger's owner, security-restricted, after the rows are read and checked.
-- Not STRICT: NULL arguments get errors.
CREATE OR REPLACE FUNCTION customer_vault.import_consents(query text, allow_duplicates boolean DEFAULT false)
    RETURNS bigint
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_import_consents';
COMMENT ON FUNCTION customer_vault.import_consents(text, boolean) IS
    'records the opt-ins a query returns (subject, purpose, evidence[, granted_at][, valid_until]) in one pass, all or nothing; rows already in the ledger are skipped unless allow_duplicates; returns the entries written';

-- the same roles as grant_consent
GRANT EXECUTE ON FUNCTION customer_vault.import_consents(text, boolean)
    TO customer_vault_admin, customer_vault_writer;
