# Prepared consent changes surviving a restart, each honoured by a warm
# session at its COMMIT PREPARED: a withdrawal in the 70th subtransaction
# (subxid cache overflowed, HOT update), a withdrawal whose old row version
# gets a multixact xmax (another prepared xact holds FOR KEY SHARE on it), a
# purpose switched to lawful_basis 'consent', a DELETE of consent_state on a
# frozen row; plus a lock-only prepared xact.
# (From the review of the 2PC tag, rev-2pc: it passed on the row-version scan
# and on the lock manager lookup of the seed that replaced it, and passes on
# the horizon that replaced the seed: all of them are older than it.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('rev2pc', key => random_root_key(),
	conf => "max_prepared_transactions = 40\n");
$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE DATABASE other;
CREATE EXTENSION customer_vault CASCADE;
CREATE ROLE marketer;
SELECT customer_vault.define_purpose('newsletter');
SELECT customer_vault.define_purpose('analytics');
SELECT customer_vault.allow_purpose('marketer', 'newsletter');
SELECT customer_vault.allow_purpose('marketer', 'analytics');
CREATE TABLE customers (id bigint PRIMARY KEY, name text);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g;
SELECT customer_vault.enable_consent_policy('customers', 'id', 'newsletter');
CREATE TABLE visits (id bigint PRIMARY KEY);
INSERT INTO visits SELECT g FROM generate_series(1, 50) g;
SELECT customer_vault.enable_consent_policy('visits', 'id', 'analytics');
GRANT SELECT ON customers, visits TO marketer;
CREATE TABLE noise (v int);
GRANT USAGE ON SCHEMA customer_vault TO marketer;
GRANT EXECUTE ON FUNCTION customer_vault._consent_cache_builds(),
                          customer_vault._consent_cache_source(text) TO marketer;
SELECT count(customer_vault.grant_consent(g::text, 'newsletter', '{"form": "tap"}'))
  FROM generate_series(1, 40) g;
SELECT count(customer_vault.grant_consent(g::text, 'analytics', '{"form": "tap"}'))
  FROM generate_series(1, 10) g;
UPDATE customer_vault.purposes SET lawful_basis = 'legitimate_interests' WHERE purpose = 'analytics';
});
$node->safe_psql('other', q{SET client_min_messages = warning; CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.define_purpose('newsletter');
CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t VALUES (1);
SELECT customer_vault.enable_consent_policy('t', 'id', 'newsletter');});
# freeze subject 9's row (then delete it in a prepared xact)
$node->safe_psql('postgres', 'VACUUM (FREEZE) customer_vault.consent_state');

my $count = 'SELECT count(*) FROM customers';
my $s = $node->background_psql('postgres');
# (a) withdrawal of subject 3 in the 70th subtransaction
$s->query_safe('BEGIN');
for my $i (1 .. 70) { $s->query_safe("SAVEPOINT s$i; INSERT INTO noise VALUES ($i)"); }
$s->query_safe(q{UPDATE customer_vault.consent_state SET granted = false WHERE subject = '3' AND purpose = 'newsletter'});
$s->query_safe(q{PREPARE TRANSACTION 'deep'});
# (b) multixact xmax: a prepared key-share lock on subject 7, then a prepared withdrawal of it
$s->query_safe('BEGIN');
$s->query_safe(q{SELECT 1 FROM customer_vault.consent_state WHERE subject = '7' AND purpose = 'newsletter' FOR KEY SHARE});
$s->query_safe(q{PREPARE TRANSACTION 'lock7'});
$s->query_safe('BEGIN');
$s->query_safe(q{UPDATE customer_vault.consent_state SET granted = false WHERE subject = '7' AND purpose = 'newsletter'});
$s->query_safe(q{PREPARE TRANSACTION 'multi7'});
# (c) analytics becomes consent-based (only subjects 1..10 have consent)
$s->query_safe('BEGIN');
$s->query_safe(q{UPDATE customer_vault.purposes SET lawful_basis = 'consent' WHERE purpose = 'analytics'});
$s->query_safe(q{PREPARE TRANSACTION 'basis'});
# (d) DELETE of a frozen row: only xmax shows it
$s->query_safe('BEGIN');
$s->query_safe(q{DELETE FROM customer_vault.consent_state WHERE subject = '9' AND purpose = 'newsletter'});
$s->query_safe(q{PREPARE TRANSACTION 'del9'});
$s->quit;

$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '5', '5 prepared after restart');
# the seed runs first in the other database


my $w = $node->background_psql('postgres');
# a new snapshot, read from the cache (so the next check is a reuse check)
sub settle { $node->safe_psql('postgres', 'INSERT INTO noise VALUES (1)'); $w->query_safe($count); }
$w->query_safe('SET ROLE marketer');
is($w->query_safe($count), '40', 'warm: 40');
is($w->query_safe('SELECT count(*) FROM visits'), '50', 'warm: analytics is legitimate interest: 50');
for (1 .. 3) { $node->safe_psql('postgres', 'INSERT INTO noise VALUES (1)'); $w->query_safe($count); $w->query_safe('SELECT count(*) FROM visits'); }
my $b0 = $w->query_safe('SELECT customer_vault._consent_cache_builds()');
$node->safe_psql('postgres', 'INSERT INTO noise VALUES (1)');
$w->query_safe($count);
cmp_ok($w->query_safe('SELECT customer_vault._consent_cache_builds()'), '>', $b0,
	'prepared before the restart and left: the warm session reads per snapshot (the horizon is closed)');

settle();
$node->safe_psql('postgres', q{COMMIT PREPARED 'deep'});
is($w->query_safe('SELECT count(*) FROM customers WHERE id = 3'), '0', 'deep subxact withdrawal honoured (warm)');
settle();
$node->safe_psql('postgres', q{COMMIT PREPARED 'lock7'});
$node->safe_psql('postgres', q{COMMIT PREPARED 'multi7'});
is($w->query_safe('SELECT count(*) FROM customers WHERE id = 7'), '0', 'multixact withdrawal honoured (warm)');
settle();
$node->safe_psql('postgres', q{COMMIT PREPARED 'basis'});
is($w->query_safe('SELECT count(*) FROM visits'), '10', 'purpose now consent-based honoured (warm)');
settle();
$node->safe_psql('postgres', q{COMMIT PREPARED 'del9'});
is($w->query_safe('SELECT count(*) FROM customers WHERE id = 9'), '0', 'delete of frozen row honoured (warm)');
is($w->query_safe($count), '37', 'warm: 37');
$w->quit;
$node->stop;
done_testing();
