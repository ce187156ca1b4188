-- The correctness checks `make bench` made on its own tables, at a small size
-- and with deterministic data, so they hold in every `make test`: inserts
-- through encrypt(), encrypt_for_subject() and protected columns read back
-- (sums of decrypted lengths), blind-index lookups find the right rows (also
-- through <table>_decrypted), reencrypt after rotate_key leaves no value under
-- an older version, consent policies over many subjects (the integer bitmap,
-- the text hash table and the index-probe fallback of a too small cache, with
-- bulk rows and ledger entries made in one statement) show exactly the
-- consenting rows, the ledger stays intact, and purge() in many batches keeps
-- exactly the held and unexpired rows and logs what it did.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE SCHEMA bench_checks;
RESET client_min_messages;
SELECT customer_vault.create_key('bench_checks') > 0 AS created;

-- 2000 customers: email 25 bytes, phone 12, notes 200, as in the bench
CREATE TABLE bench_checks.src AS
SELECT g::bigint AS id, 'cust.' || lpad(g::text, 8, '0') || '@example.com' AS email,
       '+1' || lpad(((g * 7919 + 2015550000) % 10000000000)::text, 10, '0') AS phone,
       left(repeat(md5(g::text), 7), 200) AS notes
  FROM generate_series(1, 2000) g;
CREATE TABLE bench_checks.t_enc (id bigint PRIMARY KEY, email customer_vault.encrypted_text,
                                 phone customer_vault.encrypted_text, notes customer_vault.encrypted_text);
CREATE TABLE bench_checks.t_subj (LIKE bench_checks.t_enc INCLUDING ALL);
CREATE TABLE bench_checks.t_prot (id bigint PRIMARY KEY, email text, phone text, notes text);
CREATE TABLE bench_checks.t_prot_bidx (LIKE bench_checks.t_prot INCLUDING ALL);
SELECT count(customer_vault.protect_column('bench_checks.t_prot', c, 'bench_checks', 'id'))
  FROM unnest(ARRAY['email', 'phone', 'notes']::name[]) c;
SELECT customer_vault.protect_column('bench_checks.t_prot_bidx', 'email', 'bench_checks', 'id', 'email_bidx');
SELECT count(customer_vault.protect_column('bench_checks.t_prot_bidx', c, 'bench_checks', 'id'))
  FROM unnest(ARRAY['phone', 'notes']::name[]) c;

INSERT INTO bench_checks.t_enc
SELECT id, customer_vault.encrypt(email, 'bench_checks', id::text), customer_vault.encrypt(phone, 'bench_checks', id::text),
       customer_vault.encrypt(notes, 'bench_checks', id::text) FROM bench_checks.src;
-- a new subject (a new key) per customer, three values each
INSERT INTO bench_checks.t_subj
SELECT id, customer_vault.encrypt_for_subject('bc-' || id, email, id::text),
       customer_vault.encrypt_for_subject('bc-' || id, phone, id::text),
       customer_vault.encrypt_for_subject('bc-' || id, notes, id::text) FROM bench_checks.src WHERE id <= 300;
INSERT INTO bench_checks.t_prot SELECT id, email, phone, notes FROM bench_checks.src;
INSERT INTO bench_checks.t_prot_bidx SELECT id, email, phone, notes FROM bench_checks.src;

-- the transparent path stored ciphertext and filled the blind index
SELECT (SELECT count(*) FROM bench_checks.t_prot WHERE left(email, 4) <> 'cv1$' OR left(phone, 4) <> 'cv1$' OR left(notes, 4) <> 'cv1$')
     + (SELECT count(*) FROM bench_checks.t_prot_bidx WHERE email_bidx IS NULL OR left(email, 4) <> 'cv1$' OR left(phone, 4) <> 'cv1$')
       AS not_sealed;
SELECT count(DISTINCT customer_vault.key_of(customer_vault.encrypt_for_subject('bc-' || id, 'x'))) AS subject_keys
  FROM bench_checks.src WHERE id <= 300;

