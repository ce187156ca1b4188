-- The consent ledger's checks in a form cheap to prepare (part GRANTIMPORT,
-- issue 15: grant_consent latency).  Every INSERT into the ledger (one per
-- grant_consent, withdraw_consent, erasure redact) reads each check of the
-- table back from the catalog and prepares it anew: the CASE of the subject
-- form check and the IN list of the action check took ~15% of a grant's CPU
-- (perf).  The subject form check is now the C function _ledger_subject_form,
-- and since part PERF the action check is folded into it: the ledger has one
-- check (each costs every INSERT a read and a preparation).  What they accept
-- and refuse is unchanged: the function gives what the action check AND the
-- CASE gave (NULL included, which a CHECK lets pass) for every combination,
-- and bad rows are still refused.
\set VERBOSITY terse
-- the stored checks are small: no CASE and no array built from a list (their
-- CASE and IN list took 2,695 and 875 characters on PostgreSQL 15); node names,
-- not a length, since a node's text form grows with the server version (the
-- fields of a CASE, of an ARRAY[...] and of an AND/OR/NOT node)
SELECT c.conname,
       c.conbin::text !~ ' :(casetype|elements|boolop) ' AS small
  FROM pg_catalog.pg_constraint c
 WHERE c.conrelid = 'customer_vault.consent_ledger'::regclass AND c.contype = 'c'
 ORDER BY 1;
-- and fold to nothing: no array to build, no CASE to simplify
SELECT pg_catalog.pg_get_constraintdef(c.oid) AS def
  FROM pg_catalog.pg_constraint c
 WHERE c.conrelid = 'customer_vault.consent_ledger'::regclass AND c.contype = 'c'
 ORDER BY c.conname;

-- the function against the two checks it replaces, every combination (450)
SELECT count(*) AS combinations,
       count(*) FILTER (WHERE f IS DISTINCT FROM c) AS differ,
       count(*) FILTER (WHERE f IS NULL) AS null_results,
       count(*) FILTER (WHERE f) AS accepted
  FROM (SELECT customer_vault._ledger_subject_form(v, s, h, a) AS f,
               a = ANY ('{grant,withdraw,redact}'::text[]) AND
               CASE v WHEN 1 THEN s IS NOT NULL AND h IS NULL AND a <> 'redact'
                      WHEN 2 THEN s IS NULL AND pg_catalog.length(h) = 32
                      ELSE false END AS c
          FROM (VALUES (NULL::smallint), (0::smallint), (1::smallint), (2::smallint), (3::smallint)) v(v),
               (VALUES (NULL::text), ('x'), ('')) s(s),
               (VALUES (NULL::bytea), (''::bytea), (decode(repeat('ab', 32), 'hex')),
                       (decode(repeat('ab', 31), 'hex')), (decode(repeat('ab', 33), 'hex'))) h(h),
               (VALUES (NULL::text), ('grant'), ('redact'), ('withdraw'), ('redac'), ('redactx')) a(a)) x;

-- rows of a wrong form are refused by the table (each in a rolled-back subtransaction)
SELECT customer_vault.define_purpose('lc_news');
SELECT customer_vault.grant_consent('lc-1', 'lc_news', '{"form": "lc"}') > 0 AS granted;
CREATE FUNCTION pg_temp.try_insert(v smallint, s text, h bytea, a text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_vault.consent_ledger
        (id, subject, subject_hash, hash_version, purpose, action, evidence, recorded_at, recorded_by, hash)
    VALUES (-1, s, h, v, 'lc_news', a, '{"x": 1}', now(), 'x', '\x00');
    RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
EXCEPTION
    WHEN check_violation THEN RETURN 'refused: ' || (regexp_match(SQLERRM, 'constraint "([^"]+)"'))[1];
    WHEN raise_exception THEN RETURN 'accepted';
END $$;
SELECT d AS case_, pg_temp.try_insert(v, s, h, a) AS result
  FROM (VALUES ('v1 plain subject', 1::smallint, 'lc-1', NULL::bytea, 'grant'),
               ('v1 with a hash', 1::smallint, 'lc-1', decode(repeat('ab', 32), 'hex'), 'grant'),
               ('v1 without subject', 1::smallint, NULL, NULL, 'grant'),
               ('v1 redact', 1::smallint, 'lc-1', NULL, 'redact'),
               ('v2 hash', 2::smallint, NULL, decode(repeat('ab', 32), 'hex'), 'grant'),
               ('v2 redact', 2::smallint, NULL, decode(repeat('ab', 32), 'hex'), 'redact'),
               ('v2 plain subject too', 2::smallint, 'lc-1', decode(repeat('ab', 32), 'hex'), 'grant'),
               ('v2 short hash', 2::smallint, NULL, decode(repeat('ab', 31), 'hex'), 'grant'),
               ('version 3', 3::smallint, NULL, decode(repeat('ab', 32), 'hex'), 'grant'),
               ('unknown action', 2::smallint, NULL, decode(repeat('ab', 32), 'hex'), 'revoke'),
               ('v1 unknown action', 1::smallint, 'lc-1', NULL, 'grant ')) t(d, v, s, h, a);
CREATE FUNCTION pg_temp.explain_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    l text;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        RETURN NEXT l;
    END LOOP;
END $$;
-- the grant above and the chain: intact
SELECT customer_vault.verify_ledger() IS NULL AS ledger_intact;
-- the function is nobody's to call but the ledger's owner (a check runs with the rights of whoever
-- writes the ledger, and only the owner does)
SELECT pg_catalog.has_function_privilege('customer_vault_admin',
       'customer_vault._ledger_subject_form(smallint, text, bytea, text)', 'EXECUTE') AS admin_may_call,
       pg_catalog.has_function_privilege('public',
       'customer_vault._ledger_subject_form(smallint, text, bytea, text)', 'EXECUTE') AS public_may_call;

-- the ledger's index of subject hashes is a hash index (random 32-byte keys,
-- equality lookups only), and the lookups of one subject's entries use it
SELECT a.amname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_am a ON a.oid = c.relam
 WHERE c.oid = 'customer_vault.consent_ledger_subject_hash_idx'::regclass;
-- (the hash as a constant: _subject_hash is volatile, it may make the key)
SELECT customer_vault._subject_hash('lc-1') AS lc_hash \gset
SET enable_seqscan = off;
SELECT pg_catalog.count(*) FILTER (WHERE e.line LIKE '%consent_ledger_subject_hash_idx%') > 0 AS uses_index
  FROM pg_temp.explain_lines(pg_catalog.format(
          'SELECT l.id FROM customer_vault.consent_ledger l WHERE l.subject_hash = %L::bytea AND l.purpose = %L',
          :'lc_hash', 'lc_news')) AS e(line);
RESET enable_seqscan;
SELECT count(*) AS lc_entries FROM customer_vault.consent_ledger l
 WHERE l.subject_hash = customer_vault._subject_hash('lc-1') AND l.purpose = 'lc_news';
