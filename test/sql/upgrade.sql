-- Every earlier version updates to the current one with ALTER EXTENSION
-- UPDATE: data encrypted before the update (explicit values and a protected
-- column) still decrypts after it, the protect trigger and a consent policy
-- made by the old version keep working, and the updated extension has exactly
-- the objects, definitions, grants and comments of a fresh install.
\set VERBOSITY terse
SELECT count(*) AS versions_without_path
  FROM pg_extension_update_paths('customer_vault') p
 WHERE p.target = (SELECT default_version FROM pg_available_extensions WHERE name = 'customer_vault')
   AND p.source <> p.target AND p.path IS NULL;
\set orig_db :DBNAME
DROP DATABASE IF EXISTS regress_cv_upgrade;
CREATE DATABASE regress_cv_upgrade;
\c regress_cv_upgrade
SET client_min_messages = warning;
CREATE EXTENSION pgcrypto;
RESET client_min_messages;
CREATE TABLE upgrade_log (from_version text, to_version text, readable bigint, protected_readable bigint,
                          inserted_sealed boolean, catalog_differences bigint);
-- Everything that defines the extension's objects, one row per member object.
CREATE TABLE fresh_catalog (ident text, def text);
CREATE FUNCTION public.cv_catalog() RETURNS TABLE (ident text, def text)
LANGUAGE sql AS $$
    SELECT pg_describe_object(d.classid, d.objid, 0),
           concat_ws(' | ',
             CASE d.classid
               WHEN 'pg_proc'::regclass THEN
                 (SELECT concat_ws(' ', pg_get_functiondef(p.oid), p.proacl::text,
                                   obj_description(p.oid, 'pg_proc'))
                    FROM pg_proc p WHERE p.oid = d.objid)
               WHEN 'pg_class'::regclass THEN
                 (SELECT concat_ws(' ', c.relkind, c.relacl::text, c.relrowsecurity, c.relforcerowsecurity,
                                   obj_description(c.oid, 'pg_class'),
                                   CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END,
                                   (SELECT string_agg(concat_ws(':', a.attname, format_type(a.atttypid, a.atttypmod),
                                                                a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
                                                                a.attcollation, a.attacl::text), ',' ORDER BY a.attnum)
                                      FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                                   (SELECT string_agg(conname || ':' || pg_get_constraintdef(oid), ',' ORDER BY conname)
                                      FROM pg_constraint WHERE conrelid = c.oid),
                                   (SELECT string_agg(pg_get_indexdef(indexrelid), ',' ORDER BY 1)
                                      FROM pg_index WHERE indrelid = c.oid),
                                   (SELECT string_agg(pg_get_triggerdef(t.oid) || ':' || t.tgenabled::text, ',' ORDER BY t.tgname)
                                      FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
                                   (SELECT string_agg(concat_ws(':', polname, polcmd, polpermissive,
                                                                pg_get_expr(polqual, polrelid)), ',' ORDER BY polname)
                                      FROM pg_policy WHERE polrelid = c.oid),
                                   (SELECT string_agg(concat_ws(':', r.rulename, pg_get_ruledef(r.oid)), ',' ORDER BY 1)
                                      FROM pg_rewrite r WHERE r.ev_class = c.oid AND c.relkind <> 'v'))
                    FROM pg_class c WHERE c.oid = d.objid)
               WHEN 'pg_type'::regclass THEN
                 (SELECT concat_ws(' ', t.typinput, t.typoutput, t.typreceive, t.typsend, t.typlen,
                                   t.typalign, t.typstorage, obj_description(t.oid, 'pg_type'))
                    FROM pg_type t WHERE t.oid = d.objid)
               WHEN 'pg_event_trigger'::regclass THEN
                 (SELECT concat_ws(' ', e.evtevent, e.evtfoid::regproc, e.evtenabled, e.evttags::text)
                    FROM pg_event_trigger e WHERE e.oid = d.objid)
             END,
             (SELECT string_agg(i.privtype::text || ':' || i.initprivs::text, ',')
                FROM pg_init_privs i WHERE i.classoid = d.classid AND i.objoid = d.objid AND i.objsubid = 0))
      FROM pg_depend d
     WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'customer_vault')
$$;
-- a fresh install of the current version
SET client_min_messages = warning;
CREATE EXTENSION customer_vault;
RESET client_min_messages;
INSERT INTO fresh_catalog SELECT * FROM public.cv_catalog();
-- (types left out: from PostgreSQL 17 on, rowtypes and array types are members too)
SELECT count(*) > 50 AS fresh_has_members FROM fresh_catalog WHERE ident NOT LIKE 'type %';
DROP EXTENSION customer_vault;
DROP SCHEMA customer_vault;
DO $$
DECLARE
    v text;
    target text := (SELECT default_version FROM pg_available_extensions WHERE name = 'customer_vault');
BEGIN
    FOR v IN SELECT version FROM pg_available_extension_versions
              WHERE name = 'customer_vault' AND version <> target ORDER BY string_to_array(version, '.')::int[] LOOP
        EXECUTE format('CREATE EXTENSION customer_vault VERSION %L', v);
        PERFORM customer_vault.create_key('upgrade_key');
        CREATE TABLE up_t AS SELECT g AS id, customer_vault.encrypt('value ' || g, 'upgrade_key', g::text) AS val
          FROM generate_series(1, 50) g;
        CREATE TABLE up_p (id bigint PRIMARY KEY, email text);
        INSERT INTO up_p SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 20) g;
        PERFORM customer_vault.protect_column('up_p', 'email', 'upgrade_key', context_column => 'id');
        PERFORM customer_vault.define_purpose('upgrade_purpose', 'contract');
        PERFORM customer_vault.enable_consent_policy('up_p', 'id', 'upgrade_purpose');
        ALTER EXTENSION customer_vault UPDATE;
        INSERT INTO up_p VALUES (21, 'user21@example.com');
        INSERT INTO upgrade_log
        SELECT v, (SELECT extversion FROM pg_extension WHERE extname = 'customer_vault'),
               (SELECT count(*) FILTER (WHERE customer_vault.decrypt(val, id::text) = 'value ' || id) FROM up_t),
               (SELECT count(*) FILTER (WHERE email = 'user' || id || '@example.com') FROM up_p_decrypted),
               (SELECT customer_vault.is_sealed(email) FROM up_p WHERE id = 21),
               (SELECT count(*) FROM ((SELECT * FROM fresh_catalog EXCEPT SELECT * FROM public.cv_catalog())
                                      UNION ALL
                                      (SELECT * FROM public.cv_catalog() EXCEPT SELECT * FROM fresh_catalog)) x);
        IF (SELECT catalog_differences FROM upgrade_log WHERE from_version = v) > 0 THEN
            RAISE NOTICE 'after the update from %, differs from a fresh install: %', v,
                (SELECT string_agg(ident, '; ' ORDER BY ident)
                   FROM ((SELECT * FROM fresh_catalog EXCEPT SELECT * FROM public.cv_catalog())
                          UNION (SELECT * FROM public.cv_catalog() EXCEPT SELECT * FROM fresh_catalog)) x);
        END IF;
        DROP TABLE up_t, up_p CASCADE;
        DROP EXTENSION customer_vault;
        DROP SCHEMA customer_vault;
    END LOOP;
    IF (SELECT count(*) FROM upgrade_log) = 0 THEN
        RAISE EXCEPTION 'no version was tested';
    END IF;
END $$;
SELECT from_version,
       to_version = (SELECT default_version FROM pg_available_extensions WHERE name = 'customer_vault') AS reached_current,
       readable, protected_readable, inserted_sealed, catalog_differences
  FROM upgrade_log ORDER BY from_version;
\c :orig_db
DROP DATABASE regress_cv_upgrade;
