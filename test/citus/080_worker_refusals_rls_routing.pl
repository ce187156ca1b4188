# Part CITUS (session 22):
#  - on a worker connected directly, whatever writes the extension's evidence
#    or registry is refused (55000, hint "Connect to the coordinator"): keys
#    (create, rotate, rewrap, shred, padding), purposes, retention, the purge
#    (its purge_log would stay on the worker), subject tables, exports, role
#    locks, decrypt limits, protect_column, mask_column; nothing is written;
#  - maintenance's row_security = off reaches the workers: shards forced by
#    hand while the table is not had their policy hide rows from the owner
#    there: the purge reported done with those rows left; then it failed on
#    the shard's row-level security (42501) as on a single node; since part
#    CITUS of session 25 the purge asks every placement first and refuses a
#    table whose owner is forced on any shard (0A000, test 097), FORCE on the
#    table itself included (Citus copies it to the shards); without FORCE
#    every expired row goes; the caller's row_security is set back on the
#    workers for the rest of its transaction;
#  - the purge of a hash-distributed table sends each batch's DELETE to the
#    shards of its rows only (citus.log_remote_commands shows which).
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
SELECT customer_vault.define_purpose('marketing', 'consent');
CREATE ROLE regress_app LOGIN;
CREATE TABLE people (id bigint PRIMARY KEY, subject text NOT NULL, note text, at timestamptz NOT NULL);
SELECT create_distributed_table('people', 'id');
INSERT INTO people SELECT g, 's' || (g % 5), 'n' || g, now() - (g || ' days')::interval + interval '12 hours' FROM generate_series(1, 40) g;
SELECT customer_vault.set_retention('people', 'at', '10 days', 'delete', 'subject');
SELECT customer_vault.register_subject_table('people', 'subject');
});

# ---- 1. the coordinator's work is refused on a worker, nothing written
my %calls = (
	'create_key()'               => q{SELECT customer_vault.create_key('w')},
	'rotate_key()'               => q{SELECT customer_vault.rotate_key('k')},
	'rewrap_keys()'              => q{SELECT customer_vault.rewrap_keys()},
	'shred_subject()'            => q{SELECT customer_vault.shred_subject('s1')},
	'set_key_padding()'          => q{SELECT customer_vault.set_key_padding('k', 64)},
	'define_purpose()'           => q{SELECT customer_vault.define_purpose('billing', 'contract')},
	'allow_purpose()'            => q{SELECT customer_vault.allow_purpose('regress_app', 'marketing')},
	'disallow_purpose()'         => q{SELECT customer_vault.disallow_purpose('regress_app', 'marketing')},
	'set_retention()'            => q{SELECT customer_vault.set_retention('people', 'at', '1 day')},
	'drop_retention()'           => q{SELECT customer_vault.drop_retention('people')},
	'purge()'                    => q{CALL customer_vault.purge()},
	'register_subject_table()'   => q{SELECT customer_vault.register_subject_table('people', 'id')},
	'unregister_subject_table()' => q{SELECT customer_vault.unregister_subject_table('people')},
	'export_subject()'           => q{SELECT customer_vault.export_subject('s1')},
	'lock_stale_roles()'         => q{SELECT customer_vault.lock_stale_roles('1 day', false)},
	'set_decrypt_limit()'        => q{SELECT customer_vault.set_decrypt_limit('regress_app', 5)},
	'protect_column()'           => q{SELECT customer_vault.protect_column('people', 'note', 'k')},
	'mask_column()'              => q{SELECT customer_vault.mask_column('people', 'note', 'null')},
);
my $keys_before = $coord->safe_psql('postgres',
	'SELECT string_agg(name || version || state || coalesce(pad_to::text, \'\'), \',\' ORDER BY id) FROM customer_vault.data_keys');
for my $w ($w1, $w2)
{
	my $name = $w->name;
	for my $what (sort keys %calls)
	{
		my ($ret, $out, $err) = $w->psql('postgres', $calls{$what}, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
		isnt($ret, 0, "$name: $what refused");
		like($err, qr/ERROR:\s+55000: \Q$what\E must run on the Citus coordinator/, "$name: $what: 55000, named");
		like($err, qr/HINT:\s+Connect to the coordinator/, "$name: $what: with the hint");
	}
	is($w->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM customer_vault.purge_log_entries) || '/'
    || (SELECT count(*) FROM customer_vault.subject_exports) || '/'
    || (SELECT count(*) FROM customer_vault.retention_policies) || '/'
    || (SELECT count(*) FROM customer_vault.role_lock_events)}),
		'0/0/0/0', "$name: no purge_log entry, export, retention policy or role lock written there");
}
is($coord->safe_psql('postgres',
	'SELECT string_agg(name || version || state || coalesce(pad_to::text, \'\'), \',\' ORDER BY id) FROM customer_vault.data_keys'),
	$keys_before, 'the keys are unchanged');
