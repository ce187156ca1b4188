-- test/bench/forget.sql: forget_subject per subject on the data-subject schema
-- of subjects_schema.sql (5 tables of n rows: customers, orders, order_lines
-- through orders, tickets, addresses; every subject and foreign-key column
-- indexed), against the hand-written DELETEs in foreign-key order plus
-- shred_subject for other subjects of the same schema.
-- Each rep erases :forget_k subjects each way (different subjects every rep,
-- so every erasure finds rows); one sample = the mean seconds per subject.
-- Each way runs in a session of its own (\c between them): each pays its own
-- first use of the tables, indexes and foreign-key checks in the session (in
-- one session, the hand-written statements found them all warmed up by
-- forget_subject, in the same transaction, their locks already held).
-- Phases: setup, rep, report.
SELECT :'phase' = 'setup' AS p_setup, :'phase' = 'rep' AS p_rep, :'phase' = 'report' AS p_report \gset
\set forget_k 20

\if :p_setup
\ir subjects_schema.sql
SELECT bench.set_fact('forget_k', :'forget_k');
\endif

\if :p_rep
SELECT set_config('bench.rep', :'rep', false) IS NOT NULL AS rep_set \gset
-- forget_subject: subjects 1000 * rep + i; the hand-written way: n / 2 + 1000 * rep + i
DO $$
DECLARE
    k int := bench.ifact('forget_k');
    rep int := current_setting('bench.rep')::int;
    n bigint := bench.ifact('n');
    s bigint;
    t0 timestamptz;
    total float8 := 0;
    r jsonb;
    rows bigint := 0;
BEGIN
    FOR i IN 1..k LOOP
        s := 1000 * rep + i;
        t0 := clock_timestamp();
        r := customer_vault.forget_subject(s::text, 'bench');
        total := total + extract(epoch FROM clock_timestamp() - t0);
        SELECT rows + sum((v->>'deleted')::bigint) INTO rows FROM jsonb_each(r->'tables') e(t, v);
    END LOOP;
    PERFORM bench.sample('forget', total / k);
    PERFORM bench.set_fact('forget_rows', (COALESCE(bench.ifact('forget_rows'), 0) + rows)::text);
    PERFORM bench.check(NOT EXISTS (SELECT 1 FROM bench_subj.customers WHERE id BETWEEN 1000 * rep + 1 AND 1000 * rep + k)
                        AND NOT EXISTS (SELECT 1 FROM bench_subj.orders WHERE customer_id BETWEEN 1000 * rep + 1 AND 1000 * rep + k),
                        'forget_subject left rows of an erased subject');
END $$;
\c
SELECT set_config('bench.rep', :'rep', false) IS NOT NULL AS rep_set \gset
DO $$
DECLARE
    k int := bench.ifact('forget_k');
    rep int := current_setting('bench.rep')::int;
    n bigint := bench.ifact('n');
    s bigint;
    t0 timestamptz;
    total float8 := 0;
BEGIN
    FOR i IN 1..k LOOP
        s := n / 2 + 1000 * rep + i;
        t0 := clock_timestamp();
        DELETE FROM bench_subj.order_lines l USING bench_subj.orders o WHERE l.order_id = o.id AND o.customer_id = s;
        DELETE FROM bench_subj.orders WHERE customer_id = s;
        DELETE FROM bench_subj.tickets WHERE customer_id = s;
        DELETE FROM bench_subj.addresses WHERE customer_id = s;
        DELETE FROM bench_subj.customers WHERE id = s;
        PERFORM customer_vault.shred_subject(s::text);
        total := total + extract(epoch FROM clock_timestamp() - t0);
    END LOOP;
    PERFORM bench.sample('forget_by_hand', total / k);
END $$;
\endif

\if :p_report
SELECT set_config('bench.reps', :'reps', false) IS NOT NULL AS reps_set \gset
DO $$
DECLARE
    m float8 := bench.m('forget');
    h float8 := bench.m('forget_by_hand');
BEGIN
    PERFORM bench.row('forget', 'forget_subject per subject', m, bench.s('forget'), m * 1e6, NULL, NULL,
        bench.f(bench.ifact('forget_rows')::float8 / (bench.ifact('forget_k') * current_setting('bench.reps')::int), 1)
        || ' rows deleted per subject (5 tables), receipt, consents, shred');
    PERFORM bench.row('forget', 'forget_subject vs hand-written DELETEs + shred_subject', h, bench.s('forget_by_hand'),
        h * 1e6, m * 1e6 - h * 1e6, m / h, 'hand-written: plpgsql, cached plans, no receipt');
END $$;
\endif
