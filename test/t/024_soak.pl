# A concurrent soak: pgbench with 8 clients for SOAK_SECONDS (default 60)
# mixes, in short transactions under the roles an application would use,
#   - inserts into a protected table (protect_column with a context column and
#     a blind index column) as a writer,
#   - reads of its <table>_decrypted view as a reader, each checking the
#     plaintext against a value it can recompute from the row id,
#   - grant_consent / withdraw_consent of random subjects and purposes,
#   - row counts of a table under enable_consent_policy as a role allowed the
#     purposes, each compared, in the same snapshot, with the count the
#     consent_state table implies,
#   - inserts into a table with a retention policy (fresh rows, and some that
#     arrive already past retention),
# while two other sessions loop rotate_key + CALL reencrypt(...) and
# CALL purge() (as an admin with the table privileges maintenance needs).
#
# Afterwards: no unexpected error (pgbench reports no failed transaction and
# no aborted client; the server log holds no ERROR other than the expected
# ones listed in %expected_sqlstate, which pgbench retries), every committed
# row is there and decrypts to its value (count and checksum through the view
# equal those recomputed from the table), every blind index is right,
# verify_ledger() IS NULL, the consent state equals the ledger's last action
# per subject and purpose, the purge removed only expired rows of subjects
# without a legal hold (and all expired unheld rows that were there at the
# start), and the server never restarted.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use IPC::Run;
use Time::HiRes qw(time);

my $seconds = $ENV{SOAK_SECONDS} // 60;
die "SOAK_SECONDS must be a positive integer\n" unless $seconds =~ /^[1-9][0-9]*$/;
my $clients = 8;
my $seed = int(rand(1 << 30));
my $items_prefill = 2000;     # rows protect_column converts
my $people = 200;             # subjects (and rows of the consent-policy table)
my $events_prefill = 20000;   # rows of the retention table at the start
my $held_subjects = 5;        # subjects 1..5 of the retention table are under a legal hold

# Errors the workload may meet and pgbench retries (--max-tries): a
# serialization failure or a deadlock.  Every transaction here runs in READ
# COMMITTED and takes its locks in one order, so none is expected; should one
# occur, pgbench retries the transaction and it still has to succeed.  Any
# other error, in any session, fails the test.
my %expected_sqlstate = (
	'40001' => 'serialization_failure (retried by pgbench)',
	'40P01' => 'deadlock_detected (retried by pgbench)',);

my $node = new_vault_node('soak', key => random_root_key(),
	conf => "log_statement = none\nlog_error_verbosity = verbose\nlog_min_messages = warning\n"
	  . "log_connections = off\nlog_disconnections = off\nmax_connections = 30\n");

