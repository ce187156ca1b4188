-- The customer_vault security label provider accepts only the PII labels,
-- and only on table columns.
\set VERBOSITY terse
CREATE TABLE labelled (id int, email text, health text, iban text, note text);
SECURITY LABEL FOR customer_vault ON COLUMN labelled.email IS 'pii:contact';
SECURITY LABEL FOR customer_vault ON COLUMN labelled.health IS 'pii:special';
SECURITY LABEL FOR customer_vault ON COLUMN labelled.iban IS 'pii:financial';
SECURITY LABEL FOR customer_vault ON COLUMN labelled.note IS 'pii';
SELECT objsubid, label FROM pg_seclabel WHERE objoid = 'labelled'::regclass AND provider = 'customer_vault' ORDER BY 1;
SECURITY LABEL FOR customer_vault ON COLUMN labelled.note IS 'secret';
SECURITY LABEL FOR customer_vault ON COLUMN labelled.note IS 'PII';
SECURITY LABEL FOR customer_vault ON COLUMN labelled.note IS '';
SECURITY LABEL FOR customer_vault ON TABLE labelled IS 'pii';
SECURITY LABEL FOR customer_vault ON ROLE postgres IS 'pii';
CREATE VIEW labelled_v AS SELECT * FROM labelled;
SECURITY LABEL FOR customer_vault ON COLUMN labelled_v.email IS 'pii';
SECURITY LABEL FOR customer_vault ON COLUMN labelled.note IS NULL;
SELECT count(*) AS labels FROM pg_seclabel WHERE objoid = 'labelled'::regclass AND provider = 'customer_vault';
DROP VIEW labelled_v;
DROP TABLE labelled;
