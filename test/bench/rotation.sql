-- test/bench/rotation.sql: rotate_key, then reencrypt the three columns of
-- the explicit table (context column id) and of the protected table; after
-- it no value may be under an older key version.
-- Phases: rep, report.
SELECT :'phase' = 'rep' AS p_rep, :'phase' = 'report' AS p_report \gset

\if :p_rep
SELECT customer_vault.rotate_key('bench') AS v \gset
SELECT clock_timestamp() AS t0 \gset
CALL customer_vault.reencrypt('bench.t_enc', 'email', 10000, 'id');
CALL customer_vault.reencrypt('bench.t_enc', 'phone', 10000, 'id');
CALL customer_vault.reencrypt('bench.t_enc', 'notes', 10000, 'id');
SELECT clock_timestamp() AS t1 \gset
CALL customer_vault.reencrypt('bench.t_prot', 'email');
CALL customer_vault.reencrypt('bench.t_prot', 'phone');
CALL customer_vault.reencrypt('bench.t_prot', 'notes');
SELECT bench.sample('rot_enc', extract(epoch FROM :'t1'::timestamptz - :'t0'::timestamptz)),
       bench.sample('rot_prot', extract(epoch FROM clock_timestamp() - :'t1'::timestamptz));
SELECT bench.check(bad = 0, 'reencrypt left ' || bad || ' rows under an older key version')
  FROM (SELECT (SELECT count(*) FROM bench.t_enc
                 WHERE customer_vault.key_of(email) <> 'bench:' || :v OR customer_vault.key_of(phone) <> 'bench:' || :v
                    OR customer_vault.key_of(notes) <> 'bench:' || :v)
             + (SELECT count(*) FROM bench.t_prot
                 WHERE customer_vault.key_of(email::customer_vault.encrypted_text) <> 'bench:' || :v
                    OR customer_vault.key_of(phone::customer_vault.encrypted_text) <> 'bench:' || :v
                    OR customer_vault.key_of(notes::customer_vault.encrypted_text) <> 'bench:' || :v) AS bad) x;
VACUUM bench.t_enc, bench.t_prot;
\endif

\if :p_report
DO $$
DECLARE
    nv bigint := 3 * bench.ifact('n');
    fl float8;
    m float8;
BEGIN
    SELECT sum(seal_us + open_us) / 3 INTO fl FROM bench.floor WHERE size IN (25, 12, 200);
    m := bench.m('rot_enc');
    PERFORM bench.row('rotation', 'rotate_key + reencrypt, explicit columns', m, bench.s('rot_enc'), bench.us(m, nv),
        NULL, NULL, bench.f(nv / m, 0) || ' values/s (us/unit per value; one reencrypt per column); OpenSSL open+seal floor '
        || bench.f(fl, 3) || ' us');
    m := bench.m('rot_prot');
    PERFORM bench.row('rotation', 'rotate_key + reencrypt, protected columns', m, bench.s('rot_prot'), bench.us(m, nv),
        NULL, NULL, bench.f(nv / m, 0) || ' values/s (us/unit per value; one reencrypt per column)');
END $$;
\endif
