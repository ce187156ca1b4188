-- test/bench/brake.sql: the cost of the exfiltration brake's counting (issue
-- 13) on a read that decrypts every email of the insert tables (BENCH_ROWS
-- values): no limit (the count per statement that role_activity and the
-- brake keep is always taken), a per-statement decrypt_limit above the row
-- count, and that limit plus a decrypt_rate_limit (shared memory, quota taken
-- in slices of 16 values).  The three are interleaved in rotating order, six
-- times per rep, after one untimed warm-up read.
-- Phases: rep, report.
SELECT :'phase' = 'rep' AS p_rep, :'phase' = 'report' AS p_report \gset

\if :p_rep
DO $$
DECLARE
    q text := 'SELECT sum(length(customer_vault.decrypt(email, id::text))) FROM bench.t_enc';
    cfg text[] := ARRAY['none', 'stmt', 'both'];
    k text;
BEGIN
    PERFORM bench.time_sql(q);      -- warm the table and the key cache, untimed
    FOR i IN 0..5 LOOP
        FOR j IN 0..2 LOOP
            k := cfg[(i + j) % 3 + 1];  -- each configuration in each position in turn
            PERFORM set_config('customer_vault.decrypt_limit', CASE k WHEN 'none' THEN '0' ELSE '2000000000' END, false);
            PERFORM set_config('customer_vault.decrypt_rate_limit', CASE k WHEN 'both' THEN '2000000000' ELSE '0' END, false);
            PERFORM bench.timed('bk_' || k, bench.fact('sum_email'), q);
        END LOOP;
    END LOOP;
    PERFORM set_config('customer_vault.decrypt_limit', '0', false);
    PERFORM set_config('customer_vault.decrypt_rate_limit', '0', false);
END
$$;
\endif

\if :p_report
DO $$
DECLARE
    n bigint := bench.ifact('n');
    b float8 := bench.m('bk_none');
    m float8;
BEGIN
    PERFORM bench.row('brake', 'decrypt() email, no limit (counting only)', b, bench.s('bk_none'), bench.us(b, n),
        NULL, 1, 'baseline of this section');
    m := bench.m('bk_stmt');
    PERFORM bench.row('brake', 'decrypt() email, decrypt_limit set', m, bench.s('bk_stmt'), bench.us(m, n),
        bench.us(m, n) - bench.us(b, n), m / b, 'per-statement count checked per value');
    m := bench.m('bk_both');
    PERFORM bench.row('brake', 'decrypt() email, decrypt_limit + decrypt_rate_limit', m, bench.s('bk_both'),
        bench.us(m, n), bench.us(m, n) - bench.us(b, n), m / b, 'plus the shared per-minute window');
END
$$;
\endif
