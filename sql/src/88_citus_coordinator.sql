--@ code

---------------------------------------------------------------------------
-- Citus: what writes evidence runs on the coordinator only (part FIXDDL)
---------------------------------------------------------------------------
-- The consent ledger, the legal holds and the erasure receipts are local
-- tables of the coordinator, while consent_state (which they change) is a
-- reference table on every node: a consent change made on a worker
-- connected directly would change consent everywhere with its evidence left
-- on that worker, out of the coordinator's verify_ledger and reports.
-- grant_consent and import_consents check in C (CvRefuseOnCitusWorker);
-- _ledger_append (withdraw_consent), _legal_hold_append (place and release)
-- call this; forget_subject checks in C too.  Not STRICT: a NULL name is named generically.

CREATE OR REPLACE FUNCTION customer_vault._coordinator_only(what text) RETURNS void
    LANGUAGE C VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_coordinator_only';
COMMENT ON FUNCTION customer_vault._coordinator_only(text) IS
    'internal: an error (55000) on a Citus worker, nothing elsewhere: evidence is written on the coordinator only';
