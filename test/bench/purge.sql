-- test/bench/purge.sql: CALL customer_vault.purge() against one DELETE with
-- the same predicate, while a writer (pgbench, started and stopped by
-- bench.pl) inserts single rows into the table being emptied.
--
-- n rows (customer_id bigint, created_at timestamptz, a 200-byte note), 10
-- consecutive rows per customer, 3 of every 10 rows (id % 10 < 3) older than
-- the retention of 365 days (366 days to ~4 years old): spread through every
-- page of the table.  The other rows are at most 330 days old, so the limit
-- falls in no one's way however long a run takes.  Two identical tables,
-- rebuilt every repetition:
--   p_purge   set_retention(.., 'created_at', '365 days', 'delete', 'customer_id'),
--             emptied by CALL customer_vault.purge(batch_size => 10000)
--   p_delete  emptied by DELETE .. WHERE created_at < now() - interval '365 days'
-- Customer :purge_hold is under a legal hold: the purge keeps their 3 expired
-- rows, the DELETE (which does not look at holds) removes them.
--
-- Phases (bench.pl, per rep: tables, then op with kind=purge|delete in the
-- order of the rep, each with the writer running, then check):
--   setup   the legal hold
--   tables  both tables, their figures before (facts)
--   op      CHECKPOINT, then the operation, timed; its times as facts
--   check   what is left, and purge_log
--   report
SELECT :'phase' = 'setup' AS p_setup, :'phase' = 'tables' AS p_tables, :'phase' = 'op' AS p_op,
       :'phase' = 'check' AS p_check, :'phase' = 'report' AS p_report \gset

\if :p_setup
-- one live hold for the whole run
SELECT customer_vault.place_legal_hold(:'purge_hold', 'bench: litigation hold on one customer')
 WHERE bench.fact('hold_id') IS NULL;
SELECT bench.set_fact('hold_id', 'placed');
-- rows|expired|expired held|checksum of the rows inside the retention|writer rows
CREATE FUNCTION bench.purge_stats(tbl regclass, OUT n bigint, OUT expired bigint, OUT held bigint,
                                  OUT inside_sum bigint, OUT writer_rows bigint)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($q$
        SELECT count(*) FILTER (WHERE customer_id <> 0),
               count(*) FILTER (WHERE customer_id <> 0 AND created_at < now() - interval '365 days'),
               count(*) FILTER (WHERE customer_id = $1 AND created_at < now() - interval '365 days'),
               COALESCE(sum(hashtext(note)::bigint + customer_id)
                        FILTER (WHERE customer_id <> 0 AND created_at >= now() - interval '365 days'), 0),
               count(*) FILTER (WHERE customer_id = 0)
          FROM %s$q$, tbl)
       USING bench.ifact('purge_hold') INTO n, expired, held, inside_sum, writer_rows;
END $$;
\endif

\if :p_tables
SET client_min_messages = warning;
-- the same physical row order in both tables: no scan starting mid-table
SET synchronize_seqscans = off;
DROP TABLE IF EXISTS bench.p_purge, bench.p_delete;
CREATE TABLE bench.p_purge (customer_id bigint NOT NULL, created_at timestamptz NOT NULL, note text)
    WITH (autovacuum_enabled = false);
CREATE TABLE bench.p_delete (LIKE bench.p_purge) WITH (autovacuum_enabled = false);
INSERT INTO bench.p_purge
SELECT 1 + (id - 1) / 10,
       CASE WHEN id % 10 < 3
            THEN now() - interval '366 days' - (id * 37 % 1000) * interval '1 day' - (id % 1440) * interval '1 minute'
            ELSE now() - (id * 13 % 330) * interval '1 day' - (id % 1440) * interval '1 minute' END,
       notes
  FROM bench.src;
INSERT INTO bench.p_delete SELECT * FROM bench.p_purge;
SELECT customer_vault.set_retention('bench.p_purge', 'created_at', '365 days', 'delete', 'customer_id');
VACUUM (ANALYZE) bench.p_purge, bench.p_delete;
SELECT bench.check(a IS NOT DISTINCT FROM b, 'the two tables differ before the run')
  FROM bench.purge_stats('bench.p_purge') a, bench.purge_stats('bench.p_delete') b;
SELECT bench.check(s.n = :n AND s.held > 0 AND s.expired > 0,
                   format('set-up: %s rows, %s expired, %s of them held (expected %s rows, some expired and held)',
                          s.n, s.expired, s.held, :n)),
       bench.set_fact('expired', s.expired::text), bench.set_fact('held', s.held::text),
       bench.set_fact('inside_sum', s.inside_sum::text)
  FROM bench.purge_stats('bench.p_purge') s;
\endif

\if :p_op
SELECT :'kind' = 'purge' AS is_purge \gset
CHECKPOINT;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
\if :is_purge
CALL customer_vault.purge(batch_size => 10000);
\else
DELETE FROM bench.p_delete WHERE created_at < now() - interval '365 days';
\endif
SELECT bench.set_fact('t0_' || :'kind', :'t0'), bench.set_fact('t1_' || :'kind', extract(epoch FROM clock_timestamp())::text),
       bench.sample('pg_' || :'kind', extract(epoch FROM clock_timestamp()) - :t0);
\endif

