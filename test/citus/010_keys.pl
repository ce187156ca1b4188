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
like($err, qr/data key 1 does not exist/, 'without citus_setup, decrypt on the workers finds no key');

# only a superuser may run citus_setup
$coord->safe_psql('postgres', 'CREATE ROLE regress_citus_admin LOGIN; GRANT customer_vault_admin TO regress_citus_admin');
($rc, $out, $err) = $coord->psql('postgres', 'SET ROLE regress_citus_admin; SELECT customer_vault.citus_setup()');
like($err, qr/permission denied for function citus_setup/, 'citus_setup refused to a non-superuser');

($rc, $out, $err) = $coord->psql('postgres', 'SET client_min_messages = warning; SELECT customer_vault.citus_setup()');
is($rc, 0, 'citus_setup() succeeds') or diag $err;
is($out, join("\n", map { "customer_vault.$_" } qw(data_keys purposes purpose_roles consent_state)),
	'citus_setup() converted the key and consent tables');
is($coord->safe_psql('postgres', q{
SELECT string_agg(logicalrelid::text || ':' || partmethod::text, ' ' ORDER BY logicalrelid::text)
  FROM pg_dist_partition WHERE logicalrelid::text LIKE 'customer_vault.%'}),
	'customer_vault.consent_state:n customer_vault.data_keys:n customer_vault.purpose_roles:n customer_vault.purposes:n',
	'they are reference tables');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM customer_vault.citus_setup()'), '0',
	'a second citus_setup() changes nothing');
# the shell tables keep no copy of the keys: only the shards have rows
is($coord->safe_psql('postgres', 'SELECT count(*) FROM ONLY customer_vault.data_keys'), '1',
	'data_keys reads through Citus');

($rc, $out, $err) = $coord->psql('postgres',
	"SELECT count(*) FROM customers WHERE customer_vault.decrypt(email, id::text) = 'citus-secret-' || id || '\@example.org'");
is($out, '200', 'decrypt on the workers after citus_setup') or diag $err;

# keys made and rotated after the conversion reach the workers' caches
$coord->safe_psql('postgres', q{
SELECT customer_vault.create_key('k2');
INSERT INTO customers SELECT g, customer_vault.encrypt('citus-secret-' || g || '@example.org', 'k2', g::text)
  FROM generate_series(201, 300) g;
SELECT customer_vault.rotate_key('k');
INSERT INTO customers SELECT g, customer_vault.encrypt('citus-secret-' || g || '@example.org', 'k', g::text)
  FROM generate_series(301, 400) g;
});
is($coord->safe_psql('postgres', q{
SELECT string_agg(k || '=' || n, ' ' ORDER BY k) FROM (
SELECT customer_vault.key_of(email) AS k, count(*) AS n FROM customers
 WHERE customer_vault.decrypt(email, id::text) = 'citus-secret-' || id || '@example.org' GROUP BY 1) s}),
	'k2:1=100 k:1=200 k:2=100', 'new and rotated keys open on the workers');
# a wrong context still fails on the workers (authentication, not just a lookup)
($rc, $out, $err) = $coord->psql('postgres',
	"SELECT count(customer_vault.decrypt(email, 'other')) FROM customers");
isnt($rc, 0, 'a wrong context fails on the workers');

# subject keys: made on the coordinator (a single-row INSERT evaluates
# encrypt_for_subject there), opened on the workers; a shred reaches every
# node's cache by the next statement
$coord->safe_psql('postgres', q{
CREATE TABLE notes (id bigint PRIMARY KEY, v customer_vault.encrypted_text);
SELECT create_distributed_table('notes', 'id');
SELECT count(customer_vault.encrypt_for_subject('sub' || g, 'x')) FROM generate_series(0, 2) g;
INSERT INTO notes SELECT g, customer_vault.encrypt_for_subject('sub' || (g % 3), 'note-' || g) FROM generate_series(1, 30) g;
INSERT INTO notes VALUES (100, customer_vault.encrypt_for_subject('newsub', 'note-100'));
});
is($coord->safe_psql('postgres', "SELECT count(*) FROM notes WHERE customer_vault.decrypt(v) = 'note-' || id"),
	'31', 'subject keys open on the workers');
$coord->safe_psql('postgres', "SELECT customer_vault.shred_subject('sub1')");
is($coord->safe_psql('postgres', 'SELECT count(customer_vault.decrypt(v)) || \'/\' || count(*) FROM notes'),
	'21/31', 'a shred is honoured on every worker by the next statement');

# each worker reads its own shard of data_keys, never a distributed query
for my $n ($w1, $w2)
{
	is($n->safe_psql('postgres', q{
SET citus.override_table_visibility = off;
SELECT count(*) FROM pg_class WHERE relname ~ '^data_keys_[0-9]+$'}), '1', $n->name . ': holds a copy of data_keys');
}

done_testing();
