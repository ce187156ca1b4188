-- The blind index is not a plaintext oracle: computing one for a guess is a
-- read right (readers only); protect_column's indexes are bound to their
-- column (a guess indexed in one column says nothing about another) and may
-- be truncated; writers search with lookup(), which returns context values
-- only, respects their row security and is logged; no planner statistics on
-- blind-index columns.  The decrypted view belongs to the extension's owner
-- and nobody else may redefine it.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_bi_app IN ROLE customer_vault_writer;
CREATE ROLE regress_bi_reader IN ROLE customer_vault_reader;
CREATE ROLE regress_bi_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_bi_auditor IN ROLE customer_vault_auditor;
RESET client_min_messages;
SELECT customer_vault.create_key('bi_key') > 0 AS created;
CREATE SCHEMA regress_bi AUTHORIZATION regress_bi_admin;
GRANT USAGE ON SCHEMA regress_bi TO regress_bi_app, regress_bi_reader;

-- the admin protects a table of its own: a full-length index on email, a
-- 4-bit one on a low-entropy diagnosis column
SET ROLE regress_bi_admin;
CREATE TABLE regress_bi.patients (id int PRIMARY KEY, email text, diagnosis text);
INSERT INTO regress_bi.patients
SELECT g, 'p' || g || '@example.com', CASE WHEN g % 10 = 0 THEN 'rare' ELSE 'common' END
  FROM generate_series(1, 1000) g;
SELECT customer_vault.protect_column('regress_bi.patients', 'email', 'bi_key', 'id', 'email_bidx');
SELECT customer_vault.protect_column('regress_bi.patients', 'diagnosis', 'bi_key', 'id', 'diagnosis_bidx', 4);
SELECT customer_vault.protect_column('regress_bi.patients', 'diagnosis', 'bi_key', 'id', 'x', 0);
GRANT SELECT (id, email, diagnosis), INSERT, UPDATE ON regress_bi.patients TO regress_bi_app;
GRANT SELECT ON regress_bi.patients TO regress_bi_reader;
SELECT column_name, blind_index_column, blind_index_bits FROM customer_vault.protected_columns
 WHERE schema_name = 'regress_bi' ORDER BY 1;
-- the admin cannot compute a blind index for a guess, in any way
SELECT customer_vault.blind_index('rare', 'bi_key');
SELECT customer_vault.blind_index('rare', 'bi_key', 16);
SELECT customer_vault.column_blind_index('regress_bi.patients', 'diagnosis', 'rare');
INSERT INTO customer_vault.protected_columns (schema_name, table_name, column_name, key_name, binding)
VALUES ('regress_bi', 'scratch', 'v', 'bi_key', '1:x');
CREATE TABLE regress_bi.scratch (v text, v_bidx bytea);
CREATE TRIGGER forged BEFORE INSERT ON regress_bi.scratch FOR EACH ROW
    EXECUTE FUNCTION customer_vault._protect_trigger('v', 'bi_key', '34:regress_bi.patients.diagnosis', '', 'v_bidx', '4');
RESET ROLE;

-- a table the admin does not own, protected by its owner
CREATE TABLE bi_victims (id int PRIMARY KEY, diagnosis text);
INSERT INTO bi_victims SELECT g, CASE WHEN g % 2 = 0 THEN 'rare' ELSE 'common' END FROM generate_series(1, 10) g;
SELECT customer_vault.protect_column('bi_victims', 'diagnosis', 'bi_key', 'id', 'diagnosis_bidx');
SET ROLE regress_bi_admin;
SELECT customer_vault._blind_index_rewrite('bi_victims', 'diagnosis', 'rare');
SELECT customer_vault._register_protection('bi_victims', 'id', 'bi_key', NULL, NULL, NULL);
SELECT customer_vault._finish_protection('bi_victims', 'diagnosis');
SELECT customer_vault._refresh_decrypted_view('bi_victims');
-- guesses indexed in a column of its own protected under the same key...
CREATE TABLE regress_bi.guesses (id int PRIMARY KEY, diagnosis text);
SELECT customer_vault.protect_column('regress_bi.guesses', 'diagnosis', 'bi_key', 'id', 'diagnosis_bidx');
INSERT INTO regress_bi.guesses VALUES (1, 'rare'), (2, 'common');
RESET ROLE;
-- ...match nothing in the victim's column (the index is bound to its column)
SELECT count(*) AS guesses_matching_victims
  FROM bi_victims v JOIN regress_bi.guesses g ON g.diagnosis_bidx = v.diagnosis_bidx;