-- every value reads back: sums of the decrypted lengths equal the plaintext's
CREATE FUNCTION bench_checks.sums(OUT what text, OUT ok boolean) RETURNS SETOF record LANGUAGE sql AS $$
    WITH p AS (SELECT sum(length(email) + length(phone) + length(notes)) AS all3,
                      sum(length(email) + length(phone) + length(notes)) FILTER (WHERE id <= 300) AS subj,
                      sum(length(email)) AS email, sum(length(phone)) AS phone, sum(length(notes)) AS notes
                 FROM bench_checks.src)
    SELECT 'decrypt() x3', (SELECT sum(length(customer_vault.decrypt(email, id::text)) + length(customer_vault.decrypt(phone, id::text))
                                       + length(customer_vault.decrypt(notes, id::text))) FROM bench_checks.t_enc) = p.all3 FROM p
    UNION ALL
    SELECT 'decrypt() per column', (SELECT sum(length(customer_vault.decrypt(email, id::text))) FROM bench_checks.t_enc) = p.email
                               AND (SELECT sum(length(customer_vault.decrypt(phone, id::text))) FROM bench_checks.t_enc) = p.phone
                               AND (SELECT sum(length(customer_vault.decrypt(notes, id::text))) FROM bench_checks.t_enc) = p.notes FROM p
    UNION ALL
    SELECT 'decrypt() x3, per-subject keys',
           (SELECT sum(length(customer_vault.decrypt(email, id::text)) + length(customer_vault.decrypt(phone, id::text))
                       + length(customer_vault.decrypt(notes, id::text))) FROM bench_checks.t_subj) = p.subj FROM p
    UNION ALL
    SELECT '<table>_decrypted', (SELECT sum(length(email) + length(phone) + length(notes)) FROM bench_checks.t_prot_decrypted) = p.all3 FROM p
    UNION ALL
    SELECT 'the values themselves', NOT EXISTS (
           SELECT 1 FROM bench_checks.src s JOIN bench_checks.t_prot_decrypted d USING (id)
             JOIN bench_checks.t_enc e USING (id)
            WHERE (d.email, d.phone, d.notes) IS DISTINCT FROM (s.email, s.phone, s.notes)
               OR customer_vault.decrypt(e.notes, e.id::text) IS DISTINCT FROM s.notes)
$$;
SELECT * FROM bench_checks.sums();

-- lookups: 400 customers spread over the table found by their blind index,
-- the right row each time, through the table and through the view
SELECT count(*) AS found, count(*) FILTER (WHERE t.id = s.id) AS right_row
  FROM bench_checks.src s
  JOIN bench_checks.t_prot_bidx t ON t.email_bidx = customer_vault.column_blind_index('bench_checks.t_prot_bidx', 'email', s.email)
 WHERE s.id % 5 = 3;
SELECT count(*) AS found, count(*) FILTER (WHERE v.id = s.id AND v.email = s.email AND v.phone = s.phone AND v.notes = s.notes) AS whole_row_right
  FROM bench_checks.src s
  JOIN bench_checks.t_prot_bidx_decrypted v ON v.email_bidx = customer_vault.column_blind_index('bench_checks.t_prot_bidx', 'email', s.email)
 WHERE s.id % 5 = 3;
SELECT count(*) AS unknown_found FROM bench_checks.t_prot_bidx
 WHERE email_bidx = customer_vault.column_blind_index('bench_checks.t_prot_bidx', 'email', 'cust.99999999@example.com');

