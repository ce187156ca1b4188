# protect_column on a distributed table owned by another role (CITUS14,
# issue 16).  Citus runs a transaction's commands on a shard as one role:
# once a role changed a shard, another role's command there fails ("cannot
# perform query on placements that were modified in this transaction by a
# different user") or waits for the first one's locks (a distributed
# deadlock).  The conversion of a distributed table makes the protect trigger
# as the extension's owner and rewrites the rows as the table's owner, so it
# is refused at once, before any change, unless the extension's owner
# protects a table it owns; the way out (the hint) is protecting the local
# table first and distributing it afterwards, which works for a table of
# another role.  On the old code: a distributed deadlock (varchar column),
# "modified in this transaction by a different user" (text column).
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
CREATE ROLE regress_owner LOGIN IN ROLE customer_vault_admin;
GRANT CREATE ON SCHEMA public TO regress_owner;
CREATE TABLE owned (id bigint PRIMARY KEY, email varchar(200), phone text);
SELECT create_distributed_table('owned', 'id');
INSERT INTO owned SELECT g, 'c14-mail-' || g || '@example.org', 'c14-phone-' || g FROM generate_series(1, 100) g;
ALTER TABLE owned OWNER TO regress_owner;
CREATE TABLE local_first (id bigint PRIMARY KEY, email text);
INSERT INTO local_first SELECT g, 'c14-mail-' || g || '@example.org' FROM generate_series(1, 100) g;
ALTER TABLE local_first OWNER TO regress_owner;
});

my $refusal = qr/ERROR:  cannot protect a column of distributed table (public\.)?owned owned by role regress_owner as role (postgres|regress_owner)/;
for my $case (
	[ 'a superuser, varchar column and a new blind index column', '', q{'owned', 'email', 'k', 'id', 'email_bidx'} ],
	[ 'a superuser, text column', '', q{'owned', 'phone', 'k'} ],
	[ 'the table\'s owner', 'SET ROLE regress_owner;', q{'owned', 'phone', 'k', 'id'} ])
{
	my ($what, $set, $args) = @$case;
	my ($rc, $out, $err) = $coord->psql('postgres', "$set SELECT customer_vault.protect_column($args)");
	isnt($rc, 0, "$what: refused");
	like($err, $refusal, "$what: the error names the table, its owner and the caller");
	like($err, qr/DETAIL:  On Citus the shards are converted in one transaction by the extension's owner/, "$what: says why");
	like($err, qr/HINT:  Protect the column before distributing the table/, "$what: with the way out");
	unlike($err, qr/different user|deadlock/, "$what: not Citus's error or a deadlock");
}
is($coord->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM customer_vault.protected_columns) || '/'
       || (SELECT count(*) FROM pg_attribute WHERE attrelid = 'owned'::regclass AND attname = 'email_bidx') || '/'
       || (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'owned'::regclass AND attname = 'email') || '/'
       || (SELECT count(*) FILTER (WHERE customer_vault.is_sealed(phone)) FROM owned)}),
	'0/0/character varying(200)/0', 'nothing registered or changed by the refusals');
is($coord->safe_psql('postgres', q{SELECT string_agg(DISTINCT result, ',') FROM run_command_on_placements('owned',
  $$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%1$s'::regclass AND NOT tgisinternal$$)}),
	'0', 'no trigger on any shard');

# the hint's way: protect the local table of another role, then distribute it
my ($rc, $out, $err) = $coord->psql('postgres', q{
SET client_min_messages = warning;
SELECT customer_vault.protect_column('local_first', 'email', 'k', 'id', 'email_bidx');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('local_first', 'id');
SELECT truncate_local_data_after_distributing_table('local_first');});
is($rc, 0, 'protecting the local table of another role, then distributing it, works') or diag($err);
is($coord->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE customer_vault.is_sealed(email)) || '/' || count(*) FILTER (WHERE email_bidx IS NOT NULL)
       || '/' || count(*) FROM local_first}),
	'100/100/100', 'every value on the shards is sealed, with its blind index');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM local_first_decrypted WHERE email = 'c14-mail-' || id || '@example.org'}),
	'100', 'the decrypted view reads every value back');
is($coord->safe_psql('postgres', q{
SET ROLE regress_owner;
INSERT INTO local_first (id, email) VALUES (201, 'c14-new@example.org');
UPDATE local_first SET email = 'c14-changed@example.org' WHERE id = 5;
SELECT count(*) FILTER (WHERE customer_vault.is_sealed(email)) FROM local_first WHERE id IN (5, 201)}),
	'2', 'the owner\'s later writes are sealed on the shards');
is($coord->safe_psql('postgres', q{
SELECT string_agg(DISTINCT result, ',') || ' ' || count(*) FROM run_command_on_placements('local_first',
  $$SELECT (SELECT count(*) FROM pg_trigger WHERE tgrelid = '%1$s'::regclass AND tgfoid = 'customer_vault._protect_trigger()'::regprocedure)
           || ':' || (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = '%1$s'::regclass)$$)}),
	'1:regress_owner 8', 'every shard has the protect trigger and the owner');

done_testing();
