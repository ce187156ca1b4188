# A prepared withdrawal X surviving a restart (or a promotion) and finished
# with COMMIT PREPARED before anything seeded the list of pending prepared
# xids (rev-walk F1).  An older prepared transaction Y < X holds every
# snapshot's xmin at or below Y, so a seed made after X finished neither
# kept X (not in progress) nor covered it (not below the xmin): a cache read
# under a snapshot taken while X was prepared got the same tag as snapshots
# that see X committed, and the withdrawal was ignored by every session
# (new ones too) until the next consent change.  The seed is gone: no
# snapshot whose xmin precedes the horizon (the first xid assignable after
# the restart or promotion) shares a cache with another, so while Y (or X)
# is prepared the caches serve one snapshot each; once nothing below the
# horizon is left, they are reused again (checked at the end of each part).
#  A. restart; the first consent check after COMMIT PREPARED is in the same
#     database (another purpose);
#  B. restart; it is in another database;
#  C. a standby with both transactions prepared is promoted; a session that
#     connected to the hot standby before the promotion opens the old
#     snapshot.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('seedgap', key => random_root_key(),
	conf => "max_prepared_transactions = 10\nwal_level = replica\nmax_wal_senders = 4\n");
$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE DATABASE other;
CREATE EXTENSION customer_vault CASCADE;
CREATE ROLE marketer;
SELECT customer_vault.define_purpose('newsletter');
SELECT customer_vault.allow_purpose('marketer', 'newsletter');
SELECT customer_vault.define_purpose('analytics');
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
SELECT count(customer_vault.grant_consent(g::text, 'newsletter', '{"form": "tap"}'))
  FROM generate_series(1, 40) g;
});
$node->safe_psql('other', q{SET client_min_messages = warning; CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.define_purpose('newsletter');
CREATE ROLE m2;
CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t VALUES (1);
SELECT customer_vault.enable_consent_policy('t', 'id', 'newsletter');
GRANT SELECT ON t TO m2;});

# Y (any role's leftover prepared transaction, older xid), then X (the
# withdrawal of subject $subject), both prepared
sub prepare_pair
{
	my ($n, $tag, $subject) = @_;
	my $s = $n->background_psql('postgres');
	$s->query_safe('BEGIN');
	$s->query_safe('INSERT INTO noise VALUES (1)');
	$s->query_safe("PREPARE TRANSACTION 'y$tag'");
	$s->query_safe('BEGIN');
	$s->query_safe("SELECT customer_vault.withdraw_consent('$subject', 'newsletter')");
	$s->query_safe("PREPARE TRANSACTION 'x$tag'");
	$s->quit;
}

