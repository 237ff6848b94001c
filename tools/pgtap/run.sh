#!/bin/sh
# Runs PostgreSQL's own TAP recovery tests (src/test/recovery/t/*.pl of a PostgreSQL source tree)
# with walvault as archive_command and restore_command (tools/pgtap/WalvaultHooks.pm).
#
#   tools/pgtap/run.sh DIR [TEST.pl ...]
#
# DIR holds the .pl files and their helpers (cp_history_files, ...); without TEST names every
# DIR/*.pl runs. Nothing of DIR is changed: it is copied to a work directory that the PostgreSQL
# OS user owns. Environment:
#   PG_BINDIR               server binaries (default /usr/lib/postgresql/15/bin)
#   PG_PGXS                 pgxs of the same major, for PostgreSQL::Test::* and pg_regress
#                           (default: three levels above `pg_config --pgxs` of PG_BINDIR)
#   WALVAULT_PG_USER        OS user to run as when we are root (default postgres, else walvault-pg,
#                           created like tools/pgcluster/user.ts does)
#   WVTAP_WORK              work directory (default: a new /tmp/walvault-pgtap.XXXXXX); it keeps
#                           tmp_check/log/regress_log_* and every node's server log
#   WVTAP_MIRROR            readback (default) or off: see WalvaultHooks.pm
#   PROVE_FLAGS             extra prove flags (e.g. -v)
#   PGCTLTIMEOUT            pg_ctl's wait in seconds (default here 180, pg_ctl's own is 60): a fast
#                           shutdown waits for the archiver, which calls wal-push once per .ready
#                           segment; on a loaded machine 300 segments take longer than 60 s
# (WVTAP_, not WALVAULT_: walvault refuses WALVAULT_* variables it does not know.)
# Exit code: prove's (0 when every test passed).
set -eu

usage() { echo "usage: $0 DIR [TEST.pl ...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
src=$(cd "$1" && pwd) || usage
shift

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
[ -x "$bindir/postgres" ] || { echo "$0: no PostgreSQL server in '$bindir' (set PG_BINDIR)" >&2; exit 2; }
pgxs=${PG_PGXS:-$(dirname "$(dirname "$(dirname "$("$bindir/pg_config" --pgxs)")")")}
[ -f "$pgxs/src/test/perl/PostgreSQL/Test/Cluster.pm" ] || {
  echo "$0: no PostgreSQL::Test::Cluster under '$pgxs/src/test/perl' (set PG_PGXS)" >&2; exit 2; }
[ -x "$pgxs/src/test/regress/pg_regress" ] || { echo "$0: no pg_regress under '$pgxs'" >&2; exit 2; }
[ -f "$root/dist/cli/walvault.js" ] || { echo "$0: walvault is not built: cd $root && npm ci && npm run build" >&2; exit 2; }
perl -MIPC::Run -e 1 2>/dev/null || { echo "$0: perl module IPC::Run is missing (apt-get install libipc-run-perl)" >&2; exit 2; }
node=${WALVAULT_NODE:-$(command -v node)} || { echo "$0: node not found on PATH (set WALVAULT_NODE)" >&2; exit 2; }

# PostgreSQL refuses to run as root: run the whole prove as an unprivileged user.
as_user() { "$@"; }
user=$(id -un)
if [ "$(id -u)" = 0 ]; then
  user=${WALVAULT_PG_USER:-}
  if [ -z "$user" ]; then
    if getent passwd postgres >/dev/null; then
      user=postgres
    else
      user=walvault-pg
      getent passwd "$user" >/dev/null || useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --user-group "$user"
    fi
  fi
  [ "$(id -u "$user")" != 0 ] || { echo "$0: '$user' is root; PostgreSQL refuses to run as root" >&2; exit 2; }
  as_user() { setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups "$@"; }
fi
as_user test -r "$root/dist/cli/walvault.js" -a -x "$root/bin/wal-push" -a -x "$node" || {
  echo "$0: OS user $user cannot read $root/dist or run $node (check the directory modes)" >&2; exit 2; }

work=${WVTAP_WORK:-$(mktemp -d /tmp/walvault-pgtap.XXXXXX)}
mkdir -p "$work/t"
rm -rf "$work/tmp_check"
find "$src" -maxdepth 1 -type f -exec cp -p {} "$work/t/" \;
chmod 755 "$work"
[ "$user" = "$(id -un)" ] || chown -R "$user:" "$work"

if [ $# -eq 0 ]; then
  tests=$(cd "$work" && ls t/*.pl)
else
  tests=$(for t in "$@"; do echo "t/$(basename "$t")"; done)
fi

echo "walvault pgtap: $(cd "$root" && node dist/cli/walvault.js --version 2>/dev/null | head -1), PostgreSQL $("$bindir/postgres" --version | awk '{print $3}'), user $user, work $work"
cd "$work"
rc=0
# shellcheck disable=SC2086 # the test list and PROVE_FLAGS are word lists on purpose
as_user env HOME="$work" PATH="$bindir:$PATH" TESTDIR="$work" PG_REGRESS="$pgxs/src/test/regress/pg_regress" \
  PGCTLTIMEOUT="${PGCTLTIMEOUT:-180}" WVTAP_NODE="$node" WVTAP_MIRROR="${WVTAP_MIRROR:-readback}" \
  prove ${PROVE_FLAGS:-} --exec "perl -I $pgxs/src/test/perl -I $here -I $work/t -MWalvaultHooks" $tests || rc=$?
echo "walvault pgtap: logs in $work/tmp_check/log"
exit $rc
