# The decrypt audit reserves a record's queue slot before the first value
# of each (statement, key) is returned (review of 0.5.0, high): with the
# writer hung on a lock queue (the database owner's open ANALYZE and a
# VACUUM FULL queued behind it), a reader who fills the queue must not get
# one more value than access_log ends up recording:
#   - COPY ... TO STDOUT statements are run until the queue is full; the
#     statement that finds no room is refused (55000) before any value is
#     sent, and the next ones are refused too (the full queue marks the
#     database failing);
#   - another database's reader gets no value without a record either;
#   - once the writer is released, access_log holds exactly as many values
#     per application as reached the client, and the chain verifies.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

# a small queue (64 slots cluster-wide) so that it fills in a few statements;
# one database may fill all of it (share 100%: the per-database share is TAP 048's)
my $node = new_vault_node(
	'audit_rs',
	key => random_root_key(),
	conf => "customer_vault.audit_queue_size = 64\ncustomer_vault.audit_wait = 1000\n"
	  . "customer_vault.audit_queue_share = 100\n");
my $su = $node->safe_psql('postgres', 'SELECT rolname FROM pg_authid WHERE oid = 10');
$node->safe_psql(
	'postgres', q{
CREATE ROLE regress_rs_owner LOGIN;
CREATE DATABASE rs OWNER regress_rs_owner ENCODING 'UTF8' LOCALE 'C' TEMPLATE template0;
CREATE ROLE regress_rs_victim LOGIN;
CREATE DATABASE rs_victim ENCODING 'UTF8' LOCALE 'C' TEMPLATE template0;
});
$node->safe_psql(
	'rs', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.create_key('k' || i) FROM generate_series(1, 16) i;
CREATE TABLE t16 (id int PRIMARY KEY, v customer_vault.encrypted_text);
INSERT INTO t16 SELECT i, customer_vault.encrypt('rs secret ' || i, 'k' || i, i::text) FROM generate_series(1, 16) i;
GRANT customer_vault_reader TO regress_rs_owner;
GRANT SELECT ON t16 TO regress_rs_owner;
});
$node->safe_psql(
	'rs_victim', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.create_key('vk');
CREATE TABLE vt (id int PRIMARY KEY, v customer_vault.encrypted_text);
INSERT INTO vt VALUES (1, customer_vault.encrypt('victim secret', 'vk', '1'));
GRANT customer_vault_reader TO regress_rs_victim;
GRANT SELECT ON vt TO regress_rs_victim;
});

# the database owner (no superuser) hangs the writer: ANALYZE in an open transaction, VACUUM FULL queued behind
my @o = (extra_params => [ '-U', 'regress_rs_owner' ]);
my $a = $node->background_psql('rs', @o);
$a->query_safe('BEGIN; ANALYZE customer_vault.access_log_entries;');
my $b = $node->background_psql('rs', @o, on_error_stop => 0);
$b->query_until(qr/go/, "\\echo go\nVACUUM FULL customer_vault.access_log_entries;\n");
ok( $node->poll_query_until(
		'rs', q{SELECT count(*) > 0 FROM pg_locks WHERE relation = 'customer_vault.access_log_entries'::regclass AND NOT granted}),
	'VACUUM FULL waits behind the open ANALYZE');

# 8 statements of 16 values under 16 keys: 16 records each, the queue holds 4 statements' records
my $sql = "SET application_name = 'rs_fill';\n";
$sql .= "COPY (SELECT 'row ' || id || ': ' || customer_vault.decrypt(v, id::text) FROM t16 ORDER BY id) TO STDOUT;\n"
  for 1 .. 8;
my ($out, $err);
$node->psql('rs', $sql, stdout => \$out, stderr => \$err, on_error_stop => 0, @o);
my @got = ($out =~ /^row \d+: rs secret \d+$/mg);
note("values returned: " . scalar(@got) . "; errors: $err");
is(scalar(@got), 64, 'exactly the 64 values whose records fit reached the client');
like($err, qr/decrypt audit queue is full|decryption refused/, 'the statement that found no room was refused');
my @refusals = ($err =~ /(ERROR:)/g);
is(scalar(@refusals), 4, 'each of the 4 statements after the queue filled was refused');

# while the writer hangs: refused before any value (no partial output either)
$node->psql(
	'rs',
	"SET application_name = 'rs_leak'; COPY (SELECT customer_vault.decrypt(v, id::text) FROM t16 WHERE id = 1) TO STDOUT;",
	stdout => \$out,
	stderr => \$err,
	@o);
unlike($out, qr/rs secret/, 'no plaintext reaches the client while the queue is full');
like($err, qr/decryption refused|decrypt audit queue is full/, 'the refusal is an error');

# another database: no value without a reserved record
my ($vout, $verr);
$node->psql(
	'rs_victim',
	"SET application_name = 'rs_victim'; COPY (SELECT customer_vault.decrypt(v, '1') FROM vt) TO STDOUT;",
	stdout => \$vout,
	stderr => \$verr,
	extra_params => [ '-U', 'regress_rs_victim' ]);
my $victim_values = ($vout =~ /victim secret/) ? 1 : 0;
note("other database: out=[$vout] err=[$verr]");

# release the writer: everything returned is recorded, the database reopens
$a->quit;
$node->safe_psql('rs', q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'VACUUM FULL%' AND pid <> pg_backend_pid()});
$b->quit;
ok( $node->poll_query_until(
		'rs', q{SELECT coalesce(sum(value_count), 0) >= 64 FROM customer_vault.access_log WHERE application_name = 'rs_fill'}),
	'the writer writes the queued records once released');
is( $node->safe_psql(
		'rs', qq{SET SESSION AUTHORIZATION "$su"; SELECT coalesce(sum(value_count), 0) FROM customer_vault.access_log WHERE application_name = 'rs_fill'}),
	scalar(@got),
	'access_log records exactly the values the client received');
is( $node->safe_psql(
		'rs', qq{SET SESSION AUTHORIZATION "$su"; SELECT coalesce(sum(value_count), 0) FROM customer_vault.access_log WHERE application_name = 'rs_leak'}),
	'0', 'the refused statement has no value to record');
ok( $node->poll_query_until(
		'rs_victim', qq{SELECT coalesce(sum(value_count), 0) = $victim_values FROM customer_vault.access_log WHERE application_name = 'rs_victim'}),
	'the other database recorded every value it returned');
is( $node->safe_psql('rs', qq{SET SESSION AUTHORIZATION "$su"; SELECT coalesce(customer_vault.verify_access_log()::text, 'intact')}),
	'intact', 'the chain verifies');
my $log = slurp_file($node->logfile);
unlike($log, qr/reason=queue_full/, 'no record went to the server log only');

# decrypting works again (the writer's write reopened the database)
ok( $node->poll_query_until(
		'rs', q{SELECT customer_vault.decrypt(v, id::text) = 'rs secret 2' FROM t16 WHERE id = 2}, 't'),
	'decryption resumes after the writer wrote');
done_testing();
