# Review rev-citus (findings 1 to 3, HIGH; part CITUSREV):
#  1. maintenance and consent writes under the caller's DateStyle: Citus
#     deparses constants and parameters with the coordinator's settings, the
#     workers parse them with theirs ('ISO, MDY').  Under 'SQL, DMY' a purge
#     deleted rows still inside retention on the shards (2 January sent as
#     02/01, read as 1 February), grant_consent stored another expiry in the
#     workers' copies of consent_state.  Now the output settings are pinned
#     (CvPinOutputSettings) and the cutoff written in ISO 8601.
#  2. forget_subject at top level on a distributed table under FORCE ROW
#     LEVEL SECURITY: row_security = off did not reach the workers (Citus
#     sends SET LOCAL only in what it takes for a multi-statement
#     transaction), the owner's policy hid the subject's rows there, the
#     receipt said erased.  Now the setting reaches them in every context
#     (a DO block), and forget_subject/export_subject refuse such a table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use CitusTest;

my ($coord, $w1, $w2) = new_citus_cluster();

# ---- 1. purge under DateStyle 'SQL, DMY' (as of 2026-12-02 12:00 UTC, keep
# 334 days: the cutoff 2026-01-02 12:00, day 2 of month 1)
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
SELECT customer_vault.citus_setup();
CREATE TABLE ds (id bigint PRIMARY KEY, at timestamptz NOT NULL);
SELECT create_distributed_table('ds', 'id');
INSERT INTO ds SELECT g, timestamptz '2026-12-02 12:00:00+00' - g * interval '1 day' FROM generate_series(1, 400) g;
CREATE TABLE dt (id bigint PRIMARY KEY, at date NOT NULL);
SELECT create_distributed_table('dt', 'id');
INSERT INTO dt SELECT g, date '2026-12-02' - g FROM generate_series(1, 400) g;
SELECT customer_vault.set_retention('ds', 'at', '334 days');
SELECT customer_vault.set_retention('dt', 'at', '334 days');
-- routed: a date distribution column (keep 30 days: 2026-11-02, read as 11 February)
CREATE TABLE dd (d date NOT NULL, id bigint NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (d, id));
SELECT create_distributed_table('dd', 'd');
INSERT INTO dd SELECT date '2026-01-01' + (g % 28), g, timestamptz '2026-12-02 12:00:00+00' - (g % 60) * interval '1 day'
  FROM generate_series(1, 600) g;
SELECT customer_vault.set_retention('dd', 'at', '30 days');
});
is($coord->safe_psql('postgres', q{SET DateStyle = 'SQL, DMY';
SELECT string_agg(tbl || ' ' || expired || ' ' || to_purge, ', ' ORDER BY tbl::text)
  FROM customer_vault.purge_preview(as_of => '2026-12-02 12:00:00+00')}),
	'dd 290 290, ds 66 66, dt 66 66', 'purge_preview under SQL, DMY counts the rows past retention on the shards');
$coord->safe_psql('postgres', q{SET DateStyle = 'SQL, DMY';
CALL customer_vault.purge(batch_size => 50, as_of => '2026-12-02 12:00:00+00')});
is($coord->safe_psql('postgres', q{SELECT min(id) || ' ' || max(id) || ' ' || count(*) FROM ds}),
	'1 334 334', 'ds: exactly the rows inside retention are left (the limit kept)');
is($coord->safe_psql('postgres', q{SELECT min(id) || ' ' || max(id) || ' ' || count(*) FROM dt}),
	'1 334 334', 'dt (date): exactly the rows inside retention are left');
is($coord->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE at < timestamptz '2026-11-02 12:00:00+00') || ' ' || count(*) FROM dd}),
	'0 310', 'dd (routed by a date): every expired row purged, the others left');
is($coord->safe_psql('postgres', q{SELECT string_agg(tbl || ' ' || status || ' ' || rows_purged, ', ' ORDER BY tbl::text) FROM customer_vault.purge_log}),
	'public.dd done 290, public.ds done 66, public.dt done 66', 'purge_log: the rows purged');

# ---- consent writes to the reference tables under 'SQL, DMY'
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'sql_standard';
SELECT customer_vault.define_purpose('news', 'consent', NULL, interval '1 year 400 days 3 hours');
SELECT customer_vault.define_purpose('mail', 'consent');
SELECT customer_vault.grant_consent('s1', 'news', '{"form": "a"}', '2027-01-05 00:00:00+00');
SELECT customer_vault.grant_consent('s2', 'mail', '{"form": "a"}', '2027-03-04 05:06:07.891234+00');
SELECT customer_vault.withdraw_consent('s2', 'mail');
SELECT customer_vault.create_key('k');
SELECT customer_vault.encrypt_for_subject('s3', 'x') IS NOT NULL;
SELECT customer_vault.shred_subject('s3');
});
my $q_consent = q{SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC';
SELECT string_agg(subject || ' ' || purpose || ' ' || coalesce(valid_until::text, '-') || ' ' || granted_at::date
                  || ' ' || coalesce(withdrawn_at::date::text, '-'), ', ' ORDER BY subject)
  FROM customer_vault.consent_state};
