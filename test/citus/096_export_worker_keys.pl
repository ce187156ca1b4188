# Review rev-citus (findings 4 to 6; part CITUSREV):
#  - export_subject on a distributed subject table failed ("could not create
#    distributed plan": its kept statement was a generic plan, which Citus
#    cannot plan over several shards); now a custom plan on Citus tables.
#  - was_forgotten / subject_access on a worker created the subject hash key
#    there (a reference table: every node's registry written from a worker);
#    now 55000 with a hint.  lookup() on a worker was recorded only there;
#    now refused (55000).
#  - citus_check_policies(parent) did not look at the partitions' shards.
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
CREATE TABLE plain (id bigint PRIMARY KEY, subject text NOT NULL, note text);
SELECT create_distributed_table('plain', 'id');
INSERT INTO plain SELECT g, 's' || (g % 5), 'n' || g FROM generate_series(1, 40) g;
SELECT customer_vault.register_subject_table('plain', 'subject');
CREATE ROLE regress_aud LOGIN IN ROLE customer_vault_auditor;
});

# ---- the subject hash key is not made on a worker
is($coord->safe_psql('postgres', q{SELECT count(*) FROM customer_vault.data_keys}), '0', 'no key yet');
# (was_forgotten answers false without a key, making none)
is($w1->safe_psql('postgres', q{SET ROLE regress_aud; SELECT customer_vault.was_forgotten('zz')}), 'f',
	'was_forgotten on a worker without the subject hash key: false');
my ($ret, $out, $err) = $w1->psql('postgres', q{SET ROLE regress_aud; SELECT count(*) FROM customer_vault.subject_access('zz')});
isnt($ret, 0, 'subject_access on a worker without the subject hash key fails');
like($err, qr/the subject hash key does not exist yet and cannot be created on a Citus worker/, 'it says why');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM customer_vault.data_keys}), '0', 'no key made from the worker');
is($coord->safe_psql('postgres', q{SET ROLE regress_aud; SELECT customer_vault.was_forgotten('zz')}), 'f',
	'was_forgotten on the coordinator makes the key');
is($w1->safe_psql('postgres', q{SET ROLE regress_aud; SELECT customer_vault.was_forgotten('zz')}), 'f',
	'then the worker uses it');

# ---- export_subject on a distributed table (several times: the kept plan)
for my $i (1 .. 7)
{
	my $s = 's' . ($i % 5);
	is($coord->safe_psql('postgres', qq{SELECT jsonb_array_length(customer_vault.export_subject('$s') -> 'tables' -> 'public.plain' -> 'rows')}),
		'8', "export $i of $s: its 8 rows from the shards");
}
like($coord->safe_psql('postgres', q{SELECT customer_vault.export_subject('s4')::text}), qr/"note": "n4"/,
	'the rows as they are');

# ---- lookup() on a worker
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
SELECT customer_vault.create_key('k');
CREATE TABLE people (id bigint PRIMARY KEY, email text);
SELECT create_distributed_table('people', 'id');
INSERT INTO people VALUES (1, 'a@x'), (2, 'b@x');
SELECT customer_vault.protect_column('people', 'email', 'k', 'id', 'email_bidx');
CREATE ROLE regress_reader LOGIN IN ROLE customer_vault_reader;
GRANT SELECT ON people TO regress_reader;
});
($ret, $out, $err) = $w1->psql('postgres', q{SET ROLE regress_reader; SELECT count(*) FROM customer_vault.lookup('people', 'email', 'a@x')});
isnt($ret, 0, 'lookup() on a worker fails');
like($err, qr/lookup\(\) must run on the Citus coordinator/, 'it names the coordinator');
is($w1->safe_psql('postgres', 'SELECT count(*) FROM customer_vault.blind_index_lookups'), '0', 'nothing recorded on the worker');

# ---- citus_check_policies looks at the partitions' shards
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE TABLE pt (id bigint NOT NULL, subject text NOT NULL, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE pt_2026 PARTITION OF pt FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT create_distributed_table('pt', 'id');
SELECT customer_vault.define_purpose('service', 'consent');
SELECT customer_vault.enable_consent_policy('pt', 'subject', 'service');
});
is($coord->safe_psql('postgres', q{SELECT count(*) FROM customer_vault.citus_check_policies('pt')}), '0',
	'the partitioned table and its partition in order');
$coord->safe_psql('postgres', q{SELECT run_command_on_placements('pt_2026', 'DROP POLICY customer_vault_consent ON %s')});
my $n = $coord->safe_psql('postgres', q{SELECT count(*) FROM customer_vault.citus_check_policies('pt_2026')});
cmp_ok($n, '>', 0, 'the partition\'s shards differ');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM customer_vault.citus_check_policies('pt') WHERE shard LIKE 'public.pt\\_2026\\_%'}),
	$n, 'citus_check_policies(parent) reports them too');

done_testing();
