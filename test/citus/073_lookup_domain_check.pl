# lookup(tbl, col, plaintext, distribution_value) on a table distributed by a
# column of a DOMAIN WITH A CHECK CONSTRAINT (part CITUS, issue 16 item 3;
# test 072 covers domains without constraints, over citext and bigint, and
# an attacker's operator).  The value was a text parameter cast to the
# domain in the statement ("CAST($n AS domain)"): for a domain with
# constraints that stays a CoerceToDomain, which the planner never folds
# into a constant, and Citus prunes only on a constant of the column's own
# type, so both queries went to all 8 shards (a cast to the base type does
# not prune either).  Now the value is a parameter of the column's type,
# read by the type's input function as the caller (the domain's constraint
# still applies), and with a distribution value the rows are named by the
# other key columns, so that the caller's query names the distribution
# column once and Citus's fast path routes it: both queries on the one
# shard holding the value, and lookup() returns exactly that row.
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
CREATE DOMAIN tenant_id AS bigint CHECK (VALUE > 0);
CREATE DOMAIN region_code AS text CHECK (VALUE ~ '^[a-z]+$');
-- a multi-tenant table distributed by a bigint domain
CREATE TABLE accounts (tenant tenant_id NOT NULL, id bigint NOT NULL, email text, PRIMARY KEY (tenant, id));
SELECT create_distributed_table('accounts', 'tenant');
SELECT customer_vault.protect_column('accounts', 'email', 'k', 'id', 'email_bidx');
-- the same address in every tenant
INSERT INTO accounts SELECT t, g, 'a' || g || '@example.org' FROM generate_series(1, 20) t, generate_series(1, 30) g;
-- distributed by a text domain
CREATE TABLE regional (region region_code NOT NULL, id bigint NOT NULL, email text, PRIMARY KEY (region, id));
SELECT create_distributed_table('regional', 'region');
SELECT customer_vault.protect_column('regional', 'email', 'k', 'id', 'email_bidx');
INSERT INTO regional SELECT r, g, 'r' || g || '@example.org'
  FROM unnest(ARRAY['north', 'south', 'east', 'west', 'alpha', 'beta', 'gamma', 'delta']) r, generate_series(1, 10) g;
CREATE ROLE lookup_writer LOGIN IN ROLE customer_vault_writer;
GRANT SELECT (tenant, id) ON accounts TO lookup_writer;
GRANT SELECT (region, id) ON regional TO lookup_writer;
CREATE ROLE lookup_reader LOGIN IN ROLE customer_vault_reader;
GRANT SELECT ON accounts, regional TO lookup_reader;
});
is($coord->safe_psql('postgres', q{SELECT count(DISTINCT shardid) FROM citus_shards WHERE table_name = 'accounts'::regclass}),
	'8', 'accounts has 8 shards');

# one lookup() call: (its result, remote commands of the owner's query (with
# the blind index), of the caller's query (SELECT DISTINCT), their text)
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
	return ($out, scalar(@owner), scalar(@caller), join("\n", @owner, @caller));
}

my $shard3 = $coord->safe_psql('postgres', q{SELECT get_shard_id_for_distribution_column('accounts', 3)});
my $shard_south = $coord->safe_psql('postgres', q{SELECT get_shard_id_for_distribution_column('regional', 'south')});
for my $role (qw(postgres lookup_writer lookup_reader))
{
	my ($out, $owner, $caller, $cmds) = routed($role, q{customer_vault.lookup('accounts', 'email', 'a7@example.org')});
	is($out, '7', "$role: without a distribution value: the row of every tenant (one context value)");
	is("$owner/$caller", '8/8', "$role: both queries on every shard");

	($out, $owner, $caller, $cmds) = routed($role, q{customer_vault.lookup('accounts', 'email', 'a7@example.org', 3::tenant_id)});
	is($out, '7', "$role: tenant 3 as the domain: the row");
	is("$owner/$caller", "1/1", "$role: both queries go to one shard") or diag $cmds;
	like($cmds, qr/accounts_$shard3\b/, "$role: the shard of tenant 3");
	# (the casts to bigint are the parser's implicit ones, for int8eq: Citus shows them)
	like($cmds, qr/\(\(tenant\)::bigint OPERATOR\(pg_catalog\.=\) \('3'::public\.tenant_id\)::bigint\)/,
		"$role: the column compared with a constant of the domain, bigint's operator");

	($out, $owner, $caller) = routed($role, q{customer_vault.lookup('accounts', 'email', 'a7@example.org', 3::bigint)});
	is("$out $owner/$caller", '7 1/1', "$role: tenant 3 as a bigint (the domain's base type): the row, one shard each");

	($out, $owner, $caller) = routed($role, q{customer_vault.lookup('accounts', 'email', 'a31@example.org', 3::tenant_id)});
	is("$out $owner/$caller", ' 1/1', "$role: an address not in tenant 3: nothing, one shard");

	($out, $owner, $caller, $cmds) = routed($role, q{customer_vault.lookup('regional', 'email', 'r4@example.org', 'south'::region_code)});
	is("$out $owner/$caller", '4 1/1', "$role: a text domain: the row of region south, one shard each");
	like($cmds, qr/regional_$shard_south\b/, "$role: the shard of south");
}

# the domain's constraint applies to the value
my ($rc, $out, $err) = $coord->psql('postgres', q{SELECT * FROM customer_vault.lookup('accounts', 'email', 'x', '-1'::text)});
like($err, qr/value for domain tenant_id violates check constraint/, 'a value outside the domain: refused');
($rc, $out, $err) = $coord->psql('postgres', q{SELECT * FROM customer_vault.lookup('accounts', 'email', 'x', 'x'::text)});
like($err, qr/invalid input syntax for type bigint/, 'no value of the base type: refused');

done_testing();
