# Review findings on Citus (part FIXDDL):
#  - citus_check_policies compares the roles of each placement's policies
#    (a shard's consent policy re-targeted TO one role was not reported);
#  - consent changes, legal holds and erasures made on a worker connected
#    directly are refused (the ledgers are the coordinator's: the evidence
#    would stay on the worker while consent_state, a reference table,
#    changed everywhere);
#  - a permissive consent policy made on a shard is made restrictive with
#    the same command, roles and check (no re-parsing as the superuser).
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
INSERT INTO people SELECT g, 'n' || g FROM generate_series(1, 100) g;
CREATE ROLE regress_app LOGIN;
GRANT SELECT ON people TO regress_app;
SELECT customer_vault.define_purpose('marketing', 'consent');
SELECT customer_vault.allow_purpose('regress_app', 'marketing');
SELECT count(customer_vault.grant_consent(g::text, 'marketing', '{"form": "t"}')) FROM generate_series(1, 10) g;
SELECT customer_vault.enable_consent_policy('people', 'id', 'marketing');
});
is($coord->safe_psql('postgres', "SELECT count(*) FROM customer_vault.citus_check_policies('people')"), '0',
	'every shard in order after enable_consent_policy');
is($coord->safe_psql('postgres', "SET ROLE regress_app; SET customer_vault.purpose = 'marketing'; SELECT count(*) FROM people"),
	'10', 'the consent policy holds on the shards');

# ---- citus_check_policies compares roles
my ($shard, $port) = @{ (shard_placements($coord, 'people'))[0] };
my ($wn) = grep { $_->port == $port } ($w1, $w2);
$wn->safe_psql('postgres', qq{
SET citus.enable_ddl_propagation = off;
CREATE ROLE regress_nobody;
ALTER POLICY customer_vault_consent ON $shard TO regress_nobody;
});
my $found = $coord->safe_psql('postgres',
	"SELECT shard || ' ' || finding FROM customer_vault.citus_check_policies('people')");
like($found, qr/\Q$shard\E .*policies differ/, 'a shard whose consent policy applies to another role is reported');
like($found, qr/regress_nobody/, 'the finding names the role');
my @lines = split /\n/, $found;
is(scalar(@lines), 1, 'only that shard');
$wn->safe_psql('postgres', qq{
SET citus.enable_ddl_propagation = off;
ALTER POLICY customer_vault_consent ON $shard TO PUBLIC;
});
is($coord->safe_psql('postgres', "SELECT count(*) FROM customer_vault.citus_check_policies('people')"), '0',
	'back to PUBLIC: in order again');

# ---- a permissive consent policy made on a shard becomes restrictive, unchanged otherwise
$wn->safe_psql('postgres', qq{
SET citus.enable_ddl_propagation = off;
DROP POLICY customer_vault_consent ON $shard;
CREATE POLICY customer_vault_consent ON $shard AS PERMISSIVE FOR SELECT
    USING (customer_vault.may_process((id)::bigint, 'marketing'::text));
});
is($coord->safe_psql('postgres', "SELECT count(*) FROM customer_vault.citus_check_policies('people')"), '0',
	'a permissive consent policy made on a shard is restrictive with the same check');

# ---- evidence is written on the coordinator only
for my $w ($w1, $w2)
{
	my $name = $w->name;
	my ($ret, $out, $err) = $w->psql('postgres',
		q{SELECT customer_vault.grant_consent('77', 'marketing', '{"form": "worker"}')});
	isnt($ret, 0, "$name: grant_consent refused");
	like($err, qr/grant_consent\(\) must run on the Citus coordinator/, "$name: grant_consent error");
	like($err, qr/HINT:\s+Connect to the coordinator/, "$name: with the hint");
	($ret, $out, $err) = $w->psql('postgres', q{SELECT customer_vault.withdraw_consent('1', 'marketing')});
	isnt($ret, 0, "$name: withdraw_consent refused");
	like($err, qr/a consent change must run on the Citus coordinator/, "$name: withdraw_consent error");
	($ret, $out, $err) = $w->psql('postgres',
		q{SELECT customer_vault.import_consents($$SELECT '78' AS subject, 'marketing' AS purpose, '{"a": 1}'::jsonb AS evidence$$)});
	isnt($ret, 0, "$name: import_consents refused");
	like($err, qr/import_consents\(\) must run on the Citus coordinator/, "$name: import_consents error");
	($ret, $out, $err) = $w->psql('postgres', q{SELECT customer_vault.place_legal_hold('5', 'litigation')});
	isnt($ret, 0, "$name: place_legal_hold refused");
	like($err, qr/a legal hold change must run on the Citus coordinator/, "$name: place_legal_hold error");
	($ret, $out, $err) = $w->psql('postgres', q{SELECT customer_vault.forget_subject('5', 'request')});
	isnt($ret, 0, "$name: forget_subject refused");
	like($err, qr/forget_subject\(\) must run on the Citus coordinator/, "$name: forget_subject error");
	# nothing was written there: no ledger entry, consent unchanged everywhere
	is($w->safe_psql('postgres', 'SELECT count(*) FROM customer_vault.consent_ledger'), '0', "$name: no local ledger entry");
}
is($coord->safe_psql('postgres',
	q{SELECT count(*) FILTER (WHERE granted) || '/' || count(*) FROM customer_vault.consent_state WHERE subject IN ('1', '77', '78')}),
	'1/1', 'consent_state unchanged (subject 1 still granted, 77 and 78 absent)');
is($coord->safe_psql('postgres', 'SELECT customer_vault.verify_ledger() IS NULL'), 't', 'the ledger verifies');
# the coordinator still does all of it
is($coord->safe_psql('postgres', q{
SELECT customer_vault.withdraw_consent('1', 'marketing') > 0
   AND customer_vault.grant_consent('77', 'marketing', '{"form": "c"}') > 0
   AND customer_vault.place_legal_hold('5', 'litigation') > 0}), 't', 'on the coordinator: allowed');
is($coord->safe_psql('postgres',
	"SET ROLE regress_app; SELECT string_agg(id::text, ',' ORDER BY id) FROM people WHERE id IN (1, 77)"),
	'77', 'the withdrawal and the grant made on the coordinator hold on the shards');

done_testing();