is($coord->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM customer_vault.purposes) || '/'
    || (SELECT count(*) FROM customer_vault.purpose_roles) || '/'
    || (SELECT count(*) FROM customer_vault.protected_columns) || '/'
    || (SELECT count(*) FROM customer_vault.mask_rules) || '/'
    || (SELECT string_agg(table_name || ':' || keep::text, ',') FROM customer_vault.retention_policies)}),
	'1/0/0/0/people:10 days', 'purposes, protection, masking and retention unchanged');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM people'), '40', 'no row purged from a worker');
# the coordinator still does the work
is($coord->safe_psql('postgres', q{SELECT customer_vault.rotate_key('k')}), '2', 'the coordinator rotates keys');

# ---- 2. row_security = off reaches the workers (FORCE ROW LEVEL SECURITY)
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE ROLE regress_owner LOGIN;
CREATE TABLE forced (id bigint PRIMARY KEY, subject text NOT NULL, note text, at timestamptz NOT NULL);
SELECT create_distributed_table('forced', 'id');
INSERT INTO forced SELECT g, 's' || (g % 5), 'n' || g, now() - (g || ' days')::interval + interval '12 hours' FROM generate_series(1, 40) g;
ALTER TABLE forced OWNER TO regress_owner;
ALTER TABLE forced ENABLE ROW LEVEL SECURITY;
ALTER TABLE forced FORCE ROW LEVEL SECURITY;
-- the owner sees no row of subject s1
CREATE POLICY hide_s1 ON forced USING (subject <> 's1');
SELECT customer_vault.set_retention('forced', 'at', '10 days', 'delete', 'subject');
});
is($coord->safe_psql('postgres',
	q{SELECT string_agg(DISTINCT result, ',') FROM run_command_on_placements('forced',
	  $$SELECT relforcerowsecurity FROM pg_class WHERE oid = '%s'::regclass$$)}),
	't', 'every shard of forced has FORCE ROW LEVEL SECURITY');
my $expired_forced = $coord->safe_psql('postgres', q{SELECT count(*) FROM forced WHERE at < now() - interval '10 days'});
is($expired_forced, '30', '30 rows of forced are past retention');

# FORCE on the table itself (copied to every shard): refused before any batch
my ($ret, $out, $err) = $coord->psql('postgres', 'CALL customer_vault.purge()');
isnt($ret, 0, 'the purge of a FORCE RLS distributed table whose policy hides rows from the owner fails');
like($err, qr/purge failed for 1 table\(s\): public\.forced/, 'it names the table');
like($coord->safe_psql('postgres',
	q{SELECT status || ' ' || sqlstate || ' ' || message FROM customer_vault.purge_log WHERE tbl = 'public.forced' ORDER BY id DESC LIMIT 1}),
	qr/^failed 0A000 purge cannot reach every row of Citus table public\.forced: its owner is under FORCE ROW LEVEL SECURITY on 8 of its shards$/,
	'purge_log: failed, 0A000, the shards forcing row security on the owner');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM forced WHERE at < now() - interval '10 days'}),
	$expired_forced, 'no row of forced purged');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM people WHERE at < now() - interval '10 days' - interval '1 hour'}),
	'0', 'the other table was purged');

# FORCE on the shards only (made there by hand): the coordinator's table lets
# its owner through, the shards would apply the policy: refused as well
# instead of hiding subject s1's rows (before: 42501 from a shard)
$coord->safe_psql('postgres', q{
ALTER TABLE forced NO FORCE ROW LEVEL SECURITY;
SELECT run_command_on_placements('forced', 'ALTER TABLE %s FORCE ROW LEVEL SECURITY');
});
like($coord->safe_psql('postgres', q{SELECT string_agg(DISTINCT finding, ',') FROM customer_vault.citus_check_policies('forced')}),
	qr/./, 'citus_check_policies reports the shards that differ');
