# A consent check cancelled while the session loads its consent cache
# (statement_timeout: the same interrupt as pg_cancel_backend) leaves no
# partly loaded purpose behind: the next check, in the same transaction or a
# later one, answers right for every subject.  0.1.0 marked the purpose loaded
# before reading it, so after such a cancel has_consent() said false for
# subjects that had consented (integer subjects all of them: their bitmap is
# built at the end of the load).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use CvTest;

my $node = new_vault_node('cancel', key => random_root_key());
# a large purpose, written straight into the state table (the ledger is not
# what the cache reads), integer and text subjects
$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.define_purpose('big');
SELECT customer_vault.define_purpose('other');
INSERT INTO customer_vault.consent_state (subject, purpose, granted, granted_at, ledger_id)
SELECT CASE WHEN g % 2 = 0 THEN g::text ELSE 'cust-' || g END, 'big', true, now(), 0
  FROM generate_series(1, 400000) g;
});

my $s = $node->background_psql('postgres', on_error_stop => 0);
my $check = q{SELECT customer_vault.has_consent('2', 'big') AND customer_vault.has_consent('399998', 'big')
 AND customer_vault.has_consent('400000', 'big') AND customer_vault.has_consent('cust-1', 'big') AND customer_vault.has_consent('cust-399999', 'big')
 AND NOT customer_vault.has_consent('400002', 'big')};

# time one full load, to spread the timeouts over it
my $t0 = [ Time::HiRes::gettimeofday() ];
is($s->query_safe($check), 't', 'a complete load answers right');
my $load_ms = int(Time::HiRes::tv_interval($t0) * 1000);
note "one load with the query took about $load_ms ms";

# A statement_timeout that expires just as a statement ends is reported by
# the session's next statement: run $sql, and once more when that happened.
sub safe_after_timeout
{
	my ($sql) = @_;
	$s->query($sql);
	if ($s->{stderr} =~ /canceling statement due to statement timeout/)
	{
		$s->{stderr} = '';
		$s->query($sql);
	}
	die "query failed: $s->{stderr}" if $s->{stderr} ne '';
}

my ($cancelled, $wrong) = (0, 0);
my $step = $load_ms > 60 ? int($load_ms / 60) : 1;
for (my $ms = 1; $ms <= $load_ms + 20; $ms += $step)
{
	# a committed consent change: the next check reads the cache again
	$node->safe_psql('postgres', "SELECT customer_vault.define_purpose('other', description => 'v$ms')");
	$s->query("SET statement_timeout = '${ms}ms'; $check");
	$cancelled++ if $s->{stderr} =~ /canceling statement due to statement timeout/;
	$s->{stderr} = '';
	safe_after_timeout('RESET statement_timeout');
	# right afterwards, in a new transaction
	my $after = $s->query_safe($check);
	$wrong++ if $after ne 't';
	# and inside a transaction block after a cancel in it
	$s->query_safe('BEGIN');
	$s->query("SET LOCAL statement_timeout = '${ms}ms'; SAVEPOINT a; $check");
	$s->{stderr} = '';
	safe_after_timeout('ROLLBACK TO SAVEPOINT a');
	$s->query_safe('SET LOCAL statement_timeout = 0');
	$wrong++ if $s->query_safe($check) ne 't';
	$s->query_safe('COMMIT');
}
note "$cancelled checks were cancelled by statement_timeout";
cmp_ok($cancelled, '>', 0, 'some checks were cancelled while loading');
is($wrong, 0, 'every check after a cancelled load answered right');

$s->quit;
$node->stop;
done_testing();
