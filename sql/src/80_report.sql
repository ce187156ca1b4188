--@ code

---------------------------------------------------------------------------
-- The compliance report and the privilege drift (part REPORT).
--
-- compliance_report() runs as the extension's owner (SECURITY DEFINER):
-- it reads what only a superuser may read (password hashes in pg_authid,
-- pg_hba_file_rules, the preload settings) and returns only names and
-- findings, never a hash, a value or a subject.  It runs no code of anyone
-- but the extension's (catalogs, the extension's tables and functions).
-- Checks of parts that land separately (receipts, access log, stale roles,
-- the subject registry) run when their functions exist.
---------------------------------------------------------------------------

-- the declared grants against the current ones (see 00_declared_privileges.sql),
-- and what the declaration cannot hold, all undeclared (expected false):
-- memberships of the extension's roles in any role ('role <granted role>',
-- the member, MEMBER), grants on its settings ('parameter customer_vault.x'),
-- objects owned by another role than the extension's owner (OWNER), and
-- default privileges that would grant on objects the extension creates
-- ('default privileges for role <r> [in schema customer_vault]': any entry
-- for the schema, and the extension owner's entries that add to the built-in
-- default; privilege '<privilege> ON <kind>')
CREATE OR REPLACE FUNCTION customer_vault.privilege_drift()
    RETURNS TABLE(object text, role name, privilege text, expected boolean, actual boolean)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
    WITH ext_roles(rolname) AS (
        VALUES ('customer_vault_admin'::name), ('customer_vault_writer'), ('customer_vault_reader'),
               ('customer_vault_auditor'), ('customer_vault_masked_reader'), ('customer_vault_mask_owner')
    ), drift AS (
        SELECT COALESCE(d.object, a.object) AS object, COALESCE(d.role, a.role) AS role,
               COALESCE(d.privilege, a.privilege) AS privilege,
               d.object IS NOT NULL AS expected, a.object IS NOT NULL AS actual
          FROM customer_vault.privilege_matrix d
          FULL JOIN customer_vault._granted_privileges(false) a
            ON a.object = d.object AND a.role = d.role AND a.privilege = d.privilege
         WHERE d.object IS NULL OR a.object IS NULL
        UNION
        SELECT 'role ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(g.rolname), m.rolname,
               'MEMBER' OPERATOR(pg_catalog.||) CASE WHEN am.admin_option THEN ' WITH ADMIN OPTION' ELSE '' END,
               false, true
          FROM pg_catalog.pg_auth_members am
          JOIN pg_catalog.pg_roles m ON m.oid = am.member
          JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
         WHERE m.rolname IN (SELECT e.rolname FROM ext_roles e)
        UNION
        SELECT 'parameter ' OPERATOR(pg_catalog.||) pa.parname,
               CASE WHEN x.grantee = 0 THEN 'PUBLIC'::name
                    ELSE (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = x.grantee) END,
               x.privilege_type OPERATOR(pg_catalog.||) CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
               false, true
          FROM pg_catalog.pg_parameter_acl pa, pg_catalog.aclexplode(pa.paracl) x
         WHERE pa.parname LIKE 'customer\_vault.%'
           AND x.grantee <> 10            -- the bootstrap superuser's own entries
        UNION
        SELECT 'default privileges for role ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(o.rolname)
                   OPERATOR(pg_catalog.||) CASE WHEN da.defaclnamespace = 0 THEN ''
                                                ELSE ' in schema customer_vault' END,
               CASE WHEN x.grantee = 0 THEN 'PUBLIC'::name
                    ELSE (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = x.grantee) END,
               x.privilege_type OPERATOR(pg_catalog.||) ' ON '
                   OPERATOR(pg_catalog.||) CASE da.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
                                                WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END
                   OPERATOR(pg_catalog.||) CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
               false, true
          FROM pg_catalog.pg_default_acl da
          JOIN pg_catalog.pg_roles o ON o.oid = da.defaclrole,
               pg_catalog.aclexplode(da.defaclacl) x
         WHERE (da.defaclnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = 'customer_vault')
                OR (da.defaclnamespace = 0
                    AND da.defaclrole = (SELECT e.extowner FROM pg_catalog.pg_extension e
                                          WHERE e.extname = 'customer_vault')))
           AND x.grantee <> da.defaclrole
           AND (da.defaclnamespace <> 0
                OR NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(pg_catalog.acldefault(
                                   CASE da.defaclobjtype WHEN 'S' THEN 's' ELSE da.defaclobjtype END, da.defaclrole)) z
                            WHERE z.grantee = x.grantee AND z.privilege_type = x.privilege_type
                              AND z.is_grantable = x.is_grantable))
    )
    SELECT d.object, d.role, d.privilege, d.expected, d.actual FROM drift d ORDER BY 1, 2, 3
$$;
COMMENT ON FUNCTION customer_vault.privilege_drift() IS
    'grants on the extension''s objects that differ from the declared privilege_matrix (expected = declared, actual = granted now), and, all undeclared: memberships of the extension''s roles, grants on customer_vault.* parameters, objects not owned by the extension''s owner, default privileges that would grant on the extension''s objects';

