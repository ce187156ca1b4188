-- The decrypt audit: one access_log row per statement and key, written by
-- the audit worker in its own transaction, so rows survive the reader's
-- ROLLBACK, READ ONLY and SERIALIZABLE transactions, errors in the middle of
-- a statement and rolled-back subtransactions.  The log is append-only and
-- hash-chained.  Each case runs under its own application_name and waits
-- for the worker (rows of earlier tests may still be arriving).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_al_reader IN ROLE customer_vault_reader;
CREATE ROLE regress_al_auditor IN ROLE customer_vault_auditor;
CREATE ROLE regress_al_none;
RESET client_min_messages;
SELECT customer_vault.create_key('al_key') > 0 AS created;
SELECT customer_vault.create_key('al_key2') > 0 AS created;
CREATE TABLE al_t (id int PRIMARY KEY, v customer_vault.encrypted_text, w customer_vault.encrypted_text);
INSERT INTO al_t SELECT i, customer_vault.encrypt('secret ' || i, 'al_key', i::text),
                          customer_vault.encrypt('other ' || i, 'al_key2')
  FROM generate_series(1, 3) i;
GRANT SELECT ON al_t TO regress_al_reader, regress_al_none;
CREATE TABLE al_p (id int PRIMARY KEY, email text);
INSERT INTO al_p VALUES (1, 'p1@example.com'), (2, 'p2@example.com');
SELECT customer_vault.protect_column('al_p', 'email', 'al_key', 'id');
GRANT SELECT ON al_p, al_p_decrypted TO regress_al_reader;

-- the rows of one case (its application_name), once at least n have arrived
CREATE FUNCTION pg_temp.al_rows(app text, n int)
    RETURNS TABLE(role name, session_role name, purpose text, key text, value_count bigint, mode text,
                  has_query_id boolean)
    LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN (SELECT count(*) FROM customer_vault.access_log l WHERE l.application_name = app) >= n;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN QUERY SELECT l.role, l.session_role, l.purpose, l.key, l.value_count, l.mode, l.query_id IS NOT NULL
                   FROM customer_vault.access_log l WHERE l.application_name = app ORDER BY l.id;
END
$$;

-- a plain SELECT: one row per key, with the values it decrypted
SET application_name = 'al_select';
SET ROLE regress_al_reader;
SET customer_vault.purpose = 'billing';
SELECT customer_vault.decrypt(v, id::text), customer_vault.decrypt(w) FROM al_t ORDER BY id;
RESET customer_vault.purpose;
RESET ROLE;
SELECT * FROM pg_temp.al_rows('al_select', 2);

-- ROLLBACK of the reader
SET application_name = 'al_rollback';
BEGIN;
SET LOCAL ROLE regress_al_reader;
SELECT count(customer_vault.decrypt(v, id::text)) FROM al_t;
ROLLBACK;
SELECT * FROM pg_temp.al_rows('al_rollback', 1);

-- a READ ONLY transaction
SET application_name = 'al_read_only';
BEGIN READ ONLY;
SET LOCAL ROLE regress_al_reader;
SELECT count(customer_vault.decrypt(v, id::text)) FROM al_t WHERE id <= 2;
COMMIT;
SELECT * FROM pg_temp.al_rows('al_read_only', 1);

-- SERIALIZABLE, rolled back
SET application_name = 'al_serializable';
BEGIN ISOLATION LEVEL SERIALIZABLE;
SET LOCAL ROLE regress_al_reader;
SELECT count(customer_vault.decrypt(v, id::text)) FROM al_t WHERE id = 1;
ROLLBACK;
SELECT * FROM pg_temp.al_rows('al_serializable', 1);

-- an error in the middle of a statement: the values decrypted before it count
SET application_name = 'al_error';
SET ROLE regress_al_reader;
SELECT customer_vault.decrypt(v, id::text), 1 / (id - 3) FROM al_t ORDER BY id;
RESET ROLE;
SELECT * FROM pg_temp.al_rows('al_error', 1);

-- a subtransaction rolled back by an exception block, inside a statement that goes on
SET application_name = 'al_subxact';
SET ROLE regress_al_reader;
DO $$
BEGIN
    BEGIN
        PERFORM customer_vault.decrypt(v, id::text) FROM al_t;
        RAISE EXCEPTION 'undone';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
    PERFORM customer_vault.decrypt(w) FROM al_t WHERE id = 1;
