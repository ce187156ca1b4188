# A consent change committed through two-phase commit is never ignored by a
# consent cache (src/consent.c: the pending list of prepared xids).
#
# A prepared consent change is counted as finished at PREPARE (Citus commits
# the workers' shards with 2PC from another session); its xid stays in
# progress until COMMIT PREPARED, and no counter moves then.  Caches (each
# session's, and the shared versions) read while it is prepared must not be
# used by snapshots that see it committed:
#  1. a prepared withdrawal that leaves the ring of finished xids (more than
#     128 other consent changes) while prepared: after COMMIT PREPARED new
#     sessions and warm ones hide the subject;
#  2. the same for a prepared grant: the subject shows;
#  3. ROLLBACK PREPARED: the subject stays, and caches are reused again
#     (no rebuild per statement) once it is gone;
#  4. more prepared changes leave the ring than the pending list holds
#     (overflow): every one of them is honoured at COMMIT PREPARED;
#  5. a server restart while changes are prepared (the shared bookkeeping is
#     gone, the prepared transactions are not): caches read after the
#     restart do not outlive COMMIT PREPARED, nor is a ROLLBACK PREPARED
#     change shown.
# Cases 1, 2, 4 and 5 fail without the pending list.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('c2pc', key => random_root_key(),
	conf => "max_prepared_transactions = 30\n");
$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
CREATE ROLE marketer;
CREATE ROLE other_role;
SELECT customer_vault.define_purpose('newsletter');
SELECT customer_vault.allow_purpose('marketer', 'newsletter');
CREATE TABLE customers (id bigint PRIMARY KEY, name text);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g;
SELECT customer_vault.enable_consent_policy('customers', 'id', 'newsletter');
GRANT SELECT ON customers TO marketer;
-- test only: the marketer may look at its cache
GRANT USAGE ON SCHEMA customer_vault TO marketer;
GRANT EXECUTE ON FUNCTION customer_vault._consent_cache_builds(),
                          customer_vault._consent_cache_source(text) TO marketer;
SELECT count(customer_vault.grant_consent(g::text, 'newsletter', '{"form": "tap"}'))
  FROM generate_series(1, 40) g;
});

my $count = 'SELECT count(*) FROM customers';
my $ids = q{SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM customers};

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

# n other consent changes (purpose_roles), none on the ledger
sub other_changes
{
	my ($n) = @_;
	$node->safe_psql('postgres', join '',
		map { "SELECT customer_vault.allow_purpose('other_role', 'newsletter');\n"
			  . "SELECT customer_vault.disallow_purpose('other_role', 'newsletter');\n" } 1 .. ($n / 2));
}

# whether the warm session reuses its cache: two more statements, no rebuild
sub reuses
{
	my ($s, $label) = @_;
	$s->query_safe($count);
	my $b1 = $s->query_safe('SELECT customer_vault._consent_cache_builds()');
	$s->query_safe($count);
	$s->query_safe($count);
	my $b2 = $s->query_safe('SELECT customer_vault._consent_cache_builds()');
	is($b2, $b1, "$label: the warm session reuses its cache (no rebuild per statement)");
	my $src = "$count; SELECT customer_vault._consent_cache_source('newsletter')";
	my ($v1) = (fresh($src) =~ /([^\n]*)$/);
	my ($v2) = (fresh($src) =~ /([^\n]*)$/);
	like($v1, qr/^shared \d+$/, "$label: a new session answers from a shared version");
	is($v2, $v1, "$label: the next new session uses the same version");
}

my $w = warm();
is($w->query_safe($count), '40', 'warm: 40 consents');

# ---- 1. a prepared withdrawal leaves the ring, then COMMIT PREPARED
my $s2 = $node->background_psql('postgres');
$s2->query_safe('BEGIN');
$s2->query_safe(q{SELECT customer_vault.withdraw_consent('1', 'newsletter')});
$s2->query_safe(q{PREPARE TRANSACTION 'w1'});
is($w->query_safe($count), '40', '1: prepared, not committed: 40');
other_changes(200);
is($w->query_safe($count), '40', '1: after 200 other changes, still prepared: 40 (warm)');
is(fresh($count), '40', '1: still prepared: 40 (new session)');
is(fresh($count), '40', '1: still prepared: 40 (another new session)');
$node->safe_psql('postgres', q{COMMIT PREPARED 'w1'});
is(fresh($count), '39', '1: after COMMIT PREPARED a new session hides subject 1');
is(fresh(q{SELECT count(*) FROM customers WHERE id = 1}), '0', '1: subject 1 itself is hidden');
is($node->safe_psql('postgres', q{SELECT customer_vault.has_consent('1', 'newsletter')}), 'f',
	'1: has_consent in a new session: false');
is($w->query_safe($count), '39', '1: the warm session hides subject 1');
is($w->query_safe($count), '39', '1: again');

# ---- 2. a prepared grant leaves the ring, then COMMIT PREPARED
$s2->query_safe('BEGIN');
$s2->query_safe(q{SELECT customer_vault.grant_consent('41', 'newsletter', '{"form": "tap"}')});
$s2->query_safe(q{PREPARE TRANSACTION 'g41'});
other_changes(200);
is($w->query_safe($count), '39', '2: prepared grant, 200 other changes: 39 (warm)');
is(fresh($count), '39', '2: 39 (new session)');
$node->safe_psql('postgres', q{COMMIT PREPARED 'g41'});
is(fresh(q{SELECT count(*) FROM customers WHERE id = 41}), '1',
	'2: after COMMIT PREPARED a new session shows subject 41');
