# CvTest: what every customer_vault TAP test needs to set up a cluster of its
# own with the library preloaded and a root key file.
package CvTest;
use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(random_root_key write_root_key root_key_file new_vault_node kill_and_recover poll_until_back);

# 64 hexadecimal characters: a fresh 256-bit root key
sub random_root_key
{
	return join '', map { sprintf '%02x', int(rand(256)) } 1 .. 32;
}

# the root key file of a node
sub root_key_file
{
	my ($node) = @_;
	return $node->basedir . '/root.key';
}

# write a key file with the given content and mode
sub write_root_key
{
	my ($path, $content, $mode) = @_;
	# created unreadable to others (umask 077), not only after the chmod
	my $old_umask = umask(077);
	open my $fh, '>', $path or die "could not write $path: $!";
	umask($old_umask);
	print $fh $content;
	close $fh;
	chmod $mode, $path or die "could not chmod $path: $!";
	return;
}

# a new cluster preloading customer_vault; options:
#   key   => root key hex (written to root_key_file($node), mode 0600; undef = none configured)
#   conf  => more postgresql.conf lines
#   start => 0 to leave it stopped
sub new_vault_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	my $conf = "shared_preload_libraries = 'customer_vault'\n";
	if (defined $opt{key})
	{
		write_root_key(root_key_file($node), "$opt{key}\n", 0600);
		$conf .= "customer_vault.root_key_file = '" . root_key_file($node) . "'\n";
	}
	$conf .= $opt{conf} if defined $opt{conf};
	$node->append_conf('postgresql.conf', $conf);
	$node->start unless defined $opt{start} && !$opt{start};
	return $node;
}

# SIGKILL a backend, wait for the postmaster's crash recovery and restart, and
# check the server log from $log_offset: the backend died of signal 9 and the
# postmaster reinitialized (and, unless recovery => 0, ran crash recovery).
# Returns that part of the log.  $label prefixes the test names.
# poll_query_until for a server coming back from a crash: PostgreSQL::Test's
# version feeds the query to psql on stdin, and a psql refused at connect
# ("the database system is in recovery mode") may exit before reading it,
# which makes IPC::Run die with "Broken pipe" on a slow machine; such an
# attempt is retried (the poll itself still times out as usual).
sub poll_until_back
{
	my ($node, $db, $query, $expected) = @_;
	for my $try (1 .. 50)
	{
		my $ok = eval { $node->poll_query_until($db, $query, $expected) };
		return $ok if defined $ok;
		die $@ unless $@ =~ /Broken pipe|EPIPE/i;
		note "poll_query_until: psql exited before reading its query (try $try), retrying";
		select(undef, undef, undef, 0.2);
	}
	return 0;
}

sub kill_and_recover
{
	my ($node, $pid, $log_offset, $label, %opt) = @_;
	my $p = defined $label ? "$label: " : '';
	is(kill('KILL', $pid), 1, "${p}SIGKILL sent to backend $pid");
	# wait until the postmaster has noticed (until then the old server still answers)
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
	ok(poll_until_back($node, 'postgres', 'SELECT NOT pg_is_in_recovery()'),
		"${p}server accepts connections again after crash recovery");
	my $log = slurp_file($node->logfile, $log_offset);
	# PostgreSQL 18 names the killed backend "client backend", earlier majors "server process"
	like($log, qr/(?:server process|client backend) \(PID $pid\) was terminated by signal 9/,
		"${p}postmaster saw the backend die of SIGKILL");
	like($log, qr/all server processes terminated; reinitializing/, "${p}postmaster reinitialized");
	like($log, qr/database system was not properly shut down; automatic recovery in progress/,
		"${p}crash recovery ran")
	  unless defined $opt{recovery} && !$opt{recovery};
	return $log;
}

1;
