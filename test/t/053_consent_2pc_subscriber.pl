# A withdrawal prepared on a logical-replication subscriber (two_phase =
# true) survives a restart of the subscriber, and the publisher's COMMIT
# PREPARED is applied there by the apply worker, which calls
# FinishPreparedTransaction directly (no ProcessUtility): nothing of the
# extension runs when it finishes.  An older prepared transaction Y (any
# role's leftover) holds every snapshot's xmin below X.  A session took a
# snapshot while X was prepared; the first consent check after X committed
# runs elsewhere (another purpose, another database).  Every session must
# honour the withdrawal from its next statement on (old and new sessions,
# shared cache versions included).
#  A. the subscriber restarts (fast shutdown); the first consent check after
#     COMMIT PREPARED is in the same database (another purpose);
#  B. the subscriber crashes (immediate stop, crash recovery); the first
#     consent check is in another database;
#  C. no older prepared transaction: the same;
#  D. no restart at all.
# In each, once nothing prepared is left, the caches are reused again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $conf = "max_prepared_transactions = 10\nautovacuum = off\n";
my $pub = new_vault_node('pub2pc', key => random_root_key(),
	conf => $conf . "wal_level = logical\nmax_wal_senders = 4\nmax_replication_slots = 4\n");
my $sub = new_vault_node('sub2pc', key => random_root_key(), conf => $conf);

my $purposes = q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.define_purpose('newsletter');
SELECT customer_vault.define_purpose('analytics');
};
$pub->safe_psql('postgres', $purposes . q{
SELECT count(customer_vault.grant_consent(g::text, 'newsletter', '{"form": "tap"}'))
  FROM generate_series(1, 40) g;
CREATE PUBLICATION consent_pub FOR TABLE customer_vault.consent_state;
});
$sub->safe_psql('postgres', $purposes . q{
CREATE DATABASE other;
CREATE ROLE marketer;
SELECT customer_vault.allow_purpose('marketer', 'newsletter');
SELECT customer_vault.allow_purpose('marketer', 'analytics');
CREATE TABLE visits (id bigint PRIMARY KEY);
INSERT INTO visits SELECT g FROM generate_series(1, 5) g;
SELECT customer_vault.enable_consent_policy('visits', 'id', 'analytics');
GRANT SELECT ON visits TO marketer;
CREATE TABLE customers (id bigint PRIMARY KEY, name text);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g;
SELECT customer_vault.enable_consent_policy('customers', 'id', 'newsletter');
GRANT SELECT ON customers TO marketer;
CREATE TABLE noise (v int);
GRANT SELECT ON noise TO marketer;
GRANT USAGE ON SCHEMA customer_vault TO marketer;
GRANT EXECUTE ON FUNCTION customer_vault._consent_cache_builds() TO marketer;
});
$sub->safe_psql('other', q{SET client_min_messages = warning; CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.define_purpose('newsletter');
CREATE ROLE m2;
CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t VALUES (1);
SELECT customer_vault.enable_consent_policy('t', 'id', 'newsletter');
GRANT SELECT ON t TO m2;});
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres',
	"CREATE SUBSCRIPTION consent_sub CONNECTION '$connstr' PUBLICATION consent_pub WITH (two_phase = true)");
$sub->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')")
  or die 'the subscription did not sync';
$sub->poll_query_until('postgres', "SELECT subtwophasestate = 'e' FROM pg_subscription")
  or die 'two_phase was not enabled';
$pub->wait_for_catchup('consent_sub');

my $one_of = sub { "SELECT count(*) FROM customers WHERE id = $_[0]" };
my $builds = 'SELECT customer_vault._consent_cache_builds()';
is($sub->safe_psql('postgres', 'SET ROLE marketer; SELECT count(*) FROM customers'), '40',
	'the replicated grants are seen on the subscriber');

# the number of transactions the apply worker left prepared on the subscriber
sub sub_prepared
{
	return $sub->safe_psql('postgres', q{SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'pg\_gid\_%'});
}

# before the restart: a warm session; Y (unless !$with_y) prepared on the
# subscriber; the publisher prepares the withdrawal X of $subject, which the
# apply worker prepares on the subscriber (after Y: a later xid)
sub prepare_pair
{
	my ($tag, $subject, $with_y) = @_;
	my $w = $sub->background_psql('postgres');
	$w->query_safe('SET ROLE marketer');
	is($w->query_safe($one_of->($subject)), '1', "$tag: before: a warm session sees the consent");
	my $b1 = $w->query_safe($builds);
	$sub->safe_psql('postgres', 'INSERT INTO noise VALUES (0)');
	$w->query_safe($one_of->($subject));
	is($w->query_safe($builds), $b1, "$tag: before: the warm session reuses its cache");
	$w->quit;
	$sub->safe_psql('postgres', "BEGIN; INSERT INTO noise VALUES (1); PREPARE TRANSACTION 'y$tag'")
	  if $with_y;
	$pub->safe_psql('postgres',
		"BEGIN; SELECT customer_vault.withdraw_consent('$subject', 'newsletter'); PREPARE TRANSACTION 'x$tag'");
	$sub->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_prepared_xacts WHERE gid LIKE 'pg\_gid\_%'})
	  or die 'the apply worker did not prepare the withdrawal';
	return;
}

