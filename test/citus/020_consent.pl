# The consent policy on a distributed table: restrictive on every shard (Citus
# copies policies to shards without AS RESTRICTIVE; the event trigger makes
# the consent policy restrictive again on each), answered on the workers from
# their copies of the consent tables, a withdrawal honoured by the next
# statement, a DBA's permissive policy narrowed by it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use CitusTest;

my ($coord, $w1, $w2) = new_citus_cluster();

$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
SELECT customer_vault.citus_setup();
CREATE TABLE people (id bigint PRIMARY KEY, note text);
SELECT create_distributed_table('people', 'id');
INSERT INTO people SELECT g, 'n' || g FROM generate_series(1, 1000) g;
CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_other LOGIN;
GRANT SELECT ON people TO regress_app, regress_other;
SELECT customer_vault.define_purpose('marketing', 'consent');
SELECT customer_vault.allow_purpose('regress_app', 'marketing');
SELECT count(customer_vault.grant_consent(g::text, 'marketing', '{"form": "t"}')) FROM generate_series(1, 100) g;
SELECT customer_vault.enable_consent_policy('people', 'id', 'marketing');
});

# every placement of people (and the coordinator's table) carries both
# policies, the consent one restrictive
sub policy_kinds
{
	my @out;
	for my $n ($coord, $w1, $w2)
	{
		push @out, $n->safe_psql('postgres', q{
SET citus.override_table_visibility = off;
SELECT c.relname || ':' || p.polname || ':' || CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relname ~ '^people(_[0-9]+)?$' ORDER BY 1});
	}
	return join("\n", grep { $_ ne '' } @out);
}
my $kinds = policy_kinds();
my @consent = ($kinds =~ /:customer_vault_consent:(\w+)/g);
my $shards = $coord->safe_psql('postgres', "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'people'::regclass");
# coordinator shell + worker shells + one per shard
cmp_ok(scalar(@consent), '>=', $shards + 1, 'the consent policy is on every shard') or diag $kinds;
is(join(',', grep { $_ ne 'restrictive' } @consent), '', 'restrictive everywhere') or diag $kinds;

sub count_as
{
	my ($role) = @_;
	return $coord->safe_psql('postgres', "SET ROLE $role; SELECT count(*) FROM people");
}
is(count_as('regress_app'), '100', 'a role with the purpose sees the 100 consenting subjects');
is(count_as('regress_other'), '0', 'a role without the purpose sees nothing');

$coord->safe_psql('postgres', q{SELECT customer_vault.withdraw_consent('7', 'marketing', '{"form": "w"}')});
is(count_as('regress_app'), '99', 'a withdrawal is honoured by the next statement on every shard');
$coord->safe_psql('postgres', q{SELECT customer_vault.grant_consent('500', 'marketing', '{"form": "t"}')});
is(count_as('regress_app'), '100', 'a new grant too');
is($coord->safe_psql('postgres', "SET ROLE regress_app; SELECT count(*) FROM people WHERE id IN (7, 500)"), '1',
	'exactly the withdrawn subject is gone and the new one is there');

# a permissive policy of the DBA's own does not widen the consent policy
$coord->safe_psql('postgres', 'CREATE POLICY everyone ON people FOR SELECT USING (true)');
$kinds = policy_kinds();
@consent = ($kinds =~ /:customer_vault_consent:(\w+)/g);
is(join(',', grep { $_ ne 'restrictive' } @consent), '', 'still restrictive everywhere after another policy')
  or diag $kinds;
is(count_as('regress_app'), '100', 'a permissive policy of the DBA does not widen it');
is(count_as('regress_other'), '0', 'nor for a role without the purpose');

# the verification: citus_check_policies lists no shard whose policies differ
is($coord->safe_psql('postgres', "SELECT count(*) FROM customer_vault.citus_check_policies('people')"), '0',
	'citus_check_policies finds every shard in order');
# a shard made permissive behind the extension's back is reported
my ($shard, $port) = @{ (shard_placements($coord, 'people'))[0] };
my ($wn) = grep { $_->port == $port } ($w1, $w2);
$wn->safe_psql('postgres', qq{
SET citus.enable_ddl_propagation = off;
ALTER EVENT TRIGGER customer_vault_consent_policy_ddl DISABLE;
DROP POLICY customer_vault_consent ON $shard;
CREATE POLICY customer_vault_consent ON $shard FOR SELECT USING (true);
ALTER EVENT TRIGGER customer_vault_consent_policy_ddl ENABLE;
});
like($coord->safe_psql('postgres', "SELECT shard || ' ' || finding FROM customer_vault.citus_check_policies('people')"),
	qr/\Q$shard\E .*permissive/, 'a permissive consent policy on a shard is reported');

done_testing();
