# pg_dump / restore of encrypted data: the dump holds ciphertext only, a
# restore with the same root key decrypts everything (plain and custom
# format), protected columns keep their trigger, blind index and view, values
# are not encrypted twice; a restore under a different root key refuses to
# decrypt with a clear error instead of returning garbage.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $root_key = random_root_key();
my $other_key;
do
{
	$other_key = random_root_key();
} while ($other_key eq $root_key);


# ---------- source cluster A ----------
my $a = new_vault_node('a', key => $root_key);
$a->safe_psql('postgres', 'CREATE DATABASE src');

# recognisable sample data, kept in Perl to compare against after restore
my @first = qw(alice bob carol dave erin frank grace heidi ivan judy);
my (%email, %note, %doc, %secret);
for my $id (1 .. 50)
{
	$email{$id} =
	  $id <= 10
	  ? "$first[$id - 1].sample\@example.com"
	  : "customer$id.sample\@example.com";
	$note{$id}   = "note-prefers-morning-calls-$id";
	$doc{$id}    = "passport-scan-$id";
	$secret{$id} = "subject-secret-dob-$id";
}
my $values = join ",\n",
  map { "($_, '$email{$_}', '+44 20 7946 " . sprintf('%04d', $_) . "')" }
  1 .. 50;

$a->safe_psql(
	'src', qq{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
SELECT customer_vault.create_key('k');
CREATE TABLE customers (id bigint PRIMARY KEY, email text, phone text);
INSERT INTO customers (id, email, phone) VALUES $values;
SELECT customer_vault.protect_column('customers', 'email', 'k', 'id', 'email_bidx');
ALTER TABLE customers
    ADD COLUMN note customer_vault.encrypted_text,
    ADD COLUMN doc customer_vault.encrypted_bytea,
    ADD COLUMN secret customer_vault.encrypted_text;
UPDATE customers
   SET note = customer_vault.encrypt('note-prefers-morning-calls-' || id, 'k', id::text),
       doc = customer_vault.encrypt(convert_to('passport-scan-' || id, 'UTF8'), 'k', id::text),
       secret = customer_vault.encrypt_for_subject('subject-' || id, 'subject-secret-dob-' || id);
-- one row written after protection: sealed by the trigger
INSERT INTO customers (id, email, phone, note)
VALUES (51, 'late.sample\@example.com', '+44 20 7946 0051',
        customer_vault.encrypt('note-prefers-morning-calls-51', 'k', '51'));
});
$email{51} = 'late.sample@example.com';
$note{51}  = 'note-prefers-morning-calls-51';

# sanity on the source: stored form is ciphertext, everything decrypts
is( $a->safe_psql('src',
		"SELECT count(*) FROM customers WHERE email LIKE 'cv1\$%' AND customer_vault.is_sealed(email)"),
	'51',
	'source: protected column stores envelopes');
is( $a->safe_psql('src',
		"SELECT count(*) FROM customers WHERE email LIKE '%sample\@example.com%'"),
	'0',
	'source: no plaintext email in the table');

# decrypted content of a database, as Perl hashes, for comparison
sub decrypted_state
{
	my ($node, $db) = @_;
	my %st;
	my $out = $node->safe_psql(
		$db, q{
SELECT id, d.email,
       coalesce(customer_vault.decrypt(c.note, c.id::text), '<null>'),
       coalesce(convert_from(customer_vault.decrypt(c.doc, c.id::text), 'UTF8'), '<null>'),
       coalesce(customer_vault.decrypt(c.secret), '<null>')
  FROM customers_decrypted d JOIN customers c USING (id)
 ORDER BY id});
	for my $line (split /\n/, $out)
	{
		my ($id, $e, $n, $d, $s) = split /\|/, $line;
		$st{email}{$id}  = $e;
		$st{note}{$id}   = $n;
		$st{doc}{$id}    = $d if $d ne '<null>';
		$st{secret}{$id} = $s if $s ne '<null>';
	}
	return \%st;
}

my $expected = { email => \%email, note => \%note, doc => \%doc, secret => \%secret };
is_deeply(decrypted_state($a, 'src'), $expected, 'source: every value decrypts to its sample');
my $keys_of_a = $a->safe_psql('src',
	"SELECT string_agg(id || '=' || customer_vault.key_of(note) || '/' || customer_vault.key_of(doc::customer_vault.encrypted_bytea), ',' ORDER BY id) FROM customers WHERE doc IS NOT NULL"
);
my $raw_a = $a->safe_psql('src', 'SELECT string_agg(email, \',\' ORDER BY id) FROM customers');

