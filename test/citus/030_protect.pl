# protect_column and Citus (a distributed table: 050_protect_distributed): a
# table protected first and then distributed (citus.enable_unsafe_triggers,
# so the protect trigger goes to every shard) stores ciphertext only on the
# workers, also for rows written after the distribution, and reads back
# through the decrypted view and the blind-index lookup.
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
SELECT customer_vault.create_key('k');
});

$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE TABLE people (id bigint PRIMARY KEY, email text, email_bidx bytea);
INSERT INTO people SELECT g, 'citus-protect-' || g || '@example.org', NULL FROM generate_series(1, 100) g;
SELECT customer_vault.protect_column('people', 'email', 'k', 'id', 'email_bidx');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('people', 'id');
SELECT truncate_local_data_after_distributing_table('people');
});
# plain INSERTs of plaintext through the coordinator: the trigger seals on the shards
$coord->safe_psql('postgres', q{
INSERT INTO people (id, email) SELECT g, 'citus-protect-' || g || '@example.org' FROM generate_series(101, 300) g;
INSERT INTO people (id, email) VALUES (301, 'citus-protect-301@example.org');
UPDATE people SET email = 'citus-protect-' || id || '@example.org' WHERE id = 5;
});
is($coord->safe_psql('postgres',
	'SELECT count(*) FILTER (WHERE customer_vault.is_sealed(email::text)) || \'/\' || count(*) FROM people'),
	'301/301', 'every value is sealed');
is($coord->safe_psql('postgres',
	"SELECT count(*) FROM people_decrypted WHERE email = 'citus-protect-' || id || '\@example.org'"),
	'301', 'the decrypted view reads every value back');
# (the blind index is not truncated: exactly the row; (tableoid, ctid) pairs
# repeat from worker to worker, lookup() names rows by primary key there)
is($coord->safe_psql('postgres',
	"SELECT string_agg(l, ',') FROM customer_vault.lookup('people', 'email', 'citus-protect-250\@example.org') l"),
	'250', 'the blind-index lookup finds the row, and only it');

$_->safe_psql('postgres', 'CHECKPOINT') for ($coord, $w1, $w2);
my $total = 0;
for my $n ($w1, $w2)
{
	my $files = $n->safe_psql('postgres', q{
SET citus.override_table_visibility = off;
SELECT string_agg(pg_relation_filepath(c.oid), ' ')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relname ~ '^people_[0-9]+'});
	my ($plain, $bytes) = (0, 0);
	for my $f (split / /, $files)
	{
		my $data = slurp_file($n->data_dir . "/$f");
		$bytes += length $data;
		$plain++ if $data =~ /citus-protect-/;
	}
	ok($bytes > 0, $n->name . ': the shard files hold data');
	is($plain, 0, $n->name . ': no plaintext in the shards or their indexes');
}

done_testing();