-- rotation: after rotate_key and reencrypt of every column no value is under
-- an older version, and everything still reads back
SELECT customer_vault.rotate_key('bench_checks') AS v \gset
CALL customer_vault.reencrypt('bench_checks.t_enc', 'email', 300, 'id');
CALL customer_vault.reencrypt('bench_checks.t_enc', 'phone', 300, 'id');
CALL customer_vault.reencrypt('bench_checks.t_enc', 'notes', 300, 'id');
CALL customer_vault.reencrypt('bench_checks.t_prot', 'email', 300);
CALL customer_vault.reencrypt('bench_checks.t_prot', 'phone', 300);
CALL customer_vault.reencrypt('bench_checks.t_prot', 'notes', 300);
SELECT :v AS new_version,
       (SELECT count(*) FROM bench_checks.t_enc
         WHERE customer_vault.key_of(email) <> 'bench_checks:' || :v OR customer_vault.key_of(phone) <> 'bench_checks:' || :v
            OR customer_vault.key_of(notes) <> 'bench_checks:' || :v)
     + (SELECT count(*) FROM bench_checks.t_prot
         WHERE customer_vault.key_of(email::customer_vault.encrypted_text) <> 'bench_checks:' || :v
            OR customer_vault.key_of(phone::customer_vault.encrypted_text) <> 'bench_checks:' || :v
            OR customer_vault.key_of(notes::customer_vault.encrypted_text) <> 'bench_checks:' || :v) AS older_left;
SELECT * FROM bench_checks.sums();

-- consent: 2000 customers, each a data subject, about half consenting;
-- integer subjects under one purpose, 'cust-<id>' under another
SET client_min_messages = warning;
CREATE ROLE regress_cv_bench_marketer;
RESET client_min_messages;
SELECT customer_vault.define_purpose('bc_marketing', 'consent', 'bench checks: integer subjects');
SELECT customer_vault.define_purpose('bc_newsletter', 'consent', 'bench checks: text subjects');
SELECT customer_vault.allow_purpose('regress_cv_bench_marketer', 'bc_marketing');
SELECT customer_vault.allow_purpose('regress_cv_bench_marketer', 'bc_newsletter');
CREATE FUNCTION bench_checks.consents(id bigint) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT (hashint8(id) & 1) = 0 $$;
CREATE FUNCTION bench_checks.subjects(id bigint, OUT subject text, OUT purpose text) RETURNS SETOF record
LANGUAGE sql IMMUTABLE AS $$ VALUES (id::text, 'bc_marketing'), ('cust-' || id, 'bc_newsletter') $$;
CREATE TABLE bench_checks.c_plain AS SELECT id, email FROM bench_checks.src;
CREATE TABLE bench_checks.c_policy AS SELECT id, email FROM bench_checks.src;
CREATE TABLE bench_checks.c_text AS SELECT id, 'cust-' || id AS subject, email FROM bench_checks.src;
GRANT USAGE ON SCHEMA bench_checks TO regress_cv_bench_marketer;
GRANT SELECT ON bench_checks.c_plain, bench_checks.c_policy, bench_checks.c_text TO regress_cv_bench_marketer;
SELECT customer_vault.enable_consent_policy('bench_checks.c_policy', 'id', 'bc_marketing');
SELECT customer_vault.enable_consent_policy('bench_checks.c_text', 'subject', 'bc_newsletter');
-- the policies: restrictive, SELECT, calling the bigint and the text may_process
SELECT c.relname, p.polpermissive, p.polcmd, d.refobjid::regprocedure AS calls
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
  JOIN pg_depend d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_proc'::regclass
 WHERE c.relnamespace = 'bench_checks'::regnamespace AND p.polname = 'customer_vault_consent'
 ORDER BY 1;

-- most rows straight into consent_state (ledger_id 0), as a bulk import
-- would: everyone above 200, 1 in 20 with an end date a year ahead; 1 in 10
-- of the others withdrew earlier
INSERT INTO customer_vault.consent_state (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id)
SELECT s.subject, s.purpose, true, CASE WHEN id % 20 = 0 THEN now() + interval '1 year' END, now() - interval '90 days', NULL, 0
  FROM bench_checks.src, bench_checks.subjects(id) s WHERE id > 200 AND bench_checks.consents(id);
