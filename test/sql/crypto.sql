-- Round trips and tampering: every single-byte change of an envelope fails
-- authentication; wrong or missing context fails; errors never echo values.
\set VERBOSITY terse
SELECT customer_vault.create_key('crypto_key') > 0 AS created;

-- round trips: empty, multibyte UTF-8, 1 MB, bytea with zero bytes
SELECT customer_vault.decrypt(customer_vault.encrypt('', 'crypto_key')) = '' AS empty_ok;
SELECT customer_vault.decrypt(customer_vault.encrypt('Grüße, 東京, emoji 😀', 'crypto_key')) AS multibyte;
SELECT customer_vault.decrypt(customer_vault.encrypt(repeat('ab€', 350000), 'crypto_key')) = repeat('ab€', 350000) AS one_mb_ok;
SELECT length(repeat('ab€', 350000)::bytea) AS bytes;
SELECT customer_vault.decrypt(customer_vault.encrypt('\x00ff00'::bytea, 'crypto_key')) AS bytea_rt;
SELECT customer_vault.decrypt(customer_vault.encrypt(''::bytea, 'crypto_key')) = ''::bytea AS empty_bytea_ok;
SELECT customer_vault.decrypt(customer_vault.encrypt(decode(repeat('00ff', 524288), 'hex'), 'crypto_key')) = decode(repeat('00ff', 524288), 'hex') AS one_mb_bytea_ok;

-- randomized: the same plaintext never gives the same ciphertext
SELECT count(DISTINCT customer_vault.encrypt('same', 'crypto_key')::text) AS distinct_ciphertexts
  FROM generate_series(1, 100);

-- contexts: bound values need the same context
CREATE TABLE ctx_t AS SELECT customer_vault.encrypt('bound secret', 'crypto_key', 'customer:42') AS v;
SELECT customer_vault.decrypt(v, 'customer:42') FROM ctx_t;
SELECT customer_vault.decrypt(v, 'customer:43') FROM ctx_t;
SELECT customer_vault.decrypt(v) FROM ctx_t;
SELECT customer_vault.decrypt(customer_vault.encrypt('free', 'crypto_key'), 'customer:42');
-- an empty context is a context, distinct from none
SELECT customer_vault.decrypt(customer_vault.encrypt('x', 'crypto_key', ''), '') AS empty_ctx;

-- tamper with every byte position of one stored value: every change must fail
CREATE TABLE tamper AS
  SELECT decode(substr(customer_vault.encrypt('tamper me please', 'crypto_key', 'row-1')::text, 5), 'base64') AS raw;
CREATE FUNCTION try_decrypt(env bytea) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN coalesce(customer_vault.decrypt(('cv1$' || replace(encode(env, 'base64'), E'\n', ''))::customer_vault.encrypted_text, 'row-1'), 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN 'error ' || SQLSTATE;
END $$;
SELECT try_decrypt(raw) AS untouched FROM tamper;
SELECT result, count(*)
  FROM tamper, generate_series(0, length(raw) - 1) AS pos,
       LATERAL (SELECT try_decrypt(set_byte(raw, pos, get_byte(raw, pos) # 1)) AS result) r
 GROUP BY result ORDER BY result;
SELECT result, count(*)
  FROM tamper, generate_series(0, length(raw) - 1) AS pos,
       LATERAL (SELECT try_decrypt(set_byte(raw, pos, get_byte(raw, pos) # 128)) AS result) r
 GROUP BY result ORDER BY result;
-- truncation and extension fail too
SELECT try_decrypt(substr(raw, 1, length(raw) - 1)) AS truncated, try_decrypt(raw || '\x00'::bytea) AS extended FROM tamper;

-- the authentication error: SQLSTATE XX001, no value in the message
\set VERBOSITY default
SELECT customer_vault.decrypt(v, 'customer:43') FROM ctx_t;
\set VERBOSITY terse

-- bad arguments
SELECT customer_vault.encrypt('x', NULL);
SELECT customer_vault.encrypt('x', 'no_such_key');
SELECT customer_vault.encrypt('x', '');
SELECT customer_vault.encrypt('x', repeat('k', 64));
SELECT customer_vault.encrypt('x', E'bad\nname');
SELECT customer_vault.blind_index('x', 'no_such_key');

-- blind index: deterministic, keyed, differs between keys and values
SELECT customer_vault.create_key('crypto_key2') > 0 AS created;
SELECT customer_vault.blind_index('a@b.c', 'crypto_key') = customer_vault.blind_index('a@b.c', 'crypto_key') AS deterministic,
       customer_vault.blind_index('a@b.c', 'crypto_key') <> customer_vault.blind_index('a@b.d', 'crypto_key') AS value_sensitive,
       customer_vault.blind_index('a@b.c', 'crypto_key') <> customer_vault.blind_index('a@b.c', 'crypto_key2') AS key_sensitive,
       length(customer_vault.blind_index('a@b.c', 'crypto_key')) AS len,
       customer_vault.blind_index('a@b.c', 'crypto_key') <> sha256('a@b.c'::bytea) AS not_plain_hash,
       customer_vault.blind_index('a@b.c', 'crypto_key') <> hmac('a@b.c'::bytea, ''::bytea, 'sha256') AS not_unkeyed;

-- parallel query: key lookups work in parallel workers
CREATE TABLE par_t AS SELECT g AS id, customer_vault.encrypt('p' || g, 'crypto_key', g::text) AS v
  FROM generate_series(1, 2000) g;
-- (force_parallel_mode was renamed debug_parallel_query in PostgreSQL 16)
SELECT CASE WHEN current_setting('server_version_num')::int >= 160000
            THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END AS force_parallel \gset
SET :force_parallel = on;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT count(*) AS decrypted_in_parallel FROM par_t WHERE customer_vault.decrypt(v, id::text) = 'p' || id;
SELECT customer_vault.key_of(v) AS key, count(*) FROM par_t GROUP BY 1;
RESET :force_parallel;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
DROP TABLE par_t;

DROP FUNCTION try_decrypt(bytea);
DROP TABLE ctx_t, tamper;