END
$$;
RESET ROLE;
SELECT * FROM pg_temp.al_rows('al_subxact', 2);

-- the decrypted view of a protected column
SET application_name = 'al_view';
SET ROLE regress_al_reader;
SELECT email FROM al_p_decrypted ORDER BY id;
RESET ROLE;
SELECT * FROM pg_temp.al_rows('al_view', 1);

-- a failed decryption (no right) and ciphertext-only reads record nothing;
-- audit_decrypt = off records nothing, and only superusers may set it
SET application_name = 'al_nothing';
SET ROLE regress_al_none;
SELECT count(customer_vault.decrypt(v, id::text)) FROM al_t;
SELECT count(v) FROM al_t;
SET customer_vault.audit_decrypt = off;
RESET ROLE;
SET customer_vault.audit_decrypt = off;
SELECT count(customer_vault.decrypt(v, id::text)) FROM al_t;
RESET customer_vault.audit_decrypt;
-- the marker: the worker writes in queue order, so nothing else is pending before it
SELECT count(customer_vault.decrypt(w)) FROM al_t WHERE id = 1;
SELECT * FROM pg_temp.al_rows('al_nothing', 1);

-- a tiny queue: statements wait for room, nothing is lost
SET application_name = 'al_tiny';
SET customer_vault.audit_queue_size = 1;
DO $$
BEGIN
    FOR i IN 1..20 LOOP
        EXECUTE 'SELECT customer_vault.decrypt(v, id::text) FROM al_t WHERE id = 1';
    END LOOP;
END
$$;
RESET customer_vault.audit_queue_size;
SELECT count(*), sum(value_count) FROM pg_temp.al_rows('al_tiny', 20);

-- a queue that stays full: the statement fails after audit_wait rather than
-- go unrecorded (the record goes to the server log when it aborts)
SET application_name = 'al_full';
SET customer_vault.audit_queue_size = 0;
SET customer_vault.audit_wait = '100ms';
SELECT customer_vault.decrypt(v, id::text) FROM al_t WHERE id = 1;
RESET customer_vault.audit_queue_size;
RESET customer_vault.audit_wait;
-- non-superusers cannot change the test settings either
SET ROLE regress_al_reader;
SET customer_vault.audit_queue_size = 0;
SET customer_vault.audit_wait = 0;
RESET ROLE;

-- value mode: per row the (hashed) subjects of the values with their counts;
-- a protected column's subject is its context column (the id here), an
-- explicit decrypt's its context argument; subject_access(subject) finds them
SET application_name = 'al_value';
SET customer_vault.audit_decrypt = value;
SET ROLE regress_al_reader;
SELECT customer_vault.decrypt(v, id::text) FROM al_t WHERE id IN (1, 2) ORDER BY id;
SELECT customer_vault.decrypt(v, '2') FROM al_t WHERE id = 2;
SELECT email FROM al_p_decrypted ORDER BY id;
SELECT count(customer_vault.decrypt(w)) FROM al_t;
RESET ROLE;
RESET customer_vault.audit_decrypt;
SELECT * FROM pg_temp.al_rows('al_value', 4);
SELECT l.subjects, l.more_values FROM customer_vault.access_log l WHERE l.application_name = 'al_value' ORDER BY l.id;
SELECT role, purpose, key, regexp_replace(what, 'query id -?[0-9]+', 'query id N') AS what
  FROM customer_vault.subject_access('2') ORDER BY at, what;
SELECT count(*) AS unknown_subject FROM customer_vault.subject_access('no such subject');
-- more distinct subjects than a row holds (16): the rest are counted as more
SET application_name = 'al_value_many';
SET customer_vault.audit_decrypt = value;
SELECT count(customer_vault.decrypt(v, id::text)) FROM al_t, generate_series(1, 20) g;
SELECT count(customer_vault.decrypt(customer_vault.encrypt('x', 'al_key', g::text), g::text)) FROM generate_series(1, 20) g;
RESET customer_vault.audit_decrypt;
SELECT count(*) FROM pg_temp.al_rows('al_value_many', 2);
SELECT value_count, subjects, more_values FROM customer_vault.access_log
 WHERE application_name = 'al_value_many' ORDER BY id;
