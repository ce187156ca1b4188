# The decrypt audit fails closed (review of 0.4.0, medium): whoever owns a
# database (not a superuser) must not be able to read without an access_log
# row by breaking the audit writer's write.
#   - ALTER DATABASE ... SET by the database owner (read-only transactions,
#     SET ROLE, search_path, timeouts, isolation, plpgsql checks,
#     standard_conforming_strings, ...): the writer pins its own settings and
#     still writes; the chain still verifies in the owner's settings;
#   - ALTER DATABASE ... ALLOW_CONNECTIONS false (while the owner is still
#     connected): the writer connects anyway;
#   - ALTER ROLE <the writer's role> IN DATABASE ... SET: the same;
#   - one record that cannot be written (a test trigger refuses its purpose)
#     in a batch: the others are written, it is written in a reduced form
#     (no purpose, application, client) and logged in full;
#   - a writer that hangs (a lock): once a record waited 5 s, decrypts are
#     refused (the first one too: its slot is reserved before its first
#     value) until it writes again;
#   - a writer that cannot write at all: the next decrypts are refused
#     (55000, hint naming the server log) without returning any value, the
#     record stays queued (never only logged), and once the cause is gone it
#     is written and decrypting works again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('audit_fc', key => random_root_key());
my $su = $node->safe_psql('postgres', 'SELECT rolname FROM pg_authid WHERE oid = 10');
$node->safe_psql(
	'postgres', q{
CREATE ROLE regress_fc_owner LOGIN;
CREATE DATABASE fc OWNER regress_fc_owner ENCODING 'UTF8' LOCALE 'C' TEMPLATE template0;
});
$node->safe_psql(
	'fc', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.create_key('fc_key');
CREATE TABLE fc_t (id int PRIMARY KEY, v customer_vault.encrypted_text);
INSERT INTO fc_t SELECT i, customer_vault.encrypt('fc secret ' || i, 'fc_key', i::text) FROM generate_series(1, 3) i;
GRANT customer_vault_reader TO regress_fc_owner;
GRANT SELECT ON fc_t TO regress_fc_owner;
-- a stand-in for whatever can make the writer's INSERT fail (only a
-- superuser can put a trigger on the extension's table)
CREATE TABLE public.fc_break (x int);
CREATE FUNCTION public.fc_break_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM public.fc_break) OR NEW.purpose = 'poison' THEN
        RAISE EXCEPTION 'fc_break: the test refuses this access_log row';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fc_break BEFORE INSERT ON customer_vault.access_log_entries
    FOR EACH ROW EXECUTE FUNCTION public.fc_break_trg();
});

# the database owner decrypts the 3 values under an application name (and a purpose)
sub owner_decrypt
{
	my ($app, $purpose) = @_;
	my ($out, $err);
	my $set = defined $purpose ? "SET customer_vault.purpose = '$purpose';" : '';
	$node->psql(
		'fc',
		"\\set VERBOSITY verbose\nSET application_name = '$app'; $set\n"
		  . "SELECT string_agg(customer_vault.decrypt(v, id::text), ',' ORDER BY id) FROM fc_t;",
		stdout => \$out,
		stderr => \$err,
		extra_params => [ '-U', 'regress_fc_owner' ]);
	return ($out, $err);
}

# as the superuser, itself again whatever the database's or its role's settings say
sub audit_query
{
	my ($sql) = @_;
	return $node->safe_psql('fc',
		qq{SET SESSION AUTHORIZATION "$su"; SET ROLE NONE; SET statement_timeout = 0; $sql});
}

sub logged
{
	my ($app, $what) = @_;
	my $ok = 0;
	foreach (1 .. 60 * 4)
	{
		if (audit_query(
				"SELECT count(*) FROM customer_vault.access_log WHERE application_name = '$app'") eq '1')
		{
			$ok = 1;
			last;
		}
		select(undef, undef, undef, 0.25);
	}
	ok($ok, "$what: the decrypt is in access_log");
}

# no writer left connected (the next record needs a new one, which connects)
sub no_writer
{
	ok( $node->poll_query_until(
			'postgres',
			q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'customer_vault audit writer'}),
		'the writer left');
}

my $plain = 'fc secret 1,fc secret 2,fc secret 3';
my ($out, $err);

