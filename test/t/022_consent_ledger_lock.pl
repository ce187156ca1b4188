# The consent ledger cannot be blocked by another role: 0.1.0 serialized
# appends on a public advisory lock, so any login role holding it stopped
# every grant_consent/withdraw_consent.  Now appends lock the chain-head row,
# which only the extension's owner can lock.  Concurrent appends from several
# sessions keep the chain intact and contiguous.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('ledger_lock', key => random_root_key());
$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
CREATE ROLE mallory LOGIN;
CREATE ROLE app LOGIN IN ROLE customer_vault_writer;
SELECT customer_vault.define_purpose('news');
});

# any login role takes the keys 0.1.0 locked, and tries the chain head itself
my $m = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'mallory' ]);
$m->query_safe(q{SELECT pg_advisory_lock('customer_vault.consent_ledger'::regclass::oid::integer, 1)});
$m->query_safe(q{SELECT pg_advisory_lock(('customer_vault.consent_ledger'::regclass::oid::bigint << 32) | 1)});
$m->query_safe('BEGIN');
$m->query(q{SELECT * FROM customer_vault.consent_ledger_head FOR UPDATE});
like($m->{stderr}, qr/permission denied/, 'a login role cannot lock the chain head row');
$m->{stderr} = '';
$m->query_safe('ROLLBACK');
$m->query_safe('BEGIN');
$m->query(q{LOCK TABLE customer_vault.consent_ledger_head IN ACCESS SHARE MODE});
like($m->{stderr}, qr/permission denied/, 'nor the chain head table');
$m->{stderr} = '';
$m->query_safe('ROLLBACK');

# while mallory holds the advisory locks, the application records consent
# (lock_timeout only turns a block, as in 0.1.0, into an error)
my ($ret, $out, $err) = $node->psql('postgres',
	q{SET lock_timeout = '20s'; SELECT customer_vault.grant_consent('1', 'news', '{"form": "web"}')},
	extra_params => [ '-U', 'app' ]);
is($ret, 0, 'grant_consent is not blocked by the advisory lock of another role') or diag $err;
($ret, $out, $err) = $node->psql('postgres',
	q{SET lock_timeout = '20s'; SELECT customer_vault.withdraw_consent('1', 'news')},
	extra_params => [ '-U', 'app' ]);
is($ret, 0, 'neither is withdraw_consent') or diag $err;
$m->quit;

# four sessions appending at once
my $script = $node->basedir . '/grant.sql';
open my $fh, '>', $script or die $!;
print $fh q{\set s random(1, 1000)
SELECT customer_vault.grant_consent(:s::text, 'news', '{"form": "bench"}');
SELECT customer_vault.withdraw_consent((:s + 1)::text, 'news');
};
close $fh;
$node->command_ok([ 'pgbench', '-n', '-c', '4', '-j', '4', '-t', '150', '-f', $script, '-U', 'app', 'postgres' ],
	'pgbench: 4 sessions granting and withdrawing');
is($node->safe_psql('postgres', 'SELECT customer_vault.verify_ledger() IS NULL'), 't', 'the chain is intact');
is($node->safe_psql('postgres',
		'SELECT count(*) = max(id) AND count(*) = 2 + 4 * 150 * 2 FROM customer_vault.consent_ledger'),
	't', 'every append is in the ledger, ids contiguous');
is($node->safe_psql('postgres',
		'SELECT h.last_id = (SELECT max(id) FROM customer_vault.consent_ledger) FROM customer_vault.consent_ledger_head h'),
	't', 'the chain head is the last entry');

$node->stop;
done_testing();
