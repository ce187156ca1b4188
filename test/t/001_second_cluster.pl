# A second cluster of our own: preload, root key file checks (unset, missing,
# loose permissions, wrong length) give clear errors that never print the key,
# and a restart keeps values decryptable.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('second');
my $keyfile = root_key_file($node);
my $key = random_root_key();
sub write_key { write_root_key($keyfile, $_[0], $_[1]); }
write_key("$key\n", 0600);

# without a root key configured: CREATE EXTENSION works, key use names the setting
$node->safe_psql('postgres', 'CREATE EXTENSION customer_vault CASCADE');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT customer_vault.create_key('k')");
isnt($ret, 0, 'create_key fails without a root key');
like($err, qr/customer_vault\.root_key_file is not set/, 'error names the setting');

# a configured key works
$node->append_conf('postgresql.conf', "customer_vault.root_key_file = '$keyfile'\n");
$node->reload;
$node->safe_psql('postgres', "SELECT customer_vault.create_key('k')");
$node->safe_psql('postgres',
	"CREATE TABLE t AS SELECT g AS id, customer_vault.encrypt('secret-' || g, 'k', g::text) AS v FROM generate_series(1, 100) g");
is($node->safe_psql('postgres', "SELECT count(*) FROM t WHERE customer_vault.decrypt(v, id::text) = 'secret-' || id"),
	'100', 'values decrypt');

# after a restart (new backends, key read again) values still decrypt
$node->restart;
is($node->safe_psql('postgres', "SELECT count(*) FROM t WHERE customer_vault.decrypt(v, id::text) = 'secret-' || id"),
	'100', 'values decrypt after a restart');

# loose permissions are refused, the key content never appears
write_key("$key\n", 0644);
$node->reload;
($ret, $out, $err) = $node->psql('postgres', "SELECT customer_vault.decrypt(v, id::text) FROM t LIMIT 1");
isnt($ret, 0, 'group/world-readable key file refused');
like($err, qr/has permissions 0644/, 'error says why');
unlike($err, qr/$key/i, 'error does not print the key');

# a wrong length is refused without printing the content
write_key(substr($key, 0, 40) . "\n", 0600);
$node->reload;
($ret, $out, $err) = $node->psql('postgres', "SELECT customer_vault.decrypt(v, id::text) FROM t LIMIT 1");
isnt($ret, 0, 'short key refused');
like($err, qr/does not hold a 256-bit key/, 'error says the key is malformed');
unlike($err, qr/\Q@{[substr($key, 0, 40)]}\E/i, 'error does not print the content');

# an unreadable (missing) file names the setting
$node->append_conf('postgresql.conf', "customer_vault.root_key_file = '$keyfile.missing'\n");
$node->reload;
($ret, $out, $err) = $node->psql('postgres', "SELECT customer_vault.decrypt(v, id::text) FROM t LIMIT 1");
isnt($ret, 0, 'missing key file refused');
like($err, qr/could not open root key file .* named by customer_vault\.root_key_file/, 'error names the setting');

# a different (wrong) root key gives a clear error, not garbage
my $other = random_root_key();
write_key("$other\n", 0600);
$node->append_conf('postgresql.conf', "customer_vault.root_key_file = '$keyfile'\n");
$node->reload;
($ret, $out, $err) = $node->psql('postgres', "SELECT customer_vault.decrypt(v, id::text) FROM t LIMIT 1");
isnt($ret, 0, 'wrong root key refused');
like($err, qr/wrapped under a different root key/, 'error says the root key differs');

# the right key again: everything readable, and the server log never held the key
write_key("$key\n", 0400);
$node->reload;
is($node->safe_psql('postgres', "SELECT count(*) FROM t WHERE customer_vault.decrypt(v, id::text) = 'secret-' || id"),
	'100', 'values decrypt with the right key again (mode 0400)');
my $log = slurp_file($node->logfile);
unlike($log, qr/$key/i, 'server log does not contain the root key');
unlike($log, qr/$other/i, 'server log does not contain the wrong key');

# a root key command instead of the file: same key, same values
$node->append_conf('postgresql.conf',
	"customer_vault.root_key_file = ''\ncustomer_vault.root_key_command = 'cat $keyfile'\n");
$node->reload;
is($node->safe_psql('postgres', "SELECT count(*) FROM t WHERE customer_vault.decrypt(v, id::text) = 'secret-' || id"),
	'100', 'values decrypt with the key from root_key_command');

# a failing command, and one printing something else, give clear errors without the output
my $garbage = 'not-a-key-sentinel-7f3a9c';
$node->append_conf('postgresql.conf', "customer_vault.root_key_command = 'exit 3'\n");
$node->reload;
($ret, $out, $err) = $node->psql('postgres', "SELECT customer_vault.decrypt(v, id::text) FROM t LIMIT 1");
isnt($ret, 0, 'failing key command refused');
like($err, qr/root_key_command failed/, 'error says the command failed');
$node->append_conf('postgresql.conf', "customer_vault.root_key_command = 'echo $garbage'\n");
$node->reload;
($ret, $out, $err) = $node->psql('postgres', "SELECT customer_vault.decrypt(v, id::text) FROM t LIMIT 1");
isnt($ret, 0, 'key command printing garbage refused');
like($err, qr/did not print a 256-bit key/, 'error says the output is not a key');
unlike($err, qr/\Q$garbage\E/, 'error does not echo the output');

# both sources set at once is refused rather than guessed
$node->append_conf('postgresql.conf',
	"customer_vault.root_key_file = '$keyfile'\ncustomer_vault.root_key_command = 'cat $keyfile'\n");
$node->reload;
($ret, $out, $err) = $node->psql('postgres', "SELECT customer_vault.decrypt(v, id::text) FROM t LIMIT 1");
isnt($ret, 0, 'two key sources refused');
like($err, qr/are both set/, 'error names the conflict');

$log = slurp_file($node->logfile);
unlike($log, qr/\Q$key\E/i, 'server log still does not contain the root key');

$node->stop;
done_testing();
