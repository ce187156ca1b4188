# protect_column() leaves no plaintext behind on disk: after the conversion
# (one table rewrite) and a checkpoint, none of the distinctive sample values
# appears in the files of the table, its TOAST table or any of its indexes,
# and the files that held the plaintext are gone.  The naive way (UPDATE the
# column, VACUUM) is shown to leave the old values in the table's file.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $key = random_root_key();
my $node = new_vault_node('remnant', key => $key,
	conf => "autovacuum = off\n"
	  . "log_statement = none\n");

my $short_rows = 20000;
my $long_rows  = 20;
my $pattern    = 'remnant-check-';

# a table of distinctive values: many pages of short ones, plus long ones
# (about 3.6 kB, stored uncompressed) that go to the TOAST table
sub create_table
{
	my ($name) = @_;
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE $name (id bigint PRIMARY KEY, email text, phone text);
ALTER TABLE $name ALTER COLUMN email SET STORAGE EXTERNAL;
INSERT INTO $name
SELECT g, 'remnant-check-' || g || '\@example.org', '+1 555 ' || g FROM generate_series(1, $short_rows) g;
INSERT INTO $name
SELECT $short_rows + g, 'remnant-check-long-' || g || '\@example.org ' || repeat('lorem ipsum dolor ', 200), 'n/a'
  FROM generate_series(1, $long_rows) g;
CREATE INDEX ${name}_email_prefix ON $name (left(email, 40));
});
}

# absolute paths of every file (all segments, all forks) of a relation
sub rel_files
{
	my ($relid_sql) = @_;
	my $rel = $node->safe_psql('postgres', "SELECT pg_relation_filepath($relid_sql)");
	die "no file path for $relid_sql" if $rel eq '';
	my $base = $node->data_dir . '/' . $rel;
	my @files = grep { -f $_ } glob("$base $base.* ${base}_*");
	return ($base, @files);
}

# every relation storing the table's data: heap, TOAST heap, TOAST index,
# every index; name => [main path, files...]
sub storage_of
{
	my ($table) = @_;
	my %st;
	$st{heap} = [ rel_files("'$table'::regclass") ];
	my $toast = $node->safe_psql('postgres', "SELECT reltoastrelid FROM pg_class WHERE oid = '$table'::regclass");
	isnt($toast, '0', "$table has a TOAST table");
	$st{toast} = [ rel_files($toast) ];
	my $toast_index = $node->safe_psql('postgres',
		"SELECT indexrelid FROM pg_index WHERE indrelid = $toast");
	$st{toast_index} = [ rel_files($toast_index) ];
	for my $line (split /\n/, $node->safe_psql('postgres',
		"SELECT indexrelid, indexrelid::regclass FROM pg_index WHERE indrelid = '$table'::regclass ORDER BY 2"))
	{
		my ($oid, $name) = split /\|/, $line;
		$st{"index $name"} = [ rel_files($oid) ];
	}
	return \%st;
}

# count the occurrences of a string in the given files
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

# ---------- the table to protect ----------
create_table('r');
$node->safe_psql('postgres',
	"SET client_min_messages = warning; CREATE EXTENSION customer_vault CASCADE; SELECT customer_vault.create_key('k')");
$node->safe_psql('postgres', 'CHECKPOINT');
my $before = storage_of('r');
cmp_ok($node->safe_psql('postgres', "SELECT pg_relation_size('r') / 8192"), '>', 100,
	'the table spans many pages');

