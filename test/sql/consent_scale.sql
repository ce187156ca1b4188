-- Consent at scale (issue 15, part SCALE):
--  1. the subject bound: consent is recorded for subject identifiers of at
--     most 255 bytes (octets, not characters), the bound of subject keys and
--     of forget_subject; longer ones are refused with
--     54000 and a message of ours (before 0.5.0, subjects over ~2.7 kB failed
--     on consent_state's primary key with an index error, shorter ones were
--     stored); consent checks answer false for them without an error; a
--     longer subject recorded before 0.5.0 can still be withdrawn;
--  2. the shared cache's end dates of interned subjects (<prefix><n> and
--     integers, found by the rank of their bit): every answer equals
--     consent_state's, past and future end dates side by side, across
--     64-bit word boundaries;
--  3. the per-call-site purpose memo: a purpose from a column (not a
--     constant) is looked up for every row, a constant one once.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE regress_scale_marketer;
RESET client_min_messages;
SELECT customer_vault.define_purpose('scale_news');
SELECT customer_vault.define_purpose('scale_offers');
SELECT customer_vault.define_purpose('scale_contract', 'contract');
SELECT customer_vault.allow_purpose('regress_scale_marketer', 'scale_news');
SELECT customer_vault.allow_purpose('regress_scale_marketer', 'scale_offers');
SELECT customer_vault.allow_purpose('regress_scale_marketer', 'scale_contract');
CREATE FUNCTION scale_try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- ---------- 1. the subject bound ----------
-- exactly 255 bytes: recorded (ASCII, and with a two-byte character at the end)
SELECT customer_vault.grant_consent(repeat('a', 255), 'scale_news', '{"form": "bound"}') > 0 AS granted_255;
SELECT customer_vault.grant_consent(repeat('b', 253) || 'é', 'scale_news', '{"form": "bound"}') > 0 AS granted_255_bytes_utf8;
-- 256 bytes (also 254 characters of which one takes three bytes), and 3000 bytes: refused by us
SELECT scale_try($$SELECT customer_vault.grant_consent(repeat('a', 256), 'scale_news', '{"form": "bound"}')$$) AS grant_256;
SELECT scale_try($$SELECT customer_vault.grant_consent(repeat('c', 253) || '€', 'scale_news', '{"form": "bound"}')$$) AS grant_256_bytes_utf8;
SELECT scale_try($$SELECT customer_vault.grant_consent(repeat('a', 3000), 'scale_news', '{"form": "bound"}')$$) AS grant_3000;
-- the bound comes before the purpose check (no other message first)
SELECT scale_try($$SELECT customer_vault.grant_consent(repeat('a', 256), 'no_such_purpose', '{"form": "bound"}')$$) AS grant_256_unknown_purpose;
-- import: a row over the bound stops the import with its row number; nothing is recorded
SELECT scale_try($$SELECT customer_vault.import_consents($q$
    SELECT s AS subject, 'scale_offers' AS purpose, '{"source": "crm"}'::jsonb AS evidence
      FROM (VALUES ('imp-ok-1'), (repeat('d', 256)), ('imp-ok-2')) v(s)$q$)$$) AS import_256;
SELECT count(*) AS imported_after_refusal FROM customer_vault.consent_state WHERE purpose = 'scale_offers';
SELECT customer_vault.import_consents($q$
    SELECT s AS subject, 'scale_offers' AS purpose, '{"source": "crm"}'::jsonb AS evidence
      FROM (VALUES ('imp-ok-1'), (repeat('d', 255)), ('imp-ok-2')) v(s)$q$) AS imported_255;
-- withdraw: refused over the bound when nothing is recorded, accepted at it
SELECT scale_try($$SELECT customer_vault.withdraw_consent(repeat('a', 256), 'scale_news')$$) AS withdraw_256;
SELECT scale_try($$SELECT customer_vault.withdraw_consent(repeat('e', 255), 'scale_news')$$) AS withdraw_255_unrecorded;
-- a 1500-byte subject recorded before 0.5.0 (written directly, as an old version could): it can be withdrawn
INSERT INTO customer_vault.consent_state (subject, purpose, granted, granted_at, ledger_id)
VALUES (repeat('L', 1500), 'scale_news', true, now(), 0);
SELECT customer_vault.has_consent(repeat('L', 1500), 'scale_news') AS legacy_long_granted;
SELECT customer_vault.withdraw_consent(repeat('L', 1500), 'scale_news') > 0 AS legacy_long_withdrawn;
SELECT customer_vault.has_consent(repeat('L', 1500), 'scale_news') AS legacy_long_after_withdrawal;
SELECT customer_vault.verify_ledger() AS ledger_broken_at;

