-- Masking by job (issue 14): rules and their edge cases, <table>_masked for
-- customer_vault_masked_reader, and every path a masked reader could try to
-- get more than the mask through.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_mk_masked IN ROLE customer_vault_masked_reader;
CREATE ROLE regress_mk_reader IN ROLE customer_vault_reader;
CREATE ROLE regress_mk_both IN ROLE customer_vault_reader, customer_vault_masked_reader;
CREATE ROLE regress_mk_admin IN ROLE customer_vault_admin;
CREATE ROLE regress_mk_none;
RESET client_min_messages;
SELECT customer_vault.create_key('mk_key') > 0 AS k1, customer_vault.create_key('mk_key2') > 0 AS k2;

-- a protected table with labels, a rule per job
CREATE TABLE mk_c (id int PRIMARY KEY, email text, phone text, dob text, income text,
                   diagnosis text, iban text, nick text, city text);
ALTER TABLE mk_c OWNER TO regress_mk_admin;
INSERT INTO mk_c VALUES
  (1, 'alice@example.com', '+44 20 7946 0958', '1985-03-14', '52340', 'asthma', 'DE89370400440532013000', 'Al', 'Leeds'),
  (2, 'bob@mail.example.org', '+1 202 555 0147', '1990-12-01 08:30', '-17.5', 'none', 'GB29NWBK60161331926819', 'B', 'York'),
  (3, '', '', 'not a date', 'lots', '', '', '', NULL),
  (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'Hull'),
  (5, 'zoë.ünïcødé@exämple.de', '☎ 0123 456 789', '2001-07-31', '999999999999999999999.99', 'x', 'ÄÖÜ1234', 'éé', 'Bath');
SET ROLE regress_mk_admin;
SECURITY LABEL FOR customer_vault ON COLUMN mk_c.email IS 'pii:contact';
SECURITY LABEL FOR customer_vault ON COLUMN mk_c.diagnosis IS 'pii:special';
SECURITY LABEL FOR customer_vault ON COLUMN mk_c.iban IS 'pii:financial';
SECURITY LABEL FOR customer_vault ON COLUMN mk_c.nick IS 'pii';
SELECT customer_vault.protect_column('mk_c', c, 'mk_key', 'id', CASE WHEN c = 'email' THEN 'email_bidx' END)
  FROM unnest(ARRAY['email', 'phone', 'dob', 'income', 'diagnosis', 'iban', 'nick']) c;
-- no masked view until the table has a rule
SELECT to_regclass('mk_c_masked') AS no_view_yet;
-- the defaults by label (email pii:contact, iban pii:financial, nick pii,
-- diagnosis pii:special; phone/dob/income protected without a label: withheld)
SELECT customer_vault.mask_column('mk_c', 'email', 'default');
GRANT SELECT ON mk_c TO regress_mk_masked, regress_mk_reader, regress_mk_both;
RESET ROLE;
SET ROLE regress_mk_masked;
SELECT * FROM mk_c_masked ORDER BY id;
RESET ROLE;

-- rules per column
SET ROLE regress_mk_admin;
SELECT customer_vault.mask_column('mk_c', 'phone', 'partial(0, "*** ** ", 2)');
SELECT customer_vault.mask_column('mk_c', 'dob', 'generalize_date(year)');
SELECT customer_vault.mask_column('mk_c', 'income', 'generalize_number(1000)');
SELECT customer_vault.mask_column('mk_c', 'email', 'email_domain');
SELECT customer_vault.mask_column('mk_c', 'nick', 'fake(name)');
SELECT customer_vault.mask_column('mk_c', 'city', 'constant("somewhere")');
RESET ROLE;
SET ROLE regress_mk_masked;
SELECT * FROM mk_c_masked ORDER BY id;
RESET ROLE;

