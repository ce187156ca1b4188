# Shards forced by hand (part CITUS, issue 16): a table owner can set FORCE
# ROW LEVEL SECURITY on the shard relations of a distributed table (through
# run_command_on_placements, or on a worker with
# citus.enable_manual_changes_to_shards) while the coordinator's table is not
# forced.  forget_subject, export_subject and the purge looked at the
# coordinator's table only: their statements, run as the owner with row
# security off, met the owner's policies on the shards (42501 from one shard,
# or, where row security was on there, rows hidden from them).  Now each asks
# every placement first (CvCitusForcedShards) and refuses with 0A000 before
# any statement runs, naming the shards; with FORCE undone everything works.
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
CREATE ROLE regress_owner LOGIN;
CREATE ROLE regress_dpo LOGIN IN ROLE customer_vault_admin;
CREATE TABLE forced (id bigint PRIMARY KEY, subject text NOT NULL, note text, at timestamptz NOT NULL);
SELECT create_distributed_table('forced', 'id');
INSERT INTO forced SELECT g, 's' || (g % 5), 'n' || g, now() - (g || ' days')::interval + interval '12 hours'
  FROM generate_series(1, 40) g;
ALTER TABLE forced OWNER TO regress_owner;
GRANT SELECT, DELETE ON forced TO regress_dpo;
ALTER TABLE forced ENABLE ROW LEVEL SECURITY;
-- the owner's policy: hides s1 (and the rows of s2 past 10 days) from whoever it applies to
CREATE POLICY hide ON forced USING (subject <> 's1' AND NOT (subject = 's2' AND at < now() - interval '10 days'));
SELECT customer_vault.register_subject_table('forced', 'subject');
SELECT customer_vault.set_retention('forced', 'at', '10 days', 'delete', 'subject');
});

# the rows of a subject on every placement (read on the shards themselves)
sub on_placements
{
	my ($where) = @_;
	return $coord->safe_psql('postgres', qq{
SELECT sum(result::bigint) FROM run_command_on_placements('forced', \$\$SELECT count(*) FROM %s WHERE $where\$\$)});
}

is(on_placements(q{subject = 's1'}), '8', '8 rows of s1 on the shards');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM customer_vault.citus_check_policies('forced')}), '0',
	'every shard like the table');

# ---- 1. every shard forced (the coordinator's table is not)
$coord->safe_psql('postgres', q{SELECT run_command_on_placements('forced', 'ALTER TABLE %s FORCE ROW LEVEL SECURITY')});
is($coord->safe_psql('postgres', q{SELECT relforcerowsecurity FROM pg_class WHERE oid = 'forced'::regclass}), 'f',
	"the coordinator's table is not forced");

my ($ret, $out, $err) = $coord->psql('postgres', q{\set VERBOSITY verbose
SELECT customer_vault.forget_subject('s1', 'request')});
isnt($ret, 0, 'forget_subject refuses a table whose shards force row security on the owner');
like($err, qr/ERROR:  0A000: forget_subject cannot reach every row of Citus table public\.forced: its owner is under FORCE ROW LEVEL SECURITY on 8 of its shards/,
	'0A000, naming the table and the number of shards');
like($err, qr/DETAIL:  FORCE ROW LEVEL SECURITY was set on the shard relations themselves: forced_\d+ on [^,]+:\d+, /,
	'the detail names the shards and their nodes');
like($err, qr/HINT:  Undo it on every placement, e\.g\. SELECT run_command_on_placements\('public\.forced', 'ALTER TABLE %s NO FORCE ROW LEVEL SECURITY'\)/,
	'the hint says how to undo it');
is(on_placements(q{subject = 's1'}), '8', 'no row of s1 deleted on any shard');
is($coord->safe_psql('postgres', q{SELECT customer_vault.was_forgotten('s1')}), 'f', 'no receipt says erased');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM customer_vault.erasure_receipts}), '0', 'no receipt at all');

# inside a transaction, after a read that opened the connections, and as a non-superuser admin
($ret, $out, $err) = $coord->psql('postgres', q{\set VERBOSITY verbose
SET ROLE regress_dpo;
BEGIN; SELECT count(*) FROM forced; SELECT customer_vault.forget_subject('s1', 'request'); COMMIT;});
like($err, qr/ERROR:  0A000: forget_subject cannot reach every row of Citus table public\.forced/,
	'the same inside a transaction block, as an admin that is not superuser');
is(on_placements(q{subject = 's1'}), '8', 'still no row of s1 deleted');

($ret, $out, $err) = $coord->psql('postgres', q{\set VERBOSITY verbose
SELECT customer_vault.export_subject('s1')});
isnt($ret, 0, 'export_subject refuses it too');
like($err, qr/ERROR:  0A000: export_subject cannot reach every row of Citus table public\.forced: its owner is under FORCE ROW LEVEL SECURITY on 8 of its shards/,
	'with its own name');

