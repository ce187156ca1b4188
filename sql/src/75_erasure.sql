--@ schema

---------------------------------------------------------------------------
-- Erasure (GDPR art. 17): forget_subject and its receipts
---------------------------------------------------------------------------

-- append-only, hash-chained: one receipt per forget_subject call; the subject
-- only as its keyed hash (_subject_hash), so "was X erased?" is answered
-- without keeping X
CREATE TABLE customer_vault.erasure_receipts (
    id           bigint PRIMARY KEY,
    at           timestamptz NOT NULL,
    role_id      oid NOT NULL,
    session_role name NOT NULL,
    acting_role  name NOT NULL,
    subject_hash bytea NOT NULL CHECK (pg_catalog.length(subject_hash) = 32),
    reason       text NOT NULL CHECK (pg_catalog.btrim(reason) <> ''),
    counts       jsonb NOT NULL,
    prev_hash    bytea,
    hash         bytea NOT NULL
);
CREATE INDEX erasure_receipts_subject_hash_idx ON customer_vault.erasure_receipts (subject_hash);
-- the last receipt's id and hash, updated under its row lock by forget_subject
-- only (nobody else has any privilege on it)
CREATE TABLE customer_vault.erasure_receipts_head (
    chain     text PRIMARY KEY CHECK (chain = 'erasure_receipts'),
    last_id   bigint NOT NULL,
    last_hash bytea
);
SELECT pg_catalog.pg_extension_config_dump('customer_vault.erasure_receipts', '');
SELECT pg_catalog.pg_extension_config_dump('customer_vault.erasure_receipts_head', '');
--@ code
COMMENT ON TABLE customer_vault.erasure_receipts IS
    'append-only, hash-chained receipts of forget_subject: who, when, why, what was deleted, anonymized or kept per table; the subject only as a keyed hash';
COMMENT ON TABLE customer_vault.erasure_receipts_head IS
    'internal: the last id and hash of the erasure receipt chain';

CREATE OR REPLACE FUNCTION customer_vault._receipts_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
        MESSAGE = pg_catalog.format('%s is append-only: %s is not allowed', TG_TABLE_NAME, TG_OP),
        HINT = 'Receipts are written by customer_vault.forget_subject() only.';
END
$$;
COMMENT ON FUNCTION customer_vault._receipts_append_only() IS
    'internal: refuses UPDATE, DELETE and TRUNCATE of erasure_receipts';
CREATE OR REPLACE TRIGGER erasure_receipts_no_update_delete BEFORE UPDATE OR DELETE ON customer_vault.erasure_receipts
    FOR EACH ROW EXECUTE FUNCTION customer_vault._receipts_append_only();
CREATE OR REPLACE TRIGGER erasure_receipts_no_truncate BEFORE TRUNCATE ON customer_vault.erasure_receipts
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._receipts_append_only();
ALTER TABLE customer_vault.erasure_receipts ENABLE ALWAYS TRIGGER erasure_receipts_no_update_delete;
ALTER TABLE customer_vault.erasure_receipts ENABLE ALWAYS TRIGGER erasure_receipts_no_truncate;

