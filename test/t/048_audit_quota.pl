# One database cannot exhaust the shared decrypt audit queue for the others
# (issue 13, left open at 0.5.0's review, medium): every database may hold at
# most customer_vault.audit_queue_share percent of the queue (records queued
# and slots reserved by its running statements).
#   - the owner of database qa (no superuser) hangs its writer (ANALYZE in an
#     open transaction, VACUUM FULL queued behind it) and reads through
#     COPY ... TO STDOUT: exactly its share of values (16 of a 64-slot
#     queue) reaches the client, the statement that finds the share full is
#     refused (55000, the share's message) before any value, and so is every
#     one after it;
#   - meanwhile database qb decrypts as usual, and access_log records every
#     value it returned;
#   - a statement's reservations count toward the share: in qb with a share
#     of one slot, a statement holding a reservation (asleep after its
#     decrypt) makes another session's decrypt wait and be refused; a
#     statement of two keys is refused at its second key;
#   - a backend terminated while it holds a reservation (pg_terminate_backend)
#     gives it back: its record is written and qb decrypts again;
#   - only a superuser sets the share, within 1..100;
#   - once qa's writer is released, access_log holds exactly the values that
#     reached the client, and qa decrypts again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

# a 64-slot queue (cluster-wide), the default share (25%): 16 slots per database
my $node = new_vault_node(
	'audit_quota',
	key => random_root_key(),
	conf => "customer_vault.audit_queue_size = 64\ncustomer_vault.audit_wait = 1000\n");
my $su = $node->safe_psql('postgres', 'SELECT rolname FROM pg_authid WHERE oid = 10');
$node->safe_psql(
	'postgres', q{
CREATE ROLE regress_qa_owner LOGIN;
CREATE DATABASE qa OWNER regress_qa_owner ENCODING 'UTF8' LOCALE 'C' TEMPLATE template0;
CREATE ROLE regress_qb_reader LOGIN;
CREATE DATABASE qb ENCODING 'UTF8' LOCALE 'C' TEMPLATE template0;
});
is($node->safe_psql('qa', 'SHOW customer_vault.audit_queue_share'), '25', 'the default share is 25%');
$node->safe_psql(
	'qa', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.create_key('k' || i) FROM generate_series(1, 16) i;
CREATE TABLE t16 (id int PRIMARY KEY, v customer_vault.encrypted_text);
INSERT INTO t16 SELECT i, customer_vault.encrypt('qa secret ' || i, 'k' || i, i::text) FROM generate_series(1, 16) i;
GRANT customer_vault_reader TO regress_qa_owner;
GRANT SELECT ON t16 TO regress_qa_owner;
});
$node->safe_psql(
	'qb', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.create_key('b1');
SELECT customer_vault.create_key('b2');
CREATE TABLE vt (id int PRIMARY KEY, v customer_vault.encrypted_text, w customer_vault.encrypted_text);
INSERT INTO vt SELECT i, customer_vault.encrypt('qb secret ' || i, 'b1', i::text), customer_vault.encrypt('qb other ' || i, 'b2', i::text)
  FROM generate_series(1, 4) i;
GRANT customer_vault_reader TO regress_qb_reader;
GRANT SELECT ON vt TO regress_qb_reader;
});
my @qa = (extra_params => [ '-U', 'regress_qa_owner' ]);
my @qb = (extra_params => [ '-U', 'regress_qb_reader' ]);

# the setting: superuser only, 1..100
my ($out, $err);
$node->psql('qa', 'SET customer_vault.audit_queue_share = 100', stderr => \$err, @qa);
like($err, qr/permission denied to set parameter "customer_vault.audit_queue_share"/,
	'a database owner cannot raise its share');
$node->psql('qa', 'ALTER DATABASE qa SET customer_vault.audit_queue_share = 100', stderr => \$err, @qa);
like($err, qr/permission denied to set parameter "customer_vault.audit_queue_share"/,
	'nor set it for its database');
