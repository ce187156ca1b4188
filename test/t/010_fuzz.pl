# Fuzzing the ciphertext paths: over 100,000 mutated, truncated, extended and
# random envelopes go through every way a value enters the server:
#   A  binary parameters (the types' receive functions) of decrypt()
#   B  text parameters (the types' input functions) of decrypt()
#   C  COPY ... FROM STDIN (FORMAT binary), then decrypt() of what loaded
#   D  decrypt() of authentic values with random (wrong) contexts
#   E  the protect trigger: INSERT ... RETURNING into a protected column
#   F  is_sealed() and key_of(): is_sealed agrees with the input function
# and the test asserts that no backend crashes (the same session survives,
# the postmaster start time is unchanged, no "terminated by signal" in the
# log), that no error is XX000 (internal), and that no mutated value is ever
# accepted as authentic: every mutant fails, or reads as NULL only when its
# envelope names a shredded key.  Positive controls (the originals) show each
# channel would notice an acceptance.
#
# DBD::Pg is not needed: the test speaks the frontend/backend protocol over
# the node's Unix socket itself (extended query protocol, pipelined, one
# Sync per mutant so an error only ends its own statement).  The mutants
# come from a fixed seed (FUZZ_SEED to vary it; printed on failure).
use strict;
use warnings;
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $seed = $ENV{FUZZ_SEED} // 20261201;
srand($seed);
note "fuzz seed $seed";

# errors are expected by the hundred thousand: keep them out of the log,
# which then holds only LOG-level lines such as a crash report
my $node = new_vault_node('fuzz', key => random_root_key(),
	conf => "log_min_messages = log\nlog_min_error_statement = panic\nlog_statement = none\n");

$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION customer_vault CASCADE;
SELECT customer_vault.create_key('fz');
SELECT customer_vault.create_key('fzp', NULL, 16);
SELECT customer_vault.create_key('fz2');
CREATE TABLE fz_base (n serial, typ "char", ctx text, env text, pt text);
INSERT INTO fz_base (typ, ctx, env, pt)
SELECT 't', c, customer_vault.encrypt(p, k, c)::text, p
  FROM unnest(ARRAY['fz', 'fzp', 'fz2']) k, unnest(ARRAY[NULL, 'ctx-1', '']) c,
       unnest(ARRAY['', 'yes', 'Female', 'a somewhat longer value of 40 bytes....']) p;
INSERT INTO fz_base (typ, ctx, env, pt)
SELECT 'b', c, customer_vault.encrypt(convert_to(p, 'UTF8'), k, c)::text, p
  FROM unnest(ARRAY['fz', 'fzp']) k, unnest(ARRAY[NULL, 'ctx-2']) c,
       unnest(ARRAY['', 'no', 'binary value']) p;
INSERT INTO fz_base (typ, ctx, env, pt)
VALUES ('t', 'c', customer_vault.encrypt_for_subject('subj-live', 'alive', 'c')::text, 'alive'),
       ('t', NULL, customer_vault.encrypt_for_subject('subj-dead', 'gone')::text, NULL);
SELECT customer_vault.shred_subject('subj-dead');
CREATE TABLE fz_bin (id int, ctx text, v customer_vault.encrypted_text);
CREATE TABLE fz_people (id int, tag int, note text);
CREATE INDEX ON fz_people (tag);
INSERT INTO fz_people (id, tag, note) SELECT g, 0, 'person ' || g FROM generate_series(1, 20) g;
SELECT customer_vault.protect_column('fz_people', 'note', 'fz', 'id');
CREATE FUNCTION fz_try_bin(v customer_vault.encrypted_text, ctx text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r text;
    b bytea;
BEGIN
    r := customer_vault.decrypt(v, ctx);
    IF r IS NULL THEN
        b := decode(substr(v::text, 5), 'base64');
        RETURN 'NULL:' || ((get_byte(b, 4) << 24) | (get_byte(b, 5) << 16) | (get_byte(b, 6) << 8) | get_byte(b, 7));
    END IF;
    RETURN 'ACCEPTED';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
});

