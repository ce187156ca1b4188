# Key changes committed in one session reach the key cache of another
# session at once: after shred_subject() commits in session 2, session 1's
# very next statement reads the subject's values as NULL, although it had the
# key cached; after rotate_key() commits in session 2, session 1's next
# encrypt() uses the new version.  Uncommitted or rolled-back changes are not
# seen.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $key = random_root_key();
my $node = new_vault_node('sessions', key => $key);

$node->safe_psql(
	'postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
SELECT customer_vault.create_key('k');
CREATE TABLE s (id int PRIMARY KEY, v customer_vault.encrypted_text);
INSERT INTO s VALUES
    (1, customer_vault.encrypt_for_subject('subj-1', 'alice-secret')),
    (2, customer_vault.encrypt_for_subject('subj-2', 'bob-secret')),
    (3, customer_vault.encrypt_for_subject('subj-3', 'carol-secret')),
    (10, customer_vault.encrypt('named-secret', 'k', 'ctx'));
});

my $s1 = $node->background_psql('postgres');
my $s2 = $node->background_psql('postgres', on_error_stop => 0);

my $read = sub {
	my ($id) = @_;
	return "SELECT coalesce(customer_vault.decrypt(v), '<NULL>') FROM s WHERE id = $id";
};

# ---------- shredding ----------
is($s1->query_safe($read->(1)), 'alice-secret', 'session 1 decrypts subj-1 (key now cached)');
is($s1->query_safe($read->(2)), 'bob-secret',   'session 1 decrypts subj-2');

# an uncommitted shred is not seen
$s2->query_safe('BEGIN');
is($s2->query_safe("SELECT customer_vault.shred_subject('subj-1')"), 't', 'session 2 shreds subj-1 (not yet committed)');
is($s2->query_safe($read->(1)), '<NULL>', 'session 2 sees its own shred at once');
is($s1->query_safe($read->(1)), 'alice-secret', 'session 1 still decrypts before the commit');

# a rolled-back shred changes nothing
$s2->query_safe('ROLLBACK');
is($s1->query_safe($read->(1)), 'alice-secret', 'session 1 decrypts after the rollback');
is($s2->query_safe($read->(1)), 'alice-secret', 'session 2 decrypts after its rollback');

# the committed shred is seen by session 1's very next statement
is($s2->query_safe("SELECT customer_vault.shred_subject('subj-1')"), 't', 'session 2 shreds subj-1 and commits');
is($s1->query_safe($read->(1)), '<NULL>', "session 1's next statement reads NULL for subj-1");
is($s1->query_safe($read->(2)), 'bob-secret', 'session 1 still decrypts the other subject');
is($s1->query_safe('SELECT count(*) FROM s WHERE id = 1 AND customer_vault.decrypt(v) IS NULL'), '1',
	'session 1: the shredded value is NULL (not an error, not garbage)');
is($s2->query_safe("SELECT customer_vault.shred_subject('subj-1')"), 'f', 'shredding again finds no key');

# a new session sees it too
is($node->safe_psql('postgres', $read->(1)), '<NULL>', 'a new session reads NULL for subj-1');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM customer_vault.data_keys WHERE state = 'destroyed' AND wrapped IS NULL"),
	'1', 'the destroyed key has no key material left');

# a new value for the shredded subject uses a new key; the old value stays NULL
is($s1->query_safe(
		"SELECT customer_vault.decrypt(customer_vault.encrypt_for_subject('subj-1', 'alice-again'))"),
	'alice-again', 'session 1: subj-1 gets a new key for new values');
is($s2->query_safe($read->(1)), '<NULL>', 'session 2: the old subj-1 value stays NULL');

# a shred committed while session 1 is inside a transaction: its next statement
$s1->query_safe('BEGIN');
is($s1->query_safe($read->(3)), 'carol-secret', 'session 1 (in a transaction) decrypts subj-3');
is($s2->query_safe("SELECT customer_vault.shred_subject('subj-3')"), 't', 'session 2 shreds subj-3 and commits');
is($s1->query_safe($read->(3)), '<NULL>', "session 1's next statement in the same transaction reads NULL");
$s1->query_safe('COMMIT');
is($s1->query_safe($read->(3)), '<NULL>', 'session 1 reads NULL after its commit');

# ---------- rotation ----------
my $key_of_new = "SELECT customer_vault.key_of(customer_vault.encrypt('x', 'k'))";
my $bidx = "SELECT encode(customer_vault.blind_index('someone\@example.com', 'k'), 'hex')";
is($s1->query_safe($key_of_new), 'k:1', 'session 1 encrypts under k:1 (key cached)');
my $bidx_before = $s1->query_safe($bidx);