SELECT octet_length(diagnosis_bidx) AS full_length FROM bi_victims WHERE id = 1;

-- truncation: 4 bits, one byte, at most 16 distinct values over 1000 rows
SELECT count(DISTINCT diagnosis_bidx) <= 16 AS few_values, max(octet_length(diagnosis_bidx)) AS bytes,
       bool_and(get_byte(diagnosis_bidx, 0) & 15 = 0) AS low_bits_clear
  FROM regress_bi.patients;
SELECT count(DISTINCT email_bidx) AS distinct_email_indexes, max(octet_length(email_bidx)) AS bytes
  FROM regress_bi.patients;

-- the writer: no blind index for a guess, no reading the index back
SET ROLE regress_bi_app;
SELECT customer_vault.blind_index('rare', 'bi_key');
SELECT customer_vault.column_blind_index('regress_bi.patients', 'diagnosis', 'rare');
INSERT INTO regress_bi.patients (id, email, diagnosis) VALUES (5001, 'guess@example.com', 'rare')
RETURNING diagnosis_bidx;
SELECT id FROM regress_bi.patients WHERE email_bidx IS NOT NULL LIMIT 1;
-- but it finds rows by equality: context values only
SELECT * FROM customer_vault.lookup('regress_bi.patients', 'email', 'p7@example.com');
SELECT count(*) AS no_match FROM customer_vault.lookup('regress_bi.patients', 'email', 'nobody@example.com');
SELECT count(*) AS null_match FROM customer_vault.lookup('regress_bi.patients', 'email', NULL);
-- a truncated index gives candidates: every rare row and maybe more
SELECT count(*) >= 100 AS candidates, bool_and(c::int % 10 = 0) OR count(*) > 100 AS candidates_only
  FROM customer_vault.lookup('regress_bi.patients', 'diagnosis', 'rare') c;
SELECT customer_vault.lookup('regress_bi.patients', 'id', '7');
-- no oracle on a table it may not read: the same error whether a value matches or not
SELECT customer_vault.lookup('bi_victims', 'diagnosis', 'rare');
SELECT customer_vault.lookup('bi_victims', 'diagnosis', 'no such value');
SELECT * FROM customer_vault.blind_index_lookups;
RESET ROLE;

-- row security of the caller holds: rows hidden from the writer are not found
ALTER TABLE regress_bi.patients ENABLE ROW LEVEL SECURITY;
CREATE POLICY first_half ON regress_bi.patients FOR SELECT TO regress_bi_app USING (id <= 500);
SET ROLE regress_bi_app;
SELECT * FROM customer_vault.lookup('regress_bi.patients', 'email', 'p7@example.com');
SELECT count(*) AS hidden_row FROM customer_vault.lookup('regress_bi.patients', 'email', 'p700@example.com');
RESET ROLE;
ALTER TABLE regress_bi.patients DISABLE ROW LEVEL SECURITY;

-- the reader filters a truncated index's false positives by decrypting
SET ROLE regress_bi_reader;
SELECT count(*) AS rare_rows FROM regress_bi.patients_decrypted
 WHERE diagnosis_bidx = customer_vault.column_blind_index('regress_bi.patients', 'diagnosis', 'rare')
   AND diagnosis = 'rare';
SELECT id FROM regress_bi.patients
 WHERE email_bidx = customer_vault.column_blind_index('regress_bi.patients', 'email', 'p8@example.com');
SELECT count(*) AS reader_lookup FROM customer_vault.lookup('regress_bi.patients', 'email', 'p9@example.com');
RESET ROLE;