# sanity: the search finds the plaintext where it is
my @heap_files = @{ $before->{heap} }[ 1 .. $#{ $before->{heap} } ];
cmp_ok(occurrences($pattern, @heap_files), '>=', $short_rows, 'sanity: plaintext found in the heap file');
ok(occurrences('remnant-check-777@example.org', @heap_files) >= 1, 'sanity: one given value found in the heap file');
my @toast_files = @{ $before->{toast} }[ 1 .. $#{ $before->{toast} } ];
is(occurrences("${pattern}long-", @toast_files), $long_rows, 'sanity: long plaintext found in the TOAST file');
my @idx_files = @{ $before->{'index r_email_prefix'} }[ 1 .. $#{ $before->{'index r_email_prefix'} } ];
cmp_ok(occurrences($pattern, @idx_files), '>=', $short_rows, 'sanity: plaintext found in the index file');

# statistics, as autovacuum would gather them: they hold sample values (a
# small statistics target keeps the arrays uncompressed, so a search finds them)
$node->safe_psql('postgres', 'ALTER TABLE r ALTER COLUMN email SET STATISTICS 10; ANALYZE r');
cmp_ok($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stats WHERE tablename = 'r' AND attname = 'email' AND histogram_bounds IS NOT NULL"),
	'==', 1, 'sanity: ANALYZE stored a histogram of the plaintext');

# ---------- protect, checkpoint, search again ----------
$node->safe_psql('postgres', "SELECT customer_vault.protect_column('r', 'email', 'k', 'id', 'email_bidx')");
$node->safe_psql('postgres', 'CHECKPOINT');
my $after = storage_of('r');

is($node->safe_psql('postgres', 'SELECT count(*) FROM r WHERE customer_vault.is_sealed(email)'),
	$short_rows + $long_rows, 'every value is sealed');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM r_decrypted WHERE email = 'remnant-check-' || id || '\@example.org' OR email LIKE 'remnant-check-long-%'"),
	$short_rows + $long_rows,
	'every value decrypts to the original');
is($node->safe_psql('postgres',
		"SELECT id FROM r WHERE email_bidx = customer_vault.column_blind_index('r', 'email', 'remnant-check-4242\@example.org')"),
	'4242', 'blind index lookup works after the conversion');

ok(exists $after->{'index r_email_bidx_idx'} || grep({ /bidx/ } keys %$after), 'the blind index has an index');
for my $what (sort keys %$after)
{
	my ($main, @files) = @{ $after->{$what} };
	ok(@files > 0, "after: $what has files");
	is(occurrences($pattern, @files), 0, "after: no plaintext in the files of $what");
	is(occurrences('example.org', @files), 0, "after: not even the common suffix in $what");
	if (exists $before->{$what})
	{
		isnt($main, $before->{$what}[0], "after: $what was rewritten to a new file");
	}
}
cmp_ok(occurrences('cv1$', @{ $after->{heap} }[ 1 .. $#{ $after->{heap} } ]),
	'>=', $short_rows, 'sanity: the heap now holds envelopes');

# the files that held plaintext are gone (or, before unlinking, empty)
for my $what (sort keys %$before)
{
	my ($main, @files) = @{ $before->{$what} };
	my %seen;
	for my $f (grep { !$seen{$_}++ } $main, @files)
	{
		ok(!-e $f || -s $f == 0, "before-file of $what is gone or empty: $f");
	}
	is(occurrences($pattern, grep { -e $_ } @files), 0, "no plaintext left in old files of $what");
}

# Known limitation: the statistics gathered on the plaintext column are
# deleted by the conversion, but the dead pg_statistic tuples (most common
# values, histogram bounds) stay in pg_statistic's files.
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stats WHERE tablename = 'r' AND attname = 'email'"),
	'0', 'the plaintext statistics are no longer visible');
my $stat = storage_of('pg_catalog.pg_statistic');
my @stat_files = map { @{$_}[ 1 .. $#$_ ] } values %$stat;
TODO:
{
	local $TODO = 'protect_column() leaves plaintext statistics as dead tuples in pg_statistic';
	my $n = occurrences($pattern, @stat_files);
	note "$n plaintext samples left in the files of pg_statistic";
	is($n, 0, 'no plaintext sample left in the files of pg_statistic');
}

# the trigger keeps new writes out of the files too
$node->safe_psql('postgres',
	"INSERT INTO r (id, email) VALUES (0, 'remnant-check-new\@example.org'); UPDATE r SET email = 'remnant-check-upd\@example.org' WHERE id = 1");
$node->safe_psql('postgres', 'CHECKPOINT');
$after = storage_of('r');
for my $what (sort keys %$after)
{
	my ($main, @files) = @{ $after->{$what} };
	is(occurrences($pattern, @files), 0, "after later writes: no plaintext in $what");
}

# ---------- the pitfall: overwrite + VACUUM leaves the old values ----------
create_table('naive');
$node->safe_psql('postgres', 'CHECKPOINT');
my $naive = storage_of('naive');
my @naive_heap = @{ $naive->{heap} }[ 1 .. $#{ $naive->{heap} } ];
cmp_ok(occurrences($pattern, @naive_heap), '>=', $short_rows, 'naive: plaintext in the heap before');
$node->safe_psql('postgres', "UPDATE naive SET email = 'x'");
$node->safe_psql('postgres', 'VACUUM naive');
$node->safe_psql('postgres', 'CHECKPOINT');
is($node->safe_psql('postgres', "SELECT count(*) FROM naive WHERE email <> 'x'"), '0',
	'naive: SQL sees only the overwritten value');
$naive = storage_of('naive');
@naive_heap = @{ $naive->{heap} }[ 1 .. $#{ $naive->{heap} } ];
my $left = occurrences($pattern, @naive_heap);
note "naive: $left plaintext occurrences left in the heap after UPDATE + VACUUM";
cmp_ok($left, '>', 0, 'naive: UPDATE + VACUUM leaves plaintext in the table file (the pitfall)');

$node->stop;
done_testing();