my $start_time = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my %destroyed = map { $_ => 1 } split /\n/,
  $node->safe_psql('postgres', "SELECT id FROM customer_vault.keys WHERE state = 'destroyed'");
ok(scalar(keys %destroyed) == 1, 'one shredded key to read as NULL');
my @key_ids = split /\n/, $node->safe_psql('postgres', 'SELECT id FROM customer_vault.keys ORDER BY id');

my @base;
for my $line (split /\n/, $node->safe_psql('postgres',
	"SELECT typ, coalesce(ctx, '<null>'), env FROM fz_base ORDER BY n"))
{
	my ($typ, $ctx, $env) = split /\|/, $line, 3;
	$ctx = undef if $ctx eq '<null>';
	push @base, { typ => $typ, ctx => $ctx, text => $env, bin => b64dec(substr($env, 4)) };
}
my @people;
for my $line (split /\n/, $node->safe_psql('postgres', 'SELECT id, note FROM fz_people ORDER BY id'))
{
	my ($id, $env) = split /\|/, $line, 2;
	push @people, { id => $id, text => $env, bin => b64dec(substr($env, 4)) };
}

# ---------- base64 and mutations ----------

sub b64dec
{
	my ($s) = @_;
	require MIME::Base64;
	return MIME::Base64::decode_base64($s);
}

sub b64enc
{
	my ($b) = @_;
	require MIME::Base64;
	return MIME::Base64::encode_base64($b, '');
}

sub rbytes
{
	my ($n) = @_;
	return join '', map { chr(int(rand(256))) } 1 .. $n;
}

# one binary mutant of an envelope (never equal to it)
sub mutate_bin
{
	my ($bin, $other) = @_;
	my $len = length $bin;
	my $m;
	my $kind = int(rand(13));
	if ($kind == 0)    # truncation
	{
		$m = substr($bin, 0, int(rand($len)));
	}
	elsif ($kind == 1)    # one to three bit flips
	{
		$m = $bin;
		for (1 .. 1 + int(rand(3)))
		{
			my $i = int(rand($len));
			substr($m, $i, 1) = chr(ord(substr($m, $i, 1)) ^ (1 << int(rand(8))));
		}
	}
	elsif ($kind == 2)    # random bytes replaced
	{
		$m = $bin;
		substr($m, int(rand($len)), 1) = chr(int(rand(256))) for 1 .. 1 + int(rand(4));
	}
	elsif ($kind == 3)    # extended
	{
		$m = $bin . (rand() < 0.5 ? rbytes(1 + int(rand(40))) : substr($bin, -16));
	}
	elsif ($kind == 4)    # a byte inserted or deleted
	{
		my $i = int(rand($len));
		$m = $bin;
		if (rand() < 0.5) { substr($m, $i, 0) = chr(int(rand(256))); }
		else { substr($m, $i, 1) = ''; }
	}
	elsif ($kind == 5)    # version, type, flags or reserved byte changed
	{
		$m = $bin;
		my $i = int(rand(4));
		substr($m, $i, 1) = chr(int(rand(256)));
	}
	elsif ($kind == 6)    # another (existing, missing, invalid) key id
	{
		$m = $bin;
		my @ids = (@key_ids, 0, 999999, 0x7fffffff, 0x80000000, 0xffffffff, int(rand(2**32)));
		substr($m, 4, 4) = pack('N', $ids[ int(rand(@ids)) ]);
	}
	elsif ($kind == 7)    # header of another envelope, body of this one
	{
		$m = substr($other, 0, 8) . substr($bin, 8);
	}
	elsif ($kind == 8)    # tag or nonce of another envelope
	{
		$m = $bin;
		if (rand() < 0.5) { substr($m, -16) = substr($other, -16); }
		else { substr($m, 8, 12) = substr($other, 8, 12); }
	}
	elsif ($kind == 9)    # random bytes
	{
		$m = rbytes(int(rand(120)));
	}
	elsif ($kind == 10)    # random bytes behind a plausible header
	{
		$m = pack('CCCCN', 1, 1 + int(rand(2)), int(rand(4)), 0,
			$key_ids[ int(rand(@key_ids)) ]) . rbytes(28 + int(rand(60)));
	}
	elsif ($kind == 11)    # the padded flag toggled
	{
		$m = $bin;
		substr($m, 2, 1) = chr(ord(substr($m, 2, 1)) ^ 2);
	}
	else    # ciphertext shortened or lengthened by a block, tag kept
	{
		my $body = substr($bin, 20, $len - 36);
		$body = rand() < 0.5 ? substr($body, 0, length($body) > 16 ? length($body) - 16 : 0)
		  : $body . rbytes(16);
		$m = substr($bin, 0, 20) . $body . substr($bin, -16);
	}
	return $m eq $bin ? mutate_bin($bin, $other) : $m;
}