# ---------- the database owner's ALTER DATABASE ... SET ----------
$node->safe_psql(
	'fc', q{
ALTER DATABASE fc SET default_transaction_read_only = on;
ALTER DATABASE fc SET role = 'regress_fc_owner';
ALTER DATABASE fc SET session_authorization = 'regress_fc_owner';
ALTER DATABASE fc SET search_path = 'public';
ALTER DATABASE fc SET lock_timeout = '1ms';
ALTER DATABASE fc SET idle_in_transaction_session_timeout = '1ms';
ALTER DATABASE fc SET default_transaction_isolation = 'serializable';
ALTER DATABASE fc SET exit_on_error = on;
ALTER DATABASE fc SET standard_conforming_strings = off;
ALTER DATABASE fc SET transform_null_equals = on;
DO $$ BEGIN END $$;  -- plpgsql loaded: its settings are known (and USERSET)
ALTER DATABASE fc SET plpgsql.extra_errors = 'all';
}, extra_params => [ '-U', 'regress_fc_owner' ]);
no_writer();
my $offset = -s $node->logfile;
($out, $err) = owner_decrypt('fc_dbset');
is($out, $plain, 'database settings: the owner decrypts');
logged('fc_dbset', 'ALTER DATABASE SET by the owner');
is(audit_query('SELECT customer_vault.verify_access_log() IS NULL'),
	't', 'database settings: the chain verifies (also with standard_conforming_strings off)');
unlike(slurp_file($node->logfile, $offset), qr/customer_vault audit: reason=/,
	'database settings: nothing went to the server log instead');
$node->safe_psql('fc', 'SET default_transaction_read_only = off; ALTER DATABASE fc RESET ALL',
	extra_params => [ '-U', 'regress_fc_owner' ]);

# ---------- ALLOW_CONNECTIONS false ----------
no_writer();
$offset = -s $node->logfile;
# the owner, connected to the database, closes it (from another database);
# while it refuses connections, the writer has to get in
my $inside = $node->background_psql('fc', extra_params => [ '-U', 'regress_fc_owner' ]);
$inside->query_safe("SET application_name = 'fc_noconn'");
$node->safe_psql('postgres', 'ALTER DATABASE fc ALLOW_CONNECTIONS false',
	extra_params => [ '-U', 'regress_fc_owner' ]);
is($inside->query_safe('SELECT count(customer_vault.decrypt(v, id::text)) FROM fc_t'),
	'3', 'no connections: the owner (already connected) decrypts');
$inside->query_safe('SELECT pg_sleep(2)');
$inside->quit;
$node->safe_psql('postgres', 'ALTER DATABASE fc ALLOW_CONNECTIONS true',
	extra_params => [ '-U', 'regress_fc_owner' ]);
is($node->safe_psql('postgres', q{SELECT datallowconn FROM pg_database WHERE datname = 'fc'}),
	't', 'connections allowed again');
logged('fc_noconn', 'ALLOW_CONNECTIONS false');
unlike(slurp_file($node->logfile, $offset), qr/customer_vault audit: reason=no_database/,
	'no connections: the record did not go to the server log');

# ---------- ALTER ROLE of the writer's role ----------
$node->safe_psql(
	'postgres', qq{
ALTER ROLE "$su" IN DATABASE fc SET default_transaction_read_only = on;
ALTER ROLE "$su" IN DATABASE fc SET statement_timeout = '1ms';
ALTER ROLE "$su" IN DATABASE fc SET role = 'regress_fc_owner';
ALTER ROLE "$su" IN DATABASE fc SET session_replication_role = replica;
});
no_writer();
($out, $err) = owner_decrypt('fc_roleset');
is($out, $plain, "writer's role settings: the owner decrypts");
logged('fc_roleset', "ALTER ROLE of the writer's role");
$node->safe_psql('postgres', qq{ALTER ROLE "$su" IN DATABASE fc RESET ALL});

# ---------- one bad record in a batch ----------
my $before = audit_query('SELECT COALESCE(max(id), 0) FROM customer_vault.access_log');
# hold the writer at the head of the chain so that the records pile up in one batch
my $blocker = $node->background_psql('fc');
$blocker->query_safe('BEGIN; LOCK TABLE customer_vault.access_log_head IN EXCLUSIVE MODE;');
$offset = -s $node->logfile;
($out, $err) = owner_decrypt('fc_good1', 'good');
is($out, $plain, 'batch: first decrypt');
($out, $err) = owner_decrypt('fc_poison', 'poison');
is($out, $plain, 'batch: the decrypt whose record will not be written as it is');
($out, $err) = owner_decrypt('fc_good2', 'good');
is($out, $plain, 'batch: third decrypt');
$blocker->query_safe('COMMIT;');
$blocker->quit;
logged('fc_good1', 'batch: the record before the bad one');
logged('fc_good2', 'batch: the record after the bad one');
is( audit_query(
		qq{SELECT count(*) FROM customer_vault.access_log WHERE id > $before AND purpose IS NULL AND application_name IS NULL AND value_count = 3}
	),
	'1',
	'batch: the bad record is in access_log in its reduced form');
