# Every lookup() call reaches the server log, which the caller's ROLLBACK does
# not undo (blind_index_lookups is rolled back with the transaction): one
# parseable line per call, with role, table, column and the number of matches,
# never the plaintext looked for, the statement or its context.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('lookup_log', key => random_root_key());

$node->safe_psql(
	'postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
CREATE ROLE "regress app" LOGIN IN ROLE customer_vault_writer;
RESET client_min_messages;
SELECT customer_vault.create_key('k');
CREATE TABLE "my customers" (id int PRIMARY KEY, email text);
INSERT INTO "my customers" VALUES (1, 'ada@example.com'), (2, 'bob@example.com');
SELECT customer_vault.protect_column('"my customers"', 'email', 'k', 'id', 'email_bidx');
GRANT SELECT (id, email), INSERT ON "my customers" TO "regress app";
});

my $offset = -s $node->logfile;
my ($ret, $out, $err) = $node->psql(
	'postgres', q{
SET ROLE "regress app";
BEGIN;
SELECT * FROM customer_vault.lookup('"my customers"', 'email', 'ada@example.com');
SELECT count(*) FROM customer_vault.lookup('"my customers"', 'email', 'nobody-secret@example.com');
ROLLBACK;
});
is($ret, 0, 'lookups run');
is($out, "1\n0", 'the first lookup finds row 1, the second nothing');

is($node->safe_psql('postgres', 'SELECT count(*) FROM customer_vault.blind_index_lookups'),
	'0', 'the rolled-back transaction left no row in blind_index_lookups');

my $log = slurp_file($node->logfile, $offset);
my @lines = grep { /customer_vault lookup:/ } split /\n/, $log;
is(scalar @lines, 2, 'two lookup lines in the server log');
like($lines[0],
	qr/LOG:  customer_vault lookup: role="regress app" table=public\."my customers" column=email matches=1$/,
	'first line: role, table, column, matches');
like($lines[1], qr/ matches=0$/, 'second line: no match');
# (the TAP cluster logs every statement: only the lookup lines are checked)
unlike(join("\n", @lines), qr/example\.com|nobody-secret/, 'no plaintext in the lookup lines');
my @all = split /\n/, $log;
my $attached = 0;
for my $i (0 .. $#all - 1)
{
	$attached++
	  if $all[$i] =~ /customer_vault lookup:/
	  && $all[ $i + 1 ] =~ /^\s*(STATEMENT|CONTEXT|DETAIL):/;
}
is($attached, 0, 'neither statement nor context logged with the lookup lines');

$node->stop;
done_testing();