# one text-form mutant (ASCII, never equal to the original)
my @alphabet = (split(//, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'),
	'=', '$', '-', '_', ' ', '.', '\\', "\t");
sub mutate_text
{
	my ($text, $bin, $other) = @_;
	my $kind = int(rand(8));
	my $m;
	if ($kind <= 2)    # canonical base64 of a binary mutant
	{
		$m = 'cv1$' . b64enc(mutate_bin($bin, $other));
	}
	elsif ($kind == 3)    # characters changed
	{
		$m = $text;
		substr($m, int(rand(length $m)), 1) = $alphabet[ int(rand(@alphabet)) ] for 1 .. 1 + int(rand(3));
	}
	elsif ($kind == 4)    # truncated
	{
		$m = substr($text, 0, int(rand(length $text)));
	}
	elsif ($kind == 5)    # extended
	{
		$m = $text . join('', map { $alphabet[ int(rand(@alphabet)) ] } 1 .. 1 + int(rand(8)));
	}
	elsif ($kind == 6)    # another prefix
	{
		my @p = ('cv2$', 'CV1$', 'cv1', 'cv1$$', '', ' cv1$', 'cv0$');
		$m = $p[ int(rand(@p)) ] . substr($text, 4);
	}
	else    # random text
	{
		$m = (rand() < 0.5 ? 'cv1$' : '') . join('', map { $alphabet[ int(rand(@alphabet)) ] } 1 .. int(rand(90)));
	}
	return $m eq $text ? mutate_text($text, $bin, $other) : $m;
}

# ---------- a minimal frontend/backend protocol client ----------

my $sock_path = $node->host . '/.s.PGSQL.' . $node->port;
my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $sock_path)
  or die "could not connect to $sock_path: $!";
my $user = getpwuid($>);

sub send_raw
{
	my ($data) = @_;
	while (length $data)
	{
		my $n = syswrite($sock, $data);
		die "write failed: $!" unless defined $n && $n > 0;
		substr($data, 0, $n) = '';
	}
}

sub read_n
{
	my ($n) = @_;
	my $buf = '';
	while (length($buf) < $n)
	{
		my $r = sysread($sock, $buf, $n - length($buf), length($buf));
		die "connection lost (did the backend crash?)" unless $r;
	}
	return $buf;
}

sub read_msg
{
	my ($type, $len) = unpack('a N', read_n(5));
	return ($type, $len > 4 ? read_n($len - 4) : '');
}

sub msg { my ($t, $p) = @_; return $t . pack('N', 4 + length $p) . $p; }