# after the restart: $b (connected now) opens a REPEATABLE READ snapshot while
# X is prepared; the publisher commits X, the apply worker commits it here; a
# consent check runs first in $first_db; then the withdrawal must hold in
# every session from its next statement on
sub check_after
{
	my ($tag, $subject, $first_db, $with_y, $left) = @_;
	my $one = $one_of->($subject);
	my $fresh = "SET ROLE marketer; $one";
	is(sub_prepared(), '1', "$tag: X is prepared on the subscriber");
	my $b = $sub->background_psql('postgres');
	my $w = $sub->background_psql('postgres');
	$w->query_safe('SET ROLE marketer');
	$b->query_safe('SET ROLE marketer');
	$b->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
	$b->query_safe('SELECT count(*) FROM noise');    # snapshot T: X in progress
	$pub->safe_psql('postgres', "COMMIT PREPARED 'x$tag'");
	$pub->wait_for_catchup('consent_sub');
	$sub->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_prepared_xacts WHERE gid LIKE 'pg\_gid\_%'})
	  or die 'the apply worker did not commit the withdrawal';
	if ($first_db eq 'other')
	{
		is($sub->safe_psql('other', 'SET ROLE m2; SELECT count(*) FROM t'), '0',
			"$tag: a consent check in the other database");
	}
	else
	{
		is($sub->safe_psql('postgres', 'SET ROLE marketer; SELECT count(*) FROM visits'), '0',
			"$tag: a consent check for another purpose");
	}
	is($b->query_safe($one), '1', "$tag: the old REPEATABLE READ snapshot still sees the consent");
	$b->query_safe('COMMIT');
	is($b->query_safe($one), '0', "$tag: same session, next statement: withdrawn");
	is($w->query_safe($one), '0', "$tag: another old session, first check: withdrawn");
	is($sub->safe_psql('postgres', $fresh), '0', "$tag: a new session: withdrawn");
	is($sub->safe_psql('postgres', 'SET ROLE marketer; SELECT count(*) FROM customers'), $left,
		"$tag: a new session: every other subject unchanged ($left left)");
	for (1 .. 3)
	{
		$sub->safe_psql('postgres', 'INSERT INTO noise VALUES (3)');
		is($b->query_safe($one), '0', "$tag: withdrawn (after an unrelated commit)");
		is($w->query_safe($one), '0', "$tag: withdrawn in the other session (after an unrelated commit)");
	}
	$sub->safe_psql('postgres', "ROLLBACK PREPARED 'y$tag'") if $with_y;
	$sub->safe_psql('postgres', 'INSERT INTO noise VALUES (2)');
	is($b->query_safe($one), '0', "$tag: after Y is resolved: withdrawn");
	is($sub->safe_psql('postgres', $fresh), '0', "$tag: after Y is resolved, a new session: withdrawn");
	# nothing below the horizon is left: the warm session reuses its cache again
	$b->query_safe($one);
	my $b1 = $b->query_safe($builds);
	for (1 .. 3)
	{
		$sub->safe_psql('postgres', 'INSERT INTO noise VALUES (4)');
		is($b->query_safe($one), '0', "$tag: withdrawn (warm)");
	}
	is($b->query_safe($builds), $b1, "$tag: once nothing prepared is left, the cache is reused");
	is($pub->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
		"$tag: nothing left prepared on the publisher");
	is($sub->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
		"$tag: nothing left prepared on the subscriber");
	$b->quit;
	$w->quit;
	return;
}

# ---- A. restart; the first check in the same database
prepare_pair('a', 3, 1);
$sub->restart;
check_after('a', 3, 'postgres', 1, 39);

# ---- B. crash (immediate stop: crash recovery); the first check in another database
prepare_pair('b', 4, 1);
$sub->stop('immediate');
$sub->start;
check_after('b', 4, 'other', 1, 38);

# ---- C. no older prepared transaction
prepare_pair('c', 5, 0);
$sub->restart;
check_after('c', 5, 'postgres', 0, 37);

# ---- D. no restart: the apply worker prepares and commits X (recorded at
# PREPARE like any prepared consent change), Y newer than the horizon
prepare_pair('d', 6, 1);
check_after('d', 6, 'postgres', 1, 36);

$sub->safe_psql('postgres', 'DROP SUBSCRIPTION consent_sub');
$sub->stop;
$pub->stop;
done_testing();
