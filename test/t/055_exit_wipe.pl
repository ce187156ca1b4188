# A backend wipes its key memory (the data key cache with its OpenSSL
# contexts, the locked page of raw keys) when it exits: on a normal
# disconnect, and when it is terminated.  The exit callback used to be
# registered only in the postmaster (the library is preloaded), whose
# proc_exit callbacks every child forgets, so no backend ran it.  The
# callback says so at DEBUG1 in the server log, with the process id.  The
# postmaster also says at DEBUG1 which AES-256-GCM path it resolved.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('exitwipe', key => random_root_key(), conf => "log_min_messages = debug1\n");
# (and the server seals through the provider's AES-256-GCM functions called
# directly, not EVP: resolved and self-tested in the postmaster at preload)
like(slurp_file($node->logfile), qr/customer_vault: AES-256-GCM path: provider/,
	'the postmaster resolved the direct AES-256-GCM path');
$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.create_key('k');
CREATE TABLE people (id int PRIMARY KEY, email text);
SELECT customer_vault.protect_column('people', 'email', 'k', 'id');
});
my $wiped = sub { qr/customer_vault: key memory of process $_[0] wiped at exit/ };

# (a) a session that used a key, then disconnected
my $logstart = -s $node->logfile;
my $pid = $node->safe_psql('postgres', q{
SET log_min_messages = debug1;
INSERT INTO people VALUES (1, 'a@example.com');
SELECT count(*) FROM people_decrypted WHERE email = 'a@example.com';
SELECT pg_backend_pid();
});
($pid) = $pid =~ /(\d+)\s*$/;
ok($pid, 'the session ran');
ok($node->poll_query_until('postgres', "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $pid)"),
	'it has exited');
my $log = slurp_file($node->logfile, $logstart);
like($log, $wiped->($pid), 'its key memory was wiped at exit');

# (b) a session that touched no key: nothing to wipe, nothing said
$logstart = -s $node->logfile;
$pid = $node->safe_psql('postgres', q{SET log_min_messages = debug1; SELECT pg_backend_pid()});
ok($node->poll_query_until('postgres', "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $pid)"),
	'a second session has exited');
$log = slurp_file($node->logfile, $logstart);
unlike($log, $wiped->($pid), 'a session without keys wipes nothing');

# (c) a session terminated while it holds keys (FATAL: proc_exit runs)
$logstart = -s $node->logfile;
my $bg = $node->background_psql('postgres');
$bg->query_safe(q{SET log_min_messages = debug1});
$bg->query_safe(q{SELECT customer_vault.decrypt(customer_vault.encrypt('x', 'k'))});
my $bgpid = $bg->query_safe(q{SELECT pg_backend_pid()});
chomp $bgpid;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($bgpid)");
ok($node->poll_query_until('postgres', "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $bgpid)"),
	'the terminated session has exited');
eval { $bg->quit };
$log = slurp_file($node->logfile, $logstart);
like($log, $wiped->($bgpid), 'a terminated session wipes its key memory too');

$node->stop;
done_testing();
