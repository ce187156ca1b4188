# Review 24, HIGH-3: standard_conforming_strings = off on the caller.
# PostgreSQL's deparse of a string constant doubles every backslash when
# standard_conforming_strings is off and writes no E'' prefix; Citus
# deparses a statement's constants and parameters with the coordinator's
# settings, the workers read them with theirs (on).  A subject a\b reached
# the workers as a\\b: their copies of consent_state and data_keys held
# another subject, the purge's hold on h\d was not honoured on the shards,
# forget_subject('a\b') deleted the rows of a\\b there and left a\b's.  Now
# CvPinOutputSettings and the SQL functions that write the reference tables
# pin standard_conforming_strings = on: with the caller's off, every node
# holds what it holds with on.  (Subjects are written with chr(92), the
# backslash, so that no literal depends on the setting.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;
use CitusTest;

my ($coord, $w1, $w2) = new_citus_cluster();

# the caller's settings
my $off = q{SET client_min_messages = warning; SET standard_conforming_strings = off;
SET escape_string_warning = off; SET lc_monetary = 'C.utf8';
};
# a\b, a\\b (another subject), h\d (held)
my $ab = q{('a' || chr(92) || 'b')};
my $abb = q{('a' || chr(92) || chr(92) || 'b')};
my $hd = q{('h' || chr(92) || 'd')};

# rows 1..16: id % 4 = 0 a\b, 1 a\\b, 2 h\d, 3 ab; 1..8 past retention
$coord->safe_psql('postgres', q{
SET client_min_messages = warning;
SELECT customer_vault.citus_setup();
CREATE TABLE cust (id bigint PRIMARY KEY, subj text NOT NULL, at timestamptz NOT NULL);
SELECT create_distributed_table('cust', 'id');
SELECT customer_vault.register_subject_table('cust', 'subj');
SELECT customer_vault.set_retention('cust', 'at', '30 days', 'delete', 'subj');
SELECT customer_vault.create_key('k');
} . qq{
INSERT INTO cust SELECT g, CASE g % 4 WHEN 0 THEN $ab WHEN 1 THEN $abb WHEN 2 THEN $hd ELSE 'ab' END,
       CASE WHEN g <= 8 THEN timestamptz '2026-01-01 00:00:00+00' ELSE timestamptz '2026-12-01 00:00:00+00' END
  FROM generate_series(1, 16) g;
-- distributed by the subject: Citus routes a statement naming one subject to
-- its shard and sends it with the value deparsed
CREATE TABLE acct (subj text NOT NULL, id int NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (subj, id));
SELECT create_distributed_table('acct', 'subj');
SELECT customer_vault.register_subject_table('acct', 'subj');
SELECT customer_vault.set_retention('acct', 'at', '30 days', 'delete', 'subj');
INSERT INTO acct SELECT s, i, CASE i WHEN 1 THEN timestamptz '2026-01-01 00:00:00+00' ELSE timestamptz '2026-12-01 00:00:00+00' END
  FROM (VALUES ($ab), ($abb), ($hd), ('ab')) v(s), generate_series(1, 2) i;
});

# ---- consents and keys written under the caller's off
$coord->safe_psql('postgres', $off . qq{
SELECT customer_vault.define_purpose('news', 'consent');
SELECT customer_vault.grant_consent(s, 'news', '{"form": "web"}') FROM (VALUES ($ab), ($abb), ($hd)) v(s);
SELECT customer_vault.withdraw_consent($hd, 'news');
SELECT customer_vault.encrypt_for_subject(s, 'x') IS NOT NULL FROM (VALUES ($ab), ($abb)) v(s);
SELECT customer_vault.place_legal_hold($hd, 'litigation');
});
# a backslash shown as /
my $q_consent = q{SELECT string_agg(replace(subject, chr(92), '/') || ' ' || granted, ', ' ORDER BY subject COLLATE "C")
  FROM customer_vault.consent_state};
my $q_keys = q{SELECT string_agg(replace(subject, chr(92), '/') || ' ' || state, ', ' ORDER BY subject COLLATE "C")
  FROM customer_vault.data_keys WHERE subject IS NOT NULL};
for my $n ($coord, $w1, $w2)
{
	is($n->safe_psql('postgres', $q_consent), 'a//b true, a/b true, h/d false',
		$n->name . ': consent_state holds a\b, a\\\\b and h\d as given');
	is($n->safe_psql('postgres', $q_keys), 'a//b active, a/b active',
		$n->name . ': data_keys holds the keys of a\b and a\\\\b');
	is($n->safe_psql('postgres', $off . qq{SELECT customer_vault.has_consent($ab, 'news')::text || ' ' ||
		customer_vault.has_consent($hd, 'news')::text}),
		'true false', $n->name . ': has_consent of a\b and h\d');
}

# ---- the purge keeps the held subject's rows past retention on the shards
$coord->safe_psql('postgres', $off . q{CALL customer_vault.purge(as_of => '2026-12-02 12:00:00+00')});
my $q_rows = q{SELECT string_agg(id::text, ',' ORDER BY id) FROM cust};
is($coord->safe_psql('postgres', $q_rows), '2,6,9,10,11,12,13,14,15,16',
	'purge: the expired rows of h\d (held) kept, the others purged');
my $q_acct = q{SELECT string_agg(replace(subj, chr(92), '/') || ' ' || id, ', ' ORDER BY subj COLLATE "C", id) FROM acct};
is($coord->safe_psql('postgres', $q_acct), 'a//b 2, a/b 2, ab 2, h/d 1, h/d 2',
	'purge: the same on a table distributed by the subject');

# ---- the erasure of a\b: its rows, consent and key on every node, nobody else's
is($coord->safe_psql('postgres', $off . qq{
SELECT (r -> 'tables' -> 'public.cust' ->> 'deleted') || ' ' || (r -> 'tables' -> 'public.acct' ->> 'deleted')
  FROM customer_vault.forget_subject($ab, 'request') r}),
	'2 1', 'forget_subject(a\b) deletes its 2 rows of cust, its 1 row of acct');
is($coord->safe_psql('postgres', $q_rows), '2,6,9,10,11,13,14,15', 'the rows of a\\\\b, h\d and ab are left');
is($coord->safe_psql('postgres', $q_acct), 'a//b 2, ab 2, h/d 1, h/d 2',
	'on the table distributed by the subject: the row of a\b deleted, the others left');
for my $n ($coord, $w1, $w2)
{
	is($n->safe_psql('postgres', $q_consent), 'a//b true, h/d false', $n->name . ': the consent state of a\b is gone, the others left');
	is($n->safe_psql('postgres', $q_keys), 'a//b active', $n->name . ': the key of a\b shredded (its row gone), a\\\\b\'s kept');
}
is($coord->safe_psql('postgres', $off . qq{SELECT customer_vault.was_forgotten($ab)::text || ' ' || customer_vault.was_forgotten($abb)::text}),
	'true false', 'was_forgotten: a\b yes, a\\\\b no');
my ($ret, $out, $err) = $coord->psql('postgres', $off . qq{SELECT customer_vault.forget_subject($hd, 'request')});
like($err, qr/subject is under legal hold/, 'forget_subject(h\d) is refused by its hold');
is($coord->safe_psql('postgres', $q_rows), '2,6,9,10,11,13,14,15', 'no row deleted');
is($coord->safe_psql('postgres', $q_acct), 'a//b 2, ab 2, h/d 1, h/d 2', 'none of acct either');

done_testing();
