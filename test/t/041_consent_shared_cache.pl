# The shared consent cache (src/scache.c): a version of a purpose's live
# opt-ins built once into shared memory and used by every session of the
# database, exactly as right as each session's own cache:
#  - two sessions that use the same shared version answer identically, and
#    agree with consent_state read directly (integer subjects in a bitmap,
#    text subjects <prefix><integer> interned to a bitmap, other text in the
#    hash table, end dates past and future);
#  - a withdrawal is honoured by the next statement of every session (a new
#    version replaces the old one);
#  - a withdrawal committed while a version is being built is never lost
#    (customer_vault.consent_build_delay holds the build open);
#  - parallel workers: correct counts, also when the leader's transaction has
#    withdrawn a consent itself (its workers must not use the shared version);
#  - a backend terminated (FATAL) or SIGKILLed during a build leaves no claim
#    and no version behind: the next session builds and publishes again;
#  - over customer_vault.shared_consent_cache_size, or with it 0, every
#    session uses its own cache, with the same answers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use CvTest;

# (the test framework turns restart_after_crash off; the SIGKILL part needs it on)
my $node = new_vault_node('scache', key => random_root_key(),
	conf => "max_worker_processes = 8\nmax_parallel_workers = 4\nrestart_after_crash = on\n");
$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
CREATE ROLE marketer;
SELECT customer_vault.define_purpose('ints');
SELECT customer_vault.define_purpose('texts');
SELECT customer_vault.allow_purpose('marketer', 'ints');
SELECT customer_vault.allow_purpose('marketer', 'texts');
CREATE TABLE c_int (id bigint PRIMARY KEY, note text);
CREATE TABLE c_txt (id bigint PRIMARY KEY, subject text NOT NULL);
INSERT INTO c_int SELECT g, 'n' || g FROM generate_series(1, 3000) g;
-- text subjects: mostly cust-<n>, some not canonical (cust-007), uuids, emails
INSERT INTO c_txt SELECT g, CASE WHEN g % 10 = 1 THEN md5(g::text)::uuid::text
                                 WHEN g % 10 = 2 THEN 'cust-00' || g
                                 WHEN g % 10 = 3 THEN 'person' || g || '@example.com'
                                 ELSE 'cust-' || g END
  FROM generate_series(1, 3000) g;
SELECT customer_vault.enable_consent_policy('c_int', 'id', 'ints');
SELECT customer_vault.enable_consent_policy('c_txt', 'subject', 'texts');
GRANT SELECT ON c_int, c_txt TO marketer;
-- most state written straight into consent_state (what the caches read):
-- about half consent, 1 in 7 with an end date in the future, 1 in 11 with one
-- in the past, 1 in 13 withdrawn
INSERT INTO customer_vault.consent_state (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id)
SELECT s, p, g % 13 <> 0,
       CASE WHEN g % 7 = 0 THEN now() + interval '1 year' WHEN g % 11 = 0 THEN now() - interval '1 day' END,
       now() - interval '30 days', CASE WHEN g % 13 = 0 THEN now() END, 0
  FROM (SELECT id::text, 'ints', id FROM c_int WHERE hashint8(id) & 1 = 0
        UNION ALL SELECT subject, 'texts', id FROM c_txt WHERE hashint8(id) & 1 = 0) x(s, p, g);
-- also an integer subject written with a leading zero (text, not the integer)
INSERT INTO customer_vault.consent_state (subject, purpose, granted, granted_at, ledger_id)
VALUES ('0042', 'ints', true, now(), 0);
ANALYZE c_int, c_txt;
});

