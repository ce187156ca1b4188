-- Bulk consent import (import_consents) and the C paths of grant_consent and
-- _ledger_hash: the C hash gives the bytes of the 0.2.0 SQL definition; an
-- import chains its entries so verify_ledger() passes; importing the same
-- rows twice records nothing the second time; a bad row stops the whole
-- import with its row number; the query runs with the caller's rights only.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_imp_writer;
CREATE ROLE regress_imp_admin;
CREATE ROLE regress_imp_reader;
CREATE ROLE regress_imp_nobody;
RESET client_min_messages;
GRANT customer_vault_writer TO regress_imp_writer;
GRANT customer_vault_admin TO regress_imp_admin;
GRANT customer_vault_reader TO regress_imp_reader;
SELECT customer_vault.define_purpose('imp_news');
SELECT customer_vault.define_purpose('imp_life', consent_valid_for => '30 days');
SELECT customer_vault.define_purpose('imp_contract', 'contract');
CREATE SCHEMA imp;
GRANT USAGE ON SCHEMA imp TO PUBLIC;

-- ---------- _ledger_hash in C = the SQL definition of 0.1.0/0.2.0 ----------
CREATE FUNCTION imp.sql_ledger_hash(prev bytea, id bigint, subject text, purpose text, action text,
                                    evidence jsonb, valid_until timestamptz, recorded_at timestamptz, recorded_by name)
    RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT pg_catalog.sha256(COALESCE(prev, '\x'::bytea) OPERATOR(pg_catalog.||) pg_catalog.convert_to(
        pg_catalog.jsonb_build_array(id, subject, purpose, action, evidence,
            (EXTRACT(epoch FROM valid_until) OPERATOR(pg_catalog.*) 1000000)::bigint,
            (EXTRACT(epoch FROM recorded_at) OPERATOR(pg_catalog.*) 1000000)::bigint,
            recorded_by)::text, 'UTF8'))
$$;
CREATE TABLE imp.hash_cases (prev bytea, id bigint, subject text, purpose text, action text, evidence jsonb,
                             valid_until timestamptz, recorded_at timestamptz, recorded_by name);