my $t0 = time;
$node->safe_psql(
	'postgres', qq{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
RESET client_min_messages;

CREATE ROLE regress_soak_owner;                 -- owns the tables, nobody logs in as it
CREATE ROLE regress_soak_writer IN ROLE customer_vault_writer;
CREATE ROLE regress_soak_reader IN ROLE customer_vault_reader;
CREATE ROLE regress_soak_app;                   -- reads under consent purposes
CREATE ROLE regress_soak_admin LOGIN IN ROLE customer_vault_admin;

-- the value of a row, recomputable from its id; an assertion for the scripts
CREATE FUNCTION soak_value(n bigint) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS \$\$ SELECT 'secret:' || n || ':' || md5(n::text) \$\$;
CREATE FUNCTION soak_assert(ok boolean, what text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS \$\$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = 'SK001', MESSAGE = 'soak assertion failed: ' || what;
    END IF;
    RETURN true;
END \$\$;

-- the protected table
SELECT customer_vault.create_key('soak_k');
CREATE TABLE soak_items (id bigserial PRIMARY KEY, secret text NOT NULL, secret_bidx bytea);
ALTER TABLE soak_items OWNER TO regress_soak_owner;
INSERT INTO soak_items (id, secret) SELECT g, soak_value(g) FROM generate_series(1, $items_prefill) g;
SELECT setval('soak_items_id_seq', $items_prefill);
SELECT customer_vault.protect_column('soak_items', 'secret', 'soak_k',
                                     context_column => 'id', blind_index_column => 'secret_bidx');
CREATE INDEX ON soak_items (secret_bidx);
-- the writer never reads the blind index back
GRANT SELECT (id), INSERT (id, secret) ON soak_items TO regress_soak_writer;
GRANT USAGE ON SEQUENCE soak_items_id_seq TO regress_soak_writer;
GRANT SELECT ON soak_items TO regress_soak_reader;
GRANT UPDATE ON soak_items TO regress_soak_admin;   -- reencrypt acts as the owner, for callers with UPDATE

-- consent: two purposes, a table under a consent policy
SELECT customer_vault.define_purpose('soak_p1');
SELECT customer_vault.define_purpose('soak_p2');
SELECT customer_vault.allow_purpose('regress_soak_app', 'soak_p1');
SELECT customer_vault.allow_purpose('regress_soak_app', 'soak_p2');
CREATE TABLE soak_people (id bigint PRIMARY KEY, name text NOT NULL);
ALTER TABLE soak_people OWNER TO regress_soak_owner;
INSERT INTO soak_people SELECT g, 'person ' || g FROM generate_series(1, $people) g;
GRANT SELECT ON soak_people TO regress_soak_app;
SELECT customer_vault.enable_consent_policy('soak_people', 'id');
SELECT count(*) FROM (
    SELECT customer_vault.grant_consent(g::text, 'soak_p' || (1 + g % 2), '{"form": "soak-prefill"}')
      FROM generate_series(1, $people, 3) g) s;
-- what the policy must let regress_soak_app see under a purpose, read in the
-- caller's snapshot (STABLE: the calling statement's snapshot)
CREATE FUNCTION soak_expected_visible(purpose text) RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS \$\$ SELECT count(*) FROM public.soak_people p
             WHERE EXISTS (SELECT 1 FROM customer_vault.consent_state s
                            WHERE s.subject = p.id::text AND s.purpose = \$1 AND s.granted
                              AND (s.valid_until IS NULL OR s.valid_until > now())) \$\$;
REVOKE ALL ON FUNCTION soak_expected_visible(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION soak_expected_visible(text) TO regress_soak_app;

-- retention: a table with old rows; a shadow table records every row inserted
CREATE TABLE soak_events (id bigserial PRIMARY KEY, subject_id bigint NOT NULL,
                          created_at timestamptz NOT NULL, payload text);
ALTER TABLE soak_events OWNER TO regress_soak_owner;
CREATE TABLE soak_events_shadow (id bigint PRIMARY KEY, subject_id bigint NOT NULL,
                                 created_at timestamptz NOT NULL, prefill boolean NOT NULL DEFAULT false);
WITH e AS (
    INSERT INTO soak_events (subject_id, created_at, payload)
    SELECT 1 + g % 50,
           CASE WHEN g % 2 = 0 THEN now() - interval '40 days' - (g % 360) * interval '1 day'
                ELSE now() - interval '1 day' - (g % 27) * interval '1 day' END,
           'prefill ' || g
      FROM generate_series(1, $events_prefill) g
    RETURNING id, subject_id, created_at)
INSERT INTO soak_events_shadow SELECT id, subject_id, created_at, true FROM e;
GRANT INSERT, SELECT (id, subject_id, created_at) ON soak_events TO regress_soak_writer;  -- SELECT for RETURNING
GRANT USAGE ON SEQUENCE soak_events_id_seq TO regress_soak_writer;
GRANT INSERT ON soak_events_shadow TO regress_soak_writer;
-- purge acts as the owner, for callers with DELETE (and SELECT: rows held are counted)
GRANT SELECT, DELETE ON soak_events TO regress_soak_admin;
SELECT customer_vault.set_retention('soak_events', 'created_at', '30 days', 'delete', 'subject_id');
SELECT customer_vault.place_legal_hold(g::text, 'soak hold ' || g) FROM generate_series(1, $held_subjects) g;
ANALYZE;
});
note sprintf('set up in %.1fs', time - $t0);

my $count_q = sub { $node->safe_psql('postgres', $_[0]) };
is($count_q->("SELECT count(*) FROM soak_items WHERE NOT customer_vault.is_sealed(secret)"), '0',
	'protect_column sealed every prefilled row');
my $ledger_before = $count_q->('SELECT count(*) FROM customer_vault.consent_ledger');
my $expired_unheld_q = "SELECT count(*) FROM soak_events WHERE created_at < now() - interval '30 days'"
  . " AND subject_id > $held_subjects";
my $expired_held_q = "SELECT count(*) FROM soak_events WHERE created_at < now() - interval '30 days'"
  . " AND subject_id <= $held_subjects";
my $expired_unheld_before = $count_q->($expired_unheld_q);
my $expired_held_before = $count_q->($expired_held_q);
cmp_ok($expired_unheld_before, '>', 0, "$expired_unheld_before expired rows of unheld subjects to purge");
cmp_ok($expired_held_before, '>', 0, "$expired_held_before expired rows of held subjects to keep");
my $start_time = $count_q->('SELECT pg_postmaster_start_time()');
my $log_offset = -s $node->logfile;

# ---------- the pgbench scripts ----------
my $dir = PostgreSQL::Test::Utils::tempdir;
my %script = (
	# 3 rows a transaction, as the writer: the protect trigger seals them
	'insert' => q{
BEGIN;
SET LOCAL ROLE regress_soak_writer;
INSERT INTO soak_items (id, secret) SELECT n, soak_value(n) FROM (SELECT nextval('soak_items_id_seq') AS n FROM generate_series(1, 3)) s;
COMMIT;
},
	# 30 rows of the decrypted view somewhere in the table, as a reader; each
	# must decrypt to its value
	'read' => q{
\set r random(1, 1000)
BEGIN;
SET LOCAL ROLE regress_soak_reader;
SELECT soak_assert(count(*) FILTER (WHERE v.secret IS DISTINCT FROM soak_value(v.id)) = 0, 'decrypted view: a value differs') FROM soak_items_decrypted v, (SELECT max(id) * :r / 1000 AS hi FROM soak_items) m WHERE v.id > m.hi - 30 AND v.id <= m.hi;
COMMIT;
},
	# a grant or a withdrawal of a random subject and purpose, as the writer
	'consent' => q{
\set subj random(1, 200)
\set p random(1, 2)
\set act random(0, 1)
BEGIN;
SET LOCAL ROLE regress_soak_writer;
SELECT CASE WHEN :act = 1 THEN customer_vault.grant_consent(:subj::text, 'soak_p' || :p, '{"form": "soak"}') ELSE customer_vault.withdraw_consent(:subj::text, 'soak_p' || :p, '{"form": "soak-withdraw"}') END;
COMMIT;
},
	# the consent policy's row count under a purpose equals what consent_state
	# says in the same snapshot
	'rls' => q{
\set p random(1, 2)
BEGIN;
SET LOCAL ROLE regress_soak_app;
SELECT set_config('customer_vault.purpose', 'soak_p' || :p, true);
SELECT soak_assert((SELECT count(*) FROM soak_people) = soak_expected_visible('soak_p' || :p), 'consent policy count differs from consent_state');
COMMIT;
},
	# rows keep arriving in the retention table; one in 10 already past retention
	'events' => q{
\set subj random(1, 50)
\set late random(0, 9)
BEGIN;
SET LOCAL ROLE regress_soak_writer;
WITH e AS (INSERT INTO soak_events (subject_id, created_at, payload) VALUES (:subj, CASE WHEN :late = 0 THEN now() - interval '40 days' ELSE now() END, 'soak') RETURNING id, subject_id, created_at) INSERT INTO soak_events_shadow (id, subject_id, created_at) SELECT id, subject_id, created_at FROM e;
COMMIT;
},
	# the other sessions: rotation + reencrypt, and the purge (as the admin)
	# (the pause first: whatever pgbench does with a client sleeping when the
	# time is up, each transaction it counts did its work, and no other did)
	'rotate' => q{
\sleep 500 ms
SELECT customer_vault.rotate_key('soak_k');
CALL customer_vault.reencrypt('soak_items', 'secret', 500);
},
	'purge' => q{
\sleep 500 ms
CALL customer_vault.purge(batch_size => 2000);
},);
for my $s (keys %script)
{
	PostgreSQL::Test::Utils::append_to_file("$dir/$s.sql", $script{$s});
}
my %weight = (insert => 3, read => 3, consent => 2, rls => 2, events => 2);
my @order = qw(insert read consent rls events);

my @conn = ('-h', $node->host, '-p', $node->port);
# --max-tries (retries of serialization failures and deadlocks) and the
# failure counts exist from pgbench 15; older ones abort the client instead
my ($pgbench_major) = `pgbench --version` =~ /(\d+)/;
my $retries = defined $pgbench_major && $pgbench_major >= 15;
my @common = ('--no-vacuum', "--random-seed=$seed", $retries ? ('--max-tries=10', '--failures-detailed') : ());
note "pgbench: $clients clients for ${seconds}s, random seed $seed";
my %run;
for my $r (
	[ 'main', 'postgres', [ '-c', $clients, '-j', 2, map { ('-f', "$dir/$_.sql\@$weight{$_}") } @order ] ],
	[ 'rotate', 'regress_soak_admin', [ '-c', 1, '-f', "$dir/rotate.sql" ] ],
	[ 'purge', 'regress_soak_admin', [ '-c', 1, '-f', "$dir/purge.sql" ] ])
{
	my ($name, $user, $args) = @$r;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ 'pgbench', @conn, '-U', $user, @common, '-T', $seconds, @$args, 'postgres' ],
		'>', \$out, '2>', \$err);
	$run{$name} = { h => $h, out => \$out, err => \$err };
}
$t0 = time;
for my $name (qw(main rotate purge))
{
	my $h = $run{$name}{h};
	$h->finish;
	my ($out, $err) = (${ $run{$name}{out} }, ${ $run{$name}{err} });
	is($h->result(0), 0, "pgbench $name exited with status 0")
	  or diag "pgbench $name stdout:\n$out\nstderr:\n$err";
	unlike($err, qr/aborted|error/i, "pgbench $name: no client aborted, no error reported");
	my ($done) = $out =~ /number of transactions actually processed: (\d+)/;
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	my ($retried) = $out =~ /number of transactions retried: (\d+)/;
	ok(defined $done && $done > 0, "pgbench $name processed transactions (" . ($done // 'none') . ')')
	  or diag $out;
	is($failed // '0', '0', "pgbench $name: no failed transaction (serialization/deadlock after 10 tries)");
	note "pgbench $name: " . ($done // '?') . ' transactions, ' . ($retried // 0) . ' retried';
	$run{$name}{done} = $done // 0;
	# per script transaction counts (main: one section per script, in -f order)
	my @per = $out =~ /^SQL script \d+: .*?\n - weight: \d+ .*?\n - (\d+) transactions/mg;
	$run{$name}{per} = \@per;
}
note sprintf('soak took %.1fs', time - $t0);
# When its time is up pgbench closes its connections without waiting: a
# statement under way (a COMMIT, a reencrypt, a purge) still runs to its end
# in the server, and its transaction may commit without pgbench counting it.
# So wait for those backends to finish, and allow one uncounted transaction
# per client in the counts below.
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"),
	'the statements pgbench left running have finished');
# a count of committed work, given what pgbench counted and its clients
my $within = sub {
	my ($got, $counted, $nclients, $what) = @_;
	ok($got >= $counted && $got <= $counted + $nclients,
		"$what: $got, between the $counted counted and $nclients uncounted more");
};
my %per;
@per{@order} = @{ $run{main}{per} };
is(scalar(@{ $run{main}{per} }), scalar(@order), 'pgbench reported each script of the main run')
  or diag ${ $run{main}{out} };
note join(', ', map { "$_: " . ($per{$_} // '?') } @order);
for my $s (@order)
{
	cmp_ok($per{$s} // 0, '>', 0, "script $s ran");
}
cmp_ok($run{rotate}{done}, '>=', 2, "at least 2 rotations with reencrypt ($run{rotate}{done})");
cmp_ok($run{purge}{done}, '>=', 2, "at least 2 purges ($run{purge}{done})");

# ---------- the server ----------
is($count_q->('SELECT pg_postmaster_start_time()'), $start_time, 'the server did not restart');
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/terminated by signal|PANIC:|server process .* exited with exit code/, 'no backend died');
my (%seen, @unexpected);
for my $line (split /\n/, $log)
{
	next unless $line =~ /\b(ERROR|FATAL):\s+([0-9A-Z]{5}):/;
	$seen{$2}++;
	push @unexpected, $line unless exists $expected_sqlstate{$2};
}
note 'errors in the server log by SQLSTATE: '
  . (join(', ', map { "$_ x$seen{$_}" } sort keys %seen) || 'none');
is(scalar(@unexpected), 0, 'no unexpected error in the server log')
  or diag join("\n", @unexpected[ 0 .. ($#unexpected < 20 ? $#unexpected : 19) ]);

# ---------- the protected table: every committed row there, every row decrypts ----------
my $items = $count_q->('SELECT count(*) FROM soak_items');
is(($items - $items_prefill) % 3, 0, 'the protected table holds whole insert transactions (3 rows each)');
$within->(($items - $items_prefill) / 3, $per{insert} // 0, $clients,
	'every committed insert is there: insert transactions in the protected table');
is($count_q->('SELECT count(*), sum(hashtextextended(secret, 0)) FROM soak_items_decrypted'),
	$count_q->('SELECT count(*), sum(hashtextextended(soak_value(id), 0)) FROM soak_items'),
	'count and checksum through the decrypted view equal those recomputed from the table');
is($count_q->('SELECT count(*) FROM soak_items_decrypted WHERE secret IS DISTINCT FROM soak_value(id)'), '0',
	'every row decrypts to its own value');
is($count_q->("SET ROLE regress_soak_reader; SELECT count(*) FROM soak_items_decrypted WHERE secret = soak_value(id)"),
	$items, 'and so through the view as a reader');
is($count_q->("SET ROLE regress_soak_reader; SELECT count(*) FROM soak_items"
		  . " WHERE secret_bidx IS DISTINCT FROM customer_vault.column_blind_index('soak_items', 'secret', soak_value(id))"),
	'0', 'every blind index is the one of its value');
my $versions = $count_q->("SELECT count(*) FROM customer_vault.keys WHERE name = 'soak_k'");
$within->($versions - 1, $run{rotate}{done}, 1, 'one key version per rotation');
note 'values per key version: '
  . join(', ', split /\n/, $count_q->(
	"SELECT k || ' x' || count(*) FROM (SELECT customer_vault.key_of(secret::customer_vault.encrypted_text) AS k FROM soak_items) s GROUP BY k ORDER BY k"));

# ---------- consent ----------
is($count_q->('SELECT customer_vault.verify_ledger() IS NULL'), 't', 'verify_ledger() IS NULL: the chain is intact');
$within->($count_q->('SELECT count(*) FROM customer_vault.consent_ledger') - $ledger_before, $per{consent} // 0,
	$clients, 'one ledger entry per committed grant or withdrawal');
# (the subject through consent_ledger_redacted: entries store its keyed hash since 0.5.0)
my $last_q = q{
WITH last AS (
    SELECT DISTINCT ON (subject, purpose) subject, purpose, action, id
      FROM customer_vault.consent_ledger_redacted ORDER BY subject, purpose, id DESC)
SELECT count(*) FROM last l FULL JOIN customer_vault.consent_state s USING (subject, purpose)
 WHERE NOT COALESCE(
        (l.action = 'grant' AND s.granted AND s.ledger_id = l.id)
     OR (l.action = 'withdraw' AND (s.subject IS NULL OR (NOT s.granted AND s.ledger_id = l.id))), false)};
is($count_q->($last_q), '0', 'consent_state equals the ledger\'s last action per subject and purpose');
is($count_q->(q{
WITH last AS (
    SELECT DISTINCT ON (subject, purpose) subject, purpose, action
      FROM customer_vault.consent_ledger_redacted ORDER BY subject, purpose, id DESC)
SELECT count(*) FROM last l FULL JOIN customer_vault.current_consents c USING (subject, purpose)
 WHERE (l.action = 'grant') IS DISTINCT FROM COALESCE(c.status = 'granted', false)}), '0',
	'current_consents shows granted exactly where the last ledger action is a grant');
is($count_q->("SELECT count(DISTINCT action) FROM customer_vault.consent_ledger WHERE evidence->>'form' <> 'soak-prefill'"),
	'2', 'the soak recorded both grants and withdrawals');
for my $p (1, 2)
{
	my $visible = $count_q->(
		"SET ROLE regress_soak_app; SET customer_vault.purpose = 'soak_p$p'; SELECT count(*) FROM soak_people");
	is($visible, $count_q->("SELECT soak_expected_visible('soak_p$p')"),
		"consent policy under soak_p$p shows the consented subjects ($visible)");
}

# ---------- retention ----------
my $statuses = $count_q->(
	"SELECT string_agg(status || ' x' || n, ', ' ORDER BY status) FROM "
	  . "(SELECT status, count(*) AS n FROM customer_vault.purge_log GROUP BY status) s");
like($statuses, qr/^done x\d+$/, "purge_log: every purge run done ($statuses)");
$within->($count_q->('SELECT count(*) FROM customer_vault.purge_log'), $run{purge}{done}, 1,
	'one purge_log row per purge');
is($count_q->('SELECT customer_vault.verify_purge_log() IS NULL AND customer_vault.verify_legal_holds() IS NULL'), 't',
	'the hash chains of the purge log and the legal holds verify');
is($count_q->(q{
SELECT count(*) FROM soak_events_shadow s
 WHERE NOT EXISTS (SELECT 1 FROM soak_events e WHERE e.id = s.id)
   AND NOT (s.created_at < now() - interval '30 days' AND s.subject_id > } . $held_subjects . ')'), '0',
	'the purge removed only expired rows of subjects without a legal hold');
is($count_q->(q{SELECT count(*) FROM soak_events e WHERE NOT EXISTS (SELECT 1 FROM soak_events_shadow s WHERE s.id = e.id)}),
	'0', 'no row the soak did not insert');
$within->($count_q->('SELECT count(*) FROM soak_events_shadow WHERE NOT prefill'), $per{events} // 0, $clients,
	'every committed event insert recorded');
is($count_q->($expired_unheld_q . ' AND id IN (SELECT id FROM soak_events_shadow WHERE prefill)'), '0',
	"every expired unheld row of the start was purged ($expired_unheld_before)");
is($count_q->($expired_held_q . ' AND id IN (SELECT id FROM soak_events_shadow WHERE prefill)'), $expired_held_before,
	"every expired row of a held subject is kept ($expired_held_before)");
is($count_q->(q{
SELECT count(*) FROM soak_events_shadow s
 WHERE s.created_at >= now() - interval '30 days' AND NOT EXISTS (SELECT 1 FROM soak_events e WHERE e.id = s.id)}),
	'0', 'no row inside retention was lost');
my $purged = $count_q->(
	"SELECT sum(rows_purged) FROM customer_vault.purge_log WHERE status = 'done' AND NOT dry_run");
is($purged, $count_q->('SELECT count(*) FROM soak_events_shadow s WHERE NOT EXISTS (SELECT 1 FROM soak_events e WHERE e.id = s.id)'),
	"purge_log counts every row removed ($purged)");

# one line of figures in the output of make test
diag sprintf('soak: %ds, %d clients (seed %d): %s; %d rotations, %d purges (%d rows purged); %d rows in the '
	  . 'protected table; server errors: %s',
	$seconds, $clients, $seed, join(', ', map { "$_ " . ($per{$_} // 0) } @order),
	$run{rotate}{done}, $run{purge}{done}, $purged // 0, $items,
	(join(', ', map { "$_ x$seen{$_}" } sort keys %seen) || 'none'));

$node->stop;
done_testing();