-- The settings that copy statement texts or bind values into the server
-- log or statistics, as one finding each (name, severity, finding, hint).
-- Reads the session's values (what the caller's statements would do), and
-- ALTER ROLE / ALTER DATABASE settings of the same names.
CREATE OR REPLACE FUNCTION customer_vault._report_settings()
    RETURNS TABLE(severity text, object text, finding text, hint text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
#variable_conflict use_column
DECLARE
    logs_statements boolean;
    lib text;
    src text;
    loaded text;
    below_error constant text[] := ARRAY['debug5', 'debug4', 'debug3', 'debug2', 'debug1', 'info', 'notice',
                                         'warning'];
    min_duration integer;
    min_duration_sample integer;
    sample_rate float8;
    param_length integer;
    param_length_on_error integer;
BEGIN
    -- integer settings in their base unit (current_setting() adds units)
    SELECT max(s.setting) FILTER (WHERE s.name = 'log_min_duration_statement')::integer,
           max(s.setting) FILTER (WHERE s.name = 'log_min_duration_sample')::integer,
           max(s.setting) FILTER (WHERE s.name = 'log_statement_sample_rate')::float8,
           max(s.setting) FILTER (WHERE s.name = 'log_parameter_max_length')::integer,
           max(s.setting) FILTER (WHERE s.name = 'log_parameter_max_length_on_error')::integer
      INTO min_duration, min_duration_sample, sample_rate, param_length, param_length_on_error
      FROM pg_catalog.pg_settings s
     WHERE s.name IN ('log_min_duration_statement', 'log_min_duration_sample', 'log_statement_sample_rate',
                      'log_parameter_max_length', 'log_parameter_max_length_on_error');
    IF pg_catalog.current_setting('log_statement') IN ('all', 'mod') THEN
        RETURN QUERY SELECT 'medium', 'setting log_statement',
            pg_catalog.format('log_statement = %s writes the text of every %sstatement, with the values it carries, to the server log',
                              pg_catalog.current_setting('log_statement'),
                              CASE pg_catalog.current_setting('log_statement') WHEN 'all' THEN '' ELSE 'data-changing ' END),
            'Set log_statement = ''ddl'' or ''none''; use pgaudit or the access log for who did what.';
    END IF;
    IF min_duration >= 0 THEN
        RETURN QUERY SELECT 'medium', 'setting log_min_duration_statement',
            'log_min_duration_statement >= 0 writes the text of slow statements, with the values they carry, to the server log',
            'Set log_min_duration_statement = -1, or send only durations (log_duration) without statement texts.';
    END IF;
    IF min_duration_sample >= 0
       AND sample_rate > 0 THEN
        RETURN QUERY SELECT 'medium', 'setting log_min_duration_sample',
            'log_min_duration_sample >= 0 writes the text of sampled statements, with the values they carry, to the server log',
            'Set log_min_duration_sample = -1.';
    END IF;
    logs_statements := pg_catalog.current_setting('log_statement') IN ('all', 'mod')
        OR min_duration >= 0
        OR (min_duration_sample >= 0
            AND sample_rate > 0);
    IF logs_statements AND param_length <> 0 THEN
        RETURN QUERY SELECT 'medium', 'setting log_parameter_max_length',
            'log_parameter_max_length <> 0 adds the bind parameters (the values) of logged statements to the server log',
            'Set log_parameter_max_length = 0.';
    END IF;
    IF param_length_on_error <> 0 THEN
        RETURN QUERY SELECT 'medium', 'setting log_parameter_max_length_on_error',
            'log_parameter_max_length_on_error <> 0 adds the bind parameters (the values) of failing statements to the server log',
            'Set log_parameter_max_length_on_error = 0.';
    END IF;
    IF pg_catalog.lower(pg_catalog.current_setting('log_min_error_statement')) OPERATOR(pg_catalog.=) ANY (below_error) THEN
        RETURN QUERY SELECT 'medium', 'setting log_min_error_statement',
            pg_catalog.format('log_min_error_statement = %s writes the text of statements that raise a mere warning or notice, with the values they carry, to the server log (pg_stat_activity keeps the first %s of each statement)',
                              pg_catalog.lower(pg_catalog.current_setting('log_min_error_statement')),
                              pg_catalog.current_setting('track_activity_query_size')),
            'Set log_min_error_statement = error (the default) or higher.';
    END IF;
    -- statistics and plan logging: loaded at start, per session, or in this backend
    FOREACH lib IN ARRAY ARRAY['pg_stat_statements', 'auto_explain'] LOOP
        loaded := NULL;
        FOREACH src IN ARRAY ARRAY['shared_preload_libraries', 'session_preload_libraries', 'local_preload_libraries'] LOOP
            IF lib OPERATOR(pg_catalog.=) ANY (
                   SELECT pg_catalog.regexp_replace(pg_catalog.btrim(l, ' "'), '^.*/|\.so$', '', 'g')
                     FROM pg_catalog.unnest(pg_catalog.string_to_array(pg_catalog.current_setting(src), ',')) l) THEN
                loaded := COALESCE(loaded || ', ', '') || src;
            END IF;
        END LOOP;
        -- a library loaded into this backend defines its settings (a mere
        -- placeholder is of type string)
        IF loaded IS NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_settings s
                                       WHERE s.name = CASE lib WHEN 'pg_stat_statements' THEN 'pg_stat_statements.max'
                                                          ELSE 'auto_explain.log_min_duration' END
                                         AND s.vartype = 'integer') THEN
            loaded := 'LOAD';
        END IF;
        IF loaded IS NOT NULL THEN
            RETURN QUERY SELECT 'medium', 'library ' || lib,
                pg_catalog.format('%s is loaded (%s): %s', lib, loaded,
                    CASE lib WHEN 'pg_stat_statements'
                        THEN 'it keeps statement texts, the literal values of utility statements included, readable by pg_read_all_stats'
                        ELSE 'it writes statement texts and plans, with the values they carry, to the server log' END),
                CASE lib WHEN 'pg_stat_statements'
                    THEN 'Remove it from the preload settings, or pass values only as bind parameters and set pg_stat_statements.track_utility = off.'
                    ELSE 'Remove it from the preload settings (or set auto_explain.log_min_duration = -1).' END;
        END IF;
    END LOOP;
    -- the same leaks set for a role or a database (they apply to its sessions)
    RETURN QUERY
    SELECT 'medium',
           pg_catalog.format('setting %s for %s', pg_catalog.split_part(cfg, '=', 1),
                             CASE WHEN s.setrole = 0 AND s.setdatabase = 0 THEN 'everybody'
                                  WHEN s.setrole = 0 THEN 'database ' || pg_catalog.quote_ident(d.datname)
                                  WHEN s.setdatabase = 0 THEN 'role ' || pg_catalog.quote_ident(r.rolname)
                                  ELSE 'role ' || pg_catalog.quote_ident(r.rolname) || ' in database '
                                       || pg_catalog.quote_ident(d.datname) END),
           pg_catalog.format('%s is set by ALTER %s ... SET: it copies statement texts or values into the server log',
                             cfg, CASE WHEN s.setrole = 0 THEN 'DATABASE' ELSE 'ROLE' END),
           pg_catalog.format('ALTER %s ... RESET %s.', CASE WHEN s.setrole = 0 THEN 'DATABASE' ELSE 'ROLE' END,
                             pg_catalog.split_part(cfg, '=', 1))
      FROM pg_catalog.pg_db_role_setting s
      CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) cfg
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
      LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
     WHERE (s.setdatabase = 0 OR s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
       AND (pg_catalog.lower(cfg) ~ '^log_statement=(all|mod)$'
            OR pg_catalog.lower(cfg) ~ '^log_min_duration_(statement|sample)=[0-9]'
            OR pg_catalog.lower(cfg) ~ '^log_parameter_max_length_on_error=([1-9]|-)'
            OR pg_catalog.lower(cfg) ~ '^log_min_error_statement=(debug|info|notice|warning)'
            OR pg_catalog.lower(cfg) ~ '^(session|local)_preload_libraries=.*(pg_stat_statements|auto_explain)');
END
$$;
COMMENT ON FUNCTION customer_vault._report_settings() IS
    'internal: compliance_report''s findings on settings that copy statement texts or values into logs or statistics';

-- The columns holding personal data: labelled (SECURITY LABEL FOR
-- customer_vault) or protected by protect_column; encrypted = of an
-- encrypted type (or an array of one) or protected.
CREATE OR REPLACE FUNCTION customer_vault._report_pii()
    RETURNS TABLE(relid oid, attname name, label text, encrypted boolean)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid, a.attname, COALESCE(l.label, 'pii'),
           a.atttypid IN (SELECT t.oid FROM pg_catalog.pg_type t
                           WHERE t.oid IN ('customer_vault.encrypted_text'::pg_catalog.regtype,
                                           'customer_vault.encrypted_bytea'::pg_catalog.regtype)
                              OR t.typelem IN ('customer_vault.encrypted_text'::pg_catalog.regtype,
                                               'customer_vault.encrypted_bytea'::pg_catalog.regtype))
           OR EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                       WHERE p.relid::oid = c.oid AND p.column_name = a.attname)
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_catalog.pg_seclabel l ON l.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
           AND l.objoid = c.oid AND l.objsubid = a.attnum AND l.provider = 'customer_vault'
     WHERE c.relkind IN ('r', 'p', 'f') AND c.relpersistence <> 't'
       AND (l.label IS NOT NULL
            OR EXISTS (SELECT 1 FROM customer_vault.protected_columns p
                        WHERE p.relid::oid = c.oid AND p.column_name = a.attname))
