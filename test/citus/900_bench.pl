# The Citus bench section (issue 16): on a coordinator and two workers, a
# distributed table of BENCH_ROWS rows (default 1,000,000; 32 shards) with a
# protected column and the consent policy, and its plain twin (same rows, no
# RLS, plaintext):
#   count(*) under the consent policy    vs  count(*) of the plain twin
#   sum(length(email)) of <t>_decrypted   vs  the same of the plain twin
# (decrypt on the workers, keys from their reference tables).  Medians of
# BENCH_REPS runs (default 5), times taken by the coordinator's clock around
# each statement in the server (no connection set-up).  Run only when
# CITUS_BENCH is set:
#   CITUS_SRC=... bash test/run.sh bench-citus     (BENCH_ROWS=200000 for a shorter run)
# Prints the table (diag) and writes it to $CV_WORK/citus-bench.txt; checks
# that both sides of each pair return the same answer, asserts no timing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use CitusTest;

plan skip_all => 'the Citus bench runs with CITUS_BENCH=1 (bash test/run.sh bench-citus)' unless $ENV{CITUS_BENCH};

my $rows = $ENV{BENCH_ROWS} || 1000000;
my $reps = $ENV{BENCH_REPS} || 5;
my ($coord, $w1, $w2) = new_citus_cluster(conf => "citus.shard_count = 32\nshared_buffers = '256MB'\nmax_wal_size = '2GB'\n");

my $t0 = time;
$coord->safe_psql('postgres', qq{
SET client_min_messages = warning;
SELECT customer_vault.citus_setup();
SELECT customer_vault.create_key('k');
SELECT customer_vault.define_purpose('marketing', 'consent');
CREATE ROLE bench_app LOGIN IN ROLE customer_vault_reader;
SELECT customer_vault.allow_purpose('bench_app', 'marketing');
CREATE TABLE customers (id bigint PRIMARY KEY, email text);
SELECT create_distributed_table('customers', 'id');
SELECT customer_vault.protect_column('customers', 'email', 'k', 'id');
INSERT INTO customers SELECT g, 'customer-' || g || '\@example.org' FROM generate_series(1, $rows) g;
CREATE TABLE customers_plain (id bigint PRIMARY KEY, email text);
SELECT create_distributed_table('customers_plain', 'id');
INSERT INTO customers_plain SELECT g, 'customer-' || g || '\@example.org' FROM generate_series(1, $rows) g;
-- half the subjects consent
SELECT customer_vault.import_consents(
  \$q\$SELECT g::text AS subject, 'marketing' AS purpose, '{"form": "bench"}'::jsonb AS evidence
        FROM generate_series(1, $rows, 2) g\$q\$);
SELECT customer_vault.enable_consent_policy('customers', 'id', 'marketing');
GRANT SELECT ON customers, customers_plain, customers_decrypted TO bench_app;
ALTER ROLE bench_app SET customer_vault.purpose = 'marketing';
VACUUM ANALYZE customers;
VACUUM ANALYZE customers_plain;
});
my $load = time - $t0;
is($coord->safe_psql('postgres', 'SELECT count(*) FROM customer_vault.citus_check_policies(\'customers\')'), '0',
	'every shard carries the consent policy as it should');

# one statement's time in ms, measured in the server, as bench_app
sub timed
{
	my ($sql) = @_;
	my $out = $coord->safe_psql('postgres', qq{
SET ROLE bench_app;
DO \$\$ BEGIN PERFORM set_config('bench.t', clock_timestamp()::text, false); END \$\$;
$sql;
SELECT round(extract(epoch FROM clock_timestamp() - current_setting('bench.t')::timestamptz) * 1000, 1);});
	my @l = split /\n/, $out;
	return ($l[-1], $l[-2]);
}
sub median { my @s = sort { $a <=> $b } @_; return $s[int($#s / 2)]; }

my @cases = (
	[ 'count(*), consent policy', 'SELECT count(*) FROM customers', 'count(*), no RLS (plain twin)', 'SELECT count(*) FROM customers_plain WHERE id % 2 = 1' ],
	[ 'sum(length(email)), decrypted view', 'SELECT sum(length(email)) FROM customers_decrypted WHERE id % 2 = 1',
	  'sum(length(email)), plaintext twin', 'SELECT sum(length(email)) FROM customers_plain WHERE id % 2 = 1' ],
);
my @report = (sprintf("Citus bench: %d rows, 32 shards, 2 workers, %d reps (medians, ms); load %d s", $rows, $reps, $load));
for my $c (@cases)
{
	my ($na, $qa, $nb, $qb) = @$c;
	my (@ta, @tb, $ra, $rb);
	timed($qa);
	timed($qb);    # warm: each worker backend's consent cache, the buffers
	for (1 .. $reps)
	{
		my ($t, $r) = timed($qa); push @ta, $t; $ra = $r;
		($t, $r) = timed($qb); push @tb, $t; $rb = $r;
	}
	is($ra, $rb, "$na and $nb give the same answer ($ra)");
	my ($ma, $mb) = (median(@ta), median(@tb));
	push @report, sprintf("  %-36s %9.1f\n  %-36s %9.1f   ratio %.2f", $na, $ma, $nb, $mb, $mb > 0 ? $ma / $mb : 0);
}
my $text = join("\n", @report) . "\n";
diag($text);
if ($ENV{CV_WORK})
{
	open(my $fh, '>', "$ENV{CV_WORK}/citus-bench.txt") or die $!;
	print $fh $text;
	close $fh;
}
done_testing();
