# CALL customer_vault.purge() works in short committed batches and does not
# get in the way of the application: while it removes 300000 expired rows,
# a writer session keeps inserting fresh rows and updating fresh rows that
# live in the very pages being purged; no writer statement waits for a lock
# (log_lock_waits with a 10 ms deadlock_timeout logs any such wait; no
# duration is asserted), every expired row is gone at the end, no fresh row and no update is
# lost, and purge_log counts more than one batch.  A row locked by another
# open transaction is skipped, not waited for: the purge finishes while the
# lock is held, the locked row survives, and the next purge removes it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use Time::HiRes qw(time usleep);

my $expired_rows = 300000;
my $every = 16;    # one row in 16 is fresh, spread over all pages
my $total = $expired_rows * $every / ($every - 1);
my $fresh_rows = $total - $expired_rows;

my $node = new_vault_node('concurrent', key => random_root_key(),
	conf => "log_statement = none\nautovacuum = off\n"
	  # every lock wait longer than 10 ms is logged ("... still waiting for ...")
	  . "log_lock_waits = on\ndeadlock_timeout = '10ms'\n");

my $t0 = time;
$node->safe_psql(
	'postgres', qq{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
CREATE TABLE ev (id bigserial PRIMARY KEY, customer_id text, created_at timestamptz NOT NULL,
                 payload text, upd integer NOT NULL DEFAULT 0);
INSERT INTO ev (id, customer_id, created_at, payload)
SELECT g, 'cust-' || (g % 1000),
       CASE WHEN g % $every = 0 THEN now() - (g % 80) * interval '1 day' - interval '1 minute'
            ELSE now() - interval '100 days' - (g % 1000) * interval '1 day' END,
       'payload-' || g
  FROM generate_series(1, $total) g;
SELECT setval('ev_id_seq', $total);
ANALYZE ev;
SELECT customer_vault.set_retention('ev', 'created_at', '90 days', 'delete', 'customer_id');
});
note sprintf('loaded %d rows (%d expired, %d fresh) in %.1fs', $total, $expired_rows, $fresh_rows, time - $t0);

my $fresh_q = "SELECT count(*) FROM ev WHERE created_at >= now() - interval '90 days'";
my $expired_q = "SELECT count(*) FROM ev WHERE created_at < now() - interval '90 days'";
is($node->safe_psql('postgres', $expired_q), $expired_rows, "$expired_rows expired rows");
is($node->safe_psql('postgres', $fresh_q), $fresh_rows, "$fresh_rows fresh rows");
is($node->safe_psql('postgres', 'SELECT expired, held, to_purge FROM customer_vault.purge_preview()'),
	"$expired_rows|0|$expired_rows", 'purge_preview agrees');
my $pages = $node->safe_psql('postgres', "SELECT pg_relation_size('ev') / current_setting('block_size')::int");
note "ev has $pages pages";

# ---------- the purge and a writer at the same time ----------
my $writer = $node->background_psql('postgres');
my $purger = $node->background_psql('postgres', on_error_stop => 0);
my $purger_pid = $purger->query_safe('SELECT pg_backend_pid()');

# time one writer statement
my $max_wait = 0;
my $max_stmt = '';
my @lat;
my $timed = sub {
	my ($sql) = @_;
	my $s = time;
	my $r = $writer->query_safe($sql);
	my $d = time - $s;
	push @lat, $d;
	if ($d > $max_wait)
	{
		$max_wait = $d;
		$max_stmt = $sql;
	}
	return $r;
};

# warm up the writer, and its latency before the purge
$timed->("SELECT count(*) FROM ev WHERE id = 1");
@lat = ();
$max_wait = 0;

my ($inserted, $updates, $stmts_during) = (0, 0, 0);
my $purge_done = sub {
	$purger->{run}->pump_nb;
	return $purger->{stdout} =~ /purge finished/ || $purger->{stderr} ne '';
};
my $tp = time;
my $log_offset = -s $node->logfile;
$purger->query_until(qr/purge starting/,
	"\\echo purge starting\nCALL customer_vault.purge(batch_size => 10000);\n\\echo purge finished\n");
