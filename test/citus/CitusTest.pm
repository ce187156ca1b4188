# CitusTest: a Citus cluster of three PostgreSQL::Test::Cluster nodes (a
# coordinator and two workers) with citus, pg_cron and customer_vault
# preloaded and the same root key file on each, for the suite in test/citus
# (run by `make test-citus CITUS_SRC=...`, never by `make test` alone).
package CitusTest;
use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

our @EXPORT = qw(new_citus_cluster on_shards shard_placements);

# (coordinator, worker1, worker2): started, citus created on each, the
# workers added, customer_vault created on the coordinator (CREATE EXTENSION
# propagates); options: conf => more postgresql.conf lines for every node
sub new_citus_cluster
{
	my (%opt) = @_;
	my $key = random_root_key();
	my @nodes;
	for my $name (qw(coordinator worker1 worker2))
	{
		my $node = PostgreSQL::Test::Cluster->new($name);
		$node->init;
		write_root_key(root_key_file($node), "$key\n", 0600);
		$node->append_conf(
			'postgresql.conf', qq{
shared_preload_libraries = 'citus,pg_cron,customer_vault'
customer_vault.root_key_file = '@{[ root_key_file($node) ]}'
cron.database_name = 'postgres'
max_prepared_transactions = 20
max_connections = 60
citus.node_conninfo = 'sslmode=disable'
citus.shard_count = 8
log_min_messages = warning
} . ($opt{conf} // ''));
		$node->start;
		$node->safe_psql('postgres', 'CREATE EXTENSION citus');
		push @nodes, $node;
	}
	my ($coord, $w1, $w2) = @nodes;
	$coord->safe_psql('postgres',
		"SELECT citus_set_coordinator_host('@{[ $coord->host ]}', @{[ $coord->port ]})");
	for my $w ($w1, $w2)
	{
		$coord->safe_psql('postgres',
			"SELECT citus_add_node('@{[ $w->host ]}', @{[ $w->port ]})");
	}
	$coord->safe_psql('postgres', 'CREATE EXTENSION customer_vault CASCADE');
	return @nodes;
}

# the placements of a Citus table: list of [shard relation name, node port]
sub shard_placements
{
	my ($coord, $table) = @_;
	my $out = $coord->safe_psql(
		'postgres', qq{
SELECT s.shard_name, s.nodeport
  FROM citus_shards s WHERE s.table_name = '$table'::regclass ORDER BY 1, 2});
	return map { [ split /\|/ ] } grep { $_ ne '' } split /\n/, $out;
}

1;
