# protect_column on a table that is already distributed: the protect trigger
# goes to every shard, seals the existing rows there (UPDATE through the
# trigger), a rewrite of every shard leaves no plaintext in the shard files,
# and every shard gets the CHECK; refusals for the distribution column and
# for a coordinator table still holding the rows create_distributed_table
# copied.
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
CREATE TABLE people (id bigint PRIMARY KEY, email varchar(200), phone text, note text);
SELECT create_distributed_table('people', 'id');
INSERT INTO people SELECT g, 'citus2-mail-' || g || '@example.org', 'citus2-phone-' || g, 'n' || g
  FROM generate_series(1, 300) g;
INSERT INTO people VALUES (301, NULL, NULL, 'no values');
CREATE TABLE accounts (acct text PRIMARY KEY, secret text);
SELECT create_distributed_table('accounts', 'acct');
CREATE TABLE leftover (id bigint PRIMARY KEY, secret text);
INSERT INTO leftover SELECT g, 'citus2-left-' || g FROM generate_series(1, 10) g;
SELECT create_distributed_table('leftover', 'id');
});

# refusals
my ($rc, $out, $err) = $coord->psql('postgres', "SELECT customer_vault.protect_column('accounts', 'acct', 'k')");
like($err, qr/column acct is the distribution column of table (public\.)?accounts/, 'the distribution column is refused');
($rc, $out, $err) = $coord->psql('postgres', "SELECT customer_vault.protect_column('leftover', 'secret', 'k', 'id')");
like($err, qr/the coordinator's local table of (public\.)?leftover still holds data/, 'rows left in the coordinator\'s table are refused');
like($err, qr/HINT:.*truncate_local_data_after_distributing_table/, 'with the way out as hint');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM customer_vault.protected_columns'), '0',
	'nothing registered by the refusals');

# the conversion of a distributed table with rows on every worker
$coord->safe_psql('postgres', "SELECT customer_vault.protect_column('people', 'email', 'k', 'id', 'email_bidx')");
$coord->safe_psql('postgres', "SELECT customer_vault.protect_column('people', 'phone', 'k')");
is($coord->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE customer_vault.is_sealed(email)) || '/' || count(*) FILTER (WHERE customer_vault.is_sealed(phone))
       || '/' || count(*) FILTER (WHERE email_bidx IS NOT NULL) || '/' || count(*) FROM people}),
	'300/300/300/301', 'every existing value is sealed on the shards, the blind index filled');
is($coord->safe_psql('postgres', q{SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'people'::regclass AND attname = 'email'}),
	'text', 'the varchar column became text');
is($coord->safe_psql('postgres', q{
SELECT count(*) FROM people_decrypted
 WHERE email = 'citus2-mail-' || id || '@example.org' AND phone = 'citus2-phone-' || id AND note = 'n' || id}),
	'300', 'the decrypted view reads every value back');
is($coord->safe_psql('postgres', "SELECT email IS NULL AND phone IS NULL FROM people_decrypted WHERE id = 301"),
	't', 'NULLs stay NULL');
# every placement: the trigger, both CHECKs
my $pl = $coord->safe_psql('postgres', q{
SELECT string_agg(DISTINCT result, ',') || ' ' || count(*) FROM run_command_on_placements('people',
  $$SELECT (SELECT count(*) FROM pg_trigger WHERE tgrelid = '%1$s'::regclass
              AND tgfoid = 'customer_vault._protect_trigger()'::regprocedure AND tgenabled = 'O')
           || ':' || (SELECT string_agg(regexp_replace(conname, '_[0-9]+$', ''), ';' ORDER BY conname) FROM pg_constraint
                       WHERE conrelid = '%1$s'::regclass AND conname LIKE 'cv_sealed_%%')$$)});
is($pl, '1:cv_sealed_2;cv_sealed_3 8', 'every shard has the protect trigger and the CHECKs');
# later writes through the coordinator are sealed on the shards
$coord->safe_psql('postgres', q{
INSERT INTO people (id, email, phone) VALUES (302, 'citus2-mail-302@example.org', 'citus2-phone-302');
UPDATE people SET email = 'citus2-mail-' || id || '@example.org' WHERE id = 7;
});
is($coord->safe_psql('postgres',
	"SELECT count(*) FILTER (WHERE customer_vault.is_sealed(email) AND customer_vault.is_sealed(phone)) FROM people WHERE id IN (7, 302)"),
	'2', 'rows written afterwards are sealed');
is($coord->safe_psql('postgres',
	"SELECT string_agg(l, ',') FROM customer_vault.lookup('people', 'email', 'citus2-mail-250\@example.org') l"),
	'250', 'the blind-index lookup finds a converted row');
($rc, $out, $err) = $coord->psql('postgres', q{
SET citus.enable_unsafe_triggers = on;
ALTER TABLE people DISABLE TRIGGER cv_protect;
INSERT INTO people (id, email) VALUES (400, 'citus2-unsealed');});
like($err, qr/cv_sealed_2/, 'a shard refuses an unsealed value (its CHECK)');

$_->safe_psql('postgres', 'CHECKPOINT') for ($coord, $w1, $w2);
for my $n ($w1, $w2)
{
	my $files = $n->safe_psql('postgres', q{
SET citus.override_table_visibility = off;
SELECT string_agg(pg_relation_filepath(c.oid), ' ')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relname ~ '^people_' AND c.relkind IN ('r', 'i', 't')
    OR c.oid IN (SELECT reltoastrelid FROM pg_class WHERE relname ~ '^people_[0-9]+$')});
	my ($plain, $bytes, $nfiles) = (0, 0, 0);
	for my $f (split / /, $files)
	{
		next unless -e $n->data_dir . "/$f";
		my $data = slurp_file($n->data_dir . "/$f");
		$nfiles++;
		$bytes += length $data;
		$plain++ if $data =~ /citus2-(mail|phone)-/;
	}
	ok($bytes > 0, $n->name . ": the shard files hold data ($nfiles files)");
	is($plain, 0, $n->name . ': no plaintext in the shards, their indexes or TOAST');
}

done_testing();
