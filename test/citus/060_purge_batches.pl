# purge() on hash-distributed tables walks each shard's range of the
# distribution column's hash in committed parts of about batch_size rows
# (several batches per table), keeps the held subject's rows on every shard,
# and writes one purge_log entry per table; a text distribution column hashes
# as Citus places its rows (none is missed).
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
CREATE TABLE events (id bigint PRIMARY KEY, subject text NOT NULL, at timestamptz NOT NULL);
SELECT create_distributed_table('events', 'id');
INSERT INTO events SELECT g, 's' || (g % 10), now() - (g || ' hours')::interval FROM generate_series(1, 4000) g;
CREATE TABLE notes (k text PRIMARY KEY, subject text NOT NULL, at timestamptz NOT NULL);
SELECT create_distributed_table('notes', 'k');
INSERT INTO notes SELECT 'note-' || g, 's' || (g % 10), now() - (g || ' hours')::interval FROM generate_series(1, 3000) g;
SELECT customer_vault.set_retention('events', 'at', '10 days', 'delete', 'subject');
SELECT customer_vault.set_retention('notes', 'at', '10 days', 'delete', 'subject');
SELECT customer_vault.place_legal_hold('s3', 'litigation');
});
my %want;
for my $t (qw(events notes))
{
	my ($exp, $held) = split /\|/, $coord->safe_psql('postgres',
		"SELECT count(*), count(*) FILTER (WHERE subject = 's3') FROM $t WHERE at < now() - interval '10 days' - interval '1 hour'");
	$want{$t} = [ $exp, $held ];
	cmp_ok($exp, '>', 2000, "$t: most rows are past retention");
}

my ($rc, $out, $err) = $coord->psql('postgres', 'CALL customer_vault.purge(batch_size => 200)');
is($rc, 0, 'purge succeeds') or diag($err, $coord->safe_psql('postgres', 'SELECT tbl, sqlstate, message FROM customer_vault.purge_log'));

for my $t (qw(events notes))
{
	my ($exp, $held) = @{ $want{$t} };
	is($coord->safe_psql('postgres', "SELECT count(*) FROM $t WHERE at < now() - interval '10 days' AND subject <> 's3'"),
		'0', "$t: every expired row not held is gone");
	cmp_ok($coord->safe_psql('postgres', "SELECT count(*) FROM $t WHERE subject = 's3' AND at < now() - interval '10 days'"),
		'>=', $held, "$t: the held subject keeps its expired rows");
	is($coord->safe_psql('postgres', "SELECT count(*) FROM $t WHERE subject <> 's3' AND at >= now() - interval '9 days'"),
		'193', "$t: rows within retention stay");
	my ($n, $status, $purged, $batches) = split /\|/, $coord->safe_psql('postgres',
		"SELECT count(*) OVER (), status, rows_purged, batches FROM customer_vault.purge_log WHERE tbl = 'public.$t'");
	is("$n $status", '1 done', "$t: one purge_log entry, done");
	cmp_ok($purged, '>=', $exp - $held, "$t: it counts the rows purged on every shard");
	# 8 shards, parts of about 200 rows: far more than one statement
	cmp_ok($batches, '>=', int(($exp - $held) / 200), "$t: in batches of about batch_size rows ($batches)");
	cmp_ok($batches, '<', 400, "$t: not row by row");
	# every placement kept only held or recent rows
	is($coord->safe_psql('postgres', qq{
SELECT string_agg(DISTINCT result, ',') FROM run_command_on_placements('$t',
  \$\$SELECT count(*) FROM %s WHERE at < now() - interval '10 days' AND subject <> 's3'\$\$)}),
		'0', "$t: no shard keeps an expired row");
}

# a second run finds nothing more, still one entry per table and run
$coord->safe_psql('postgres', 'CALL customer_vault.purge(batch_size => 200)');
is($coord->safe_psql('postgres',
	"SELECT string_agg(tbl || ':' || rows_purged, ',' ORDER BY tbl) FROM customer_vault.purge_log WHERE id > (SELECT max(id) FROM customer_vault.purge_log WHERE tbl = 'public.notes' AND rows_purged > 0)"),
	'public.events:0,public.notes:0', 'a second run purges nothing, one entry per table');

done_testing();