-- every rule on the edge cases, through a scratch protected table
CREATE TABLE mk_e (id int PRIMARY KEY, v text);
INSERT INTO mk_e VALUES (1, ''), (2, 'a'), (3, 'ab'), (4, 'abcdefgh'), (5, 'žluťoučký kůň'),
                        (6, NULL), (7, repeat('x', 100000) || 'END'), (8, 'a@b'), (9, '@'),
                        (10, '2024-02-29T10:00'), (11, '  42  '), (12, '1e5'), (13, '0.35'), (14, '-0.35');
SELECT customer_vault.protect_column('mk_e', 'v', 'mk_key', 'id');
GRANT SELECT ON mk_e TO regress_mk_masked;
CREATE FUNCTION pg_temp.rule_outputs(r text) RETURNS TABLE (id int, masked text) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM customer_vault.mask_column('mk_e', 'v', r);
    SET LOCAL ROLE regress_mk_masked;
    RETURN QUERY SELECT m.id, CASE WHEN length(m.v) > 60 THEN left(m.v, 20) || '...(' || length(m.v) || ')' ELSE m.v END
                   FROM mk_e_masked m ORDER BY m.id;
    RESET ROLE;
END
$$;
SELECT r AS rule, string_agg(id || '=' || coalesce(quote_literal(masked), 'NULL'), ' ' ORDER BY id) AS outputs
  FROM unnest(ARRAY['partial(1,"***",0)', 'partial(2,"-",2)', 'partial(0,"",3)', 'email_domain',
                    'generalize_date(day)', 'generalize_date(month)', 'generalize_date(decade)',
                    'generalize_number(10)', 'generalize_number(0.1)', 'constant(7)', 'null',
                    'fake(first_name)', 'fake(email)', 'fake(phone)', 'fake(city)', 'fake(address)']) WITH ORDINALITY u(r, n),
       pg_temp.rule_outputs(r)
 GROUP BY r, n ORDER BY n;
-- hash: 32 hex digits, equal for equal values, keyed
SELECT customer_vault.mask_column('mk_e', 'v', 'hash');
UPDATE mk_e SET v = 'same' WHERE id IN (2, 3);
SET ROLE regress_mk_masked;
SELECT id, v ~ '^[0-9a-f]{32}$' AS hex32, v IS NULL AS is_null FROM mk_e_masked WHERE id IN (1, 2, 6) ORDER BY id;
SELECT count(DISTINCT v) AS distinct_hashes_of_same FROM mk_e_masked WHERE id IN (2, 3);
RESET ROLE;

-- rules are parsed in C, with clear errors
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' (' || nullif(d, '') || ')', '');
END
$$;
SELECT left(r, 40) AS rule, pg_temp.try(format('SELECT customer_vault.mask_column(''mk_e'', ''v'', %L)', r)) AS result
  FROM unnest(ARRAY['partial', 'partial(1,2,3)', 'partial(-1,"*",0)', 'partial(1,"*",1001)', 'email_domain(1)',
                    'generalize_date(week)', 'generalize_number(0)', 'generalize_number(-5)', 'generalize_number(x)',
                    'fake(ssn)', 'fake', 'hash(a,b)', 'hash(no_such_key)', 'sha256', 'partial(1,"*",0) junk',
                    'partial(1,"*,0', '', '   ', 'constant()', 'null()', 'NULL', 'Partial(1,"x",0)',
                    'partial(1,"' || repeat('x', 65) || '",0)', 'constant("' || repeat('x', 300) || '")',
                    'partial(1 , "a""b" , 0)', repeat('x', 2000)]) r;
SELECT customer_vault.mask_column('mk_e', 'v', NULL);
SELECT customer_vault.mask_column(NULL, 'v', 'null');
SELECT customer_vault.mask_column('mk_e', NULL, 'null');
SELECT customer_vault.mask_column('mk_e', 'nope', 'null');
SELECT customer_vault.mask_column('mk_c', 'email_bidx', 'null');
SELECT customer_vault.mask_column('customer_vault.data_keys', 'name', 'null');
SELECT customer_vault.mask_column('mk_c_masked', 'email', 'null');
-- keys: a named key, or the column's own; an unprotected column needs one
SELECT customer_vault.mask_column('mk_e', 'v', 'hash("mk_key2")');
SELECT customer_vault.mask_column('mk_e', 'v', 'fake(email, mk_key2)');
SELECT customer_vault.mask_column('mk_e', 'v', 'default');
SELECT rule FROM customer_vault.mask_rules WHERE relid = 'mk_e'::regclass;