# what the policy must let through, read from consent_state directly
sub truth
{
	my ($tbl, $col, $purpose) = @_;
	return $node->safe_psql('postgres', qq{
SELECT count(*) || ':' || coalesce(sum(id), 0) FROM $tbl t
 WHERE EXISTS (SELECT 1 FROM customer_vault.consent_state c
                WHERE c.subject = t.${col}::text AND c.purpose = '$purpose' AND c.granted
                  AND (c.valid_until IS NULL OR c.valid_until > now()))});
}
my $q_int = q{SELECT count(*) || ':' || coalesce(sum(id), 0) FROM c_int};
my $q_txt = q{SELECT count(*) || ':' || coalesce(sum(id), 0) FROM c_txt};
# has_consent of edge cases, as one string
my $q_edges = q{SELECT string_agg(customer_vault.has_consent(s, p)::text, ',' ORDER BY s, p)
  FROM (VALUES ('42', 'ints'), ('0042', 'ints'), ('042', 'ints'), ('-1', 'ints'), ('', 'ints'),
               ('cust-7', 'texts'), ('cust-07', 'texts'), ('cust-0012', 'texts'), ('cust-', 'texts'),
               ('cust-99999', 'texts'), ('Cust-4', 'texts'), ('cust-4x', 'texts'),
               ('1', 'texts'), ('cust-14', 'ints')) v(s, p)};
my $edges_truth = $node->safe_psql('postgres', q{SELECT string_agg(
   EXISTS (SELECT 1 FROM customer_vault.consent_state c WHERE c.subject = s AND c.purpose = p AND c.granted
            AND (c.valid_until IS NULL OR c.valid_until > now()))::text, ',' ORDER BY s, p)
  FROM (VALUES ('42', 'ints'), ('0042', 'ints'), ('042', 'ints'), ('-1', 'ints'), ('', 'ints'),
               ('cust-7', 'texts'), ('cust-07', 'texts'), ('cust-0012', 'texts'), ('cust-', 'texts'),
               ('cust-99999', 'texts'), ('Cust-4', 'texts'), ('cust-4x', 'texts'),
               ('1', 'texts'), ('cust-14', 'ints')) v(s, p)});

# count as marketer in a session; then what answered it
sub counted
{
	my ($s, $q, $purpose) = @_;
	$s->query_safe('SET ROLE marketer');
	my $r = $s->query_safe($q);
	$s->query_safe('RESET ROLE');
	my $src = $s->query_safe("SELECT customer_vault._consent_cache_source('$purpose')");
	return ($r, $src);
}

my $int_truth = truth('c_int', 'id', 'ints');
my $txt_truth = truth('c_txt', 'subject', 'texts');
note "truth: ints $int_truth, texts $txt_truth";

# ---- two sessions from the same shared version
my $s1 = $node->background_psql('postgres');
my $s2 = $node->background_psql('postgres');
my ($r1, $src1) = counted($s1, $q_int, 'ints');
my ($r2, $src2) = counted($s2, $q_int, 'ints');
like($src1, qr/^shared [0-9]+$/, 'first session: integer subjects answered by a shared version');
is($src2, $src1, 'second session: the very same shared version, not a build of its own');
is($r1, $int_truth, 'first session: exactly the consenting rows');
is($r2, $r1, 'second session: the same rows');
($r1, $src1) = counted($s1, $q_txt, 'texts');
($r2, $src2) = counted($s2, $q_txt, 'texts');
like($src1, qr/^shared [0-9]+$/, 'text subjects: a shared version');
is($src2, $src1, 'text subjects: the same version in both sessions');
is($r1, $txt_truth, 'text subjects: exactly the consenting rows');
is($r2, $r1, 'text subjects: both sessions agree');
is($s1->query_safe($q_edges), $edges_truth, 'edge-case subjects answered like consent_state says (session 1)');
is($s2->query_safe($q_edges), $edges_truth, 'edge-case subjects answered like consent_state says (session 2)');
my $layout = $node->safe_psql('postgres',
	q{SELECT string_agg(purpose || '=' || subjects, ',' ORDER BY purpose) FROM customer_vault._consent_shared_cache() WHERE current});
like($layout, qr/^ints=[0-9]+,texts=[0-9]+$/, "both purposes have a current version ($layout)");

# ---- a withdrawal is honoured by the next statement of every session
my ($v_before) = $src1 =~ /([0-9]+)/;
my $victim = $node->safe_psql('postgres',
	q{SELECT min(subject) FROM customer_vault.consent_state WHERE purpose = 'texts' AND granted AND valid_until IS NULL AND subject LIKE 'cust-%'});
