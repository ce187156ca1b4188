# Consent across servers.
# Logical replication: a withdrawal replicated to a subscriber reaches a
# session there that was already open and had its consent cache loaded,
# however many unrelated commits follow (the apply worker fires no statement
# triggers: row triggers enabled for replica sessions tell the cache).
# Hot standby: a withdrawal committed on the primary and replayed is seen by
# a running session on the standby, even when the standby's next snapshot has
# the same xmin and xmax as the one the cache was read under (the in-progress
# xids of a standby snapshot are in its subxip, and they differ).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

# a node preloading customer_vault, with a root key, and replication on
sub vault_node
{
	my ($name, %init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	write_root_key(root_key_file($node), random_root_key() . "\n", 0600);
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'customer_vault'\n"
		  . "customer_vault.root_key_file = '" . root_key_file($node) . "'\n"
		  . "autovacuum = off\n");
	return $node;
}

my $setup = q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.define_purpose('news');
};

# ---------- logical replication ----------
my $pub = vault_node('publisher', allows_streaming => 'logical');
$pub->start;
my $sub = vault_node('subscriber');
$sub->start;
$pub->safe_psql('postgres', $setup . q{
SELECT count(customer_vault.grant_consent(g::text, 'news', '{"form": "tap"}')) FROM generate_series(1, 100) g;
CREATE PUBLICATION consent_pub FOR TABLE customer_vault.consent_state;
});
$sub->safe_psql('postgres', $setup . q{CREATE TABLE noise (n int);});
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres', "CREATE SUBSCRIPTION consent_sub CONNECTION '$connstr' PUBLICATION consent_pub");
$sub->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')")
  or die 'the subscription did not sync';
$pub->wait_for_catchup('consent_sub');

my $s = $sub->background_psql('postgres');
is($s->query_safe(q{SELECT customer_vault.has_consent('1', 'news')}), 't',
	'subscriber: the replicated grant is seen (cache loaded)');
is($s->query_safe(q{SELECT customer_vault.has_consent('1', 'news')}), 't', 'subscriber: again, from the cache');
my $builds = $s->query_safe('SELECT customer_vault._consent_cache_builds()');
# unrelated commits on the subscriber leave the cache in place
$sub->safe_psql('postgres', 'INSERT INTO noise VALUES (1)') for 1 .. 3;
is($s->query_safe(q{SELECT customer_vault.has_consent('1', 'news')}), 't', 'subscriber: unrelated commits');
is($s->query_safe('SELECT customer_vault._consent_cache_builds()'), $builds,
	'subscriber: unrelated commits do not reload the cache');

$pub->safe_psql('postgres', q{SELECT customer_vault.withdraw_consent('1', 'news')});
$pub->wait_for_catchup('consent_sub');
is($sub->safe_psql('postgres', q{SELECT granted FROM customer_vault.consent_state WHERE subject = '1'}), 'f',
	'subscriber: the withdrawal was replicated');
$sub->safe_psql('postgres', 'INSERT INTO noise VALUES (1)') for 1 .. 20;
is($s->query_safe(q{SELECT customer_vault.has_consent('1', 'news')}), 'f',
	'subscriber: the open session honours the replicated withdrawal');
is($s->query_safe(q{SELECT customer_vault.has_consent('2', 'news')}), 't', 'subscriber: other subjects unchanged');

# a replicated grant, and a replicated TRUNCATE
$pub->safe_psql('postgres', q{SELECT customer_vault.grant_consent('1', 'news', '{"form": "again"}')});
$pub->wait_for_catchup('consent_sub');
is($s->query_safe(q{SELECT customer_vault.has_consent('1', 'news')}), 't',
	'subscriber: the open session honours the replicated grant');
$s->quit;
$sub->safe_psql('postgres', 'DROP SUBSCRIPTION consent_sub');
$sub->stop;
$pub->stop;

# ---------- hot standby ----------
my $primary = vault_node('primary', allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', $setup . q{
SELECT customer_vault.grant_consent('1', 'news', '{"form": "tap"}');
CREATE TABLE noise (n int);
});
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
my $catchup = sub {
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
};
$catchup->();

my $reader = $standby->background_psql('postgres');
is($reader->query_safe(q{SELECT customer_vault.has_consent('1', 'news')}), 't', 'standby: the grant is seen');

# an older transaction keeps the standby's xmin in place; the withdrawal runs
# in a second one; a third, later one commits first and fixes xmax
my $old = $primary->background_psql('postgres');
$old->query_safe('BEGIN');
$old->query_safe('SELECT pg_current_xact_id()');
my $w = $primary->background_psql('postgres');
$w->query_safe('BEGIN');
$w->query_safe(q{SELECT customer_vault.withdraw_consent('1', 'news')});
$primary->safe_psql('postgres', 'INSERT INTO noise VALUES (1)');
$catchup->();
is($reader->query_safe(q{SELECT customer_vault.has_consent('1', 'news')}), 't',
	'standby: the withdrawal in progress on the primary is not seen');
my $snap1 = $reader->query_safe('SELECT pg_current_snapshot()');

$w->query_safe('COMMIT');
$catchup->();
my $snap2 = $reader->query_safe('SELECT pg_current_snapshot()');
my ($xmin1, $xmax1) = split /:/, $snap1;
my ($xmin2, $xmax2) = split /:/, $snap2;
note "standby snapshots: $snap1 then $snap2";
is($reader->query_safe(q{SELECT customer_vault.has_consent('1', 'news')}), 'f',
	'standby: the running session honours the replayed withdrawal');
is($standby->safe_psql('postgres', q{SELECT customer_vault.has_consent('1', 'news')}), 'f',
	'standby: a new session too');
# (the case that was wrong: both snapshots had the same xmin and xmax)
ok($xmin1 eq $xmin2 && $xmax1 eq $xmax2, 'standby: the two snapshots had the same xmin and xmax')
  or diag "$snap1 / $snap2";

$old->query_safe('COMMIT');
$old->quit;
$w->quit;
$reader->quit;
$standby->stop;
$primary->stop;
done_testing();
