# The retention purge runs from pg_cron: schedule_purge() creates the job
# customer_vault_purge running CALL customer_vault.purge(); pg_cron runs it
# (connecting through libpq to cron.host as the scheduling user), the job
# succeeds, purge_log records the run, expired rows are gone while fresh rows
# and rows of subjects under an active legal hold stay.  The limit is computed
# in UTC, so a server TimeZone far from UTC does not move it.  schedule_purge
# again replaces the job (one job of that name), unschedule_purge() returns
# true then false, and in a database without pg_cron both refuse.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use Time::HiRes qw(time usleep);

my $node = new_vault_node('cron', key => random_root_key(), start => 0,
	conf => "shared_preload_libraries = 'pg_cron,customer_vault'\n"
	  . "cron.database_name = 'postgres'\n"
	  # UTC+14: a limit computed in local time would be off by 14 hours
	  . "timezone = 'Pacific/Kiritimati'\n");
$node->append_conf('postgresql.conf', "cron.host = '" . $node->host . "'\n");
$node->start;

like($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), qr/pg_cron/, 'pg_cron is preloaded');

$node->safe_psql(
	'postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION pg_cron;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
CREATE TABLE events (id int PRIMARY KEY, customer_id text, created_at timestamptz NOT NULL, note text);
-- kind: what the purge must do with the row
--   expired   : past 30 days, no hold              -> purged
--   fresh     : inside 30 days                     -> kept
--   held      : past 30 days, subject under a hold -> kept
--   released  : past 30 days, hold released        -> purged
--   lapsed    : past 30 days, hold's until passed  -> purged
--   nosubject : past 30 days, subject NULL         -> purged
--   edge_in   : 2 hours inside the limit           -> kept
--   edge_out  : 2 hours past the limit             -> purged
INSERT INTO events
SELECT g, 'cust-' || (g % 7), now() - interval '45 days' - g * interval '1 hour', 'expired'
  FROM generate_series(1, 100) g;
INSERT INTO events
SELECT g, 'cust-' || (g % 7), now() - (g % 29) * interval '1 day', 'fresh'
  FROM generate_series(101, 150) g;
INSERT INTO events
SELECT g, 'held-1', now() - interval '400 days', 'held' FROM generate_series(151, 170) g;
INSERT INTO events
SELECT g, 'released-1', now() - interval '400 days', 'released' FROM generate_series(171, 180) g;
INSERT INTO events
SELECT g, 'lapsed-1', now() - interval '400 days', 'lapsed' FROM generate_series(181, 185) g;
INSERT INTO events
SELECT g, NULL, now() - interval '400 days', 'nosubject' FROM generate_series(186, 190) g;
INSERT INTO events VALUES
    (191, 'cust-1', now() - interval '30 days' + interval '2 hours', 'edge_in'),
    (192, 'cust-1', now() - interval '30 days' - interval '2 hours', 'edge_out');
SELECT customer_vault.set_retention('events', 'created_at', '30 days', 'delete', 'customer_id');
SELECT customer_vault.place_legal_hold('held-1', 'litigation 2026-041');
SELECT customer_vault.release_legal_hold(customer_vault.place_legal_hold('released-1', 'settled case'));
-- a hold whose end date has passed no longer holds (place_legal_hold refuses
-- a past until, and holds cannot be edited: this one ends in a second)
SELECT customer_vault.place_legal_hold('lapsed-1', 'audit', clock_timestamp() + interval '1 second');
SELECT pg_sleep(1.5);
});

my %expect_kept = (fresh => 50, held => 20, edge_in => 1);
my %expect_gone = (expired => 100, released => 10, lapsed => 5, nosubject => 5, edge_out => 1);

is($node->safe_psql('postgres', 'SELECT expired, held, to_purge FROM customer_vault.purge_preview()'),
	'141|20|121', 'purge_preview: 141 expired, 20 held, 121 to purge');

# The held predicate must refer to the table's subject column even when it is
# named like a column of customer_vault.legal_holds (subject, id, reason, ...).
# Checked with purge_preview only: these policies are dropped before the purge.
$node->safe_psql(
	'postgres', q{
CREATE TABLE by_subject (subject text, created_at timestamptz);
INSERT INTO by_subject VALUES ('held-1', now() - interval '400 days'), ('cust-9', now() - interval '400 days');
SELECT customer_vault.set_retention('by_subject', 'created_at', '30 days', 'delete', 'subject');
CREATE TABLE by_id (id bigint, created_at timestamptz);
INSERT INTO by_id VALUES (42, now() - interval '400 days'), (7, now() - interval '400 days');
SELECT customer_vault.set_retention('by_id', 'created_at', '30 days', 'delete', 'id');
SELECT customer_vault.place_legal_hold('42', 'litigation 2026-042');
});
my %pv = map { my ($t, @r) = split /\|/; ($t => join '|', @r) } split /\n/,
  $node->safe_psql('postgres', 'SELECT tbl, expired, held, to_purge FROM customer_vault.purge_preview()');
