# Consent checks across sessions: a withdrawal committed in one session is
# honoured by the very next statement of another (READ COMMITTED, also inside
# a transaction block); under REPEATABLE READ the check sees the transaction's
# snapshot like any query; a session's own uncommitted changes count; and,
# under a stream of concurrent grants and withdrawals, may_process() always
# agrees with the consent table read by the same statement.  Then the same
# without shared_preload_libraries (no shared counters).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

sub setup
{
	my ($node) = @_;
	$node->safe_psql(
		'postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
CREATE ROLE marketer;
SELECT customer_vault.define_purpose('newsletter');
SELECT customer_vault.allow_purpose('marketer', 'newsletter');
CREATE TABLE customers (id bigint PRIMARY KEY, name text);
CREATE TABLE noise (n int);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 1000) g;
SELECT customer_vault.enable_consent_policy('customers', 'id', 'newsletter');
GRANT SELECT ON customers TO marketer;
SELECT count(customer_vault.grant_consent(g::text, 'newsletter', '{"form": "tap"}')) FROM generate_series(1, 500) g;
});
}

sub check_sessions
{
	my ($node, $label) = @_;
	my $s1 = $node->background_psql('postgres');
	my $s2 = $node->background_psql('postgres');
	$s1->query_safe('SET ROLE marketer');
	my $count = 'SELECT count(*) FROM customers';

	is($s1->query_safe($count), '500', "$label: 500 customers visible (cache warm)");

	# READ COMMITTED, autocommit: the next statement
	$s2->query_safe(q{SELECT customer_vault.withdraw_consent('1', 'newsletter')});
	is($s1->query_safe($count), '499', "$label: a committed withdrawal is honoured by the next statement");
	$s2->query_safe(q{SELECT customer_vault.grant_consent('501', 'newsletter', '{"form": "tap"}')});
	is($s1->query_safe($count), '500', "$label: a committed grant is honoured by the next statement");

	# READ COMMITTED inside a transaction block: each statement its own snapshot
	$s1->query_safe('BEGIN');
	is($s1->query_safe($count), '500', "$label: in a transaction block");
	$s2->query_safe(q{SELECT customer_vault.withdraw_consent('2', 'newsletter')});
	is($s1->query_safe($count), '499', "$label: next statement in the same READ COMMITTED transaction sees the withdrawal");
	$s1->query_safe('COMMIT');

	# an uncommitted change in another session is not seen
	$s2->query_safe('BEGIN');
	$s2->query_safe(q{SELECT customer_vault.withdraw_consent('3', 'newsletter')});
	is($s1->query_safe($count), '499', "$label: an uncommitted withdrawal elsewhere is not seen");
	$s2->query_safe('ROLLBACK');
	is($s1->query_safe($count), '499', "$label: nor after its rollback");

	# REPEATABLE READ: the transaction's snapshot
	$s1->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
	is($s1->query_safe($count), '499', "$label: REPEATABLE READ transaction starts");
	$s2->query_safe(q{SELECT customer_vault.withdraw_consent('4', 'newsletter')});
	$s2->query_safe(q{SELECT customer_vault.grant_consent('1500', 'newsletter', '{"form": "tap"}')});
	is($s1->query_safe($count), '499', "$label: REPEATABLE READ keeps its snapshot");
	is($s1->query_safe(q{SELECT customer_vault.may_process(4::bigint, 'newsletter')}), 't',
		"$label: may_process answers from the transaction's snapshot");
	$s1->query_safe('COMMIT');
	is($s1->query_safe($count), '498', "$label: after the commit the new state is seen");
	is($s1->query_safe(q{SELECT customer_vault.may_process(4::bigint, 'newsletter')}), 'f',
		"$label: and may_process too");

	# a REPEATABLE READ snapshot taken before a change, first used after it: the
	# cache it reads must not serve later snapshots
	$s2->query_safe('INSERT INTO noise VALUES (100)');	# the next snapshot differs from the cache's
	$s1->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
	$s1->query_safe('SELECT 1');	# takes the transaction snapshot
	$s2->query_safe(q{SELECT customer_vault.withdraw_consent('7', 'newsletter')});
	is($s1->query_safe($count), '498', "$label: old snapshot, first consent check after the change");
	$s1->query_safe('COMMIT');
	is($s1->query_safe($count), '497', "$label: the next snapshot sees the change");
	$s2->query_safe(q{SELECT customer_vault.grant_consent('7', 'newsletter', '{"form": "tap"}')});
	is($s1->query_safe($count), '498', "$label: and the grant back");

	# the session's own uncommitted changes count, and vanish with a rollback
	$s1->query_safe('RESET ROLE');
	$s1->query_safe('BEGIN');
	$s1->query_safe(q{SELECT customer_vault.withdraw_consent('5', 'newsletter')});
	$s1->query_safe('SET LOCAL ROLE marketer');
	is($s1->query_safe($count), '497', "$label: own uncommitted withdrawal is seen");
	$s1->query_safe('ROLLBACK');
	$s1->query_safe('SET ROLE marketer');
	is($s1->query_safe($count), '498', "$label: own withdrawal rolled back");

	# writes that change nothing about consent do not make the cache be read again
	# (only with the shared counters of shared_preload_libraries)
	if ($label eq 'preloaded')
	{
		$s1->query_safe($count);
		my $before = $s1->query_safe('SELECT customer_vault._consent_cache_builds()');
		for my $i (1 .. 5)
		{
			$s2->query_safe("INSERT INTO noise VALUES ($i)");
			is($s1->query_safe($count), '498', "$label: count after unrelated commit $i");
		}
		is($s1->query_safe('SELECT customer_vault._consent_cache_builds()'), $before,
			"$label: unrelated commits did not make the cache be read again");
		$s2->query_safe(q{SELECT customer_vault.withdraw_consent('6', 'newsletter')});
		is($s1->query_safe($count), '497', "$label: a consent change is seen at once");
		cmp_ok($s1->query_safe('SELECT customer_vault._consent_cache_builds()'), '>', $before,
			"$label: and made the cache be read again");
		$s2->query_safe(q{SELECT customer_vault.grant_consent('6', 'newsletter', '{"form": "tap"}')});
		is($s1->query_safe($count), '498', "$label: back to 498");
	}

	# a stream of changes: may_process always agrees with the table, read by the same statement
	my $disagreements = 0;
	for my $i (1 .. 60)
	{
		my $subject = 10 + ($i % 7);
		if ($i % 2)
		{
			$s2->query_safe("SELECT customer_vault.withdraw_consent('$subject', 'newsletter')");
		}
		else
		{
			$s2->query_safe("SELECT customer_vault.grant_consent('$subject', 'newsletter', '{\"form\": \"tap\"}')");
		}
		my $bad = $s1->query_safe(q{
SELECT count(*) FROM generate_series(1, 700) g
 WHERE customer_vault.may_process(g::bigint, 'newsletter')
       IS DISTINCT FROM EXISTS (SELECT 1 FROM customer_vault.current_consents c
                                 WHERE c.subject = g::text AND c.purpose = 'newsletter' AND c.status = 'granted')});
		$disagreements++ if $bad ne '0';
	}
	is($disagreements, 0, "$label: may_process agrees with the consent table after every committed change");

	$s1->quit;
	$s2->quit;
}

my $node = new_vault_node('consent', key => random_root_key());
setup($node);
# the marketer needs to read current_consents for the agreement check
$node->safe_psql('postgres', 'GRANT customer_vault_auditor, customer_vault_admin TO marketer');
check_sessions($node, 'preloaded');

# without shared_preload_libraries: no shared counters, a cache per snapshot
my $plain = PostgreSQL::Test::Cluster->new('consent_plain');
$plain->init;
$plain->start;
setup($plain);
$plain->safe_psql('postgres', 'GRANT customer_vault_auditor TO marketer');
check_sessions($plain, 'not preloaded');

$node->stop;
$plain->stop;
done_testing();