my $running_seen = 0;
while (!$purge_done->() && time - $tp < 150)
{
	# fresh rows, appended
	$timed->("INSERT INTO ev (customer_id, created_at, payload) "
		  . "SELECT 'writer', now(), 'w-' || g FROM generate_series(1, 5) g");
	$inserted += 5;
	# fresh rows spread over the table, among the expired rows being deleted
	my @ids = map { $every * (1 + int(rand($fresh_rows))) } 1 .. 5;
	my %u = map { $_ => 1 } @ids;
	my $n = $timed->("WITH u AS (UPDATE ev SET upd = upd + 1, payload = payload || '+' WHERE id IN ("
		  . join(',', keys %u) . ") RETURNING 1) SELECT count(*) FROM u");
	if ($n ne scalar(keys %u))
	{
		fail("writer update of fresh rows " . join(',', keys %u) . " updated $n rows");
		last;
	}
	$updates += $n;
	$stmts_during += 2;
	if (!$running_seen)
	{
		$running_seen = $node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE pid = $purger_pid AND query LIKE 'CALL customer_vault.purge%'"
		) eq '1';
	}
}
my $purge_secs = time - $tp;
ok($purge_done->(), sprintf('the purge finished (%.1fs)', $purge_secs));
like($purger->{stdout}, qr/purge finished/, 'the purge succeeded') or diag "purge error: $purger->{stderr}";
is($purger->{stderr}, '', 'no error from the purge');
ok($running_seen, 'the writer ran while the purge was running');
my @sorted = sort { $b <=> $a } @lat;
note sprintf('writer: %d statements during the purge, %d rows inserted, %d updates; '
	  . 'longest %.3fs (%s), 2nd %.3fs, median %.4fs',
	$stmts_during, $inserted, $updates, $max_wait, $max_stmt, $sorted[1] // 0, $sorted[ int(@sorted / 2) ] // 0);
cmp_ok($stmts_during, '>=', 20, 'the writer got at least 20 statements in during the purge');
unlike(slurp_file($node->logfile, $log_offset), qr/still waiting for/,
	'no statement waited for a lock during the purge (log_lock_waits)');

# ---------- the outcome ----------
is($node->safe_psql('postgres', $expired_q), '0', 'every expired row is gone');
is($node->safe_psql('postgres', $fresh_q), $fresh_rows + $inserted,
	"no fresh row lost: $fresh_rows initial + $inserted inserted by the writer");
is($node->safe_psql('postgres', "SELECT count(*) FROM ev WHERE customer_id = 'writer'"), $inserted,
	'every row the writer inserted is there');
is($node->safe_psql('postgres', 'SELECT sum(upd) FROM ev'), $updates, "no update lost ($updates)");
is($node->safe_psql('postgres', "SELECT count(*) FROM ev WHERE length(payload) - length(rtrim(payload, '+')) <> upd"),
	'0', 'each updated row carries each of its updates');
my $log = $node->safe_psql('postgres',
	"SELECT rows_purged, rows_held, batches, finished_at IS NOT NULL, dry_run FROM customer_vault.purge_log ORDER BY id DESC LIMIT 1");
my ($purged, $held, $batches, $finished, $dry) = split /\|/, $log;
is($purged, $expired_rows, "purge_log: $expired_rows rows purged");
is($held, '0', 'purge_log: none held');
cmp_ok($batches, '>', 1, "purge_log: more than one batch ($batches)");
is("$finished|$dry", 't|f', 'purge_log: finished, not a dry run');
# about batch_size rows a batch: 320000 rows in the table at the start / 10000
cmp_ok($batches, '>=', 20, 'purge_log: batches of about batch_size rows (at least 20 for 320000 rows)');

# ---------- a locked row is skipped, not waited for ----------
my $ids = $node->safe_psql('postgres', q{
INSERT INTO ev (customer_id, created_at, payload)
SELECT 'late', now() - interval '200 days', 'late-' || g FROM generate_series(1, 3) g RETURNING id});
my ($locked, @others) = split /\n/, $ids;
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN');
is($locker->query_safe("SELECT payload FROM ev WHERE id = $locked FOR UPDATE"), 'late-1',
	'a third session locks an expired row (FOR UPDATE, transaction open)');
my $tl = time;
my $log_offset2 = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '5s'; SET statement_timeout = '60s'; CALL customer_vault.purge(batch_size => 10000)");
my $locked_secs = time - $tl;
is($ret, 0, sprintf('the purge finishes while the lock is held (%.2fs)', $locked_secs)) or diag $err;
unlike(slurp_file($node->logfile, $log_offset2), qr/still waiting for/, 'and did not wait for the lock (log_lock_waits)');
is($node->safe_psql('postgres', "SELECT payload FROM ev WHERE id = $locked"), 'late-1', 'the locked expired row survives');
is($node->safe_psql('postgres', "SELECT count(*) FROM ev WHERE id IN (" . join(',', @others) . ")"), '0',
	'the other expired rows of that batch are gone');
is($node->safe_psql('postgres',
		'SELECT rows_purged, finished_at IS NOT NULL FROM customer_vault.purge_log ORDER BY id DESC LIMIT 1'),
	'2|t', 'purge_log: 2 rows purged, the run finished');
is($locker->query_safe("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'transactionid'"),
	'1', 'the lock was still held throughout');

# an UPDATE in an open transaction is a row lock too
$locker->query_safe('COMMIT');
$locker->query_safe('BEGIN');
$locker->query_safe("UPDATE ev SET payload = 'late-1-updated' WHERE id = $locked");
($ret, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '5s'; CALL customer_vault.purge(batch_size => 10000)");
is($ret, 0, 'the purge finishes while an uncommitted update holds the row') or diag $err;
is($node->safe_psql('postgres', "SELECT payload FROM ev WHERE id = $locked"), 'late-1',
	'the row survives (and its update is not visible yet)');
$locker->query_safe('ROLLBACK');

# released: the next purge removes it
$node->safe_psql('postgres', 'CALL customer_vault.purge(batch_size => 10000)');
is($node->safe_psql('postgres', "SELECT count(*) FROM ev WHERE id = $locked"), '0',
	'after the lock is released the next purge removes the row');
is($node->safe_psql('postgres', 'SELECT rows_purged FROM customer_vault.purge_log ORDER BY id DESC LIMIT 1'),
	'1', 'purge_log: that run purged 1 row');
is($node->safe_psql('postgres', $expired_q), '0', 'nothing expired is left');
is($node->safe_psql('postgres', $fresh_q), $fresh_rows + $inserted, 'fresh rows intact');

# failure paths
($ret, $out, $err) = $node->psql('postgres', 'CALL customer_vault.purge(batch_size => 0)');
isnt($ret, 0, 'batch_size 0 refused');
like($err, qr/batch_size must be at least 1/, 'error says why');
# inside a transaction block the batches cannot commit
($ret, $out, $err) = $node->psql('postgres', 'BEGIN; CALL customer_vault.purge(); COMMIT;');
isnt($ret, 0, 'purge inside an explicit transaction block fails');
like($err, qr/invalid transaction termination/, 'error: invalid transaction termination');
is($node->safe_psql('postgres', "SELECT count(*) FROM customer_vault.purge_log WHERE finished_at IS NULL"), '0',
	'the failed call left no unfinished log row');

ok($writer->quit, 'writer session ends cleanly');
ok($purger->quit, 'purge session ends cleanly');
ok($locker->quit, 'locker session ends cleanly');
$node->stop;
done_testing();
