-- test/bench/mask.sql: reading the three protected columns of bench.t_prot
-- through <table>_masked (three masked columns: email_domain, partial and a
-- keyed hash) against <table>_decrypted, in the same reps (issue 14: at most
-- 1.5x, target within 30%), as the masked reader bench_masked (through a
-- SECURITY DEFINER function it owns).  The sums of the masks' lengths are known from the
-- data: '***@example.com' (15), '***' and two digits (5), 32 hex digits.
-- Phases: setup, rep, report.
SELECT :'phase' = 'setup' AS p_setup, :'phase' = 'rep' AS p_rep, :'phase' = 'report' AS p_report \gset

\if :p_setup
SELECT customer_vault.mask_column('bench.t_prot', 'email', 'email_domain');
SELECT customer_vault.mask_column('bench.t_prot', 'phone', 'partial(0,"***",2)');
SELECT customer_vault.mask_column('bench.t_prot', 'notes', 'hash');
-- the view is read as a masked reader, as in production: keyed masks are
-- withheld from a role that may write the table (the bench's superuser), and
-- the reader's scope is SELECT on the columns the view shows unmasked
SET client_min_messages = warning;
DROP ROLE IF EXISTS bench_masked;
CREATE ROLE bench_masked IN ROLE customer_vault_masked_reader;
RESET client_min_messages;
GRANT USAGE ON SCHEMA bench TO bench_masked;
GRANT SELECT (id, created_at) ON bench.t_prot TO bench_masked;
CREATE FUNCTION bench.masked_sum() RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER AS
    'SELECT sum(length(email) + length(phone) + length(notes)) FROM bench.t_prot_masked';
ALTER FUNCTION bench.masked_sum() OWNER TO bench_masked;
\endif

\if :p_rep
SELECT bench.timed('mk_dec', bench.fact('sum_all'),
    'SELECT sum(length(email) + length(phone) + length(notes)) FROM bench.t_prot_decrypted');
SELECT bench.timed('mk_view', (52 * :n)::text, 'SELECT bench.masked_sum()');
\endif

\if :p_report
DO $$
DECLARE
    n bigint := bench.ifact('n');
    d float8 := bench.m('mk_dec');
    m float8 := bench.m('mk_view');
BEGIN
    PERFORM bench.row('mask', '<table>_decrypted view, 3 protected columns', d, bench.s('mk_dec'), bench.us(d, n),
        NULL, 1, 'baseline of this section (measured in the same reps)');
    PERFORM bench.row('mask', '<table>_masked view, 3 masked columns', m, bench.s('mk_view'), bench.us(m, n),
        bench.us(m, n) - bench.us(d, n), m / d, 'email_domain, partial, hash; ratio to the decrypted view');
    PERFORM bench.row('mask', '  masked view within 30% of decrypted view', NULL, NULL, NULL, NULL, m / d,
        'the issue''s target');
END $$;
\endif