# ---------- dumps ----------
my $dir   = $a->basedir;
my $plain = "$dir/src.sql";
my $custom = "$dir/src.dump";
$a->command_ok([ 'pg_dump', '-Fp', '-f', $plain, '-d', $a->connstr('src') ],
	'pg_dump plain format');
$a->command_ok([ 'pg_dump', '-Fc', '-f', $custom, '-d', $a->connstr('src') ],
	'pg_dump custom format');

my $dump = slurp_file($plain);
like($dump, qr/COPY public\.customers /, 'plain dump holds the table data');
like($dump, qr/cv1\$/, 'plain dump holds ciphertext envelopes');
like($dump, qr/COPY customer_vault\.data_keys /, 'plain dump holds the wrapped key ring');
for my $sample ('alice.sample@example.com', 'judy.sample@example.com',
	'customer42.sample@example.com', 'late.sample@example.com',
	'sample@example.com', 'note-prefers-morning-calls',
	'passport-scan-', 'subject-secret-dob-')
{
	ok(index($dump, $sample) < 0, "plain dump does not contain '$sample'");
}
# bytea plaintext would appear hex-encoded if it leaked
my $hex = unpack('H*', 'passport-scan-');
ok(index(lc $dump, $hex) < 0, 'plain dump does not contain the bytea sample in hex');
unlike($dump, qr/\Q$root_key\E/i, 'plain dump does not contain the root key');

# the custom dump, rendered as a script, holds no plaintext either
my ($script, $err);
IPC::Run::run([ 'pg_restore', '-f', '-', $custom ], '>', \$script, '2>', \$err)
  or die "pg_restore -f - failed: $err";
ok(index($script, 'sample@example.com') < 0 && index($script, 'note-prefers-morning-calls') < 0,
	'custom dump (as script) does not contain sample plaintext');

# ---------- restore into B (same root key, its own file) ----------
my $b = new_vault_node('b', key => $root_key);
$b->safe_psql('postgres', 'CREATE DATABASE from_plain');
$b->safe_psql('postgres', 'CREATE DATABASE from_custom');
$b->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $b->connstr('from_plain'), '-f', $plain ],
	'plain dump restores with psql');
$b->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $b->connstr('from_custom'), $custom ],
	'custom dump restores with pg_restore');

my $late_id = 1000;
for my $db ('from_plain', 'from_custom')
{
	is($b->safe_psql($db, 'SELECT count(*) FROM customers'), '51', "$db: all rows restored");
	is($b->safe_psql($db, 'SELECT string_agg(email, \',\' ORDER BY id) FROM customers'),
		$raw_a, "$db: stored envelopes identical to the source (not re-sealed)");
	is($b->safe_psql($db,
			"SELECT count(*) FROM customers WHERE customer_vault.decrypt(note, id::text) = 'note-prefers-morning-calls-' || id"),
		'51', "$db: every encrypted_text value decrypts");
	is($b->safe_psql($db,
			"SELECT count(*) FROM customers WHERE convert_from(customer_vault.decrypt(doc, id::text), 'UTF8') = 'passport-scan-' || id"),
		'50', "$db: every encrypted_bytea value decrypts");
	is($b->safe_psql($db,
			"SELECT count(*) FROM customers WHERE customer_vault.decrypt(secret) = 'subject-secret-dob-' || id"),
		'50', "$db: every subject value decrypts");
	is_deeply(decrypted_state($b, $db), $expected,
		"$db: decrypted view and decrypt() return the original plaintext");
	is($b->safe_psql($db,
			"SELECT count(*) FROM customers_decrypted WHERE email LIKE 'cv1\$%'"),
		'0', "$db: no double encryption (no envelope inside an envelope)");
	is($b->safe_psql($db,
			"SELECT string_agg(id || '=' || customer_vault.key_of(note) || '/' || customer_vault.key_of(doc::customer_vault.encrypted_bytea), ',' ORDER BY id) FROM customers WHERE doc IS NOT NULL"),
		$keys_of_a, "$db: key ids and versions preserved");

	# blind index lookup
	is($b->safe_psql($db,
			"SELECT id FROM customers WHERE email_bidx = customer_vault.column_blind_index('customers', 'email', 'carol.sample\@example.com')"),
		'3', "$db: blind index finds the row");
	is($b->safe_psql($db,
			"SELECT count(*) FROM pg_indexes WHERE tablename = 'customers' AND indexdef LIKE '%email_bidx%'"),
		'1', "$db: blind index's index restored");

	# the trigger came along: plaintext written in B is sealed
	$late_id++;
	$b->safe_psql($db,
		"INSERT INTO customers (id, email, phone) VALUES ($late_id, 'restored.insert\@example.net', 'n/a')");
	my $stored = $b->safe_psql($db, "SELECT email FROM customers WHERE id = $late_id");
	like($stored, qr/^cv1\$/, "$db: new plaintext insert is stored sealed");
	unlike($stored, qr/restored\.insert/, "$db: stored value has no plaintext");
	is($b->safe_psql($db, "SELECT email FROM customers_decrypted WHERE id = $late_id"),
		'restored.insert@example.net', "$db: the new row decrypts through the view");
	is($b->safe_psql($db,
			"SELECT id FROM customers WHERE email_bidx = customer_vault.column_blind_index('customers', 'email', 'restored.insert\@example.net')"),
		$late_id, "$db: the new row's blind index was computed");
	$b->safe_psql($db,
		"UPDATE customers SET email = 'updated.in.b\@example.net' WHERE id = 1");
	is($b->safe_psql($db, "SELECT email LIKE 'cv1\$%' FROM customers WHERE id = 1"),
		't', "$db: an UPDATE is sealed too");
	is($b->safe_psql($db, "SELECT email FROM customers_decrypted WHERE id = 1"),
		'updated.in.b@example.net', "$db: the updated row decrypts");

	# the sealed-value CHECK came along: a raw non-envelope value is refused
	my ($ret, $out, $stderr) = $b->psql($db,
		"ALTER TABLE customers DISABLE TRIGGER USER; INSERT INTO customers (id, email) VALUES (9999, 'bypass\@example.net')");
	isnt($ret, 0, "$db: plaintext bypassing the trigger is refused by the CHECK");
	like($stderr, qr/cv_sealed_\d+/, "$db: error names the sealed-value constraint");

	# the context binding still holds: a wrong context is an error, not garbage
	($ret, $out, $stderr) = $b->psql($db,
		"SELECT customer_vault.decrypt(note, '2') FROM customers WHERE id = 1");
	isnt($ret, 0, "$db: wrong context refused");
	is($out, '', "$db: wrong context returns nothing");

	# new keys / rotation work in the restored database
	is($b->safe_psql($db, "SELECT customer_vault.rotate_key('k')"), '2', "$db: rotate_key after restore");
	is($b->safe_psql($db,
			"SELECT customer_vault.key_of(customer_vault.encrypt('x', 'k'))"),
		'k:2', "$db: new values use the rotated version");
}

