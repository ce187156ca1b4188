-- grant_consent and withdraw_consent (owner switch of import.c) with a
-- citus.propagate_set_commands placeholder (any role may SET it; Citus is not
-- loaded).  The owner switch (CvBecomeTableOwner) sent SET LOCAL row_security
-- through SPI whenever that setting existed, and in the caller's SPI
-- connection: "could not set row_security for the Citus workers" at top
-- level, "improper call to spi_printtup" or a crash of the server from
-- PL/pgSQL.  Now the switch talks to Citus only when Citus defined the
-- setting, and in an SPI connection of its own.
\set VERBOSITY terse
SELECT customer_vault.define_purpose('cph_news');
SET citus.propagate_set_commands = 'none';
SELECT customer_vault.grant_consent('cph-1', 'cph_news', '{"form": "a"}') > 0 AS granted_top_level;
DO $$ BEGIN PERFORM customer_vault.grant_consent('cph-2', 'cph_news', '{"form": "b"}'); END $$;
DO $$ BEGIN PERFORM customer_vault.grant_consent('cph-3', 'cph_news', '{"form": "c"}'); END $$;
SELECT customer_vault.withdraw_consent('cph-2', 'cph_news', '{"form": "w"}') > 0 AS withdrawn;
DO $$ BEGIN PERFORM customer_vault.withdraw_consent('cph-3', 'cph_news', '{"form": "w"}'); END $$;
SELECT subject, granted FROM customer_vault.consent_state
 WHERE purpose = 'cph_news' ORDER BY subject;
SELECT customer_vault.verify_ledger() IS NULL AS ledger_intact;
-- in a function that goes on using its own query results after the call
CREATE FUNCTION cph_loop() RETURNS int LANGUAGE plpgsql AS $$
DECLARE r record; n int := 0;
BEGIN
  FOR r IN SELECT 'cph-l' || g AS s FROM generate_series(1, 5) g LOOP
    PERFORM customer_vault.grant_consent(r.s, 'cph_news', '{"form": "l"}');
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;
SELECT cph_loop() AS granted_in_loop;
SELECT count(*) AS loop_rows FROM customer_vault.consent_state
 WHERE purpose = 'cph_news' AND subject LIKE 'cph-l%' AND granted;
-- the placeholder is not taken for Citus: row_security is not changed in the caller's session
SHOW row_security;
RESET citus.propagate_set_commands;
DROP FUNCTION cph_loop();
