# reencrypt() is crash safe and resumable: a backend killed with SIGKILL in
# the middle of CALL customer_vault.reencrypt() makes the postmaster run crash
# recovery; afterwards every value still decrypts to its original plaintext,
# the committed batches are under the new key version and the rest under the
# old one, and a second CALL finishes the job.  Checked for an encrypted_text
# column and for a protected text column (through its _decrypted view).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use Time::HiRes qw(time usleep);

my $rows = 200000;

# the test framework turns restart_after_crash off; crash recovery needs it on.
# The 200000-row scans below get parallel plans: key lookups in parallel
# workers are exercised too.
my $key = random_root_key();
my $node = new_vault_node('crash', key => $key,
	conf => "restart_after_crash = on\n"
	  . "log_statement = none\n");

my $t0 = time;
$node->safe_psql(
	'postgres', qq{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
SELECT customer_vault.create_key('k');
CREATE TABLE t (id bigint PRIMARY KEY, v customer_vault.encrypted_text, p text)
    WITH (autovacuum_enabled = off);
INSERT INTO t
SELECT g, customer_vault.encrypt('value-' || g, 'k', g::text), 'protected-' || g
  FROM generate_series(1, $rows) g;
SELECT customer_vault.protect_column('t', 'p', 'k', 'id');
ANALYZE t;
});
note sprintf('loaded %d rows in %.1fs', $rows, time - $t0);

is($node->safe_psql('postgres', "SELECT customer_vault.rotate_key('k')"), '2', 'key rotated to version 2');

# version histogram of a column, e.g. {'k:1' => 5, 'k:2' => 7}
sub versions
{
	my ($expr) = @_;
	my %h;
	for my $line (split /\n/,
		$node->safe_psql('postgres', "SELECT customer_vault.key_of($expr), count(*) FROM t GROUP BY 1"))
	{
		my ($k, $n) = split /\|/, $line;
		$h{$k} = $n;
	}
	return \%h;
}

my %check = (
	v => {
		version_expr => 'v',
		call_args => "'t', 'v', 1000, 'id'",
		all_decrypt => "SELECT count(*) FROM t WHERE customer_vault.decrypt(v, id::text) = 'value-' || id",
	},
	p => {
		version_expr => 'p::customer_vault.encrypted_text',
		call_args => "'t', 'p', 1000",
		all_decrypt => "SELECT count(*) FROM t_decrypted WHERE p = 'protected-' || id",
	});

# values sealed with a context cannot be resealed without it: an error, and
# nothing changes (the first batch rolls back)
my ($ret, $out, $err) = $node->psql('postgres', "CALL customer_vault.reencrypt('t', 'v', 1000)");
isnt($ret, 0, 'reencrypt without the context column fails');
like($err, qr/could not decrypt value: authentication failed/, 'error says the value does not open');
is_deeply(versions('v'), { 'k:1' => $rows }, 'the failed reencrypt changed nothing');

for my $col ('v', 'p')
{
	my $c = $check{$col};
	is_deeply(versions($c->{version_expr}), { 'k:1' => $rows }, "$col: all values under k:1 before reencrypt");

	# the reencrypt in a background session whose backend we will kill
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	like($pid, qr/^\d+$/, "$col: backend pid of the reencrypt session");
	my $log_offset = -s $node->logfile;
	$t0 = time;
	$bg->query_until(qr/reencrypt starting/,
		"\\echo reencrypt starting\nCALL customer_vault.reencrypt($c->{call_args});\n\\echo reencrypt finished\n");

	# as soon as one batch committed, kill -9 the backend
	my $reached = 0;
	my $deadline = time + 90;
	while (time < $deadline)
	{
		$bg->{run}->pump_nb;
		last if $bg->{stderr} ne '' || $bg->{stdout} =~ /reencrypt finished/;
		if ($node->safe_psql('postgres',
				"SELECT EXISTS (SELECT 1 FROM t WHERE customer_vault.key_of($c->{version_expr}) = 'k:2')") eq 't')
		{
			$reached = 1;
			last;
		}
		usleep(20_000);
	}
	ok($reached, "$col: some values reached k:2 while reencrypt runs")
	  or diag "reencrypt session output: $bg->{stdout} $bg->{stderr}";
	my $still_running = $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND query LIKE 'CALL customer_vault.reencrypt%'");
	is($still_running, '1', "$col: reencrypt still running when killed");
	my $t_kill = time;
	kill_and_recover($node, $pid, $log_offset, $col);
	note sprintf('killed after %.2fs', $t_kill - $t0);
	# psql lost its connection: it exits, the CALL never reported success
	$bg->{run}->finish;
	unlike($bg->{stdout}, qr/reencrypt finished/, "$col: the CALL did not complete");

	# nothing lost: every value opens to the original, a mix of versions
	is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), $rows, "$col: no row lost");
	is($node->safe_psql('postgres', $c->{all_decrypt}), $rows,
		"$col: every value decrypts to the original after the crash");
	my $mix = versions($c->{version_expr});
	note "$col: versions after crash: " . join(', ', map { "$_=$mix->{$_}" } sort keys %$mix);
	ok(($mix->{'k:1'} // 0) > 0, "$col: some values still under k:1 (the kill interrupted the run)");
	ok(($mix->{'k:2'} // 0) > 0, "$col: committed batches survived under k:2");
	is(($mix->{'k:1'} // 0) + ($mix->{'k:2'} // 0), $rows, "$col: only k:1 and k:2 present");

	# resume: a second CALL finishes the job
	$node->safe_psql('postgres', "CALL customer_vault.reencrypt($c->{call_args})");
	is_deeply(versions($c->{version_expr}), { 'k:2' => $rows }, "$col: no value left under k:1 after resuming");
	is($node->safe_psql('postgres', $c->{all_decrypt}), $rows, "$col: every value decrypts after resuming");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM t WHERE customer_vault._needs_reseal($c->{version_expr})"),
		'0', "$col: nothing needs resealing");
}

# the protected column is still protected: a write is sealed under k:2
$node->safe_psql('postgres', "UPDATE t SET p = 'after-crash-1' WHERE id = 1");
is($node->safe_psql('postgres', "SELECT customer_vault.key_of(p::customer_vault.encrypted_text) FROM t WHERE id = 1"),
	'k:2', 'protected column: a later update is sealed under k:2');
is($node->safe_psql('postgres', "SELECT p FROM t_decrypted WHERE id = 1"), 'after-crash-1',
	'protected column: the later update decrypts');

# failure paths of the procedure
($ret, $out, $err) = $node->psql('postgres', "CALL customer_vault.reencrypt('t', 'id', 1000)");
isnt($ret, 0, 'reencrypt of a column that is neither encrypted nor protected fails');
like($err, qr/neither encrypted nor protected/, 'error says why');
($ret, $out, $err) = $node->psql('postgres', "CALL customer_vault.reencrypt('t', 'v', 0)");
isnt($ret, 0, 'batch_size 0 refused');
like($err, qr/batch_size must be at least 1/, 'error says why');

$node->stop;
done_testing();
