# Subject keys in a distributed INSERT ... SELECT (part CITUS, session 22):
# encrypt_for_subject evaluated on a worker (Citus pushes the INSERT ...
# SELECT between colocated tables down to the shards) for a subject without
# a key wrote the key to the reference table data_keys from the shard task:
# Citus's "cannot execute a distributed query from a query on a shard" (or a
# wait on the insert, as seen in session 1); now it fails at once with 55000
# and a hint, nothing written.  Keys made on the coordinator first are used on the
# workers, and a single-row VALUES still makes a new key (on the coordinator).
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
CREATE TABLE src (id bigint PRIMARY KEY, subject text NOT NULL, note text);
SELECT create_distributed_table('src', 'id');
CREATE TABLE dst (id bigint PRIMARY KEY, v customer_vault.encrypted_text);
SELECT create_distributed_table('dst', 'id', colocate_with => 'src');
INSERT INTO src SELECT g, 'subj' || (g % 4), 'note-' || g FROM generate_series(1, 40) g;
});
my $keys = q{SELECT count(*) FROM customer_vault.data_keys WHERE subject IS NOT NULL};
is($coord->safe_psql('postgres', $keys), '0', 'no subject key yet');

# new subjects: refused on the workers at once (a statement_timeout guards the old wait)
my ($ret, $out, $err) = $coord->psql('postgres', q{
SET statement_timeout = '60s';
INSERT INTO dst SELECT id, customer_vault.encrypt_for_subject(subject, note) FROM src});
isnt($ret, 0, 'a distributed INSERT ... SELECT making new subject keys fails');
like($err, qr/a new subject key must be made on the Citus coordinator/, 'with the error that says where keys are made');
like($err, qr/HINT:\s+Make the new subjects' keys on the coordinator first/, 'and how');
unlike($err, qr/deadlock|statement timeout/, 'not a deadlock, not a timeout');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM dst') . '/' . $coord->safe_psql('postgres', $keys),
	'0/0', 'nothing written, no key made');

# the keys made on the coordinator first: the same statement goes through on the workers
$coord->safe_psql('postgres', q{
SELECT count(customer_vault.encrypt_for_subject(s, '')) FROM unnest(ARRAY['subj0', 'subj1', 'subj2', 'subj3']) s;
INSERT INTO dst SELECT id, customer_vault.encrypt_for_subject(subject, note) FROM src;
INSERT INTO dst VALUES (100, customer_vault.encrypt_for_subject('newsubj', 'note-100'));
});
is($coord->safe_psql('postgres', $keys), '5', 'five subject keys: four made first, one by VALUES on the coordinator');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM dst d WHERE customer_vault.decrypt(d.v) = 'note-' || d.id}),
	'41', 'every value opens on the workers');

done_testing();