$$;
COMMENT ON FUNCTION customer_vault._report_pii() IS
    'internal: the labelled or protected columns of every table, and whether each is encrypted';

-- whether a pg_hba.conf address and netmask cover loopback addresses only
-- (127.0.0.0/8, ::1): connections from this machine, as local ones
CREATE OR REPLACE FUNCTION customer_vault._loopback_only(address text, netmask text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN address = 'samehost' THEN true
        WHEN address IS NULL OR netmask IS NULL OR address !~ '^([0-9.]+|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)$'
             OR netmask !~ '^([0-9.]+|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)$' THEN false
        ELSE (SELECT (lo <<= '127.0.0.0/8'::inet AND hi <<= '127.0.0.0/8'::inet)
                     OR (lo = '::1'::inet AND hi = '::1'::inet)
                FROM (SELECT pg_catalog.host(address::inet & netmask::inet)::inet AS lo,
                             pg_catalog.host(address::inet | ~ netmask::inet)::inet AS hi) r)
    END
$$;
COMMENT ON FUNCTION customer_vault._loopback_only(text, text) IS
    'internal: whether a pg_hba.conf address and netmask cover loopback addresses only';

-- The findings on masked readers (members of customer_vault_masked_reader,
-- but superusers and the extension's roles): direct SELECT on plaintext
-- labelled columns, blind index columns or ciphertext (which the masked view
-- does not need), write or seal rights next to keyed rules (whose masks are
-- then withheld from them), the reader role as well; and rules that show a
-- special category, or that have no view.
CREATE OR REPLACE FUNCTION customer_vault._report_masking()
    RETURNS TABLE(severity text, object text, finding text, hint text)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
    WITH masked AS (
        SELECT r.oid, r.rolname FROM pg_catalog.pg_roles r
         WHERE pg_catalog.pg_has_role(r.oid, 'customer_vault_masked_reader', 'MEMBER')
           AND NOT r.rolsuper AND r.rolname::text NOT LIKE 'customer\_vault\_%'
    ), cols AS (
        -- plaintext labelled columns, blind index columns, protected (ciphertext) columns
        SELECT p.relid, p.attname, 'plain' AS kind FROM customer_vault._report_pii() p WHERE NOT p.encrypted
        UNION ALL
        SELECT pc.relid::oid, pc.blind_index_column, 'bidx' FROM customer_vault.protected_columns pc
         WHERE pc.blind_index_column IS NOT NULL
        UNION ALL
        SELECT pc.relid::oid, pc.column_name, 'sealed' FROM customer_vault.protected_columns pc
    ), direct AS (
        SELECT m.rolname, c.relid, c.kind,
               pg_catalog.string_agg(pg_catalog.quote_ident(c.attname), ', ' ORDER BY c.attname) AS list
          FROM masked m, cols c
         WHERE pg_catalog.has_column_privilege(m.oid, c.relid, c.attname::text, 'SELECT')
         GROUP BY m.rolname, c.relid, c.kind
    ), keyed AS (
        SELECT DISTINCT r.relid::oid AS relid FROM customer_vault.mask_rules r
         WHERE r.rule LIKE 'hash(%' OR r.rule LIKE 'fake(%'
    )
    SELECT CASE d.kind WHEN 'plain' THEN 'high' WHEN 'bidx' THEN 'medium' ELSE 'low' END,
           d.relid::pg_catalog.regclass::text,
           pg_catalog.format(CASE d.kind
                   WHEN 'plain' THEN 'masked reader %s may SELECT personal data stored in plaintext (%s) from the table itself: the mask protects nothing'
                   WHEN 'bidx' THEN 'masked reader %s may SELECT the blind index column (%s): grouping or comparing it shows which rows share a value'
                   ELSE 'masked reader %s may SELECT the ciphertext of protected columns (%s): its length shows the length of the plaintext' END,
               pg_catalog.quote_ident(d.rolname), d.list),
           pg_catalog.format('REVOKE SELECT ON %s FROM %s; GRANT SELECT (<key column>) ON %s TO %s: the masked view reads the table itself and needs no more.',
               d.relid::pg_catalog.regclass::text, pg_catalog.quote_ident(d.rolname),
               d.relid::pg_catalog.regclass::text, pg_catalog.quote_ident(d.rolname))
      FROM direct d
    UNION ALL
    -- as the C check (mask.c, cv_mask_can_plant): the masked reader or any
    -- role it can SET ROLE to (NOINHERIT chains too) writes the table or a
    -- partition or child at any level, or seals values
    SELECT 'medium', k.relid::pg_catalog.regclass::text,
           pg_catalog.format('masked reader %s can write this table or seal values (itself or through SET ROLE to %s) and it has hash or fake rules: the masked view withholds those masks from its sessions (NULL)',
                             pg_catalog.quote_ident(m.rolname), w.roles),
           'Keep writing and masked reading in separate login roles that cannot SET ROLE to each other (a writer''s INSERT/UPDATE and encrypt() make a dictionary of keyed masks).'
      FROM masked m, keyed k,
           LATERAL (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(x.rolname), ', ' ORDER BY x.rolname) AS roles
                      FROM pg_catalog.pg_roles x
                     WHERE pg_catalog.pg_has_role(m.oid, x.oid, 'MEMBER')
                       AND (EXISTS (SELECT 1 FROM (WITH RECURSIVE tr(rel) AS (
                                                        SELECT k.relid
                                                        UNION
                                                        SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tr ON i.inhparent = tr.rel)
                                                     SELECT tr.rel FROM tr) t
                                     WHERE pg_catalog.has_table_privilege(x.oid, t.rel, 'INSERT, UPDATE')
                                        OR pg_catalog.has_any_column_privilege(x.oid, t.rel, 'INSERT, UPDATE'))
                            OR pg_catalog.has_function_privilege(x.oid, 'customer_vault.encrypt(text, text, text)', 'EXECUTE')
                            OR pg_catalog.has_function_privilege(x.oid, 'customer_vault.encrypt(bytea, text, text)', 'EXECUTE')
                            OR pg_catalog.has_function_privilege(x.oid, 'customer_vault.encrypt_for_subject(text, text, text)', 'EXECUTE')
                            OR pg_catalog.has_function_privilege(x.oid, 'customer_vault._seal_column(text, text, text)', 'EXECUTE'))) w
     WHERE w.roles IS NOT NULL
    UNION ALL
    -- write paths the check cannot see: views and rules over the table
    SELECT 'medium', k.relid::pg_catalog.regclass::text,
           pg_catalog.format('the table has hash or fake rules and can be written through %s: whoever may write through it can read the masks of its own guesses (the masked view cannot tell)',
                             pg_catalog.string_agg(DISTINCT pg_catalog.format(CASE WHEN rw.ev_class = k.relid THEN 'rule %s' ELSE 'view %s' END,
                                                                              CASE WHEN rw.ev_class = k.relid THEN pg_catalog.quote_ident(rw.rulename::text)
                                                                                   ELSE rw.ev_class::pg_catalog.regclass::text END), ', ')),
           'Deterministic masks are equality oracles like a blind index: keep write paths of the table away from masked readers, or use a non-keyed rule.'
      FROM keyed k
      JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = k.relid
                                 AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
      JOIN pg_catalog.pg_rewrite rw ON rw.oid = d.objid
      JOIN pg_catalog.pg_class v ON v.oid = rw.ev_class
     WHERE (rw.ev_class = k.relid AND rw.ev_type <> '1')
        OR (rw.ev_class <> k.relid AND v.relkind = 'v'
            AND v.relname::text NOT IN ((SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = k.relid) || '_masked',
                                        (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = k.relid) || '_decrypted'))
     GROUP BY k.relid
    UNION ALL
    -- keyed masks withheld from everybody: policies on a table of an owner that is not trusted
    SELECT 'low', k.relid::pg_catalog.regclass::text,
           'the table has hash or fake rules and row-level security policies, and its owner is not an admin: the masked view withholds those masks (NULL), since a policy runs the owner''s code as the masked reader',
           'Give the table to a member of customer_vault_admin, or drop its policies, for masked readers to see keyed masks.'
      FROM keyed k JOIN pg_catalog.pg_class c ON c.oid = k.relid
      JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
     WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = k.relid)
       AND NOT o.rolsuper AND NOT pg_catalog.pg_has_role(o.oid, 'customer_vault_admin', 'USAGE')
       AND o.oid <> (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'customer_vault')
    UNION ALL
    SELECT 'high', 'role ' || pg_catalog.quote_ident(r.rolname),
           'a role is a member of customer_vault_mask_owner, which reads every masked table as it is',
           pg_catalog.format('REVOKE customer_vault_mask_owner FROM %s; nobody is a member of it.', pg_catalog.quote_ident(r.rolname))
      FROM pg_catalog.pg_auth_members am
      JOIN pg_catalog.pg_roles r ON r.oid = am.member
     WHERE am.roleid = (SELECT o.oid FROM pg_catalog.pg_roles o WHERE o.rolname = 'customer_vault_mask_owner')
    UNION ALL
    SELECT 'high', 'role customer_vault_mask_owner',
           'the owner of the masked views can log in or bypasses row-level security: whoever logs in as it reads every masked table as it is',
           'ALTER ROLE customer_vault_mask_owner NOLOGIN NOBYPASSRLS NOSUPERUSER PASSWORD NULL;'
      FROM pg_catalog.pg_roles o
     WHERE o.rolname = 'customer_vault_mask_owner' AND (o.rolcanlogin OR o.rolbypassrls OR o.rolsuper)
    UNION ALL
    SELECT 'medium', 'role ' || pg_catalog.quote_ident(m.rolname),
           'a role is both a masked reader and a reader (customer_vault_reader): it decrypts, the masks limit nothing',
           pg_catalog.format('REVOKE customer_vault_reader FROM %s, or customer_vault_masked_reader if it needs plaintext.',
                             pg_catalog.quote_ident(m.rolname))
      FROM masked m
     WHERE pg_catalog.pg_has_role(m.oid, 'customer_vault_reader', 'MEMBER')
    UNION ALL
    SELECT 'medium', r.relid::pg_catalog.regclass::text || '.' || pg_catalog.quote_ident(r.column_name),
           pg_catalog.format('special-category data (pii:special) is shown to masked readers by the rule %s', r.rule),
           pg_catalog.format('Withhold it: SELECT customer_vault.mask_column(%L, %L, ''null'').',
                             r.relid::pg_catalog.regclass::text, r.column_name)
      FROM customer_vault.mask_rules r
      JOIN pg_catalog.pg_attribute a ON a.attrelid = r.relid AND a.attname = r.column_name
     WHERE r.rule <> 'null' AND customer_vault._column_label(r.relid, a.attnum) = 'pii:special'
    UNION ALL
    SELECT 'low', t.relid::pg_catalog.regclass::text,
           'the table has masking rules but no masked view (a change it could not follow dropped it, or it predates 0.5.0): masked readers see nothing of it',
           pg_catalog.format('Make it again: SELECT customer_vault.mask_column(%L, <column>, <its rule>) as the table''s owner.',
                             t.relid::pg_catalog.regclass::text)
      FROM (SELECT DISTINCT r.relid FROM customer_vault.mask_rules r) t
      JOIN pg_catalog.pg_class c ON c.oid = t.relid
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class v
                        WHERE v.relnamespace = c.relnamespace AND v.relname::text = c.relname || '_masked'
                          AND v.relkind = 'v'
                          AND v.relowner = (SELECT o.oid FROM pg_catalog.pg_roles o WHERE o.rolname = 'customer_vault_mask_owner'))