# read one Sync's worth of replies: (outcome, value) where outcome is a SQLSTATE, 'NULL', 'ROW' or 'OK'
sub read_result
{
	my ($outcome, $value) = ('OK', undef);
	while (1)
	{
		my ($t, $p) = read_msg();
		if ($t eq 'E')
		{
			($outcome) = $p =~ /(?:^|\0)C([0-9A-Z]{5})\0/;
			$outcome //= 'E?????';
		}
		elsif ($t eq 'D')
		{
			my ($n, $l) = unpack('n l>', $p);
			if ($l < 0) { $outcome = 'NULL'; }
			else { $outcome = 'ROW'; $value = substr($p, 6, $l); }
		}
		elsif ($t eq 'Z') { return ($outcome, $value); }
	}
}

# the startup message (no type byte), protocol 3.0; the test node trusts local users
send_raw(msg('', pack('N', 196608) . "user\0$user\0database\0postgres\0\0"));
while (1)
{
	my ($t, $p) = read_msg();
	die 'startup failed' if $t eq 'E';
	last if $t eq 'Z';
}

# prepare a statement; types are OIDs (0 = let the server infer)
sub prepare
{
	my ($name, $sql, @types) = @_;
	send_raw(msg('P', "$name\0$sql\0" . pack('n', scalar @types) . join('', map { pack('N', $_) } @types))
		  . msg('S', ''));
	my ($o) = read_result();
	die "could not prepare $name: $o" unless $o eq 'OK';
}

# run a prepared statement for many parameter sets, pipelined; each set is
# [ [format, value-or-undef], ... ]; returns [outcome, value] per set
sub run_many
{
	my ($name, @sets) = @_;
	my @out;
	while (@sets)
	{
		my @batch = splice(@sets, 0, 300);
		my $buf = '';
		for my $params (@batch)
		{
			my $b = "\0$name\0" . pack('n', scalar @$params) . join('', map { pack('n', $_->[0]) } @$params)
			  . pack('n', scalar @$params);
			for my $p (@$params)
			{
				$b .= defined $p->[1] ? pack('N', length $p->[1]) . $p->[1] : pack('l>', -1);
			}
			$b .= pack('n', 0);
			$buf .= msg('B', $b) . msg('E', "\0" . pack('N', 0)) . msg('S', '');
		}
		send_raw($buf);
		push @out, [ read_result() ] for @batch;
	}
	return @out;
}

# one simple query; returns (outcome, value of the first column of the last row)
sub simple
{
	my ($sql) = @_;
	send_raw(msg('Q', "$sql\0"));
	return read_result();
}

my ($o, $pid) = simple('SELECT pg_backend_pid()');
my ($o2, $oids) = simple("SELECT 'customer_vault.encrypted_text'::regtype::oid || ',' || 'customer_vault.encrypted_bytea'::regtype::oid");
my ($oid_t, $oid_b) = split /,/, $oids;
prepare('dt', 'SELECT customer_vault.decrypt($1, $2)', $oid_t, 25);
prepare('db', 'SELECT customer_vault.decrypt($1, $2)', $oid_b, 25);
prepare('ins', 'INSERT INTO fz_people (id, tag, note) VALUES ($1, $2, $3) RETURNING note', 23, 23, 25);
prepare('view', 'SELECT note FROM fz_people_decrypted WHERE tag = $1', 23);
prepare('sealed', 'SELECT customer_vault.is_sealed($1)', 25);
prepare('keyof', 'SELECT customer_vault.key_of($1::customer_vault.encrypted_text)', 25);

my %total;          # outcome => count over all channels
my $mutants = 0;
my @problems;

sub key_id_of { my ($bin) = @_; return length($bin) >= 8 ? unpack('N', substr($bin, 4, 4)) : -1; }

# judge one decrypt of a mutant: it must fail, or be NULL under the shredded key
sub judge
{
	my ($channel, $res, $bin) = @_;
	my ($outcome) = @$res;
	$total{$outcome}++;
	$mutants++;
	if ($outcome eq 'XX000') { push @problems, "$channel: internal error (XX000)"; }
	elsif ($outcome eq 'ROW') { push @problems, "$channel: mutant accepted as authentic"; }
	elsif ($outcome eq 'NULL' && !$destroyed{ key_id_of($bin) })
	{
		push @problems, "$channel: NULL for a mutant under a live key";
	}
}

