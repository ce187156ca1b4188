# CALL customer_vault.purge() is crash safe and resumable: a backend killed
# with SIGKILL in the middle of the purge makes the postmaster run crash
# recovery; afterwards no fresh row (inside retention) and no held row is
# lost, the table and its index are consistent, some expired rows are gone
# (the committed batches) and the rest are still there, purge_log shows the
# interrupted run (finished_at NULL); a second CALL finishes the job and logs
# a completed run.
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
my $held_rows = 320;    # expired (g % 1000 = 7), subject under a legal hold

# the test framework turns restart_after_crash off; crash recovery needs it on
my $node = new_vault_node('purgecrash', key => random_root_key(),
	conf => "restart_after_crash = on\nlog_statement = none\nautovacuum = off\n");

my $t0 = time;
$node->safe_psql(
	'postgres', qq{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
CREATE EXTENSION amcheck;
RESET client_min_messages;
CREATE TABLE ev (id bigint PRIMARY KEY, customer_id text, created_at timestamptz NOT NULL, payload text);
INSERT INTO ev
SELECT g,
       CASE WHEN g % $every <> 0 AND g % 1000 = 7 THEN 'held-1' ELSE 'cust-' || (g % 1000) END,
       CASE WHEN g % $every = 0 THEN now() - (g % 80) * interval '1 day' - interval '1 minute'
            ELSE now() - interval '100 days' - (g % 1000) * interval '1 day' END,
       'payload-' || g
  FROM generate_series(1, $total) g;
ANALYZE ev;
SELECT customer_vault.set_retention('ev', 'created_at', '90 days', 'delete', 'customer_id');
SELECT customer_vault.place_legal_hold('held-1', 'litigation 2026-099');
});
note sprintf('loaded %d rows in %.1fs', $total, time - $t0);

my $fresh_q = "SELECT count(*), sum(id), md5(string_agg(id || ':' || payload, ',' ORDER BY id)) "
  . "FROM ev WHERE created_at >= now() - interval '90 days'";
my $expired_q = "SELECT count(*) FROM ev WHERE created_at < now() - interval '90 days'";
my $held_q = "SELECT count(*) FROM ev WHERE customer_id = 'held-1'";
my $fresh_before = $node->safe_psql('postgres', $fresh_q);
like($fresh_before, qr/^$fresh_rows\|/, "$fresh_rows fresh rows");
is($node->safe_psql('postgres', $expired_q), $expired_rows, "$expired_rows expired rows");
is($node->safe_psql('postgres', $held_q), $held_rows, "$held_rows of them held");
my $to_purge = $expired_rows - $held_rows;
is($node->safe_psql('postgres', 'SELECT expired, held, to_purge FROM customer_vault.purge_preview()'),
	"$expired_rows|$held_rows|$to_purge", 'purge_preview agrees');

# ---------- the purge in a background session whose backend we will kill ----------
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
like($pid, qr/^\d+$/, 'backend pid of the purge session');
my $mon = $node->background_psql('postgres');
my $log_offset = -s $node->logfile;
$t0 = time;
$bg->query_until(qr/purge starting/,
	"\\echo purge starting\nCALL customer_vault.purge(batch_size => 1000);\n\\echo purge finished\n");

# wait until a good number of rows are gone (committed batches), then kill -9
my $gone_before_kill = 0;
my $deadline = time + 90;
while (time < $deadline)
{
	$bg->{run}->pump_nb;
	last if $bg->{stderr} ne '' || $bg->{stdout} =~ /purge finished/;
	$gone_before_kill = $total - $mon->query_safe('SELECT count(*) FROM ev');
	last if $gone_before_kill >= 30000;
	usleep(10_000);
}
cmp_ok($gone_before_kill, '>=', 30000, "rows are going while the purge runs ($gone_before_kill gone)")
  or diag "purge session output: $bg->{stdout} $bg->{stderr}";
my $pid_seen = $mon->query_safe(
	"SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL customer_vault.purge%' AND state = 'active'");
is($pid_seen, $pid, 'pg_stat_activity shows the purge still running in that backend');
note sprintf('killed after %.2fs, %d rows gone', time - $t0, $gone_before_kill);
# the postmaster notices, kills everybody, runs crash recovery, restarts
kill_and_recover($node, $pid_seen, $log_offset);
$bg->{run}->finish;
unlike($bg->{stdout}, qr/purge finished/, 'the CALL did not complete');
$mon->{run}->finish;

