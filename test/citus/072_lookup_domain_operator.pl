# Review 24, HIGH-2 on Citus: lookup()'s four-argument form and the routed
# purge batches compare the distribution column with its type's own equality
# operator and no other.  The distribution columns are domains: one over
# citext (whose "=" lives in schema ext, where everyone may create), one over
# bigint (pg_catalog's "=").  An attacker's "=" on exactly each domain, in
# ext, on every node, is taken by a plain comparison of the domain (checked
# first), but never by lookup() nor by purge(): no notice of it, the rows
# found and purged as before.  lookup() with a bigint-domain distribution
# value still runs each of its queries on one shard.  For the citext domain
# the column is cast to citext (the exact match of citext's own operator),
# which Citus cannot prune on: the queries go to every shard, and still return
# only the rows of that distribution value.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use CitusTest;

my ($coord, $w1, $w2) = new_citus_cluster();
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
SELECT customer_vault.citus_setup();
SELECT customer_vault.create_key('k');
CREATE SCHEMA ext;
CREATE EXTENSION citext SCHEMA ext;
GRANT USAGE, CREATE ON SCHEMA ext TO PUBLIC;
CREATE SCHEMA app;
GRANT USAGE ON SCHEMA app TO PUBLIC;
CREATE DOMAIN app.tenant_code AS ext.citext;
CREATE DOMAIN app.tenant_no AS bigint;
CREATE ROLE attacker;
CREATE ROLE lookup_writer LOGIN IN ROLE customer_vault_writer;
CREATE TABLE c_orders (tenant app.tenant_code NOT NULL, id bigint NOT NULL, email text, subject text,
                       at timestamptz NOT NULL, PRIMARY KEY (tenant, id));
SELECT create_distributed_table('c_orders', 'tenant');
SELECT customer_vault.protect_column('c_orders', 'email', 'k', 'id', 'email_bidx');
INSERT INTO c_orders SELECT 'T' || t, g, 'o' || g || '@example.org', 's' || (g % 5), now() - (g || ' days')::interval + interval '1 hour'
  FROM generate_series(1, 12) t, generate_series(1, 30) g;
CREATE TABLE n_orders (tenant app.tenant_no NOT NULL, id bigint NOT NULL, email text, subject text,
                       at timestamptz NOT NULL, PRIMARY KEY (tenant, id));
SELECT create_distributed_table('n_orders', 'tenant');
SELECT customer_vault.protect_column('n_orders', 'email', 'k', 'id', 'email_bidx');
INSERT INTO n_orders SELECT t, g, 'o' || g || '@example.org', 's' || (g % 5), now() - (g || ' days')::interval + interval '1 hour'
  FROM generate_series(1, 12) t, generate_series(1, 30) g;
GRANT SELECT (tenant, id) ON c_orders, n_orders TO lookup_writer;
SELECT customer_vault.set_retention('c_orders', 'at', '10 days', 'delete', 'subject');
SELECT customer_vault.set_retention('n_orders', 'at', '10 days', 'delete', 'subject');
});

# the remote commands of one lookup() call: (result, owner's queries, caller's queries, stderr)
sub routed
{
	my ($role, $call) = @_;
	my ($rc, $out, $err) = $coord->psql('postgres', qq{
SET ROLE $role;
SET citus.log_remote_commands = on;
SET client_min_messages = log;
SELECT string_agg(l, ',' ORDER BY l) FROM $call l});
	my @lines = split /\n/, $err;
	my @owner = grep { /issuing SELECT/ && /email_bidx/ } @lines;
	my @caller = grep { /issuing SELECT DISTINCT/ } @lines;
	diag($err) if $rc != 0;
	return ($out, scalar(@owner), scalar(@caller), $err);
}

# before any attacker: the citext domain's lookup
{
	my ($out, $owner, $caller, $err) =
	  routed('postgres', q{customer_vault.lookup('c_orders', 'email', 'o7@example.org', 'T3'::app.tenant_code)});
	is("$out $owner/$caller", '7 1/1', 'citext domain, no attacker yet: the row, each query on one shard');
}

