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
-- (no SET clause, every name qualified: inlined into forget_subject)
CREATE OR REPLACE FUNCTION customer_vault._receipt_hash(e customer_vault.erasure_receipts) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
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

-- a receipt as forget_subject returns it (no SET clause, every name qualified: inlined)
CREATE OR REPLACE FUNCTION customer_vault._receipt_json(e customer_vault.erasure_receipts) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
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

-- The plan of an erasure, built from the catalog and the registry, never
-- from anything a caller passes: one row per table of _subject_reach() (the
-- same reach export_subject and the inventory use), with the statements
-- forget_subject runs on it as its owner (src/forget.c keeps them prepared
-- until DDL or the registry changes).  Statements read alias t; depth 0:
-- $1 is the subject (text, converted to the subject column's type); depth
-- n: $1.. are text[] of the keys its foreign keys reference in the parents'
-- rows of the subject, each column in its own type, compared with the key's
-- FK = FK operator (so the indexes of the key columns are used).
--   key_pos      position in the order keys are read (parents first)
--   change_pos   position in the order tables are changed: a table goes
--                once no other pending table references it (in a cycle of
--                foreign keys, the deepest first)
--   subject_type the subject column's type (depth 0)
--   keys_sql     the keys this table's rows give its children in the reach
--                (one text[] per key column, NULL when no child needs any)
--   param_src    per parameter ($1..): key_pos of the parent, column of its keys_sql
--   act_sql      DELETE, anonymizing UPDATE or count(*), as treatment says
--   count_sql    count(*) of the subject's rows, for tables a foreign key
--                would cascade a deletion into (danger: conname, parent,
--                confdeltype, triples)
--   pii          the PII-labelled columns the anonymizing UPDATE clears
CREATE OR REPLACE FUNCTION customer_vault._erasure_plan()
    RETURNS TABLE(relid oid, depth integer, treatment text, key_pos integer, change_pos integer, subject_type oid,
                  keys_sql text, param_src integer[], act_sql text, count_sql text, danger text[], pii text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    rels oid[];
    depths integer[];
    treats text[];
    n integer;
    i integer;
    j integer;
    r record;
    e record;
    c record;
    q text;
    only_ text;
    conds text[];
    parts text[];
    outs text[];
    nout integer;
    np integer;
    src integer[];
    cols text[];
    pii_cols name[];
    todo oid[];
    pick oid;
    pos integer := 0;
    change integer[];
    dangers text[];
BEGIN
    SELECT COALESCE(pg_catalog.array_agg(x.rel ORDER BY x.depth, x.rel), '{}'),
           COALESCE(pg_catalog.array_agg(x.depth ORDER BY x.depth, x.rel), '{}'),
           COALESCE(pg_catalog.array_agg(customer_vault._erasure_treatment(x.rel::regclass) ORDER BY x.depth, x.rel), '{}')
      INTO rels, depths, treats
      FROM (SELECT s.relid::oid AS rel, max(s.depth) AS depth FROM customer_vault._subject_reach() s GROUP BY 1) x;
    n := pg_catalog.cardinality(rels);
    IF n = 0 THEN
        RETURN;
    END IF;
    -- the order of change: children before parents
    change := pg_catalog.array_fill(0, ARRAY[n]);
    todo := rels;
    WHILE pg_catalog.cardinality(todo) > 0 LOOP
        SELECT p.rel INTO pick
          FROM ROWS FROM (pg_catalog.unnest(rels), pg_catalog.unnest(depths)) p(rel, depth)
         WHERE p.rel = ANY (todo)
         ORDER BY (EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                            WHERE k.contype = 'f' AND k.confrelid = p.rel AND k.conrelid <> p.rel
                              AND k.conrelid = ANY (todo))),
                  p.depth DESC, p.rel
         LIMIT 1;
        change[pg_catalog.array_position(rels, pick)] := pos;
        pos := pos + 1;
        todo := pg_catalog.array_remove(todo, pick);
    END LOOP;
    FOR i IN 1 .. n LOOP
        relid := rels[i];
        depth := depths[i];
        treatment := treats[i];
        key_pos := i - 1;
        change_pos := change[i];
        subject_type := NULL;
        only_ := CASE WHEN (SELECT cl.relkind FROM pg_catalog.pg_class cl WHERE cl.oid = relid) = 'p' THEN '' ELSE 'ONLY ' END;
        conds := '{}';
        src := '{}';
        np := 0;
        IF depth = 0 THEN
            -- the subject column in its own type (by its qualified name: never 'character', i.e. char(1))
            SELECT pg_catalog.format('t.%I OPERATOR(pg_catalog.=) ($1)::%I.%I', a.attname, tn.nspname, ty.typname), ty.oid
              INTO STRICT q, subject_type
              FROM customer_vault.subject_tables s
              JOIN pg_catalog.pg_attribute a ON a.attrelid = s.relid AND a.attname = s.subject_column
                                              AND a.attnum > 0 AND NOT a.attisdropped
              JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
              JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace
             WHERE s.relid::oid = relid;
            PERFORM customer_vault._check_subject_type(subject_type::regtype, pg_catalog.format('the subject column of table %s', relid::regclass));
            conds := ARRAY[q];
        ELSE
            -- one condition per foreign key towards a table of lower depth
            FOR e IN SELECT s.fk, s.parent::oid AS parent FROM customer_vault._subject_reach() s
                      WHERE s.relid::oid = relid ORDER BY s.fk LOOP
                -- where this key's columns start among the parent's keys_sql columns
                SELECT COALESCE(pg_catalog.sum(pg_catalog.cardinality(k.conkey)), 0)::integer INTO j
                  FROM customer_vault._subject_reach() s2 JOIN pg_catalog.pg_constraint k ON k.oid = s2.fk
                 WHERE s2.parent::oid = e.parent AND s2.depth > 0
                   AND (s2.relid::oid < relid OR (s2.relid::oid = relid AND s2.fk < e.fk));
                parts := '{}';
                cols := '{}';
                outs := '{}';
                FOR c IN SELECT a.attname, ns.nspname, o.oprname, tn.nspname AS tnsp, ty.typname, u.i
                           FROM pg_catalog.pg_constraint k
                          CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(k.conkey), pg_catalog.unnest(k.conffeqop)) WITH ORDINALITY u(attnum, op, i)
                           JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum
                           JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
                           JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace
                           JOIN pg_catalog.pg_operator o ON o.oid = u.op
                           JOIN pg_catalog.pg_namespace ns ON ns.oid = o.oprnamespace
                          WHERE k.oid = e.fk
                          ORDER BY u.i LOOP
                    np := np + 1;
                    src := src || (pg_catalog.array_position(rels, e.parent) - 1) || (j + c.i::integer);
                    parts := parts || pg_catalog.format('t.%I OPERATOR(%I.%s) ANY (($%s)::%I.%I[])',
                                                        c.attname, c.nspname, c.oprname, np, c.tnsp, c.typname);
                    cols := cols || pg_catalog.format('pg_catalog.unnest(($%s)::%I.%I[])', np, c.tnsp, c.typname);
                    outs := outs || pg_catalog.format('t.%I OPERATOR(%I.%s) k.v%s', c.attname, c.nspname, c.oprname, c.i);
                END LOOP;
                IF pg_catalog.cardinality(parts) = 1 THEN
                    conds := conds || parts[1];
                ELSE
                    -- composite: each column narrowed through its index, the tuples matched exactly
                    conds := conds || pg_catalog.format('%s AND EXISTS (SELECT FROM ROWS FROM (%s) k(%s) WHERE %s)',
                        pg_catalog.array_to_string(parts, ' AND '), pg_catalog.array_to_string(cols, ', '),
                        (SELECT pg_catalog.string_agg(pg_catalog.format('v%s', g), ', ')
                           FROM pg_catalog.generate_series(1, pg_catalog.cardinality(parts)) g),
                        pg_catalog.array_to_string(outs, ' AND '));
                END IF;
            END LOOP;
        END IF;
        SELECT pg_catalog.format('%I.%I', t.nsp, t.rel) INTO q FROM customer_vault._table_names(relid::regclass) t;
        q := only_ || q || ' t WHERE (' || pg_catalog.array_to_string(conds, ') OR (') || ')';
        -- what the children need of this table's rows: one text[] per key column of each foreign key
        outs := '{}';
        FOR e IN SELECT s.fk FROM customer_vault._subject_reach() s
                  WHERE s.parent::oid = relid AND s.depth > 0 ORDER BY s.relid::oid, s.fk LOOP
            SELECT pg_catalog.array_agg(pg_catalog.format('pg_catalog.array_agg(%s(t.%I)::pg_catalog.text) FILTER (WHERE %s)',
                                                          CASE WHEN pg_catalog.cardinality(k.confkey) = 1 THEN 'DISTINCT ' ELSE '' END,
                                                          a.attname,
                                                          (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I IS NOT NULL', a2.attname), ' AND ')
                                                             FROM pg_catalog.unnest(k.confkey) x2(n)
                                                             JOIN pg_catalog.pg_attribute a2 ON a2.attrelid = k.confrelid AND a2.attnum = x2.n))
                                        ORDER BY u.i)
              INTO cols
              FROM pg_catalog.pg_constraint k
             CROSS JOIN LATERAL pg_catalog.unnest(k.confkey) WITH ORDINALITY u(attnum, i)
              JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum
             WHERE k.oid = e.fk;
            outs := outs || cols;
        END LOOP;
        keys_sql := CASE WHEN pg_catalog.cardinality(outs) > 0
                         THEN 'SELECT ' || pg_catalog.array_to_string(outs, ', ') || ' FROM ' || q END;
        param_src := src;
        count_sql := 'SELECT pg_catalog.count(*) FROM ' || q;
        pii := NULL;
        IF treatment = 'delete' THEN
            act_sql := 'DELETE FROM ' || q;
        ELSIF treatment = 'anonymize' THEN
            pii_cols := customer_vault._pii_columns(relid::regclass);
            pii := pg_catalog.array_to_string(pii_cols, ',');
            IF pg_catalog.cardinality(pii_cols) = 0 THEN
                act_sql := NULL;    -- refused when the erasure runs
            ELSE
                act_sql := 'UPDATE ' || pg_catalog.regexp_replace(q, ' WHERE ', ' SET ' ||
                               (SELECT pg_catalog.string_agg(pg_catalog.format('%I = NULL', x), ', ') FROM pg_catalog.unnest(pii_cols) x)
                               || ' WHERE (') || ') AND ('
                           || (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I IS NOT NULL', x), ' OR ') FROM pg_catalog.unnest(pii_cols) x)
                           || ')';
            END IF;
        ELSE
            act_sql := count_sql;
        END IF;
        -- a kept table must not lose the subject's rows to a cascade, nor stop
        -- the deletion of their parent
        dangers := '{}';
        IF treatment <> 'delete' THEN
            SELECT COALESCE(pg_catalog.array_agg(x ORDER BY k.conname, o), '{}') INTO dangers
              FROM pg_catalog.pg_constraint k
             CROSS JOIN LATERAL pg_catalog.unnest(ARRAY[k.conname::text, pg_catalog.format('%s', k.confrelid::regclass),
                                                        k.confdeltype::text]) WITH ORDINALITY u(x, o)
             WHERE k.contype = 'f' AND k.confdeltype IN ('c', 'r', 'a') AND k.conparentid = 0
               AND k.conrelid = relid
               AND k.confrelid IN (SELECT rels[g] FROM pg_catalog.generate_series(1, n) g WHERE treats[g] = 'delete');
        END IF;
        danger := dangers;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault._erasure_plan() IS
    'internal: the statements of an erasure per table of _subject_reach(), built from the catalog (forget_subject keeps them prepared in src/forget.c)';

-- The walk of an erasure (src/forget.c): every table of the reach, keys
-- read parents first and changes made children first, each as the table's
-- owner inside a security-restricted operation, with the statements of
-- _erasure_plan() kept prepared per session.  Checks the calling role's
-- privilege on each table and refuses a kept table a foreign key would
-- cascade into; the counts per table as a JSON object.  Not STRICT: a NULL
-- is an error raised by the function.  Executable by nobody: forget_subject
-- (SECURITY DEFINER) calls it.
CREATE OR REPLACE FUNCTION customer_vault._forget_walk(subject text, caller oid) RETURNS text
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_forget_walk';
COMMENT ON FUNCTION customer_vault._forget_walk(text, oid) IS
    'internal: forget_subject''s changes to every table of the subject reach, as each table''s owner; the counts per table as JSON';

-- Statement trigger on the subject registry and the retention policies:
-- every session builds its kept erasure plan again (relcache invalidation).
CREATE OR REPLACE FUNCTION customer_vault._erasure_invalidate() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'cv_erasure_invalidate';
COMMENT ON FUNCTION customer_vault._erasure_invalidate() IS
    'internal: statement trigger telling every session to build its erasure plan again';
CREATE OR REPLACE TRIGGER subject_tables_erasure_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON customer_vault.subject_tables
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._erasure_invalidate();
CREATE OR REPLACE TRIGGER retention_policies_erasure_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON customer_vault.retention_policies
    FOR EACH STATEMENT EXECUTE FUNCTION customer_vault._erasure_invalidate();
ALTER TABLE customer_vault.subject_tables ENABLE ALWAYS TRIGGER subject_tables_erasure_invalidate;
ALTER TABLE customer_vault.retention_policies ENABLE ALWAYS TRIGGER retention_policies_erasure_invalidate;

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
-- extension's owner; each table is changed by _forget_walk (C) as that table's
-- owner (security-restricted), and only if the calling role itself holds
-- the privilege the change needs on it (DELETE, UPDATE to anonymize, SELECT
-- to count kept rows), as a purge asks.
CREATE OR REPLACE FUNCTION customer_vault.forget_subject(subject text, reason text) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- the calling role (as _calling_role(), written out: no function call)
    caller name := CASE WHEN pg_catalog.current_setting('role') OPERATOR(pg_catalog.=) 'none' THEN session_user
                        ELSE pg_catalog.current_setting('role')::name END;
    hold record;
    e customer_vault.erasure_receipts;
    walk jsonb;
    shredded boolean;
    withdrawn integer := 0;
    c record;
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
    PERFORM FROM customer_vault.evidence_heads h WHERE h.chain = 'legal_hold_events' FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM customer_vault._evidence_next('legal_hold_events');
    END IF;
    SELECT h.id, h.reason INTO hold FROM customer_vault.current_legal_holds h
     WHERE customer_vault._same_subject(h.subject, forget_subject.subject)
     ORDER BY h.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'object_in_use',
            MESSAGE = pg_catalog.format('subject is under legal hold %s', hold.id),
            DETAIL = pg_catalog.format('Legal hold %s was placed for: %s', hold.id, hold.reason),
            HINT = 'Nothing was erased. Release the hold with customer_vault.release_legal_hold() when it ends, then repeat the erasure.';
    END IF;

    -- the head of the receipt chain, locked to the end of the transaction
    SELECT h.last_id + 1, h.last_hash INTO e.id, e.prev_hash
      FROM customer_vault.erasure_receipts_head h WHERE h.chain = 'erasure_receipts' FOR UPDATE;
    IF NOT FOUND THEN
        SELECT r.next_id, r.prev_hash INTO e.id, e.prev_hash FROM customer_vault._receipt_next() r;
    END IF;

    -- every table holding the subject's rows, changed as its owner
    -- (src/forget.c); the labelled tables no registered table reaches; the
    -- spellings the subject's consents may be stored under
    e.role_id := COALESCE(pg_catalog.to_regrole(pg_catalog.quote_ident(caller))::oid, 0);
    walk := customer_vault._forget_walk(subject, e.role_id)::jsonb;

    shredded := customer_vault.shred_subject(subject);

    -- every consent of the subject, under whichever spelling it was given
    -- ('042' and '42' name one subject of a bigint column): the subject as
    -- given, its text form in each registered subject column's type and
    -- those zero-padded (walk -> spellings), or any other text that is the
    -- same value and starts with a sign or white space
    FOR c IN SELECT s.subject AS who, s.purpose FROM customer_vault.consent_state s
              WHERE s.granted
                AND (s.subject = ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text(walk -> 'spellings')))
                     OR (s.subject < '0' AND customer_vault._same_subject(s.subject, forget_subject.subject)))
              ORDER BY s.subject, s.purpose LOOP
        PERFORM customer_vault.withdraw_consent(c.who, c.purpose,
            pg_catalog.jsonb_build_object('erasure_receipt', e.id, 'reason', reason));
        withdrawn := withdrawn + 1;
    END LOOP;

    e.at := pg_catalog.clock_timestamp();
    e.session_role := session_user;
    e.acting_role := caller;
    e.subject_hash := customer_vault._subject_hash(subject);
    e.reason := reason;
    e.counts := pg_catalog.jsonb_build_object('tables', walk -> 'tables', 'subject_key_shredded', shredded,
                                              'consents_withdrawn', withdrawn, 'not_reached', walk -> 'not_reached');
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