# ---------- after the crash ----------
is($node->safe_psql('postgres', $fresh_q), $fresh_before, 'no fresh row lost or changed');
is($node->safe_psql('postgres', $held_q), $held_rows, 'no held row lost');
my $expired_after = $node->safe_psql('postgres', $expired_q);
note sprintf('expired rows: %d before, %d gone when killed, %d left after recovery (%d purged for good)',
	$expired_rows, $gone_before_kill, $expired_after, $expired_rows - $expired_after);
cmp_ok($expired_after, '<', $expired_rows, 'committed batches survived the crash: fewer expired rows');
cmp_ok($expired_after, '>', $held_rows, 'and the run was interrupted: some unheld expired rows remain');
# batches commit with synchronous_commit off: the last few may be lost, and the
# purge may have gone on for a while between the poll and the kill, so how
# many rows are gone is not bounded here; what matters is asserted above and
# below (no fresh or held row lost, the next run finishes the job)

# consistency: heap and primary key agree, no corruption
is($node->safe_psql('postgres', 'SELECT count(*) FROM verify_heapam(\'ev\')'), '0', 'verify_heapam finds no corruption');
is($node->safe_psql('postgres', "SELECT bt_index_check('ev_pkey', true)"), '', 'the primary key index matches the heap');
is($node->safe_psql('postgres', 'SET enable_seqscan = off; SELECT count(*) FROM ev WHERE id > 0'),
	$node->safe_psql('postgres', 'SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM ev'),
	'index scan and sequential scan count the same rows');

my @interrupted = split /\n/, $node->safe_psql('postgres',
	'SELECT id, finished_at IS NULL, dry_run, rows_purged, batches FROM customer_vault.purge_log ORDER BY id');
my ($int_id, $int_null, $int_dry) = split /\|/, $interrupted[0] // '';
is(scalar(@interrupted), 1, 'purge_log has one row: the interrupted run');
is("$int_null|$int_dry", 't|f', 'purge_log: the interrupted run has finished_at NULL');
is($node->safe_psql('postgres', "SELECT status FROM customer_vault.purge_log WHERE id = $int_id"), 'running',
	'purge_log: the killed run still says running until the next run looks');

# ---------- resume: a second CALL finishes the job ----------
$t0 = time;
$node->safe_psql('postgres', 'CALL customer_vault.purge(batch_size => 1000)');
note sprintf('second purge took %.1fs', time - $t0);
is($node->safe_psql('postgres', $expired_q), $held_rows, 'all unheld expired rows gone; only held rows left');
is($node->safe_psql('postgres', $held_q), $held_rows, 'held rows intact');
is($node->safe_psql('postgres', $fresh_q), $fresh_before, 'fresh rows intact');
is($node->safe_psql('postgres', 'SELECT expired, held, to_purge FROM customer_vault.purge_preview()'),
	"$held_rows|$held_rows|0", 'purge_preview: nothing left to purge');

my @runs = split /\n/, $node->safe_psql('postgres',
	'SELECT id, finished_at IS NULL, rows_purged, rows_held, batches, dry_run FROM customer_vault.purge_log ORDER BY id');
is(scalar(@runs), 2, 'purge_log: two runs');
my ($r1_id, $r1_null) = split /\|/, $runs[0];
is("$r1_id|$r1_null", "$int_id|t", 'purge_log: the interrupted run is still unfinished');
is($node->safe_psql('postgres', "SELECT status FROM customer_vault.purge_log WHERE id = $int_id"), 'interrupted',
	'purge_log: the next run marked the killed run interrupted');
is($node->safe_psql('postgres', "SELECT status, sqlstate IS NULL FROM customer_vault.purge_log WHERE id > $int_id"), 'done|t',
	'purge_log: the second run is done');
my (undef, $r2_null, $r2_purged, $r2_held, $r2_batches, $r2_dry) = split /\|/, $runs[1] // '';
is($r2_null, 'f', 'purge_log: the second run finished');
is($r2_purged, $expired_after - $held_rows, 'purge_log: the second run purged what the crash left');
is($r2_held, $held_rows, 'purge_log: the second run counted the held rows');
cmp_ok($r2_batches, '>', 1, "purge_log: in more than one batch ($r2_batches)");
is($r2_dry, 'f', 'purge_log: not a dry run');

is($node->safe_psql('postgres', 'SELECT count(*) FROM verify_heapam(\'ev\')'), '0', 'verify_heapam: no corruption at the end');
is($node->safe_psql('postgres', "SELECT bt_index_check('ev_pkey', true)"), '', 'index consistent at the end');

$node->stop;
done_testing();
