# The decrypt audit under load: 8 sessions decrypt at once for
# CV_SOAK_SECONDS (default 30), each in a loop of short transactions that
# commit or roll back at random, under two keys, with a small audit queue so
# that sessions also wait for room in it.  Each session counts the values it
# decrypted; afterwards the sum of the value counts in access_log equals the
# sum of those counts exactly (nothing lost, nothing counted twice), the
# chain verifies, and no record went to the server log instead.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use IPC::Run;

my $seconds = $ENV{CV_SOAK_SECONDS} // 30;
die "CV_SOAK_SECONDS must be a positive integer\n" unless $seconds =~ /^[1-9][0-9]*$/;
my $sessions = 8;

my $node = new_vault_node('audit_soak', key => random_root_key(),
	conf => "log_min_messages = warning\nmax_connections = 30\n");
$node->safe_psql(
	'postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.create_key('soak_a');
SELECT customer_vault.create_key('soak_b');
CREATE TABLE soak (id int PRIMARY KEY, a customer_vault.encrypted_text, b customer_vault.encrypted_text);
INSERT INTO soak SELECT i, customer_vault.encrypt('a' || i, 'soak_a', i::text), customer_vault.encrypt('b' || i, 'soak_b')
  FROM generate_series(1, 200) i;
CREATE ROLE regress_soak_reader LOGIN IN ROLE customer_vault_reader;
GRANT SELECT ON soak TO regress_soak_reader;
-- a small queue: sessions also wait for room in it (as long as it takes on
-- a busy test machine: this test is about nothing being lost)
ALTER ROLE regress_soak_reader SET customer_vault.audit_queue_size = 16;
ALTER ROLE regress_soak_reader SET customer_vault.audit_wait = '10min';
-- decrypts for the given time in short transactions (commit or rollback at
-- random); returns the number of values it decrypted
CREATE PROCEDURE soak_loop(seconds int, INOUT decrypted bigint DEFAULT 0)
    LANGUAGE plpgsql AS $$
DECLARE
    stop timestamptz := clock_timestamp() + seconds * interval '1 second';
    k int;
    n bigint;
BEGIN
    decrypted := 0;
    WHILE clock_timestamp() < stop LOOP
        k := 1 + (random() * 20)::int;
        SELECT count(customer_vault.decrypt(s.a, s.id::text)) INTO n FROM soak s WHERE s.id <= k;
        decrypted := decrypted + n;
        IF random() < 0.3 THEN
            SELECT count(customer_vault.decrypt(s.b)) INTO n FROM soak s WHERE s.id > 200 - k;
            decrypted := decrypted + n;
        END IF;
        IF random() < 0.5 THEN
            COMMIT;
        ELSE
            ROLLBACK;
        END IF;
    END LOOP;
END
$$;
GRANT EXECUTE ON PROCEDURE soak_loop(int, bigint) TO regress_soak_reader;
});

my @h;
for my $i (1 .. $sessions)
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres')
			  . " user=regress_soak_reader application_name=soak_$i",
			'-c', "CALL soak_loop($seconds)"
		],
		'>', \$out, '2>', \$err);
	push @h, [ $h, \$out, \$err ];
}
my $total = 0;
for my $i (0 .. $#h)
{
	my ($h, $out, $err) = @{ $h[$i] };
	$h->finish;
	is($h->result(0), 0, "session " . ($i + 1) . " finished without error") or diag $$err;
	my ($n) = $$out =~ /^(\d+)$/m;
	ok(defined $n && $n > 0, "session " . ($i + 1) . " decrypted values (" . ($n // 'none') . ")");
	$total += $n // 0;
}
note "$total values decrypted by $sessions sessions in ${seconds}s";
note 'access_log rows written: ' . $node->safe_psql('postgres', q{SELECT count(*) FROM customer_vault.access_log});

ok( $node->poll_query_until(
		'postgres',
		"SELECT COALESCE(sum(value_count), 0) >= $total FROM customer_vault.access_log WHERE application_name LIKE 'soak\\_%'"),
	'the audit worker caught up');
# a moment for anything beyond the total to arrive too
sleep 1;
is( $node->safe_psql(
		'postgres', "SELECT sum(value_count) FROM customer_vault.access_log WHERE application_name LIKE 'soak\\_%'"),
	$total,
	'the values logged in access_log equal the values decrypted');
is( $node->safe_psql(
		'postgres',
		"SELECT count(DISTINCT application_name) FROM customer_vault.access_log WHERE application_name LIKE 'soak\\_%'"),
	$sessions, 'every session is in the log');
is($node->safe_psql('postgres', 'SELECT customer_vault.verify_access_log() IS NULL'), 't', 'the chain verifies');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM customer_vault.access_log WHERE role <> 'regress_soak_reader'"),
	'0', 'every row names the reading role');
my $log = slurp_file($node->logfile);
unlike($log, qr/customer_vault audit: reason=/, 'no record went to the server log instead of access_log');
unlike($log, qr/ERROR|FATAL|PANIC/, 'no error in the server log');

$node->stop;
done_testing();
