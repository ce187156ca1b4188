# Prepared transactions (two-phase commit) do not turn consent cache reuse
# off (review of part TWOPC; src/consent.c, cv_consent_view and the
# horizon):
#  1. an unresolved prepared consent change: the warm session does not read
#     its cache again per statement, new sessions share one version, also
#     once the change left the ring of finished xids; a withdrawal committed
#     by COMMIT PREPARED is honoured by the very next statement (warm and new
#     sessions), and caches are reused again afterwards;
#  2. a snapshot taken before COMMIT PREPARED does not use a version read
#     after it (nor the other way round);
#  3. after a restart, with prepared transactions left over (20 that did not
#     touch consent, by a role without any right on the vault: more than the
#     pending list holds), consent changes prepared before the restart (one
#     in a subtransaction, one a DELETE of purpose_roles) are honoured at
#     COMMIT PREPARED; while any of them is left (older than the horizon),
#     no cache serves more than one snapshot; once all are resolved, caches
#     are reused and shared again.
# Every case of reuse in parts 1 and 2 fails on the code before it (a
# prepared consent xid that a snapshot saw in progress refused every cache).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('c2pcr', key => random_root_key(),
	conf => "max_prepared_transactions = 40\n");
$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
CREATE ROLE marketer;
CREATE ROLE other_role;
CREATE ROLE outsider LOGIN;
SELECT customer_vault.define_purpose('newsletter');
SELECT customer_vault.allow_purpose('marketer', 'newsletter');
CREATE TABLE customers (id bigint PRIMARY KEY, name text);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g;
SELECT customer_vault.enable_consent_policy('customers', 'id', 'newsletter');
GRANT SELECT ON customers TO marketer;
CREATE TABLE scratch (v int);
CREATE TABLE noise (v int);
GRANT INSERT ON scratch TO outsider;
-- test only: the marketer may look at its cache
GRANT USAGE ON SCHEMA customer_vault TO marketer;
GRANT EXECUTE ON FUNCTION customer_vault._consent_cache_builds(),
                          customer_vault._consent_cache_source(text) TO marketer;
SELECT count(customer_vault.grant_consent(g::text, 'newsletter', '{"form": "tap"}'))
  FROM generate_series(1, 40) g;
});

my $count = 'SELECT count(*) FROM customers';
my $ids = q{SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM customers};
my $src = "$count; SELECT customer_vault._consent_cache_source('newsletter')";

# a warm session: the marketer's, kept open
sub warm
{
	my $s = $node->background_psql('postgres');
	$s->query_safe('SET ROLE marketer');
	return $s;
}

# a query in a new session, as the marketer
sub fresh
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', "SET ROLE marketer; $sql");
}

# the source of a new session's answer ('shared <version>', 'local', ...)
sub fresh_source
{
	my ($v) = (fresh($src) =~ /([^\n]*)$/);
	return $v;
}

# n other consent changes (purpose_roles), none on the ledger
sub other_changes
{
	my ($n) = @_;
	$node->safe_psql('postgres', join '',
		map { "SELECT customer_vault.allow_purpose('other_role', 'newsletter');\n"
			  . "SELECT customer_vault.disallow_purpose('other_role', 'newsletter');\n" } 1 .. ($n / 2));
}

sub builds
{
	my ($s) = @_;
	return $s->query_safe('SELECT customer_vault._consent_cache_builds()');
}

# the warm session reuses its cache (three statements, each with a newer
# snapshot, no rebuild), and new sessions answer from one shared version
sub reuses
{
	my ($s, $label, $expect) = @_;
	is($s->query_safe($count), $expect, "$label: $expect rows (warm)");
	# a consent change finished since the last statement is read once
	$s->query_safe($count);
	my $b1 = builds($s);
	for (1 .. 3)
	{
		# another transaction ends: the next snapshot differs
		$node->safe_psql('postgres', 'INSERT INTO noise VALUES (1)');
		$s->query_safe($count);
	}
	is(builds($s), $b1, "$label: the warm session reuses its cache (no rebuild per statement)");
	my $v1 = fresh_source();
	my $v2 = fresh_source();
	like($v1, qr/^shared \d+$/, "$label: a new session answers from a shared version");
	is($v2, $v1, "$label: the next new session uses the same version");
	return $v1;
}

my $w = warm();
is($w->query_safe($count), '40', 'warm: 40 consents');

# ---- 1. an unresolved prepared withdrawal
my $s2 = $node->background_psql('postgres');
$s2->query_safe('BEGIN');
$s2->query_safe(q{SELECT customer_vault.withdraw_consent('1', 'newsletter')});
$s2->query_safe(q{PREPARE TRANSACTION 'w1'});
reuses($w, '1, prepared', '40');
is(fresh($count), '40', '1: prepared, not committed: 40 (new session)');
# leave the ring of finished xids: the pending list
other_changes(200);
my $v_before = reuses($w, '1, prepared, out of the ring', '40');

