#!/usr/bin/perl
# test/bench/bench.pl: customer_vault against plaintext and pgcrypto, measured
# side by side in one run.  The measurements are SQL, one file per section
# (insert.sql, read.sql, lookup.sql, consent.sql, import.sql, purge.sql, rotation.sql, export.sql,
# on the schema common.sql makes); this driver runs their phases, the
# concurrent writer of the purge section (pgbench), and prints the table the
# sections' report phases fill, with the targets of targets.tsv.
#
# Run through the harness, which starts a throwaway cluster with the extension
# preloaded and a root key, and exports PGHOST/PGPORT/PGUSER and DBNAME:
#
#   make bench                                    (BENCH_ROWS=1000000)
#   CV_SKIP_BUILD=1 BENCH_ROWS=20000 bash test/run.sh bench
#
# Settings (environment):
#   BENCH_ROWS=1000000     customer rows per table
#   BENCH_REPS=3           repetitions; every figure is the median of them
#   BENCH_SCALING=1        run 10^4, 10^5 and 10^6 rows and show the growth
#                          (BENCH_SCALING_SIZES="..." to choose other sizes)
#   BENCH_PGP_ROWS=5000    pgp_sym_encrypt/decrypt run on at most this many rows
#                          (string-to-key hashing makes them ~0.5 ms a value);
#                          their totals are scaled per row to BENCH_ROWS
#   BENCH_SUBJECT_ROWS=20000  the same for encrypt_for_subject (a new key per row)
#   BENCH_LOOKUPS=2000     equality lookups per measurement
#   BENCH_CONSENT_CACHE=n  customer_vault.consent_cache_size for the consent
#                          counts (default: the server's, raised to BENCH_ROWS
#                          when smaller; below the live consents of a purpose
#                          it measures the index-probe fallback)
#   BENCH_SECTIONS="insert read mask lookup consent import purge rotation forget brake export audit"
#                          the sections to run (default all; read, mask, lookup and
#                          rotation need the tables insert fills and bring it in)
#   BENCH_PURGE_RATE=100   single-row INSERTs per second of the concurrent
#                          writer (pgbench -R) during the purge and the DELETE
#   BENCH_AUDIT_SECONDS=5  pgbench time of each 1-row decrypt latency run
#                          (audit section: audit_decrypt off, statement, value)
#
# Every section file has phases, selected with psql's -v phase=...: setup
# (once), rep (BENCH_REPS times, -v rep=i), after (once), report (once); the
# purge section has its own (see purge.sql).  Times are taken inside the
# server (bench.time_sql: clock_timestamp() around the statement; in the
# session for CALLs), so connection set-up and result transfer are not
# counted.  Any SQL error, and any result that does not check out
# (bench.check, bench.timed's expected results), ends the run with a non-zero
# status.  The same checks, at a small size, are the regression test
# bench_checks of `make test`.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use POSIX qw(strftime);
use Time::HiRes qw(sleep);

