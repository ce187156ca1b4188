-- test/bench/consent.sql: SELECT count(*) over n customers, each its own data
-- subject, about half of them with a live opt-in, read as bench_marketer (a
-- NOLOGIN role allowed both purposes).  Integer subjects (id::text) under
-- 'marketing', text subjects ('cust-<id>') under 'newsletter', so that each
-- session's consent cache holds one kind only.  Most consent rows are
-- INSERTed straight into consent_state as superuser (ledger_id 0); the
-- customers with id <= gmax go through grant_consent()/withdraw_consent(),
-- so the real path is exercised and timed.  Tables, the same rows in each:
--   c_plain   no RLS
--   c_policy  enable_consent_policy(.., 'id', 'marketing')
--   c_exists  RLS with a plain EXISTS subquery on consent_state
--   c_text    a text subject column, enable_consent_policy(.., 'subject', 'newsletter')
-- Each rep counts every table in a new session (\c): the first count is
-- cold (it builds the per-backend consent cache), the reps counts after it
-- warm.  Every count must show exactly the consenting customers.
-- Phases: setup, rep, report.
SELECT :'phase' = 'setup' AS p_setup, :'phase' = 'rep' AS p_rep, :'phase' = 'report' AS p_report \gset

\if :p_setup
SET client_min_messages = warning;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'bench_marketer') THEN
        CREATE ROLE bench_marketer NOLOGIN;
    END IF;
END
$$;
SELECT customer_vault.define_purpose('marketing', 'consent', 'benchmark: integer subjects');
SELECT customer_vault.define_purpose('newsletter', 'consent', 'benchmark: text subjects');
SELECT customer_vault.allow_purpose('bench_marketer', 'marketing');
SELECT customer_vault.allow_purpose('bench_marketer', 'newsletter');
-- a previous size of this run (BENCH_SCALING): start from no consents
DELETE FROM customer_vault.consent_state WHERE purpose IN ('marketing', 'newsletter');
GRANT USAGE ON SCHEMA bench TO bench_marketer;
-- the measuring sessions keep their samples
GRANT INSERT ON bench.samples TO bench_marketer;
GRANT USAGE ON SEQUENCE bench.samples_id_seq TO bench_marketer;
-- for the EXISTS policy, which runs with the querying role's rights
GRANT SELECT ON customer_vault.consent_state TO bench_marketer;

-- which customers consent: about half, spread over the whole id range
CREATE FUNCTION bench.consents(id bigint) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT (hashint8(id) & 1) = 0 $$;
-- the subjects of a customer: integer for 'marketing', text for 'newsletter'
CREATE FUNCTION bench.subjects(id bigint, OUT subject text, OUT purpose text) RETURNS SETOF record
LANGUAGE sql IMMUTABLE AS $$
    VALUES (id::text, 'marketing'), ('cust-' || id, 'newsletter') $$;

CREATE TABLE bench.c_plain (id bigint PRIMARY KEY, email text, phone text, notes text, created_at timestamptz)
    WITH (autovacuum_enabled = false);