# ---- 2. a snapshot taken before COMMIT PREPARED (a session that has not
# read consent yet, so it must take a version or read for itself)
my $rr = $node->background_psql('postgres');
$rr->query_safe('SET ROLE marketer');
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$rr->query_safe('SELECT 1');
$node->safe_psql('postgres', q{COMMIT PREPARED 'w1'});
is($w->query_safe($count), '39', '1: after COMMIT PREPARED the next statement of the warm session hides subject 1');
is($w->query_safe(q{SELECT count(*) FROM customers WHERE id = 1}), '0', '1: subject 1 itself is hidden (warm)');
is(fresh($count), '39', '1: a new session hides subject 1');
is($node->safe_psql('postgres', q{SELECT customer_vault.has_consent('1', 'newsletter')}), 'f',
	'1: has_consent in a new session: false');
my $v_after = fresh_source();
isnt($v_after, $v_before, '1: a new version was read after COMMIT PREPARED');
is($rr->query_safe($count), '40',
	'2: a snapshot taken before COMMIT PREPARED still sees subject 1 (the newer version is not used)');
is($rr->query_safe(q{SELECT count(*) FROM customers WHERE id = 1}), '1', '2: subject 1 itself shows there');
$rr->query_safe('COMMIT');
is($rr->query_safe($count), '39', '2: its next transaction hides subject 1');
$rr->quit;
reuses($w, '1, after COMMIT PREPARED', '39');

# the same, committed while the warm session holds an older snapshot open
$s2->query_safe('BEGIN');
$s2->query_safe(q{SELECT customer_vault.withdraw_consent('2', 'newsletter')});
$s2->query_safe(q{PREPARE TRANSACTION 'w2'});
reuses($w, '2, prepared', '39');
$w->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is($w->query_safe($count), '39', '2: the warm session in REPEATABLE READ: 39');
$node->safe_psql('postgres', q{COMMIT PREPARED 'w2'});
is(fresh($count), '38', '2: after COMMIT PREPARED a new session hides subject 2');
is($w->query_safe($count), '39', '2: the older snapshot still shows subject 2');
$w->query_safe('COMMIT');
is($w->query_safe($count), '38', '2: and the next transaction hides it');
reuses($w, '2, after COMMIT PREPARED', '38');

# ---- 3. a restart with prepared transactions left over
$node->safe_psql('postgres', q{
SELECT customer_vault.allow_purpose('other_role', 'newsletter');
GRANT SELECT ON customers TO other_role;
});
my $out = $node->background_psql('postgres');
$out->query_safe('SET ROLE outsider');
for my $i (1 .. 20)
{
	$out->query_safe('BEGIN');
	$out->query_safe("INSERT INTO scratch VALUES ($i)");
	$out->query_safe("PREPARE TRANSACTION 'u$i'");
}
$out->quit;
# a withdrawal written in a subtransaction
$s2->query_safe('BEGIN');
$s2->query_safe('SAVEPOINT a');
$s2->query_safe(q{UPDATE customer_vault.consent_state SET granted = false
	 WHERE subject = '5' AND purpose = 'newsletter'});
$s2->query_safe('RELEASE a');
$s2->query_safe(q{PREPARE TRANSACTION 'sub5'});
# a role's right to a purpose taken away (a DELETE: only xmax shows it)
$s2->query_safe('BEGIN');
$s2->query_safe(q{DELETE FROM customer_vault.purpose_roles WHERE role = 'other_role'::regrole});
$s2->query_safe(q{PREPARE TRANSACTION 'del'});
$w->quit;
$s2->quit;
$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '22',
	'3: 22 transactions still prepared after the restart');
$w = warm();
# transactions prepared before the restart are older than the horizon: while
# any is left, no cache serves more than one snapshot (none is shared)
is($w->query_safe($count), '38', '3, after the restart: 38 rows (warm)');
my $b_warm = builds($w);
for (1 .. 3)
{
	$node->safe_psql('postgres', 'INSERT INTO noise VALUES (1)');
	is($w->query_safe($count), '38', '3, after the restart: 38 rows (warm, newer snapshot)');
}
cmp_ok(builds($w), '>', $b_warm,
	'3: prepared before the restart and left: the warm session reads per snapshot (the horizon is closed)');
unlike(fresh_source(), qr/^shared/, '3: prepared before the restart and left: no shared version');
is($node->safe_psql('postgres', "SET ROLE other_role; $count"), '38', '3: other_role still allowed: 38');
$node->safe_psql('postgres', join '', map { "COMMIT PREPARED 'u$_';\n" } 1 .. 20);
is($node->safe_psql('postgres', 'SELECT count(*) FROM scratch'), '20', '3: the unrelated ones committed');
is($w->query_safe($count), '38', '3: 38 (warm)');
is(fresh($count), '38', '3: 38 (new session)');
$node->safe_psql('postgres', q{COMMIT PREPARED 'sub5'});
is($w->query_safe(q{SELECT count(*) FROM customers WHERE id = 5}), '0',
	'3: the withdrawal of a subtransaction prepared before the restart is honoured (warm)');
is(fresh(q{SELECT count(*) FROM customers WHERE id = 5}), '0', '3: and in a new session');
$node->safe_psql('postgres', q{COMMIT PREPARED 'del'});
is($node->safe_psql('postgres', "SET ROLE other_role; $count"), '0',
	'3: the DELETE of purpose_roles prepared before the restart is honoured');
is($w->query_safe($ids), join(',', 3, 4, 6 .. 40), '3: the warm session: every withdrawal');
reuses($w, '3, all resolved', '37');

$w->quit;
$node->stop;
done_testing();
