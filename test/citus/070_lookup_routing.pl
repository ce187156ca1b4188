# Blind-index lookups on a distributed table, routed to one shard when the
# distribution column is in the query: the documented pattern (the
# distribution column and column_blind_index(), which the worker evaluates
# from the table's protect trigger: the registry is on the coordinator only)
# and the decrypted view run one task; lookup()'s second query
# (the caller's, naming the rows found by primary key) goes only to the
# shard of the row found, and lookup() returns exactly that row.
# lookup(tbl, col, plaintext, distribution_value) (CITUS14): both of its
# queries go to the one shard holding that distribution value, also when the
# context column is not the distribution column (a tenant's table), and it
# returns only that value's rows; refused on a table that is not
# hash-distributed.
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

# ---- lookup() with the distribution value (CITUS14)
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE TABLE orders (tenant bigint NOT NULL, id bigint NOT NULL, email text, PRIMARY KEY (tenant, id));
SELECT create_distributed_table('orders', 'tenant');
SELECT customer_vault.protect_column('orders', 'email', 'k', 'id', 'email_bidx');
-- the same address in every tenant
INSERT INTO orders SELECT t, g, 'o' || g || '@example.org' FROM generate_series(1, 20) t, generate_series(1, 30) g;
GRANT SELECT (tenant, id) ON orders TO lookup_writer;
GRANT SELECT ON orders TO lookup_reader;
CREATE TABLE local_people (id bigint PRIMARY KEY, email text);
SELECT customer_vault.protect_column('local_people', 'email', 'k', 'id', 'email_bidx');
CREATE TABLE ref_people (id bigint PRIMARY KEY, email text);
SELECT create_reference_table('ref_people');
SELECT customer_vault.protect_column('ref_people', 'email', 'k', 'id', 'email_bidx');
GRANT SELECT (id) ON local_people, ref_people TO lookup_writer;
});

# the remote commands of one lookup() call: (result, commands with the
# blind index (the owner's query), the caller's query)
sub routed
{
	my ($role, $call) = @_;
	my ($rc, $out, $err) = $coord->psql('postgres', qq{
SET ROLE $role;
SET citus.log_remote_commands = on;
SET client_min_messages = log;
SELECT string_agg(l, ',' ORDER BY l) FROM $call l});
	my @lines = split /\n/, $err;
	my @owner = grep { /issuing SELECT/ && /email_bidx/ } @lines;
	my @caller = grep { /issuing SELECT DISTINCT/ } @lines;
	diag($err) if $rc != 0;
	return ($out, scalar(@owner), scalar(@caller));
}

for my $role (qw(postgres lookup_writer lookup_reader))
{
	my ($out, $owner, $caller) = routed($role, q{customer_vault.lookup('orders', 'email', 'o7@example.org')});
	is($out, '7', "$role: without a distribution value lookup() finds the rows of every tenant (one context value)");
	is("$owner/$caller", '8/8', "$role: and both of its queries go to every shard");
	($out, $owner, $caller) = routed($role, q{customer_vault.lookup('orders', 'email', 'o7@example.org', 3)});
	is($out, '7', "$role: with tenant 3 it finds the row");
	is("$owner/$caller", '1/1', "$role: both of its queries go to one shard");
	($out, $owner, $caller) = routed($role, q{customer_vault.lookup('people', 'email', 'm77@example.org', 77)});
	is("$out $owner/$caller", '77 1/1', "$role: people by its distribution value 77: the row, one shard for each query");
	($out, $owner, $caller) = routed($role, q{customer_vault.lookup('people', 'email', 'm77@example.org', '78'::text)});
	is("$out $owner/$caller", ' 1/1', "$role: another distribution value (as text): nothing found, one shard");
}
# which shard: the one holding tenant 3
my $shard3 = $coord->safe_psql('postgres', q{SELECT get_shard_id_for_distribution_column('orders', 3)});
my ($rc, $out, $err) = $coord->psql('postgres', q{
SET citus.log_remote_commands = on;
SET client_min_messages = log;
SELECT count(*) FROM customer_vault.lookup('orders', 'email', 'o7@example.org', 3::bigint)});
like($err, qr/issuing SELECT .*orders_$shard3 .*email_bidx/, 'the owner\'s query goes to the shard of tenant 3');
# the writer and the reader each got their calls logged
is($coord->safe_psql('postgres', q{SELECT count(*) FROM customer_vault.blind_index_lookups WHERE table_name = 'orders'}),
	'7', 'every call logged in blind_index_lookups');
# refused where there is nothing to route
($rc, $out, $err) = $coord->psql('postgres', q{SELECT * FROM customer_vault.lookup('local_people', 'email', 'x', 1)});
like($err, qr/ERROR:  table local_people is not a Citus table/, 'a local table: refused');
like($err, qr/HINT:  Call lookup\(\) with three arguments\./, 'with the hint');
($rc, $out, $err) = $coord->psql('postgres', q{SET ROLE lookup_writer; SELECT * FROM customer_vault.lookup('ref_people', 'email', 'x', 1)});
like($err, qr/ERROR:  table ref_people is not hash-distributed/, 'a reference table: refused');
($rc, $out, $err) = $coord->psql('postgres', q{SELECT * FROM customer_vault.lookup('orders', 'email', 'x', 'not a number'::text)});
like($err, qr/invalid input syntax for type bigint/, 'a distribution value that is no value of the column\'s type: the cast fails');
($rc, $out, $err) = $coord->psql('postgres', q{SELECT * FROM customer_vault.lookup('orders', 'email', 'x', '3')});
like($err, qr/could not determine polymorphic type because input has type unknown/, 'an untyped literal needs a type (anyelement)');
($rc, $out, $err) = $coord->psql('postgres', q{SELECT count(*) FROM customer_vault.lookup('orders', 'email', 'o7@example.org', NULL::bigint)});
is($out, '1', 'a NULL distribution value: lookup() as with three arguments');

done_testing();