$node->safe_psql('postgres', "SELECT customer_vault.withdraw_consent('$victim', 'texts', '{\"form\": \"tap\"}')");
my $txt_truth2 = truth('c_txt', 'subject', 'texts');
isnt($txt_truth2, $txt_truth, 'the withdrawal changes what may be seen');
($r1, $src1) = counted($s1, $q_txt, 'texts');
($r2, $src2) = counted($s2, $q_txt, 'texts');
is($r1, $txt_truth2, 'session 1: the withdrawal is honoured by the next statement');
is($r2, $txt_truth2, 'session 2: too');
my ($v_after) = $src1 =~ /([0-9]+)/;
cmp_ok($v_after // 0, '>', $v_before, 'a new shared version replaced the old one');
is($src2, $src1, 'and both sessions use it');

# ---- a withdrawal committed while a version is being built is never lost
sub start_psql
{
	my ($app, @cmds) = @_;
	my %h = (out => '', err => '');
	local $ENV{PGAPPNAME} = $app;
	$h{run} = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), map { ('-c', $_) } @cmds ],
		'>', \$h{out}, '2>', \$h{err});
	return \%h;
}
# make the current version stale, so that the next count builds
$node->safe_psql('postgres', q{SELECT customer_vault.define_purpose('texts', description => 'stale 1')});
my $truth_before = truth('c_txt', 'subject', 'texts');
my $b = start_psql('builder', 'SET customer_vault.consent_build_delay = 4000', 'SET ROLE marketer', $q_txt);
ok($node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM customer_vault._consent_shared_cache() WHERE purpose = 'texts' AND state = 'building'}),
	'a build is in progress');
my $victim2 = $node->safe_psql('postgres',
	qq{SELECT min(subject) FROM customer_vault.consent_state WHERE purpose = 'texts' AND granted AND valid_until IS NULL AND subject LIKE 'cust-%' AND subject <> '$victim'});
$node->safe_psql('postgres', "SELECT customer_vault.withdraw_consent('$victim2', 'texts', '{\"form\": \"tap\"}')");
my $truth_after = truth('c_txt', 'subject', 'texts');
isnt($truth_after, $truth_before, 'a withdrawal committed during the build');
$b->{run}->finish;
is($b->{out}, "$truth_before\n", "the builder's own query answers for its snapshot (from before the withdrawal)");
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM customer_vault._consent_shared_cache() WHERE purpose = 'texts' AND current}), '0',
	'the version built before the withdrawal is not current');
($r1, $src1) = counted($s1, $q_txt, 'texts');
is($r1, $truth_after, 'the next statement of another session honours the withdrawal');
my $s3 = $node->background_psql('postgres');
my ($r3, $src3) = counted($s3, $q_txt, 'texts');
is($r3, $truth_after, 'so does a new session');
is($src3, $src1, 'from the same new version');

# ---- parallel workers
my $par = q{SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off};
$s3->query_safe($par);
$s3->query_safe('SET ROLE marketer');
my $plan = $s3->query_safe("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $q_txt");
like($plan, qr/Workers Launched: [1-9]/, 'the count runs in parallel workers');
is($s3->query_safe($q_txt), $truth_after, 'parallel workers: exactly the consenting rows');
is($s3->query_safe($q_int), truth('c_int', 'id', 'ints'), 'parallel workers, integer subjects: exactly the consenting rows');
$s3->query_safe('RESET ROLE');
# the leader's own uncommitted withdrawal: its workers must see it
my $victim3 = $node->safe_psql('postgres',
	qq{SELECT min(id) FROM c_int WHERE id::text IN (SELECT subject FROM customer_vault.consent_state WHERE purpose = 'ints' AND granted AND valid_until IS NULL)});
my $int_now = truth('c_int', 'id', 'ints');
my ($n_now, $sum_now) = split /:/, $int_now;
$s3->query_safe('BEGIN');
$s3->query_safe("SELECT customer_vault.withdraw_consent('$victim3', 'ints', '{\"form\": \"tap\"}')");
$s3->query_safe('SET LOCAL ROLE marketer');
like($s3->query_safe("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $q_int"), qr/Workers Launched: [1-9]/,
	'in a transaction that withdrew a consent itself, still in parallel');
