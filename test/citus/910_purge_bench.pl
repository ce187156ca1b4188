# The Citus purge bench (part CITUS, session 22): purge() of a
# hash-distributed table of BENCH_ROWS rows (default 200,000; 32 shards, 2
# workers) holding recent rows and expired rows spread over every shard:
#   nightly  0.5 % expired     batch_size 10000, then 1000
#   backlog  10 % expired      batch_size 10000
# (a run that fails is reported with its error, not hidden)
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
for my $case ([ 'nightly, 0.5 % expired', 0.005, 10000 ], [ 'nightly, 0.5 % expired', 0.005, 1000 ],
	[ 'backlog, 10 % expired', 0.10, 10000 ])
{
	my ($name, $frac, $batch) = @$case;
	my $n = int($rows * $frac);
	my (@t, @b, $failed);
	for (1 .. $reps)
	{
		my $last = $next + $n - 1;
		$coord->safe_psql('postgres', qq{
INSERT INTO events SELECT g, g % 1000, now() - interval '30 days' FROM generate_series($next, $last) g;
VACUUM ANALYZE events;});
		$next = $last + 1;
		my $t0 = time;
		my ($ret, $out, $err) = $coord->psql('postgres', "CALL customer_vault.purge(batch_size => $batch)");
		my $ms = (time - $t0) * 1000;
		if ($ret != 0)
		{
			# recorded, not hidden: an older version failed here
			($failed) = $err =~ /ERROR:\s+([^\n]*)/;
			$failed //= $err;
			$coord->safe_psql('postgres', q{DELETE FROM events WHERE at < now() - interval '10 days'});
			next;
		}
		push @t, $ms;
		my ($purged, $batches) = split /\|/, $coord->safe_psql('postgres',
			q{SELECT rows_purged, batches FROM customer_vault.purge_log WHERE tbl = 'public.events' ORDER BY id DESC LIMIT 1});
		is($purged, $n, "$name: $n rows purged");
		push @b, $batches;
	}
	is($coord->safe_psql('postgres', 'SELECT count(*) FROM events'), $rows, "$name: the recent rows stay");
	push @report, @t
	  ? sprintf("  %-24s batch %5d  %6d rows  %9.1f ms  (min %.1f)  batches %d%s", $name, $batch, $n, median(@t),
		(sort { $a <=> $b } @t)[0], median(@b), $failed ? "  (some runs failed: $failed)" : '')
	  : sprintf("  %-24s batch %5d  %6d rows  failed: %s", $name, $batch, $n, $failed);
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
