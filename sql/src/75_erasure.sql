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
CREATE OR REPLACE FUNCTION customer_vault._receipt_hash(e customer_vault.erasure_receipts) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.sha256(COALESCE(e.prev_hash, '\x'::bytea) OPERATOR(pg_catalog.||) pg_catalog.convert_to(
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

-- a receipt as forget_subject returns it
CREATE OR REPLACE FUNCTION customer_vault._receipt_json(e customer_vault.erasure_receipts) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
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

-- The tables forget_subject visits: _subject_reach() without its readable
-- paths and cycle flags (which make it slow: tens of ms), the same rows
-- otherwise (every registered table at depth 0 with its subject column; for
-- every other table reaching one through foreign keys, its shortest depth
-- and one row per key towards a table of lower depth).  The test
-- forget_subject checks that both agree.
CREATE OR REPLACE FUNCTION customer_vault._erasure_reach()
    RETURNS TABLE(relid oid, depth integer, parent oid, fk oid, subject_column name)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
WITH RECURSIVE
nodes AS (
    SELECT c.oid
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND n.nspname NOT IN ('customer_vault', 'pg_catalog', 'information_schema', 'pg_toast')
),
fks AS (
    SELECT k.oid AS fk, k.conrelid AS child, k.confrelid AS parent
      FROM pg_catalog.pg_constraint k
     WHERE k.contype = 'f' AND k.conparentid = 0
       AND k.conrelid IN (SELECT oid FROM nodes) AND k.confrelid IN (SELECT oid FROM nodes)
),
reg AS (
    SELECT s.relid::pg_catalog.oid AS rel, s.subject_column
      FROM customer_vault.subject_tables s
     WHERE s.relid::pg_catalog.oid IN (SELECT oid FROM nodes)
),
walk(rel, depth, visited) AS (
    SELECT r.rel, 0, ARRAY[r.rel] FROM reg r
    UNION ALL
    SELECT f.child, w.depth + 1, w.visited || f.child
      FROM walk w JOIN fks f ON f.parent = w.rel
     WHERE f.child <> ALL (w.visited) AND f.child NOT IN (SELECT r.rel FROM reg r)
       AND w.depth < 64
),
best AS (
    SELECT w.rel, min(w.depth) AS depth FROM walk w GROUP BY w.rel
)
SELECT b.rel, 0, NULL::pg_catalog.oid, NULL::pg_catalog.oid, r.subject_column
  FROM best b JOIN reg r ON r.rel = b.rel
 WHERE b.depth = 0
UNION ALL
SELECT b.rel, b.depth, f.parent, f.fk, NULL::name
  FROM best b
  JOIN fks f ON f.child = b.rel
  JOIN best p ON p.rel = f.parent AND p.depth < b.depth
 WHERE b.depth > 0
$$;
COMMENT ON FUNCTION customer_vault._erasure_reach() IS
    'internal: the rows of _subject_reach() forget_subject needs (table, depth, parent, key, subject column), without paths and cycle flags';

-- The condition selecting one subject's rows of a table (alias t) and the
-- text[] bound as $1: the subject column compared with the subject in the
-- column's own type (a registered table), or, for a table reached through
-- foreign keys, its key columns against the keys of the subject's rows in
-- each parent, read as that parent's owner by _maint_run (kind forget_keys),
-- one level at a time, so no owner reads another owner's table.  Parameters,
-- never a function call per row: the planner sees the values and uses the
-- indexes.  'false' when nothing can match.
CREATE OR REPLACE FUNCTION customer_vault._erasure_filter(tbl regclass, subject text, reach jsonb,
                                                         OUT filter text, OUT bind text[])
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    c record;
    typ text;
    styp regtype;
    keys text[];
    m integer;
    n integer;
    s integer;
    conds text[] := '{}';
    parts text[];
    reached boolean := false;
BEGIN
    IF tbl IS NULL OR subject IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'table and subject must not be null';
    END IF;
    bind := '{}';
    -- the reach forget_subject computed once (passed on through _maint_run's
    -- parameters); the rows of this table are checked against the catalog
    -- below, so a reach made up by a direct caller selects nothing the
    -- caller's own privileges on the tables would not
    IF reach IS NULL THEN
        reach := (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(x)) FROM customer_vault._erasure_reach() x);
    END IF;
    FOR r IN SELECT * FROM pg_catalog.jsonb_to_recordset(COALESCE(reach, '[]'))
                           AS x(relid oid, depth integer, parent oid, fk oid, subject_column name)
              WHERE x.relid = tbl::oid ORDER BY x.depth, x.fk LOOP
        reached := true;
        IF r.depth = 0 THEN
            -- the type by its qualified name (never 'character', i.e. char(1))
            SELECT pg_catalog.format('%I.%I', tn.nspname, ty.typname), ty.oid::regtype INTO typ, styp
              FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
              JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace
             WHERE a.attrelid = tbl AND a.attname = r.subject_column AND a.attnum > 0 AND NOT a.attisdropped;
            IF typ IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'undefined_column',
                    MESSAGE = pg_catalog.format('subject column %I of table %s does not exist', r.subject_column, tbl);
            END IF;
            PERFORM customer_vault._check_subject_type(styp, pg_catalog.format('subject column %I of table %s', r.subject_column, tbl));
            IF customer_vault._casts_to(subject, styp) THEN
                filter := pg_catalog.format('t.%I OPERATOR(pg_catalog.=) (($1)[1])::%s', r.subject_column, typ);
                bind := ARRAY[subject];
            ELSE
                filter := 'false';
                bind := NULL;
            END IF;
            RETURN;
        END IF;
        IF r.depth IS NULL OR r.depth < 1 OR NOT EXISTS (
               SELECT 1 FROM pg_catalog.pg_constraint k
                WHERE k.oid = r.fk AND k.contype = 'f' AND k.conrelid = tbl AND k.confrelid = r.parent) THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = pg_catalog.format('no foreign key %s from table %s to table %s', r.fk, tbl, r.parent::regclass);
        END IF;
        -- the keys the foreign key references in the subject's rows of the parent
        keys := customer_vault._maint_run('forget_keys', r.parent::regclass, ARRAY[subject, reach::text, r.fk::text]);
        m := (SELECT pg_catalog.cardinality(k.conkey) FROM pg_catalog.pg_constraint k WHERE k.oid = r.fk);
        n := COALESCE(pg_catalog.cardinality(keys), 0) / m;
        CONTINUE WHEN n = 0;
        s := pg_catalog.cardinality(bind) + 1;
        bind := bind || keys;
        -- each key column in its own type, compared with the key's FK = FK operator
        parts := '{}';
        FOR c IN SELECT a.attname, ns.nspname, o.oprname, u.i,
                        pg_catalog.format('%I.%I', tn.nspname, ty.typname) AS typ
                   FROM pg_catalog.pg_constraint k
                  CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(k.conkey), pg_catalog.unnest(k.conffeqop)) WITH ORDINALITY u(attnum, op, i)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum
                   JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
                   JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace
                   JOIN pg_catalog.pg_operator o ON o.oid = u.op
                   JOIN pg_catalog.pg_namespace ns ON ns.oid = o.oprnamespace
                  WHERE k.oid = r.fk
                  ORDER BY u.i LOOP
            IF m = 1 THEN
                parts := parts || pg_catalog.format('t.%I OPERATOR(%I.%s) ANY ((($1)[%s:%s])::%s[])',
                                                    c.attname, c.nspname, c.oprname, s, s + n - 1, c.typ);
            ELSE
                -- (OPERATOR() syntax has one precedence for all: the product in parentheses)
                parts := parts || pg_catalog.format('t.%I OPERATOR(%I.%s) (($1)[%s OPERATOR(pg_catalog.+) (k.i OPERATOR(pg_catalog.*) %s)])::%s',
                                                    c.attname, c.nspname, c.oprname, s + c.i - 1, m, c.typ);
            END IF;
        END LOOP;
        IF m = 1 THEN
            conds := conds || parts[1];
        ELSE
            conds := conds || pg_catalog.format('EXISTS (SELECT FROM pg_catalog.generate_series(0, %s) k(i) WHERE %s)',
                                                n - 1, pg_catalog.array_to_string(parts, ' AND '));
        END IF;
    END LOOP;
    IF NOT reached THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = pg_catalog.format('table %s is not a subject table and reaches none through foreign keys', tbl),
            HINT = 'Register it with customer_vault.register_subject_table(), or declare a foreign key to a table that is.';
    END IF;
    IF pg_catalog.cardinality(conds) = 0 THEN
        filter := 'false';
        bind := NULL;
    ELSE
        filter := pg_catalog.array_to_string(conds, ' OR ');
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._erasure_filter(regclass, text, jsonb) IS
    'internal: the condition (alias t) and the bound values selecting one subject''s rows of a registered or reached table';

