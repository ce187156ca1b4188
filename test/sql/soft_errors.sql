-- From PostgreSQL 16 on, the types' input functions report a malformed
-- envelope as a soft error: pg_input_is_valid() and pg_input_error_info()
-- answer without raising, with the same SQLSTATE and message as the hard
-- error and never the input's text.  (PostgreSQL 15 has neither function:
-- expected/soft_errors_1.out.)
\set VERBOSITY terse
SELECT customer_vault.create_key('soft_key') > 0 AS created;
CREATE TABLE soft_t AS
SELECT customer_vault.encrypt('soft secret', 'soft_key')::text AS t,
       customer_vault.encrypt('\x0102'::bytea, 'soft_key')::text AS b;
-- a well-formed envelope of the right type
SELECT pg_input_is_valid(t, 'customer_vault.encrypted_text') AS text_valid,
       pg_input_is_valid(b, 'customer_vault.encrypted_bytea') AS bytea_valid FROM soft_t;
-- the wrong type, garbage, a truncated envelope, a changed prefix
SELECT pg_input_is_valid(b, 'customer_vault.encrypted_text') AS bytea_as_text,
       pg_input_is_valid(t, 'customer_vault.encrypted_bytea') AS text_as_bytea,
       pg_input_is_valid('top secret', 'customer_vault.encrypted_text') AS garbage,
       pg_input_is_valid(left(t, 30), 'customer_vault.encrypted_text') AS truncated,
       pg_input_is_valid('cv9' || substr(t, 4), 'customer_vault.encrypted_text') AS bad_prefix
  FROM soft_t;
-- the error a soft error carries: 22P02, and the input appears nowhere in it
SELECT sql_error_code, message, detail IS NOT NULL AS has_detail,
       concat(message, detail, hint) LIKE '%top secret%' AS echoes_input
  FROM pg_input_error_info('top secret', 'customer_vault.encrypted_text');
SELECT sql_error_code, message FROM soft_t, pg_input_error_info(t, 'customer_vault.encrypted_bytea');
-- the hard error of a cast is unchanged
SELECT 'top secret'::customer_vault.encrypted_text;
DROP TABLE soft_t;