is($pv{by_subject}, '2|1|1', 'subject column named "subject": only the held subject\'s row is held');
is($pv{by_id}, '2|1|1', 'subject column named "id": the row of held subject 42 is held');
$node->safe_psql('postgres', q{
DELETE FROM customer_vault.retention_policies WHERE table_name IN ('by_subject', 'by_id');
DROP TABLE by_subject, by_id;
SELECT customer_vault.release_legal_hold(id, 'case 42 closed') FROM customer_vault.current_legal_holds WHERE subject = '42';
});
is($node->safe_psql('postgres', 'SELECT expired, held, to_purge FROM customer_vault.purge_preview()'),
	'141|20|121', 'purge_preview unchanged after dropping the extra policies');

# ---------- failure paths of schedule_purge ----------
my ($ret, $out, $err) = $node->psql('postgres', "SELECT customer_vault.schedule_purge('')");
isnt($ret, 0, 'an empty schedule is refused');
like($err, qr/schedule must not be empty/, 'error says the schedule is empty');
($ret, $out, $err) = $node->psql('postgres', "SELECT customer_vault.schedule_purge('not a schedule')");
isnt($ret, 0, 'an invalid schedule is refused');
like($err, qr/invalid schedule/i, 'pg_cron says the schedule is invalid');
is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job WHERE jobname = 'customer_vault_purge'"),
	'0', 'no job left behind by the failed calls');
is($node->safe_psql('postgres', 'SELECT customer_vault.unschedule_purge()'), 'f',
	'unschedule_purge without a job returns false');

# pg_cron 1.5 and later take schedules in seconds: the runs below then come
# within seconds; pg_cron 1.4 (Debian 12) runs jobs at minute boundaries, and
# the test waits for one boundary only.
my ($cron_major, $cron_minor) = split /\./,
  $node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'");
my $seconds = ($cron_major > 1 || $cron_minor >= 5);
my $every = $seconds ? '2 seconds' : '* * * * *';
my $period = $seconds ? 2 : 60;
note "pg_cron $cron_major.$cron_minor: schedule '$every'";

# ---------- schedule, replace, unschedule: a job that must never run ----------
# (every minute first: well before a minute boundary, so it cannot run yet)
usleep(200_000) while time % 60 > 50 || time % 60 < 1;
my $gone = $node->safe_psql('postgres', "SELECT customer_vault.schedule_purge('* * * * *')");
like($gone, qr/^\d+$/, "schedule_purge returns the job id ($gone)");
is($node->safe_psql('postgres',
		"SELECT jobname, schedule, command, database, username = current_user, active FROM cron.job WHERE jobid = $gone"),
	"customer_vault_purge|* * * * *|CALL customer_vault.purge()|postgres|t|t",
	'cron.job holds the purge job for this database and user');

# schedule again: the job is replaced, not duplicated
my $jobid2 = $node->safe_psql('postgres', "SELECT customer_vault.schedule_purge('15 3 * * *')");
is($jobid2, $gone, 'schedule_purge again returns the same job id');
is($node->safe_psql('postgres', "SELECT count(*), min(schedule) FROM cron.job WHERE jobname = 'customer_vault_purge'"),
	'1|15 3 * * *', 'one job named customer_vault_purge, with the new schedule');
my $jobid3 = $node->safe_psql('postgres', 'SELECT customer_vault.schedule_purge()');
is($jobid3, $gone, 'schedule_purge() with the default schedule: same job id');
is($node->safe_psql('postgres', "SELECT count(*), min(schedule), min(jobid) FROM cron.job WHERE jobname = 'customer_vault_purge'"),
	"1|15 3 * * *|$gone", 'the default schedule is 15 3 * * *, still one job');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cron.job'), '1', 'no other job created');

# back to the short schedule and at once (the next statement, its own
# transaction) unscheduled: it must never run
is($node->safe_psql('postgres',
		"SELECT customer_vault.schedule_purge('$every') = $gone;\nSELECT customer_vault.unschedule_purge();"),
	"t\nt", 'short schedule again (same job id), then unschedule_purge returns true');
my $unscheduled_at = time;
is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job WHERE jobname = 'customer_vault_purge'"),
	'0', 'the job is gone');
is($node->safe_psql('postgres', 'SELECT customer_vault.unschedule_purge()'), 'f',
	'unschedule_purge a second time returns false');

# ---------- scheduled anew: pg_cron runs the purge ----------
# The job unscheduled above would have run at the same time as this one (the
# same minute boundary with pg_cron 1.4): that it did not is checked below.
my $jobid = $node->safe_psql('postgres', "SELECT customer_vault.schedule_purge('$every')");
isnt($jobid, $gone, "a new job after unschedule_purge ($jobid)");

