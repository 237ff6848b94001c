/**
 * `npm run demo`: the whole job on an embedded default, in about a minute. A throwaway local
 * PostgreSQL archives through `wal-push` (archive_command) while `walvault stream` receives the same
 * WAL over physical replication into a posix archive in the working directory; `walvault backup-push`
 * takes a base backup over the replication protocol, a write load runs, a recovery target is
 * recorded, the archive and its backups are listed, and `walvault restore` to that target (then
 * `pg_ctl start`, recovering through `wal-fetch`) must hold exactly the rows committed at the target.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../src/common/errors.js';
import { ClusterError, PgCluster } from '../pgcluster/index.js';
import { pgUser, type PgUser } from '../pgcluster/user.js';
import { freePort } from '../pgcluster/proc.js';
import { runBinary, runBinaryOk } from '../pgcluster/run.js';
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
  const walvault = (args: string[]): Promise<{ code: number | null; out: string }> =>
    runWalvault(args, { WALVAULT_CONFIG: configFile, WALVAULT_STATE_DIR: stateDir }, user);

  const clusters: PgCluster[] = [];
  let restoredDir: string | undefined;
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
    step('taking a base backup over the replication protocol (walvault backup-push)');
    const pushed = await walvault([
      'backup-push',
      '--pg-conninfo',
      primary.conninfo(),
      '--backup-checkpoint',
      'fast',
      '--log-level',
      'warn',
    ]);
    for (const line of pushed.out.trim().split('\n')) say(`        ${line}`);
    if (pushed.code !== 0) throw new ClusterError(`backup-push failed with exit code ${pushed.code}`);

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

    const listed = await walvault(['backup-list']);
    for (const line of listed.out.trim().split('\n')) say(`        ${line}`);

    step(`point-in-time restore to LSN ${target!.lsn} (walvault restore, then pg_ctl start; restore_command = wal-fetch)`);
    restoredDir = ownedDir(join(dir, 'restored'), user);
    const restoredRun = await walvault(['restore', '--pgdata', restoredDir, '--target-lsn', target!.lsn]);
    for (const line of restoredRun.out.trim().split('\n')) say(`        ${line}`);
    if (restoredRun.code !== 0) throw new ClusterError(`restore failed with exit code ${restoredRun.code}`);
    const rows = await startAndCount(primary, restoredDir, ownedDir(join(dir, 'sock'), user));
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
    if (restoredDir && existsSync(join(restoredDir, 'postmaster.pid'))) {
      await runBinary(clusters[0]!.binaries.binDir, 'pg_ctl', ['stop', '-D', restoredDir, '-m', 'fast', '-w'], user).catch(() => undefined);
    }
    for (const c of clusters.reverse()) await c.destroy().catch(() => undefined);
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    else say(`archive kept in ${archiveDir}`);
  }
}

/** A walvault command as the PostgreSQL OS user (archive objects stay readable by restore_command); stdout and stderr. */
function runWalvault(args: string[], env: Record<string, string>, user: PgUser): Promise<{ code: number | null; out: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(join(REPO, 'bin', 'walvault'), args, {
      env: { ...process.env, ...env, WALVAULT_NODE: process.execPath },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(user.isCurrent ? {} : { uid: user.uid, gid: user.gid, cwd: '/' }),
    });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => out.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, out: Buffer.concat(out).toString('utf8') }));
  });
}

/** `pg_ctl start` on the restored directory, as a DBA would; waits for the end of recovery; the orders it holds. */
async function startAndCount(like: PgCluster, dataDir: string, sockDir: string): Promise<number> {
  const port = await freePort();
  const log = join(sockDir, 'restored.log');
  await runBinaryOk(
    like.binaries.binDir,
    'pg_ctl',
    ['start', '-D', dataDir, '-w', '-t', '120', '-l', log, '-o', `-p ${port} -k ${sockDir} -c archive_mode=off`],
    like.osUser,
    `start the restored cluster '${dataDir}'`,
  );
  const { default: pg } = await import('pg');
  const deadline = Date.now() + 120_000;
  for (;;) {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await client.connect();
    try {
      const inRecovery = (await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r;
      if (!inRecovery) return Number((await client.query<{ n: string }>('SELECT count(*)::text AS n FROM orders')).rows[0]!.n);
    } finally {
      await client.end();
    }
    if (Date.now() > deadline) throw new ClusterError(`the restored cluster '${dataDir}' did not finish recovery within 120 s`);
    await new Promise((r) => setTimeout(r, 300));
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