$node->psql('qa', 'SET customer_vault.audit_queue_share = 0', stderr => \$err);
like($err, qr/0 is outside the valid range/, 'a share of 0 is refused');
$node->psql('qa', 'SET customer_vault.audit_queue_share = 101', stderr => \$err);
like($err, qr/101 is outside the valid range/, 'a share over 100 is refused');

# the database owner (no superuser) hangs qa's writer: ANALYZE in an open transaction, VACUUM FULL behind it
my $a = $node->background_psql('qa', @qa);
$a->query_safe('BEGIN; ANALYZE customer_vault.access_log_entries;');
my $b = $node->background_psql('qa', @qa, on_error_stop => 0);
$b->query_until(qr/go/, "\\echo go\nVACUUM FULL customer_vault.access_log_entries;\n");
ok( $node->poll_query_until(
		'qa', q{SELECT count(*) > 0 FROM pg_locks WHERE relation = 'customer_vault.access_log_entries'::regclass AND NOT granted}),
	'VACUUM FULL waits behind the open ANALYZE');

# 8 statements of 16 values under 16 keys (16 records each): the share holds one statement's
my $sql = "SET application_name = 'qa_fill';\n";
$sql .= "COPY (SELECT 'row ' || id || ': ' || customer_vault.decrypt(v, id::text) FROM t16 ORDER BY id) TO STDOUT;\n"
  for 1 .. 8;
$node->psql('qa', $sql, stdout => \$out, stderr => \$err, on_error_stop => 0, @qa);
my @got = ($out =~ /^row \d+: qa secret \d+$/mg);
note("qa: values returned: " . scalar(@got) . "; errors: $err");
is(scalar(@got), 16, 'qa: exactly the 16 values its share holds reached the client, not the whole queue (64)');
like($err, qr/this database's share of the decrypt audit queue is full/,
	'qa: the statement that found its share full was refused with the share\'s message');
my @refusals = ($err =~ /(ERROR:)/g);
is(scalar(@refusals), 7, 'qa: each of the 7 statements after it was refused');

# still refused before any value
$node->psql(
	'qa',
	"SET application_name = 'qa_leak'; COPY (SELECT customer_vault.decrypt(v, id::text) FROM t16 WHERE id = 1) TO STDOUT;",
	stdout => \$out,
	stderr => \$err,
	@qa);
unlike($out, qr/qa secret/, 'qa: no plaintext reaches the client while its share is full');
like($err, qr/ERROR: .*(decryption refused|share of the decrypt audit queue is full)/, 'qa: the refusal is an error');

# qb, meanwhile: 24 statements of one value each (more than a share), all returned and recorded
$sql = "SET application_name = 'qb_during';\n";
$sql .= "COPY (SELECT customer_vault.decrypt(v, id::text) FROM vt WHERE id = 1) TO STDOUT;\n" for 1 .. 24;
$node->psql('qb', $sql, stdout => \$out, stderr => \$err, on_error_stop => 0, @qb);
my @qb_got = ($out =~ /^qb secret 1$/mg);
is(scalar(@qb_got), 24, 'qb: every decrypt succeeds while qa holds its share with a hung writer');
is($err, '', 'qb: no error, no wait turned into a refusal');
ok( $node->poll_query_until(
		'qb', q{SELECT coalesce(sum(value_count), 0) = 24 FROM customer_vault.access_log WHERE application_name = 'qb_during'}),
	'qb: access_log records every value it returned');

# reservations count: qb's share at one slot (1% of 64, at least 1)
$node->safe_psql('postgres', 'ALTER DATABASE qb SET customer_vault.audit_queue_share = 1');
$node->psql(
	'qb',
	"SET application_name = 'qb_two_keys'; COPY (SELECT customer_vault.decrypt(v, id::text) || ' / ' || customer_vault.decrypt(w, id::text) FROM vt WHERE id = 2) TO STDOUT;",
	stdout => \$out,
	stderr => \$err,
	@qb);