is($w->query_safe($count), '40', '2: the warm session shows subject 41');

# ---- 3. a prepared withdrawal leaves the ring, then ROLLBACK PREPARED
$s2->query_safe('BEGIN');
$s2->query_safe(q{SELECT customer_vault.withdraw_consent('2', 'newsletter')});
$s2->query_safe(q{PREPARE TRANSACTION 'w2'});
other_changes(200);
is($w->query_safe($count), '40', '3: prepared withdrawal, 200 other changes: 40 (warm)');
is(fresh($count), '40', '3: 40 (new session)');
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'w2'});
is(fresh(q{SELECT count(*) FROM customers WHERE id = 2}), '1', '3: after ROLLBACK PREPARED subject 2 shows (new session)');
is($w->query_safe($count), '40', '3: 40 (warm)');
is($node->safe_psql('postgres', q{SELECT customer_vault.has_consent('2', 'newsletter')}), 't',
	'3: has_consent: true');
reuses($w, '3');

# ---- 4. more prepared changes leave the ring than the pending list holds
# (written straight into consent_state, as 041 does: a withdraw_consent holds
# the ledger's chain head until COMMIT PREPARED, which the next one would wait for)
for my $i (11 .. 30)
{
	$s2->query_safe('BEGIN');
	$s2->query_safe(qq{UPDATE customer_vault.consent_state SET granted = false
		 WHERE subject = '$i' AND purpose = 'newsletter'});
	$s2->query_safe(qq{PREPARE TRANSACTION 'o$i'});
}
other_changes(200);
is($w->query_safe($count), '40', '4: 20 prepared, 200 other changes: 40 (warm)');
is(fresh($count), '40', '4: 40 (new session)');
# the first 16 to leave the ring (11-26) fill the list, 27-30 overflow it:
# commit those in the list first, read (caches built while 27-30 are
# prepared), then the others
$node->safe_psql('postgres', join '', map { "COMMIT PREPARED 'o$_';\n" } 11 .. 26);
is(fresh($ids), join(',', 2 .. 10, 27 .. 41), '4: after COMMIT PREPARED of 16, a new session hides them');
is($w->query_safe($ids), join(',', 2 .. 10, 27 .. 41), '4: so does the warm session');
is(fresh($ids), join(',', 2 .. 10, 27 .. 41), '4: and another new session');
$node->safe_psql('postgres', join '', map { "COMMIT PREPARED 'o$_';\n" } 27 .. 30);
is(fresh($ids), join(',', 2 .. 10, 31 .. 41),
	'4: after COMMIT PREPARED of the other 4, a new session hides every one of them');
is($w->query_safe($ids), join(',', 2 .. 10, 31 .. 41),
	'4: the warm session hides every one of them');
reuses($w, '4');

# ---- 5. a restart while changes are prepared
$s2->query_safe('BEGIN');
$s2->query_safe(q{SELECT customer_vault.withdraw_consent('3', 'newsletter')});
$s2->query_safe(q{PREPARE TRANSACTION 'r3'});
$s2->query_safe('BEGIN');
$s2->query_safe(q{UPDATE customer_vault.consent_state SET granted = false
	 WHERE subject = '4' AND purpose = 'newsletter'});
$s2->query_safe(q{PREPARE TRANSACTION 'r4'});
$s2->query_safe('BEGIN');
$s2->query_safe(q{UPDATE customer_vault.consent_state SET granted = true
	 WHERE subject = '11' AND purpose = 'newsletter'});
$s2->query_safe(q{PREPARE TRANSACTION 'r11'});
$w->quit;
$s2->quit;
$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '3',
	'5: three transactions still prepared after the restart');
$w = warm();
is($w->query_safe($count), '20', '5: after the restart, still prepared: 20 (warm)');
is(fresh($count), '20', '5: 20 (new session)');
is(fresh($count), '20', '5: 20 (another new session)');
other_changes(10);
is(fresh($count), '20', '5: after 10 other changes: 20 (new session)');
is($w->query_safe($count), '20', '5: 20 (warm)');
$node->safe_psql('postgres', q{COMMIT PREPARED 'r3'});
is(fresh(q{SELECT count(*) FROM customers WHERE id = 3}), '0',
	'5: after COMMIT PREPARED subject 3 is hidden (new session)');
is($w->query_safe(q{SELECT count(*) FROM customers WHERE id = 3}), '0', '5: hidden (warm)');
$node->safe_psql('postgres', q{COMMIT PREPARED 'r11'});
is(fresh(q{SELECT count(*) FROM customers WHERE id = 11}), '1',
	'5: a grant committed after the restart shows (new session)');
is($w->query_safe(q{SELECT count(*) FROM customers WHERE id = 11}), '1', '5: shows (warm)');
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'r4'});
is(fresh($ids), join(',', 2, 4 .. 11, 31 .. 41), '5: ROLLBACK PREPARED: subject 4 still shows (new session)');
is($w->query_safe($ids), join(',', 2, 4 .. 11, 31 .. 41), '5: the same in the warm session');
reuses($w, '5');

$w->quit;
$node->stop;
done_testing();