# the purge: refused before any batch, logged as failed with 0A000
is(on_placements(q{at < now() - interval '10 days'}), '30', '30 rows past retention');
($ret, $out, $err) = $coord->psql('postgres', q{SET ROLE regress_dpo; CALL customer_vault.purge()});
isnt($ret, 0, 'the purge fails');
like($err, qr/purge failed for 1 table\(s\): public\.forced/, 'naming the table');
like($coord->safe_psql('postgres',
	q{SELECT status || ' ' || sqlstate || ' ' || batches || ' ' || message FROM customer_vault.purge_log WHERE tbl = 'public.forced' ORDER BY id DESC LIMIT 1}),
	qr/^failed 0A000 0 purge cannot reach every row of Citus table public\.forced: its owner is under FORCE ROW LEVEL SECURITY on 8 of its shards$/,
	'purge_log: failed, 0A000, no batch, the reason');
is(on_placements(q{at < now() - interval '10 days'}), '30', 'no row purged on any shard');
($ret, $out, $err) = $coord->psql('postgres', q{SET ROLE regress_dpo; CALL customer_vault.purge(dry_run => true)});
like($coord->safe_psql('postgres',
	q{SELECT status || ' ' || sqlstate FROM customer_vault.purge_log WHERE tbl = 'public.forced' ORDER BY id DESC LIMIT 1}),
	qr/^failed 0A000$/, 'a dry run is refused too (its counts would miss the hidden rows)');

# the check function itself is for who may act on the table
($ret, $out, $err) = $coord->psql('postgres', q{CREATE ROLE regress_other LOGIN IN ROLE customer_vault_admin;
SET ROLE regress_other; SELECT customer_vault._citus_refuse_forced_shards('forced', 'x')});
like($err, qr/permission denied for table forced/, 'an admin without a privilege on the table may not run the check');

# ---- 2. one shard forced on a worker, by hand
$coord->safe_psql('postgres', q{SELECT run_command_on_placements('forced', 'ALTER TABLE %s NO FORCE ROW LEVEL SECURITY')});
my ($shard) = grep { $_->[1] == $w2->port } shard_placements($coord, 'forced');
$w2->safe_psql('postgres', qq{SET citus.enable_manual_changes_to_shards = on; SET ROLE regress_owner;
ALTER TABLE public.$shard->[0] FORCE ROW LEVEL SECURITY});
my $shard_rows_s1 = $w2->safe_psql('postgres', qq{SET citus.enable_manual_changes_to_shards = on;
SELECT count(*) FROM public.$shard->[0] WHERE subject = 's1'});
($ret, $out, $err) = $coord->psql('postgres', q{\set VERBOSITY verbose
SELECT customer_vault.forget_subject('s1', 'request')});
like($err, qr/ERROR:  0A000: forget_subject cannot reach every row of Citus table public\.forced: its owner is under FORCE ROW LEVEL SECURITY on 1 of its shards/,
	'one shard forced on a worker: refused');
like($err, qr/DETAIL:  FORCE ROW LEVEL SECURITY was set on the shard relations themselves: $shard->[0] on [^,]+:@{[ $w2->port ]}\. /,
	'naming that shard and its worker');
is(on_placements(q{subject = 's1'}), '8', 'no row of s1 deleted');
is($w2->safe_psql('postgres', qq{SET citus.enable_manual_changes_to_shards = on;
SELECT count(*) FROM public.$shard->[0] WHERE subject = 's1'}), $shard_rows_s1, 'that shard kept its rows of s1 too');

# ---- 3. FORCE undone: everything reaches every row (the owner's policy still hides rows from others)
$w2->safe_psql('postgres', qq{SET citus.enable_manual_changes_to_shards = on; SET ROLE regress_owner;
ALTER TABLE public.$shard->[0] NO FORCE ROW LEVEL SECURITY});
is($coord->safe_psql('postgres', q{SELECT jsonb_array_length(customer_vault.export_subject('s1') -> 'tables' -> 'public.forced' -> 'rows')}),
	'8', 'export_subject: the 8 rows of s1');
is($coord->safe_psql('postgres', q{SET ROLE regress_dpo; SELECT customer_vault.forget_subject('s1', 'request') -> 'tables' -> 'public.forced' ->> 'deleted'}),
	'8', 'forget_subject deletes the 8 rows of s1');
is(on_placements(q{subject = 's1'}), '0', 'none left on any shard');
is($coord->safe_psql('postgres', q{SELECT customer_vault.was_forgotten('s1')}), 't', 'and the receipt says so');
$coord->safe_psql('postgres', q{SET ROLE regress_dpo; CALL customer_vault.purge()});
is($coord->safe_psql('postgres',
	q{SELECT status || ' ' || rows_purged FROM customer_vault.purge_log WHERE tbl = 'public.forced' ORDER BY id DESC LIMIT 1}),
	'done 24', 'the purge: done, the 24 expired rows left after the erasure');
is(on_placements(q{at < now() - interval '10 days'}), '0', 'no expired row left on any shard, the ones the policy hides included');
is(on_placements(q{true}), '8', 'the 8 rows inside retention stay');

done_testing();
