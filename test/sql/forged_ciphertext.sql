-- Ciphertext written to a protected column is kept only when it authenticates
-- for that column and row (issue 9, ciphertext hygiene): a forged or foreign
-- envelope never reaches the table, so it cannot break the readers of the
-- decrypted view.  Envelope-shaped text found in a column when protect_column
-- converts it is plaintext unless it authenticates, and is sealed as such.
\set VERBOSITY terse
SELECT customer_vault.create_key('fc_key') > 0 AS created;
SELECT customer_vault.create_key('fc_other') > 0 AS created;
-- envelope-shaped values already in the column before protection: one from
-- encrypt() under another context (a forgery attempt), one under a key id that
-- does not exist, one under the right key but without a context
CREATE TABLE fc (id bigint PRIMARY KEY, email text);
INSERT INTO fc VALUES (1, 'one@example.com'),
    (2, customer_vault.encrypt('forged', 'fc_key', 'other context')::text),
    (3, 'cv1$AQEAAAD/AP8A7QIgRIW7L+9E/msiP9VxRBEdpuOzivX80e651ac='),
    (4, customer_vault.encrypt('no context', 'fc_key')::text);
CREATE TEMP TABLE fc_before AS SELECT id, email FROM fc;
SELECT customer_vault.protect_column('fc', 'email', 'fc_key', 'id');
-- every row reads; the forged values read as the text that was stored
SELECT f.id, f.email = b.email AS reads_as_stored_text
  FROM fc_decrypted f JOIN fc_before b USING (id) ORDER BY id;
SELECT count(*) AS view_rows FROM fc_decrypted;

-- through the trigger: a value of another row, another column, a forged
-- envelope, one under an unknown key, one without a context: all refused
INSERT INTO fc VALUES (10, (SELECT email FROM fc WHERE id = 1));
INSERT INTO fc VALUES (11, customer_vault.encrypt('x', 'fc_key', 'guess')::text);
INSERT INTO fc VALUES (12, 'cv1$AQEAAAD/AP8A7QIgRIW7L+9E/msiP9VxRBEdpuOzivX80e651ac=');
INSERT INTO fc VALUES (13, customer_vault.encrypt('x', 'fc_other')::text);
UPDATE fc SET email = (SELECT email FROM fc WHERE id = 2) WHERE id = 1;
COPY fc (id, email) FROM stdin;
14	cv1$AQEAAAD/AP8A7QIgRIW7L+9E/msiP9VxRBEdpuOzivX80e651ac=
\.
SELECT count(*) AS rows_now, count(*) FILTER (WHERE id >= 10) AS forged_rows FROM fc;
SELECT count(*) AS view_rows FROM fc_decrypted;

-- ciphertext that does belong here (a data-only restore) is kept as it is
CREATE TEMP TABLE fc_dump AS SELECT id, email FROM fc WHERE id = 1;
DELETE FROM fc WHERE id = 1;
INSERT INTO fc SELECT id, email FROM fc_dump;
SELECT f.email = d.email AS kept_as_is FROM fc f JOIN fc_dump d USING (id);
SELECT email FROM fc_decrypted WHERE id = 1;
DROP TABLE fc CASCADE;