-- consent checks: true at the bound, false (never an error) over it
SET ROLE regress_scale_marketer;
SELECT customer_vault.may_process(repeat('a', 255), 'scale_news') AS may_255,
       customer_vault.may_process(repeat('b', 253) || 'é', 'scale_news') AS may_255_utf8,
       customer_vault.may_process(repeat('a', 256), 'scale_news') AS may_256,
       customer_vault.may_process(repeat('a', 100000), 'scale_news') AS may_100000,
       customer_vault.may_process(repeat('d', 255), 'scale_offers') AS may_imported_255,
       customer_vault.may_process(repeat('a', 3000), 'scale_contract') AS may_3000_contract;
RESET ROLE;
SELECT customer_vault.has_consent(repeat('a', 255), 'scale_news') AS has_255,
       customer_vault.has_consent(repeat('a', 256), 'scale_news') AS has_256;

-- ---------- 2. end dates of interned subjects in the shared cache ----------
-- 'rk-<n>' (prefix family) and '<n>' (integers) for n in 1..700: 2 in 3 granted,
-- end dates past, future or none in a pattern that crosses word boundaries
INSERT INTO customer_vault.consent_state (subject, purpose, granted, valid_until, granted_at, ledger_id)
SELECT s, 'scale_offers', n % 3 <> 0,
       CASE WHEN n % 5 = 0 THEN now() - interval '1 hour' * (n % 7 + 1)
            WHEN n % 4 = 0 THEN now() + interval '1 day' * (n % 9 + 1) END,
       now() - interval '1 day', 0
  FROM generate_series(1, 700) n, LATERAL (VALUES ('rk-' || n), (n::text)) v(s);
SELECT count(*) AS subjects_checked,
       count(*) FILTER (WHERE customer_vault.has_consent(s, 'scale_offers') IS DISTINCT FROM truth) AS wrong_answers,
       count(*) FILTER (WHERE truth) AS live
  FROM (SELECT s, EXISTS (SELECT 1 FROM customer_vault.consent_state c
                            WHERE c.subject = s AND c.purpose = 'scale_offers' AND c.granted
                              AND (c.valid_until IS NULL OR c.valid_until > now())) AS truth
          FROM generate_series(0, 710) n, LATERAL (VALUES ('rk-' || n), (n::text), ('rk-0' || n)) v(s)) x;
-- (a new transaction, nothing in flight: a shared version answered)
SELECT customer_vault._consent_cache_source('scale_offers') ~ '^shared [0-9]+$' AS answered_by_shared_version;
SET ROLE regress_scale_marketer;
SELECT count(*) FILTER (WHERE customer_vault.may_process(n::bigint, 'scale_offers')) AS may_bigint,
       count(*) FILTER (WHERE customer_vault.may_process('rk-' || n, 'scale_offers')) AS may_prefixed
  FROM generate_series(0, 710) n;
RESET ROLE;
SELECT count(*) FILTER (WHERE granted AND (valid_until IS NULL OR valid_until > now()) AND subject ~ '^[0-9]+$') AS truth_bigint,
       count(*) FILTER (WHERE granted AND (valid_until IS NULL OR valid_until > now()) AND subject LIKE 'rk-%') AS truth_prefixed
  FROM customer_vault.consent_state WHERE purpose = 'scale_offers';

-- ---------- 3. the purpose from a column, from a constant ----------
SET ROLE regress_scale_marketer;
SELECT string_agg(customer_vault.may_process(s, p)::text, ',' ORDER BY o) AS per_row_purpose
  FROM (VALUES (1, 'rk-1', 'scale_offers'), (2, 'rk-1', 'scale_news'), (3, 'rk-1', 'scale_contract'),
               (4, 'rk-1', 'no_such'), (5, 'rk-1', 'scale_offers'), (6, 'rk-1', NULL), (7, 'rk-1', '')) v(o, s, p);
SET customer_vault.purpose = 'scale_offers';
SELECT string_agg(customer_vault.may_process(s, p)::text, ',' ORDER BY o) AS setting_for_null_purpose
  FROM (VALUES (1, 'rk-1', NULL), (2, 'rk-1', 'scale_news'), (3, 'rk-1', NULL)) v(o, s, p);
RESET customer_vault.purpose;
RESET ROLE;

DROP FUNCTION scale_try(text);