sub pick { return $_[ int(rand(@_)) ]; }

# ---------- controls: the originals open, through each channel ----------

my @controls = map {
	[ [ 1, $_->{bin} ], [ 0, $_->{ctx} ] ]
} grep { $_->{typ} eq 't' } @base;
my $ctl_ok = grep { $_->[0] eq 'ROW' || ($_->[0] eq 'NULL') } run_many('dt', @controls);
is($ctl_ok, scalar @controls, 'control: every original text envelope opens through binary parameters');
@controls = map { [ [ 0, $_->{text} ], [ 0, $_->{ctx} ] ] } grep { $_->{typ} eq 'b' } @base;
$ctl_ok = grep { $_->[0] eq 'ROW' } run_many('db', @controls);
is($ctl_ok, scalar @controls, 'control: every original bytea envelope opens through text parameters');

# ---------- A: binary parameters ----------

{
	my (@sets, @bins);
	for (1 .. 36000)
	{
		my $b = pick(@base);
		my $m = mutate_bin($b->{bin}, pick(@base)->{bin});
		my $asbytea = $b->{typ} eq 'b' ? rand() < 0.9 : rand() < 0.1;
		push @sets, [ $asbytea ? 'db' : 'dt', [ [ 1, $m ], [ 0, $b->{ctx} ] ] ];
		push @bins, $m;
	}
	for my $st ('dt', 'db')
	{
		my @idx = grep { $sets[$_][0] eq $st } 0 .. $#sets;
		my @res = run_many($st, map { $sets[$_][1] } @idx);
		judge("A binary parameter", $res[$_], $bins[ $idx[$_] ]) for 0 .. $#idx;
	}
}

# ---------- B: text parameters (the input functions) ----------

{
	my (@sets, @bins);
	for (1 .. 36000)
	{
		my $b = pick(@base);
		my $m = mutate_text($b->{text}, $b->{bin}, pick(@base)->{bin});
		my $asbytea = $b->{typ} eq 'b' ? rand() < 0.9 : rand() < 0.1;
		push @sets, [ $asbytea ? 'db' : 'dt', [ [ 0, $m ], [ 0, $b->{ctx} ] ] ];
		push @bins, $m =~ /^cv1\$([A-Za-z0-9+\/=]*)$/ ? b64dec($1) : '';
	}
	for my $st ('dt', 'db')
	{
		my @idx = grep { $sets[$_][0] eq $st } 0 .. $#sets;
		my @res = run_many($st, map { $sets[$_][1] } @idx);
		judge("B text parameter", $res[$_], $bins[ $idx[$_] ]) for 0 .. $#idx;
	}
}

# ---------- C: COPY ... FROM STDIN (FORMAT binary), one COPY per mutant ----------