-- The pieces of forget_subject's statements (called by _maint_sql, run by
-- _maint_run as the table's owner): params {subject}; the subject's rows are
-- those _erasure_filter selects (own subject column, or foreign keys read
-- one level at a time as each parent's owner).
-- params {subject, reach (jsonb of _erasure_reach(); NULL: computed)[, fk]}
--   forget_keys       {subject, reach, fk}: the keys foreign key fk references in the
--                     subject's rows (privilege SELECT)
--   forget_delete     DELETE of the subject's rows (privilege DELETE)
--   forget_anonymize  PII-labelled columns set NULL in the subject's rows
--                     that still have one (privilege UPDATE)
--   forget_keep       the number of the subject's rows, which stay (privilege SELECT)
CREATE OR REPLACE FUNCTION customer_vault._erasure_sql(kind text, tbl regclass, params text[],
                                                      OUT op text, OUT list text, OUT filter text,
                                                      OUT privilege text, OUT key_name text, OUT bind text[])
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pii name[];
BEGIN
    IF kind IS NULL OR tbl IS NULL OR params[1] IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'kind, table and subject must not be null';
    END IF;
    SELECT f.filter, f.bind INTO filter, bind FROM customer_vault._erasure_filter(tbl, params[1], params[2]::jsonb) f;
    IF kind = 'forget_keys' THEN
        -- the distinct values of the columns foreign key params[2] references in tbl
        SELECT 'DISTINCT ' || pg_catalog.string_agg(pg_catalog.format('(t.%I)::pg_catalog.text', a.attname), ', ' ORDER BY u.i)
          INTO list
          FROM pg_catalog.pg_constraint k
         CROSS JOIN LATERAL pg_catalog.unnest(k.confkey) WITH ORDINALITY u(attnum, i)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum
         WHERE k.oid = params[3]::oid AND k.contype = 'f' AND k.confrelid = tbl;
        IF list IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = pg_catalog.format('constraint %s is no foreign key referencing table %s', params[3], tbl);
        END IF;
        op := 'select';
        privilege := 'SELECT';
    ELSIF kind = 'forget_delete' THEN
        op := 'delete_where';
        privilege := 'DELETE';
    ELSIF kind = 'forget_anonymize' THEN
        pii := customer_vault._pii_columns(tbl);
        IF pg_catalog.cardinality(pii) = 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = pg_catalog.format('table %s has no PII-labelled columns to anonymize', tbl),
                HINT = 'Label them first: SECURITY LABEL FOR customer_vault ON COLUMN t.c IS ''pii''.';
        END IF;
        SELECT pg_catalog.string_agg(pg_catalog.format('%I = NULL', c), ', '),
               pg_catalog.format('(%s) AND (%s)', filter,
                                 pg_catalog.string_agg(pg_catalog.format('t.%I IS NOT NULL', c), ' OR '))
          INTO list, filter
          FROM pg_catalog.unnest(pii) c;
        op := 'update_where';
        privilege := 'UPDATE';
    ELSIF kind = 'forget_keep' THEN
        op := 'select';
        list := 'pg_catalog.count(*)';
        privilege := 'SELECT';
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = pg_catalog.format('unknown erasure kind %L', kind);
    END IF;
END
$$;
COMMENT ON FUNCTION customer_vault._erasure_sql(text, regclass, text[]) IS
    'internal: the pieces of forget_subject''s statements on one table (forget_keys, forget_delete, forget_anonymize, forget_keep)';

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

-- Erasure of one subject, in one transaction.  SECURITY DEFINER: it writes the
-- receipt chain, shreds, withdraws consents and reads the holds as the
-- extension's owner; each table is changed by _maint_run as that table's
-- owner (security-restricted), and only if the calling role itself holds
-- the privilege the change needs on it (DELETE, UPDATE to anonymize, SELECT
-- to count kept rows), as a purge asks.
CREATE OR REPLACE FUNCTION customer_vault.forget_subject(subject text, reason text) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller name := customer_vault._calling_role();
    hold record;
    e customer_vault.erasure_receipts;
    fkrow record;
    reach jsonb;
    rels oid[];
    depths integer[];
    treats text[];
    todo oid[];
    pick oid;
    treat text;
    n bigint;
    priv text;
    tables jsonb := '{}';
    shredded boolean;
    withdrawn integer := 0;
    c record;
    unreached text[];
BEGIN
    IF subject IS NULL OR subject = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'subject must not be null or empty';
    END IF;
    IF pg_catalog.octet_length(subject) > 255 THEN
        RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded', MESSAGE = 'subject identifier is too long',
            DETAIL = 'A subject identifier is at most 255 bytes long.';
    END IF;
    IF reason IS NULL OR pg_catalog.btrim(reason) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'an erasure needs a reason',
            HINT = 'Say why, e.g. ''request of the customer, ticket 4711''.';
    END IF;

    -- a hold placed or released concurrently waits for this transaction (the
    -- same lock place_legal_hold and release_legal_hold take), so none slips
    -- in between the check and the erasure
    PERFORM customer_vault._evidence_next('legal_hold_events');
    SELECT h.id, h.reason INTO hold FROM customer_vault.current_legal_holds h
     WHERE customer_vault._same_subject(h.subject, forget_subject.subject)
     ORDER BY h.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'object_in_use',
            MESSAGE = pg_catalog.format('subject is under legal hold %s', hold.id),
            DETAIL = pg_catalog.format('Legal hold %s was placed for: %s', hold.id, hold.reason),
            HINT = 'Nothing was erased. Release the hold with customer_vault.release_legal_hold() when it ends, then repeat the erasure.';
    END IF;

    SELECT r.next_id, r.prev_hash INTO e.id, e.prev_hash FROM customer_vault._receipt_next() r;

    -- every table holding the subject's rows and what happens to them (no
    -- temporary table: one of the caller's own could carry triggers that
    -- would run with the extension owner's rights)
    reach := (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(x)) FROM customer_vault._erasure_reach() x);
    SELECT COALESCE(pg_catalog.array_agg(x.relid ORDER BY x.relid), '{}'),
           COALESCE(pg_catalog.array_agg(x.depth ORDER BY x.relid), '{}'),
           COALESCE(pg_catalog.array_agg(x.treat ORDER BY x.relid), '{}')
      INTO rels, depths, treats
      FROM (SELECT r.relid, max(r.depth) AS depth, customer_vault._erasure_treatment(r.relid::regclass) AS treat
              FROM pg_catalog.jsonb_to_recordset(COALESCE(reach, '[]')) AS r(relid oid, depth integer)
             GROUP BY r.relid) x;

    -- a kept table must not lose the subject's rows to a cascade, nor stop
    -- the deletion of their parent: refused before anything changes
    FOR fkrow IN SELECT k.conname, k.conrelid::regclass AS child, k.confrelid::regclass AS parent, k.confdeltype
                   FROM pg_catalog.pg_constraint k
                   JOIN ROWS FROM (pg_catalog.unnest(rels), pg_catalog.unnest(treats)) p1(relid, treat) ON p1.relid = k.confrelid AND p1.treat = 'delete'
                   JOIN ROWS FROM (pg_catalog.unnest(rels), pg_catalog.unnest(treats)) p2(relid, treat) ON p2.relid = k.conrelid AND p2.treat <> 'delete'
                  WHERE k.contype = 'f' AND k.confdeltype IN ('c', 'r', 'a') AND k.conparentid = 0
                  ORDER BY k.conrelid, k.conname LOOP
        n := (customer_vault._maint_run('forget_keep', fkrow.child, ARRAY[subject, reach::text]))[1]::bigint;
        IF n > 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = pg_catalog.format('table %s keeps the subject''s rows, but its foreign key %I ties them to rows of %s that are deleted',
                                            fkrow.child, fkrow.conname, fkrow.parent),
                DETAIL = CASE fkrow.confdeltype WHEN 'c' THEN 'ON DELETE CASCADE would delete the kept rows.'
                              ELSE 'The foreign key forbids deleting the referenced rows.' END,
                HINT = pg_catalog.format('Nothing was erased. Give %s the anonymize retention action too, or declare the foreign key ON DELETE SET NULL.',
                                         fkrow.parent);
        END IF;
    END LOOP;

    -- children before parents: a table goes once no other pending table
    -- references it (in a cycle of foreign keys, the deepest first)
    todo := rels;
    WHILE pg_catalog.cardinality(todo) > 0 LOOP
        SELECT p.relid, p.treat INTO pick, treat
          FROM ROWS FROM (pg_catalog.unnest(rels), pg_catalog.unnest(depths), pg_catalog.unnest(treats)) p(relid, depth, treat)
         WHERE p.relid = ANY (todo)
         ORDER BY (EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                            WHERE k.contype = 'f' AND k.confrelid = p.relid AND k.conrelid <> p.relid
                              AND k.conrelid = ANY (todo))),
                  p.depth DESC, p.relid
         LIMIT 1;
        priv := CASE treat WHEN 'delete' THEN 'DELETE' WHEN 'anonymize' THEN 'UPDATE' ELSE 'SELECT' END;
        IF NOT pg_catalog.has_table_privilege(caller, pick, priv) THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = pg_catalog.format('permission denied for table %s', pick::regclass),
                DETAIL = pg_catalog.format('forget_subject changes a table as its owner, for roles with the %s privilege on it.', priv),
                HINT = 'Nothing was erased.';
        END IF;
        n := (customer_vault._maint_run('forget_' || treat, pick::regclass, ARRAY[subject, reach::text]))[1]::bigint;
        tables := tables OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(pg_catalog.format('%s', pick::regclass),
            pg_catalog.jsonb_build_object('deleted', CASE WHEN treat = 'delete' THEN n ELSE 0 END,
                                          'anonymized', CASE WHEN treat = 'anonymize' THEN n ELSE 0 END,
                                          'kept', CASE WHEN treat = 'keep' THEN n ELSE 0 END));
        todo := pg_catalog.array_remove(todo, pick);
    END LOOP;

    -- tables with PII-labelled columns that no registered table reaches:
    -- named in the receipt, since nothing of them was looked at
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT pg_catalog.format('%s', c2.oid::regclass)), '{}')
      INTO unreached
      FROM pg_catalog.pg_seclabel l JOIN pg_catalog.pg_class c2 ON c2.oid = l.objoid
     WHERE l.classoid = 'pg_catalog.pg_class'::regclass AND l.provider = 'customer_vault' AND l.objsubid > 0
       AND c2.relkind IN ('r', 'p') AND NOT c2.relispartition
       AND c2.oid <> ALL (rels);

    shredded := customer_vault.shred_subject(subject);

    FOR c IN SELECT s.purpose FROM customer_vault.consent_state s
              WHERE s.subject = forget_subject.subject AND s.granted ORDER BY s.purpose LOOP
        PERFORM customer_vault.withdraw_consent(subject, c.purpose,
            pg_catalog.jsonb_build_object('erasure_receipt', e.id, 'reason', reason));
        withdrawn := withdrawn + 1;
    END LOOP;

    e.at := pg_catalog.clock_timestamp();
    SELECT r.oid INTO e.role_id FROM pg_catalog.pg_roles r WHERE r.rolname = caller;
    e.role_id := COALESCE(e.role_id, 0);
    e.session_role := session_user;
    e.acting_role := caller;
    e.subject_hash := customer_vault._subject_hash(subject);
    e.reason := reason;
    e.counts := pg_catalog.jsonb_build_object('tables', tables, 'subject_key_shredded', shredded,
                                              'consents_withdrawn', withdrawn, 'not_reached', pg_catalog.to_jsonb(unreached));
    e.hash := customer_vault._receipt_hash(e);
    INSERT INTO customer_vault.erasure_receipts SELECT e.*;
    UPDATE customer_vault.erasure_receipts_head h SET last_id = e.id, last_hash = e.hash
     WHERE h.chain = 'erasure_receipts';
    RETURN customer_vault._receipt_json(e);
END
$$;
COMMENT ON FUNCTION customer_vault.forget_subject(text, text) IS
    'erases a subject (GDPR art. 17) in one transaction: refused under a legal hold; rows deleted children first, or anonymized or kept as each table''s retention action says, as each table''s owner; key shredded; consents withdrawn; returns the hash-chained receipt';

-- "Was this subject erased?" through the keyed hash: true when a receipt exists
CREATE OR REPLACE FUNCTION customer_vault.was_forgotten(subject text) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM customer_vault.erasure_receipts r
                    WHERE r.subject_hash OPERATOR(pg_catalog.=) customer_vault._subject_hash(subject))
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
