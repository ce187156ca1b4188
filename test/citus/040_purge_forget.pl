# Retention and erasure on a distributed table: purge() removes the expired
# rows on every shard and keeps the held subjects' (one purge_log entry for
# the table, the rows counted from the shards); forget_subject() removes a
# subject's rows on every shard.
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
-- 1000 rows, subjects s0..s9, one a day back from now
INSERT INTO events SELECT g, 's' || (g % 10), now() - (g || ' days')::interval FROM generate_series(1, 1000) g;
SELECT customer_vault.set_retention('events', 'at', '100 days', 'delete', 'subject');
SELECT customer_vault.place_legal_hold('s3', 'litigation');
});
# expired: ids 100..1000 (901 rows, a day's margin aside), of which s3's 90 are held
my $expired = $coord->safe_psql('postgres', "SELECT count(*) FROM events WHERE at < now() - interval '100 days'");
my $held = $coord->safe_psql('postgres', "SELECT count(*) FROM events WHERE at < now() - interval '100 days' AND subject = 's3'");
cmp_ok($expired, '>', 800, 'most rows are past retention');
is($coord->safe_psql('postgres', 'SELECT expired || \'/\' || held || \'/\' || to_purge FROM customer_vault.purge_preview()'),
	"$expired/$held/" . ($expired - $held), 'purge_preview counts from the shards');

$coord->safe_psql('postgres', 'CALL customer_vault.purge()');
is($coord->safe_psql('postgres', "SELECT count(*) FROM events WHERE at < now() - interval '100 days'"),
	$held, 'purge removed every expired row but the held ones');
is($coord->safe_psql('postgres', "SELECT count(*) FROM events WHERE subject = 's3' AND at < now() - interval '100 days'"),
	$held, 'the held subject keeps all its rows');
is($coord->safe_psql('postgres', "SELECT count(*) FROM events WHERE at >= now() - interval '100 days'"),
	1000 - $expired, 'rows within retention stay');
is($coord->safe_psql('postgres',
	"SELECT count(*) || ' ' || string_agg(status || ' ' || rows_purged || ' ' || rows_held, ',') FROM customer_vault.purge_log WHERE tbl = 'public.events'"),
	"1 done " . ($expired - $held) . " $held", 'one purge_log entry for the table, with the rows purged');
# every worker lost rows (the purge reached each shard)
for my $n ($w1, $w2)
{
	is($n->safe_psql('postgres', q{
SET citus.override_table_visibility = off;
SELECT count(*) FROM pg_class c WHERE c.relname ~ '^events_[0-9]+$'
   AND pg_catalog.pg_relation_size(c.oid) > 0}) > 0 ? 1 : 0, 1, $n->name . ': holds shards of events');
}

# forget_subject: every shard
$coord->safe_psql('postgres', q{
SELECT customer_vault.register_subject_table('events', 'subject');
SELECT customer_vault.forget_subject('s4', 'erasure request');
});
is($coord->safe_psql('postgres', "SELECT count(*) FROM events WHERE subject = 's4'"), '0',
	'forget_subject removed the subject\'s rows on every shard');
cmp_ok($coord->safe_psql('postgres', "SELECT count(*) FROM events WHERE subject = 's5'"), '>', 0,
	'and no one else\'s');
my ($rc, $out, $err) = $coord->psql('postgres', q{SELECT customer_vault.forget_subject('s3', 'erasure request')});
isnt($rc, 0, 'forget_subject refused while a hold stands');
cmp_ok($coord->safe_psql('postgres', "SELECT count(*) FROM events WHERE subject = 's3'"), '>', 0,
	'the held subject\'s rows are still there');

done_testing();