{
	my %copy;
	my $loaded = 0;
	my @text_base = grep { $_->{typ} eq 't' } @base;
	for my $i (1 .. 8000)
	{
		my $b = rand() < 0.85 ? pick(@text_base) : pick(@base);
		my $m = mutate_bin($b->{bin}, pick(@base)->{bin});
		my $ctx = $b->{ctx};
		my $data = "PGCOPY\n\377\r\n\0" . pack('N N', 0, 0)
		  . pack('n', 3) . pack('N N', 4, $i)
		  . (defined $ctx ? pack('N', length $ctx) . $ctx : pack('l>', -1))
		  . pack('N', length $m) . $m
		  . pack('n', 0xffff);
		send_raw(msg('Q', "COPY fz_bin (id, ctx, v) FROM STDIN (FORMAT binary)\0")
			  . msg('d', $data) . msg('c', ''));
		my ($out) = read_result();
		$copy{$out}++;
		if ($out eq 'OK') { $loaded++; }
		else { judge('C COPY BINARY', [$out], $m); }
	}
	note 'COPY outcomes: ' . join(', ', map { "$_=$copy{$_}" } sort keys %copy);
	# what loaded parsed as an envelope: every such mutant must fail to decrypt
	my $res = $node->safe_psql('postgres',
		'SELECT fz_try_bin(v, ctx), count(*) FROM fz_bin GROUP BY 1 ORDER BY 1');
	my $n = 0;
	for my $line (split /\n/, $res)
	{
		my ($outcome, $count) = split /\|/, $line;
		$n += $count;
		$mutants += $count;
		$total{$outcome} += $count;
		if ($outcome =~ /^NULL:(\d+)$/ && $destroyed{$1}) { next; }
		push @problems, "C COPY BINARY then decrypt: $count x $outcome"
		  if $outcome eq 'XX000' || $outcome eq 'ACCEPTED' || $outcome =~ /^NULL/;
	}
	is($n, $loaded, 'every mutant COPY loaded was decrypted');
}

# ---------- D: authentic values, random contexts ----------

{
	my @sets;
	for (1 .. 14000)
	{
		my $b = pick(@base);
		my $ctx;
		my $r = rand();
		if ($r < 0.2) { $ctx = defined $b->{ctx} ? undef : ''; }    # context dropped or added
		elsif ($r < 0.5) { $ctx = (defined $b->{ctx} ? $b->{ctx} : 'ctx-1') . chr(32 + int(rand(90))); }
		elsif ($r < 0.6 && defined $b->{ctx} && length $b->{ctx}) { $ctx = substr($b->{ctx}, 0, -1); }
		else { $ctx = join '', map { chr(32 + int(rand(90))) } 0 .. int(rand(20)); }
		next if defined $ctx && defined $b->{ctx} && $ctx eq $b->{ctx};
		next if !defined $ctx && !defined $b->{ctx};
		push @sets, [ $b->{typ} eq 'b' ? 'db' : 'dt', [ [ 1, $b->{bin} ], [ 0, $ctx ] ], $b->{bin} ];
	}
	for my $st ('dt', 'db')
	{
		my @mine = grep { $_->[0] eq $st } @sets;
		my @res = run_many($st, map { $_->[1] } @mine);
		judge('D wrong context', $res[$_], $mine[$_][2]) for 0 .. $#mine;
	}
}

# ---------- E: the protect trigger ----------

