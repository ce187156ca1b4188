# The keyed subject hash across root-key rotation: the dedicated key is
# wrapped under the root key like every data key, so the README's rotation
# (new root_key_file, the old one as previous_root_key_file, rewrap_keys(),
# then the old one removed) keeps every hash; before the key exists, a
# read-only transaction (and so a standby) gets NULL instead of a key.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('subject_hash', key => random_root_key());
$node->safe_psql('postgres', 'CREATE EXTENSION customer_vault CASCADE');

# no key yet: a read-only transaction cannot make one and gets NULL
is($node->safe_psql('postgres',
		"BEGIN READ ONLY; SELECT customer_vault._subject_hash('42') IS NULL; COMMIT;"),
	't', 'read-only transaction without a hash key: NULL');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM customer_vault.keys WHERE kind = 'subject_hash'"),
	'0', 'no hash key was made by it');

# a key made in a transaction that rolls back never existed
$node->safe_psql('postgres', "BEGIN; SELECT customer_vault._subject_hash('42'); ROLLBACK;");
is($node->safe_psql('postgres',
		"SELECT count(*) FROM customer_vault.keys WHERE kind = 'subject_hash'"),
	'0', 'rolled-back creation leaves no key');

# made on first use in a writing transaction
my $h = $node->safe_psql('postgres', "SELECT customer_vault._subject_hash('42')");
like($h, qr/^\\x[0-9a-f]{64}$/, 'hash is 32 bytes');
is($node->safe_psql('postgres', "SELECT customer_vault._subject_hash('42')"), $h, 'same in a new session');
my $fp_before = $node->safe_psql('postgres', 'SELECT customer_vault.root_key_fingerprint()');

# root rotation as the README describes it
my $old = root_key_file($node);
my $new = $node->basedir . '/root2.key';
write_root_key($new, random_root_key() . "\n", 0600);
$node->append_conf('postgresql.conf',
	"customer_vault.root_key_file = '$new'\ncustomer_vault.previous_root_key_file = '$old'\n");
$node->reload;
isnt($node->safe_psql('postgres', 'SELECT customer_vault.root_key_fingerprint()'), $fp_before,
	'the root key changed');
cmp_ok($node->safe_psql('postgres', 'SELECT customer_vault.rewrap_keys()'), '>=', 1,
	'rewrap_keys re-wrapped the hash key');
is($node->safe_psql('postgres', "SELECT customer_vault._subject_hash('42')"), $h,
	'same hash after the rewrap (old root still configured)');

# the old root key retired: the hash key still unwraps, the hash is unchanged
$node->append_conf('postgresql.conf', "customer_vault.previous_root_key_file = ''\n");
$node->reload;
unlink $old;
is($node->safe_psql('postgres', "SELECT customer_vault._subject_hash('42')"), $h,
	'same hash with the old root key gone');
$node->restart;
is($node->safe_psql('postgres', "SELECT customer_vault._subject_hash('42')"), $h,
	'same hash after a restart');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM customer_vault.keys WHERE kind = 'subject_hash' AND state = 'active'"),
	'1', 'still exactly one hash key');

# a read-only transaction now uses the existing key
is($node->safe_psql('postgres',
		"BEGIN READ ONLY; SELECT customer_vault._subject_hash('42'); COMMIT;"),
	$h, 'read-only transaction uses the existing key');

$node->stop;
done_testing();
