--@ code

---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC but the type I/O, is_sealed, may_process and
-- the maintenance helpers below; every PUBLIC grant is in this file, after the
-- REVOKEs.  Grants to the extension's roles stand next to their objects, at
-- the end of each concern's file.
---------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA customer_vault FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA customer_vault FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA customer_vault FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA customer_vault FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    customer_vault.encrypted_text_in(cstring), customer_vault.encrypted_text_out(customer_vault.encrypted_text),
    customer_vault.encrypted_text_recv(internal), customer_vault.encrypted_text_send(customer_vault.encrypted_text),
    customer_vault.encrypted_bytea_in(cstring), customer_vault.encrypted_bytea_out(customer_vault.encrypted_bytea),
    customer_vault.encrypted_bytea_recv(internal), customer_vault.encrypted_bytea_send(customer_vault.encrypted_bytea),
    customer_vault.is_sealed(text)
    TO PUBLIC;

-- maintenance statements run as the table's owner call these: every owner
-- must be able to execute them; they work only inside such a statement
-- (src/maint.c), sealing only under the key being protected, blind indexes
-- only for the table being rewritten
GRANT EXECUTE ON FUNCTION
    customer_vault._m_reseal(text, text, boolean),
    customer_vault._m_reseal(customer_vault.encrypted_text, text),
    customer_vault._m_reseal(customer_vault.encrypted_bytea, text),
    customer_vault._m_needs_reseal(text, boolean),
    customer_vault._m_needs_reseal(customer_vault.encrypted_text, boolean),
    customer_vault._m_needs_reseal(customer_vault.encrypted_bytea, boolean),
    customer_vault._m_seal_column(text, text, text),
    customer_vault._m_blind_index_rewrite(regclass, name, text),
    customer_vault._m_subject_has_key(text)
    TO PUBLIC;
-- ... and the row context builder, a pure function of its arguments (it
-- reveals nothing: the binding and the context value are the caller's own)
GRANT EXECUTE ON FUNCTION customer_vault._row_context(text, anyelement) TO PUBLIC;

-- consent: may_process is what a policy evaluates; it answers only for
-- purposes the calling role is allowed, so it reveals nothing to others
GRANT EXECUTE ON FUNCTION customer_vault.may_process(text, text), customer_vault.may_process(bigint, text) TO PUBLIC;

