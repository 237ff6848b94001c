/**
 * `npm run demo`: the whole job on an embedded default, in about a minute. A throwaway local
 * PostgreSQL archives through `wal-push` (archive_command) while `walvault stream` receives the same
 * WAL over physical replication into a posix archive in the working directory; a write load runs, a
 * recovery target is recorded, the archive is listed, and a point-in-time restore from a base backup
 * through `wal-fetch` (restore_command) must hold exactly the rows committed at the target.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../src/common/errors.js';
import { ClusterError, PgCluster } from '../pgcluster/index.js';
import { pgUser } from '../pgcluster/user.js';
import { createStorage } from '../../src/storage/factory.js';
import { parseCompression } from '../../src/codec/codec.js';
import { silentLogger } from '../../src/common/log.js';
import { renderShow } from '../../src/cli/render/show.js';
import { showArchive } from '../../src/ops/show.js';

/** The checkout this runs from (TS sources or build/tools): the demo drives its bin/ and dist/. */
const REPO = repoRoot(dirname(fileURLToPath(import.meta.url)));

function repoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new UsageError(`unable to find the walvault checkout above '${from}': no package.json`);
  }
}

export interface DemoOptions {
  /** Where the archive and state go (default ./walvault-demo). */
  readonly dir: string;
  /** Keep the archive afterwards (clusters are always removed). */
  readonly keep: boolean;
  readonly out: (line: string) => void;
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  const say = opts.out;
  const started = Date.now();
  const step = (text: string): void => say(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${text}`);
  const user = pgUser();
  if (existsSync(join(resolve(opts.dir), 'archive'))) {
    throw new UsageError(
      `unable to run the demo in '${resolve(opts.dir)}': it holds an archive from an earlier run (--keep); remove it or pass --dir`,
    );
  }
  const dir = usableDemoDir(resolve(opts.dir), user, say);
  const archiveDir = ownedDir(join(dir, 'archive'), user);
  const stateDir = ownedDir(join(dir, 'state'), user);
  const spoolDir = ownedDir(join(dir, 'spool'), user);
  const configFile = join(dir, 'walvault.conf');
  writeFileSync(configFile, `archive = file://${archiveDir}\ncompression = zstd\n`, { mode: 0o644 });
  const env = `WALVAULT_NODE='${process.execPath}' WALVAULT_CONFIG='${configFile}' WALVAULT_STATE_DIR='${stateDir}'`;
  const archiveCommand = `${env} ${join(REPO, 'bin', 'wal-push')} %p`;
  const restoreCommand = `${env} ${join(REPO, 'bin', 'wal-fetch')} %f %p`;

  const clusters: PgCluster[] = [];
  let agent: ChildProcess | undefined;
  try {
    step('starting a throwaway PostgreSQL (1 MiB WAL segments, archive_command = wal-push)');
    const primary = await PgCluster.create({
      walSegSizeMb: 1,
      config: { archive_mode: 'on', archive_command: archiveCommand, wal_keep_size: '128MB' },
    });
    clusters.push(primary);
    await primary.start();
    say(`        PostgreSQL ${primary.version} on 127.0.0.1:${primary.port}, data in ${primary.dataDir}`);
    say(`        archive_command = '${join(REPO, 'bin', 'wal-push')} %p'   archive: ${archiveDir}`);

    step('starting the streaming agent (walvault stream, slot walvault_demo) beside archive_command');
    agent = spawn(
      process.execPath,
      [
        join(REPO, 'dist', 'cli', 'walvault.js'),
        'stream',
        '--pg-conninfo',
        primary.conninfo(),
        '--slot',
        'walvault_demo',
        '--create-slot',
        '--spool-dir',
        spoolDir,
        '--status-interval',
        '1000',
        '--log-level',
        'warn',
      ],
      {
        env: { ...process.env, WALVAULT_CONFIG: configFile },
        stdio: ['ignore', 'ignore', 'inherit'],
        // Same OS user as the server: archive objects must be readable by restore_command.
        ...(user.isCurrent ? {} : { uid: user.uid, gid: user.gid, cwd: '/' }),
      },
    );

    await primary.query('CREATE TABLE orders (id bigserial PRIMARY KEY, placed timestamptz DEFAULT now(), note text)');
    step('taking a base backup (pg_backup_start / copy / pg_backup_stop)');
    const backup = await withTimeout(primary.baseBackup({ waitForArchive: true }), 120_000, primary, 'the base backup');

    step('write load: 40 batches of 500 orders');
    let target: { lsn: string; rows: number } | undefined;
    for (let i = 1; i <= 40; i++) {
      await primary.query("INSERT INTO orders (note) SELECT md5(random()::text) || repeat('x', 200) FROM generate_series(1, 500)");
      if (i === 25) {
        const lsn = (await primary.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;
        target = { lsn, rows: i * 500 };
        say(`        recovery target recorded: LSN ${lsn} with ${target.rows} orders committed`);
      }
    }
    const total = 40 * 500;
    await primary.switchWal();
    step('waiting until every .ready segment is archived');
    await waitForArchived(primary);

    step(`what the archive holds (walvault wal-show --archive file://${archiveDir}):`);
    const storage = await createStorage(`file://${archiveDir}`);
    const report = await showArchive({ storage, compression: parseCompression('zstd'), log: silentLogger() });
    for (const line of renderShow(report, { width: 60 }).split('\n')) say(`        ${line}`);

    step(`point-in-time restore from the base backup to LSN ${target!.lsn} (restore_command = wal-fetch)`);
    const restored = await PgCluster.fromBackup(backup.dir, {
      recovery: { restoreCommand, targetLsn: target!.lsn, targetAction: 'promote' },
      config: { archive_mode: 'off' },
    });
    clusters.push(restored);
    await restored.start();
    await restored.waitForRecoveryEnd({ timeoutMs: 120_000 });
    const rows = Number((await restored.query<{ n: string }>('SELECT count(*)::text AS n FROM orders'))[0]!.n);
    const ok = rows === target!.rows;
    step(`restored cluster holds ${rows} orders; expected ${target!.rows} (the primary has ${total}): ${ok ? 'MATCH' : 'MISMATCH'}`);

    step('stopping the streaming agent (SIGTERM: archives its partial segment, exits 0)');
    const code = await stopAgent(agent);
    agent = undefined;
    say(`        agent exited with ${code}`);
    await storage.close();
    step(ok && code === 0 ? 'demo finished: archive and point-in-time restore verified' : 'demo FAILED');
    return ok && code === 0 ? 0 : 1;
  } finally {
    if (agent) await stopAgent(agent);
    for (const c of clusters.reverse()) await c.destroy().catch(() => undefined);
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    else say(`archive kept in ${archiveDir}`);
  }
}

/** The PostgreSQL OS user must reach the demo directory (archive_command runs as that user). */
function usableDemoDir(dir: string, user: ReturnType<typeof pgUser>, say: (s: string) => void): string {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (user.isCurrent || reachableByOthers(dir)) return dir;
  const fallback = join('/tmp', `walvault-demo-${process.pid}`);
  say(`note: ${dir} is not reachable by the '${user.name}' OS user PostgreSQL runs as; using ${fallback} instead`);
  mkdirSync(fallback, { recursive: true, mode: 0o755 });
  rmSync(dir, { recursive: true, force: true });
  return fallback;
}

function reachableByOthers(dir: string): boolean {
  // Every ancestor must be searchable by "other": the PostgreSQL user is neither owner nor group here.
  for (let p = dir; ; p = resolve(p, '..')) {
    if ((statSync(p).mode & 0o001) === 0) return false;
    if (resolve(p, '..') === p) return true;
  }
}

function ownedDir(dir: string, user: ReturnType<typeof pgUser>): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!user.isCurrent) chownSync(dir, user.uid, user.gid);
  return dir;
}

async function waitForArchived(cluster: PgCluster, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = await cluster.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'");
    if (ready[0]!.n === '0') return;
    if (Date.now() > deadline)
      throw new ClusterError(`archiving did not catch up within ${timeoutMs / 1000}s:\n${await cluster.logTail(20)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Demo steps never hang: a step that waits on archiving fails with the server log instead. */
async function withTimeout<T>(work: Promise<T>, ms: number, cluster: PgCluster, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void cluster.logTail(15).then((log) => reject(new ClusterError(`${what} did not finish within ${ms / 1000}s:\n${log}`)));
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function stopAgent(agent: ChildProcess): Promise<number | null> {
  return new Promise((resolveExit) => {
    if (agent.exitCode !== null) return resolveExit(agent.exitCode);
    const timer = setTimeout(() => agent.kill('SIGKILL'), 30_000);
    agent.once('exit', (code) => {
      clearTimeout(timer);
      resolveExit(code);
    });
    agent.kill('SIGTERM');
  });
}
