-- test/bench/read.sql: sum(length()) of the three values of every row of the
-- insert tables, decrypted by every method; then one column at a time, to
-- compare the cost per value with the OpenSSL floor.  Every read must give
-- the sums of the plaintext (facts of insert.sql).
-- Phases: rep, report.
SELECT :'phase' = 'rep' AS p_rep, :'phase' = 'report' AS p_report \gset

\if :p_rep
SELECT bench.timed('rd_plain', bench.fact('sum_all'),
    'SELECT sum(length(email) + length(phone) + length(notes)) FROM bench.t_plain');
SELECT bench.timed('rd_cv', bench.fact('sum_all'),
    'SELECT sum(length(customer_vault.decrypt(email, id::text)) + length(customer_vault.decrypt(phone, id::text))
                + length(customer_vault.decrypt(notes, id::text))) FROM bench.t_enc');
SELECT bench.timed('rd_subj', bench.fact('sum_subj'),
    'SELECT sum(length(customer_vault.decrypt(email, id::text)) + length(customer_vault.decrypt(phone, id::text))
                + length(customer_vault.decrypt(notes, id::text))) FROM bench.t_subj');
SELECT bench.timed('rd_pgp', bench.fact('sum_pgp'),
    'SELECT sum(length(pgp_sym_decrypt(email, bench.pgp_pass())) + length(pgp_sym_decrypt(phone, bench.pgp_pass()))
                + length(pgp_sym_decrypt(notes, bench.pgp_pass()))) FROM bench.t_pgp');
SELECT bench.timed('rd_raw', bench.fact('sum_all'),
    'SELECT sum(length(convert_from(decrypt(email, bench.raw_key(), ''aes''), ''UTF8''))
                + length(convert_from(decrypt(phone, bench.raw_key(), ''aes''), ''UTF8''))
                + length(convert_from(decrypt(notes, bench.raw_key(), ''aes''), ''UTF8''))) FROM bench.t_raw');
SELECT bench.timed('rd_view', bench.fact('sum_all'),
    'SELECT sum(length(email) + length(phone) + length(notes)) FROM bench.t_prot_decrypted');
SELECT bench.timed('rd_view1', bench.fact('sum_email'),
    'SELECT sum(length(email)) FROM bench.t_prot1_decrypted');
SELECT bench.timed('rd_plain_' || c, bench.fact('sum_' || c), format('SELECT sum(length(%I)) FROM bench.t_plain', c)),
       bench.timed('rd_cv_' || c, bench.fact('sum_' || c),
                   format('SELECT sum(length(customer_vault.decrypt(%I, id::text))) FROM bench.t_enc', c))
  FROM unnest(ARRAY['email', 'phone', 'notes']) c;
\endif

\if :p_report
DO $$
DECLARE
    n bigint := bench.ifact('n');
    subj_n bigint := bench.ifact('subj_n');
    pgp_n bigint := bench.ifact('pgp_n');
    p float8 := bench.m('rd_plain');
    pr float8 := bench.us(p, n);
    cv float8 := bench.m('rd_cv');
    raw float8 := bench.m('rd_raw');
    m float8;
    per float8;
    scaled float8;
    c text;
    sz int;
    fl float8;
    tot_over float8 := 0;
    tot_floor float8 := 0;
BEGIN
    PERFORM bench.row('read', 'plaintext', p, bench.s('rd_plain'), pr, NULL, 1, 'baseline; sum(length()) of 3 columns');
    PERFORM bench.row('read', 'decrypt() x3', cv, bench.s('rd_cv'), bench.us(cv, n), bench.us(cv, n) - pr, cv / p,
        bench.f((bench.us(cv, n) - pr) / 3) || ' us/value over plaintext');
    m := bench.m('rd_subj'); per := bench.us(m, subj_n); scaled := per * n / 1e6;
    PERFORM bench.row('read', 'decrypt() x3, per-subject keys', scaled, bench.s('rd_subj'), per, per - pr, scaled / p,
        'one key per row, each unwrapped once per session'
        || CASE WHEN subj_n < n THEN '; measured on ' || subj_n || ' rows, total scaled per row to ' || n ELSE '' END);
    PERFORM bench.row('read', 'pgcrypto decrypt(.., key, ''aes'') x3', raw, bench.s('rd_raw'), bench.us(raw, n),
        bench.us(raw, n) - pr, raw / p, 'with convert_from(.., ''UTF8'') to get text');
    PERFORM bench.row('read', '  decrypt() vs pgcrypto decrypt', NULL, NULL, NULL, NULL, cv / raw, 'ratio of read times');
    m := bench.m('rd_pgp'); per := bench.us(m, pgp_n); scaled := per * n / 1e6;
    PERFORM bench.row('read', 'pgcrypto pgp_sym_decrypt() x3', scaled, bench.s('rd_pgp'), per, per - pr, scaled / p,
        'default s2k' || CASE WHEN pgp_n < n THEN '; measured on ' || pgp_n || ' rows, total scaled per row to ' || n ELSE '' END);
    PERFORM bench.row('read', '  decrypt() speed-up over pgp_sym_decrypt', NULL, NULL, NULL, NULL, scaled / cv,
        'pgp time / decrypt() time');
    m := bench.m('rd_view');
    PERFORM bench.row('read', '<table>_decrypted view, 3 protected columns', m, bench.s('rd_view'), bench.us(m, n),
        bench.us(m, n) - pr, m / p, bench.f((bench.us(m, n) - pr) / 3) || ' us/row per protected column');
    m := bench.m('rd_view1');
    PERFORM bench.row('read', '<table>_decrypted view, 1 protected column', m, bench.s('rd_view1'), bench.us(m, n),
        bench.us(m, n) - bench.us(bench.m('rd_plain_email'), n), m / bench.m('rd_plain_email'),
        'email only, over sum(length(email)) of the plaintext table');
    FOREACH c IN ARRAY ARRAY['email', 'phone', 'notes'] LOOP
        sz := CASE c WHEN 'email' THEN 25 WHEN 'phone' THEN 12 ELSE 200 END;
        SELECT open_us INTO fl FROM bench.floor WHERE size = sz;
        m := bench.m('rd_cv_' || c);
        per := bench.us(m, n) - bench.us(bench.m('rd_plain_' || c), n);
        tot_over := tot_over + per;
        tot_floor := tot_floor + fl;
        PERFORM bench.row('read', '  decrypt() per value, ' || c || ' (' || sz || ' B)', m, bench.s('rd_cv_' || c),
            bench.us(m, n), per, per / fl,
            'overhead over plaintext read vs OpenSSL open floor ' || bench.f(fl, 3) || ' us');
    END LOOP;
    PERFORM bench.row('read', '  decrypt() per value, all three', NULL, NULL, NULL, tot_over / 3, tot_over / tot_floor,
        'mean overhead vs mean floor ' || bench.f(tot_floor / 3, 3) || ' us');
END $$;
\endif
