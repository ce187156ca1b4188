# customer_vault on a Citus cluster (a coordinator and two workers): the
# extension reaches every node, values encrypted through the coordinator are
# ciphertext in the workers' shard files, and decrypt() evaluated on the
# workers finds the data keys there (customer_vault.citus_setup() made the
# key table a reference table that the C code reads through its local shard).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use CitusTest;

my ($coord, $w1, $w2) = new_citus_cluster();

for my $n ($coord, $w1, $w2)
{
	is($n->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'customer_vault'"),
		$coord->safe_psql('postgres', "SELECT default_version FROM pg_available_extensions WHERE name = 'customer_vault'"),
		$n->name . ': customer_vault installed');
}

$coord->safe_psql('postgres', q{
SELECT customer_vault.create_key('k');
CREATE TABLE customers (id bigint PRIMARY KEY, email customer_vault.encrypted_text);
SELECT create_distributed_table('customers', 'id');
INSERT INTO customers
SELECT g, customer_vault.encrypt('citus-secret-' || g || '@example.org', 'k', g::text)
  FROM generate_series(1, 200) g;
});

# the plaintext is nowhere in the workers' files (only ciphertext travelled)
$_->safe_psql('postgres', 'CHECKPOINT') for ($coord, $w1, $w2);
for my $n ($w1, $w2)
{
	# Citus hides shard relations from pg_class unless told not to
	my $files = $n->safe_psql('postgres', q{
SET citus.override_table_visibility = off;
SELECT string_agg(pg_relation_filepath(c.oid), ' ')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relname ~ '^customers_[0-9]+$'});
	my @files = split / /, $files;
	ok(@files > 0, $n->name . ': holds shards of customers');
	my ($plain, $bytes) = (0, 0);
	for my $f (@files)
	{
		my $data = slurp_file($n->data_dir . "/$f");
		$bytes += length $data;
		$plain++ if $data =~ /citus-secret-/;
	}
	ok($bytes > 0, $n->name . ': shard files are not empty');
	is($plain, 0, $n->name . ': no plaintext in the shard files');
}

# decrypt on the workers: refused before citus_setup (the keys are on the coordinator only)
my ($rc, $out, $err) = $coord->psql('postgres',
	"SELECT count(*) FROM customers WHERE customer_vault.decrypt(email, id::text) LIKE 'citus-secret-%'");
like($err, qr/data key 1 does not exist|citus_setup/, 'without citus_setup, decrypt on the workers finds no key');

TODO:
{
	local $TODO = 'customer_vault.citus_setup() is not built yet';
	($rc, $out, $err) = $coord->psql('postgres', 'SELECT customer_vault.citus_setup()');
	is($rc, 0, 'citus_setup() succeeds') or diag $err;
	($rc, $out, $err) = $coord->psql('postgres',
		"SELECT count(*) FROM customers WHERE customer_vault.decrypt(email, id::text) = 'citus-secret-' || id || '\@example.org'");
	is($out, '200', 'decrypt on the workers after citus_setup') or diag $err;
}

done_testing();
