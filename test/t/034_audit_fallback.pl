# Where access_log cannot be written, the decrypt audit goes to the server
# log in one parseable line per statement and key
# ("customer_vault audit: reason=... key_id=... values=..."), never with
# plaintext, ciphertext or a subject:
#   - on a hot standby (reason=standby), while the primary writes access_log;
#   - without customer_vault in shared_preload_libraries (reason=not_preloaded;
#     decrypting still works and the session is warned once);
#   - a queue that stays full: the first value is refused (a slot is
#     reserved before it is returned), so no record goes to the log only.
# The writer is a background worker per database, started on demand; it
# leaves when idle, so DROP DATABASE is not kept waiting.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $key = random_root_key();
my $primary = PostgreSQL::Test::Cluster->new('audit_primary');
$primary->init(allows_streaming => 1);
write_root_key(root_key_file($primary), "$key\n", 0600);
$primary->append_conf('postgresql.conf',
	"shared_preload_libraries = 'customer_vault'\n"
	  . "customer_vault.root_key_file = '" . root_key_file($primary) . "'\n");
$primary->start;
$primary->safe_psql(
	'postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.create_key('fb_key');
CREATE TABLE fb (id int PRIMARY KEY, v customer_vault.encrypted_text);
INSERT INTO fb SELECT i, customer_vault.encrypt('plain secret ' || i, 'fb_key', 'subject-' || i) FROM generate_series(1, 3) i;
});
my $key_id = $primary->safe_psql('postgres', q{SELECT id FROM customer_vault.keys WHERE name = 'fb_key'});

# the primary: a row in access_log, written by the audit worker
$primary->safe_psql('postgres',
	q{SET application_name = 'fb_primary'; SELECT customer_vault.decrypt(v, 'subject-' || id) FROM fb});
ok( $primary->poll_query_until(
		'postgres', q{SELECT count(*) = 1 FROM customer_vault.access_log WHERE application_name = 'fb_primary'}),
	'primary: the decrypt is in access_log');
is( $primary->safe_psql(
		'postgres', q{SELECT value_count FROM customer_vault.access_log WHERE application_name = 'fb_primary'}),
	'3', 'primary: with its value count');

# ---------- hot standby ----------
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('audit_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
my $offset = -s $standby->logfile;
is( $standby->safe_psql(
		'postgres',
		q{SET application_name = 'fb_standby'; SET customer_vault.purpose = 'support "desk"';
          SELECT string_agg(customer_vault.decrypt(v, 'subject-' || id), ',' ORDER BY id) FROM fb}),
	'plain secret 1,plain secret 2,plain secret 3',
	'standby: decrypting works');
$standby->wait_for_log(qr/customer_vault audit: reason=standby/, $offset);
my $log = slurp_file($standby->logfile, $offset);
like(
	$log,
	qr/customer_vault audit: reason=standby db=\d+ user_id=\d+ role_id=\d+ pid=\d+ key_id=$key_id values=3 query_id=-?\d+ purpose="support \\"desk\\"" app="fb_standby" client="" subjects=0 more=0/,
	'standby: one parseable line with the key and the value count');
unlike($log, qr/plain secret|subject-\d|cv1/, 'standby: no plaintext, ciphertext or subject in the log');
unlike($log, qr/customer_vault audit: .*\n.*STATEMENT/, 'standby: the statement is not echoed with the audit line');
# value mode on the standby: the number of subjects, never the subjects
$offset = -s $standby->logfile;
$standby->safe_psql('postgres',
	q{SET customer_vault.audit_decrypt = value; SELECT customer_vault.decrypt(v, 'subject-' || id) FROM fb WHERE id < 3});
$standby->wait_for_log(qr/customer_vault audit: reason=standby.*values=2/, $offset);
$log = slurp_file($standby->logfile, $offset);
like($log, qr/values=2 .* subjects=2 more=0/, 'standby, value mode: the number of subjects');
unlike($log, qr/subject-\d/, 'standby, value mode: no subject in the log');
$standby->stop;

# ---------- the queue full until the statement fails ----------
$offset = -s $primary->logfile;
my ($stdout, $stderr);
$primary->psql(
	'postgres',
	q{SET application_name = 'fb_full'; SET customer_vault.audit_queue_size = 0; SET customer_vault.audit_wait = 200;
      SELECT customer_vault.decrypt(v, 'subject-' || id) FROM fb},
	stdout => \$stdout,
	stderr => \$stderr);
like($stderr, qr/the decrypt audit queue is full/, 'queue full: the statement fails');
is($stdout, '', 'queue full: no plaintext was returned');
# the slot is reserved before the first value: refused before any value, there is nothing to record
unlike(slurp_file($primary->logfile, $offset), qr/reason=queue_full .*app="fb_full"/,
	'queue full: refused before a value, no record only in the server log');

# ---------- the writer: one worker per database, gone when idle ----------
$primary->safe_psql('postgres', 'CREATE DATABASE fb_other');
$primary->safe_psql(
	'fb_other', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.create_key('other_key');
SELECT customer_vault.decrypt(customer_vault.encrypt('x', 'other_key'));
});
ok( $primary->poll_query_until('fb_other', q{SELECT count(*) = 1 FROM customer_vault.access_log}),
	'a second database gets its own access_log rows');
is($primary->safe_psql('postgres', q{SELECT count(*) FROM customer_vault.access_log WHERE key = 'other_key:1'}),
	'0', 'rows of one database never land in another');
ok( $primary->poll_query_until(
		'postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'customer_vault audit writer'}),
	'the writers leave when idle');
$primary->safe_psql('postgres', 'DROP DATABASE fb_other');
pass('DROP DATABASE is not kept waiting by a writer');

# ---------- without preload ----------
$primary->stop;
$primary->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$primary->start;
$offset = -s $primary->logfile;
$primary->psql(
	'postgres',
	q{SET application_name = 'fb_nopreload'; SELECT count(customer_vault.decrypt(v, 'subject-' || id)) FROM fb;
      SELECT count(customer_vault.decrypt(v, 'subject-' || id)) FROM fb WHERE id = 1},
	stdout => \$stdout,
	stderr => \$stderr);
is($stdout, "3\n1", 'not preloaded: decrypting works');
my @warnings = $stderr =~ /(WARNING:  decryptions of this session are audited in the server log only)/g;
is(scalar @warnings, 1, 'not preloaded: the session is warned, once');
$primary->wait_for_log(qr/customer_vault audit: reason=not_preloaded.*values=1/, $offset);
like(
	slurp_file($primary->logfile, $offset),
	qr/customer_vault audit: reason=not_preloaded .*key_id=$key_id values=3 .*\n(?:.*\n)*.*customer_vault audit: reason=not_preloaded .*key_id=$key_id values=1 /,
	'not preloaded: both statements are in the server log');
is($primary->safe_psql('postgres', q{SELECT count(*) FROM customer_vault.access_log WHERE application_name = 'fb_nopreload'}),
	'0', 'not preloaded: nothing claims to be in access_log');

$primary->stop;
done_testing();