{
	my (@sets, @meta);
	my $tag = 1;
	# controls: the originals go back into their own rows (kept, authentic) ...
	for my $p (@people)
	{
		push @sets, [ [ 0, $p->{id} ], [ 0, $tag ], [ 0, $p->{text} ] ];
		push @meta, { control => 'own', text => $p->{text}, bin => $p->{bin}, tag => $tag++ };
	}
	# ... and into another row (refused: bound to its row)
	for my $p (@people)
	{
		push @sets, [ [ 0, $p->{id} + 1000 ], [ 0, $tag ], [ 0, $p->{text} ] ];
		push @meta, { control => 'moved', text => $p->{text}, bin => $p->{bin}, tag => $tag++ };
	}
	for (1 .. 12000)
	{
		my $p = pick(@people);
		my $m = mutate_text($p->{text}, $p->{bin}, pick(@people)->{bin});
		my $id = rand() < 0.9 ? $p->{id} : pick(@people)->{id};
		push @sets, [ [ 0, $id ], [ 0, $tag ], [ 0, $m ] ];
		push @meta, { text => $m, bin => ($m =~ /^cv1\$([A-Za-z0-9+\/=]*)$/ ? b64dec($1) : ''), tag => $tag++ };
	}
	my @res = run_many('ins', @sets);
	my (%ctl, @sealed);
	for my $i (0 .. $#res)
	{
		my ($outcome, $stored) = @{ $res[$i] };
		my $m = $meta[$i];
		if ($m->{control})
		{
			$ctl{ $m->{control} . ':' . ($outcome eq 'ROW' && $stored eq $m->{text} ? 'kept' : $outcome) }++;
			next;
		}
		$mutants++;
		$total{ $outcome eq 'ROW' ? 'stored' : $outcome }++;
		if ($outcome eq 'XX000') { push @problems, 'E trigger: internal error (XX000)'; }
		elsif ($outcome eq 'ROW' && $stored eq $m->{text})
		{
			# kept as it came: only a value under a shredded key may be
			push @problems, 'E trigger: mutated ciphertext stored as authentic'
			  unless $destroyed{ key_id_of($m->{bin}) };
		}
		elsif ($outcome eq 'ROW') { push @sealed, $m; }    # taken as plaintext and sealed
	}
	is($ctl{'own:kept'} // 0, scalar @people, 'control: originals go back into their own rows as they are');
	is($ctl{'moved:XX001'} // 0, scalar @people, 'control: originals moved to another row are refused');
	# what was taken as plaintext reads back as exactly that text
	my @back = run_many('view', map { [ [ 0, $_->{tag} ] ] } @sealed);
	my $same = grep { $back[$_][0] eq 'ROW' && $back[$_][1] eq $sealed[$_]{text} } 0 .. $#sealed;
	is($same, scalar @sealed, 'values stored as plaintext read back unchanged through the decrypted view');
	note scalar(@sealed) . ' trigger inputs were not envelopes and were sealed as plaintext';
}

# ---------- F: is_sealed (the CHECK of protected columns) agrees with the input function ----------

{
	my @texts;
	for (1 .. 6000)
	{
		my $b = pick(@base);
		push @texts, mutate_text($b->{text}, $b->{bin}, pick(@base)->{bin});
	}
	push @texts, map { $_->{text} } grep { $_->{typ} eq 't' } @base;
	my @sealed = run_many('sealed', map { [ [ 0, $_ ] ] } @texts);
	my @keyof = run_many('keyof', map { [ [ 0, $_ ] ] } @texts);
	my ($agree, $ok_envelopes) = (0, 0);
	for my $i (0 .. $#texts)
	{
		my $parsed = $keyof[$i][0] ne '22P02';
		$ok_envelopes++ if $parsed;
		$agree++ if $sealed[$i][0] eq 'ROW' && ($sealed[$i][1] eq 't') == $parsed;
		$total{ 'F:' . $keyof[$i][0] }++;
		push @problems, 'F key_of/is_sealed: internal error (XX000)'
		  if $keyof[$i][0] eq 'XX000' || $sealed[$i][0] eq 'XX000';
	}
	$mutants += 6000;
	is($agree, scalar @texts, 'is_sealed() is true exactly for the texts the input function accepts');
	cmp_ok($ok_envelopes, '>', 100, "some mutated texts still parse as envelopes ($ok_envelopes)");
}

# ---------- verdict ----------

note 'outcomes: ' . join(', ', map { "$_=$total{$_}" } sort keys %total);
cmp_ok($mutants, '>=', 100000, "at least 100,000 mutants ($mutants)");
is(scalar @problems, 0, 'no mutant accepted, no XX000')
  or diag(join("\n", (@problems)[ 0 .. ($#problems < 20 ? $#problems : 19) ]) . "\nseed $seed");
is($total{XX000} // 0, 0, 'no internal error (XX000) in any channel');

my ($o3, $pid2) = simple('SELECT pg_backend_pid()');
is($pid2, $pid, 'the fuzzing session survived (no backend crash reset it)');
send_raw(msg('X', ''));
close $sock;
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $start_time,
	'postmaster start time unchanged');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|was terminated|(?:server process|client backend) .* exited with exit code [^0]/,
	'no backend terminated abnormally');
unlike($log, qr/PANIC|TRAP:/, 'no PANIC or assertion failure');

$node->stop;
done_testing();
