# masked_copy() (issue 14) writes masks, never plaintext: after a checkpoint
# none of the distinctive plaintext values of the masked columns appears in
# the files of the copy (heap, TOAST), while the masks do; a naive copy made
# from the decrypted view is shown to hold them (so the search can fail).
# Keyed masks (hash) are the same in every session and after a restart; the
# copier has SELECT on the unmasked columns only (the masked view reads the rest).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('maskcopy', key => random_root_key(),
	conf => "autovacuum = off\nlog_statement = none\n");
my $rows = 5000;

$node->safe_psql(
	'postgres', qq{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.create_key('k');
CREATE ROLE regress_copier LOGIN IN ROLE customer_vault_masked_reader;
CREATE TABLE c (id bigint PRIMARY KEY, email text, phone text, note text, city text);
ALTER TABLE c ALTER COLUMN note SET STORAGE EXTERNAL;
INSERT INTO c SELECT g, 'maskcheck-' || g || '\@example.org', '+1 555 7' || lpad(g::text, 6, '0'),
                        'maskcheck-note-' || g || ' ' || repeat('lorem ipsum ', 300), 'Leeds'
  FROM generate_series(1, $rows) g;
SELECT customer_vault.protect_column('c', 'email', 'k', 'id', 'email_bidx');
SELECT customer_vault.protect_column('c', 'phone', 'k', 'id');
SECURITY LABEL FOR customer_vault ON COLUMN c.note IS 'pii';
SELECT customer_vault.mask_column('c', 'email', 'hash');
SELECT customer_vault.mask_column('c', 'phone', 'partial(0,"*** ",2)');
SELECT customer_vault.mask_column('c', 'note', 'partial(0,"[note]",0)');
GRANT SELECT (id, city) ON c TO regress_copier;
CREATE SCHEMA dev AUTHORIZATION regress_copier;
});

is( $node->safe_psql(
		'postgres', "SET ROLE regress_copier; SELECT customer_vault.masked_copy('c', 'c_copy', 'dev')"),
	$rows, 'masked_copy copies every row');
is($node->safe_psql('postgres', "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'dev.c_copy'::regclass"),
	'regress_copier', 'the copy belongs to the role that asked for it');
# the naive way, for the sanity check: plaintext of the decrypted view
$node->safe_psql('postgres', 'CREATE TABLE naive AS SELECT * FROM c_decrypted');
$node->safe_psql('postgres', 'CHECKPOINT');

# every file (all segments and forks) of a relation and of its TOAST table
sub files_of
{
	my ($rel) = @_;
	my @files;
	for my $oid (split /\n/, $node->safe_psql('postgres',
		"SELECT oid FROM pg_class WHERE oid = '$rel'::regclass UNION ALL "
		  . "SELECT reltoastrelid FROM pg_class WHERE oid = '$rel'::regclass AND reltoastrelid <> 0"))
	{
		my $base = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath($oid)");
		push @files, grep { -f $_ } glob("$base $base.* ${base}_*");
	}
	return @files;
}

# the occurrences of a string in files
sub occurrences
{
	my ($needle, @files) = @_;
	my $n = 0;
	for my $f (@files)
	{
		open my $in, '<:raw', $f or die "could not open $f: $!";
		local $/;
		my $data = <$in>;
		close $in;
		my $pos = 0;
		while (($pos = index($data, $needle, $pos)) >= 0)
		{
			$n++;
			$pos += length $needle;
		}
	}
	return $n;
}

my @naive = files_of('naive');
cmp_ok(occurrences('maskcheck-', @naive), '>=', $rows, 'sanity: the naive copy holds the plaintext');
cmp_ok(occurrences('+1 555 7', @naive), '>=', $rows, 'sanity: phone numbers found in the naive copy');

my @copy = files_of('dev.c_copy');
ok(@copy >= 1, 'the copy has files');
is(occurrences('maskcheck-', @copy), 0, 'no plaintext email or note in the files of the copy');
is(occurrences('example.org', @copy), 0, 'not even the common email suffix');
is(occurrences('+1 555 7', @copy), 0, 'no phone number in the files of the copy');
is(occurrences('lorem ipsum', @copy), 0, 'no text of the long labelled column');
cmp_ok(occurrences('*** ', @copy), '>=', $rows, 'sanity: the masks are there');
is($node->safe_psql('postgres', "SELECT count(*) FROM dev.c_copy WHERE email ~ '^[0-9a-f]{32}\$'"),
	$rows, 'hash masks in the copy');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_attribute WHERE attrelid = 'dev.c_copy'::regclass AND attname = 'email_bidx'"),
	'0', 'the blind index column is not copied');

# keyed masks: the same in another session and after a restart
my $q = 'SET ROLE regress_copier; SELECT md5(string_agg(email || note, \',\' ORDER BY id)) FROM c_masked';
my $first = $node->safe_psql('postgres', $q);
is($node->safe_psql('postgres', 'SELECT md5(string_agg(email || note, \',\' ORDER BY id)) FROM dev.c_copy'),
	$first, 'the copy holds what the view shows');
is($node->safe_psql('postgres', $q), $first, 'the same masks in a new session');
$node->restart;
is($node->safe_psql('postgres', $q), $first, 'the same masks after a restart');

$node->stop;
done_testing();