my $t0 = time;
my $done_q = q{
SELECT EXISTS (SELECT 1 FROM customer_vault.purge_log WHERE NOT dry_run AND finished_at IS NOT NULL)
   AND EXISTS (SELECT 1 FROM cron.job_run_details d
                WHERE d.jobid = } . $jobid . q{ AND d.command = 'CALL customer_vault.purge()'
                  AND d.status = 'succeeded')};
my ($done, $failed) = (0, '');
while (time - $t0 < 150)
{
	if ($node->safe_psql('postgres', $done_q) eq 't')
	{
		$done = 1;
		last;
	}
	$failed = $node->safe_psql('postgres',
		"SELECT string_agg(status || ': ' || coalesce(return_message, ''), '; ') FROM cron.job_run_details "
		  . "WHERE jobid = $jobid AND status = 'failed'");
	last if $failed ne '';
	usleep(200_000);
}
ok($done, sprintf('pg_cron ran the purge and it succeeded (after %.0fs)', time - $t0))
  or diag("job runs: "
	  . $node->safe_psql('postgres', 'SELECT jobid, status, return_message FROM cron.job_run_details'));
is($failed, '', 'no failed job run');
note sprintf('scheduled purge finished %.1fs after scheduling', time - $t0);

# stop it before it runs again, so that the counts below are of one run
is($node->safe_psql('postgres', 'SELECT customer_vault.unschedule_purge()'), 't', 'unschedule_purge of the new job');

# the unscheduled job: two of its periods have passed since unschedule_purge
# (with pg_cron 1.4, the boundary the new job ran at), and it never ran
usleep(200_000) while time < $unscheduled_at + 2 * $period && $seconds;
is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job_run_details WHERE jobid = $gone"), '0',
	'pg_cron never ran the job that unschedule_purge removed');

is($node->safe_psql('postgres',
		"SELECT return_message FROM cron.job_run_details WHERE jobid = $jobid AND status = 'succeeded' ORDER BY runid LIMIT 1"),
	'CALL', 'the job run reports CALL');
is($node->safe_psql('postgres',
		"SELECT tbl, action, rows_purged, rows_held, batches >= 1, dry_run, role = current_user, "
		  . "finished_at >= started_at, started_at >= run_started "
		  . "FROM customer_vault.purge_log WHERE finished_at IS NOT NULL ORDER BY id LIMIT 1"),
	'public.events|delete|121|20|t|f|t|t|t',
	'purge_log: the scheduled run purged 121 rows, held 20, as the scheduling role');
is($node->safe_psql('postgres',
		"SELECT abs(extract(epoch FROM (cutoff - ((run_started AT TIME ZONE 'UTC') - interval '30 days')))) < 5 "
		  . "FROM customer_vault.purge_log ORDER BY id LIMIT 1"),
	't', 'purge_log cutoff is the UTC wall clock of the run minus 30 days');

my %left = map { split /\|/ } split /\n/,
  $node->safe_psql('postgres', 'SELECT note, count(*) FROM events GROUP BY note');
for my $k (sort keys %expect_kept)
{
	is($left{$k} // 0, $expect_kept{$k}, "$k rows kept ($expect_kept{$k})");
}
for my $k (sort keys %expect_gone)
{
	is($left{$k} // 0, 0, "$k rows purged");
}
is($node->safe_psql('postgres', 'SELECT expired, held, to_purge FROM customer_vault.purge_preview()'),
	'20|20|0', 'purge_preview afterwards: only the held rows are past retention');

# ---------- a database without pg_cron ----------
$node->safe_psql('postgres', 'CREATE DATABASE nocron');
$node->safe_psql('nocron', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
});
($ret, $out, $err) = $node->psql('nocron', 'SELECT customer_vault.schedule_purge()');
isnt($ret, 0, 'schedule_purge fails in a database without pg_cron');
like($err, qr/pg_cron is not installed/, 'error says pg_cron is not installed');
like($err, qr/HINT:.*CREATE EXTENSION pg_cron/s, 'the hint says how to install it');
($ret, $out, $err) = $node->psql('nocron', 'SELECT customer_vault.unschedule_purge()');
isnt($ret, 0, 'unschedule_purge fails in a database without pg_cron');
like($err, qr/pg_cron is not installed/, 'error says pg_cron is not installed');

# a schema named cron does not fool the check
$node->safe_psql('nocron', 'CREATE SCHEMA cron');
($ret, $out, $err) = $node->psql('nocron', "SELECT customer_vault.schedule_purge('* * * * *')");
isnt($ret, 0, 'schedule_purge still fails with a bare schema named cron');
like($err, qr/pg_cron is not installed/, 'error says pg_cron is not installed');

# a non-privileged role cannot schedule
$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE plain; SELECT customer_vault.schedule_purge('* * * * *')");
isnt($ret, 0, 'a role without customer_vault_admin cannot schedule the purge');
like($err, qr/permission denied/, 'permission denied');

$node->stop;
done_testing();
