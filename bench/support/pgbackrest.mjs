// pgBackRest as the peer: installed from the distribution if missing, configured per run with its
// own config file, repository, spool and lock directories (nothing under /etc, /var or /tmp shared
// with anyone else on the machine).
import { execFileSync, spawnSync } from 'node:child_process';

export const STANZA = 'bench';

function version() {
  const r = spawnSync('pgbackrest', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** `pgBackRest 2.45`, installing the Debian package first when it is missing and we are root. */
export function ensurePgbackrest(log) {
  let v = version();
  if (v) return v;
  if (process.getuid?.() !== 0) {
    throw new Error('pgbackrest is not installed and we are not root: install it (apt-get install -y pgbackrest) and rerun');
  }
  log('pgbackrest missing: apt-get install -y pgbackrest');
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'pgbackrest'], {
      encoding: 'utf8',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  let r = install();
  if (r.status !== 0) {
    // A fresh machine may have no package lists yet.
    execFileSync('apt-get', ['update'], { stdio: 'ignore' });
    r = install();
  }
  v = version();
  if (!v) throw new Error(`unable to install pgbackrest: ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join('\n')}`);
  return v;
}

/**
 * Text of a pgbackrest.conf (zst level 3 unless `compress` says otherwise). `opts.async` turns on archive-async with
 * process-max 2; logging follows the peer baseline: no file log for synchronous commands, the
 * default info file log for async ones (their errors are only visible there).
 */
export function configText({
  repo,
  pgPath,
  pgPort,
  pgSocket,
  async = false,
  spool,
  lockDir,
  logDir,
  extra = {},
  compress = { type: 'zst', level: 3 },
}) {
  const lines = [
    '[global]',
    `repo1-path=${repo}`,
    'repo1-type=posix',
    // `compress: null` leaves pgBackRest's own default (the backlog's "each tool's default" row).
    ...(compress ? [`compress-type=${compress.type}`, `compress-level=${compress.level}`] : []),
    `lock-path=${lockDir}`,
    `log-path=${logDir}`,
    'log-level-console=warn',
    'log-level-stderr=warn',
    `log-level-file=${async ? 'info' : 'off'}`,
    'start-fast=y',
  ];
  if (async) lines.push('archive-async=y', 'process-max=2', `spool-path=${spool}`);
  for (const [k, v] of Object.entries(extra)) lines.push(`${k}=${v}`);
  lines.push('', `[${STANZA}]`, `pg1-path=${pgPath}`);
  if (pgPort) lines.push(`pg1-port=${pgPort}`);
  if (pgSocket) lines.push(`pg1-socket-path=${pgSocket}`);
  lines.push('pg1-user=postgres', '');
  return lines.join('\n');
}

/** A fresh repository: a copy of the stanza template (archive.info, backup.info) made once by stanza-create. */
export function freshRepo(template, dir) {
  // cp -a keeps the owner (the PostgreSQL OS user), which a copy made by root would not.
  execFileSync('cp', ['-a', template, dir]);
  return dir;
}

export function pushCommand(conf, walPath) {
  return `pgbackrest --config=${conf} --stanza=${STANZA} archive-push ${walPath}`;
}

export function getCommand(conf, pgPath) {
  return `pgbackrest --config=${conf} --stanza=${STANZA} --pg1-path=${pgPath} archive-get %f "%p"`;
}