my $here = dirname(__FILE__);
my $db = $ENV{DBNAME} or die "bench: DBNAME must be set (run through test/run.sh bench)\n";
my %opt = (
	ROWS => $ENV{BENCH_ROWS} // 1000000,
	REPS => $ENV{BENCH_REPS} // 3,
	PGP_MAX => $ENV{BENCH_PGP_ROWS} // 5000,
	SUBJ_MAX => $ENV{BENCH_SUBJECT_ROWS} // 20000,
	LOOKUPS => $ENV{BENCH_LOOKUPS} // 2000,
	PURGE_RATE => $ENV{BENCH_PURGE_RATE} // 100);
for my $k (sort keys %opt)
{
	$opt{$k} =~ /^[1-9][0-9]*$/ or die "bench: $k must be a positive integer (got '$opt{$k}')\n";
}
my $cache = $ENV{BENCH_CONSENT_CACHE} // '';
$cache eq '' || $cache =~ /^[0-9]+$/
  or die "bench: BENCH_CONSENT_CACHE must be a non-negative integer (got '$cache')\n";
my $PURGE_HOLD = 7;
my $WRITER_APP = 'bench_purge_writer';

# the sections to run, in this order; read, mask, lookup, rotation, brake and audit work on the insert tables
my @ALL = qw(insert read mask lookup consent import purge rotation forget brake export audit);
my %want;
for my $s (split /[\s,]+/, $ENV{BENCH_SECTIONS} // "@ALL")
{
	next if $s eq '';
	grep { $_ eq $s } @ALL or die "bench: unknown section '$s' in BENCH_SECTIONS (sections: @ALL)\n";
	$want{$s} = 1;
}
%want or die "bench: BENCH_SECTIONS names no section\n";
$want{insert} = 1 if $want{read} || $want{mask} || $want{lookup} || $want{rotation} || $want{brake} || $want{audit};
my @sections = grep { $want{$_} } @ALL;

# same plans for every method, one CPU each: no JIT, no parallel query
$ENV{PGOPTIONS} = "-c jit=off -c max_parallel_workers_per_gather=0 " . ($ENV{PGOPTIONS} // '');
my $tmp = tempdir('bench.XXXXXX', DIR => $ENV{CV_WORK} // '/tmp', CLEANUP => 1);
my $writer_pid;
END { kill 'TERM', $writer_pid if $writer_pid; }
$SIG{INT} = $SIG{TERM} = sub { exit 1 };

sub logmsg { print STDERR ".. @_\n"; }

# psql with a script on stdin or a file; dies on any error
sub psql
{
	my ($args, $input) = @_;
	my @cmd = ('psql', '-X', '-q', '-At', '-F', "\x1f", '-v', 'ON_ERROR_STOP=1', '-d', $db, @$args);
	my $in = "$tmp/in.sql";
	open my $fh, '>', $in or die;
	print $fh $input // '';
	close $fh;
	my $out = `@{[ join ' ', map { "'" . s/'/'\\''/gr . "'" } @cmd ]} < '$in'`;
	die "bench: psql failed (@$args)\n" if $?;
	chomp $out;
	return $out;
}
sub query { return psql([], $_[0]); }

# run phase of a section file with the run's variables
my %vars;
sub phase
{
	my ($file, $phase, %more) = @_;
	my %v = (%vars, phase => $phase, %more);
	psql([ (map { ('-v', "$_=$v{$_}") } sort keys %v), '-f', "$here/$file" ]);
}

# ---------------------------------------------------------------- floor
my %floor;
{
	my $bin = "$tmp/aead_floor";
	system('cc', '-O2', '-Wall', '-I', "$here/../../src", '-o', $bin, "$here/aead_floor.c",
		"$here/../../src/crypto.c", '-lcrypto') == 0
	  or die "bench: could not compile aead_floor.c\n";
	for (`$bin 200000 25 12 200`)
	{
		my ($size, $seal, $open) = split;
		$floor{$size} = [ $seal / 1000, $open / 1000 ];
	}
	$floor{200} or die "bench: aead_floor printed nothing\n";
}

# ---------------------------------------------------------------- targets
# targets.tsv: section, operation, field of the row, <= or >=, bound, label
my %target;
open my $tf, '<', "$here/targets.tsv" or die "bench: targets.tsv: $!\n";
while (<$tf>)
{
	chomp;
	next if /^\s*(#|$)/;
	my ($sec, $op, $field, $cmp, $bound, $label) = split /\t/;
	defined $label && $cmp =~ /^(<=|>=)$/ && $bound =~ /^[0-9.]+$/
	  or die "bench: targets.tsv line $.: expected 6 tab-separated fields\n";
	$target{"$sec\t$op"} = { field => $field, cmp => $cmp, bound => $bound, label => $label };
}
close $tf;

# ---------------------------------------------------------------- purge writer
my ($pgbench) = grep { -x } (map { "$_/pgbench" } split /:/, $ENV{PATH}), glob('/usr/lib/postgresql/*/bin/pgbench');
$pgbench //= '';

sub writer_out { open my $f, '<', "$tmp/writer.out"; local $/; return <$f> // ''; }

# pgbench inserting single rows into table at PURGE_RATE/s, logging each INSERT
sub start_writer
{
	my $table = shift;
	open my $f, '>', "$tmp/writer.sql" or die;
	printf $f "INSERT INTO %s (customer_id, created_at, note) VALUES (0, now(), '%s');\n", $table, 'w' x 200;
	close $f;
	unlink glob("$tmp/writer_log.*");
	$writer_pid = fork // die "bench: fork: $!\n";
	if (!$writer_pid)
	{
		$ENV{PGAPPNAME} = $WRITER_APP;
		open STDOUT, '>', "$tmp/writer.out";
		open STDERR, '>&', \*STDOUT;
		exec $pgbench, '-n', '-c', '1', '-j', '1', '-T', '86400', '-R', $opt{PURGE_RATE}, '-l',
		  "--log-prefix=$tmp/writer_log", '-f', "$tmp/writer.sql", $db;
		exit 127;
	}
	for (1 .. 200)
	{
		return sleep 0.3    # a few INSERTs before the operation starts
		  if query("SELECT count(*) FROM pg_stat_activity WHERE application_name = '$WRITER_APP'") eq '1';
		waitpid($writer_pid, POSIX::WNOHANG()) == 0 or die "bench: the pgbench writer ended: " . writer_out();
		sleep 0.05;
	}
	die "bench: the pgbench writer did not connect: " . writer_out();
}

# end the writer's session (pgbench then stops, "aborted", and writes its
# log); returns its INSERTs as [end_epoch_s, exec_s] (latency less the -R lag)
sub stop_writer
{
	query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '$WRITER_APP'");
	waitpid($writer_pid, 0);
	undef $writer_pid;
	my $out = writer_out();
	$out =~ /aborted/ or die "bench: unexpected end of the pgbench writer: $out";
	# the only errors: the ended session, the client it aborts and the "aborted" run it makes
	grep { /ERROR|error:/ && !/terminating connection due to administrator command|client 0 aborted in command|Run was aborted/ }
	  split /\n/, $out
	  and die "bench: the pgbench writer failed: $out";
	my @ins;
	my @logs = glob("$tmp/writer_log.*") or die "bench: pgbench wrote no log: $out";
	for my $f (@logs)
	{
		open my $fh, '<', $f or die;
		while (my $l = <$fh>)
		{
			my @c = split ' ', $l;
			push @ins, [ sprintf('%d.%06d', $c[4], $c[5]), ($c[2] - $c[6]) / 1e6 ] if @c >= 7;
		}
	}
	return @ins;
}

# one rep of the purge section: both tables, both operations with the writer
sub purge_rep
{
	my $rep = shift;
	phase('purge.sql', 'tables');
	for my $kind ($rep % 2 ? qw(purge delete) : qw(delete purge))
	{
		my $table = $kind eq 'purge' ? 'bench.p_purge' : 'bench.p_delete';
		start_writer($table);
		phase('purge.sql', 'op', kind => $kind);
		my @ins = stop_writer();
		@ins or die "bench: the writer logged no INSERT during the $kind\n";
		my ($t0, $t1) = split /\x1f/, query("SELECT bench.fact('t0_$kind'), bench.fact('t1_$kind')");
		# the longest INSERT that overlapped the operation
		my ($nw, $max) = (0, 0);
		for (@ins)
		{
			my ($end, $secs) = @$_;
			next unless $end >= $t0 && $end - $secs <= $t1;
			$nw++;
			$max = $secs if $secs > $max;
		}
		# every logged INSERT is in the table (one more if the session ended between commit and reply)
		my $rows = query("SELECT count(*) FROM $table WHERE customer_id = 0");
		$rows >= @ins && $rows <= @ins + 1
		  or die "bench: $kind: $rows rows of the concurrent writer in $table, its log has " . @ins . " INSERTs\n";
		query("SELECT bench.sample('pgw_$kind', $max),
		              bench.set_fact('wait_n_$kind', (COALESCE(bench.ifact('wait_n_$kind'), 0) + $nw)::text)");
	}
	phase('purge.sql', 'check');
}

# ---------------------------------------------------------------- one size
# audit: the latency of a 1-row decrypt statement (pgbench, one client) with
# audit_decrypt off, statement and value; the mean latency of each run is a sample
sub audit_latency_rep
{
	-x $pgbench or die "bench: audit: pgbench not found (PATH or /usr/lib/postgresql/*/bin)\n";
	my $secs = $ENV{BENCH_AUDIT_SECONDS} // 5;
	$secs =~ /^[1-9][0-9]*$/ or die "bench: BENCH_AUDIT_SECONDS must be a positive integer\n";
	open my $f, '>', "$tmp/audit1.sql" or die;
	print $f "\\set id random(1, $vars{n})\n",
	  "SELECT customer_vault.decrypt(email, id::text) FROM bench.t_enc WHERE id = :id;\n";
	close $f;
	for my $mode (qw(off statement value))
	{
		local $ENV{PGOPTIONS} = "-c customer_vault.audit_decrypt=$mode";
		my $out = `'$pgbench' -n -c 1 -j 1 -T $secs -f '$tmp/audit1.sql' '$db' 2>&1`;
		$? == 0 or die "bench: audit: pgbench failed: $out";
		my ($ms) = $out =~ /latency average = ([0-9.]+) ms/ or die "bench: audit: no latency from pgbench: $out";
		query("INSERT INTO bench.samples (key, secs) VALUES ('au_1row_$mode', $ms / 1000.0)");
	}
}

my @rows;    # [n, section, operation, median, samples, per_unit, overhead, ratio, max, note]

sub run_size
{
	my $n = shift;
	my $pgp_n = $n < $opt{PGP_MAX} ? $n : $opt{PGP_MAX};
	my $subj_n = $n < $opt{SUBJ_MAX} ? $n : $opt{SUBJ_MAX};
	%vars = (n => $n, reps => $opt{REPS}, pgp_n => $pgp_n, subj_n => $subj_n, lookups => $opt{LOOKUPS},
		purge_rate => $opt{PURGE_RATE}, purge_hold => $PURGE_HOLD, consent_cache => $cache);
	logmsg("$n rows: generating data");
	phase('common.sql', 'setup');
	query(join '', map { "INSERT INTO bench.floor VALUES ($_, $floor{$_}[0], $floor{$_}[1]);\n" } sort keys %floor);
	for my $sec (@sections)
	{
		logmsg("$sec: set-up");
		if ($sec eq 'purge')
		{
			-x $pgbench or die "bench: purge: pgbench not found (PATH or /usr/lib/postgresql/*/bin)\n";
			phase('purge.sql', 'setup');
			for my $rep (1 .. $opt{REPS}) { logmsg("purge, rep $rep/$opt{REPS}"); purge_rep($rep); }
		}
		else
		{
			phase("$sec.sql", 'setup');
			for my $rep (1 .. $opt{REPS})
			{
				logmsg("$sec, rep $rep/$opt{REPS}");
				phase("$sec.sql", 'rep', rep => $rep);
				audit_latency_rep() if $sec eq 'audit';
			}
			phase("$sec.sql", 'after');
		}
	}
	phase("$_.sql", 'report') for @sections;
	for (split /\n/, query("SELECT section, operation, median_s, samples_s, per_unit_us, overhead_us, ratio, max_s, note
	                          FROM bench.report ORDER BY ord"))
	{
		my @f = split /\x1f/, $_, -1;
		push @rows, [ $n, @f ];
	}
}

# ---------------------------------------------------------------- reporting
sub fmt { my ($x, $d) = @_; return (defined $x && $x ne '') ? sprintf('%.*f', $d // 2, $x) : '-'; }

# target text and PASS/MISS for a row
sub verdict
{
	my $r = shift;
	my $t = $target{"$r->[1]\t" . ($r->[2] =~ s/^\s+//r)} or return ('', '');
	my %val = (median_s => $r->[3], per_unit_us => $r->[5], overhead_us => $r->[6], ratio => $r->[7], max_s => $r->[8]);
	my $v = $val{ $t->{field} } // die "bench: targets.tsv: unknown field $t->{field}\n";
	return ($t->{label}, '') if $v eq '';
	my $ok = $t->{cmp} eq '<=' ? $v <= $t->{bound} : $v >= $t->{bound};
	return ($t->{label}, $ok ? 'PASS' : 'MISS');
}

# a throwaway cluster: keep WAL-triggered checkpoints out of the timings, and
# keep enough old WAL segments for reuse that a statement writing more WAL
# than the one before it does not create (and zero-fill) new ones inside its
# timing (a protected INSERT of 10^6 rows writes 600 MB of WAL, a plaintext
# one 370 MB: without it the first protected INSERT after a plaintext one was
# about 1 us/row slower than the next)
query("ALTER SYSTEM SET max_wal_size = '8GB';\nALTER SYSTEM SET min_wal_size = '4GB';\nSELECT pg_reload_conf();")
  if $ENV{CV_WORK};
my @sizes = ($ENV{BENCH_SCALING} // 0) eq '1'
  ? split(' ', $ENV{BENCH_SCALING_SIZES} // '10000 100000 1000000') : ($opt{ROWS});
logmsg("BENCH_REPS=$opt{REPS}: the issue asks for medians of at least 3 repetitions") if $opt{REPS} < 3;
run_size($_) for @sizes;

mkdir "$here/results";
my $csv = "$here/results/bench-" . strftime('%Y%m%dT%H%M%SZ', gmtime) . '.csv';
open my $out, '>', $csv or die "bench: $csv: $!\n";
print $out "n_rows,reps,section,operation,median_s,samples_s,per_unit_us,overhead_us,ratio,target,result,note\n";
sub csv { print $out join(',', map { '"' . (($_ // '') =~ s/"/""/gr) . '"' } @_), "\n"; }

my $pgv = query('SHOW server_version');
my $ssl = `openssl version 2>/dev/null` =~ s/^(\S+ \S+).*\n?/$1/sr || 'OpenSSL ?';
my ($cpu) = map { /^model name\s*:\s*(.*)/ ? $1 : () } do { open my $c, '<', '/proc/cpuinfo'; <$c> };
chomp(my $nproc = `nproc`);
print "\ncustomer_vault ", query('SELECT customer_vault.version()'),
  " benchmark: PostgreSQL $pgv, $ssl, $nproc CPU", ($cpu ? " ($cpu)" : ''), "\n";
print "medians of $opt{REPS} repetition(s); times inside the server (clock_timestamp), jit off, no parallel query\n";
print "rows: id bigint PK, email 25 B, phone 12 B, notes 200 B, created_at; context of every value = id::text\n";
print "AES-256-GCM floor per value (aead_floor.c: the extension's OpenSSL calls alone, 15 B AAD), us seal/open: ",
  join(', ', map { "$_ B " . fmt($floor{$_}[0], 3) . '/' . fmt($floor{$_}[1], 3) } 25, 12, 200), "\n";
print "us/unit: per row (insert, read), per lookup, per value (rotation, 'per value' reads), per row removed (purge);",
  " +us/unit: over the baseline\n";
print "purge: two identical tables of n rows (customer_id bigint, created_at timestamptz, note 200 B), 10 rows a customer,",
  " 30% past the 365-day retention on every page, customer $PURGE_HOLD under a legal hold; during each operation",
  " pgbench inserts single rows into the same table at $opt{PURGE_RATE}/s (one session); order alternates between",
  " repetitions\n" if $want{purge};
print "sections: @sections\n" if @sections != @ALL;
print "targets: test/bench/targets.tsv\n";

# the table: sections in this order (the size rows come from insert.sql)
my @order = qw(insert read mask lookup size consent import purge rotation forget brake export audit);
my %rank = map { $order[$_] => $_ } 0 .. $#order;
my $line = "%-9s %-52s %10s %10s %10s %8s  %-24s %-6s %s\n";
for my $n (@sizes)
{
	print "\n== $n rows\n";
	printf "\n$line", 'section', 'operation', 'median s', 'us/unit', '+us/unit', 'ratio', 'target', 'result', 'note';
	print '-' x 150, "\n";
	my @mine = grep { $_->[0] == $n } @rows;
	my @sorted = map { $mine[$_] } sort { $rank{ $mine[$a][1] } <=> $rank{ $mine[$b][1] } || $a <=> $b } 0 .. $#mine;
	for my $r (@sorted)
	{
		my ($tgt, $res) = verdict($r);
		printf $line, $r->[1], $r->[2], fmt($r->[3], 3), fmt($r->[5]), fmt($r->[6]),
		  ($r->[7] ne '' ? fmt($r->[7]) . 'x' : '-'), $tgt, $res, $r->[9];
		csv($n, $opt{REPS}, @$r[ 1 .. 7 ], $tgt, $res, $r->[9]);
	}
}

# growth with table size: every row with a per-unit figure at every size
if (@sizes > 1)
{
	print "\ngrowth with table size (us per row, per lookup or per value; constant = linear growth)\n";
	printf '%-64s' . (' %12s' x @sizes) . " %12s\n", 'operation', (map { "$_ rows" } @sizes), 'last/first';
	my %per;
	$per{"$_->[1]: $_->[2]"}{ $_->[0] } = $_->[5] for grep { $_->[5] ne '' } @rows;
	for my $r (grep { $_->[0] == $sizes[0] && $_->[5] ne '' } @rows)
	{
		my $k = "$r->[1]: $r->[2]";
		next if grep { !defined $per{$k}{$_} } @sizes;
		my @v = map { $per{$k}{$_} } @sizes;
		printf '%-64s' . (' %12s' x @sizes) . " %11sx\n", substr($k, 0, 64), (map { fmt($_) } @v),
		  fmt($v[0] > 0 ? $v[-1] / $v[0] : '');
		csv($_, $opt{REPS}, 'scaling', $k, '', '', $per{$k}{$_}, '', '', '', '', 'us per unit') for @sizes;
	}
}
close $out;
print "\nCSV: $csv\n";
