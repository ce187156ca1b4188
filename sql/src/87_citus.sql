--@ code

---------------------------------------------------------------------------
-- Citus: the extension's tables that every node must read locally
---------------------------------------------------------------------------

-- On a Citus cluster, decrypt() and the consent policy run on the workers,
-- per shard, where a query Citus would have to distribute fails: they read
-- the data keys and the consent state from local relations only
-- (src/citus.c).  This makes those tables reference tables, a copy on every
-- node, written through the coordinator in two-phase commits.  The
-- extension's ledgers and logs stay on the coordinator.
-- Superuser only (granted to nobody): it changes the cluster's layout, and
-- create_reference_table needs the tables' owner.  Not STRICT: no arguments.
-- Idempotent: tables already known to Citus are left as they are.
CREATE OR REPLACE FUNCTION customer_vault.citus_setup()
    RETURNS SETOF regclass
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- referenced tables first
    tables pg_catalog.regclass[] := ARRAY['customer_vault.data_keys', 'customer_vault.purposes',
                                          'customer_vault.purpose_roles', 'customer_vault.consent_state'];
    t pg_catalog.regclass;
    fk record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'extension "citus" is not installed in this database'
            USING ERRCODE = '55000',
                  HINT = 'customer_vault.citus_setup() is for databases distributed with Citus.';
    END IF;
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
        RAISE EXCEPTION 'permission denied for function citus_setup'
            USING ERRCODE = '42501',
                  DETAIL = 'Only a superuser may change where the extension''s tables are stored.';
    END IF;
    IF NOT pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'customer_vault.citus_setup() must run on the coordinator'
            USING ERRCODE = '55000';
    END IF;
    -- the tables keep their triggers (cache invalidation, consent counters):
    -- Citus copies them to every shard
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    -- The foreign keys between these tables (purpose_roles and consent_state
    -- reference purposes) are taken off while the tables are converted one by
    -- one (Citus would otherwise turn the referencing tables into Citus local
    -- tables, which clash with the extension's tables on the workers) and put
    -- back, with the same names and definitions, between reference tables.
    CREATE TEMP TABLE _cv_citus_fks ON COMMIT DROP AS
    SELECT c.conrelid::pg_catalog.regclass AS tbl, c.conname, pg_catalog.pg_get_constraintdef(c.oid) AS def
      FROM pg_catalog.pg_constraint c
     WHERE c.contype OPERATOR(pg_catalog.=) 'f'
       AND c.conrelid OPERATOR(pg_catalog.=) ANY (tables)
       AND c.confrelid OPERATOR(pg_catalog.=) ANY (tables)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                        WHERE p.logicalrelid OPERATOR(pg_catalog.=) c.conrelid);
    FOR fk IN SELECT * FROM _cv_citus_fks LOOP
        -- the workers' copies of the extension's tables (CREATE EXTENSION
        -- made them there) have it too, and ADD CONSTRAINT on a reference
        -- table is sent to every node.  run_command_on_workers commits on its
        -- own (hence IF EXISTS: a second run after a failure goes through),
        -- and must run before this transaction locks anything on the workers.
        PERFORM pg_catalog.run_command_on_workers(
            pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', fk.tbl, fk.conname));
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
    END LOOP;
    FOREACH t IN ARRAY tables LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) t) THEN
            PERFORM pg_catalog.create_reference_table(t);
            -- the rows now live in the shards: the shell must not keep an old copy
            PERFORM pg_catalog.truncate_local_data_after_distributing_table(t);
            RETURN NEXT t;
        END IF;
    END LOOP;
    FOR fk IN SELECT * FROM _cv_citus_fks LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.tbl, fk.conname, fk.def);
    END LOOP;
    DROP TABLE _cv_citus_fks;
END
$$;
COMMENT ON FUNCTION customer_vault.citus_setup() IS
    'on a Citus coordinator: makes the key and consent tables reference tables, so that every node opens values and checks consent from local data; returns the tables converted';

-- Compares the row-level security of every placement of a distributed (or
-- reference) table, and of its partitions and inheritance children, with
-- the coordinator's table: RLS enabled and forced,
-- each policy's name, kind (permissive or restrictive), command, roles (by
-- name: OIDs differ between nodes) and checks.
-- Citus copies policies to shards itself (and, in 13.x, without AS
-- RESTRICTIVE: the event trigger corrects that for the consent policy on
-- every node); this shows whether each shard ended up as it should.  It
-- reads the workers through new connections: run it after the change has
-- committed.  Not SECURITY DEFINER: the caller's own connections read
-- pg_policy, which everyone may read.  STRICT: NULL lists nothing.
CREATE OR REPLACE FUNCTION customer_vault.citus_check_policies(tbl regclass)
    RETURNS TABLE(shard text, node text, finding text)
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- the policies of one relation (%s: Citus puts each shard's name there)
    q constant text := $q$WITH t(id) AS (SELECT '%s'::pg_catalog.regclass)
      SELECT (SELECT c.relrowsecurity::text || '/' || c.relforcerowsecurity::text
                FROM pg_catalog.pg_class c, t WHERE c.oid OPERATOR(pg_catalog.=) t.id)
          || ' ' || COALESCE((SELECT pg_catalog.string_agg(p.polname || ':'
                || CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END
                || ':' || p.polcmd::text
                || ':' || (SELECT pg_catalog.string_agg(x.n, ',' ORDER BY x.n)
                             FROM (SELECT CASE WHEN r.r OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                                               ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.r)) END AS n
                                     FROM pg_catalog.unnest(p.polroles) r(r)) x)
                || ':' || COALESCE(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '')
                || ':' || COALESCE(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), ''), ', ' ORDER BY p.polname)
                FROM pg_catalog.pg_policy p, t WHERE p.polrelid OPERATOR(pg_catalog.=) t.id), '')$q$;
    want text;
    r record;
    rel pg_catalog.regclass;