-- every lookup is counted, for the auditor
SET ROLE regress_bi_auditor;
SELECT role, schema_name, table_name, column_name, calls, found > 0 AS found_some
  FROM customer_vault.blind_index_lookup_counts ORDER BY role, column_name;
DELETE FROM customer_vault.blind_index_lookups;
RESET ROLE;

-- no planner statistics on blind-index columns: EXPLAIN estimates do not
-- tell how many rows share a guessed value
CREATE TABLE bi_visits (id int PRIMARY KEY, reason text);
INSERT INTO bi_visits SELECT g, CASE WHEN g % 10 = 0 THEN 'hiv' ELSE 'checkup' END FROM generate_series(1, 2000) g;
ANALYZE bi_visits;
SELECT customer_vault.protect_column('bi_visits', 'reason', 'bi_key', 'id', 'reason_bidx');
ANALYZE bi_visits;
-- (the default statistics target is -1 up to 16, NULL from 17 on)
SELECT attname, coalesce(attstattarget, -1) AS attstattarget FROM pg_attribute
 WHERE attrelid = 'bi_visits'::regclass AND attname IN ('reason', 'reason_bidx') ORDER BY 1;
SELECT count(*) AS bidx_statistics FROM pg_stats WHERE tablename = 'bi_visits' AND attname = 'reason_bidx';
CREATE FUNCTION pg_temp.estimate(guess text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM bi_visits WHERE reason_bidx = %L::bytea',
                   customer_vault.column_blind_index('bi_visits', 'reason', guess)) INTO plan;
    RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric;
END
$$;
SELECT pg_temp.estimate('hiv') = pg_temp.estimate('checkup') AS same_estimate,
       pg_temp.estimate('hiv') = pg_temp.estimate('never stored') AS same_as_absent;

-- the decrypted view belongs to the extension's owner, not to the admin
SELECT c.relname, c.relowner = e.extowner AS owned_by_extension_owner
  FROM pg_class c, pg_extension e
 WHERE e.extname = 'customer_vault' AND c.relname IN ('patients_decrypted', 'bi_victims_decrypted', 'guesses_decrypted')
 ORDER BY 1;
-- nobody redefines, alters or re-owns it
SET ROLE regress_bi_admin;
CREATE OR REPLACE VIEW regress_bi.patients_decrypted AS SELECT * FROM regress_bi.patients;
ALTER VIEW regress_bi.patients_decrypted SET (security_invoker = false);
ALTER VIEW regress_bi.patients_decrypted OWNER TO regress_bi_admin;
-- the schema's owner may drop it, but not put a view of its own in its place
DROP VIEW regress_bi.patients_decrypted;
CREATE VIEW regress_bi.patients_decrypted AS SELECT * FROM regress_bi.patients;
CREATE TABLE regress_bi.patients_decrypted (id int);
-- protect_column's view comes back through the extension
SELECT customer_vault._refresh_decrypted_view('regress_bi.patients');
RESET ROLE;
-- not even a superuser changes it by hand
ALTER VIEW regress_bi.patients_decrypted OWNER TO regress_bi_admin;
CREATE OR REPLACE VIEW regress_bi.patients_decrypted AS SELECT * FROM regress_bi.patients;
CREATE RULE r AS ON INSERT TO regress_bi.patients_decrypted DO INSTEAD NOTHING;
SELECT c.relowner = e.extowner AS owned_by_extension_owner, pg_get_viewdef(c.oid) LIKE '%_open_column%' AS decrypts
  FROM pg_class c, pg_extension e
 WHERE e.extname = 'customer_vault' AND c.oid = 'regress_bi.patients_decrypted'::regclass;
SET ROLE regress_bi_reader;
SELECT id, email, diagnosis FROM regress_bi.patients_decrypted WHERE id IN (7, 10) ORDER BY id;
RESET ROLE;

DROP TABLE bi_victims, bi_visits CASCADE;
DROP SCHEMA regress_bi CASCADE;
DROP ROLE regress_bi_app, regress_bi_reader, regress_bi_admin, regress_bi_auditor;