\if :p_check
-- what is left: the purge keeps the held rows, the DELETE does not; every
-- row inside the retention is still there in both (count and checksum)
SELECT bench.check(a.n = :n - e.expired + e.held AND a.expired = e.held AND a.held = e.held AND a.inside_sum = e.inside_sum,
                   format('purge left rows|expired|held|checksum %s|%s|%s|%s, expected %s|%s|%s|%s',
                          a.n, a.expired, a.held, a.inside_sum, :n - e.expired + e.held, e.held, e.held, e.inside_sum)),
       bench.check(d.n = :n - e.expired AND d.expired = 0 AND d.held = 0 AND d.inside_sum = e.inside_sum,
                   format('DELETE left rows|expired|held|checksum %s|%s|%s|%s, expected %s|0|0|%s',
                          d.n, d.expired, d.held, d.inside_sum, :n - e.expired, e.inside_sum))
  FROM bench.purge_stats('bench.p_purge') a, bench.purge_stats('bench.p_delete') d,
       (SELECT bench.ifact('expired') AS expired, bench.ifact('held') AS held, bench.ifact('inside_sum') AS inside_sum) e;
-- purge_log: the newest row of the table is finished, not a dry run, with the counts
SELECT bench.check(l.rows_purged = e.expired - e.held AND l.rows_held = e.held AND l.finished_at IS NOT NULL AND NOT l.dry_run AND l.status = 'done',
                   format('purge_log: rows_purged|rows_held|finished|dry_run|status %s|%s|%s|%s|%s, expected %s|%s|t|f|done',
                          l.rows_purged, l.rows_held, l.finished_at IS NOT NULL, l.dry_run, l.status, e.expired - e.held, e.held)),
       bench.set_fact('log_purged', l.rows_purged::text), bench.set_fact('log_held', l.rows_held::text),
       bench.sample('pg_batches', l.batches), bench.sample('pg_logsecs', extract(epoch FROM l.finished_at - l.started_at))
  FROM (SELECT * FROM customer_vault.purge_log WHERE tbl = 'bench.p_purge' ORDER BY id DESC LIMIT 1) l,
       (SELECT bench.ifact('expired') AS expired, bench.ifact('held') AS held) e;
SELECT bench.check(count(*) = 1, 'purge_log has no row for bench.p_purge')
  FROM (SELECT 1 FROM customer_vault.purge_log WHERE tbl = 'bench.p_purge' LIMIT 1) x;
-- the purge log's and the legal holds' hash chains are intact
SELECT bench.check(customer_vault.verify_purge_log() IS NULL AND customer_vault.verify_legal_holds() IS NULL,
                   format('verify_purge_log() %s, verify_legal_holds() %s: a chain is broken',
                          customer_vault.verify_purge_log(), customer_vault.verify_legal_holds()));
DROP TABLE bench.p_purge, bench.p_delete;
\endif

\if :p_report
DO $$
DECLARE
    n bigint := bench.ifact('n');
    expired bigint := bench.ifact('expired');
    held bigint := bench.ifact('held');
    pd float8 := bench.m('pg_delete');
    pp float8 := bench.m('pg_purge');
    prd float8 := bench.us(pd, expired);
    per float8 := bench.us(pp, expired - held);
    nw_purge bigint := COALESCE(bench.ifact('wait_n_purge'), 0);
    nw_delete bigint := COALESCE(bench.ifact('wait_n_delete'), 0);
BEGIN
    PERFORM bench.row('purge', 'DELETE .. WHERE created_at < now() - ''365 days''', pd, bench.s('pg_delete'), prd, NULL, 1,
        'baseline, one statement; us/unit per row removed (' || expired || ' of ' || n
        || ' = 30%, spread over every page; held rows removed too: no hold check); synchronous_commit on (one commit; fsync off in the harness)');
    PERFORM bench.row('purge', 'CALL purge(batch_size => 10000)', pp, bench.s('pg_purge'), per, per - prd, pp / pd,
        'purge_log: ' || bench.fact('log_purged') || ' purged, ' || bench.fact('log_held') || ' held (1 subject on hold), batches: '
        || bench.f(bench.m('pg_batches'), 0) || ', ' || bench.f(bench.m('pg_logsecs'), 3)
        || ' s started..finished; synchronous_commit off per batch; us/unit per row removed');
    -- the target (never over 1 s) holds for the longest wait of all; no verdict when no INSERT overlapped a purge
    PERFORM bench.row('purge', '  concurrent INSERT, longest wait during purge', bench.m('pgw_purge'), bench.s('pgw_purge'),
        NULL, NULL, NULL,
        'longest of each rep (median shown); worst ' || bench.f(bench.mx('pgw_purge') * 1000, 1) || ' ms over ' || nw_purge
        || ' single-row INSERTs at ' || bench.fact('purge_rate') || '/s (pgbench -R, one session) overlapping the purges',
        CASE WHEN nw_purge > 0 THEN bench.mx('pgw_purge') END);
    PERFORM bench.row('purge', '  concurrent INSERT, longest wait during DELETE', bench.m('pgw_delete'), bench.s('pgw_delete'),
        NULL, NULL, NULL,
        'longest of each rep (median shown); worst ' || bench.f(bench.mx('pgw_delete') * 1000, 1) || ' ms over ' || nw_delete
        || ' single-row INSERTs overlapping the DELETEs',
        CASE WHEN nw_delete > 0 THEN bench.mx('pgw_delete') END);
END $$;
\endif