$node->wait_for_log(qr/customer_vault audit: reason=write_reduced/, $offset);
like(
	slurp_file($node->logfile, $offset),
	qr/customer_vault audit: reason=write_reduced .*values=3 .*purpose="poison" app="fc_poison"/,
	'batch: the bad record is in the server log in full');
unlike(slurp_file($node->logfile, $offset), qr/customer_vault audit: reason=write_failed/,
	'batch: no record was only logged');
is(audit_query('SELECT customer_vault.verify_access_log() IS NULL'), 't', 'batch: the chain verifies');
($out, $err) = owner_decrypt('fc_after_batch');
is($out, $plain, 'batch: decrypting is not refused afterwards');

# ---------- a writer that hangs (here: waits for a lock) ----------
$blocker = $node->background_psql('fc');
$blocker->query_safe('BEGIN; LOCK TABLE customer_vault.access_log_head IN EXCLUSIVE MODE;');
$offset = -s $node->logfile;
($out, $err) = owner_decrypt('fc_stall1');
is($out, $plain, 'hung writer: a decrypt while the writer waits');
sleep 6;
($out, $err) = owner_decrypt('fc_stall2');
like($err, qr/ERROR:  55000: decryption refused/,
	'hung writer: the decrypt that finds a record waiting for 5 s is refused (its slot is reserved first)');
unlike($out, qr/fc secret/, 'hung writer: that decrypt returned no value');
($out, $err) = owner_decrypt('fc_stall3');
like($err, qr/ERROR:  55000: decryption refused/, 'hung writer: the next decrypt is refused');
unlike($out, qr/fc secret/, 'hung writer: no value was returned');
like(
	slurp_file($node->logfile, $offset),
	qr/customer_vault audit: the writer of database \d+ has written no record for 5000 ms/,
	'hung writer: the server log says why');
$blocker->query_safe('COMMIT;');
$blocker->quit;
logged('fc_stall1', 'hung writer, released: the first record');
is(audit_query(q{SELECT count(*) FROM customer_vault.access_log WHERE application_name = 'fc_stall2'}),
	'0', 'hung writer, released: the refused decrypt has no record (it returned no value)');
my $back = 0;
foreach (1 .. 60 * 4)
{
	($out, $err) = owner_decrypt('fc_stall_after');
	if (defined $out && $out eq $plain)
	{
		$back = 1;
		last;
	}
	select(undef, undef, undef, 0.25);
}
ok($back, 'hung writer, released: decrypting works again');

# ---------- a writer that cannot write: decrypts are refused ----------
logged('fc_after_batch', 'before the breakage');
$node->safe_psql('fc', 'INSERT INTO public.fc_break VALUES (1)');
$offset = -s $node->logfile;
($out, $err) = owner_decrypt('fc_first');
is($out, $plain, 'broken writer: the first decrypt (before any failure) returns its values');
my $refused = 0;
foreach (1 .. 60 * 4)
{
	($out, $err) = owner_decrypt('fc_refused');
	if ($err =~ /decryption refused/)
	{
		$refused = 1;
		last;
	}
	select(undef, undef, undef, 0.25);
}
ok($refused, 'broken writer: decrypts are refused');
like($err, qr/ERROR:  55000: decryption refused: the decrypt audit of this database cannot be written/,
	'broken writer: 55000 with a clear message');
like($err, qr/HINT:  See the server log/, 'broken writer: the hint names the server log');
unlike($out, qr/fc secret/, 'broken writer: no value was returned');
is($node->safe_psql('fc', q{SELECT count(*) FROM customer_vault.access_log WHERE application_name = 'fc_first'}),
	'0', 'broken writer: the record is not (yet) in access_log');
unlike(slurp_file($node->logfile, $offset), qr/customer_vault audit: reason=\S+ .*app="fc_first"/,
	'broken writer: the record did not go (only) to the server log');
like(slurp_file($node->logfile, $offset), qr/fc_break: the test refuses this access_log row/,
	"broken writer: the writer's error is in the server log");
# the cause goes away: the queued record is written, decrypting resumes
$node->safe_psql('fc', 'DELETE FROM public.fc_break');
logged('fc_first', 'broken writer, repaired: the queued record');
my $resumed = 0;
foreach (1 .. 60 * 4)
{
	($out, $err) = owner_decrypt('fc_resumed');
	if (defined $out && $out eq $plain)
	{
		$resumed = 1;
		last;
	}
	select(undef, undef, undef, 0.25);
}
ok($resumed, 'broken writer, repaired: decrypting works again');
logged('fc_resumed', 'broken writer, repaired: a new decrypt');
is(audit_query('SELECT customer_vault.verify_access_log() IS NULL'), 't', 'repaired: the chain verifies');

$node->stop;
done_testing();
