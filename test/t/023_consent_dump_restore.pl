# pg_dump and restore of consent-protected partitioned and inheritance tables:
# the restore creates every policy itself and the event triggers add none of
# their own on the way (no "policy already exists" error); partitions keep
# their consent policy and a DBA's permissive policy without the base policy;
# the ledger's chain head is restored next to the one CREATE EXTENSION made
# and the next append continues the chain from the restored head.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('consent_dump', key => random_root_key());
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->safe_psql('src', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.define_purpose('mail');
CREATE TABLE o (id bigint, subject bigint, tenant text) PARTITION BY RANGE (id);
CREATE TABLE o1 PARTITION OF o FOR VALUES FROM (0) TO (100);
CREATE TABLE h (subject bigint);
CREATE TABLE hc () INHERITS (h);
SELECT customer_vault.enable_consent_policy('o', 'subject', 'mail');
SELECT customer_vault.enable_consent_policy('h', 'subject', 'mail');
CREATE TABLE o2 PARTITION OF o FOR VALUES FROM (100) TO (200);
CREATE POLICY tenant ON o2 USING (tenant = current_user);
SELECT customer_vault.grant_consent(g::text, 'mail', '{"form": "t"}') FROM generate_series(1, 5) g;
});

my $policies = q{SELECT string_agg(c.relname || ':' || p.polname, ' ' ORDER BY c.relname, p.polname)
  FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid WHERE c.relnamespace = 'public'::regnamespace};
my $before = $node->safe_psql('src', $policies);
is($before, 'h:customer_vault_base h:customer_vault_consent hc:customer_vault_base hc:customer_vault_consent '
	  . 'o:customer_vault_base o:customer_vault_consent o1:customer_vault_base o1:customer_vault_consent '
	  . 'o2:customer_vault_consent o2:tenant',
	'source: every partition and child under the consent policy, the tenant policy without the base one');

my $dump = $node->basedir . '/src.sql';
$node->command_ok([ 'pg_dump', '-f', $dump, 'src' ], 'pg_dump');
my ($ret, $out, $err) = $node->psql('dst', undef, extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', $dump ]);
is($ret, 0, 'the dump restores without an error') or diag $err;
is($node->safe_psql('dst', $policies), $before, 'restored: the same policies');
is($node->safe_psql('dst', 'SELECT customer_vault.verify_ledger() IS NULL'), 't', 'restored: the ledger verifies');
is($node->safe_psql('dst', q{SELECT customer_vault.grant_consent('6', 'mail', '{"form": "t"}')}), '6',
	'restored: the next append continues the chain');
is($node->safe_psql('dst', 'SELECT count(*), customer_vault.verify_ledger() IS NULL FROM customer_vault.consent_ledger_head'),
	'1|t', 'restored: one chain head left, the ledger verifies');
# and a partition made after the restore is covered
$node->safe_psql('dst', 'CREATE TABLE o3 PARTITION OF o FOR VALUES FROM (200) TO (300)');
is($node->safe_psql('dst', q{SELECT count(*) FROM pg_policy WHERE polrelid = 'o3'::regclass AND polname = 'customer_vault_consent'}),
	'1', 'restored: a new partition gets the consent policy');
$node->stop;
done_testing();