is($s3->query_safe($q_int), ($n_now - 1) . ':' . ($sum_now - $victim3),
	"parallel workers see their leader's uncommitted withdrawal");
$s3->query_safe('ROLLBACK');
$s3->query_safe('SET ROLE marketer');
is($s3->query_safe($q_int), $int_now, 'and after the rollback, the consent again');
$s3->query_safe('RESET ROLE');

# ---- a backend terminated (FATAL) during a build releases its claim
$node->safe_psql('postgres', q{SELECT customer_vault.define_purpose('ints', description => 'stale 2')});
$b = start_psql('builder_fatal', 'SET customer_vault.consent_build_delay = 60000', 'SET ROLE marketer', $q_int);
ok($node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM customer_vault._consent_shared_cache() WHERE purpose = 'ints' AND state = 'building'}),
	'a build is in progress (to terminate)');
is($node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'builder_fatal'}),
	't', 'builder terminated');
$b->{run}->finish;
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM customer_vault._consent_shared_cache() WHERE purpose = 'ints' AND state = 'building'}),
	'its claim is released');
my $s4 = $node->background_psql('postgres');
my ($r4, $src4) = counted($s4, $q_int, 'ints');
is($r4, $int_now, 'after the terminated build: exactly the consenting rows');
like($src4, qr/^shared /, 'and the next session built and published a version');
$s4->quit;

# ---- SIGKILL during a build: the server reinitializes, no version survives, the build is redone
$node->safe_psql('postgres', q{SELECT customer_vault.define_purpose('ints', description => 'stale 3')});
$b = start_psql('builder_kill', 'SET customer_vault.consent_build_delay = 60000', 'SET ROLE marketer', $q_int);
ok($node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM customer_vault._consent_shared_cache() WHERE purpose = 'ints' AND state = 'building'}),
	'a build is in progress (to kill)');
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE application_name = 'builder_kill'});
my $log_offset = -s $node->logfile;
$s1->quit;
$s2->quit;
$s3->quit;
kill_and_recover($node, $pid, $log_offset, 'SIGKILL during a build');
$b->{run}->finish;
is($node->safe_psql('postgres', q{SELECT count(*) FROM customer_vault._consent_shared_cache()}), '0',
	'no version and no claim survived the reinitialization');
my $s5 = $node->background_psql('postgres');
my ($r5, $src5) = counted($s5, $q_int, 'ints');
is($r5, $int_now, 'after the crash: exactly the consenting rows');
like($src5, qr/^shared /, 'from a version built again');
is($s5->query_safe($q_edges), $edges_truth, 'edge cases after the crash');
$s5->quit;

# ---- the memory bound: over it, every session uses its own cache, with the same answers
$node->append_conf('postgresql.conf', "customer_vault.shared_consent_cache_size = 1\n");
$node->reload;
$node->safe_psql('postgres', q{SELECT customer_vault.define_purpose('ints', description => 'stale 4')});
my $s6 = $node->background_psql('postgres');
my ($r6, $src6) = counted($s6, $q_int, 'ints');
is($src6, 'local', 'a version over shared_consent_cache_size is not shared: the session reads its own');
is($r6, $int_now, 'with the same answer');
is($s6->query_safe($q_edges), $edges_truth, 'edge cases from the per-backend cache');
is($node->safe_psql('postgres', q{SELECT count(*) FROM customer_vault._consent_shared_cache() WHERE state = 'ready' AND purpose = 'ints' AND current}),
	'0', 'nothing of it was published');
$node->append_conf('postgresql.conf', "customer_vault.shared_consent_cache_size = 0\n");
$node->reload;
$s6->quit;
$s6 = $node->background_psql('postgres');
($r6, $src6) = counted($s6, $q_txt, 'texts');
is($src6, 'local', 'shared_consent_cache_size = 0: no shared cache');
is($r6, $truth_after, 'with the same answer');
$s6->quit;

$node->stop;
done_testing();
