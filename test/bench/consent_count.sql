-- test/bench/consent_count.sql, included by consent.sql's rep phase: a new
-- session counts :tbl 1 + :reps times, as bench_marketer (as_role true) or
-- as the superuser owner (RLS bypassed); the first count is :key_cold, the
-- others :key_warm; every count must give :expect.  With par true the
-- session may use parallel query (max_parallel_workers_per_gather = 2, the
-- server's default; bench.pl turns it off for everything else).  With heap
-- true, no index scans: the count reads the table's heap.
\c
\if :set_cache
SET customer_vault.consent_cache_size = :cache_to;
\endif
\if :par
SET max_parallel_workers_per_gather = 2;
\endif
\if :heap
SET enable_indexonlyscan = off;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
\endif
\if :as_role
SET ROLE bench_marketer;
\endif
SELECT format('SELECT bench.timed(%L, %L, %L)', :'key' || CASE WHEN i = 0 THEN '_cold' ELSE '_warm' END, :'expect',
              'SELECT count(*) FROM ' || :'tbl')
  FROM generate_series(0, :reps) i ORDER BY i \gexec
RESET ROLE;
