# A data-only restore of a protected table of 100,000 rows through the live
# protect trigger: every ciphertext row is authenticated for its column and
# row and kept as it is (never encrypted twice), the blind index is
# recomputed, everything decrypts afterwards; a dump with one forged row is
# refused as a whole.  The restore time is printed (no timing assertion).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CvTest;

my $rows = 100_000;
my $node = new_vault_node('restore', key => random_root_key());
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', qq{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
SELECT customer_vault.create_key('k');
CREATE TABLE customers (id bigint PRIMARY KEY, email text);
INSERT INTO customers SELECT g, 'user' || g || '\@example.com' FROM generate_series(1, $rows) g;
SELECT customer_vault.protect_column('customers', 'email', 'k', 'id', 'email_bidx');
});
my $before = $node->safe_psql('src',
	'SELECT md5(string_agg(id || email, \',\' ORDER BY id)) FROM customers');

# the table's data only, as pg_restore --data-only would load it into the live schema
my $dump = $node->basedir . '/customers.sql';
$node->command_ok(
	[ 'pg_dump', '--data-only', '-t', 'public.customers', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump --data-only of the protected table');
$node->safe_psql('src', 'TRUNCATE customers');

my $t0 = time;
my ($ret, $out, $err) = $node->psql('src', undef,
	extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', $dump ]);
my $secs = time - $t0;
is($ret, 0, "data-only restore of $rows rows through the live trigger") or diag $err;
diag(sprintf('data-only restore of %d protected rows through the trigger: %.2f s (%.1f us/row)',
		$rows, $secs, $secs * 1e6 / $rows));

is( $node->safe_psql('src',
		'SELECT md5(string_agg(id || email, \',\' ORDER BY id)) FROM customers'),
	$before, 'every ciphertext kept as it was dumped (not encrypted twice)');
is( $node->safe_psql('src',
		"SELECT count(*) FROM customers_decrypted WHERE email = 'user' || id || '\@example.com'"),
	$rows, 'every restored row decrypts through the view');
is( $node->safe_psql('src',
		"SELECT count(*) FROM customers WHERE email_bidx = customer_vault.column_blind_index('customers', 'email', 'user' || id || '\@example.com')"),
	$rows, 'the blind index of every restored row is recomputed');

# one forged row (another row's ciphertext) in the dump: the restore fails, nothing is loaded
my $text = slurp_file($dump);
my ($line1) = $text =~ /^1\t(cv1\$\S+)/m;
ok(defined $line1, 'the dump holds row 1 as ciphertext');
$text =~ s/^2\tcv1\$\S+/2\t$line1/m;
my $forged = $node->basedir . '/forged.sql';
open my $fh, '>', $forged or die $!;
print $fh $text;
close $fh;
$node->safe_psql('src', 'TRUNCATE customers');
($ret, $out, $err) = $node->psql('src', undef,
	extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', $forged ]);
isnt($ret, 0, 'a dump with a forged row is refused');
like($err, qr/does not authenticate for this column and row/, 'with the authentication error');
is($node->safe_psql('src', 'SELECT count(*) FROM customers'), '0', 'and loads nothing');

$node->stop;
done_testing();
