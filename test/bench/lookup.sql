-- test/bench/lookup.sql: equality lookups of random customers by e-mail, one
-- statement each (plpgsql caches the plans, as a prepared statement of an
-- application would): a plaintext btree against a blind index, the id alone
-- and the whole row (through <table>_decrypted).  Every lookup must find its
-- customer, and the whole row must be that customer's.
-- Phases: setup, rep, report.
SELECT :'phase' = 'setup' AS p_setup, :'phase' = 'rep' AS p_rep, :'phase' = 'report' AS p_report \gset

\if :p_setup
CREATE FUNCTION bench.lookup(kind text, n integer, nrows bigint, seed float8, warm boolean,
                             OUT secs float8, OUT nfound bigint)
LANGUAGE plpgsql AS $$
DECLARE
    emails text[];
    e text;
    t0 timestamptz;
    r_id bigint;
    r_email text;
    r_phone text;
    r_notes text;
    f bigint := 0;
BEGIN
    PERFORM setseed(seed);
    emails := ARRAY(SELECT bench.email(1 + floor(random() * nrows)::bigint) FROM generate_series(1, n));
    IF warm THEN
        -- the same lookups once untimed: plans cached, key loaded, and the
        -- pages they touch in shared buffers, so every kind is measured warm
        PERFORM bench.lookup(kind, n, nrows, seed, false);
    END IF;
    t0 := clock_timestamp();
    IF kind = 'plain' THEN
        FOREACH e IN ARRAY emails LOOP
            SELECT t.id INTO r_id FROM bench.t_plain_ix t WHERE t.email = e;
            IF FOUND AND r_id = substr(e, 6, 8)::bigint THEN f := f + 1; END IF;
        END LOOP;
    ELSIF kind = 'bidx' THEN
        FOREACH e IN ARRAY emails LOOP
            SELECT t.id INTO r_id FROM bench.t_prot_bidx t
             WHERE t.email_bidx = customer_vault.column_blind_index('bench.t_prot_bidx', 'email', e);
            IF FOUND AND r_id = substr(e, 6, 8)::bigint THEN f := f + 1; END IF;
        END LOOP;
    ELSIF kind = 'plain_row' THEN
        FOREACH e IN ARRAY emails LOOP
            SELECT t.id, t.email, t.phone, t.notes INTO r_id, r_email, r_phone, r_notes
              FROM bench.t_plain_ix t WHERE t.email = e;
            IF FOUND AND r_email = e AND r_phone = bench.phone(r_id) THEN f := f + 1; END IF;
        END LOOP;
    ELSIF kind = 'view_row' THEN
        FOREACH e IN ARRAY emails LOOP
            SELECT t.id, t.email, t.phone, t.notes INTO r_id, r_email, r_phone, r_notes
              FROM bench.t_prot_bidx_decrypted t
             WHERE t.email_bidx = customer_vault.column_blind_index('bench.t_prot_bidx', 'email', e);
            IF FOUND AND r_email = e AND r_phone = bench.phone(r_id) THEN f := f + 1; END IF;
        END LOOP;
    ELSE
        RAISE EXCEPTION 'unknown lookup kind %', kind;
    END IF;
    secs := extract(epoch FROM clock_timestamp() - t0);
    nfound := f;
END
$$;
\endif

\if :p_rep
SELECT bench.check(l.nfound = :lookups, format('lookup %s found %s of %s customers', kind, l.nfound, :lookups)),
       bench.sample('lk_' || kind, l.secs)
  FROM unnest(ARRAY['plain', 'bidx', 'plain_row', 'view_row']) WITH ORDINALITY k(kind, i),
       LATERAL bench.lookup(kind, :lookups, :n, ('0.' || :rep)::float8, true) l
 ORDER BY i;
\endif

\if :p_report
DO $$
DECLARE
    lookups bigint := bench.ifact('lookups');
    lp float8 := bench.us(bench.m('lk_plain'), lookups);
    lb float8 := bench.us(bench.m('lk_bidx'), lookups);
BEGIN
    PERFORM bench.row('lookup', 'plaintext btree(email) = $1', bench.m('lk_plain'), bench.s('lk_plain'), lp, NULL, 1,
        'us per lookup; ' || lookups || ' random customers, warm cache');
    PERFORM bench.row('lookup', 'blind index btree = column_blind_index($1)', bench.m('lk_bidx'), bench.s('lk_bidx'), lb, lb - lp,
        lb / lp, 'us per lookup');
    lp := bench.us(bench.m('lk_plain_row'), lookups);
    lb := bench.us(bench.m('lk_view_row'), lookups);
    PERFORM bench.row('lookup', 'plaintext, whole row', bench.m('lk_plain_row'), bench.s('lk_plain_row'), lp, NULL, 1,
        'us per lookup');
    PERFORM bench.row('lookup', 'blind index via _decrypted view, whole row', bench.m('lk_view_row'), bench.s('lk_view_row'),
        lb, lb - lp, lb / lp, 'us per lookup, 3 values decrypted');
END $$;
\endif
