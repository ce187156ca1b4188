--@ schema

---------------------------------------------------------------------------
-- The declared privilege matrix (part REPORT).  Every grant the extension's
-- scripts make on its own objects is the declaration: this file runs first
-- (it remembers grants made outside the scripts before an update touches
-- any ACL), 99_privilege_matrix.sql runs last and records what the scripts
-- granted.  privilege_drift() compares the grants of now with it.  Nobody
-- edits the declaration by hand: a new function's GRANTs in sql/src are its
-- declaration, and the tests assert that the drift is empty after a fresh
-- install and after every update.
---------------------------------------------------------------------------

-- one row per grant the install (or the last update) made: object as
-- '<kind> <qualified name>', grantee role (PUBLIC for everybody), privilege
-- (with ' WITH GRANT OPTION' when grantable); the owner's own rights are left
-- out.  Rebuilt by every CREATE EXTENSION and ALTER EXTENSION UPDATE, so not
-- dumped (a restore's CREATE EXTENSION makes it again).
CREATE TABLE customer_vault.privilege_matrix (
    object    text NOT NULL,
    role      name NOT NULL,
    privilege text NOT NULL,
    CONSTRAINT privilege_matrix_pkey PRIMARY KEY (object, role, privilege)
);
-- scratch space of the install and update scripts only (empty otherwise):
-- grants that were not declared when an update started stay undeclared
CREATE TABLE customer_vault._privilege_carry (
    object    text NOT NULL,
    role      name NOT NULL,
    privilege text NOT NULL
);
--@ code
COMMENT ON TABLE customer_vault.privilege_matrix IS
    'the declared privileges on the extension''s objects: every grant its install and update scripts made (owner''s rights left out); privilege_drift() shows what differs';
COMMENT ON TABLE customer_vault._privilege_carry IS
    'internal: grants found undeclared when an update started (empty outside the install and update scripts)';

-- Every grant on the extension's objects (its members, and anything else in
-- its schema): functions and procedures, tables, views, sequences and their
-- columns, the schema, the types.  as_installed = the grants the extension's
-- scripts recorded (pg_init_privs) instead of the current ones, for members
-- only.  A NULL ACL is the kind's default (PUBLIC may EXECUTE a function,
-- use a type).  Object names are qualified (search_path pinned).  The
-- schema is not a member, but CREATE EXTENSION makes it and the scripts
-- grant on it (00_schema.sql), recorded in pg_init_privs like a member's.
CREATE OR REPLACE FUNCTION customer_vault._granted_privileges(as_installed boolean DEFAULT false)
    RETURNS TABLE(object text, role name, privilege text, by_default boolean)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH ext AS (
        SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'customer_vault'
    ), members AS (
        SELECT d.classid, d.objid FROM pg_catalog.pg_depend d, ext
         WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.refobjid = ext.oid
           AND d.deptype = 'e'
    ), nsp AS (
        SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = 'customer_vault'
    ), objs AS (
        SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass AS classid, p.oid AS objid, 0 AS objsubid,
               CASE p.prokind WHEN 'p' THEN 'procedure ' ELSE 'function ' END
                   OPERATOR(pg_catalog.||) p.oid::pg_catalog.regprocedure::text AS object,
               p.proowner AS owner, 'f'::"char" AS kind, p.proacl AS acl, p.pronamespace AS nspoid,
               p.prosecdef AS secdef
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace IN (SELECT oid FROM nsp)
            OR p.oid IN (SELECT m.objid FROM members m WHERE m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass)
        UNION ALL
        SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0,
               CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' WHEN 'S' THEN 'sequence '
                              WHEN 'f' THEN 'foreign table ' ELSE 'table ' END
                   OPERATOR(pg_catalog.||) c.oid::pg_catalog.regclass::text,
               c.relowner, CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relacl, c.relnamespace, false
          FROM pg_catalog.pg_class c
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
           AND (c.relnamespace IN (SELECT oid FROM nsp)
                OR c.oid IN (SELECT m.objid FROM members m WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass))
        UNION ALL
        SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, a.attnum,
               'column ' OPERATOR(pg_catalog.||) c.oid::pg_catalog.regclass::text OPERATOR(pg_catalog.||) '.'
                   OPERATOR(pg_catalog.||) pg_catalog.quote_ident(a.attname),
               c.relowner, NULL::"char", a.attacl, c.relnamespace, false
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND (c.relnamespace IN (SELECT oid FROM nsp)
                OR c.oid IN (SELECT m.objid FROM members m WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass))
        UNION ALL
        SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, n.oid, 0,
               'schema ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(n.nspname), n.nspowner, 'n'::"char", n.nspacl,
               0::oid, false
          FROM pg_catalog.pg_namespace n WHERE n.oid IN (SELECT oid FROM nsp)
        UNION ALL
        -- types with privileges of their own (not array types nor table rowtypes)
        SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, 0,
               'type ' OPERATOR(pg_catalog.||) t.oid::pg_catalog.regtype::text, t.typowner, 'T'::"char", t.typacl,
               t.typnamespace, false
          FROM pg_catalog.pg_type t
         WHERE (t.typnamespace IN (SELECT oid FROM nsp)
                OR t.oid IN (SELECT m.objid FROM members m WHERE m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass))
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
           AND (t.typrelid = 0
                OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
    ), acls AS (
        SELECT o.object, o.owner, o.kind, o.nspoid,
               CASE WHEN as_installed THEN
                        COALESCE((SELECT i.initprivs FROM pg_catalog.pg_init_privs i
                                   WHERE i.classoid = o.classid AND i.objoid = o.objid AND i.objsubid = o.objsubid),
                                 CASE WHEN o.kind IS NOT NULL THEN pg_catalog.acldefault(o.kind, o.owner) END)
                    ELSE COALESCE(o.acl, CASE WHEN o.kind IS NOT NULL THEN pg_catalog.acldefault(o.kind, o.owner) END)
               END AS acl
          FROM objs o
         WHERE NOT as_installed
            OR EXISTS (SELECT 1 FROM members m WHERE m.classid = o.classid AND m.objid = o.objid)
            OR o.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass   -- made by CREATE EXTENSION
    )
    SELECT DISTINCT a.object,
           CASE WHEN x.grantee = 0 THEN 'PUBLIC'::name
                ELSE (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = x.grantee) END,
           x.privilege_type OPERATOR(pg_catalog.||) CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
           -- the owner's default privileges (ALTER DEFAULT PRIVILEGES, for
           -- all schemas or for the object's) grant this beyond the built-in default
           a.kind IS NOT NULL AND EXISTS (
               SELECT 1 FROM pg_catalog.pg_default_acl da, pg_catalog.aclexplode(da.defaclacl) y
                WHERE da.defaclrole = a.owner AND da.defaclnamespace IN (0, a.nspoid)
                  AND da.defaclobjtype = CASE a.kind WHEN 's' THEN 'S' ELSE a.kind END
                  AND y.grantee = x.grantee AND y.privilege_type = x.privilege_type
                  AND y.is_grantable = x.is_grantable
                  AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(pg_catalog.acldefault(a.kind, a.owner)) z
                                   WHERE z.grantee = y.grantee AND z.privilege_type = y.privilege_type
                                     AND z.is_grantable = y.is_grantable))
      FROM acls a, pg_catalog.aclexplode(a.acl) x
     WHERE x.grantee <> a.owner
    UNION
    -- an object of the extension owned by another role than the extension's
    -- owner (never declared: the scripts create everything as the owner)
    SELECT o.object, r.rolname, CASE WHEN o.secdef THEN 'OWNER, SECURITY DEFINER' ELSE 'OWNER' END, false
      FROM objs o
      JOIN pg_catalog.pg_roles r ON r.oid = o.owner
     WHERE NOT as_installed AND o.objsubid = 0
       AND o.owner <> (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'customer_vault')
$$;
COMMENT ON FUNCTION customer_vault._granted_privileges(boolean) IS
    'internal: every grant on the extension''s objects (members and anything in its schema) but the owner''s own, by_default when the owner''s default privileges grant it; as_installed = as the extension''s scripts left them; and (not as_installed) an OWNER row per object not owned by the extension''s owner';

-- Before an update changes any ACL: grants that are not declared now (not
-- in privilege_matrix, or, updating from a version without one, not made by
-- the extension's scripts) are remembered, so that 99_privilege_matrix.sql
-- keeps them out of the new declaration and privilege_drift() goes on
-- showing them.  On a fresh install this finds nothing.
DELETE FROM customer_vault._privilege_carry;
INSERT INTO customer_vault._privilege_carry
    (SELECT g.object, g.role, g.privilege FROM customer_vault._granted_privileges(false) g
     EXCEPT
     SELECT d.object, d.role, d.privilege FROM customer_vault.privilege_matrix d)
    EXCEPT
    SELECT i.object, i.role, i.privilege FROM customer_vault._granted_privileges(true) i
     WHERE NOT EXISTS (SELECT 1 FROM customer_vault.privilege_matrix);