INSERT INTO imp.hash_cases VALUES
    (NULL, 1, 's1', 'imp_news', 'grant', '{"form": "a"}', NULL, '2026-01-01 00:00:00.123456+00', 'postgres'),
    (sha256('x'), 9223372036854775807, 'Zoë 東京 "quoted" \back\slash', 'p', 'withdraw', NULL,
     '1969-12-31 23:59:59.999999+00', '2000-01-01 00:00:00+00', 'o''brien'),
    ('\x00ff', -5, E'tab\there\nnew line \u0001 ctl', E'\u00e9', 'grant',
     '{"b": [1, 2.50, 1e3, -0, 12345678901234567890123], "a": {"nested": null, "t": true}, "": "", "k\"": "v\\"}',
     '2300-06-30 12:00:00+00', '1900-02-28 01:02:03.000004+00', ''),
    (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    ('\x', 0, '', '', '', '[]', now(), now(), 'x'),
    (sha256('y'), 7, 's', 'p', 'grant', '"scalar"', NULL, '2026-12-02 01:02:03+01', 'u'),
    (NULL, 8, repeat('ü', 3000), 'p', 'grant', jsonb_build_object('long', repeat('x', 5000), 'u', E'\u2028'), NULL,
     '2026-12-02 01:02:03+00', 'u');
SELECT count(*) AS cases,
       count(*) FILTER (WHERE customer_vault._ledger_hash(prev, id, subject, purpose, action, evidence, valid_until,
                                                          recorded_at, recorded_by)
                              IS DISTINCT FROM imp.sql_ledger_hash(prev, id, subject, purpose, action, evidence,
                                                                   valid_until, recorded_at, recorded_by)) AS differ
  FROM imp.hash_cases;
-- one value known in advance (a change of the canonical form fails here)
SELECT encode(customer_vault._ledger_hash(NULL, 1, 's1', 'imp_news', 'grant', '{"form": "a"}', NULL,
                                          '2026-01-01 00:00:00.123456+00', 'postgres'), 'hex') =
       encode(sha256(convert_to('[1, "s1", "imp_news", "grant", {"form": "a"}, null, 1767225600123456, "postgres"]',
                                'UTF8')), 'hex') AS known_answer;
SELECT (SELECT lanname FROM pg_language l WHERE l.oid = prolang) AS lang, provolatile, proisstrict
  FROM pg_proc WHERE oid = 'customer_vault._ledger_hash'::regproc;

-- ---------- grant_consent in C: the ledger stays verifiable ----------
SELECT customer_vault.grant_consent('g1', 'imp_news', '{"form": "signup", "ü": "\"x\""}') > 0 AS granted;
SELECT customer_vault.grant_consent('g2', 'imp_life', '{"form": "signup"}') > 0 AS granted;
SELECT valid_until = granted_at + interval '30 days' AS capped_by_lifetime FROM customer_vault.consent_state
 WHERE subject = 'g2' AND purpose = 'imp_life';
BEGIN;
SELECT count(customer_vault.grant_consent('gb' || g, 'imp_news', jsonb_build_object('n', g))) FROM generate_series(1, 300) g;
SAVEPOINT a;
SELECT customer_vault.grant_consent('gone', 'imp_news', '{"form": "rolled back"}') > 0 AS appended;
ROLLBACK TO SAVEPOINT a;
SELECT customer_vault.withdraw_consent('gb1', 'imp_news') > 0 AS withdrawn;
SELECT customer_vault.grant_consent('gb1', 'imp_news', '{"form": "again"}') > 0 AS regranted;
COMMIT;
SELECT customer_vault.verify_ledger() AS broken_after_grants;
SELECT count(*) AS rolled_back_entries FROM customer_vault.consent_ledger_redacted WHERE subject = 'gone';
-- the same checks as before, in C
SELECT customer_vault.grant_consent(NULL, 'imp_news', '{"a": 1}');
SELECT customer_vault.grant_consent('x', '', '{"a": 1}');
SELECT customer_vault.grant_consent('x', 'imp_nope', '{"a": 1}');
SELECT customer_vault.grant_consent('x', 'imp_contract', '{"a": 1}');
SELECT customer_vault.grant_consent('x', 'imp_news', NULL);
SELECT customer_vault.grant_consent('x', 'imp_news', '[1]');
SELECT customer_vault.grant_consent('x', 'imp_news', '{}');
SELECT customer_vault.grant_consent('x', 'imp_news', '{"a": 1}', 'infinity');
SELECT customer_vault.grant_consent('x', 'imp_news', '{"a": 1}', now() - interval '1 second');

-- ---------- import: rows in one pass, chained, state updated ----------
SELECT count(*) AS entries_before FROM customer_vault.consent_ledger \gset
-- 25,000 rows: three batches
SELECT customer_vault.import_consents($$
    SELECT 'crm-' || g AS subject, 'imp_news' AS purpose,
           jsonb_build_object('source', 'crm', 'record', g) AS evidence,
           timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' AS granted_at,
           CASE WHEN g % 10 = 0 THEN timestamptz '2099-01-01 00:00:00+00' END AS valid_until
      FROM generate_series(1, 25000) g ORDER BY g$$) AS imported;
SELECT customer_vault.verify_ledger() AS broken_after_import;
SELECT count(*) - :entries_before AS new_entries,
       max(id) - min(id) + 1 = count(*) AS contiguous
  FROM customer_vault.consent_ledger_redacted;
-- in the query's order, recorded by the session user, with the evidence as given
SELECT :entries_before + 1 AS first \gset
SELECT count(*) AS entries,
       bool_and(l.subject = 'crm-' || (l.id - :first + 1)) AS in_order,
       bool_and(l.recorded_by = session_user) AS by_session_user,
       bool_and(l.evidence = jsonb_build_object('source', 'crm', 'record', l.id - :first + 1)) AS evidence_kept,
       bool_and(l.action = 'grant') AS grants
  FROM customer_vault.consent_ledger_redacted l WHERE l.id >= :first;
SELECT count(*) AS state_rows,
       count(*) FILTER (WHERE s.granted_at = timestamptz '2026-01-01 00:00:00+00'
                                               + substr(s.subject, 5)::int * interval '1 second') AS granted_at_kept,
       count(*) FILTER (WHERE s.valid_until = '2099-01-01 00:00:00+00') AS with_end_date,
       count(*) FILTER (WHERE l.subject = s.subject AND l.purpose = s.purpose) AS state_points_at_entry
  FROM customer_vault.consent_state s JOIN customer_vault.consent_ledger_redacted l ON l.id = s.ledger_id
 WHERE s.subject LIKE 'crm-%';
SELECT customer_vault.has_consent('crm-1', 'imp_news') AS has_1, customer_vault.has_consent('crm-25000', 'imp_news') AS has_last,
       customer_vault.has_consent('crm-25001', 'imp_news') AS has_other;

-- ---------- the same rows again: detected, nothing recorded ----------
SELECT count(*) AS entries_before FROM customer_vault.consent_ledger \gset
SELECT customer_vault.import_consents($$
    SELECT 'crm-' || g AS subject, 'imp_news' AS purpose,
           jsonb_build_object('record', g, 'source', 'crm') AS evidence
      FROM generate_series(1, 25000) g$$) AS imported_again;
SELECT count(*) - :entries_before AS new_entries FROM customer_vault.consent_ledger;
-- partly new: only the new rows are recorded
SELECT customer_vault.import_consents($$
    SELECT 'crm-' || g AS subject, 'imp_news' AS purpose,
           jsonb_build_object('source', 'crm', 'record', g) AS evidence
      FROM generate_series(24991, 25010) g$$) AS imported_new;
-- twice in one query: once
SELECT customer_vault.import_consents($$
    SELECT * FROM (VALUES ('twice', 'imp_news', '{"f": 1}'::jsonb), ('twice', 'imp_news', '{"f": 1}'::jsonb),
                          ('twice', 'imp_news', '{"f": 2}'::jsonb)) v(subject, purpose, evidence)$$) AS imported_twice;
-- what grant_consent recorded counts too
SELECT customer_vault.import_consents($$SELECT 'g1' AS subject, 'imp_news' AS purpose,
                                               '{"ü": "\"x\"", "form": "signup"}'::jsonb AS evidence$$) AS imported_granted;
-- unless asked
SELECT customer_vault.import_consents($$SELECT 'crm-' || g AS subject, 'imp_news' AS purpose,
           jsonb_build_object('source', 'crm', 'record', g) AS evidence FROM generate_series(1, 3) g$$,
                                      allow_duplicates => true) AS imported_dups;
SELECT customer_vault.verify_ledger() AS broken_after_reimports;

-- ---------- an old import never undoes a later withdrawal ----------
SELECT customer_vault.withdraw_consent('crm-7', 'imp_news', '{"channel": "unsubscribe"}') > 0 AS withdrawn;
SELECT customer_vault.import_consents($$SELECT 'crm-7' AS subject, 'imp_news' AS purpose,
           '{"source": "crm", "record": 7}'::jsonb AS evidence$$) AS reimported;
SELECT customer_vault.import_consents($$SELECT 'crm-7' AS subject, 'imp_news' AS purpose,
           '{"source": "crm", "record": 7}'::jsonb AS evidence, timestamptz '2026-01-01' AS granted_at$$, true) AS forced;
SELECT customer_vault.has_consent('crm-7', 'imp_news') AS crm7_after_reimport,
       (SELECT status FROM customer_vault.current_consents WHERE subject = 'crm-7' AND purpose = 'imp_news') AS status;
-- a newer opt-in (granted after the withdrawal) does apply
SELECT customer_vault.import_consents($$SELECT 'crm-7' AS subject, 'imp_news' AS purpose,
           '{"source": "crm", "record": 7, "renewed": true}'::jsonb AS evidence$$) AS renewed;
SELECT customer_vault.has_consent('crm-7', 'imp_news') AS crm7_after_renewal;
-- the purpose's consent lifetime counts from granted_at
SELECT customer_vault.import_consents($$
    SELECT * FROM (VALUES ('life-old', 'imp_life', '{"f": 1}'::jsonb, now() - interval '40 days', NULL::timestamptz),
           ('life-new', 'imp_life', '{"f": 1}'::jsonb, now() - interval '1 day', now() + interval '1 year'))
           v(subject, purpose, evidence, granted_at, valid_until)$$) AS imported_life;
SELECT subject, status, valid_until = granted_at + interval '30 days' AS capped
  FROM customer_vault.current_consents WHERE purpose = 'imp_life' AND subject LIKE 'life-%' ORDER BY 1;

-- ---------- bad rows: nothing recorded, the first bad row named ----------
SELECT count(*) AS entries_before FROM customer_vault.consent_ledger \gset
CREATE FUNCTION imp.rows(bad int, subject text DEFAULT 'b', purpose text DEFAULT 'imp_news',
                         evidence jsonb DEFAULT '{"f": 1}', granted_at timestamptz DEFAULT now() - interval '1 day',
                         valid_until timestamptz DEFAULT NULL)
    RETURNS TABLE (subject text, purpose text, evidence jsonb, granted_at timestamptz, valid_until timestamptz)
    LANGUAGE sql AS $$
    SELECT CASE WHEN g = bad THEN rows.subject ELSE 'bad-' || g END,
           CASE WHEN g = bad THEN rows.purpose ELSE 'imp_news' END,
           CASE WHEN g = bad THEN rows.evidence ELSE jsonb_build_object('g', g) END,
           CASE WHEN g = bad THEN rows.granted_at ELSE now() - interval '1 day' END,
           CASE WHEN g = bad THEN rows.valid_until END
      FROM generate_series(1, 12000) g ORDER BY g $$;
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(3, subject => NULL)');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(4, subject => '''')');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(5, purpose => NULL)');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(6, purpose => ''imp_nope'')');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(7, purpose => ''imp_contract'')');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(8, purpose => repeat(''p'', 100))');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(9, evidence => NULL)');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(10, evidence => ''{}'')');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(11, evidence => ''[{"f": 1}]'')');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(12, evidence => ''"text"'')');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(13, granted_at => now() + interval ''1 minute'')');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(14, granted_at => ''infinity'')');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(15, granted_at => ''-infinity'')');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(16, valid_until => now() - interval ''2 days'')');
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(17, valid_until => ''infinity'')');
SELECT customer_vault.import_consents(
    'SELECT * FROM imp.rows(18, granted_at => ''2026-01-01'', valid_until => ''2026-01-01'')');
-- in the second batch: the first batch, already written, goes too
SELECT customer_vault.import_consents('SELECT * FROM imp.rows(11999, evidence => NULL)');
-- an error raised by the query itself, after rows were written
SELECT customer_vault.import_consents($$SELECT 'e' || g AS subject, 'imp_news' AS purpose,
           jsonb_build_object('g', 1 / (12000 - g)) AS evidence FROM generate_series(1, 12000) g$$);
SELECT count(*) - :entries_before AS new_entries, customer_vault.verify_ledger() AS broken
  FROM customer_vault.consent_ledger_redacted;
SELECT count(*) AS state_rows FROM customer_vault.consent_state WHERE subject LIKE 'bad-%' OR subject LIKE 'e%';

-- ---------- the query's shape ----------
SELECT customer_vault.import_consents(NULL);
SELECT customer_vault.import_consents('SELECT 1', NULL);
SELECT customer_vault.import_consents('SELECT ''s'' AS subject, ''imp_news'' AS purpose');
SELECT customer_vault.import_consents($$VALUES ('s', 'imp_news', '{"a": 1}'::jsonb)$$);
SELECT customer_vault.import_consents($$SELECT 's' AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence, 1 AS extra$$);
SELECT customer_vault.import_consents($$SELECT 's' AS subject, 's' AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence$$);
SELECT customer_vault.import_consents($$SELECT 1 AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence$$);
SELECT customer_vault.import_consents($$SELECT 's' AS subject, 'imp_news' AS purpose, '{"a": 1}'::json AS evidence$$);
SELECT customer_vault.import_consents($$SELECT 's' AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence,
                                               now()::timestamp AS granted_at$$);
SELECT customer_vault.import_consents($$SELECT 's' AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence,
                                               NULL AS valid_until$$);
SELECT customer_vault.import_consents('CREATE TABLE imp.t ()');
SELECT count(*) AS before FROM imp.hash_cases \gset
SELECT customer_vault.import_consents($$INSERT INTO imp.hash_cases (id) VALUES (1) RETURNING 's' AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence$$);
SELECT count(*) - :before AS inserted FROM imp.hash_cases;
SELECT customer_vault.import_consents($$SELECT 's' AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence; SELECT 1$$);
SELECT customer_vault.import_consents('SELEC nonsense');
SELECT customer_vault.import_consents($$SELECT 's' AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence WHERE false$$) AS empty;
-- varchar subjects are fine
SELECT customer_vault.import_consents($$SELECT 'vc'::varchar(10) AS subject, 'imp_news'::varchar AS purpose,
                                               '{"a": 1}'::jsonb AS evidence$$) AS varchar_ok;

-- ---------- rights: who may import, and the query runs as the caller ----------
SELECT p.prosecdef, p.proconfig FROM pg_proc p WHERE p.oid = 'customer_vault.import_consents'::regproc;
CREATE FUNCTION imp.who() RETURNS text LANGUAGE sql AS $$ SELECT current_user::text $$;
CREATE FUNCTION imp.escalate() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    SET ROLE postgres;
    RETURN current_user;
END $$;
CREATE FUNCTION imp.write_ledger() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customer_vault.consent_state;
    RETURN 'deleted';
END $$;
CREATE TABLE imp.crm (subject text, evidence jsonb);
INSERT INTO imp.crm VALUES ('w1', '{"src": "crm"}'), ('w2', '{"src": "crm"}');
GRANT SELECT ON imp.crm TO regress_imp_writer;
SET SESSION AUTHORIZATION regress_imp_writer;
-- the writer records consent (as grant_consent lets it) ...
SELECT customer_vault.import_consents($$SELECT subject, 'imp_news' AS purpose, evidence FROM imp.crm$$) AS writer_imported;
-- ... reading only what it may read, as itself
SELECT customer_vault.import_consents($$SELECT imp.who() AS subject, 'imp_news' AS purpose, '{"who": 1}'::jsonb AS evidence$$) AS as_caller;
SELECT customer_vault.import_consents($$SELECT encode(wrapped, 'hex') AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence
                                          FROM customer_vault.data_keys$$);
SELECT customer_vault.import_consents($$SELECT subject, purpose, evidence FROM customer_vault.consent_ledger$$);
SELECT customer_vault.import_consents($$SELECT imp.escalate() AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence$$);
SELECT customer_vault.import_consents($$SELECT imp.write_ledger() AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence$$);
SELECT current_user, session_user;
RESET SESSION AUTHORIZATION;
SELECT subject, recorded_by FROM customer_vault.consent_ledger_redacted
 WHERE subject IN ('w1', 'w2', 'regress_imp_writer', 'postgres') ORDER BY id;
SET SESSION AUTHORIZATION regress_imp_admin;
SELECT customer_vault.import_consents($$SELECT 'adm' AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence$$) AS admin_imported;
SET SESSION AUTHORIZATION regress_imp_reader;
SELECT customer_vault.import_consents($$SELECT 'rd' AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence$$);
SET SESSION AUTHORIZATION regress_imp_nobody;
SELECT customer_vault.import_consents($$SELECT 'nb' AS subject, 'imp_news' AS purpose, '{"a": 1}'::jsonb AS evidence$$);
SELECT customer_vault.grant_consent('nb', 'imp_news', '{"a": 1}');
RESET SESSION AUTHORIZATION;

-- ---------- appends from inside the import's query keep the chain ----------
SELECT customer_vault.import_consents($$
    SELECT 'nest-' || g AS subject, 'imp_news' AS purpose,
           jsonb_build_object('g', g, 'inner', customer_vault.grant_consent('inner-' || g, 'imp_news', '{"x": 1}')) AS evidence
      FROM generate_series(1, 10500) g$$) AS nested;
SELECT customer_vault.verify_ledger() AS broken_after_nested;
SELECT count(*) FILTER (WHERE subject LIKE 'nest-%') AS outer_entries,
       count(*) FILTER (WHERE subject LIKE 'inner-%') AS inner_entries
  FROM customer_vault.consent_ledger_redacted;

-- ---------- review 2: a backdated row after a withdrawal is skipped, not appended as a grant ----------
SELECT customer_vault.grant_consent('bd-1', 'imp_news', '{"a": 1}') > 0 AS granted;
SELECT customer_vault.withdraw_consent('bd-1', 'imp_news') > 0 AS withdrawn;
SELECT customer_vault.import_consents($$SELECT 'bd-1' AS subject, 'imp_news' AS purpose, '{"b": 1}'::jsonb AS evidence,
                                               timestamptz '2000-01-01 00:00:00+00' AS granted_at$$) AS backdated_written;
SELECT string_agg(action, ',' ORDER BY id) AS ledger_bd1 FROM customer_vault.consent_ledger_redacted WHERE subject = 'bd-1';
SELECT granted FROM customer_vault.consent_state WHERE subject = 'bd-1';
-- a row granted now (not older than the withdrawal) is written; within one import,
-- a row older than an earlier row for the same subject and purpose is skipped too
SELECT customer_vault.import_consents($$SELECT * FROM (VALUES
           ('bd-1', 'imp_news', '{"c": 1}'::jsonb, now()),
           ('bd-2', 'imp_news', '{"c": 1}'::jsonb, timestamptz '2020-01-01 00:00:00+00'),
           ('bd-2', 'imp_news', '{"c": 2}'::jsonb, timestamptz '2019-01-01 00:00:00+00'),
           ('bd-2', 'imp_news', '{"c": 3}'::jsonb, timestamptz '2021-01-01 00:00:00+00')) v(subject, purpose, evidence, granted_at)$$
       ) AS mixed_written;
SELECT subject, string_agg(action || coalesce(evidence->>'c', ''), ',' ORDER BY id) AS ledger
  FROM customer_vault.consent_ledger_redacted WHERE subject IN ('bd-1', 'bd-2') GROUP BY subject ORDER BY subject;
SELECT subject, granted, granted_at = '2021-01-01 00:00:00+00' AS granted_2021
  FROM customer_vault.consent_state WHERE subject IN ('bd-1', 'bd-2') ORDER BY subject;
SELECT customer_vault.verify_ledger() AS broken_after_backdated;

-- ---------- review 2: a data-modifying WITH clause is refused before it runs ----------
CREATE TABLE imp.side (x int);
SELECT customer_vault.import_consents($$WITH w AS (INSERT INTO imp.side VALUES (1) RETURNING x)
    SELECT 'cte-1' AS subject, 'imp_news' AS purpose, jsonb_build_object('x', x) AS evidence FROM w$$);
SELECT customer_vault.import_consents($$WITH w AS (DELETE FROM imp.side RETURNING x), v AS (SELECT 1 AS x)
    SELECT 'cte-2' AS subject, 'imp_news' AS purpose, jsonb_build_object('x', x) AS evidence FROM v$$);
SELECT count(*) AS side_rows FROM imp.side;
SELECT count(*) AS cte_entries FROM customer_vault.consent_ledger_redacted WHERE subject LIKE 'cte-%';
-- a read-only WITH clause is fine
SELECT customer_vault.import_consents($$WITH v AS (SELECT 1 AS x)
    SELECT 'cte-3' AS subject, 'imp_news' AS purpose, jsonb_build_object('x', x) AS evidence FROM v$$) AS cte_select;

-- ---------- review 2: duplicates are jsonb-equal evidence, within a batch and across imports ----------
SELECT customer_vault.import_consents($$SELECT * FROM (VALUES ('jd-1', 'imp_news', '{"a": 1}'::jsonb),
                                                             ('jd-1', 'imp_news', '{"a": 1.0}'::jsonb)) v(subject, purpose, evidence)$$)
       AS same_batch_written;
SELECT customer_vault.import_consents($$SELECT 'jd-1' AS subject, 'imp_news' AS purpose, '{"a": 1.00}'::jsonb AS evidence$$)
       AS later_written;
SELECT count(*) AS jd1_entries FROM customer_vault.consent_ledger_redacted WHERE subject = 'jd-1';

-- ---------- review 2: no subject is too long for the ledger's index ----------
-- Since 0.5.0 (part SCALE, test consent_scale) a subject of consent is at most
-- 255 bytes, the bound of subject keys and forget_subject: 10 kB, compressible
-- or not, is refused by that check (54000) before any index sees it (a btree
-- refused it with "index row requires ... bytes", consent_state's primary key
-- still would); nothing reaches the ledger
SELECT string_agg(md5(g::text), '') AS big FROM generate_series(1, 320) g \gset
SELECT length(:'big') AS subject_length;
SELECT customer_vault.withdraw_consent(:'big', 'imp_news') > 0 AS big_withdrawn;
SELECT count(*) AS big_ledger FROM customer_vault.consent_ledger_redacted WHERE subject = :'big';
SELECT customer_vault.grant_consent(:'big', 'imp_news', '{"big": 1}') > 0 AS big_granted;
SELECT repeat('s', 10240) AS huge \gset
SELECT customer_vault.grant_consent(:'huge', 'imp_news', '{"long": 1}') > 0 AS huge_granted;
SELECT customer_vault.import_consents($$SELECT repeat('s', 10240) AS subject, 'imp_news' AS purpose, '{"long": 1}'::jsonb AS evidence$$)
       AS huge_imported;
-- at the bound: grant, then the import's duplicate check finds it
SELECT repeat('s', 255) AS long \gset
SELECT customer_vault.grant_consent(:'long', 'imp_news', '{"long": 1}') > 0 AS long_granted;
SELECT customer_vault.import_consents($$SELECT repeat('s', 255) AS subject, 'imp_news' AS purpose, '{"long": 1.0}'::jsonb AS evidence$$)
       AS long_duplicate;
SELECT customer_vault.import_consents($$SELECT repeat('s', 255) AS subject, 'imp_news' AS purpose, '{"long": 2}'::jsonb AS evidence$$)
       AS long_imported;
SELECT string_agg(action || (evidence->>'long'), ',' ORDER BY id) AS long_ledger FROM customer_vault.consent_ledger_redacted WHERE subject = :'long';
SELECT indexdef LIKE '%USING hash (subject)%' AS hash_index FROM pg_indexes
 WHERE schemaname = 'customer_vault' AND indexname = 'consent_ledger_subject_idx';
SELECT customer_vault.verify_ledger() AS broken_after_review2;

-- ---------- the state takes each subject and purpose's newest row, in a batch and across batches ----------
-- (new subjects are inserted plainly, known ones replace their row; 0.5.0's
-- state write sorted every batch and inserted with ON CONFLICT)
-- sp-1 in the first batch and again in the second (a later grant); sp-2 three
-- times in the first batch at one time (the last row counts); sp-3 known
-- before the import (an older grant, replaced), sp-4 known with a newer one (kept)
SELECT customer_vault.grant_consent('sp-3', 'imp_news', '{"pre": 3}') > 0 AS sp3_granted;
UPDATE customer_vault.consent_state SET granted_at = '2020-01-01 00:00:00+00' WHERE subject = 'sp-3';
SELECT customer_vault.grant_consent('sp-4', 'imp_news', '{"pre": 4}') > 0 AS sp4_granted;
SELECT count(*) AS entries_before FROM customer_vault.consent_ledger \gset
SELECT customer_vault.import_consents($$
    SELECT CASE g WHEN 1 THEN 'sp-1' WHEN 10001 THEN 'sp-1' WHEN 2 THEN 'sp-2' WHEN 3 THEN 'sp-2' WHEN 4 THEN 'sp-2'
                  WHEN 5 THEN 'sp-3' WHEN 6 THEN 'sp-4' ELSE 'spx-' || g END AS subject,
           'imp_news' AS purpose, jsonb_build_object('g', g) AS evidence,
           CASE WHEN g = 10001 THEN timestamptz '2025-06-01 00:00:00+00'
                WHEN g = 6 THEN timestamptz '2021-01-01 00:00:00+00'
                ELSE timestamptz '2025-01-01 00:00:00+00' END AS granted_at,
           CASE WHEN g IN (4, 5) THEN timestamptz '2099-01-01 00:00:00+00' END AS valid_until
      FROM generate_series(1, 10002) g ORDER BY g$$) AS state_rows_written;
SELECT s.subject, s.granted,
       CASE WHEN s.granted_at > now() - interval '1 hour' THEN 'recent' ELSE s.granted_at::text END AS granted_at,
       s.valid_until, l.evidence::text AS entry_evidence, l.action
  FROM customer_vault.consent_state s JOIN customer_vault.consent_ledger_redacted l ON l.id = s.ledger_id
 WHERE s.subject IN ('sp-1', 'sp-2', 'sp-3', 'sp-4') ORDER BY s.subject;
SELECT count(*) AS spx_state, count(*) FILTER (WHERE l.evidence->>'g' = substr(s.subject, 5)) AS spx_own_entry
  FROM customer_vault.consent_state s JOIN customer_vault.consent_ledger l ON l.id = s.ledger_id
 WHERE s.subject LIKE 'spx-%';
SELECT count(*) - :entries_before AS sp_entries FROM customer_vault.consent_ledger;
SELECT customer_vault.verify_ledger() AS broken_after_state_rows;

-- ---------- REV29: each state row is its subject and purpose's last ledger entry ----------
-- sq-1 has a state row without a grant or withdrawal time (both NULL, as a
-- restore or a row written by hand leaves it): a row the state has, replaced
-- (not inserted again, which would fail on the primary key); sq-2 known,
-- older, and three times in one batch (twice at one time, then later): one
-- row reaches the state, the newest; sq-3 withdrawn before the rows (granted
-- again), sq-4 withdrawn after them (skipped, stays withdrawn); sq-5 new, its
-- second row older than its first (skipped)
SELECT customer_vault.grant_consent('sq-1', 'imp_news', '{"pre": 1}') > 0 AS sq1_granted;
UPDATE customer_vault.consent_state SET granted_at = NULL, withdrawn_at = NULL
 WHERE subject = 'sq-1' AND purpose = 'imp_news';
SELECT customer_vault.grant_consent('sq-2', 'imp_news', '{"pre": 2}') > 0 AS sq2_granted;
UPDATE customer_vault.consent_state SET granted_at = '2020-01-01 00:00:00+00'
 WHERE subject = 'sq-2' AND purpose = 'imp_news';
SELECT customer_vault.grant_consent('sq-3', 'imp_news', '{"pre": 3}') > 0 AS sq3_granted;
SELECT customer_vault.withdraw_consent('sq-3', 'imp_news') > 0 AS sq3_withdrawn;
UPDATE customer_vault.consent_state SET granted_at = '2019-01-01 00:00:00+00', withdrawn_at = '2020-01-01 00:00:00+00'
 WHERE subject = 'sq-3' AND purpose = 'imp_news';
SELECT customer_vault.grant_consent('sq-4', 'imp_news', '{"pre": 4}') > 0 AS sq4_granted;
SELECT customer_vault.withdraw_consent('sq-4', 'imp_news') > 0 AS sq4_withdrawn;
SELECT customer_vault.import_consents($$
    SELECT v.subject, 'imp_news' AS purpose, v.evidence::jsonb AS evidence, v.granted_at::timestamptz AS granted_at
      FROM (VALUES ('sq-1', '{"i": 1}', '2025-01-01 00:00:00+00'),
                   ('sq-2', '{"i": 2}', '2025-01-01 00:00:00+00'),
                   ('sq-2', '{"i": 3}', '2025-01-01 00:00:00+00'),
                   ('sq-2', '{"i": 4}', '2025-02-01 00:00:00+00'),
                   ('sq-3', '{"i": 5}', '2025-01-01 00:00:00+00'),
                   ('sq-4', '{"i": 6}', '2025-01-01 00:00:00+00'),
                   ('sq-5', '{"i": 7}', '2025-01-01 00:00:00+00'),
                   ('sq-5', '{"i": 8}', '2024-01-01 00:00:00+00')) v(subject, evidence, granted_at)$$)
       AS sq_written;
SELECT s.subject, s.granted, l.action, l.evidence::text AS entry_evidence,
       s.ledger_id = (SELECT max(m.id) FROM customer_vault.consent_ledger m
                       WHERE m.purpose = s.purpose AND m.action IN ('grant', 'withdraw')
                         AND (m.subject_hash = s.subject_hash OR m.subject = s.subject)) AS is_last_entry
  FROM customer_vault.consent_state s JOIN customer_vault.consent_ledger l ON l.id = s.ledger_id
 WHERE s.subject LIKE 'sq-%' AND s.purpose = 'imp_news' ORDER BY s.subject;
SELECT customer_vault.verify_ledger() AS broken_after_sq;

-- clean up (the ledger is append-only: its entries stay)
DELETE FROM customer_vault.consent_state WHERE purpose LIKE 'imp\_%';
DROP SCHEMA imp CASCADE;
DROP OWNED BY regress_imp_writer, regress_imp_admin, regress_imp_reader, regress_imp_nobody;
DROP ROLE regress_imp_writer, regress_imp_admin, regress_imp_reader, regress_imp_nobody;