SET ROLE regress_al_reader;
SELECT * FROM customer_vault.subject_access('2');
RESET ROLE;
SET ROLE regress_al_auditor;
SELECT count(*) > 0 AS auditor_sees FROM customer_vault.subject_access('2');
RESET ROLE;

-- nothing in the log holds plaintext or a context
SELECT count(*) AS rows_with_secrets FROM customer_vault.access_log_entries e
 WHERE e.application_name LIKE 'al\_%' AND e::text ~ '(secret [0-9]|other [0-9]|p[12]@example\.com|al_p)';

-- who may read it: auditor and admin, not the reader or anybody else
SET ROLE regress_al_reader;
SELECT count(*) FROM customer_vault.access_log;
SELECT customer_vault.verify_access_log();
SET ROLE regress_al_none;
SELECT count(*) FROM customer_vault.access_log_entries;
SET ROLE regress_al_auditor;
SELECT count(*) > 0 AS auditor_reads FROM customer_vault.access_log;
SELECT customer_vault.verify_access_log() AS broken;
SELECT count(*) FROM customer_vault.access_log_entries;
RESET ROLE;

-- the chain's hash (_access_log_hash, PL/pgSQL since 0.5.0) is over the bytes
-- of the 0.4.0 SQL function, written out here: entries of statement mode and
-- of value mode with subjects and with none (an explicit decrypt without a
-- context), so entries written before an upgrade verify as written
SELECT e.mode, cardinality(e.subject_hashes) > 0 AS subjects, count(*) > 0 AS some,
       bool_and(e.hash = customer_vault._access_log_hash(e)) AS recomputed,
       bool_and(e.hash = sha256(COALESCE(e.prev_hash, ''::bytea) || convert_to(
           jsonb_build_array('access_log_entries', e.id,
               (EXTRACT(epoch FROM e.at) * 1000000)::bigint,
               (EXTRACT(epoch FROM e.recorded_at) * 1000000)::bigint,
               e.session_role, e.acting_role, e.purpose, e.key_id, e.key, e.value_count, e.query_id,
               e.application_name, e.client_addr, e.pid, e.mode,
               (SELECT array_agg(encode(h, 'hex') ORDER BY o) FROM unnest(e.subject_hashes) WITH ORDINALITY AS u(h, o)),
               e.subject_values, e.more_values)::text, 'UTF8'))) AS formula_0_4_0
  FROM customer_vault.access_log_entries e WHERE e.application_name LIKE 'al\_%'
 GROUP BY 1, 2 ORDER BY 1, 2;

-- append-only, even for a superuser, and under session_replication_role = replica
SELECT max(id) AS last FROM customer_vault.access_log_entries \gset
UPDATE customer_vault.access_log_entries SET value_count = 1 WHERE id = :last;
DELETE FROM customer_vault.access_log_entries WHERE id = :last;
TRUNCATE customer_vault.access_log_entries;
SET session_replication_role = replica;
DELETE FROM customer_vault.access_log_entries WHERE id = :last;
RESET session_replication_role;
-- a tampered row (triggers disabled by a superuser) is found, and its repair too
SELECT min(id) AS first FROM customer_vault.access_log_entries WHERE application_name = 'al_select' \gset
ALTER TABLE customer_vault.access_log_entries DISABLE TRIGGER access_log_entries_no_update_delete;
UPDATE customer_vault.access_log_entries SET value_count = value_count + 1 WHERE id = :first;
SELECT customer_vault.verify_access_log() = :first AS tampered_row_found;
UPDATE customer_vault.access_log_entries SET value_count = value_count - 1 WHERE id = :first;
SELECT customer_vault.verify_access_log() IS NULL AS intact_again;
-- a row removed at the end is found as well
CREATE TEMP TABLE al_saved AS SELECT * FROM customer_vault.access_log_entries WHERE id = :last;
DELETE FROM customer_vault.access_log_entries WHERE id = :last;
SELECT customer_vault.verify_access_log() = :last AS removed_row_found;
INSERT INTO customer_vault.access_log_entries SELECT * FROM al_saved;
ALTER TABLE customer_vault.access_log_entries ENABLE ALWAYS TRIGGER access_log_entries_no_update_delete;
SELECT customer_vault.verify_access_log() IS NULL AS intact_again;

RESET application_name;
DROP TABLE al_t, al_p CASCADE;
DROP ROLE regress_al_reader, regress_al_auditor, regress_al_none;
