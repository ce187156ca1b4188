-- test/bench/import.sql: import_consents() throughput at 10^4, 10^5 and 10^6
-- opt-ins (the sizes up to max(n, 10^4): BENCH_ROWS below 10^6 leaves the
-- larger ones out), each rep a new set of subjects imported in one call into
-- the ledger the earlier sizes and reps filled (so later imports also pay for
-- the duplicate check against a larger ledger).  Rows: subject 'imp<rep>-<size>-<i>',
-- purpose 'bench_import', evidence {"source": "crm", "record": i},
-- granted_at 90 days ago, 1 in 20 with an end date.  After the reps: the
-- ledger verifies, a repeated import records nothing.
-- Phases: setup, rep, after, report.
SELECT :'phase' = 'setup' AS p_setup, :'phase' = 'rep' AS p_rep, :'phase' = 'after' AS p_after,
       :'phase' = 'report' AS p_report \gset

\if :p_setup
SET client_min_messages = warning;
SELECT customer_vault.define_purpose('bench_import', 'consent', 'benchmark: bulk import');
CREATE TABLE bench.import_sizes AS
SELECT s FROM (VALUES (10000), (100000), (1000000)) v(s) WHERE s <= greatest(:n, 10000);
CREATE FUNCTION bench.import_sql(rep int, size int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT format($q$SELECT customer_vault.import_consents(%L)$q$, format($i$
        SELECT 'imp%s-%s-' || g AS subject, 'bench_import' AS purpose,
               jsonb_build_object('source', 'crm', 'record', g) AS evidence,
               now() - interval '90 days' AS granted_at,
               CASE WHEN g %% 20 = 0 THEN now() + interval '1 year' END AS valid_until
          FROM generate_series(1, %s) g$i$, rep, size, size)) $$;
\endif

\if :p_rep
SELECT bench.timed('imp_' || s, s::text, bench.import_sql(:rep, s)) FROM bench.import_sizes ORDER BY s;
\endif

\if :p_after
SELECT bench.check(customer_vault.verify_ledger() IS NULL, 'verify_ledger() reports entry ' || customer_vault.verify_ledger() || ' broken');
SELECT bench.check(count(*) = (SELECT sum(s) FROM bench.import_sizes) * :reps,
                   format('%s live imported consents, expected %s', count(*), (SELECT sum(s) FROM bench.import_sizes) * :reps))
  FROM customer_vault.consent_state WHERE purpose = 'bench_import';
SELECT bench.set_fact('import_ledger', count(*)::text) FROM customer_vault.consent_ledger;
-- the same rows again: detected, nothing recorded
SET client_min_messages = warning;
SELECT bench.timed('imp_again', '0', bench.import_sql(1, (SELECT min(s) FROM bench.import_sizes)));
\endif

\if :p_report
DO $$
DECLARE
    s int;
    m float8;
    small float8;
BEGIN
    FOR s IN SELECT i.s FROM bench.import_sizes i ORDER BY i.s LOOP
        m := bench.m('imp_' || s);
        PERFORM bench.row('import', 'import_consents(), ' || s || ' opt-ins', m, bench.s('imp_' || s), bench.us(m, s),
            NULL, NULL, round(s / m) || ' rows/s; one call, one transaction; ledger chained, state updated');
        IF small IS NULL THEN
            small := bench.us(m, s);
        END IF;
    END LOOP;
    IF (SELECT count(*) FROM bench.import_sizes) > 1 THEN
        PERFORM bench.row('import', '  growth: us/row of the largest over the smallest', NULL, NULL, NULL, NULL,
            bench.us(m, s) / small, 'linear = 1x');
    END IF;
    m := bench.m('imp_again');
    PERFORM bench.row('import', 'import_consents(), the same rows again', m, bench.s('imp_again'),
        bench.us(m, (SELECT min(i.s) FROM bench.import_sizes i)), NULL, NULL,
        'all detected as already recorded, nothing written; ledger of ' || bench.fact('import_ledger') || ' entries');
END $$;
\endif
