# lookup(tbl, col, plaintext, distribution_value) under the caller's output
# settings (LOOKDATE).  The distribution value is a parameter of the
# column's type in both of lookup()'s queries, which Citus routes to one
# shard: Citus deparses the parameter as text with the coordinator
# session's settings and the worker parses it with its own (DateStyle
# 'ISO, MDY').  With the caller's DateStyle 'SQL, DMY', 2 January went out
# as 02/01/2026 and the worker read 1 February: lookup() found another
# day's row or none; with extra_float_digits = -3 a float8 value went out
# rounded (0.30000000000000004 as 0.3): the row of 0.3, not of the value.
# Now both routed statements run with the output settings pinned
# (CvPinOutputSettings) and return the value's row whatever the caller set.
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
-- distributed by a date; the same address every day, id = the day's number
CREATE TABLE visits (day date NOT NULL, id bigint NOT NULL, email text, PRIMARY KEY (day, id));
SELECT create_distributed_table('visits', 'day');
SELECT customer_vault.protect_column('visits', 'email', 'k', 'id', 'email_bidx');
INSERT INTO visits SELECT DATE '2025-12-31' + g, g, 'same@example.org' FROM generate_series(1, 90) g;
-- a key of the distribution column alone (the rows are named by it)
CREATE TABLE days (day date PRIMARY KEY, tag text NOT NULL, email text);
SELECT create_distributed_table('days', 'day');
SELECT customer_vault.protect_column('days', 'email', 'k', 'tag', 'email_bidx');
INSERT INTO days SELECT DATE '2025-12-31' + g, 'day' || g, 'same@example.org' FROM generate_series(1, 90) g;
-- distributed by a float8
CREATE TABLE measures (f float8 NOT NULL, id bigint NOT NULL, email text, PRIMARY KEY (f, id));
SELECT create_distributed_table('measures', 'f');
SELECT customer_vault.protect_column('measures', 'email', 'k', 'id', 'email_bidx');
INSERT INTO measures VALUES (0.1::float8 + 0.2::float8, 1, 'same@example.org'), (0.3, 2, 'same@example.org');
CREATE ROLE lookup_writer LOGIN IN ROLE customer_vault_writer;
GRANT SELECT (day, id) ON visits TO lookup_writer;
GRANT SELECT (day, tag) ON days TO lookup_writer;
GRANT SELECT (f, id) ON measures TO lookup_writer;
CREATE ROLE lookup_reader LOGIN IN ROLE customer_vault_reader;
GRANT SELECT ON visits, days, measures TO lookup_reader;
});

# one lookup() call under the given settings: (its result, the number of
# remote SELECTs issued, the caller's settings afterwards)
sub lookup_as
{
	my ($role, $set, $call) = @_;
	my ($rc, $out, $err) = $coord->psql('postgres', qq{
SET ROLE $role;
$set
SET citus.log_remote_commands = on;
SET client_min_messages = log;
SELECT coalesce(string_agg(l, ',' ORDER BY l), '-') FROM $call l;
RESET client_min_messages;
SELECT current_setting('DateStyle') || '/' || current_setting('extra_float_digits')});
	diag($err) if $rc != 0;
	my $remote = () = $err =~ /issuing SELECT/g;
	return ($rc == 0 ? $out : "error: $err", $remote);
}

my $dmy = q{SET DateStyle = 'SQL, DMY';};
my $efd = q{SET extra_float_digits = -3;};
for my $role (qw(postgres lookup_writer lookup_reader))
{
	my ($out, $remote) = lookup_as($role, '', q{customer_vault.lookup('visits', 'email', 'same@example.org', DATE '2026-01-02')});
	is($out, "2\nISO, MDY/1", "$role: default DateStyle: 2 January's row");

	($out, $remote) = lookup_as($role, $dmy, q{customer_vault.lookup('visits', 'email', 'same@example.org', DATE '2026-01-02')});
	is($out, "2\nSQL, DMY/1", "$role: DateStyle SQL, DMY: 2 January's row (not 1 February's), the caller's DateStyle kept");
	is($remote, 2, "$role: DateStyle SQL, DMY: one remote query each");

	($out) = lookup_as($role, $dmy, q{customer_vault.lookup('visits', 'email', 'same@example.org', DATE '2026-02-01')});
	is($out, "32\nSQL, DMY/1", "$role: DateStyle SQL, DMY: 1 February's row");

	($out) = lookup_as($role, $dmy, q{customer_vault.lookup('visits', 'email', 'same@example.org', '13/01/2026'::text)});
	is($out, "13\nSQL, DMY/1", "$role: DateStyle SQL, DMY: a text value read as the caller reads it: 13 January");

	($out) = lookup_as($role, $dmy, q{customer_vault.lookup('days', 'email', 'same@example.org', DATE '2026-01-02')});
	is($out, "day2\nSQL, DMY/1", "$role: a key of the date alone, DateStyle SQL, DMY: 2 January's row");

	($out) = lookup_as($role, q{SET DateStyle = 'German, DMY';}, q{customer_vault.lookup('days', 'email', 'same@example.org', DATE '2026-03-05')});
	is($out, "day64\nGerman, DMY/1", "$role: a key of the date alone, DateStyle German: 5 March's row");

	($out) = lookup_as($role, '', q{customer_vault.lookup('measures', 'email', 'same@example.org', 0.1::float8 + 0.2::float8)});
	is($out, "1\nISO, MDY/1", "$role: default extra_float_digits: the row of 0.1 + 0.2");

	($out, $remote) = lookup_as($role, $efd, q{customer_vault.lookup('measures', 'email', 'same@example.org', 0.1::float8 + 0.2::float8)});
	is($out, "1\nISO, MDY/-3", "$role: extra_float_digits -3: the row of 0.1 + 0.2 (not of 0.3), the caller's setting kept");

	($out) = lookup_as($role, $efd, q{customer_vault.lookup('measures', 'email', 'same@example.org', 0.3::float8)});
	is($out, "2\nISO, MDY/-3", "$role: extra_float_digits -3: the row of 0.3");
}

done_testing();
