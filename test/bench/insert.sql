-- test/bench/insert.sql: INSERT of n customer rows, three values each, by
-- every method side by side, and the bytes per row they take (the `size`
-- rows).  Its tables are read by read.sql, lookup.sql and rotation.sql.
--
-- Phases (bench.pl runs setup, rep 1..reps, after, report):
--   setup   one empty table per method
--   rep     TRUNCATE, CHECKPOINT, the timed INSERT .. SELECT, per method; the
--           transparent ones in pairs with a plaintext INSERT beside them
--   after   the protected tables hold ciphertext; VACUUM; expected sums, sizes
--   report  the rows of the table
SELECT :'phase' = 'setup' AS p_setup, :'phase' = 'rep' AS p_rep, :'phase' = 'after' AS p_after,
       :'phase' = 'report' AS p_report \gset

\if :p_setup
SET client_min_messages = warning;
-- the pgcrypto keys: literals, as a benchmark may
CREATE FUNCTION bench.raw_key() RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT '\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'::bytea $$;
CREATE FUNCTION bench.pgp_pass() RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'bench passphrase'::text $$;
-- one table per method, the same primary key everywhere; autovacuum off so
-- it cannot run into a later measurement (the bench vacuums explicitly)
CREATE TABLE bench.t_plain (id bigint PRIMARY KEY, email text, phone text, notes text,
                            created_at timestamptz) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_enc (id bigint PRIMARY KEY, email customer_vault.encrypted_text,
                          phone customer_vault.encrypted_text, notes customer_vault.encrypted_text,
                          created_at timestamptz) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_subj (LIKE bench.t_enc INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_pgp (id bigint PRIMARY KEY, email bytea, phone bytea, notes bytea,
                          created_at timestamptz) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_raw (LIKE bench.t_pgp INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_prot (LIKE bench.t_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_plain_ix (LIKE bench.t_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE INDEX ON bench.t_plain_ix (email);
CREATE TABLE bench.t_prot_bidx (LIKE bench.t_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
-- the transparent path with one protected column (email)
CREATE TABLE bench.t_prot1 (LIKE bench.t_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
-- the transparent path: three protected columns bound to the row's id
SELECT customer_vault.protect_column('bench.t_prot', c, 'bench', 'id')
  FROM unnest(ARRAY['email', 'phone', 'notes']::name[]) c;
SELECT customer_vault.protect_column('bench.t_prot_bidx', 'email', 'bench', 'id', 'email_bidx');
SELECT customer_vault.protect_column('bench.t_prot_bidx', c, 'bench', 'id')
  FROM unnest(ARRAY['phone', 'notes']::name[]) c;
SELECT customer_vault.protect_column('bench.t_prot1', 'email', 'bench', 'id');
-- an UPDATE that sets none of the protected or context columns: a protected
-- table (3 columns) against a plain one holding the same bytes
CREATE TABLE bench.t_upd_prot (LIKE bench.t_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_upd_plain (LIKE bench.t_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
SELECT customer_vault.protect_column('bench.t_upd_prot', c, 'bench', 'id')
  FROM unnest(ARRAY['email', 'phone', 'notes']::name[]) c;
\endif

\if :p_rep
TRUNCATE bench.t_plain;
CHECKPOINT;
SELECT bench.timed('ins_plain', :'n', 'INSERT INTO bench.t_plain (id, email, phone, notes, created_at)
    SELECT id, email, phone, notes, created_at FROM bench.src');
TRUNCATE bench.t_enc;
CHECKPOINT;
SELECT bench.timed('ins_enc', :'n', 'INSERT INTO bench.t_enc (id, email, phone, notes, created_at)
    SELECT id, customer_vault.encrypt(email, ''bench'', id::text), customer_vault.encrypt(phone, ''bench'', id::text),
           customer_vault.encrypt(notes, ''bench'', id::text), created_at FROM bench.src');
-- a new subject (a new key) per customer, as for new customers
TRUNCATE bench.t_subj;
CHECKPOINT;
SELECT bench.timed('ins_subj', :'subj_n', format('INSERT INTO bench.t_subj (id, email, phone, notes, created_at)
    SELECT id, customer_vault.encrypt_for_subject(s, email, id::text), customer_vault.encrypt_for_subject(s, phone, id::text),
           customer_vault.encrypt_for_subject(s, notes, id::text), created_at
      FROM (SELECT *, %L || id AS s FROM bench.src WHERE id <= %s) x', 'n' || :n || '-r' || :rep || '-', :subj_n));
TRUNCATE bench.t_pgp;
CHECKPOINT;
SELECT bench.timed('ins_pgp', :'pgp_n', 'INSERT INTO bench.t_pgp (id, email, phone, notes, created_at)
    SELECT id, pgp_sym_encrypt(email, bench.pgp_pass()), pgp_sym_encrypt(phone, bench.pgp_pass()),
           pgp_sym_encrypt(notes, bench.pgp_pass()), created_at FROM bench.src WHERE id <= ' || :pgp_n);
TRUNCATE bench.t_raw;
CHECKPOINT;
SELECT bench.timed('ins_raw', :'n', 'INSERT INTO bench.t_raw (id, email, phone, notes, created_at)
    SELECT id, encrypt(convert_to(email, ''UTF8''), bench.raw_key(), ''aes''),
           encrypt(convert_to(phone, ''UTF8''), bench.raw_key(), ''aes''),
           encrypt(convert_to(notes, ''UTF8''), bench.raw_key(), ''aes''), created_at FROM bench.src');
-- the transparent path, in pairs with a plaintext INSERT taken right beside
-- it (its overhead is the median of the pairs' differences: what else the
-- machine does meanwhile weighs on both sides of a pair); two pairs of each
-- per rep, the second in the other order; each INSERT after a sync, so that
-- the kernel's writeback of the files the methods above wrote (gigabytes:
-- the cluster runs with fsync off) does not land inside one side of a pair
\set tbl t_plain
\set key ins_plain_p3
\ir insert_one.sql
\set tbl t_prot
\set key ins_prot
\ir insert_one.sql
\set tbl t_plain
\set key ins_plain_p1
\ir insert_one.sql
\set tbl t_prot1
\set key ins_prot1
\ir insert_one.sql
\set tbl t_prot
\set key ins_prot
\ir insert_one.sql
\set tbl t_plain
\set key ins_plain_p3
\ir insert_one.sql
\set tbl t_prot1
\set key ins_prot1
\ir insert_one.sql
\set tbl t_plain
\set key ins_plain_p1
\ir insert_one.sql
TRUNCATE bench.t_plain_ix;
CHECKPOINT;
SELECT bench.timed('ins_plain_ix', :'n', 'INSERT INTO bench.t_plain_ix (id, email, phone, notes, created_at)
    SELECT id, email, phone, notes, created_at FROM bench.src');
TRUNCATE bench.t_prot_bidx;
CHECKPOINT;
SELECT bench.timed('ins_prot_bidx', :'n', 'INSERT INTO bench.t_prot_bidx (id, email, phone, notes, created_at)
    SELECT id, email, phone, notes, created_at FROM bench.src');
TRUNCATE bench.t_upd_prot, bench.t_upd_plain;
INSERT INTO bench.t_upd_prot SELECT * FROM bench.src;
INSERT INTO bench.t_upd_plain SELECT * FROM bench.t_upd_prot;
CHECKPOINT;
SELECT bench.timed('upd_plain', :'n', 'UPDATE bench.t_upd_plain SET created_at = created_at + interval ''1 s''');
CHECKPOINT;
SELECT bench.timed('upd_prot', :'n', 'UPDATE bench.t_upd_prot SET created_at = created_at + interval ''1 s''');
\endif

\if :p_after
-- the transparent path really stored ciphertext, the blind index is filled
SELECT bench.check(n = 0, n || ' rows of the protected tables are not sealed')
  FROM (SELECT (SELECT count(*) FROM bench.t_prot WHERE left(email, 4) <> 'cv1$' OR left(notes, 4) <> 'cv1$')
             + (SELECT count(*) FROM bench.t_prot_bidx WHERE email_bidx IS NULL OR left(phone, 4) <> 'cv1$')
             + (SELECT count(*) FROM bench.t_prot1 WHERE left(email, 4) <> 'cv1$' OR left(phone, 4) = 'cv1$') AS n) x;
VACUUM (ANALYZE) bench.t_plain, bench.t_enc, bench.t_subj, bench.t_pgp, bench.t_raw,
                 bench.t_prot, bench.t_plain_ix, bench.t_prot_bidx, bench.t_prot1;
-- what the reads must give: sums of the lengths of the values
SELECT bench.set_fact('sum_all', sum(length(email) + length(phone) + length(notes))::text),
       bench.set_fact('sum_pgp', (sum(length(email) + length(phone) + length(notes)) FILTER (WHERE id <= :pgp_n))::text),
       bench.set_fact('sum_subj', (sum(length(email) + length(phone) + length(notes)) FILTER (WHERE id <= :subj_n))::text),
       bench.set_fact('sum_email', sum(length(email))::text), bench.set_fact('sum_phone', sum(length(phone))::text),
       bench.set_fact('sum_notes', sum(length(notes))::text)
  FROM bench.src;
-- bytes per row on disk (heap + TOAST), after the last insert
DO $$
DECLARE
    t text;
    rows bigint;
BEGIN
    FOREACH t IN ARRAY ARRAY['t_plain', 't_enc', 't_raw', 't_prot', 't_pgp', 't_subj'] LOOP
        EXECUTE format('SELECT count(*) FROM bench.%I', t) INTO rows;
        PERFORM bench.set_fact('size_' || t, ((pg_relation_size(c.oid) + CASE WHEN c.reltoastrelid <> 0
                                               THEN pg_relation_size(c.reltoastrelid) ELSE 0 END)::float8
                                             / greatest(rows, 1))::text)
           FROM pg_class c WHERE c.oid = ('bench.' || t)::regclass;
    END LOOP;
END $$;
\endif

\if :p_report
DO $$
DECLARE
    n bigint := bench.ifact('n');
    subj_n bigint := bench.ifact('subj_n');
    pgp_n bigint := bench.ifact('pgp_n');
    p float8 := bench.m('ins_plain');
    pr float8 := bench.us(p, n);
    pix float8 := bench.m('ins_plain_ix');
    m float8;
    per float8;
    fl text;
    t text;
BEGIN
    SELECT string_agg(bench.f(seal_us), '/' ORDER BY array_position(ARRAY[25, 12, 200], size)) INTO fl FROM bench.floor;
    PERFORM bench.row('insert', 'plaintext', p, bench.s('ins_plain'), pr, NULL, 1, 'baseline');
    m := bench.m('ins_enc');
    PERFORM bench.row('insert', 'encrypt() x3, explicit encrypted_text', m, bench.s('ins_enc'), bench.us(m, n),
        bench.us(m, n) - pr, m / p,
        bench.f((bench.us(m, n) - pr) / 3) || ' us/value over plaintext; OpenSSL seal floor 25/12/200 B: ' || fl || ' us');
    m := bench.m('ins_subj'); per := bench.us(m, subj_n);
    PERFORM bench.row('insert', 'encrypt_for_subject() x3', per * n / 1e6, bench.s('ins_subj'), per, per - pr, per / pr,
        'a new subject key per row' || CASE WHEN subj_n < n THEN '; measured on ' || subj_n || ' rows, total scaled per row to ' || n ELSE '' END);
    m := bench.m('ins_pgp'); per := bench.us(m, pgp_n);
    PERFORM bench.row('insert', 'pgcrypto pgp_sym_encrypt() x3', per * n / 1e6, bench.s('ins_pgp'), per, per - pr, per / pr,
        'default s2k' || CASE WHEN pgp_n < n THEN '; measured on ' || pgp_n || ' rows, total scaled per row to ' || n ELSE '' END);
    m := bench.m('ins_raw');
    PERFORM bench.row('insert', 'pgcrypto encrypt(convert_to(..), key, ''aes'') x3', m, bench.s('ins_raw'), bench.us(m, n),
        bench.us(m, n) - pr, m / p, 'AES-CBC, no integrity');
    m := bench.m('ins_prot');
    PERFORM bench.row('insert', 'transparent: INSERT plaintext, 3 protected columns', m, bench.s('ins_prot'), bench.us(m, n),
        bench.us(bench.md('ins_prot', 'ins_plain_p3'), n), m / bench.m('ins_plain_p3'),
        'one trigger per table (one tuple re-form), context id; ' || bench.pair_note('ins_prot', 'ins_plain_p3', n));
    m := bench.m('ins_prot1');
    PERFORM bench.row('insert', 'transparent: INSERT plaintext, 1 protected column', m, bench.s('ins_prot1'), bench.us(m, n),
        bench.us(bench.md('ins_prot1', 'ins_plain_p1'), n), m / bench.m('ins_plain_p1'),
        'one trigger per table; email only; ' || bench.pair_note('ins_prot1', 'ins_plain_p1', n));
    m := bench.m('upd_prot');
    PERFORM bench.row('insert', 'transparent: UPDATE of an unprotected column, 3 protected', m, bench.s('upd_prot'),
        bench.us(m, n), bench.us(m, n) - bench.us(bench.m('upd_plain'), n), m / bench.m('upd_plain'),
        'UPDATE .. SET created_at, over the same UPDATE of a plain table holding the same bytes');
    PERFORM bench.row('insert', 'plaintext + btree(email)', pix, bench.s('ins_plain_ix'), bench.us(pix, n), NULL, NULL,
        'baseline of the next row');
    m := bench.m('ins_prot_bidx');
    PERFORM bench.row('insert', 'transparent + blind index on email (btree)', m, bench.s('ins_prot_bidx'), bench.us(m, n),
        bench.us(m, n) - bench.us(pix, n), m / pix, 'over plaintext + btree(email)');
    -- storage
    FOREACH t IN ARRAY ARRAY['t_plain', 't_enc', 't_raw', 't_pgp', 't_prot'] LOOP
        PERFORM bench.row('size', CASE t WHEN 't_plain' THEN 'plaintext'
                                         WHEN 't_enc' THEN 'encrypt(), encrypted_text (binary envelope)'
                                         WHEN 't_raw' THEN 'pgcrypto encrypt(.., ''aes''), bytea'
                                         WHEN 't_pgp' THEN 'pgcrypto pgp_sym_encrypt(), bytea'
                                         ELSE 'transparent, text envelope (cv1$ + base64)' END,
            NULL, NULL, NULL, NULL, bench.fact('size_' || t)::float8 / bench.fact('size_t_plain')::float8,
            bench.f(bench.fact('size_' || t)::float8, 0) || ' bytes/row, heap + TOAST');
    END LOOP;
END $$;
\endif
