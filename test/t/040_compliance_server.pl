# compliance_report() on what a regression test cannot change: libraries
# preloaded at server start or LOADed into a session, settings from the
# configuration files (ALTER SYSTEM, reload), and pg_hba.conf trust lines for
# non-local connections; each shows, and is gone once the server is fixed.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CvTest;

my $node = new_vault_node('compliance', key => random_root_key(),
	conf => "shared_preload_libraries = 'customer_vault, pg_stat_statements'\n"
	  # (PostgreSQL::Test::Cluster logs every statement by default)
	  . "log_statement = none\n");
$node->safe_psql('postgres', 'CREATE EXTENSION customer_vault CASCADE');

sub findings
{
	my ($sql_before) = @_;
	$sql_before = defined $sql_before ? "$sql_before;\n" : '';
	return $node->safe_psql('postgres',
		"${sql_before}SELECT severity || ' ' || object || ': ' || finding FROM customer_vault.compliance_report()");
}

# preloaded at start
my $f = findings();
like($f, qr/^medium library pg_stat_statements: pg_stat_statements is loaded \(shared_preload_libraries\)/m,
	'pg_stat_statements in shared_preload_libraries is reported');
is(scalar(() = $f =~ /\n/g) + 1, 1, 'and nothing else') or diag($f);

# LOADed into the session that runs the report
like(findings("LOAD 'auto_explain'"), qr/^medium library auto_explain: auto_explain is loaded \(LOAD\)/m,
	'auto_explain LOADed into the session is reported');
unlike(findings(), qr/auto_explain/, 'not in another session');

# settings from the configuration (ALTER SYSTEM and a reload)
$node->safe_psql('postgres', "ALTER SYSTEM SET log_statement = 'all'");
$node->safe_psql('postgres', 'ALTER SYSTEM SET log_parameter_max_length = 0');
$node->reload;
like(findings(), qr/^medium setting log_statement: log_statement = all/m, 'log_statement from the configuration');

# pg_hba.conf: trust over the network is reported by line, loopback is not
$node->append_conf('pg_hba.conf', "host all all 10.0.0.0/8 trust\nhostnossl all all ::/0 trust\nhost all all 127.0.0.1/32 trust\n");
my $lines = $node->safe_psql('postgres',
	"SELECT string_agg(line_number::text, ',' ORDER BY line_number) FROM pg_hba_file_rules "
	  . "WHERE auth_method = 'trust' AND (address IN ('10.0.0.0', '::'))");
$f = findings();
my @hba = $f =~ /^high (pg_hba\.conf line \d+): "trust" lets host\w* connections in without a password$/mg;
is(join(',', sort { $a <=> $b } map { /(\d+)$/ } @hba), $lines, 'the two network trust lines are reported, by line') or diag($f);
is(scalar(@hba), 2, 'the loopback trust line is not');

# the auditor sees the same, without password hashes
$node->safe_psql('postgres', "SET password_encryption = md5; CREATE ROLE regress_md5 LOGIN PASSWORD 'secret-md5'");
$node->safe_psql('postgres', 'CREATE ROLE regress_auditor LOGIN IN ROLE customer_vault_auditor');
my $hash = $node->safe_psql('postgres', "SELECT rolpassword FROM pg_authid WHERE rolname = 'regress_md5'");
like($hash, qr/^md5/, 'an MD5 hash was stored');
my $as_auditor = $node->safe_psql('postgres',
	"SELECT string_agg(concat_ws(' ', severity, object, finding, hint), E'\\n') FROM customer_vault.compliance_report()",
	extra_params => [ '-U', 'regress_auditor' ]);
like($as_auditor, qr/^medium role regress_md5 a login role has an MD5 password hash/m, 'the auditor sees the MD5 role');
like($as_auditor, qr/pg_hba\.conf line/, 'and the trust lines');
unlike($as_auditor, qr/\Q$hash\E/, 'never the hash');

# fixed: nothing left
$node->safe_psql('postgres', 'DROP ROLE regress_md5, regress_auditor');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET log_statement');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET log_parameter_max_length');
my $hba_file = $node->data_dir . '/pg_hba.conf';
my $content = slurp_file($hba_file);
$content =~ s/^host all all 10\.0\.0\.0\/8 trust\n//m;
$content =~ s/^hostnossl all all ::\/0 trust\n//m;
open my $fh, '>', $hba_file or die "could not write $hba_file: $!";
print $fh $content;
close $fh;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'customer_vault'\n");
$node->restart;
is(findings(), '', 'a fixed server reports nothing');

$node->stop;
done_testing();