# after the restart or promotion: $b opens a REPEATABLE READ snapshot while X
# is prepared; X is committed; a consent check runs first (in $seed_db: on the
# old code, the seed of the list of pending prepared xids); then the
# withdrawal must hold everywhere from the next statement on
sub check_gap
{
	my ($n, $b, $tag, $subject, $seed_db) = @_;
	my $one = "SELECT count(*) FROM customers WHERE id = $subject";
	my $fresh = "SET ROLE marketer; $one";
	$b->query_safe('SET ROLE marketer');
	$b->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
	$b->query_safe('SELECT count(*) FROM noise');    # snapshot T: X in progress
	$n->safe_psql('postgres', "COMMIT PREPARED 'x$tag'");
	if ($seed_db eq 'other')
	{
		is($n->safe_psql('other', 'SET ROLE m2; SELECT count(*) FROM t'), '0',
			"$tag: a consent check in the other database");
	}
	else
	{
		is($n->safe_psql('postgres', 'SET ROLE marketer; SELECT count(*) FROM visits'), '0',
			"$tag: a consent check for another purpose");
	}
	is($b->query_safe($one), '1', "$tag: the old REPEATABLE READ snapshot still sees the consent");
	$b->query_safe('COMMIT');
	is($b->query_safe($one), '0', "$tag: same session, next statement: withdrawn");
	is($n->safe_psql('postgres', $fresh), '0', "$tag: a new session: withdrawn");
	# Y (no consent change, but older than the horizon) still prepared
	for (1 .. 3)
	{
		$n->safe_psql('postgres', 'INSERT INTO noise VALUES (3)');
		is($b->query_safe($one), '0', "$tag: withdrawn (warm, Y prepared)");
	}
	$n->safe_psql('postgres', "ROLLBACK PREPARED 'y$tag'");
	$n->safe_psql('postgres', 'INSERT INTO noise VALUES (2)');
	is($b->query_safe($one), '0', "$tag: after Y is resolved: withdrawn");
	is($n->safe_psql('postgres', $fresh), '0', "$tag: after Y is resolved, a new session: withdrawn");
	# nothing below the horizon is left: the warm session reuses its cache
	my $builds = 'SELECT customer_vault._consent_cache_builds()';
	my $b1 = $b->query_safe($builds);
	for (1 .. 3)
	{
		$n->safe_psql('postgres', 'INSERT INTO noise VALUES (4)');
		is($b->query_safe($one), '0', "$tag: withdrawn (warm, Y resolved)");
	}
	is($b->query_safe($builds), $b1, "$tag: once Y is resolved, the warm session reuses its cache");
	is($n->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0', "$tag: nothing left prepared");
}

# ---- A. restart, seed in the same database
prepare_pair($node, 'a', 3);
$node->restart;
my $b = $node->background_psql('postgres');
check_gap($node, $b, 'a', 3, 'postgres');
$b->quit;

# ---- B. restart, seed in another database
prepare_pair($node, 'b', 4);
$node->restart;
$b = $node->background_psql('postgres');
check_gap($node, $b, 'b', 4, 'other');
$b->quit;

# ---- D. COMMIT/ROLLBACK PREPARED are never refused for the state of the
# extension: a database without it, but with a schema of its name (where
# the consent check's lookup raises "not installed")
$node->safe_psql('postgres', 'CREATE DATABASE plain');
$node->safe_psql('plain', 'CREATE SCHEMA customer_vault; CREATE TABLE p (v int)');
$node->safe_psql('plain', q{BEGIN; INSERT INTO p VALUES (1); PREPARE TRANSACTION 'p1';
BEGIN; INSERT INTO p VALUES (2); PREPARE TRANSACTION 'p2';});
$node->restart;
$node->safe_psql('plain', q{COMMIT PREPARED 'p1'});
$node->safe_psql('plain', q{ROLLBACK PREPARED 'p2'});
is($node->safe_psql('plain', 'SELECT string_agg(v::text, \',\') FROM p'), '1',
	'D: COMMIT and ROLLBACK PREPARED in a database without the extension');
is($node->safe_psql('postgres', 'SET ROLE marketer; SELECT count(*) FROM customers'), '38',
	'D: consent checks afterwards');

# ---- C. promotion of a standby on which both are prepared
$node->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('seedgap_standby');
$standby->init_from_backup($node, 'bk', has_streaming => 1);
$standby->start;
prepare_pair($node, 'c', 5);
$node->wait_for_catchup($standby, 'replay', $node->lsn('insert'));
$node->stop;
# a hot standby session that outlives the promotion
$b = $standby->background_psql('postgres');
is($b->query_safe('SELECT pg_is_in_recovery()'), 't', 'C: the session started on the hot standby');
is($b->query_safe('SET ROLE marketer; SELECT count(*) FROM customers WHERE id = 5'), '1',
	'C: the hot standby sees the consent (withdrawal prepared)');
$b->query_safe('RESET ROLE');
$standby->promote;
is($standby->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '2', 'C: both prepared after the promotion');
check_gap($standby, $b, 'c', 5, 'postgres');
$b->quit;
$standby->stop;
done_testing();
