# protect_column and a burst of grant_consent are crash safe: a backend killed
# with SIGKILL in the middle of protect_column's rewrite of 100,000 rows (run,
# as the table's owner, inside _maint_run) while 4 other sessions record
# consent in committed transactions makes the postmaster run crash recovery;
# afterwards the table holds exactly its plaintext rows (the rewrite is one
# transaction: no half-encrypted table, no registry row, no trigger left),
# every grant committed before the kill is in the ledger, verify_ledger()
# holds, and both resume: protect_column again encrypts every row (each
# decrypts to its original), the consent sessions record more.
# (The same for reencrypt: 003_reencrypt_crash.pl; for purge: 009_purge_crash.pl.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use Time::HiRes qw(time usleep);

my $rows = 100000;
my $sessions = 4;

# the test framework turns restart_after_crash off; crash recovery needs it on
my $node = new_vault_node('killprotect', key => random_root_key(),
	conf => "restart_after_crash = on\nlog_statement = none\nautovacuum = off\n");

my $t0 = time;
$node->safe_psql(
	'postgres', qq{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
CREATE ROLE app_owner;
SELECT customer_vault.create_key('k');
SELECT customer_vault.define_purpose('news');
CREATE TABLE p (id bigint PRIMARY KEY, email text NOT NULL);
ALTER TABLE p OWNER TO app_owner;
INSERT INTO p SELECT g, 'person-' || g || '\@example.com' FROM generate_series(1, $rows) g;
ANALYZE p;
});
note sprintf('loaded %d rows in %.1fs', $rows, time - $t0);

my $plain_q = "SELECT count(*), md5(string_agg(id || ':' || email, ',' ORDER BY id)) FROM p";
my $plain_before = $node->safe_psql('postgres', $plain_q);
like($plain_before, qr/^$rows\|/, "$rows plaintext rows");

# ---------- 4 sessions granting consent, one commit per grant ----------
my @burst;
for my $s (1 .. $sessions)
{
	my $b = $node->background_psql('postgres', on_error_stop => 0);
	$b->query_until(qr/burst $s starting/,
		"\\echo burst $s starting\n"
		  . "DO \$\$ BEGIN FOR i IN 1..1000000 LOOP"
		  . " PERFORM customer_vault.grant_consent('s$s-' || i, 'news', '{\"form\": \"burst\"}'); COMMIT;"
		  . " END LOOP; END \$\$;\n\\echo burst $s finished\n");
	push @burst, $b;
}
ok($node->poll_query_until('postgres', 'SELECT count(*) >= 200 FROM customer_vault.consent_ledger'),
	'the consent sessions are recording grants');

# ---------- protect_column in a session whose backend we will kill ----------
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
like($pid, qr/^\d+$/, 'backend pid of the protect_column session');
my $mon = $node->background_psql('postgres');
my $log_offset = -s $node->logfile;
$t0 = time;
$bg->query_until(qr/protect starting/,
	"\\echo protect starting\nSELECT customer_vault.protect_column('p', 'email', 'k', 'id');\n\\echo protect finished\n");

# the rewrite has started once the session holds the table's ACCESS EXCLUSIVE
# lock (taken just before it); let it work on the rows for a moment
my $locked = 0;
my $deadline = time + 60;
while (time < $deadline)
{
	$bg->{run}->pump_nb;
	last if $bg->{stderr} ne '' || $bg->{stdout} =~ /protect finished/;
	if ($mon->query_safe("SELECT count(*) FROM pg_locks WHERE pid = $pid AND relation = 'p'::regclass"
			. " AND mode = 'AccessExclusiveLock' AND granted") eq '1')
	{
		$locked = 1;
		last;
	}
	usleep(5_000);
}
ok($locked, 'protect_column holds the table lock: the rewrite is under way')
  or diag "protect session output: $bg->{stdout} $bg->{stderr}";
# a moment into it (the whole rewrite of 100,000 rows took under 0.2 s on
# PostgreSQL 18 once sealing became cheaper, and a kill after 0.15 s came
# too late)
usleep(30_000);
my $grants_before_kill = $mon->query_safe('SELECT count(*) FROM customer_vault.consent_ledger');
my $running = $mon->query_safe(
	"SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND query LIKE 'SELECT customer_vault.protect_column%' AND state = 'active'");
is($running, '1', 'protect_column still running when killed');
note sprintf('killed %.2fs after the start, %d grants committed', time - $t0, $grants_before_kill);
# the postmaster notices, kills everybody, runs crash recovery, restarts
kill_and_recover($node, $pid, $log_offset, undef, recovery => 0);
$bg->{run}->finish;
unlike($bg->{stdout}, qr/protect finished/, 'protect_column did not complete');
$mon->{run}->finish;
for my $b (@burst)
{
	$b->{run}->finish;
	unlike($b->{stdout}, qr/finished/, 'a consent session was cut off by the crash');
}

# ---------- after the crash ----------
is($node->safe_psql('postgres', $plain_q), $plain_before, 'every row still there, unchanged: the rewrite rolled back');
is($node->safe_psql('postgres', 'SELECT count(*) FROM customer_vault.protected_columns'), '0',
	'no protection registered');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'p'::regclass AND NOT tgisinternal"), '0',
	'no protect trigger left');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_constraint WHERE conrelid = 'p'::regclass AND contype = 'c'"), '0',
	'no sealed CHECK left');
my $grants_after = $node->safe_psql('postgres', 'SELECT count(*) FROM customer_vault.consent_ledger');
cmp_ok($grants_after, '>=', $grants_before_kill,
	"no committed grant lost ($grants_before_kill seen committed before the kill, $grants_after in the ledger)");
is($node->safe_psql('postgres', 'SELECT customer_vault.verify_ledger() IS NULL'), 't', 'verify_ledger(): the chain holds');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM customer_vault.consent_ledger_redacted WHERE NOT COALESCE(customer_vault.has_consent(subject, purpose), false)"),
	'0', 'every recorded grant is in force');

# ---------- resume ----------
$t0 = time;
$node->safe_psql('postgres', "SELECT customer_vault.protect_column('p', 'email', 'k', 'id')");
note sprintf('protect_column after the crash took %.1fs', time - $t0);
is($node->safe_psql('postgres', 'SELECT count(*) FROM p WHERE customer_vault.is_sealed(email)'), $rows,
	'protect_column resumed: every row sealed');
is($node->safe_psql('postgres',
		"SELECT count(*), md5(string_agg(id || ':' || email, ',' ORDER BY id)) FROM p_decrypted"),
	$plain_before, 'every value decrypts to its original');
$node->safe_psql('postgres',
	"SELECT customer_vault.grant_consent('after-' || g, 'news', '{\"form\": \"after\"}') FROM generate_series(1, 10) g");
is($node->safe_psql('postgres', 'SELECT count(*) FROM customer_vault.consent_ledger'), $grants_after + 10,
	'consent recording resumed');
is($node->safe_psql('postgres', 'SELECT customer_vault.verify_ledger() IS NULL'), 't', 'verify_ledger() holds at the end');

$node->stop;
done_testing();
