-- test/bench/audit.sql: the decrypt audit's cost.  One column of every row of
-- the insert tables decrypted with customer_vault.audit_decrypt = off,
-- statement and value (in turns, so drift hits all three alike); the 1-row
-- latency (a statement per value, so the per-statement queueing counts) is
-- measured by bench.pl with pgbench and inserted as samples au_1row_*.
-- Times are taken inside the server around the statement: the counting per
-- value is inside, the one queue record per statement and key is written at
-- the end of the top-level statement (the 1-row figures include it); the
-- background worker's insert into access_log runs in another process.
-- Phases: rep, report.
SELECT :'phase' = 'rep' AS p_rep, :'phase' = 'report' AS p_report \gset

\if :p_rep
SET customer_vault.audit_decrypt = off;
SELECT bench.timed('au_off', bench.fact('sum_email'),
    'SELECT sum(length(customer_vault.decrypt(email, id::text))) FROM bench.t_enc');
SET customer_vault.audit_decrypt = statement;
SELECT bench.timed('au_statement', bench.fact('sum_email'),
    'SELECT sum(length(customer_vault.decrypt(email, id::text))) FROM bench.t_enc');
SET customer_vault.audit_decrypt = value;
SELECT bench.timed('au_value', bench.fact('sum_email'),
    'SELECT sum(length(customer_vault.decrypt(email, id::text))) FROM bench.t_enc');
RESET customer_vault.audit_decrypt;
\endif

\if :p_report
DO $$
DECLARE
    n bigint := bench.ifact('n');
    off float8 := bench.m('au_off');
    m float8;
BEGIN
    PERFORM bench.row('audit', 'decrypt() 1 column, audit_decrypt = off', off, bench.s('au_off'), bench.us(off, n),
        NULL, 1, 'baseline');
    m := bench.m('au_statement');
    PERFORM bench.row('audit', 'decrypt() 1 column, audit_decrypt = statement', m, bench.s('au_statement'),
        bench.us(m, n), bench.us(m, n) - bench.us(off, n), m / off, 'one access_log row per statement and key');
    m := bench.m('au_value');
    PERFORM bench.row('audit', 'decrypt() 1 column, audit_decrypt = value', m, bench.s('au_value'),
        bench.us(m, n), bench.us(m, n) - bench.us(off, n), m / off,
        'each value''s subject compared with the 16 recorded (one subject per row here)');
    IF EXISTS (SELECT 1 FROM bench.samples WHERE key = 'au_1row_off') THEN
        off := bench.m('au_1row_off');
        PERFORM bench.row('audit', '1-row decrypt statement, audit off', off, bench.s('au_1row_off'), off * 1e6,
            NULL, 1, 'pgbench, 1 client, latency average incl. round trip');
        m := bench.m('au_1row_statement');
        PERFORM bench.row('audit', '1-row decrypt statement, audit statement', m, bench.s('au_1row_statement'),
            m * 1e6, (m - off) * 1e6, m / off, 'added: counting + one queue record + waking the writer');
        m := bench.m('au_1row_value');
        PERFORM bench.row('audit', '1-row decrypt statement, audit value', m, bench.s('au_1row_value'),
            m * 1e6, (m - off) * 1e6, m / off, 'value mode');
    END IF;
END $$;
\endif