# an uncommitted or rolled-back rotation is not seen
$s2->query_safe('BEGIN');
is($s2->query_safe("SELECT customer_vault.rotate_key('k')"), '2', 'session 2 rotates (not yet committed)');
is($s2->query_safe($key_of_new), 'k:2', 'session 2 uses its own new version at once');
is($s1->query_safe($key_of_new), 'k:1', 'session 1 still uses k:1 before the commit');
$s2->query_safe('ROLLBACK');
is($s1->query_safe($key_of_new), 'k:1', 'session 1 uses k:1 after the rollback');

# the committed rotation is used by session 1's next encrypt
is($s2->query_safe("SELECT customer_vault.rotate_key('k')"), '2', 'session 2 rotates to version 2 and commits');
is($s1->query_safe($key_of_new), 'k:2', "session 1's next encrypt uses k:2");
is($s1->query_safe("SELECT customer_vault.decrypt(v, 'ctx') FROM s WHERE id = 10"), 'named-secret',
	'session 1 still decrypts the k:1 value');
is($s1->query_safe($bidx), $bidx_before, 'blind index unchanged by the rotation');
is($node->safe_psql('postgres', "SELECT string_agg(version || '=' || state, ',' ORDER BY version) FROM customer_vault.keys WHERE name = 'k'"),
	'1=decrypt_only,2=active', 'key ring: k:1 decrypt-only, k:2 active');

# once more, with session 1 inside a transaction: a statement that reads a
# table processes the invalidation, so it uses the new version at once
$s1->query_safe('BEGIN');
my $key_of_new_tbl = "SELECT customer_vault.key_of(customer_vault.encrypt('x', 'k')) FROM s WHERE id = 10";
is($s1->query_safe($key_of_new_tbl), 'k:2', 'session 1 (in a transaction) encrypts under k:2');
is($s2->query_safe("SELECT customer_vault.rotate_key('k')"), '3', 'session 2 rotates to version 3 and commits');
is($s1->query_safe($key_of_new_tbl), 'k:3',
	"session 1's next statement in the same transaction (reading a table) uses k:3");
$s1->query_safe('COMMIT');
is($s1->query_safe($key_of_new), 'k:3', 'session 1 uses k:3 after its commit');

# A statement that reads no table inside an open transaction does not process
# the invalidation (the documented guarantee is "the next transaction").
# Recorded as TODO: a shredded key stays usable there until the transaction ends.
$s1->query_safe('BEGIN');
my $env4 = $node->safe_psql('postgres', "SELECT customer_vault.encrypt_for_subject('subj-4', 'dave-secret')");
my $read_lit = "SELECT coalesce(customer_vault.decrypt('$env4'::customer_vault.encrypted_text), '<NULL>')";
is($s1->query_safe($read_lit), 'dave-secret', 'session 1 (in a transaction) decrypts a subj-4 literal');
is($s2->query_safe("SELECT customer_vault.shred_subject('subj-4')"), 't', 'session 2 shreds subj-4 and commits');
TODO:
{
	local $TODO = 'key cache invalidations are not processed by a statement that opens no relation';
	is($s1->query_safe($read_lit), '<NULL>',
		"session 1's next statement in the same transaction (no table) reads NULL");
}
$s1->query_safe('COMMIT');
is($s1->query_safe($read_lit), '<NULL>', 'session 1 reads NULL in its next transaction');

# a value sealed by session 1 is readable by session 2 and vice versa
my $env = $s1->query_safe("SELECT customer_vault.encrypt('cross-session', 'k', 'c')");
is($s2->query_safe("SELECT customer_vault.decrypt('$env'::customer_vault.encrypted_text, 'c')"), 'cross-session',
	'session 2 decrypts what session 1 sealed under the new version');
my ($out, $failed) = $s2->query("SELECT customer_vault.decrypt('$env'::customer_vault.encrypted_text, 'other')");
ok($failed, 'a wrong context is an error');
is($out, '', 'a wrong context returns nothing');
like($s2->{stderr}, qr/could not decrypt value/, 'the error says the value does not open');
$s2->{stderr} = '';
# rotate_key of a missing key fails cleanly, the session stays usable
($out, $failed) = $s2->query("SELECT customer_vault.rotate_key('no_such_key')");
ok($failed, 'rotate_key of an unknown key fails');
like($s2->{stderr}, qr/key "no_such_key" does not exist/, 'the error names the key');
$s2->{stderr} = '';
is($s2->query_safe($key_of_new), 'k:3', 'session 2 is still usable after the errors');

ok($s1->quit, 'session 1 ends cleanly');
ok($s2->quit, 'session 2 ends cleanly');
$node->stop;
done_testing();