unlike($out, qr/qb (secret|other)/, 'qb: a statement of two keys returns nothing when its share holds one record');
like($err, qr/this database's share of the decrypt audit queue is full/, 'qb: refused at its second key');
like($err, qr/fill the 1 slots of its share \(customer_vault.audit_queue_share = 1%\)/, 'qb: the detail names the share');

my $s1 = $node->background_psql('qb', @qb);
my $s1_pid = $s1->query_safe('SELECT pg_backend_pid()');
$s1->query_until(qr/go/,
	"\\echo go\nSET application_name = 'qb_killed';\nSELECT customer_vault.decrypt(v, id::text), pg_sleep(600) FROM vt WHERE id = 3;\n");
ok( $node->poll_query_until(
		'qb', qq{SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $s1_pid}),
	'qb: a statement holds a reservation (asleep after its decrypt)');
$node->psql(
	'qb',
	"SET application_name = 'qb_second'; COPY (SELECT customer_vault.decrypt(v, id::text) FROM vt WHERE id = 4) TO STDOUT;",
	stdout => \$out,
	stderr => \$err,
	@qb);
unlike($out, qr/qb secret/, 'qb: another session gets no value while the reservation fills the share');
like($err, qr/this database's share of the decrypt audit queue is full/, 'qb: it is refused (55000)');

# the reservation's backend is terminated: its record is queued, written, and the slot freed
$node->safe_psql('postgres', "SELECT pg_terminate_backend($s1_pid)");
# its psql may have exited already (then writing \q fails with a broken pipe)
eval { $s1->quit; };
ok( $node->poll_query_until(
		'qb', q{SELECT coalesce(sum(value_count), 0) = 1 FROM customer_vault.access_log WHERE application_name = 'qb_killed'}),
	'qb: the terminated statement\'s value is recorded');
ok( $node->poll_query_until(
		'qb', q{SELECT customer_vault.decrypt(v, id::text) = 'qb secret 4' FROM vt WHERE id = 4}, 't'),
	'qb: its reservation was given back: decrypting works again within the one-slot share');
is( $node->safe_psql('qb',
		q{SELECT coalesce(sum(value_count), 0) FROM customer_vault.access_log WHERE application_name = 'qb_second'}),
	'0', 'qb: the refused statement had no value to record');
is( $node->safe_psql('qb',
		q{SELECT coalesce(sum(value_count), 0) FROM customer_vault.access_log WHERE application_name = 'qb_two_keys'}),
	'1', 'qb: the two-key statement\'s first value (opened, not returned) is recorded in its reservation');
$node->safe_psql('postgres', 'ALTER DATABASE qb RESET customer_vault.audit_queue_share');

# release qa's writer: everything returned is recorded, qa reopens
$a->quit;
$node->safe_psql('qa',
	q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'VACUUM FULL%' AND pid <> pg_backend_pid()});
$b->quit;
ok( $node->poll_query_until(
		'qa', q{SELECT coalesce(sum(value_count), 0) >= 16 FROM customer_vault.access_log WHERE application_name = 'qa_fill'}),
	'qa: the writer writes the queued records once released');
is( $node->safe_psql(
		'qa', qq{SET SESSION AUTHORIZATION "$su"; SELECT coalesce(sum(value_count), 0) FROM customer_vault.access_log WHERE application_name = 'qa_fill'}),
	scalar(@got),
	'qa: access_log records exactly the values the client received');
is( $node->safe_psql(
		'qa', qq{SET SESSION AUTHORIZATION "$su"; SELECT coalesce(sum(value_count), 0) FROM customer_vault.access_log WHERE application_name = 'qa_leak'}),
	'0', 'qa: the refused statement has no value to record');
foreach my $db ('qa', 'qb')
{
	is( $node->safe_psql($db, qq{SET SESSION AUTHORIZATION "$su"; SELECT coalesce(customer_vault.verify_access_log()::text, 'intact')}),
		'intact', "$db: the chain verifies");
}
my $log = slurp_file($node->logfile);
unlike($log, qr/reason=queue_full/, 'no record went to the server log only');
ok( $node->poll_query_until(
		'qa', q{SELECT customer_vault.decrypt(v, id::text) = 'qa secret 2' FROM t16 WHERE id = 2}, 't'),
	'qa: decryption resumes after its writer wrote');
done_testing();