$$;
COMMENT ON FUNCTION customer_vault._report_masking() IS
    'internal: compliance_report''s findings on masked readers and masking rules';

-- Every finding, unordered (compliance_report orders them).
CREATE OR REPLACE FUNCTION customer_vault._report_findings()
    RETURNS TABLE(severity text, object text, finding text, hint text)
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
    SET standard_conforming_strings = on
AS $$
#variable_conflict use_column
DECLARE
    broken bigint;
    max_age integer;
    chain record;
BEGIN
    PERFORM customer_vault.version();   -- the library (and its settings) loaded
    -- personal data in plaintext
    RETURN QUERY
    SELECT CASE WHEN p.label = 'pii:special' THEN 'high' ELSE 'medium' END,
           p.relid::pg_catalog.regclass::text || '.' || pg_catalog.quote_ident(p.attname),
           CASE WHEN p.label = 'pii:special'
                THEN 'special-category personal data (pii:special) is stored in plaintext'
                ELSE pg_catalog.format('personal data (%s) is stored in plaintext', p.label) END,
           pg_catalog.format('Encrypt it: SELECT customer_vault.protect_column(%L, %L, ''<key>'', ''<id column>'').',
                             p.relid::pg_catalog.regclass::text, p.attname)
      FROM customer_vault._report_pii() p
     WHERE NOT p.encrypted;

    -- tables with personal data and no retention (on them or an ancestor)
    RETURN QUERY
    SELECT 'medium', t.relid::pg_catalog.regclass::text,
           'a table with personal data has no retention policy: its rows are kept forever',
           pg_catalog.format('Set one: SELECT customer_vault.set_retention(%L, ''<time column>'', ''<period>'').',
                             t.relid::pg_catalog.regclass::text)
      FROM (SELECT DISTINCT p.relid FROM customer_vault._report_pii() p) t
     WHERE NOT EXISTS (
        WITH RECURSIVE up(rel) AS (
            SELECT t.relid
            UNION
            SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.rel)
        SELECT 1 FROM up JOIN customer_vault.retention_policies r ON r.relid::oid = up.rel);

    -- consent-based purposes whose roles read personal data that no consent
    -- policy filters: a purpose reaches a table through the roles allowed it
    -- (allow_purpose) that may SELECT from it
    RETURN QUERY
    SELECT 'medium', t.relid::pg_catalog.regclass::text,
           pg_catalog.format('roles allowed the consent-based purpose %s (%s) read this table''s personal data, but no consent policy filters its rows',
                             pg_catalog.quote_literal(pu.purpose),
                             pg_catalog.string_agg(pg_catalog.quote_ident(r.rolname), ', ' ORDER BY r.rolname)),
           pg_catalog.format('SELECT customer_vault.enable_consent_policy(%L, ''<subject column>'', %L), or revoke SELECT from those roles.',
                             t.relid::pg_catalog.regclass::text, pu.purpose)
      FROM (SELECT DISTINCT p.relid FROM customer_vault._report_pii() p) t
      JOIN pg_catalog.pg_class c ON c.oid = t.relid
      CROSS JOIN customer_vault.purposes pu
      JOIN customer_vault.purpose_roles pr ON pr.purpose = pu.purpose
      JOIN pg_catalog.pg_roles r ON r.oid = pr.role::oid
     WHERE pu.lawful_basis = 'consent'
       AND pg_catalog.has_any_column_privilege(r.oid, t.relid, 'SELECT')
       AND NOT (c.relrowsecurity AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy po
                                              WHERE po.polrelid = t.relid AND po.polname = 'customer_vault_consent'))
     GROUP BY t.relid, pu.purpose;

    -- the subject registry (part MAP): tables with personal data that no path
    -- reaches from a subject, foreign-key cycles, subject and foreign-key
    -- columns without an index (export and erasure scan the table)
    IF pg_catalog.to_regprocedure('customer_vault._subject_reach()') IS NOT NULL THEN
        RETURN QUERY EXECUTE $q$
            WITH reach AS (SELECT * FROM customer_vault._subject_reach())
            SELECT 'medium', t.relid::pg_catalog.regclass::text,
                   'a table with personal data is neither a registered subject table nor reaches one through foreign keys: export_subject and forget_subject miss it',
                   pg_catalog.format('Register it (customer_vault.register_subject_table(%L, ''<subject column>'')) or add a foreign key to a registered table.',
                                     t.relid::pg_catalog.regclass::text)
              FROM (SELECT DISTINCT p.relid FROM customer_vault._report_pii() p) t
             WHERE NOT EXISTS (SELECT 1 FROM reach r WHERE r.relid::oid = t.relid)
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.relid AND c.relispartition)
            UNION ALL
            SELECT DISTINCT 'low', r.relid::pg_catalog.regclass::text,
                   pg_catalog.format('its foreign keys form a cycle (not followed); its way to a subject: %s', r.path),
                   'Check that its rows belong to the subject the way shown: export and erasure follow that way only, never the foreign keys of the cycle.'
              FROM reach r WHERE r.cycle
            UNION ALL
            -- a table of another owner joined the reach through a foreign key
            -- (REFERENCES is all it takes) and the admin may not change it: an
            -- erasure of a subject it holds rows of is refused
            SELECT DISTINCT 'medium', r.relid::pg_catalog.regclass::text,
                   pg_catalog.format('a table of another owner (%s) reaches %s through a foreign key, but no member of customer_vault_admin may %s it: forget_subject is refused for every subject it holds rows of',
                                     pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(c.relowner)), r.parent::text,
                                     CASE rp.action WHEN 'anonymize' THEN 'UPDATE' WHEN 'shred' THEN 'SELECT' ELSE 'DELETE FROM' END),
                   pg_catalog.format('Grant customer_vault_admin %s on it, or drop its foreign key (check who granted REFERENCES on %s).',
                                     CASE rp.action WHEN 'anonymize' THEN 'UPDATE' WHEN 'shred' THEN 'SELECT' ELSE 'DELETE' END,
                                     r.parent::text)
              FROM reach r
              JOIN pg_catalog.pg_class c ON c.oid = r.relid
              JOIN pg_catalog.pg_class pc ON pc.oid = r.parent
              LEFT JOIN customer_vault.retention_policies rp ON rp.relid::oid = r.relid::oid
             WHERE r.depth > 0 AND c.relowner <> pc.relowner
               AND NOT EXISTS (
                   SELECT 1 FROM pg_catalog.pg_roles ro
                    WHERE NOT ro.rolsuper AND pg_catalog.pg_has_role(ro.oid, 'customer_vault_admin', 'MEMBER')
                      AND pg_catalog.has_table_privilege(ro.oid, r.relid,
                              CASE rp.action WHEN 'anonymize' THEN 'UPDATE' WHEN 'shred' THEN 'SELECT' ELSE 'DELETE' END))
            UNION ALL
            SELECT 'low', r.relid::pg_catalog.regclass::text,
                   pg_catalog.format('no index on %s: export_subject and forget_subject scan the whole table', cols.list),
                   pg_catalog.format('CREATE INDEX ON %s (%s);', r.relid::pg_catalog.regclass::text, cols.list)
              FROM reach r
              CROSS JOIN LATERAL (
                  SELECT CASE WHEN r.fk IS NULL
                              THEN ARRAY[(SELECT a.attnum FROM pg_catalog.pg_attribute a
                                           WHERE a.attrelid = r.relid AND a.attname = r.subject_column)]
                              ELSE (SELECT co.conkey FROM pg_catalog.pg_constraint co WHERE co.oid = r.fk) END AS keys) k
              CROSS JOIN LATERAL (
                  SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY u.n) AS list
                    FROM pg_catalog.unnest(k.keys) WITH ORDINALITY u(attnum, n)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = r.relid AND a.attnum = u.attnum) cols
             WHERE k.keys IS NOT NULL AND pg_catalog.array_position(k.keys, NULL) IS NULL
               AND NOT EXISTS (
                   SELECT 1 FROM pg_catalog.pg_index i
                    WHERE i.indrelid = r.relid AND i.indisvalid AND i.indpred IS NULL
                      AND i.indnkeyatts >= pg_catalog.cardinality(k.keys)
                      AND ARRAY(SELECT x FROM pg_catalog.unnest(i.indkey::smallint[]) x
                                 LIMIT pg_catalog.cardinality(k.keys)) @> k.keys)
        $q$;
    END IF;

    -- named keys whose active version is older than customer_vault.key_max_age
    -- (subject keys are never rotated, nor is the subject-hash key)
    SELECT s.setting::integer INTO max_age FROM pg_catalog.pg_settings s WHERE s.name = 'customer_vault.key_max_age';
    IF COALESCE(max_age, 0) > 0 THEN
        RETURN QUERY
        SELECT 'medium', 'key ' || pg_catalog.quote_ident(k.name),
               pg_catalog.format('its active version %s is older than customer_vault.key_max_age (%s)',
                                 k.version, pg_catalog.current_setting('customer_vault.key_max_age')),
               pg_catalog.format('Rotate it: SELECT customer_vault.rotate_key(%L); then CALL customer_vault.reencrypt(...) for its columns.',
                                 k.name)
          FROM customer_vault.keys k
         WHERE k.kind = 'named' AND k.state = 'active'
           AND k.created_at < pg_catalog.now() - pg_catalog.make_interval(secs => max_age);
    END IF;

    -- hash chains: the consent ledger, legal holds, the purge log, and (when
    -- their parts are installed) erasure receipts and the access log
    FOR chain IN
        SELECT * FROM (VALUES ('consent_ledger', 'customer_vault.verify_ledger()'),
                              ('legal_hold_events', 'customer_vault.verify_legal_holds()'),
                              ('purge_log', 'customer_vault.verify_purge_log()'),
                              ('erasure_receipts', 'customer_vault.verify_receipts()'),
                              ('access_log', 'customer_vault.verify_access_log()')) v(name, fn)
    LOOP
        IF pg_catalog.to_regprocedure(chain.fn) IS NOT NULL THEN
            EXECUTE 'SELECT ' || chain.fn INTO broken;
            IF broken IS NOT NULL THEN
                RETURN QUERY SELECT 'high', 'customer_vault.' || chain.name,
                    pg_catalog.format('the hash chain is broken at entry %s: an entry was changed, removed or added past the functions', broken),
                    pg_catalog.format('Investigate who could write %s (only the extension''s owner can), restore the entries from a backup, and keep the evidence: %s stays broken until then.',
                                      'customer_vault.' || chain.name, pg_catalog.regexp_replace(chain.fn, '^customer_vault\.', ''));
            END IF;
        END IF;
    END LOOP;

    -- settings that copy values into logs or statistics
    RETURN QUERY SELECT * FROM customer_vault._report_settings();

    -- passwords and authentication
    IF pg_catalog.current_setting('password_encryption') = 'md5' THEN
        RETURN QUERY SELECT 'medium', 'setting password_encryption',
            'password_encryption = md5: new passwords are stored as MD5 hashes, which a stolen hash replays',
            'Set password_encryption = ''scram-sha-256'' and have the roles set their passwords again.';
    END IF;
    RETURN QUERY
    SELECT 'medium', 'role ' || pg_catalog.quote_ident(a.rolname),
           'a login role has an MD5 password hash',
           'Set password_encryption = ''scram-sha-256'' and set the role''s password again (\password).'
      FROM pg_catalog.pg_authid a
     WHERE a.rolcanlogin AND a.rolpassword LIKE 'md5%';
    RETURN QUERY
    SELECT 'high', pg_catalog.format('pg_hba.conf line %s', h.line_number),
           pg_catalog.format('"trust" lets %s connections in without a password', h.type),
           'Use scram-sha-256 (or cert) for connections over the network; keep trust, if at all, for local socket connections.'
      FROM pg_catalog.pg_hba_file_rules h
     WHERE h.auth_method = 'trust' AND h.type <> 'local' AND h.error IS NULL
       AND NOT customer_vault._loopback_only(h.address, h.netmask);
    RETURN QUERY
    SELECT 'medium', 'role ' || pg_catalog.quote_ident(r.rolname),
           'a superuser that can log in (besides the bootstrap superuser)',
           'ALTER ROLE ' || pg_catalog.quote_ident(r.rolname) || ' NOLOGIN (or NOSUPERUSER); give people roles with the rights their job needs.'
      FROM pg_catalog.pg_roles r
     WHERE r.rolsuper AND r.rolcanlogin AND r.oid <> 10;

    -- stale roles (part BRAKE), when installed
    IF pg_catalog.to_regprocedure('customer_vault.stale_roles(interval)') IS NOT NULL THEN
        RETURN QUERY EXECUTE $q$
            SELECT CASE WHEN s.can_decrypt THEN 'medium' ELSE 'low' END,
                   'role ' || pg_catalog.quote_ident(s.role),
                   CASE WHEN s.can_decrypt THEN 'a role that can decrypt has been idle for 90 days or more'
                        ELSE 'a role that can reach personal data has been idle for 90 days or more' END,
                   CASE WHEN s.role OPERATOR(pg_catalog.=) ANY (customer_vault._lock_exempt_roles())
                        THEN 'It is listed in customer_vault.lock_exempt_roles, so lock_stale_roles leaves it alone: check that it still needs this access, or take it away.'
                        WHEN r.rolsuper OR s.role::text LIKE 'customer\_vault\_%'
                        THEN 'lock_stale_roles never locks a superuser or a role of the extension: ALTER ROLE ... NOLOGIN by hand if nobody needs it.'
                        ELSE 'Lock it: SELECT customer_vault.lock_stale_roles(dry_run => false), or list it in customer_vault.lock_exempt_roles.' END
              FROM customer_vault.stale_roles() s
              JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) s.role
        $q$;
    END IF;

    -- grants that differ from the declared privilege matrix, memberships of
    -- the extension's roles, grants on its settings, owners, default privileges
    RETURN QUERY
    SELECT CASE WHEN d.privilege = 'OWNER' OR d.object LIKE 'default privileges %' THEN 'medium'
                WHEN d.actual THEN 'high' ELSE 'low' END,
           d.object,
           CASE WHEN d.object LIKE 'role %' THEN
                    pg_catalog.format('%s is a member of %s: the extension''s roles are members of no role',
                                      pg_catalog.quote_ident(d.role), pg_catalog.substr(d.object, 6))
                WHEN d.privilege LIKE 'OWNER%' THEN
                    pg_catalog.format(CASE WHEN d.privilege = 'OWNER' THEN '%s owns it instead of the extension''s owner'
                                           ELSE '%s owns this SECURITY DEFINER function instead of the extension''s owner: it runs with that role''s rights' END,
                                      pg_catalog.quote_ident(d.role))
                WHEN d.object LIKE 'default privileges %' THEN
                    pg_catalog.format('%s is granted to %s on every new object: an update of the extension would grant it on the objects it creates',
                                      d.privilege, CASE WHEN d.role = 'PUBLIC' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(d.role) END)
                ELSE pg_catalog.format(CASE WHEN d.actual THEN '%s is granted to %s: the declared privilege matrix does not grant it'
                                            ELSE '%s is declared for %s but not granted' END,
                                       d.privilege, CASE WHEN d.role = 'PUBLIC' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(d.role) END)
           END,
           CASE WHEN d.object LIKE 'role %' THEN
                    pg_catalog.format('REVOKE %s FROM %s; give people the extension''s roles one by one instead.',
                                      pg_catalog.substr(d.object, 6), pg_catalog.quote_ident(d.role))
                WHEN d.privilege LIKE 'OWNER%' THEN
                    pg_catalog.format('ALTER %s OWNER TO %s;', d.object,
                                      (SELECT pg_catalog.quote_ident(r.rolname) FROM pg_catalog.pg_extension e
                                         JOIN pg_catalog.pg_roles r ON r.oid = e.extowner
                                        WHERE e.extname = 'customer_vault'))
                WHEN d.object LIKE 'default privileges %' THEN
                    pg_catalog.format('ALTER DEFAULT PRIVILEGES %s REVOKE %s FROM %s;',
                                      pg_catalog.substr(d.object, 20),
                                      pg_catalog.regexp_replace(d.privilege, ' WITH GRANT OPTION$', ''),
                                      CASE WHEN d.role = 'PUBLIC' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(d.role) END)
                WHEN d.object LIKE 'parameter %' THEN
                    pg_catalog.format('REVOKE %s ON PARAMETER %s FROM %s; a role that may set the extension''s settings can lift its own limits.',
                                      pg_catalog.regexp_replace(d.privilege, ' WITH GRANT OPTION$', ''),
                                      pg_catalog.substr(d.object, 11),
                                      CASE WHEN d.role = 'PUBLIC' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(d.role) END)
                WHEN d.actual
                THEN pg_catalog.format('REVOKE %s ON %s FROM %s; or grant a role of the extension instead.',
                                       pg_catalog.regexp_replace(d.privilege, ' WITH GRANT OPTION$', ''),
                                       d.object, CASE WHEN d.role = 'PUBLIC' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(d.role) END)
                ELSE pg_catalog.format('GRANT %s ON %s TO %s; or ALTER EXTENSION customer_vault UPDATE again.',
                                       d.privilege, d.object, CASE WHEN d.role = 'PUBLIC' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(d.role) END)
           END
      FROM customer_vault.privilege_drift() d;

    -- masked readers (part MASK2): what would give them more than the masks
    RETURN QUERY SELECT * FROM customer_vault._report_masking();
END
$$;
COMMENT ON FUNCTION customer_vault._report_findings() IS
    'internal: every finding of compliance_report, unordered';

CREATE OR REPLACE FUNCTION customer_vault.compliance_report()
    RETURNS TABLE(severity text, object text, finding text, hint text)
    LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f.severity, f.object, f.finding, f.hint
      FROM customer_vault._report_findings() f
     ORDER BY pg_catalog.array_position(ARRAY['high', 'medium', 'low'], f.severity), f.object, f.finding
$$;
COMMENT ON FUNCTION customer_vault.compliance_report() IS
    'findings (high, medium, low) on how personal data is kept: plaintext PII, no retention, consent purposes without a policy, subject paths and indexes, old keys, broken hash chains, settings that leak values into logs or statistics, weak authentication, superusers, stale roles, privilege drift, masked readers who can read more than the masks';

-- Privileges of this concern: the admin and the auditor read the reports.
GRANT EXECUTE ON FUNCTION customer_vault.compliance_report(), customer_vault.privilege_drift()
    TO customer_vault_admin, customer_vault_auditor;
GRANT SELECT ON customer_vault.privilege_matrix TO customer_vault_admin, customer_vault_auditor;
