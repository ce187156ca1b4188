--@ code

---------------------------------------------------------------------------
-- The declared privilege matrix, recorded last (after every grant and the
-- REVOKEs of 90_privileges.sql): what the install or update scripts granted
-- on the extension's objects, less the grants that were undeclared before an
-- update began (00_declared_privileges.sql).  Keep this file last.
-- Only grants to PUBLIC and to the extension's own roles can be declared:
-- the scripts grant to nobody else, so a grant to any other role (made by
-- hand, or by ALTER DEFAULT PRIVILEGES when the install or an update
-- created the object) is drift.  Grants the owner's default privileges
-- would make are left out too (the scripts cannot be told from them), as
-- are ownership rows (the scripts create everything as the extension's owner).
---------------------------------------------------------------------------

DELETE FROM customer_vault.privilege_matrix;
INSERT INTO customer_vault.privilege_matrix (object, role, privilege)
    SELECT g.object, g.role, g.privilege FROM customer_vault._granted_privileges(false) g
     WHERE g.role IN ('PUBLIC', 'customer_vault_admin', 'customer_vault_writer', 'customer_vault_reader',
                      'customer_vault_auditor', 'customer_vault_masked_reader', 'customer_vault_mask_owner')
       AND NOT g.by_default AND g.privilege NOT LIKE 'OWNER%'
    EXCEPT
    SELECT c.object, c.role, c.privilege FROM customer_vault._privilege_carry c;
DELETE FROM customer_vault._privilege_carry;