-- keyed masks: stable, equal across tables under one key, different across keys
CREATE TABLE mk_o (id int PRIMARY KEY, cust_email text);
INSERT INTO mk_o VALUES (10, 'alice@example.com'), (11, 'carol@example.com');
SELECT customer_vault.protect_column('mk_o', 'cust_email', 'mk_key', 'id');
GRANT SELECT ON mk_o TO regress_mk_masked;
SELECT customer_vault.mask_column('mk_o', 'cust_email', 'hash');
SELECT customer_vault.mask_column('mk_c', 'email', 'hash');
SET ROLE regress_mk_masked;
SELECT o.id, c.id AS joins_customer FROM mk_o_masked o LEFT JOIN mk_c_masked c ON c.email = o.cust_email ORDER BY o.id;
SELECT cust_email AS h_key1 FROM mk_o_masked WHERE id = 10 \gset
RESET ROLE;
SELECT customer_vault.mask_column('mk_o', 'cust_email', 'hash(mk_key2)');
SET ROLE regress_mk_masked;
SELECT cust_email <> :'h_key1' AS differs_across_keys FROM mk_o_masked WHERE id = 10;
RESET ROLE;
-- rotation does not change masks (the first version's subkey)
SELECT customer_vault.mask_column('mk_o', 'cust_email', 'hash');
SELECT customer_vault.rotate_key('mk_key') > 0 AS rotated;
UPDATE mk_o SET cust_email = 'alice@example.com' WHERE id = 10;
SET ROLE regress_mk_masked;
SELECT cust_email = :'h_key1' AS same_after_rotation FROM mk_o_masked WHERE id = 10;
RESET ROLE;

-- a plaintext column with a label: masked too (the reader needs SELECT on it
-- to use the view), keyed masks bound to the column
CREATE TABLE mk_p (id int PRIMARY KEY, name text, born date, note text, secret customer_vault.encrypted_text);
INSERT INTO mk_p VALUES (1, 'Ada Lovelace', '1815-12-10', 'plain', customer_vault.encrypt('s', 'mk_key'));
SECURITY LABEL FOR customer_vault ON COLUMN mk_p.name IS 'pii';
SELECT customer_vault.mask_column('mk_p', 'born', 'generalize_date(decade)');
GRANT SELECT ON mk_p TO regress_mk_masked;
SET ROLE regress_mk_masked;
SELECT * FROM mk_p_masked;
RESET ROLE;
-- a new label (SECURITY LABEL) and a new column (ALTER TABLE) rebuild the view at once
SECURITY LABEL FOR customer_vault ON COLUMN mk_p.note IS 'pii:special';
ALTER TABLE mk_p ADD COLUMN extra int DEFAULT 7;
SET ROLE regress_mk_masked;
SELECT * FROM mk_p_masked;
RESET ROLE;
-- a column with a rule keeps its name; so does a labelled one (its label's
-- default was pinned as its rule); other columns may be renamed
ALTER TABLE mk_p RENAME COLUMN born TO birth;
ALTER TABLE mk_p RENAME COLUMN name TO full_name;
ALTER TABLE mk_p RENAME COLUMN extra TO extra2;
SET ROLE regress_mk_masked;
SELECT * FROM mk_p_masked;
RESET ROLE;
-- protecting a column of a table with a masked view keeps the view, now masking from ciphertext
SELECT customer_vault.protect_column('mk_p', 'note', 'mk_key', 'id');
SELECT pg_get_viewdef('mk_p_masked') ~ '_mask_sealed\([^,]*note\M' AS note_masked_from_ciphertext;
SET ROLE regress_mk_masked;
SELECT * FROM mk_p_masked;
RESET ROLE;
SELECT customer_vault.mask_column('mk_p', 'secret', 'null');
-- keyed rules are for protected columns only (anybody may mask a guess of plaintext)
SELECT customer_vault.mask_column('mk_p', 'name', 'hash');
SELECT customer_vault.mask_column('mk_p', 'name', 'fake(name, mk_key)');

-- ---------- what a masked reader cannot do ----------
SELECT binding AS bind FROM customer_vault.protected_columns WHERE table_name = 'mk_c' AND column_name = 'diagnosis' \gset
SELECT binding AS bind_phone FROM customer_vault.protected_columns WHERE table_name = 'mk_c' AND column_name = 'phone' \gset
SET ROLE regress_mk_masked;
-- decrypt, the decrypted view, the opening function, blind indexes, lookup
SELECT customer_vault.decrypt(email::customer_vault.encrypted_text, id::text) FROM mk_c WHERE id = 1;
SELECT diagnosis FROM mk_c_decrypted WHERE id = 1;
SELECT customer_vault._open_column(diagnosis, customer_vault._row_context(:'bind', id)) FROM mk_c WHERE id = 1;
SELECT customer_vault.column_blind_index('mk_c', 'email', 'alice@example.com');
SELECT customer_vault.blind_index('alice@example.com', 'mk_key');
SELECT customer_vault.lookup('mk_c', 'email', 'alice@example.com');
-- the blind index column is not in the view
SELECT email_bidx FROM mk_c_masked;
-- the mask functions with a chosen rule: there is no rule argument; the
-- column's rule applies (pii:special: withheld) whatever the caller passes
SELECT customer_vault._mask_sealed(diagnosis, customer_vault._row_context(:'bind', id), 'mk_c', 'diagnosis') FROM mk_c WHERE id = 1;
-- a value of one column under another column's (weaker) rule: refused
SELECT customer_vault._mask_sealed(diagnosis, customer_vault._row_context(:'bind', id), 'mk_c', 'phone') FROM mk_c WHERE id = 1;
SELECT customer_vault._mask_sealed(diagnosis, customer_vault._row_context(:'bind_phone', id), 'mk_c', 'phone') FROM mk_c WHERE id = 1;
-- another row's context: authentication fails, no plaintext in the error
SELECT customer_vault._mask_sealed(phone, customer_vault._row_context(:'bind_phone', id + 1), 'mk_c', 'phone') FROM mk_c WHERE id = 1;
-- the plaintext path on a protected column (any text: an oracle) is refused
SELECT customer_vault._mask_plain('guess', 'mk_c', 'email');
-- rules cannot be changed, nor read by computing them
SELECT customer_vault.mask_column('mk_c', 'diagnosis', 'partial(100,"",0)');
SELECT customer_vault._mask_column_set('mk_c', 'diagnosis', 'partial(100,"",0)');
SELECT customer_vault._mask_column_as_owner('mk_c', 'diagnosis', 'partial(100,"",0)', 10);
UPDATE customer_vault.mask_rules SET rule = 'partial(100,"",0)';
SELECT customer_vault._masked_view_build('mk_c');
SELECT customer_vault._build_masked_view('mk_c');
CREATE OR REPLACE VIEW mk_c_masked AS SELECT * FROM mk_c;
-- cursors, COPY and EXPLAIN give the masks, never more
BEGIN;
DECLARE c CURSOR FOR SELECT id, diagnosis, phone FROM mk_c_masked ORDER BY id;
FETCH 2 FROM c;
COMMIT;
COPY (SELECT id, phone, diagnosis FROM mk_c_masked ORDER BY id) TO STDOUT;
CREATE TEMP TABLE mk_plan (line text);
DO $$
DECLARE l text;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (VERBOSE, ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM mk_c_masked WHERE phone IS NOT NULL ORDER BY diagnosis' LOOP
        INSERT INTO mk_plan VALUES (l);
    END LOOP;
END
$$;
SELECT count(*) FILTER (WHERE line ~ '(asthma|7946|1985|52340|alice|DE89)') AS plaintext_in_plan,
       count(*) FILTER (WHERE line ~ '_mask_sealed') > 0 AS plan_shows_mask_calls
  FROM mk_plan;
-- errors on masked values quote the mask at most
SELECT phone::int FROM mk_c_masked WHERE id = 1;
SELECT dob::date FROM mk_c_masked WHERE id = 1;
-- ORDER BY / GROUP BY: by the mask only (no order of the plaintext)
SELECT phone, count(*) FROM mk_c_masked GROUP BY phone ORDER BY phone;
SELECT array_agg(id ORDER BY diagnosis, id) AS order_by_withheld FROM mk_c_masked;
-- a leaky function of the caller's in a qual sees masks only
CREATE FUNCTION pg_temp.peek(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS $$
BEGIN RAISE NOTICE 'peek: %', t; RETURN true; END $$;
SELECT id FROM mk_c_masked WHERE pg_temp.peek(dob) AND id = 1;
RESET ROLE;

-- other roles: a reader is not a masked reader, PUBLIC and writers get nothing
SET ROLE regress_mk_reader;
SELECT * FROM mk_c_masked;
SELECT customer_vault._mask_sealed(phone, customer_vault._row_context(:'bind_phone', id), 'mk_c', 'phone') FROM mk_c;
RESET ROLE;
SET ROLE regress_mk_none;
SELECT * FROM mk_c_masked;
SELECT customer_vault.masked_copy('mk_c', 'mk_copy');
RESET ROLE;
-- a role both reader and masked reader: plaintext in one view, masks in the other
SET ROLE regress_mk_both;
SELECT d.phone AS decrypted, m.phone AS masked FROM mk_c_decrypted d JOIN mk_c_masked m USING (id) WHERE id = 1;
RESET ROLE;
-- a masked reader needs SELECT on the columns the view shows unmasked (its
-- scope: id here), not on the columns it masks: with SELECT on (id, phone)
-- the view shows every mask, the table itself those two columns only
REVOKE SELECT ON mk_c FROM regress_mk_masked;
GRANT SELECT (id, phone) ON mk_c TO regress_mk_masked;
SET ROLE regress_mk_masked;
SELECT id, phone FROM mk_c_masked WHERE id = 1;
SELECT * FROM mk_c_masked;
SELECT customer_vault._mask_sealed(diagnosis, customer_vault._row_context(:'bind', id), 'mk_c', 'diagnosis') FROM mk_c;
SELECT email FROM mk_c;
RESET ROLE;
REVOKE SELECT ON mk_c FROM regress_mk_masked;
SET ROLE regress_mk_masked;
SELECT count(*) FROM mk_c_masked;
RESET ROLE;
GRANT SELECT ON mk_c TO regress_mk_masked;
-- row-level security of the table applies to the masked reader
ALTER TABLE mk_c ENABLE ROW LEVEL SECURITY;
CREATE POLICY mk_only_two ON mk_c FOR SELECT USING (id <= 2);
SET ROLE regress_mk_masked;
SELECT count(*) AS rows_seen_under_rls FROM mk_c_masked;
RESET ROLE;
DROP POLICY mk_only_two ON mk_c;
ALTER TABLE mk_c DISABLE ROW LEVEL SECURITY;

-- the view belongs to customer_vault_mask_owner, masked readers only
SELECT pg_get_userbyid(c.relowner) AS owner, c.reloptions,
       has_table_privilege('regress_mk_masked', c.oid, 'SELECT') AS masked_reader,
       has_table_privilege('regress_mk_reader', c.oid, 'SELECT') AS reader,
       has_table_privilege('regress_mk_admin', c.oid, 'SELECT') AS admin
  FROM pg_class c WHERE c.relname = 'mk_c_masked';
-- nobody else redefines it or takes its name
SET ROLE regress_mk_admin;
CREATE OR REPLACE VIEW mk_c_masked AS SELECT * FROM mk_c;
ALTER VIEW mk_c_masked OWNER TO regress_mk_admin;
RESET ROLE;
CREATE RULE r AS ON INSERT TO mk_c_masked DO INSTEAD NOTHING;
-- a table owner's view of that name blocks mask_column instead of being replaced
CREATE TABLE mk_q (id int, v text);
ALTER TABLE mk_q OWNER TO regress_mk_admin;
GRANT CREATE ON SCHEMA public TO regress_mk_admin;
SET ROLE regress_mk_admin;
CREATE VIEW mk_q_masked AS SELECT 1 AS trap;
SELECT customer_vault.mask_column('mk_q', 'v', 'null');
SELECT * FROM mk_q_masked;
DROP VIEW mk_q_masked;
SELECT customer_vault.mask_column('mk_q', 'v', 'null');
-- once the table has a rule, nobody takes the name
RESET ROLE;
DROP VIEW mk_q_masked;
SET ROLE regress_mk_admin;
CREATE VIEW mk_q_masked AS SELECT 1 AS trap;
CREATE TYPE mk_q_masked AS (trap int);
RESET ROLE;
SELECT customer_vault.mask_column('mk_q', 'v', 'null');
REVOKE CREATE ON SCHEMA public FROM regress_mk_admin;

-- masked_copy: a table owned by the caller with the masks, keys not needed
CREATE SCHEMA mk_dev;
GRANT CREATE, USAGE ON SCHEMA mk_dev TO regress_mk_masked;
SET ROLE regress_mk_masked;
SELECT customer_vault.masked_copy('mk_c', 'mk_c_copy', 'mk_dev') AS rows_copied;
SELECT customer_vault.masked_copy('mk_c', 'mk_c_copy', 'mk_dev');
SELECT customer_vault.masked_copy('mk_c', 'mk_c_copy');
SELECT customer_vault.masked_copy('mk_c', 'x', 'customer_vault');
SELECT customer_vault.masked_copy(NULL, 'x');
SELECT customer_vault.masked_copy('mk_c', NULL);
RESET ROLE;
SELECT pg_get_userbyid(relowner) AS copy_owner FROM pg_class WHERE oid = 'mk_dev.mk_c_copy'::regclass;
SELECT attname, atttypid::regtype FROM pg_attribute WHERE attrelid = 'mk_dev.mk_c_copy'::regclass AND attnum > 0 ORDER BY attnum;
SELECT * FROM mk_dev.mk_c_copy ORDER BY id;
SELECT count(*) AS plaintext_cells
  FROM mk_dev.mk_c_copy c, mk_c_decrypted d
 WHERE c.id = d.id AND (c.phone = d.phone OR c.dob = d.dob OR c.diagnosis = d.diagnosis OR c.iban = d.iban);
-- an admin who is not a masked reader cannot make one
SET ROLE regress_mk_admin;
SELECT customer_vault.masked_copy('mk_c', 'mk_c_copy2');
RESET ROLE;

-- dropping a table or column forgets its rules
ALTER TABLE mk_q DROP COLUMN v CASCADE;
SELECT count(*) AS rules_of_mk_q FROM customer_vault.mask_rules WHERE relid::oid = 'mk_q'::regclass::oid;
DROP SCHEMA mk_dev CASCADE;
DROP TABLE mk_c, mk_e, mk_o, mk_p, mk_q CASCADE;
SELECT count(*) AS rules_left FROM customer_vault.mask_rules;
DROP TABLE mk_plan;
DROP FUNCTION pg_temp.peek(text);
DROP ROLE regress_mk_masked, regress_mk_reader, regress_mk_both, regress_mk_admin, regress_mk_none;
