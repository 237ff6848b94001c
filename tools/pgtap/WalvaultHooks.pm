
# Runs PostgreSQL's own TAP recovery tests with walvault as archive_command and restore_command.
#
# Loaded before a test script (perl -I tools/pgtap -MWalvaultHooks t/002_archiving.pl, which is
# what tools/pgtap/run.sh does), it replaces PostgreSQL::Test::Cluster's enable_archiving and
# enable_restoring, the only two places where the framework writes `cp` commands:
#
#   archive_command = '<env> bin/wal-push %p'
#   restore_command = '<env> bin/wal-fetch %f %p'
#
# <env> names the walvault config file and state directory of the node that owns the archive
# (the origin node, as with cp: a standby restores from its root node's archive, and a node made
# from a backup inherits its origin's archive_command). Per origin node, under its base directory:
#
#   walvault-archive/   the posix archive (file://...), walvault's own layout
#   walvault.conf       archive = file://.../walvault-archive
#   walvault-state/     WALVAULT_STATE_DIR (markers, prefetched segments), written by the server
#
# Tests that look at $node->archive_dir directly (pg_stat_file('$archive/00000002.history'),
# -f "$archive/...", copy("$archive/<segment>", ...)) expect cp's flat layout. To keep those
# checks meaningful without faking them, WVTAP_MIRROR=readback (the default) appends to
# archive_command a read-back: after wal-push succeeded, `wal-fetch %f <archive_dir>/%f` fetches
# the file back from the walvault archive (decompressed, SHA-256 and cluster verified) into
# archive_dir. A file appears there only when walvault can restore it; recovery itself never
# reads archive_dir (restore_command fetches from walvault-archive). WVTAP_MIRROR=off
# leaves archive_dir empty: archive_command is then exactly '<env> bin/wal-push %p'.
package WalvaultHooks;

use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;

our $ROOT = abs_path(dirname(abs_path(__FILE__)) . '/../..');
our $NODE = $ENV{WVTAP_NODE} || 'node';
our $MIRROR = $ENV{WVTAP_MIRROR} // 'readback';

die "WalvaultHooks: $ROOT/dist/cli/walvault.js is missing (run npm ci && npm run build)\n"
  unless -f "$ROOT/dist/cli/walvault.js";
die "WalvaultHooks: WVTAP_MIRROR must be 'readback' or 'off', not '$MIRROR'\n"
  unless $MIRROR eq 'readback' || $MIRROR eq 'off';

# The walvault archive, config file and state directory of an origin node (created once).
sub setup
{
	my ($node) = @_;
	my $base = $node->basedir;
	my %s = (
		archive => "$base/walvault-archive",
		config => "$base/walvault.conf",
		state => "$base/walvault-state");
	for my $dir ($base, $s{archive}, $s{state})
	{
		mkdir $dir or die "WalvaultHooks: unable to create '$dir': $!\n"
		  unless -d $dir;
	}
	unless (-f $s{config})
	{
		open my $fh, '>', $s{config}
		  or die "WalvaultHooks: unable to write '$s{config}': $!\n";
		print $fh "archive = file://$s{archive}\n";
		close $fh;
	}
	return \%s;
}

# Environment for the launchers (they read WALVAULT_STATE_DIR from the environment only).
sub env_prefix
{
	my ($s) = @_;
	return qq{WALVAULT_NODE="$NODE" WALVAULT_CONFIG="$s->{config}" WALVAULT_STATE_DIR="$s->{state}"};
}

# The archive_command walvault uses for $node's archive (also for tests that build their own,
# e.g. one that archives only history files).
sub archive_command
{
	my ($node, %opts) = @_;
	my $s = setup($node);
	my $env = env_prefix($s);
	my $cmd = "$env $ROOT/bin/wal-push %p";
	my $mirror = $opts{mirror} // $MIRROR;
	if ($mirror eq 'readback')
	{
		my $dir = $node->archive_dir;
		# No prefetch or fast path: this reads one file back, it is not a recovery.
		$cmd .= " && $env WALVAULT_FETCH_PREFETCH=0 WALVAULT_NO_FASTPATH=1"
		  . " WALVAULT_FETCH_UNAVAILABLE=abort $ROOT/bin/wal-fetch %f \"$dir/%f\"";
	}
	return $cmd;
}

sub restore_command
{
	my ($root_node) = @_;
	my $env = env_prefix(setup($root_node));
	return "$env $ROOT/bin/wal-fetch %f %p";
}

{
	no warnings 'redefine';

	*PostgreSQL::Test::Cluster::enable_archiving = sub {
		my ($self) = @_;
		my $name = $self->name;
		my $cmd = archive_command($self);
		print "### Enabling WAL archiving (walvault wal-push) for node \"$name\"\n";
		$self->append_conf(
			'postgresql.conf', qq(
archive_mode = on
archive_command = '$cmd'
));
		return;
	};

	*PostgreSQL::Test::Cluster::enable_restoring = sub {
		my ($self, $root_node, $standby) = @_;
		my $name = $self->name;
		my $cmd = restore_command($root_node);
		print "### Enabling WAL restore (walvault wal-fetch) for node \"$name\"\n";
		$self->append_conf(
			$self->_recovery_file, qq(
restore_command = '$cmd'
));
		if ($standby)
		{
			$self->set_standby_mode();
		}
		else
		{
			$self->set_recovery_mode();
		}
		return;
	};
}

1;
