# A transaction prepared before a restart holds the consent horizon closed
# (every snapshot then builds its own consent cache: exact, slower).  Once
# that has lasted 10 s the server log says so, once, naming the transaction
# and how to finish it; without one it says nothing.  Consent checks stay
# exact throughout.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use CvTest;

my $node = new_vault_node('hzlog', key => random_root_key(),
	conf => "max_prepared_transactions = 5\n");
$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
CREATE ROLE marketer;
SELECT customer_vault.define_purpose('newsletter');
SELECT customer_vault.allow_purpose('marketer', 'newsletter');
CREATE TABLE customers (id bigint PRIMARY KEY, name text);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 30) g;
SELECT customer_vault.enable_consent_policy('customers', 'id', 'newsletter');
GRANT SELECT ON customers TO marketer;
CREATE TABLE noise (v int);
SELECT count(customer_vault.grant_consent(g::text, 'newsletter', '{"form": "tap"}'))
  FROM generate_series(1, 20) g;
});

my $count = q{SET ROLE marketer; SELECT count(*) FROM customers};
my $msg = qr/customer_vault: consent caches are not shared between snapshots while transaction (\d+) is in progress/;

# (a) a transaction prepared before the restart, never finished
$node->safe_psql('postgres', q{BEGIN; INSERT INTO noise VALUES (1); PREPARE TRANSACTION 'forgotten'});
my $xid = $node->safe_psql('postgres', q{SELECT transaction FROM pg_prepared_xacts WHERE gid = 'forgotten'});
$node->restart;
my $logstart = -s $node->logfile;
is($node->safe_psql('postgres', $count), '20', 'first check after the restart: exact');
my $log = slurp_file($node->logfile, $logstart);
unlike($log, $msg, 'nothing logged while the horizon is new');
sleep(10.5);
# a withdrawal is honoured by the next statement meanwhile
$node->safe_psql('postgres', q{SELECT customer_vault.withdraw_consent('3', 'newsletter')});
is($node->safe_psql('postgres', $count), '19', 'a withdrawal is honoured while the horizon is closed');
is($node->safe_psql('postgres', $count), '19', 'and by a second session');
$log = slurp_file($node->logfile, $logstart);
my @said = $log =~ /$msg/g;
is(scalar(@said), 1, 'the closed horizon is logged once after 10 s');
is($said[0], $xid, 'naming the prepared transaction');
like($log, qr/HINT:\s+If it is a prepared transaction \(see pg_prepared_xacts\), finish it with COMMIT PREPARED or ROLLBACK PREPARED\./,
	'with the hint');
like($log, qr/DETAIL:\s+It is older than the consent horizon \(transaction \d+,/, 'and the horizon in the detail');
is($node->safe_psql('postgres', q{SHOW client_min_messages}), 'notice', '(sessions do not see LOG lines)');
$node->safe_psql('postgres', q{COMMIT PREPARED 'forgotten'});
is($node->safe_psql('postgres', $count), '19', 'exact after COMMIT PREPARED');
$log = slurp_file($node->logfile, $logstart);
@said = $log =~ /$msg/g;
is(scalar(@said), 1, 'still said once');

# (b) no prepared transaction: nothing is logged
$node->restart;
$logstart = -s $node->logfile;
is($node->safe_psql('postgres', $count), '19', 'after a clean restart: exact');
sleep(10.5);
is($node->safe_psql('postgres', $count), '19', 'ten seconds later: exact');
$node->safe_psql('postgres', q{SELECT customer_vault.grant_consent('3', 'newsletter', '{"form": "tap"}')});
is($node->safe_psql('postgres', $count), '20', 'a grant is honoured');
$log = slurp_file($node->logfile, $logstart);
unlike($log, $msg, 'nothing logged without a transaction older than the horizon');

$node->stop;
done_testing();