# the attacker's "=" on each domain, in ext, on every node (its own objects)
my $attack = q{
SET citus.enable_ddl_propagation = off;
SET ROLE attacker;
CREATE FUNCTION ext.code_eq(app.tenant_code, app.tenant_code) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'attacker operator ran as %', current_user;
    RETURN pg_catalog.lower($1::pg_catalog.text) OPERATOR(pg_catalog.=) pg_catalog.lower($2::pg_catalog.text);
END $$;
CREATE OPERATOR ext.= (LEFTARG = app.tenant_code, RIGHTARG = app.tenant_code, FUNCTION = ext.code_eq);
CREATE FUNCTION ext.no_eq(app.tenant_no, app.tenant_no) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'attacker operator ran as %', current_user;
    RETURN $1::pg_catalog.int8 OPERATOR(pg_catalog.=) $2::pg_catalog.int8;
END $$;
CREATE OPERATOR ext.= (LEFTARG = app.tenant_no, RIGHTARG = app.tenant_no, FUNCTION = ext.no_eq);
};
$_->safe_psql('postgres', $attack) for ($coord, $w1, $w2);

# the attacker's operator is there and taken for two values of the domain, on the workers too
my ($rc, $out, $err) = $coord->psql('postgres',
	q{SELECT count(*) FROM c_orders WHERE tenant OPERATOR(ext.=) 'T3'::app.tenant_code});
is($out, '30', 'a plain comparison of the domain finds the rows');
like($err, qr/attacker operator ran as/, 'and runs the attacker\'s operator (the test can see it)');

for my $role (qw(postgres lookup_writer))
{
	my ($out, $owner, $caller, $err) =
	  routed($role, q{customer_vault.lookup('n_orders', 'email', 'o7@example.org', 3::bigint)});
	is("$out $owner/$caller", '7 1/1', "$role: bigint domain: the row of tenant 3, each query on one shard");
	unlike($err, qr/attacker operator ran/, "$role: bigint domain: the attacker's operator not used");
	($out, $owner, $caller, $err) =
	  routed($role, q{customer_vault.lookup('c_orders', 'email', 'o7@example.org', 't3'::text)});
	is("$out $owner/$caller", '7 1/1', "$role: citext domain: the row of tenant T3 (given as 't3'), each query on one shard");
	unlike($err, qr/attacker operator ran/, "$role: citext domain: the attacker's operator not used");
	($out, $owner, $caller, $err) =
	  routed($role, q{customer_vault.lookup('c_orders', 'email', 'o77@example.org', 'T3'::app.tenant_code)});
	is($out, '', "$role: citext domain: no row of another address");
}
# only tenant T3's row: the same address in tenant T4 is not returned twice
is($coord->safe_psql('postgres',
	q{SELECT count(*) FROM customer_vault.lookup('c_orders', 'email', 'o7@example.org', 'T3'::app.tenant_code)}),
	'1', 'citext domain: one row, of that tenant only');

# purge(): routed batches on both tables, the attacker's operator never run
($rc, $out, $err) = $coord->psql('postgres', 'CALL customer_vault.purge(batch_size => 50)');
is($rc, 0, 'purge succeeds') or diag($err);
unlike($err, qr/attacker operator ran/, 'purge: the attacker\'s operator not used');
for my $t (qw(c_orders n_orders))
{
	is($coord->safe_psql('postgres', "SELECT count(*) FROM $t WHERE at < now() - interval '10 days'"),
		'0', "$t: every expired row is gone");
	is($coord->safe_psql('postgres', "SELECT count(*) FROM $t WHERE at >= now() - interval '9 days'"),
		'108', "$t: rows within retention stay (9 per tenant)");
	is($coord->safe_psql('postgres',
		"SELECT status || ' ' || rows_purged FROM customer_vault.purge_log WHERE tbl = 'public.$t'"),
		'done 240', "$t: purge_log done, 240 rows (20 per tenant)");
}

# an operator on exactly (domain, citext), which the bare distribution column
# would take: lookup() refuses (42725) before anything runs
$coord->safe_psql('postgres', q{
SET citus.enable_ddl_propagation = off;
SET ROLE attacker;
CREATE FUNCTION ext.code_eq2(app.tenant_code, ext.citext) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'attacker operator ran as %', current_user;
    RETURN true;
END $$;
CREATE OPERATOR ext.= (LEFTARG = app.tenant_code, RIGHTARG = ext.citext, FUNCTION = ext.code_eq2);
});
($rc, $out, $err) = $coord->psql('postgres',
	q{SELECT * FROM customer_vault.lookup('c_orders', 'email', 'o7@example.org', 'T3'::app.tenant_code)},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  42725: operator ext\.= resolves to another operator for types app\.tenant_code and ext\.citext/,
	'an operator on (domain, citext): lookup() refused with 42725');
unlike($err, qr/attacker operator ran/, 'and the attacker\'s operator not run');

done_testing();