my $coord_consent = $coord->safe_psql('postgres', $q_consent);
like($coord_consent, qr/^s1 news 2027-01-05 00:00:00\+00 \S+ -, s2 mail 2027-03-04 05:06:07.891234\+00 \S+ \S+$/,
	'coordinator: the expiries given');
my $q_purpose = q{SET IntervalStyle = 'postgres'; SELECT consent_valid_for FROM customer_vault.purposes WHERE purpose = 'news'};
my $q_keys = q{SET DateStyle = 'ISO'; SET TimeZone = 'UTC';
SELECT string_agg(coalesce(name, 'subject') || ' ' || created_at::date || ' ' || coalesce(destroyed_at::date::text, '-'), ', ' ORDER BY id) FROM customer_vault.data_keys};
is($coord->safe_psql('postgres', $q_purpose), '1 year 400 days 03:00:00', 'coordinator: the consent lifetime given');
my $coord_keys = $coord->safe_psql('postgres', $q_keys);
for my $n ($w1, $w2)
{
	is($n->safe_psql('postgres', $q_consent), $coord_consent, $n->name . ': the same consent state as the coordinator');
	is($n->safe_psql('postgres', $q_purpose), '1 year 400 days 03:00:00', $n->name . ': the same consent lifetime');
	is($n->safe_psql('postgres', $q_keys), $coord_keys, $n->name . ': the same key times');
}

# ---- 2. forget_subject and export_subject on a FORCE RLS distributed table
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE ROLE regress_owner LOGIN;
CREATE TABLE forced (id bigint PRIMARY KEY, subject text NOT NULL, note text);
SELECT create_distributed_table('forced', 'id');
INSERT INTO forced SELECT g, 's' || (g % 5), 'n' || g FROM generate_series(1, 40) g;
ALTER TABLE forced OWNER TO regress_owner;
ALTER TABLE forced ENABLE ROW LEVEL SECURITY;
ALTER TABLE forced FORCE ROW LEVEL SECURITY;
CREATE POLICY hide_s1 ON forced USING (subject <> 's1');
SELECT customer_vault.register_subject_table('forced', 'subject');
});
my ($ret, $out, $err) = $coord->psql('postgres', q{SELECT customer_vault.forget_subject('s1', 'request')});
isnt($ret, 0, 'forget_subject in autocommit on a FORCE RLS distributed table fails');
like($err, qr/cannot reach every row of the subject in Citus table public\.forced: its owner is under FORCE ROW LEVEL SECURITY/,
	'it says why');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM forced WHERE subject = 's1'}), '8', 'no row of s1 deleted');
is($coord->safe_psql('postgres', q{SELECT customer_vault.was_forgotten('s1')}), 'f', 'no receipt claims the erasure');
($ret, $out, $err) = $coord->psql('postgres', q{BEGIN; SELECT customer_vault.forget_subject('s1', 'request'); COMMIT;});
like($err, qr/cannot reach every row of the subject in Citus table public\.forced/, 'the same inside BEGIN');
($ret, $out, $err) = $coord->psql('postgres', q{SELECT customer_vault.export_subject('s1')});
like($err, qr/cannot reach every row of the subject in Citus table public\.forced/, 'export_subject refuses it too');

# shards forced by hand (the coordinator's table not): refused before any
# statement (0A000, test 097; before: 42501 from a shard) instead of hiding rows
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
ALTER TABLE forced NO FORCE ROW LEVEL SECURITY;
SELECT run_command_on_placements('forced', 'ALTER TABLE %s FORCE ROW LEVEL SECURITY');
});
($ret, $out, $err) = $coord->psql('postgres', q{SELECT customer_vault.forget_subject('s1', 'request')});
isnt($ret, 0, 'forget_subject in autocommit fails on the forced shards');
like($err, qr/forget_subject cannot reach every row of Citus table public\.forced: its owner is under FORCE ROW LEVEL SECURITY on 8 of its shards/,
	'refused, naming the forced shards');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM forced WHERE subject = 's1'}), '8', 'no row of s1 deleted');
is($coord->safe_psql('postgres', q{SELECT customer_vault.was_forgotten('s1')}), 'f', 'and no receipt');

# without FORCE anywhere the erasure takes every row of the subject
$coord->safe_psql('postgres', q{SELECT run_command_on_placements('forced', 'ALTER TABLE %s NO FORCE ROW LEVEL SECURITY')});
is($coord->safe_psql('postgres', q{SELECT customer_vault.forget_subject('s1', 'request') -> 'tables' -> 'public.forced' ->> 'deleted'}),
	'8', 'forget_subject in autocommit deletes the 8 rows of s1');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM forced WHERE subject = 's1'}), '0', 'none left');

done_testing();