($ret, $out, $err) = $coord->psql('postgres', 'CALL customer_vault.purge()');
isnt($ret, 0, 'the purge fails on the forced shards');
like($coord->safe_psql('postgres',
	q{SELECT status || ' ' || sqlstate || ' ' || message FROM customer_vault.purge_log WHERE tbl = 'public.forced' ORDER BY id DESC LIMIT 1}),
	qr/^failed 0A000 purge cannot reach every row of Citus table public\.forced: its owner is under FORCE ROW LEVEL SECURITY on 8 of its shards$/,
	'purge_log: failed, 0A000 (not done with rows left behind)');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM forced WHERE at < now() - interval '10 days' AND subject = 's1'}),
	'6', "subject s1's expired rows are still there, and reported");

# without FORCE the owner sees every row: everything expired goes
$coord->safe_psql('postgres', q{SELECT run_command_on_placements('forced', 'ALTER TABLE %s NO FORCE ROW LEVEL SECURITY')});
$coord->safe_psql('postgres', 'CALL customer_vault.purge()');
is($coord->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE at < now() - interval '10 days') || '/' || count(*) FROM forced}),
	'0/10', 'without FORCE: every expired row purged, the hidden ones too');
is($coord->safe_psql('postgres',
	q{SELECT status || ' ' || rows_purged FROM customer_vault.purge_log WHERE tbl = 'public.forced' ORDER BY id DESC LIMIT 1}),
	'done 30', 'purge_log: done, 30 rows');

# the caller's row_security is set back on the workers: after protect_column
# (its statements run as the owner with row_security off there) the rest of
# the transaction reads with the caller's setting on the workers too
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE TABLE plain (id bigint PRIMARY KEY, note text);
SELECT create_distributed_table('plain', 'id');
INSERT INTO plain SELECT g, 'p' || g FROM generate_series(1, 20) g;
});
is($coord->safe_psql('postgres', q{
BEGIN;
SELECT customer_vault.protect_column('plain', 'note', 'k') IS NOT NULL;
SELECT string_agg(DISTINCT current_setting('row_security') || (id * 0)::text, ',') FROM plain;
COMMIT;}), "t\non0", 'after protect_column the workers have the caller\'s row_security (on) again');

# ---- 3. each purge batch goes to the shards of its rows only
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE TABLE visits (id bigserial, customer bigint NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (customer, id));
SELECT create_distributed_table('visits', 'customer');
-- recent rows for 50 customers; expired rows (10 each) for 5 customers of one shard only
INSERT INTO visits (customer, at) SELECT g % 50, now() - interval '1 day' FROM generate_series(1, 1000) g;
INSERT INTO visits (customer, at)
SELECT c, now() - interval '30 days'
  FROM (SELECT c FROM generate_series(1, 1000) c
         WHERE get_shard_id_for_distribution_column('visits', c) = get_shard_id_for_distribution_column('visits', 7)
         ORDER BY c LIMIT 5) cs, generate_series(1, 10);
SELECT customer_vault.set_retention('visits', 'at', '10 days');
});
my $shard7 = $coord->safe_psql('postgres', q{SELECT get_shard_id_for_distribution_column('visits', 7)});
($ret, $out, $err) = $coord->psql('postgres', q{SET citus.log_remote_commands = on; CALL customer_vault.purge(batch_size => 20)});
is($ret, 0, 'purge with remote commands logged') or diag($err);
my %shards;
my $deletes = 0;
for my $line (split /\n/, $err)
{
	next unless $line =~ /issuing DELETE FROM (?:ONLY )?public\.visits_(\d+)/;
	$shards{$1}++;
	$deletes++;
}
is(join(',', sort keys %shards), $shard7, "every DELETE of visits went to the one shard holding expired rows")
  or diag(join("\n", grep { /issuing (DELETE|SELECT)/ } split /\n/, $err));
cmp_ok($deletes, '>=', 1, "at least one DELETE ($deletes)");
is($coord->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE at < now() - interval '10 days') || '/' || count(*) FROM visits}),
	'0/1000', 'every expired row purged, the recent ones kept');
is($coord->safe_psql('postgres',
	q{SELECT status || ' ' || rows_purged || ' ' || batches FROM customer_vault.purge_log WHERE tbl = 'public.visits' ORDER BY id DESC LIMIT 1}),
	"done 50 $deletes", 'purge_log: 50 rows, one batch per DELETE');

done_testing();