INSERT INTO customer_vault.consent_state (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id)
SELECT s.subject, s.purpose, false, NULL, now() - interval '90 days', now() - interval '1 day', 0
  FROM bench_checks.src, bench_checks.subjects(id) s WHERE id > 200 AND NOT bench_checks.consents(id) AND id % 10 = 0;
-- the others through the functions, many ledger entries in one statement:
-- the consenting ones grant, 1 in 10 of the others grant then withdraw
SELECT count(customer_vault.grant_consent(s.subject, s.purpose,
                 jsonb_build_object('form', 'signup-v3', 'channel', 'web', 'customer', id),
                 CASE WHEN id % 20 = 0 THEN now() + interval '1 year' END)) AS grants
  FROM bench_checks.src, bench_checks.subjects(id) s WHERE id <= 200 AND (bench_checks.consents(id) OR id % 10 = 5);
SELECT count(customer_vault.withdraw_consent(s.subject, s.purpose, '{"channel": "unsubscribe link"}')) AS withdrawals
  FROM bench_checks.src, bench_checks.subjects(id) s WHERE id <= 200 AND NOT bench_checks.consents(id) AND id % 10 = 5;
SELECT customer_vault.verify_ledger() AS ledger_broken_at;
SELECT count(*) AS consenting FROM bench_checks.src WHERE bench_checks.consents(id) \gset
SELECT :consenting AS consenting,
       count(*) FILTER (WHERE purpose = 'bc_marketing') AS live_marketing,
       count(*) FILTER (WHERE purpose = 'bc_newsletter') AS live_newsletter
  FROM customer_vault.consent_state WHERE granted AND (valid_until IS NULL OR valid_until > now());

-- what the role sees: exactly the consenting customers, in a new session
-- (the first count reads the cache once, the others reuse it), with the cache large
-- enough (bitmap / hash table) and too small (an index probe per row)
\c
SET customer_vault.consent_cache_size = 100000;
SELECT customer_vault._consent_cache_builds() AS builds0 \gset
SET ROLE regress_cv_bench_marketer;
SELECT count(*) AS plain FROM bench_checks.c_plain \gset
SELECT count(*) AS int_cold FROM bench_checks.c_policy \gset
SELECT count(*) AS int_warm FROM bench_checks.c_policy \gset
SELECT count(*) AS text_cold FROM bench_checks.c_text \gset
SELECT count(*) AS text_warm FROM bench_checks.c_text \gset
RESET ROLE;
SELECT 'cache large' AS cache, :plain = 2000 AS all_without_rls,
       :int_cold = :consenting AND :int_warm = :consenting AS bigint_exact,
       :text_cold = :consenting AND :text_warm = :consenting AS text_exact,
       customer_vault._consent_cache_builds() - :builds0 AS cache_reads;
\c
SET customer_vault.consent_cache_size = 10;
SET ROLE regress_cv_bench_marketer;
SELECT count(*) AS int_cold FROM bench_checks.c_policy \gset
SELECT count(*) AS int_warm FROM bench_checks.c_policy \gset
SELECT count(*) AS text_cold FROM bench_checks.c_text \gset
SELECT count(*) AS text_warm FROM bench_checks.c_text \gset
RESET ROLE;
SELECT 'cache too small' AS cache,
       :int_cold = :consenting AND :int_warm = :consenting AS bigint_exact,
       :text_cold = :consenting AND :text_warm = :consenting AS text_exact;
\c
-- a subject's withdrawal is seen at the next statement
SELECT customer_vault.withdraw_consent(min(id)::text, 'bc_marketing') > 0 AS withdrawn
  FROM bench_checks.src WHERE bench_checks.consents(id) AND id <= 200;
SET ROLE regress_cv_bench_marketer;
SELECT count(*) = :consenting - 1 AS one_fewer FROM bench_checks.c_policy;
RESET ROLE;
SELECT customer_vault.verify_ledger() AS ledger_broken_at;

