--@ code

---------------------------------------------------------------------------
-- The declared privilege matrix, recorded last (after every grant and the
-- REVOKEs of 90_privileges.sql): what the install or update scripts granted
-- on the extension's objects, less the grants that were undeclared before an
-- update began (00_declared_privileges.sql).  Keep this file last.
---------------------------------------------------------------------------

DELETE FROM customer_vault.privilege_matrix;
INSERT INTO customer_vault.privilege_matrix (object, role, privilege)
    SELECT g.object, g.role, g.privilege FROM customer_vault._granted_privileges(false) g
    EXCEPT
    SELECT c.object, c.role, c.privilege FROM customer_vault._privilege_carry c;
DELETE FROM customer_vault._privilege_carry;
