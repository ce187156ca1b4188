# forget_subject and export_subject through FK children that are Citus
# distributed tables (part CITUS, issue 16): the walk's kept statements (the
# keys a parent gives its children, the children's DELETE or UPDATE by those
# keys, the counts) were prepared with generic plans, which Citus cannot plan
# over several shards ("could not create distributed plan"): both failed for
# any registered distributed table with a distributed FK child.  Now every
# statement of the walk on a Citus table is a custom plan (fg_prepare).
# Here: a registered distributed parent (customers), a co-located child
# (orders, FK NO ACTION: the walk deletes it first) and a grandchild (lines,
# ON DELETE CASCADE), all distributed by tenant; several subjects in one
# session (the kept plans run again).  (A child kept and anonymized through
# ON DELETE SET NULL cannot be made: Citus refuses SET NULL in a foreign key
# that includes the distribution column.)
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
CREATE TABLE customers (tenant bigint NOT NULL, id bigint NOT NULL, subject text NOT NULL, note text,
  PRIMARY KEY (tenant, id));
SELECT create_distributed_table('customers', 'tenant');
CREATE TABLE orders (tenant bigint NOT NULL, oid bigint NOT NULL, cust bigint NOT NULL, item text,
  PRIMARY KEY (tenant, oid), FOREIGN KEY (tenant, cust) REFERENCES customers (tenant, id));
SELECT create_distributed_table('orders', 'tenant', colocate_with => 'customers');
CREATE TABLE lines (tenant bigint NOT NULL, lid bigint NOT NULL, oid bigint NOT NULL, qty int,
  PRIMARY KEY (tenant, lid), FOREIGN KEY (tenant, oid) REFERENCES orders (tenant, oid) ON DELETE CASCADE);
SELECT create_distributed_table('lines', 'tenant', colocate_with => 'customers');
INSERT INTO customers SELECT g % 7, g, 's' || (g % 5), 'n' || g FROM generate_series(1, 40) g;
INSERT INTO orders SELECT c.tenant, c.id * 10 + k, c.id, 'i' || k FROM customers c, generate_series(1, 3) k;
INSERT INTO lines SELECT o.tenant, o.oid * 10 + k, o.oid, k FROM orders o, generate_series(1, 2) k;
SELECT customer_vault.register_subject_table('customers', 'subject');
});

# the rows of subject $s in each table, read on the shards themselves (through
# the placements, not the coordinator's planner)
sub shard_rows
{
	my ($tbl, $s) = @_;
	my $where = {
		customers => qq{subject = '$s'},
		orders    => qq{cust IN (SELECT g FROM generate_series(1, 40) g WHERE 's' || mod(g, 5) = '$s')},
		lines     => qq{oid / 10 IN (SELECT g FROM generate_series(1, 40) g WHERE 's' || mod(g, 5) = '$s')},
	}->{$tbl};
	return $coord->safe_psql('postgres', qq{
SELECT sum(result::bigint) FROM run_command_on_placements('$tbl', \$\$SELECT count(*) FROM %s WHERE $where\$\$)});
}

for my $s (qw(s1 s2 s3 s4 s0))
{
	is(shard_rows('customers', $s) . '/' . shard_rows('orders', $s) . '/' . shard_rows('lines', $s),
		'8/24/48', "$s: 8 customers, 24 orders, 48 lines on the shards");
}

# ---- export: every level, several subjects in one session
my $exp = $coord->safe_psql('postgres', q{
SELECT s, jsonb_array_length(e -> 'tables' -> 'public.customers' -> 'rows') || '/'
       || jsonb_array_length(e -> 'tables' -> 'public.orders' -> 'rows') || '/'
       || jsonb_array_length(e -> 'tables' -> 'public.lines' -> 'rows')
  FROM (VALUES ('s1'), ('s2'), ('s3')) v(s), LATERAL (SELECT customer_vault.export_subject(s) e) x ORDER BY s});
is($exp, "s1|8/24/48\ns2|8/24/48\ns3|8/24/48", 'export_subject: each subject\'s rows of the parent, the child and the grandchild');

# ---- erasure: two subjects in one session (the kept custom plans run twice)
my $r = $coord->safe_psql('postgres', q{
SELECT (r -> 'tables' -> 'public.customers' ->> 'deleted') || '/' || (r -> 'tables' -> 'public.orders' ->> 'deleted')
       || '/' || (r -> 'tables' -> 'public.lines' ->> 'deleted')
  FROM (VALUES (1, 's1'), (2, 's2')) v(n, s), LATERAL (SELECT customer_vault.forget_subject(s, 'request') r) x ORDER BY n});
is($r, "8/24/48\n8/24/48", 'forget_subject s1 then s2 in one session: the receipts count 8, 24 and 48 rows');
for my $s (qw(s1 s2))
{
	is(shard_rows('customers', $s) . '/' . shard_rows('orders', $s) . '/' . shard_rows('lines', $s),
		'0/0/0', "$s: no row left on any shard of any of the three tables");
	is($coord->safe_psql('postgres', qq{SELECT customer_vault.was_forgotten('$s')}), 't', "$s: the receipt says erased");
}
for my $s (qw(s3 s4 s0))
{
	is(shard_rows('customers', $s) . '/' . shard_rows('orders', $s) . '/' . shard_rows('lines', $s),
		'8/24/48', "$s: untouched");
}
is($coord->safe_psql('postgres', q{SELECT (SELECT count(*) FROM customers) || '/' || (SELECT count(*) FROM orders) || '/' || (SELECT count(*) FROM lines)}),
	'24/72/144', 'the totals through the coordinator: 3 of 5 subjects left');

done_testing();