-- the chained hash of a receipt (over every column but hash): SHA-256 of the
-- previous hash and a canonical JSON array, times as integer microseconds
-- (no SET clause, every name qualified, STABLE like the jsonb_build_array and
-- EXTRACT it calls: inlined into forget_subject's statement)
CREATE OR REPLACE FUNCTION customer_vault._receipt_hash(e customer_vault.erasure_receipts) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.sha256(COALESCE(e.prev_hash, ''::bytea) OPERATOR(pg_catalog.||) pg_catalog.convert_to(
        pg_catalog.jsonb_build_array('erasure_receipts', e.id,
            (EXTRACT(epoch FROM e.at) OPERATOR(pg_catalog.*) 1000000)::bigint,
            e.role_id::bigint, e.session_role, e.acting_role, pg_catalog.encode(e.subject_hash, 'hex'),
            e.reason, e.counts)::text, 'UTF8'))
$$;
COMMENT ON FUNCTION customer_vault._receipt_hash(customer_vault.erasure_receipts) IS
    'internal: the chained hash of one erasure receipt';

-- Locks the head of the receipt chain (only the extension's owner can) and
-- returns the next id and the previous hash; held to the end of the
-- transaction, so receipts are appended one at a time.
CREATE OR REPLACE FUNCTION customer_vault._receipt_next(OUT next_id bigint, OUT prev_hash bytea)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT h.last_id + 1, h.last_hash INTO next_id, prev_hash
      FROM customer_vault.erasure_receipts_head h WHERE h.chain = 'erasure_receipts' FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO customer_vault.erasure_receipts_head AS h (chain, last_id, last_hash)
        VALUES ('erasure_receipts', 0, NULL) ON CONFLICT (chain) DO NOTHING;
        SELECT h.last_id + 1, h.last_hash INTO STRICT next_id, prev_hash
          FROM customer_vault.erasure_receipts_head h WHERE h.chain = 'erasure_receipts' FOR UPDATE;
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._receipt_next() IS
    'internal: locks the head of the erasure receipt chain; returns the next id and the previous hash';

-- a receipt as forget_subject returns it (no SET clause, every name
-- qualified, STABLE like jsonb_build_object: inlined)
CREATE OR REPLACE FUNCTION customer_vault._receipt_json(e customer_vault.erasure_receipts) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.jsonb_build_object('receipt_id', e.id, 'at', e.at, 'role', e.session_role,
                                         'acting_role', e.acting_role,
                                         'subject_hash', pg_catalog.encode(e.subject_hash, 'hex'),
                                         'reason', e.reason) OPERATOR(pg_catalog.||) e.counts
           OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('hash', pg_catalog.encode(e.hash, 'hex'))
$$;
COMMENT ON FUNCTION customer_vault._receipt_json(customer_vault.erasure_receipts) IS
    'internal: an erasure receipt as a JSON document';

-- The first broken receipt: a hash that does not match, a link to anything
-- but the previous receipt, a gap, or a chain whose last receipt is not the
-- head recorded by the last append (receipts removed or added behind the
-- function's back).  NULL when intact.
CREATE OR REPLACE FUNCTION customer_vault.verify_receipts() RETURNS bigint
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    broken bigint;
    last_id bigint;
    last_hash bytea;
    h customer_vault.erasure_receipts_head;
BEGIN
    SELECT e.id INTO broken
      FROM (SELECT r.id, r.hash, r.prev_hash, pg_catalog.lag(r.hash) OVER w AS expected_prev,
                   COALESCE(pg_catalog.lag(r.id) OVER w, 0) AS previous_id,
                   customer_vault._receipt_hash(r) AS recomputed
              FROM customer_vault.erasure_receipts r WINDOW w AS (ORDER BY r.id)) e
     WHERE e.hash IS DISTINCT FROM e.recomputed OR e.prev_hash IS DISTINCT FROM e.expected_prev
        OR e.id <> e.previous_id + 1
     ORDER BY e.id LIMIT 1;
    IF broken IS NOT NULL THEN
        RETURN broken;
    END IF;
    SELECT r.id, r.hash INTO last_id, last_hash FROM customer_vault.erasure_receipts r ORDER BY r.id DESC LIMIT 1;
    SELECT * INTO h FROM customer_vault.erasure_receipts_head eh WHERE eh.chain = 'erasure_receipts';
    IF h.chain IS NULL OR h.last_id = 0 THEN
        IF last_id IS NULL THEN
            RETURN NULL;                    -- nothing was ever appended
        END IF;
        RETURN 1;                           -- receipts without a head: none came through forget_subject
    END IF;
    IF last_id IS NULL OR last_id < h.last_id THEN
        RETURN COALESCE(last_id, 0) + 1;    -- receipts removed at the end
    ELSIF last_id > h.last_id THEN
        RETURN h.last_id + 1;               -- receipts added behind the function's back
    ELSIF last_hash IS DISTINCT FROM h.last_hash THEN
        RETURN last_id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION customer_vault.verify_receipts() IS
    'NULL when the hash chain of erasure_receipts is intact, else the id of the first broken (or missing) receipt';

-- Whether two subject texts name the same subject: equal as text, or equal
-- as values of the type of some registered subject column ('42' and '042'
-- in a bigint column).  Only the built-in subject types are compared.
CREATE OR REPLACE FUNCTION customer_vault._same_subject(a text, b text) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ record;
    same boolean;
BEGIN
    IF a IS NULL OR b IS NULL THEN
        RETURN false;
    END IF;
    IF a = b THEN
        RETURN true;
    END IF;
    FOR typ IN SELECT DISTINCT ty.oid::regtype AS t, pg_catalog.format('%I.%I', tn.nspname, ty.typname) AS name
                 FROM (SELECT s.relid::oid AS rel, s.subject_column AS col FROM customer_vault.subject_tables s
                       UNION SELECT rp.relid::oid, rp.subject_column FROM customer_vault.retention_policies rp
                        WHERE rp.subject_column IS NOT NULL) c
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.rel AND a.attname = c.col AND NOT a.attisdropped
                 JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
                 JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace LOOP
        CONTINUE WHEN NOT customer_vault._subject_type_ok(typ.t)
                 OR typ.t IN ('pg_catalog.text'::regtype, 'pg_catalog.varchar'::regtype);
        IF customer_vault._casts_to(a, typ.t) AND customer_vault._casts_to(b, typ.t) THEN
            EXECUTE pg_catalog.format('SELECT %L::%s OPERATOR(pg_catalog.=) %L::%s', a, typ.name, b, typ.name)
               INTO same;
            IF same THEN
                RETURN true;
            END IF;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
COMMENT ON FUNCTION customer_vault._same_subject(text, text) IS
    'internal: whether two subject texts are equal as text or as values of a registered subject column''s type';

-- The plan of an erasure as this session keeps it (src/forget.c builds it
-- from the catalog and the registry, never from anything a caller passes,
-- and keeps its statements prepared until a planned table, the registry,
-- the retention policies or a label changes): one row per table of the
-- subject reach (the same one _subject_reach() gives: registered tables by
-- their subject column, every other table at its shortest distance in
-- foreign keys, each key towards a table of lower depth), with the
-- statements forget_subject runs on it as its owner.  Statements read alias
-- t; depth 0: $1 is the subject (text, converted to the subject column's
-- type); depth n: $1.. are text[] of the keys its foreign keys reference in
-- the parents' rows of the subject, each column in its own type, compared
-- with the key's FK = FK operator (so the indexes of the key columns are
-- used).  For the tests (EXPLAIN of what runs) and the curious admin: it
-- shows statements, never data.
--   key_pos      position in the order keys are read (parents first)
--   change_pos   position in the order tables are changed: a table goes
--                once no other pending table references it (in a cycle of
--                foreign keys, the deepest first)
--   subject_type the subject column's type (depth 0)
--   keys_sql     the keys this table's rows give its children in the reach
--                (one text[] per key column, NULL when no child needs any)
--   param_src    per parameter ($1..): key_pos of the parent, column of its keys_sql
--   act_sql      DELETE, anonymizing UPDATE or count(*), as treatment says
--   count_sql    count(*) of the subject's rows (a kept table a foreign key
--                would cascade a deletion into: danger = conname, parent,
--                confdeltype; a table the caller may not change)
--   pii          the PII-labelled columns the anonymizing UPDATE clears
CREATE OR REPLACE FUNCTION customer_vault._erasure_plan()
    RETURNS TABLE(relid oid, depth integer, treatment text, key_pos integer, change_pos integer, subject_type oid,
                  keys_sql text, param_src integer[], act_sql text, count_sql text, danger text[], pii text)
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_erasure_plan';
COMMENT ON FUNCTION customer_vault._erasure_plan() IS
    'internal: the statements of an erasure per table of the subject reach, as this session keeps them prepared (src/forget.c)';

-- The walk of an erasure (src/forget.c): every table of the reach, keys
-- read parents first and changes made children first, each as the table's
-- owner inside a security-restricted operation, with the statements of
-- _erasure_plan() kept prepared per session.  Checks the calling role's
-- privilege on each table and refuses a kept table a foreign key would
-- cascade into; the counts per table as a JSON object.  Not STRICT: a NULL
-- is an error raised by the function.  Executable by nobody: forget_subject
-- runs the same walk in C, with the shreds, withdrawals and receipt.
CREATE OR REPLACE FUNCTION customer_vault._forget_walk(subject text, caller oid) RETURNS text
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_forget_walk';
COMMENT ON FUNCTION customer_vault._forget_walk(text, oid) IS
    'internal: forget_subject''s changes to every table of the subject reach, as each table''s owner; the counts per table as JSON';

-- Triggers on the subject registry and the retention policies: every
-- session builds its kept erasure plan again (relcache invalidation) once a
-- row changed.  Row triggers (and a statement trigger for TRUNCATE), not a
-- statement trigger for every DML: the sql_drop event triggers delete from
-- these tables on every DROP of anything, by any role (a temporary
-- function's), and a statement that deleted nothing sent the invalidation
-- all the same (review rev-walk F2: it made walks in flight fail).
CREATE OR REPLACE FUNCTION customer_vault._erasure_invalidate() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'cv_erasure_invalidate';
COMMENT ON FUNCTION customer_vault._erasure_invalidate() IS
    'internal: trigger telling every session to build its erasure plan again';
CREATE OR REPLACE TRIGGER subject_tables_erasure_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON customer_vault.subject_tables
    FOR EACH ROW EXECUTE FUNCTION customer_vault._erasure_invalidate();
CREATE OR REPLACE TRIGGER subject_tables_erasure_invalidate_truncate
    AFTER TRUNCATE ON customer_vault.subject_tables
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._erasure_invalidate();
CREATE OR REPLACE TRIGGER retention_policies_erasure_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON customer_vault.retention_policies
    FOR EACH ROW EXECUTE FUNCTION customer_vault._erasure_invalidate();
CREATE OR REPLACE TRIGGER retention_policies_erasure_invalidate_truncate
    AFTER TRUNCATE ON customer_vault.retention_policies
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._erasure_invalidate();
ALTER TABLE customer_vault.subject_tables ENABLE ALWAYS TRIGGER subject_tables_erasure_invalidate;
ALTER TABLE customer_vault.subject_tables ENABLE ALWAYS TRIGGER subject_tables_erasure_invalidate_truncate;
ALTER TABLE customer_vault.retention_policies ENABLE ALWAYS TRIGGER retention_policies_erasure_invalidate;
ALTER TABLE customer_vault.retention_policies ENABLE ALWAYS TRIGGER retention_policies_erasure_invalidate_truncate;

-- What forget_subject does with one table's rows of the subject: its
-- retention action decides (anonymize: kept with PII-labelled columns set
-- NULL; shred: kept, the subject's key is shredded anyway; delete or no
-- policy: deleted).
CREATE OR REPLACE FUNCTION customer_vault._erasure_treatment(tbl regclass) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE (SELECT rp.action FROM customer_vault.retention_policies rp WHERE rp.relid::oid = tbl::oid)
                WHEN 'anonymize' THEN 'anonymize'
                WHEN 'shred' THEN 'keep'
                ELSE 'delete' END
$$;
COMMENT ON FUNCTION customer_vault._erasure_treatment(regclass) IS
    'internal: delete, anonymize or keep: what forget_subject does with a table''s rows of the subject (from its retention action)';

-- Erasure of one subject, in one transaction (src/forget.c).  SECURITY
-- DEFINER: it writes the receipt chain, shreds, withdraws consents and reads
-- the holds as the extension's owner; each table is changed as that table's
-- owner (security-restricted), and only if the calling role itself holds the
-- privilege the change needs on it (DELETE, UPDATE to anonymize, SELECT to
-- count kept rows), as a purge asks.  Refused while a legal hold stands on
-- the subject under any spelling (equal as text, or as values of a
-- registered subject column's type); the subject's key is shredded under
-- every spelling of the subject (as given, in each subject column's type,
-- zero-padded, uuid variants); every consent whose subject names the same
-- subject (equal as text or in a subject column's type: '042', '+42', '6e1'
-- for 60 in a numeric column, 'a1 ' in a char(n) one) is withdrawn with a
-- ledger entry naming the receipt; the receipt (hash-chained) is appended and
-- returned.  Not STRICT: NULL arguments get errors of their own.
CREATE OR REPLACE FUNCTION customer_vault.forget_subject(subject text, reason text) RETURNS jsonb
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'cv_forget_subject';
COMMENT ON FUNCTION customer_vault.forget_subject(text, text) IS
    'erases a subject (GDPR art. 17) in one transaction: refused under a legal hold; rows deleted children first, or anonymized or kept as each table''s retention action says, as each table''s owner; key shredded; consents withdrawn; returns the hash-chained receipt';

-- Removes an erased subject's plain identifier from the evidence (part of
-- forget_subject, after its consents were withdrawn), for each spelling
-- given: deletes its consent_state rows and its evidence_subjects row, and
-- appends a 'redact' entry naming its keyed hash for every entry of it
-- written so far, of hash version 1 (before 0.5.0, the subject in plain
-- text) and of version 2 (its keyed hash: a returning subject's new
-- consent_state and evidence_subjects rows must not name them again): in
-- the ledger one per purpose (evidence: the ids it redacts and the receipt),
-- in the hold log one per hold; consent_ledger_redacted and legal_holds then
-- show NULL for them for good.  Entries already redacted are not named
-- again.  Returns the number of redact entries appended.
CREATE OR REPLACE FUNCTION customer_vault._redact_subject(subjects text[], receipt_id bigint) RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
DECLARE
    s text;
    h bytea;
    r record;
    n integer := 0;
BEGIN
    FOR s IN SELECT DISTINCT x FROM pg_catalog.unnest(subjects) x WHERE x <> '' ORDER BY 1 LOOP
        -- the current state: an erased subject has none (its consents were withdrawn)
        DELETE FROM customer_vault.consent_state cs WHERE cs.subject = s;
        h := customer_vault._evidence_subject(s, false);
        CONTINUE WHEN h IS NULL;        -- no root key: every entry is of version 1
        DELETE FROM customer_vault.evidence_subjects d WHERE d.subject_hash = h;
        FOR r IN SELECT l.purpose, pg_catalog.jsonb_agg(l.id ORDER BY l.id) AS ids
                   FROM customer_vault.consent_ledger l
                  WHERE ((l.hash_version = 1 AND l.subject = s)
                         OR (l.hash_version = 2 AND l.subject_hash = h AND l.action <> 'redact'))
                    AND NOT EXISTS (SELECT 1 FROM customer_vault.consent_ledger m
                                     WHERE m.subject_hash = h AND m.action = 'redact' AND m.purpose = l.purpose
                                       AND m.evidence -> 'redacts' @> pg_catalog.to_jsonb(l.id))
                  GROUP BY l.purpose ORDER BY l.purpose LOOP
            PERFORM customer_vault._ledger_append(NULL, r.purpose, 'redact',
                pg_catalog.jsonb_build_object('redacts', r.ids, 'erasure_receipt', receipt_id), NULL, h);
            n := n + 1;
        END LOOP;
        FOR r IN SELECT p.id FROM customer_vault.legal_hold_events p
                  WHERE p.action = 'place'
                    AND ((p.hash_version = 1 AND p.subject = s) OR (p.hash_version = 2 AND p.subject_hash = h))
                    AND NOT EXISTS (SELECT 1 FROM customer_vault.legal_hold_events x
                                     WHERE x.hold_id = p.id AND x.action = 'redact')
                  ORDER BY p.id LOOP
            PERFORM customer_vault._legal_hold_append('redact', r.id, NULL, NULL, NULL, h);
            n := n + 1;
        END LOOP;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION customer_vault._redact_subject(text[], bigint) IS
    'internal: removes an erased subject''s plain identifier from consent_state and evidence_subjects and appends redact entries for every evidence entry written for it so far (forget_subject)';

-- The canonical spelling of a subject: its text form in the type of the
-- registered subject columns it is a value of (integers first, then numeric,
-- then uuid: '042' is '42', an upper-case uuid lower case), what a subject
-- column's (id)::text gives; the subject as given when no non-text subject
-- column takes it.  In C (src/forget.c): only built-in input functions run
-- (the registry allows no other subject column types), without a
-- subtransaction per type (soft errors on 16 and later; on 15 a syntactic
-- check first).  Not STRICT: NULL gives NULL.  PARALLEL UNSAFE: on 15 a
-- long number is read in a subtransaction.
CREATE OR REPLACE FUNCTION customer_vault._canonical_subject(subject text) RETURNS text
    LANGUAGE C STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_canonical_subject';
COMMENT ON FUNCTION customer_vault._canonical_subject(text) IS
    'internal: a subject in the type of the registered subject columns it is a value of (''042'' is ''42'' for a bigint column), else as given; the spelling erasure receipts hash';

-- "Was this subject erased?" through the keyed hash: true when a receipt
-- exists for the subject as given or in its canonical spelling
CREATE OR REPLACE FUNCTION customer_vault.was_forgotten(subject text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM customer_vault.erasure_receipts r
                    WHERE r.subject_hash OPERATOR(pg_catalog.=) customer_vault._subject_hash(subject)
                       OR r.subject_hash OPERATOR(pg_catalog.=)
                          customer_vault._subject_hash(customer_vault._canonical_subject(subject)))
$$;
COMMENT ON FUNCTION customer_vault.was_forgotten(text) IS
    'whether forget_subject ever erased the subject (matched by its keyed hash; the receipts do not hold the subject)';

--@ code
-- Privileges of this concern: the admin erases; admin and auditor read and
-- verify the receipts and ask whether a subject was erased.
GRANT EXECUTE ON FUNCTION customer_vault.forget_subject(text, text) TO customer_vault_admin;
GRANT EXECUTE ON FUNCTION customer_vault.verify_receipts(), customer_vault.was_forgotten(text)
    TO customer_vault_admin, customer_vault_auditor;
GRANT SELECT ON customer_vault.erasure_receipts TO customer_vault_admin, customer_vault_auditor;
