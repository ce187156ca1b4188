-- test/bench/export.sql: export_subject() of random customers on the schema of
-- subjects_schema.sql (5 tables of n rows: customers, orders, order_lines
-- reached through orders, tickets, addresses; every subject and key column
-- indexed; customers.email protected), against hand-written SELECTs of the
-- same rows as jsonb (to_jsonb per table, the order lines through a join).
-- Every export must hold the customer's own row with the e-mail decrypted,
-- and as many rows per table as the hand-written queries find.
-- Phases: setup, rep, after, report.
SELECT :'phase' = 'setup' AS p_setup, :'phase' = 'rep' AS p_rep, :'phase' = 'report' AS p_report \gset

\if :p_setup
\ir subjects_schema.sql
CREATE FUNCTION bench.export_run(kind text, k integer, nrows bigint, seed float8, warm boolean,
                                 OUT secs float8, OUT nrows_seen bigint)
LANGUAGE plpgsql AS $$
DECLARE
    subjects bigint[];
    s bigint;
    d jsonb;
    t0 timestamptz;
    seen bigint := 0;
BEGIN
    PERFORM setseed(seed);
    subjects := ARRAY(SELECT 1 + floor(random() * nrows)::bigint FROM generate_series(1, k));
    IF warm THEN
        PERFORM bench.export_run(kind, k, nrows, seed, false);
    END IF;
    t0 := clock_timestamp();
    FOREACH s IN ARRAY subjects LOOP
        IF kind = 'export' THEN
            d := customer_vault.export_subject(s::text);
            IF d -> 'tables' -> 'bench_subj.customers' -> 'rows' -> 0 ->> 'email' <> 'customer' || s || '@example.com' THEN
                RAISE EXCEPTION 'bench check failed: export of customer % lacks its decrypted e-mail', s;
            END IF;
            seen := seen + (SELECT sum(jsonb_array_length(v -> 'rows')) FROM jsonb_each(d -> 'tables') e(k2, v));
        ELSE
            d := jsonb_build_object(
                'customers', (SELECT jsonb_agg(to_jsonb(c)) FROM bench_subj.customers_decrypted c WHERE c.id = s),
                'orders', (SELECT jsonb_agg(to_jsonb(o)) FROM bench_subj.orders o WHERE o.customer_id = s),
                'order_lines', (SELECT jsonb_agg(to_jsonb(l)) FROM bench_subj.order_lines l
                                  JOIN bench_subj.orders o ON o.id = l.order_id WHERE o.customer_id = s),
                'tickets', (SELECT jsonb_agg(to_jsonb(t)) FROM bench_subj.tickets t WHERE t.customer_id = s),
                'addresses', (SELECT jsonb_agg(to_jsonb(a)) FROM bench_subj.addresses a WHERE a.customer_id = s));
            seen := seen + (SELECT sum(jsonb_array_length(v)) FROM jsonb_each(d) e(k2, v) WHERE jsonb_typeof(v) = 'array');
        END IF;
    END LOOP;
    secs := extract(epoch FROM clock_timestamp() - t0);
    nrows_seen := seen;
END
$$;
SELECT bench.set_fact('exports', '200');
\endif

\if :p_rep
SELECT bench.sample('ex_' || kind, x.secs), bench.set_fact('ex_rows_' || kind || '_' || :rep, x.nrows_seen::text)
  FROM unnest(ARRAY['hand', 'export']) WITH ORDINALITY k(kind, i),
       LATERAL bench.export_run(kind, bench.ifact('exports')::integer, :n, ('0.' || :rep)::float8, true) x
 ORDER BY i;
SELECT bench.check(bench.ifact('ex_rows_export_' || :rep) = bench.ifact('ex_rows_hand_' || :rep),
                   format('export_subject found %s rows, the hand-written queries %s',
                          bench.ifact('ex_rows_export_' || :rep), bench.ifact('ex_rows_hand_' || :rep)));
\endif

\if :p_report
DO $$
DECLARE
    k bigint := bench.ifact('exports');
    h float8 := bench.us(bench.m('ex_hand'), k);
    e float8 := bench.us(bench.m('ex_export'), k);
BEGIN
    PERFORM bench.row('export', 'hand-written SELECTs, 5 tables, per subject', bench.m('ex_hand'), bench.s('ex_hand'), h, NULL, 1,
        'us per subject; ' || k || ' random customers, warm');
    PERFORM bench.row('export', 'export_subject(), 5 tables, per subject', bench.m('ex_export'), bench.s('ex_export'), e, e - h,
        e / h, 'us per subject, e-mail decrypted, recorded');
END $$;
\endif