CREATE TABLE bench.c_policy (LIKE bench.c_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench.c_exists (LIKE bench.c_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench.c_text (id bigint PRIMARY KEY, subject text NOT NULL, email text, phone text,
                           notes text, created_at timestamptz) WITH (autovacuum_enabled = false);
INSERT INTO bench.c_plain SELECT id, email, phone, notes, created_at FROM bench.src;
INSERT INTO bench.c_policy SELECT id, email, phone, notes, created_at FROM bench.src;
INSERT INTO bench.c_exists SELECT id, email, phone, notes, created_at FROM bench.src;
INSERT INTO bench.c_text SELECT id, 'cust-' || id, email, phone, notes, created_at FROM bench.src;
-- the subject column indexed, as in a table whose rows are found by their
-- subject (export_subject, forget_subject; the integer table's subject is its
-- primary key): the policy count can be an index-only scan, like the plain
-- count it is compared with.  The heap-scan rows measure the same counts
-- through the heap (what an unindexed subject column costs).
CREATE INDEX c_text_subject_idx ON bench.c_text (subject);
GRANT SELECT ON bench.c_plain, bench.c_policy, bench.c_exists, bench.c_text TO bench_marketer;

SELECT customer_vault.enable_consent_policy('bench.c_policy', 'id', 'marketing');
SELECT customer_vault.enable_consent_policy('bench.c_text', 'subject', 'newsletter');
ALTER TABLE bench.c_exists ENABLE ROW LEVEL SECURITY;
CREATE POLICY consent_exists ON bench.c_exists FOR SELECT
    USING (EXISTS (SELECT 1 FROM customer_vault.consent_state c
                    WHERE c.subject = c_exists.id::text AND c.purpose = 'marketing' AND c.granted));

-- gmax: n / 100 customers, at least 100, at most 20,000
SELECT least(greatest(:n / 100, 100), 20000, :n) AS gmax \gset
SELECT bench.set_fact('gmax', :'gmax');
-- bulk: consents of everyone above gmax, 1 in 20 with an end date a year
-- ahead; 1 in 10 of the others withdrew an earlier consent
INSERT INTO customer_vault.consent_state (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id)
SELECT s.subject, s.purpose, true, CASE WHEN id % 20 = 0 THEN now() + interval '1 year' END,
       now() - interval '90 days', NULL, 0
  FROM bench.src, bench.subjects(id) s
 WHERE id > :gmax AND bench.consents(id);
INSERT INTO customer_vault.consent_state (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id)
SELECT s.subject, s.purpose, false, NULL, now() - interval '90 days', now() - interval '1 day', 0
  FROM bench.src, bench.subjects(id) s
 WHERE id > :gmax AND NOT bench.consents(id) AND id % 10 = 0;

-- the real path for id <= gmax: grant_consent for the consenting ones, and
-- grant then withdraw_consent for 1 in 10 of the others
SELECT count(*) AS ngrant FROM bench.src, bench.subjects(id) s
 WHERE id <= :gmax AND (bench.consents(id) OR id % 10 = 5) \gset
SELECT count(*) AS nwithdraw FROM bench.src, bench.subjects(id) s
 WHERE id <= :gmax AND NOT bench.consents(id) AND id % 10 = 5 \gset
SELECT bench.set_fact('grants', :'ngrant'), bench.set_fact('withdrawals', :'nwithdraw');
-- The customers id <= gmax are ids 1..gmax (bench.src holds 1..n): the calls
-- take them from generate_series.  Until session 23 they came from a scan of
-- bench.src (n rows of 250 bytes, past shared_buffers at 10^6), which the
-- per-call figure then included: that scan alone is timed here (cs_grant_scan)
-- and shown in the note.
SELECT bench.timed('cs_grant_scan', :'ngrant', format($q$
    SELECT count(jsonb_build_object('form', 'signup-v3', 'channel', 'web', 'customer', id))
      FROM bench.src, bench.subjects(id) s WHERE id <= %s AND (bench.consents(id) OR id %% 10 = 5)$q$, :gmax));
SELECT bench.timed('cs_grant', :'ngrant', format($q$
    SELECT count(customer_vault.grant_consent(s.subject, s.purpose,
                    jsonb_build_object('form', 'signup-v3', 'channel', 'web', 'customer', id),
                    CASE WHEN id %% 20 = 0 THEN now() + interval '1 year' END))
      FROM generate_series(1, %s) AS src(id), bench.subjects(src.id) s
     WHERE bench.consents(src.id) OR src.id %% 10 = 5$q$, :gmax));
SELECT bench.timed('cs_withdraw', :'nwithdraw', format($q$
    SELECT count(customer_vault.withdraw_consent(s.subject, s.purpose, '{"channel": "unsubscribe link"}'))
      FROM generate_series(1, %s) AS src(id), bench.subjects(src.id) s
     WHERE NOT bench.consents(src.id) AND src.id %% 10 = 5$q$, :gmax));
VACUUM (ANALYZE) customer_vault.consent_state, customer_vault.consent_ledger,
                 bench.c_plain, bench.c_policy, bench.c_exists, bench.c_text;

-- the set-up checks out: as many live consents per purpose as consenting
-- customers, an intact ledger, the policies the bench means to measure
SELECT bench.set_fact('consented', count(*)::text) FROM bench.src WHERE bench.consents(id);
SELECT bench.set_fact('state_rows', count(*)::text) FROM customer_vault.consent_state;
SELECT bench.set_fact('bulk', count(*)::text) FROM customer_vault.consent_state WHERE ledger_id = 0;
SELECT bench.check(m = k AND nl = k, format('live consents (marketing, newsletter) %s, %s, expected %s each', m, nl, k))
  FROM (SELECT count(*) FILTER (WHERE purpose = 'marketing') AS m, count(*) FILTER (WHERE purpose = 'newsletter') AS nl,
               bench.ifact('consented') AS k
          FROM customer_vault.consent_state WHERE granted AND (valid_until IS NULL OR valid_until > now())) x;
SELECT bench.check(customer_vault.verify_ledger() IS NULL, 'verify_ledger() reports entry ' || customer_vault.verify_ledger() || ' broken');
-- the restrictive policy calls the bigint overload for c_policy, the text one for c_text
SELECT bench.check(EXISTS (SELECT 1 FROM pg_policy p
                            WHERE p.polrelid = ('bench.' || t)::regclass AND p.polname = 'customer_vault_consent'
                              AND NOT p.polpermissive AND p.polcmd = 'r'
                              AND pg_get_expr(p.polqual, p.polrelid) LIKE '%may_process%''' || purpose || '''%'
                              AND EXISTS (SELECT 1 FROM pg_depend d
                                           WHERE d.classid = 'pg_policy'::regclass AND d.objid = p.oid
                                             AND d.refobjid = format('customer_vault.may_process(%s, text)', sig)::regprocedure)),
                   format('%s: no restrictive SELECT policy calling may_process(%s, %L)', t, sig, purpose))
  FROM (VALUES ('c_policy', 'bigint', 'marketing'), ('c_text', 'text', 'newsletter')) v(t, sig, purpose);

-- the per-backend cache must hold every live consent of a purpose, or it
-- falls back to an index probe per row: at least n (a superuser setting,
-- made in each measuring session before SET ROLE), or BENCH_CONSENT_CACHE
SELECT bench.set_fact('cache_default', current_setting('customer_vault.consent_cache_size'));
SELECT bench.set_fact('cache_set_to', CASE WHEN bench.fact('consent_cache') <> '' THEN bench.fact('consent_cache')
                                           WHEN :n > current_setting('customer_vault.consent_cache_size')::bigint THEN :'n'
                                           ELSE '' END);
SELECT bench.set_fact('int_path', CASE WHEN small THEN 'index probe per row (cache too small)' ELSE 'integer bitmap' END),
       bench.set_fact('txt_path', CASE WHEN small THEN 'index probe per row (cache too small)' ELSE 'hash table' END),
       bench.set_fact('cache_note', CASE WHEN bench.fact('cache_set_to') = ''
                                         THEN 'consent_cache_size ' || bench.fact('cache_default') || ' (default)'
                                         ELSE 'consent_cache_size set to ' || bench.fact('cache_set_to')
                                              || ' (default ' || bench.fact('cache_default') || ')'
                                              || CASE WHEN small THEN ', below the ' || bench.fact('consented') || ' live consents'
                                                      ELSE '' END END)
  FROM (SELECT bench.fact('cache_set_to') <> '' AND bench.fact('cache_set_to')::bigint < bench.ifact('consented') AS small) x;

-- serial, or parallel with n workers planned: the plan of a count, for the notes
CREATE FUNCTION bench.plan_shape(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    workers text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF line ~ 'Workers Planned: [0-9]+' THEN
            workers := substring(line FROM 'Workers Planned: ([0-9]+)');
        END IF;
    END LOOP;
    RETURN CASE WHEN workers IS NULL THEN 'serial plan' ELSE 'parallel plan, ' || workers || ' workers' END;
END $$;
-- plan shapes, for the notes; may_process must be in the plan as the role
DO $$
DECLARE
    line text;
    plan_exists text := '';
    plan_policy text := '';
    plan_text text := '';
BEGIN
    SET LOCAL ROLE bench_marketer;
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) SELECT count(*) FROM bench.c_exists' LOOP
        plan_exists := plan_exists || line || E'\n';
    END LOOP;
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) SELECT count(*) FROM bench.c_policy' LOOP
        plan_policy := plan_policy || line || E'\n';
    END LOOP;
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) SELECT count(*) FROM bench.c_text' LOOP
        plan_text := plan_text || line || E'\n';
    END LOOP;
    RESET ROLE;
    PERFORM bench.set_fact('txt_scan', CASE WHEN plan_text LIKE '%Index Only Scan using c_text_subject_idx%'
                                            THEN 'index-only scan of the subject index'
                                            ELSE 'plan: ' || left(regexp_replace(plan_text, '\s+', ' ', 'g'), 80) END);
    PERFORM bench.check(plan_policy LIKE '%may_process%', 'c_policy: may_process() is not in the plan as bench_marketer: ' || plan_policy);
    PERFORM bench.set_fact('exists_plan',
        CASE WHEN plan_exists LIKE '%hashed SubPlan%' THEN 'planned as a hashed SubPlan over consent_state'
             WHEN plan_exists LIKE '%SubPlan%' THEN 'planned as a SubPlan per row (pkey probe)'
             ELSE 'plan: ' || left(regexp_replace(plan_exists, '\s+', ' ', 'g'), 80) END);
END $$;
-- everything read once (OS cache, hint bits) before the first measurement
SELECT count(*) FROM bench.c_plain;
SELECT count(*) FROM bench.c_policy;
SELECT count(*) FROM bench.c_exists;
SELECT count(*) FROM bench.c_text;
\endif

\if :p_rep
-- one new session per table and kind: the first count cold, the reps counts
-- after it warm (consent_count.sql).  A consent change first (define_purpose
-- rewrites the purpose: the shared cache's versions are no longer current),
-- so the first session of each purpose builds the shared version (_cold) and
-- the next new session finds it (_new); then the same with parallel query.
SELECT bench.fact('cache_set_to') <> '' AS set_cache, bench.fact('cache_set_to') AS cache_to,
       bench.fact('consented') AS consented \gset
\set par false
\set heap false
\set key cs_plain
\set tbl bench.c_plain
\set expect :n
\set as_role true
\ir consent_count.sql
SELECT customer_vault.define_purpose('marketing', 'consent', 'benchmark: integer subjects');
\set key cs_pol
\set tbl bench.c_policy
\set expect :consented
\ir consent_count.sql
\set key cs_polnew
\ir consent_count.sql
\set key cs_ex
\set tbl bench.c_exists
\ir consent_count.sql
\set key cs_txtbase
\set tbl bench.c_text
\set expect :n
\set as_role false
\ir consent_count.sql
\set key cs_txt
\set expect :consented
\set as_role true
\ir consent_count.sql
\set key cs_txtnew
\ir consent_count.sql
-- the same table through its heap (an unindexed subject column): both counts sequential scans
\set heap true
\set key cs_txtbaseheap
\set expect :n
\set as_role false
\ir consent_count.sql
\set key cs_txtheap
\set expect :consented
\set as_role true
\ir consent_count.sql
\set heap false
-- parallel query allowed (the server's default of 2 workers per gather)
\set par true
\set key cs_plainpar
\set tbl bench.c_plain
\set expect :n
\ir consent_count.sql
\set key cs_txtbasepar
\set tbl bench.c_text
\set as_role false
\ir consent_count.sql
SELECT customer_vault.define_purpose('marketing', 'consent', 'benchmark: integer subjects');
\set as_role true
\set expect :consented
\set key cs_polpar
\set tbl bench.c_policy
\ir consent_count.sql
\set key cs_polparnew
\ir consent_count.sql
\set key cs_txtpar
\set tbl bench.c_text
\ir consent_count.sql
\set key cs_txtparnew
\ir consent_count.sql
\set par false
-- the plans of the parallel counts, for the notes
\c
SET max_parallel_workers_per_gather = 2;
SET ROLE bench_marketer;
SELECT bench.plan_shape('SELECT count(*) FROM bench.c_plain') AS shape_plain,
       bench.plan_shape('SELECT count(*) FROM bench.c_policy') AS shape_pol,
       bench.plan_shape('SELECT count(*) FROM bench.c_text') AS shape_txt \gset
RESET ROLE;
SELECT bench.plan_shape('SELECT count(*) FROM bench.c_text') AS shape_txtbase \gset
-- what the shared consent cache holds (layout: bitmaps are small, a hash table is not)
SELECT bench.set_fact('shared_' || purpose, format('shared version of %s subjects, %s kB', subjects, bytes / 1024))
  FROM customer_vault._consent_shared_cache() WHERE state = 'ready';
SELECT bench.set_fact('shape_plain', :'shape_plain'), bench.set_fact('shape_pol', :'shape_pol'),
       bench.set_fact('shape_txt', :'shape_txt'), bench.set_fact('shape_txtbase', :'shape_txtbase');
\endif

\if :p_report
DO $$
DECLARE
    n bigint := bench.ifact('n');
    k text := bench.fact('consented');
    cp float8 := bench.m('cs_plain_warm');
    cc float8 := bench.m('cs_plain_cold');
    tc float8 := bench.m('cs_txtbase_cold');
    pc float8 := least(bench.m('cs_plain_cold'), bench.m('cs_plainpar_cold'));
    ptc float8 := least(bench.m('cs_txtbase_cold'), bench.m('cs_txtbasepar_cold'));
    cpr float8 := bench.us(cp, n);
    tb float8 := bench.m('cs_txtbase_warm');
    tbr float8 := bench.us(tb, n);
    m float8;
    pb float8;
    pt float8;
    grants bigint := bench.ifact('grants');
BEGIN
    PERFORM bench.row('consent', 'count(*), no RLS', cp, bench.s('cs_plain_warm'), cpr, NULL, 1,
        'baseline; ' || n || ' rows = ' || n || ' subjects, as bench_marketer; first count of a session '
        || bench.f(bench.m('cs_plain_cold'), 3) || ' s');
    -- what any new session pays on its first count, with no RLS and none of our code
    PERFORM bench.row('consent', 'count(*), no RLS, cold (new session)', cc, bench.s('cs_plain_cold'), bench.us(cc, n),
        bench.us(cc, n) - cpr, cc / cp,
        'first count of a new session, no RLS: the baseline of the cold rows; ratio to warm no RLS');
    m := bench.m('cs_pol_warm');
    PERFORM bench.row('consent', 'count(*), consent policy, warm', m, bench.s('cs_pol_warm'), bench.us(m, n),
        bench.us(m, n) - cpr, m / cp,
        'may_process(id::bigint, ''marketing''), ' || coalesce(bench.fact('shared_marketing'), bench.fact('int_path'))
        || '; ' || k || ' of ' || n || ' rows visible; ' || bench.fact('cache_note'));
    m := bench.m('cs_polnew_cold');
    PERFORM bench.row('consent', 'count(*), consent policy, cold (new session)', m, bench.s('cs_polnew_cold'), bench.us(m, n),
        bench.us(m, n) - cpr, m / cp,
        'first count of a new session while the shared cache holds the purpose (the usual case); ratio to warm no RLS');
    PERFORM bench.row('consent', 'count(*), consent policy, cold, vs cold no RLS', m, bench.s('cs_polnew_cold'), bench.us(m, n),
        bench.us(m, n) - bench.us(cc, n), m / cc,
        'the row above against the first count of a new session with no RLS (' || bench.f(cc, 4) || ' s): both pay what a new session pays');
    m := bench.m('cs_pol_cold');
    PERFORM bench.row('consent', 'count(*), consent policy, first session after a consent change', m, bench.s('cs_pol_cold'), bench.us(m, n),
        bench.us(m, n) - cpr, m / cp,
        'builds the shared version from consent_state (' || bench.fact('state_rows')
        || ' rows), once per change and purpose for all sessions; ratio to warm no RLS');
    m := bench.m('cs_ex_warm');
    PERFORM bench.row('consent', 'count(*), EXISTS subquery policy', m, bench.s('cs_ex_warm'), bench.us(m, n),
        bench.us(m, n) - cpr, m / cp,
        'EXISTS (.. consent_state c WHERE c.subject = id::text ..), ' || bench.fact('exists_plan') || '; warm');
    PERFORM bench.row('consent', '  consent policy speed-up over EXISTS policy', NULL, NULL, NULL, NULL,
        m / bench.m('cs_pol_warm'), 'EXISTS time / consent policy time, both warm');
    PERFORM bench.row('consent', 'count(*), text subjects, no RLS', tb, bench.s('cs_txtbase_warm'), tbr, NULL, 1,
        'baseline of the next rows: the same table read by its owner (RLS bypassed); subjects ''cust-<id>''');
    PERFORM bench.row('consent', 'count(*), text subjects, no RLS, cold (new session)', tc, bench.s('cs_txtbase_cold'),
        bench.us(tc, n), bench.us(tc, n) - tbr, tc / tb,
        'first count of a new session of the owner: the baseline of the text cold rows; ratio to warm');
    m := bench.m('cs_txt_warm');
    PERFORM bench.row('consent', 'count(*), text subjects, consent policy, warm', m, bench.s('cs_txt_warm'), bench.us(m, n),
        bench.us(m, n) - tbr, m / tb,
        'may_process(subject::text, ''newsletter''), ' || coalesce(bench.fact('shared_newsletter'), bench.fact('txt_path'))
        || '; ' || bench.fact('txt_scan') || '; ' || k || ' of ' || n || ' rows visible');
    m := bench.m('cs_txtheap_warm');
    PERFORM bench.row('consent', 'count(*), text subjects, heap scan, consent policy, warm', m, bench.s('cs_txtheap_warm'),
        bench.us(m, n), bench.us(m, n) - bench.us(bench.m('cs_txtbaseheap_warm'), n), m / bench.m('cs_txtbaseheap_warm'),
        'index scans off (an unindexed subject column): ratio to the no-RLS count by sequential scan ('
        || bench.f(bench.m('cs_txtbaseheap_warm'), 4) || ' s); ' || bench.f(m / tb, 2) || 'x the index-only no-RLS count');
    m := bench.m('cs_txtnew_cold');
    PERFORM bench.row('consent', 'count(*), text subjects, consent policy, cold (new session)', m, bench.s('cs_txtnew_cold'), bench.us(m, n),
        bench.us(m, n) - tbr, m / tb, 'first count of a new session, the shared version built; ratio to warm no RLS');
    PERFORM bench.row('consent', 'count(*), text subjects, consent policy, cold, vs cold no RLS', m, bench.s('cs_txtnew_cold'),
        bench.us(m, n), bench.us(m, n) - bench.us(tc, n), m / tc,
        'the row above against the first count of a new session of the table''s owner (RLS bypassed, '
        || bench.f(tc, 4) || ' s)');
    m := bench.m('cs_txt_cold');
    PERFORM bench.row('consent', 'count(*), text subjects, first session after a consent change', m, bench.s('cs_txt_cold'), bench.us(m, n),
        bench.us(m, n) - tbr, m / tb, 'builds the shared version; ratio to warm no RLS');
    -- parallel query allowed: each ratio to the plain count at its best plan (serial or parallel)
    pb := least(cp, bench.m('cs_plainpar_warm'));
    PERFORM bench.row('consent', 'count(*), no RLS, parallel allowed', bench.m('cs_plainpar_warm'), bench.s('cs_plainpar_warm'),
        bench.us(bench.m('cs_plainpar_warm'), n), NULL, bench.m('cs_plainpar_warm') / cp,
        'max_parallel_workers_per_gather = 2, ' || bench.fact('shape_plain') || '; ratio to serial');
    m := bench.m('cs_plainpar_cold');
    PERFORM bench.row('consent', 'count(*), no RLS, parallel allowed, cold (new session)', m, bench.s('cs_plainpar_cold'),
        bench.us(m, n), NULL, m / pb, 'first count of a new session; ratio to the best plain count (warm)');
    m := bench.m('cs_txtbasepar_cold');
    PERFORM bench.row('consent', 'count(*), text subjects, no RLS, parallel allowed, cold (new session)', m,
        bench.s('cs_txtbasepar_cold'), bench.us(m, n), NULL, m / least(tb, bench.m('cs_txtbasepar_warm')),
        'the owner''s first count of a new session, ' || bench.fact('shape_txtbase') || '; ratio to its best warm count');
    m := bench.m('cs_polpar_warm');
    PERFORM bench.row('consent', 'count(*), consent policy, parallel allowed, warm', m, bench.s('cs_polpar_warm'), bench.us(m, n),
        NULL, m / pb, bench.fact('shape_pol') || '; workers answer from the shared version; ratio to the best plain count ('
        || bench.f(pb, 4) || ' s)');
    m := bench.m('cs_polparnew_cold');
    PERFORM bench.row('consent', 'count(*), consent policy, parallel allowed, cold (new session)', m, bench.s('cs_polparnew_cold'),
        bench.us(m, n), NULL, m / pb, 'first count of a new session; ratio to the best plain count (warm)');
    PERFORM bench.row('consent', 'count(*), consent policy, parallel allowed, cold, vs cold no RLS', m, bench.s('cs_polparnew_cold'),
        bench.us(m, n), NULL, m / pc, 'the row above against the best first count of a new session with no RLS, serial or parallel ('
        || bench.f(pc, 4) || ' s)');
    m := bench.m('cs_polpar_cold');
    PERFORM bench.row('consent', 'count(*), consent policy, parallel allowed, first session after a consent change', m,
        bench.s('cs_polpar_cold'), bench.us(m, n), NULL, m / pb,
        'leader and workers: one builds the shared version, the others wait for it; ratio to the best plain count');
    pt := least(tb, bench.m('cs_txtbasepar_warm'));
    m := bench.m('cs_txtpar_warm');
    PERFORM bench.row('consent', 'count(*), text subjects, consent policy, parallel allowed, warm', m, bench.s('cs_txtpar_warm'),
        bench.us(m, n), NULL, m / pt, bench.fact('shape_txt') || '; ratio to the best no-RLS count of the table ('
        || bench.f(pt, 4) || ' s, ' || bench.fact('shape_txtbase') || ')');
    m := bench.m('cs_txtparnew_cold');
    PERFORM bench.row('consent', 'count(*), text subjects, consent policy, parallel allowed, cold (new session)', m,
        bench.s('cs_txtparnew_cold'), bench.us(m, n), NULL, m / pt, 'first count of a new session; ratio to the best no-RLS count (warm)');
    PERFORM bench.row('consent', 'count(*), text subjects, consent policy, parallel allowed, cold, vs cold no RLS', m,
        bench.s('cs_txtparnew_cold'), bench.us(m, n), NULL, m / ptc,
        'the row above against the best first count of a new session of the owner, serial or parallel (' || bench.f(ptc, 4) || ' s)');
    m := bench.m('cs_grant');
    PERFORM bench.row('consent', 'grant_consent(), per call', m, bench.s('cs_grant'),
        CASE WHEN grants > 0 THEN bench.us(m, grants) END, NULL, NULL,
        grants || ' calls in one statement, once per run (+ ' || bench.fact('withdrawals')
        || ' withdraw_consent()); the other ' || bench.fact('bulk')
        || ' consent rows INSERTed directly as superuser (ledger_id 0); subjects from generate_series (the scan of bench.src'
        || ' that earlier runs timed with the calls: ' || bench.f(bench.us(bench.m('cs_grant_scan'), grants), 1)
        || ' us per call)');
END $$;
\endif
