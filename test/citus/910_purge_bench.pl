# The Citus purge bench (part CITUS, session 22): purge() of a
# hash-distributed table of BENCH_ROWS rows (default 200,000; 32 shards, 2
# workers) holding recent rows and expired rows spread over every shard:
#   nightly  0.5 % expired     batch_size 10000
#   backlog  10 % expired      batch_size 10000
# Each rep puts the expired rows back (new ids) and times CALL purge() from
# the client (Time::HiRes; a psql start is a few ms of seconds); medians of
# BENCH_REPS (default 3) with the batches purge_log counted.  The same file
# runs on any version of the extension: compare before and after a change by
# running it on both.  Run only when CITUS_BENCH is set:
#   CITUS_BENCH=1 CITUS_SRC=... bash test/run.sh citus test/citus/910_purge_bench.pl
# or with bash test/run.sh bench-citus.  Asserts the rows purged, no timing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CvTest;
use CitusTest;

plan skip_all => 'the Citus purge bench runs with CITUS_BENCH=1 (bash test/run.sh bench-citus)' unless $ENV{CITUS_BENCH};

my $rows = $ENV{BENCH_ROWS} || 200000;
my $reps = $ENV{BENCH_REPS} || 3;
my ($coord, $w1, $w2) = new_citus_cluster(conf => "citus.shard_count = 32\nshared_buffers = '256MB'\nmax_wal_size = '2GB'\n");

$coord->safe_psql('postgres', qq{
SET client_min_messages = warning;
SELECT customer_vault.citus_setup();
CREATE TABLE events (id bigint PRIMARY KEY, customer bigint NOT NULL, at timestamptz NOT NULL);
SELECT create_distributed_table('events', 'id');
INSERT INTO events SELECT g, g % 1000, now() - interval '1 day' FROM generate_series(1, $rows) g;
SELECT customer_vault.set_retention('events', 'at', '10 days', 'delete');
VACUUM ANALYZE events;
});

sub median { my @s = sort { $a <=> $b } @_; return $s[int($#s / 2)]; }

my $next = $rows + 1;
my @report = (sprintf("Citus purge bench: %d rows, 32 shards, 2 workers, %d reps (medians)", $rows, $reps));
for my $case ([ 'nightly, 0.5 % expired', 0.005 ], [ 'backlog, 10 % expired', 0.10 ])
{
	my ($name, $frac) = @$case;
	my $n = int($rows * $frac);
	my (@t, @b);
	for (1 .. $reps)
	{
		my $last = $next + $n - 1;
		$coord->safe_psql('postgres', qq{
INSERT INTO events SELECT g, g % 1000, now() - interval '30 days' FROM generate_series($next, $last) g;
VACUUM ANALYZE events;});
		$next = $last + 1;
		my $t0 = time;
		$coord->safe_psql('postgres', 'CALL customer_vault.purge(batch_size => 10000)');
		push @t, (time - $t0) * 1000;
		my ($purged, $batches) = split /\|/, $coord->safe_psql('postgres',
			q{SELECT rows_purged, batches FROM customer_vault.purge_log WHERE tbl = 'public.events' ORDER BY id DESC LIMIT 1});
		is($purged, $n, "$name: $n rows purged");
		push @b, $batches;
	}
	is($coord->safe_psql('postgres', 'SELECT count(*) FROM events'), $rows, "$name: the recent rows stay");
	push @report, sprintf("  %-24s %6d rows  %9.1f ms  (min %.1f)  batches %d", $name, $n, median(@t),
		(sort { $a <=> $b } @t)[0], median(@b));
}
my $text = join("\n", @report) . "\n";
diag($text);
if ($ENV{CV_WORK})
{
	open(my $fh, '>>', "$ENV{CV_WORK}/citus-bench.txt") or die $!;
	print $fh $text;
	close $fh;
}
done_testing();