-- purge in many batches: 1000 rows, 10 per customer, 3 of every 10 past the
-- 365-day retention on every page; customer 7 is under a legal hold, so the
-- purge keeps its 3 expired rows; a DELETE with the same predicate (no hold
-- check) removes them; both keep every row inside the retention
\set as_of '''2026-06-15 12:00:00+00'''
CREATE TABLE bench_checks.p_purge (customer_id bigint NOT NULL, created_at timestamptz NOT NULL, note text);
INSERT INTO bench_checks.p_purge
SELECT 1 + (id - 1) / 10,
       CASE WHEN id % 10 < 3
            THEN :as_of::timestamptz - interval '366 days' - (id * 37 % 1000) * interval '1 day' - (id % 1440) * interval '1 minute'
            ELSE :as_of::timestamptz - (id * 13 % 330) * interval '1 day' - (id % 1440) * interval '1 minute' END,
       notes
  FROM bench_checks.src WHERE id <= 1000;
CREATE TABLE bench_checks.p_delete AS SELECT * FROM bench_checks.p_purge;
SELECT customer_vault.set_retention('bench_checks.p_purge', 'created_at', '365 days', 'delete', 'customer_id');
SELECT customer_vault.place_legal_hold('7', 'bench checks: litigation hold on one customer') AS hold_id \gset
CREATE FUNCTION bench_checks.stats(tbl regclass, as_of timestamptz,
                                   OUT n bigint, OUT expired bigint, OUT held bigint, OUT inside_checksum bigint)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($q$SELECT count(*), count(*) FILTER (WHERE created_at < $1 - interval '365 days'),
                             count(*) FILTER (WHERE customer_id = 7 AND created_at < $1 - interval '365 days'),
                             COALESCE(sum(hashtext(note)::bigint + customer_id) FILTER (WHERE created_at >= $1 - interval '365 days'), 0)
                        FROM %s$q$, tbl)
       USING as_of INTO n, expired, held, inside_checksum;
END $$;
CREATE TABLE bench_checks.before AS SELECT * FROM bench_checks.stats('bench_checks.p_purge', :as_of);
SELECT n, expired, held FROM bench_checks.before;
SELECT tbl, expired, held, to_purge FROM customer_vault.purge_preview(:as_of) WHERE tbl = 'bench_checks.p_purge'::regclass;
CALL customer_vault.purge(batch_size => 40, as_of => :as_of);
DELETE FROM bench_checks.p_delete WHERE created_at < :as_of::timestamptz - interval '365 days';
SELECT 'purge' AS op, a.n = b.n - b.expired + b.held AS rows_left, a.expired = b.held AS only_held_expired,
       a.held = b.held AS held_kept, a.inside_checksum = b.inside_checksum AS inside_intact
  FROM bench_checks.stats('bench_checks.p_purge', :as_of) a, bench_checks.before b
UNION ALL
SELECT 'delete', a.n = b.n - b.expired, a.expired = 0, a.held = 0, a.inside_checksum = b.inside_checksum
  FROM bench_checks.stats('bench_checks.p_delete', :as_of) a, bench_checks.before b;
SELECT l.rows_purged = b.expired - b.held AS rows_purged_ok, l.rows_held = b.held AS rows_held_ok,
       l.batches > 1 AS several_batches, l.finished_at IS NOT NULL AS finished, l.dry_run
  FROM customer_vault.purge_log l, bench_checks.before b
 WHERE l.tbl = 'bench_checks.p_purge' ORDER BY l.id DESC LIMIT 1;

-- clean up
SELECT customer_vault.release_legal_hold(:hold_id);
SELECT customer_vault.disallow_purpose('regress_cv_bench_marketer', 'bc_marketing');
SELECT customer_vault.disallow_purpose('regress_cv_bench_marketer', 'bc_newsletter');
DELETE FROM customer_vault.consent_state WHERE purpose IN ('bc_marketing', 'bc_newsletter');
SET client_min_messages = warning;
DROP SCHEMA bench_checks CASCADE;
RESET client_min_messages;
DROP ROLE regress_cv_bench_marketer;