# ---------- restore into C (a different root key) ----------
my $c = new_vault_node('c', key => $other_key);
$c->safe_psql('postgres', 'CREATE DATABASE from_plain');
$c->safe_psql('postgres', 'CREATE DATABASE from_custom');
$c->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $c->connstr('from_plain'), '-f', $plain ],
	'plain dump restores under a different root key');
$c->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $c->connstr('from_custom'), $custom ],
	'custom dump restores under a different root key');
for my $db ('from_plain', 'from_custom')
{
	is($c->safe_psql($db, 'SELECT count(*) FROM customers'), '51', "$db (other root key): rows restored");
	for my $q (
		[ 'encrypted_text', "SELECT customer_vault.decrypt(note, id::text) FROM customers WHERE id = 2" ],
		[ 'encrypted_bytea', "SELECT customer_vault.decrypt(doc, id::text) FROM customers WHERE id = 2" ],
		[ 'subject value', "SELECT customer_vault.decrypt(secret) FROM customers WHERE id = 2" ],
		[ 'decrypted view', "SELECT email FROM customers_decrypted WHERE id = 2" ],
		[ 'blind index', "SELECT customer_vault.blind_index('bob.sample\@example.com', 'k')" ],
		[ 'new encrypt', "SELECT customer_vault.encrypt('x', 'k')" ])
	{
		my ($name, $sql) = @$q;
		my ($ret, $out, $stderr) = $c->psql($db, $sql);
		isnt($ret, 0, "$db (other root key): $name fails");
		like($stderr, qr/wrapped under a different root key/, "$db (other root key): $name error says why");
		is($out, '', "$db (other root key): $name returns no garbage");
		unlike($stderr, qr/\Q$root_key\E|\Q$other_key\E/i, "$db (other root key): $name error does not print a key");
	}
	# the trigger refuses to store plaintext it cannot seal
	my ($ret, $out, $stderr) = $c->psql($db,
		"INSERT INTO customers (id, email) VALUES (777, 'unsealable\@example.net')");
	isnt($ret, 0, "$db (other root key): plaintext insert into protected column fails");
	is($c->safe_psql($db, "SELECT count(*) FROM customers WHERE email LIKE '%unsealable%' OR id = 777"),
		'0', "$db (other root key): nothing stored in clear");
}

$a->stop;
$b->stop;
$c->stop;
done_testing();
