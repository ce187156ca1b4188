# CvTest: what every customer_vault TAP test needs to set up a cluster of its
# own with the library preloaded and a root key file.
package CvTest;
use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(random_root_key write_root_key root_key_file new_vault_node);

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
	open my $fh, '>', $path or die "could not write $path: $!";
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

1;