BEGIN
    -- the quote check of each table name (below) first for the table itself
    IF pg_catalog.strpos(tbl::text, '''') OPERATOR(pg_catalog.>) 0
       OR pg_catalog.strpos(tbl::text, pg_catalog.chr(92)) OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION 'table name % contains a quote or a backslash', pg_catalog.quote_literal(tbl::text)
            USING ERRCODE = '22023',
                  HINT = 'Rename the table to check its placements, or compare their policies with run_command_on_placements.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'extension "citus" is not installed in this database'
            USING ERRCODE = '55000';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid OPERATOR(pg_catalog.=) tbl) THEN
        RAISE EXCEPTION '% is not a Citus table', tbl
            USING ERRCODE = '55000';
    END IF;
    -- the table, then its partitions and inheritance children at any depth
    -- (their shards are shards of their own, with the policies copied there)
    FOR rel IN SELECT tbl
               UNION ALL
               (WITH RECURSIVE d(rel) AS (
                    SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent OPERATOR(pg_catalog.=) tbl
                    UNION
                    SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent OPERATOR(pg_catalog.=) d.rel)
                SELECT d.rel::pg_catalog.regclass FROM d
                 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                                WHERE p.logicalrelid OPERATOR(pg_catalog.=) d.rel)
                 ORDER BY d.rel::pg_catalog.regclass::pg_catalog.text) LOOP
        -- the name goes into the text of q, inside a literal, where Citus puts each
        -- shard's name as it is: a quote or backslash in it could end the literal
        -- (a table owner's SQL run with the caller's rights on every placement)
        IF pg_catalog.strpos(rel::text, '''') OPERATOR(pg_catalog.>) 0
           OR pg_catalog.strpos(rel::text, pg_catalog.chr(92)) OPERATOR(pg_catalog.>) 0 THEN
            RAISE EXCEPTION 'table name % contains a quote or a backslash', pg_catalog.quote_literal(rel::text)
                USING ERRCODE = '22023',
                      HINT = 'Rename the table to check its placements, or compare their policies with run_command_on_placements.';
        END IF;
        EXECUTE pg_catalog.replace(q, '%s', rel::text) INTO want;
        FOR r IN SELECT * FROM pg_catalog.run_command_on_placements(rel, q) LOOP
            -- the shard's name in the expressions' column references does not appear
            -- (pg_get_expr prints bare column names): the texts compare as they are
            IF NOT r.success THEN
                shard := rel::text || '_' || r.shardid; node := r.nodename || ':' || r.nodeport;
                finding := 'could not be read: ' || r.result;
                RETURN NEXT;
            ELSIF r.result IS DISTINCT FROM want THEN
                shard := rel::text || '_' || r.shardid; node := r.nodename || ':' || r.nodeport;
                finding := 'policies differ: expected ' || want || '; found ' || r.result;
                RETURN NEXT;
            END IF;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION customer_vault.citus_check_policies(regclass) IS
    'on a Citus coordinator: the placements of a table whose row-level security (policies, their kind, command, roles and checks) differs from the table''s; none when every shard is in order';

GRANT EXECUTE ON FUNCTION customer_vault.citus_check_policies(regclass)
    TO customer_vault_admin, customer_vault_auditor;

-- An error (0A000) when the owner of a Citus table is under FORCE ROW LEVEL
-- SECURITY on any of its shards (set by hand there: the coordinator's table
-- does not show it), asked on every placement as the owner (src/citus.c).
-- The purge calls it for each table before its first batch; forget_subject
-- and export_subject check in C.  Not STRICT: a NULL table checks nothing, a
-- NULL name is named generically.  Not SECURITY DEFINER: for callers that may
-- read or change the table (the purge's), checked in C.
CREATE OR REPLACE FUNCTION customer_vault._citus_refuse_forced_shards(tbl regclass, what text) RETURNS void
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'cv_citus_refuse_forced_shards';
COMMENT ON FUNCTION customer_vault._citus_refuse_forced_shards(regclass, text) IS
    'internal: an error (0A000) when a Citus table''s owner is under FORCE ROW LEVEL SECURITY on one of its shards, nothing otherwise';

GRANT EXECUTE ON FUNCTION customer_vault._citus_refuse_forced_shards(regclass, text) TO customer_vault_admin;
