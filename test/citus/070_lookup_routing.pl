# Blind-index lookups on a distributed table, routed to one shard when the
# distribution column is in the query: the documented pattern (the
# distribution column and column_blind_index(), which the worker evaluates
# from the table's protect trigger: the registry is on the coordinator only)
# and the decrypted view run one task; lookup()'s second query
# (the caller's, naming the rows found by primary key) goes only to the
# shard of the row found, and lookup() returns exactly that row.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use CitusTest;

my ($coord, $w1, $w2) = new_citus_cluster();
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
SELECT customer_vault.citus_setup();
SELECT customer_vault.create_key('k');
CREATE TABLE people (id bigint PRIMARY KEY, email text);
SELECT create_distributed_table('people', 'id');
SELECT customer_vault.protect_column('people', 'email', 'k', 'id', 'email_bidx');
INSERT INTO people SELECT g, 'm' || g || '@example.org' FROM generate_series(1, 200) g;
CREATE ROLE lookup_writer LOGIN IN ROLE customer_vault_writer;
GRANT SELECT (id) ON people TO lookup_writer;
CREATE ROLE lookup_reader LOGIN IN ROLE customer_vault_reader;
GRANT SELECT ON people, people_decrypted TO lookup_reader;
});

my $pattern = q{SELECT id FROM people WHERE id = 42
   AND email_bidx = customer_vault.column_blind_index('people', 'email', 'm42@example.org')};
my $plan = $coord->safe_psql('postgres', "SET ROLE lookup_reader; EXPLAIN (COSTS OFF) $pattern");
like($plan, qr/Task Count: 1\n/, 'the documented lookup pattern runs one task') or diag($plan);
is($coord->safe_psql('postgres', "SET ROLE lookup_reader; $pattern"), '42', 'and finds the row');
is($coord->safe_psql('postgres', "SET ROLE lookup_reader; "
	. q{SELECT id FROM people WHERE id = 43
   AND email_bidx = customer_vault.column_blind_index('people', 'email', 'm42@example.org')}),
	'', 'not another row');
$plan = $coord->safe_psql('postgres', "SET ROLE lookup_reader; EXPLAIN (COSTS OFF) SELECT email FROM people_decrypted WHERE id = 42");
like($plan, qr/Task Count: 1\n/, 'the decrypted view of one distribution value runs one task');
is($coord->safe_psql('postgres', "SET ROLE lookup_reader; SELECT email FROM people_decrypted WHERE id = 42"),
	'm42@example.org', 'and decrypts there');

# lookup(): exactly the row; the caller's query on the one shard holding it
for my $role (qw(postgres lookup_writer lookup_reader))
{
	my ($rc, $out, $err) = $coord->psql('postgres', qq{
SET ROLE $role;
SET citus.log_remote_commands = on;
SET client_min_messages = log;
SELECT string_agg(l, ',') FROM customer_vault.lookup('people', 'email', 'm77\@example.org') l});
	is($out, '77', "$role: lookup() returns exactly the row");
	my @caller = grep { /issuing SELECT DISTINCT/ } split /\n/, $err;
	is(scalar(@caller), 1, "$role: its query naming the rows found goes to one shard")
		or diag($err);
}

done_testing();
