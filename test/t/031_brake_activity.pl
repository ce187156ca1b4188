# The exfiltration brake and role activity across sessions and restarts
# (issue 13):
# - the per-minute rate (customer_vault.decrypt_rate_limit) is shared by the
#   sessions of one login role: what one session took, another cannot;
# - a capped role cannot drop its limit with PGOPTIONS at connect time, nor
#   with a held session open in parallel;
# - a refusal is written to the server log (role, kind, limit) without the
#   statement;
# - the last successful login per role (a failed one is not a login) and the
#   brake's refusals survive a clean restart (the activity file) and, once
#   saved, a crash of a backend (the postmaster reloads the file).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('brake', key => random_root_key(),
	# the test framework turns restart_after_crash off; the crash test needs it
	conf => "restart_after_crash = on\n");

$node->safe_psql(
	'postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;
CREATE ROLE agent LOGIN IN ROLE customer_vault_reader;
CREATE ROLE bulk LOGIN IN ROLE customer_vault_reader;
CREATE ROLE gone IN ROLE customer_vault_reader;
SELECT customer_vault.create_key('k');
CREATE TABLE customers (id int PRIMARY KEY, email text);
INSERT INTO customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 300) g;
SELECT customer_vault.protect_column('customers', 'email', 'k', 'id');
GRANT SELECT ON customers TO customer_vault_reader;
SELECT customer_vault.set_decrypt_limit('agent', 50);
SELECT customer_vault.set_decrypt_limit('bulk', 0, 100);
});

# run SQL as a role in a session of its own: (exit code, stdout, stderr)
sub as_role
{
	my ($role, $sql, %opt) = @_;
	my ($out, $err);
	my $rc = $node->psql(
		'postgres', $sql,
		stdout => \$out,
		stderr => \$err,
		extra_params => [ '-U', $role ],
		%opt);
	return ($rc, $out, $err);
}

# ---------- the rate, over two sessions ----------
my ($rc, $out, $err) = as_role('bulk', 'SELECT count(email) FROM customers_decrypted WHERE id <= 60');
is($rc, 0, 'first session of bulk decrypts 60 of its 100 a minute');
is($out, '60', 'and gets 60 values');
($rc, $out, $err) = as_role('bulk', 'SELECT count(email) FROM customers_decrypted WHERE id > 100 AND id <= 160');
isnt($rc, 0, 'a second session of bulk cannot decrypt another 60 in the same minute');
like($err, qr/decrypt rate limit exceeded/, 'it is stopped by the rate limit');
($rc, $out, $err) = as_role('agent', 'SELECT count(email) FROM customers_decrypted WHERE id <= 30');
is($out, '30', 'another role is not affected by bulk\'s rate');

# ---------- no way around the cap at connect time ----------
{
	local $ENV{PGOPTIONS} = '-c customer_vault.decrypt_limit=0';
	($rc, $out, $err) = as_role('agent', 'SELECT count(email) FROM customers_decrypted');
	isnt($rc, 0, 'PGOPTIONS -c customer_vault.decrypt_limit=0 does not help the agent');
	like($err, qr/permission denied to set parameter "customer_vault.decrypt_limit"/,
		'the connection is refused with permission denied');
}
{
	local $ENV{PGOPTIONS} = '-c customer_vault.decrypt_rate_limit=0';
	($rc, $out, $err) = as_role('bulk', 'SELECT 1');
	isnt($rc, 0, 'nor PGOPTIONS for the rate');
}
($rc, $out, $err) = as_role('agent', "SELECT count(email) FROM customers_decrypted");
isnt($rc, 0, 'the agent cannot read the whole table');
like($err, qr/decrypt limit exceeded: one statement may decrypt at most 50 values/, 'the brake says why');
like($err, qr/HINT:.*fewer rows/, 'and hints what to do');
unlike($err, qr/example\.com/, 'no value in the error');

my $log = slurp_file($node->logfile);
like($log, qr/customer_vault brake: refused role=agent kind=statement limit=50 values=51/,
	'the refusal is in the server log');
like($log, qr/customer_vault brake: refused role=bulk kind=rate limit=100/, 'and the rate refusal');
unlike($log, qr/customer_vault brake: refused[^\n]*\n[^\n]*STATEMENT/,
	'the log line of a refusal carries no statement');

# ---------- login tracking ----------
($rc, $out, $err) = as_role('gone', 'SELECT 1');
isnt($rc, 0, 'a NOLOGIN role cannot log in');
my $activity = q{SELECT role, COALESCE(extract(epoch FROM last_login)::text, 'never'),
                        decrypt_refusals, last_decrypt IS NOT NULL
                   FROM customer_vault.role_activity
                  WHERE role IN ('agent', 'bulk', 'gone') ORDER BY 1};
my $before = $node->safe_psql('postgres', $activity);
like($before, qr/^agent\|\d+(\.\d+)?\|[1-9]\d*\|t\nbulk\|\d+(\.\d+)?\|1\|t$/,
	'agent and bulk logged in, decrypted and were refused; the failed login of gone is not recorded')
  or diag($before);

$node->restart;
my $after = $node->safe_psql('postgres', $activity);
is($after, $before, 'last logins, decrypts and refusals survive a clean restart');
ok(-f $node->data_dir . '/pg_stat/customer_vault_activity.stat', 'the activity file is in pg_stat');

# a login saved explicitly survives a crash of a backend (the postmaster reloads the file)
($rc, $out, $err) = as_role('agent', 'SELECT 1');
$node->safe_psql('postgres', 'SELECT customer_vault._activity_save()');
my $saved = $node->safe_psql('postgres', $activity);
isnt($saved, $after, 'a new login of agent is recorded');
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
my $offset = -s $node->logfile;
kill_and_recover($node, $pid, $offset, 'crash', recovery => 0);
eval { $bg->{run}->finish };
is($node->safe_psql('postgres', $activity), $saved, 'the saved activity survives a backend crash');

# the tracking start does not move at a restart
my $since = $node->safe_psql('postgres', 'SELECT customer_vault._activity_tracking_since()');
$node->restart;
is($node->safe_psql('postgres', 'SELECT customer_vault._activity_tracking_since()'), $since,
	'tracking began once, not at every start');

$node->stop;
done_testing();
