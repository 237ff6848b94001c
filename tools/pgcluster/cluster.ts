/**
 * A throwaway PostgreSQL cluster on loopback: initdb into a temp dir, start/stop/crash, SQL
 * helpers, low-level base backups and recovery from them. Used by `npm run demo`, the tests and
 * the benchmarks. Servers run as an unprivileged OS user (see user.ts) and are registered so that
 * an interrupted process stops them (see registry.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { copyFile, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describeCause } from '../../src/common/errors.js';
import { ClusterError } from './errors.js';
import { silentLogger, type Logger } from '../../src/common/log.js';
import { findBinaries, type PgBinaries } from './binaries.js';
import { appendConf, baseSettings, confLine, hbaContent, writeRuntimeBlock, type ConfMap } from './conf.js';
import { copyDataDirForBackup, copyWholeDir, segmentRange } from './datadir.js';
import { childPids, freePort, settlesWithin, sleep } from './proc.js';
import { processAlive, register, unregister, type Registered } from './registry.js';
import { pgEnv, runBinaryOk } from './run.js';
import { ensureUsableBy, giveToUser, giveTreeToUser, pgUser, spawnIdentity, type PgUser } from './user.js';

const { Client } = pg;
type PgClient = pg.Client;
type Row = Record<string, unknown>;

/** The superuser every harness cluster is initialized with. */
export const SUPERUSER = 'postgres';
const DATABASE = 'postgres';

export interface ClusterOptions {
  /** Major version (13..18) or `any` (default). */
  major?: number | 'any';
  /** initdb --wal-segsize in MiB (power of two, 1..1024); PostgreSQL's default is 16. */
  walSegSizeMb?: number;
  /** postgresql.conf settings applied over the harness defaults (see conf.ts baseSettings). */
  config?: ConfMap;
  /** Extra pg_hba.conf lines, placed before the harness's trust lines. */
  hba?: string[];
  initdbArgs?: string[];
  /**
   * Archive every finished WAL file into `<baseDir>/archive` (see `archiveDir`): archive_mode=on
   * and a `cp` archive_command that refuses to overwrite. `config` may still override both.
   */
  archive?: boolean;
  /** Parent directory for the cluster's own temp directory (default: the OS temp dir). */
  baseDir?: string;
  log?: Logger;
  /** How long start() waits for the server to accept connections (default 60 s). */
  startTimeoutMs?: number;
}

export interface RecoveryOptions {
  restoreCommand?: string;
  targetTime?: string | Date;
  /** An LSN in PostgreSQL's text form, e.g. `0/3000060`. */
  targetLsn?: string;
  targetXid?: string | number;
  targetName?: string;
  targetTimeline?: 'latest' | 'current' | number;
  targetAction?: 'pause' | 'promote' | 'shutdown';
  targetInclusive?: boolean;
}

export interface FromBackupOptions {
  recovery?: RecoveryOptions;
  /** Write standby.signal (stay in recovery, follow primaryConninfo / restoreCommand) instead of recovery.signal. */
  standby?: boolean;
  /** libpq conninfo of the primary to stream from, e.g. `other.conninfo()`. */
  primaryConninfo?: string;
  primarySlotName?: string;
  /** postgresql.conf settings applied over what the backup brought along. */
  config?: ConfMap;
  /** Replaces pg_hba.conf: these lines, then the harness's trust lines. */
  hba?: string[];
  baseDir?: string;
  log?: Logger;
  startTimeoutMs?: number;
  /** Move the backup directory into the new cluster instead of copying it (the backup is used up). */
  consume?: boolean;
  /**
   * Archive into this cluster's own `<baseDir>/archive` (as ClusterOptions.archive). Without it the
   * restored server keeps whatever archive settings the backup brought along.
   */
  archive?: boolean;
}

export interface BaseBackupOptions {
  label?: string;
  /** Where to put the backup (must not exist). Default: a directory inside this cluster's temp dir. */
  dir?: string;
  /** Passed to pg_backup_stop / pg_stop_backup (default true: wait until the WAL is archived). */
  waitForArchive?: boolean;
  /** Also copy the WAL from the start to the stop segment into the backup's pg_wal (default false). */
  includeWal?: boolean;
}

export interface BaseBackup {
  dir: string;
  label: string;
  major: number;
  startLsn: string;
  stopLsn: string;
  /** WAL file holding the backup's start (redo) point. */
  startWalFile: string;
  /** WAL file holding the backup's stop point. */
  stopWalFile: string;
  /** The backup_label content PostgreSQL returned. */
  labelFile: string;
}

export interface ConnectionInfo {
  host: string;
  port: number;
  user: string;
  database: string;
}

export interface StopOptions {
  mode?: 'smart' | 'fast' | 'immediate';
  timeoutMs?: number;
}

export interface GenerateWalOptions {
  /** Insert this many md5 text rows. */
  rows?: number;
  /** Insert rows until at least this many bytes of WAL were written. */
  bytes?: number;
  table?: string;
}

interface ClusterParts {
  bin: PgBinaries;
  user: PgUser;
  log: Logger;
  baseDir: string;
  socketDir: string;
  ownsSocketDir: boolean;
  startTimeoutMs: number;
}

const SHUTDOWN_SIGNAL = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' } as const;
/** A Unix socket path must fit in sun_path (108 bytes) including `/.s.PGSQL.NNNNN`. */
const MAX_SOCKET_DIR = 90;

function makeTempDir(parent: string | undefined, prefix: string): string {
  const root = parent ?? os.tmpdir();
  mkdirSync(root, { recursive: true });
  return mkdtempSync(path.join(root, prefix));
}

export class PgCluster {
  readonly major: number;
  readonly version: string;
  readonly binaries: PgBinaries;
  /** The OS user the server runs as. */
  readonly osUser: PgUser;
  /** Database superuser (no password: trust on loopback). */
  readonly user = SUPERUSER;
  readonly database = DATABASE;
  readonly baseDir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  /** The server's stderr log (all starts appended). */
  readonly logFile: string;
  private archivePath: string | undefined;

  private readonly log: Logger;
  private readonly ownsSocketDir: boolean;
  private readonly startTimeoutMs: number;
  private portNumber = 0;
  private child: ChildProcess | undefined;
  private childExit: Promise<void> | undefined;
  private admin: Promise<PgClient> | undefined;
  private destroyed = false;
  private readonly registration: Registered;

  private constructor(parts: ClusterParts) {
    this.binaries = parts.bin;
    this.major = parts.bin.major;
    this.version = parts.bin.version;
    this.osUser = parts.user;
    this.log = parts.log;
    this.baseDir = parts.baseDir;
    this.dataDir = path.join(parts.baseDir, 'data');
    this.logFile = path.join(parts.baseDir, 'postgres.log');
    this.socketDir = parts.socketDir;
    this.ownsSocketDir = parts.ownsSocketDir;
    this.startTimeoutMs = parts.startTimeoutMs;
    this.registration = {
      postmasterPid: () => this.child?.pid,
      ownedDirs: () => (this.ownsSocketDir ? [this.baseDir, this.socketDir] : [this.baseDir]),
    };
    register(this.registration);
  }

  /** Allocates the directories (registered for cleanup at once, so a half-made cluster is still removed). */
  private static allocate(major: number | 'any', opts: { baseDir?: string; log?: Logger; startTimeoutMs?: number }): PgCluster {
    const log = (opts.log ?? silentLogger()).child({ component: 'pgcluster' });
    const user = pgUser((msg) => log.info(msg));
    const bin = ensureUsableBy(findBinaries(major), user);
    const baseDir = makeTempDir(opts.baseDir, `walvault-pg${bin.major}-`);
    let socketDir = path.join(baseDir, 'sock');
    let ownsSocketDir = false;
    if (socketDir.length > MAX_SOCKET_DIR) {
      socketDir = makeTempDir(undefined, 'wvpg-');
      ownsSocketDir = true;
    } else {
      mkdirSync(socketDir);
    }
    const cluster = new PgCluster({
      bin,
      user,
      log: log.child({ major: bin.major, baseDir }),
      baseDir,
      socketDir,
      ownsSocketDir,
      startTimeoutMs: opts.startTimeoutMs ?? 60_000,
    });
    try {
      giveToUser(baseDir, user);
      giveToUser(socketDir, user);
    } catch (err) {
      cluster.discardSync();
      throw new ClusterError(`unable to prepare directory '${baseDir}' for OS user ${user.name}: ${describeCause(err)}`, { cause: err });
    }
    return cluster;
  }

  /** initdb into a fresh temp dir and configure; call start() next. */
  static async create(opts: ClusterOptions = {}): Promise<PgCluster> {
    const cluster = PgCluster.allocate(opts.major ?? 'any', opts);
    try {
      await cluster.initdb(opts);
      cluster.portNumber = await freePort();
      return cluster;
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
  }

  /**
   * A new cluster whose data directory is a copy of `backupDir` (a baseBackup() result), set up to
   * recover: recovery.signal (or standby.signal) and the recovery settings in postgresql.auto.conf.
   */
  static async fromBackup(backupDir: string, opts: FromBackupOptions = {}): Promise<PgCluster> {
    let major: number;
    try {
      major = Number((await readFile(path.join(backupDir, 'PG_VERSION'), 'utf8')).trim());
    } catch (err) {
      throw new ClusterError(`unable to read backup '${backupDir}': ${describeCause(err)}`, { cause: err });
    }
    const cluster = PgCluster.allocate(major, opts);
    try {
      if (opts.consume) await rename(backupDir, cluster.dataDir);
      else await copyWholeDir(backupDir, cluster.dataDir);
      if (opts.hba) await writeFile(path.join(cluster.dataDir, 'pg_hba.conf'), hbaContent(opts.hba));
      await appendConf(path.join(cluster.dataDir, 'postgresql.conf'), 'walvault pgcluster: fromBackup overrides', {
        ...(opts.archive ? cluster.archiveSettings() : {}),
        ...(opts.config ?? {}),
      });
      await cluster.writeRecoverySetup(opts);
      await giveTreeToUser(cluster.dataDir, cluster.osUser);
      chmodSync(cluster.dataDir, 0o700);
      cluster.portNumber = await freePort();
      cluster.log.debug({ backupDir }, 'cluster prepared from backup');
      return cluster;
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
  }

  private async initdb(opts: ClusterOptions): Promise<void> {
    const archive = opts.archive ? this.archiveSettings() : {};
    const args = ['-D', this.dataDir, '-U', SUPERUSER, '--auth=trust', '-N', '--no-locale', '-E', 'UTF8'];
    if (opts.walSegSizeMb !== undefined) args.push(`--wal-segsize=${opts.walSegSizeMb}`);
    args.push(...(opts.initdbArgs ?? []));
    const t0 = Date.now();
    await runBinaryOk(this.binaries.binDir, 'initdb', args, this.osUser, `initialize PostgreSQL cluster '${this.dataDir}'`);
    await writeFile(path.join(this.dataDir, 'pg_hba.conf'), hbaContent(opts.hba));
    await appendConf(path.join(this.dataDir, 'postgresql.conf'), 'walvault pgcluster defaults', {
      ...baseSettings(),
      ...archive,
      ...(opts.config ?? {}),
    });
    this.log.debug({ durationMs: Date.now() - t0, binDir: this.binaries.binDir }, 'initdb done');
  }

  /** Creates `<baseDir>/archive` and returns settings that archive into it without ever overwriting. */
  private archiveSettings(): ConfMap {
    const dir = this.makeDir('archive');
    this.archivePath = dir;
    return {
      archive_mode: 'on',
      archive_command: `test ! -f '${dir}/%f' && cp '%p' '${dir}/%f'`,
    };
  }

  /** Writes the signal file and recovery settings. The server must be stopped. */
  async writeRecoverySetup(opts: Pick<FromBackupOptions, 'recovery' | 'standby' | 'primaryConninfo' | 'primarySlotName'>): Promise<void> {
    this.assertStopped('configure recovery');
    const r = opts.recovery ?? {};
    const settings: ConfMap = {};
    if (r.restoreCommand !== undefined) settings['restore_command'] = r.restoreCommand;
    if (r.targetTime !== undefined)
      settings['recovery_target_time'] = r.targetTime instanceof Date ? r.targetTime.toISOString() : r.targetTime;
    if (r.targetLsn !== undefined) settings['recovery_target_lsn'] = r.targetLsn;
    if (r.targetXid !== undefined) settings['recovery_target_xid'] = String(r.targetXid);
    if (r.targetName !== undefined) settings['recovery_target_name'] = r.targetName;
    if (r.targetTimeline !== undefined) settings['recovery_target_timeline'] = String(r.targetTimeline);
    if (r.targetAction !== undefined) settings['recovery_target_action'] = r.targetAction;
    if (r.targetInclusive !== undefined) settings['recovery_target_inclusive'] = r.targetInclusive;
    if (opts.primaryConninfo !== undefined) settings['primary_conninfo'] = opts.primaryConninfo;
    if (opts.primarySlotName !== undefined) settings['primary_slot_name'] = opts.primarySlotName;
    const signal = opts.standby ? 'standby.signal' : 'recovery.signal';
    await writeFile(path.join(this.dataDir, signal), '');
    giveToUser(path.join(this.dataDir, signal), this.osUser);
    const autoConf = path.join(this.dataDir, 'postgresql.auto.conf');
    const existing = existsSync(autoConf) ? await readFile(autoConf, 'utf8') : '';
    const lines = Object.entries(settings).map(([k, v]) => confLine(k, v));
    await writeFile(autoConf, `${existing.replace(/\n*$/, '\n')}${lines.join('\n')}\n`);
    giveToUser(autoConf, this.osUser);
  }

  // ---------------------------------------------------------------- lifecycle

  /** Set when created with `archive: true`: where the server's archive_command copies WAL files. */
  get archiveDir(): string | undefined {
    return this.archivePath;
  }

  get port(): number {
    return this.portNumber;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** PID of the postmaster while running. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get connectionInfo(): ConnectionInfo {
    return { host: '127.0.0.1', port: this.portNumber, user: SUPERUSER, database: DATABASE };
  }

  /** libpq keyword/value form, e.g. for primary_conninfo. */
  conninfo(extra: Record<string, string> = {}): string {
    const kv = { host: '127.0.0.1', port: String(this.portNumber), user: SUPERUSER, dbname: DATABASE, ...extra };
    return Object.entries(kv)
      .map(([k, v]) => `${k}='${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
      .join(' ');
  }

  get connectionString(): string {
    return `postgresql://${SUPERUSER}@127.0.0.1:${this.portNumber}/${DATABASE}`;
  }

  /** Starts the postmaster and waits until it accepts connections (or fails, with its log in the error). */
  async start(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.destroyed) throw new ClusterError(`unable to start PostgreSQL cluster '${this.baseDir}': destroyed`);
    if (this.child) return;
    const timeoutMs = opts.timeoutMs ?? this.startTimeoutMs;
    const t0 = Date.now();
    if (this.portNumber === 0) this.portNumber = await freePort();
    for (let attempt = 1; ; attempt++) {
      const logOffset = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
      await this.spawnPostmaster();
      const outcome = await this.waitUntilReady(t0 + timeoutMs);
      if (outcome === 'ready') {
        this.log.debug({ port: this.portNumber, durationMs: Date.now() - t0, attempt }, 'server started');
        return;
      }
      const log = await this.readLog(logOffset);
      const portTaken = /could not bind|Address already in use|could not create any TCP\/IP sockets/i.test(log);
      // After kill9 the old server's children may still hold its shared memory for a moment.
      const shmemBusy = /pre-existing shared memory block/i.test(log);
      if (outcome === 'exited' && (portTaken || shmemBusy) && attempt < 8 && Date.now() - t0 < timeoutMs) {
        this.log.debug({ attempt, portTaken, shmemBusy }, 'server start retried');
        if (portTaken) this.portNumber = await freePort();
        else await sleep(300);
        continue;
      }
      if (outcome === 'timeout') await this.stop({ mode: 'immediate' }).catch(() => undefined);
      const why = outcome === 'timeout' ? `not accepting connections after ${timeoutMs} ms` : 'server exited during startup';
      throw new ClusterError(`unable to start PostgreSQL cluster '${this.dataDir}': ${why}; server log:\n${tail(log, 30)}`);
    }
  }

  private async spawnPostmaster(): Promise<void> {
    await writeRuntimeBlock(path.join(this.dataDir, 'postgresql.conf'), {
      port: this.portNumber,
      unix_socket_directories: this.socketDir,
    });
    const fd = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      // Not detached: a Ctrl-C in the terminal reaches the server too (fast shutdown), besides our own exit handlers.
      child = spawn(path.join(this.binaries.binDir, 'postgres'), ['-D', this.dataDir], {
        cwd: '/',
        env: pgEnv(),
        stdio: ['ignore', fd, fd],
        ...spawnIdentity(this.osUser),
      });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.childExit = new Promise<void>((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null, err?: Error): void => {
        if (this.child === child) this.child = undefined;
        this.log.debug({ code, signal, err }, 'postmaster exited');
        resolve();
      };
      child.once('exit', (code, signal) => done(code, signal));
      child.once('error', (err) => done(null, null, err));
    });
    child.unref();
  }

  private async waitUntilReady(deadline: number): Promise<'ready' | 'exited' | 'timeout'> {
    const child = this.child;
    while (Date.now() < deadline) {
      if (this.child !== child || !child) return 'exited';
      const client = new Client({ ...this.connectionInfo, connectionTimeoutMillis: 2_000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        return 'ready';
      } catch {
        // Not yet listening, still starting up, or not yet consistent (hot standby): poll again.
      } finally {
        await client.end().catch(() => undefined);
      }
      await sleep(50);
    }
    return this.child === child && child ? 'timeout' : 'exited';
  }

  private async readLog(offset = 0): Promise<string> {
    try {
      const buf = await readFile(this.logFile);
      return buf.subarray(offset).toString('utf8');
    } catch {
      return '(no server log)';
    }
  }

  /** The last `lines` lines of the server log, for error messages and test failure output. */
  async logTail(lines = 40): Promise<string> {
    return tail(await this.readLog(), lines);
  }

  /** Stops the server (fast by default) and waits for the postmaster to exit. No-op when stopped. */
  async stop(opts: StopOptions = {}): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    const mode = opts.mode ?? 'fast';
    await this.closeAdmin();
    const exited = this.childExit;
    try {
      process.kill(child.pid, SHUTDOWN_SIGNAL[mode]);
    } catch {
      // Already gone; the exit handler clears the state.
    }
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const done = exited ? await settlesWithin(exited, timeoutMs) : true;
    if (!done) {
      this.log.warn({ mode, timeoutMs }, 'server did not stop in time; killing it');
      await this.kill9();
      throw new ClusterError(`unable to stop PostgreSQL cluster '${this.dataDir}': no exit within ${timeoutMs} ms (${mode} mode); killed`);
    }
    this.log.debug({ mode }, 'server stopped');
  }

  async restart(opts: StopOptions = {}): Promise<void> {
    await this.stop(opts);
    await this.start();
  }

  /**
   * Crash simulation: SIGKILL the postmaster. Its children notice and exit by themselves (shared
   * memory stays attached until they do, which would block the next start); any still there
   * after 5 s are killed too.
   */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    await this.closeAdmin(true);
    const orphans = childPids(child.pid);
    const exited = this.childExit;
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    await exited;
    const deadline = Date.now() + 5_000;
    while (orphans.some(processAlive) && Date.now() < deadline) await sleep(20);
    for (const pid of orphans.filter(processAlive)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    this.log.debug({ orphans: orphans.length }, 'server killed with SIGKILL');
  }

  /** Stops the server if running and removes every file of the cluster. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      if (this.child) await this.stop({ mode: 'immediate', timeoutMs: 20_000 }).catch(() => this.kill9());
      await this.closeAdmin(true);
    } finally {
      await rm(this.baseDir, { recursive: true, force: true });
      if (this.ownsSocketDir) await rm(this.socketDir, { recursive: true, force: true });
      unregister(this.registration);
    }
  }

  /** For a cluster that never got as far as running anything. */
  private discardSync(): void {
    this.destroyed = true;
    rmSync(this.baseDir, { recursive: true, force: true });
    if (this.ownsSocketDir) rmSync(this.socketDir, { recursive: true, force: true });
    unregister(this.registration);
  }

  private assertStopped(what: string): void {
    if (this.child) throw new ClusterError(`unable to ${what} for cluster '${this.dataDir}': server is running; stop it first`);
  }

  // ---------------------------------------------------------------- SQL

  /** A new connected client; the caller ends it. `replication: true` opens a physical walsender session. */
  async connect(opts: { replication?: boolean; database?: string } = {}): Promise<PgClient> {
    const config: pg.ClientConfig & { replication?: string } = {
      ...this.connectionInfo,
      database: opts.database ?? DATABASE,
      connectionTimeoutMillis: 10_000,
      ...(opts.replication ? { replication: 'true' } : {}),
    };
    const client = new Client(config);
    // An idle client whose server dies (kill9 tests) emits 'error'; unhandled, that would crash the process.
    client.on('error', (err) => this.log.debug({ err }, 'client connection error'));
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw new ClusterError(`unable to connect to PostgreSQL '${this.connectionString}': ${describeCause(err)}`, { cause: err });
    }
    return client;
  }

  private adminClient(): Promise<PgClient> {
    if (!this.admin) {
      const p = this.connect();
      this.admin = p;
      p.then(
        (c) =>
          c.on('error', () => {
            if (this.admin === p) this.admin = undefined;
          }),
        () => {
          if (this.admin === p) this.admin = undefined;
        },
      );
    }
    return this.admin;
  }

  private async closeAdmin(abrupt = false): Promise<void> {
    const p = this.admin;
    this.admin = undefined;
    if (!p) return;
    const c = await p.catch(() => undefined);
    if (!c) return;
    if (abrupt) await settlesWithin(c.end(), 200);
    else await c.end().catch(() => undefined);
  }

  /** Runs one statement on a shared session and returns its rows. */
  async query<R extends Row = Row>(sql: string, params: unknown[] = []): Promise<R[]> {
    const client = await this.adminClient();
    try {
      const res = await client.query<R>(sql, params);
      return res.rows;
    } catch (err) {
      if (!(err instanceof Error && 'severity' in err)) {
        // Connection-level failure: drop the session so the next call reconnects.
        this.admin = undefined;
        await client.end().catch(() => undefined);
      }
      throw err;
    }
  }

  private async one<R extends Row>(sql: string, params: unknown[] = []): Promise<R> {
    const rows = await this.query<R>(sql, params);
    const row = rows[0];
    if (!row) throw new ClusterError(`unable to query PostgreSQL '${this.connectionString}': no row from ${sql}`);
    return row;
  }

  /** The cluster's system identifier as a decimal string. */
  async systemIdentifier(): Promise<string> {
    return (await this.one<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')).id;
  }

  /** The system identifier as pg_controldata reads it from global/pg_control (needs the client tools). */
  async controlDataSystemId(): Promise<string> {
    const out = await this.controlData();
    const id = /^Database system identifier:\s+(\d+)\s*$/m.exec(out)?.[1];
    if (!id) throw new ClusterError(`unable to read system identifier '${this.dataDir}': not in pg_controldata output`);
    return id;
  }

  /** Raw pg_controldata output (works while stopped too). */
  async controlData(): Promise<string> {
    if (!this.binaries.hasClientTools) {
      throw new ClusterError(`unable to run pg_controldata '${this.binaries.binDir}': not installed for PostgreSQL ${this.major}`);
    }
    const r = await runBinaryOk(
      this.binaries.binDir,
      'pg_controldata',
      ['-D', this.dataDir],
      this.osUser,
      `read control data '${this.dataDir}'`,
    );
    return r.stdout;
  }

  async inRecovery(): Promise<boolean> {
    return (await this.one<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).r;
  }

  /** Insert position on a primary, last replayed position on a server in recovery. */
  async currentLsn(): Promise<string> {
    const row = await this.one<{ lsn: string }>(
      'SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn',
    );
    return row.lsn;
  }

  /** Current timeline: of the insert position on a primary, of the last checkpoint or restartpoint in recovery. */
  async timeline(): Promise<number> {
    const row = await this.one<{ tli: string }>(
      `SELECT CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id::text FROM pg_control_checkpoint())
                   ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text END AS tli`,
    );
    return Number(row.tli);
  }

  walDir(): string {
    return path.join(this.dataDir, 'pg_wal');
  }

  async walSegmentSize(): Promise<number> {
    const row = await this.one<{ n: string }>("SELECT pg_size_bytes(current_setting('wal_segment_size'))::text AS n");
    return Number(row.n);
  }

  /** WAL file name for an LSN (the previous file when the LSN is exactly on a boundary, like PostgreSQL). */
  async walFileName(lsn: string): Promise<string> {
    return (await this.one<{ f: string }>('SELECT pg_walfile_name($1::pg_lsn) AS f', [lsn])).f;
  }

  /**
   * Ends the current WAL segment and returns its file name. A tiny WAL record is written first so
   * there is always something to switch away from.
   */
  async switchWal(): Promise<string> {
    await this.query("SELECT pg_logical_emit_message(false, 'walvault', 'switch')");
    return (await this.one<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')).f;
  }

  async checkpoint(): Promise<void> {
    await this.query('CHECKPOINT');
  }

  /** Writes WAL by inserting md5 text rows; returns the LSN range written. */
  async generateWal(opts: GenerateWalOptions): Promise<{ startLsn: string; endLsn: string; bytes: number }> {
    const table = opts.table ?? 'walvault_filler';
    if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new ClusterError(`unable to generate WAL into table '${table}': invalid name`);
    await this.query(`CREATE TABLE IF NOT EXISTS ${table} (id bigserial PRIMARY KEY, payload text NOT NULL)`);
    const startLsn = await this.currentLsn();
    const insert = `INSERT INTO ${table} (payload) SELECT md5(random()::text) || md5(g::text) FROM generate_series(1, $1::int) g`;
    if (opts.rows !== undefined) await this.query(insert, [opts.rows]);
    if (opts.bytes !== undefined) {
      for (;;) {
        const done = await this.one<{ n: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::text AS n', [startLsn]);
        const left = opts.bytes - Number(done.n);
        if (left <= 0) break;
        // A row costs roughly 120-150 bytes of WAL (heap + index); overshoot a little rather than loop often.
        await this.query(insert, [Math.min(50_000, Math.max(100, Math.ceil(left / 120)))]);
      }
    }
    const endLsn = await this.currentLsn();
    const diff = await this.one<{ n: string }>('SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::text AS n', [endLsn, startLsn]);
    return { startLsn, endLsn, bytes: Number(diff.n) };
  }

  /** Creates a directory inside the cluster's temp dir that the server's OS user owns (e.g. an archive). */
  makeDir(name: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(name) || name === 'data' || name === '.' || name === '..') {
      throw new ClusterError(`unable to create directory '${name}': invalid or reserved name`);
    }
    const dir = path.join(this.baseDir, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    giveToUser(dir, this.osUser);
    return dir;
  }

  // ---------------------------------------------------------------- backup and recovery

  /**
   * Base backup through the low-level API (no pg_basebackup: the npm builds lack it, and PG 15's
   * refuses newer servers). One session stays open from start to stop, as non-exclusive mode needs.
   */
  async baseBackup(opts: BaseBackupOptions = {}): Promise<BaseBackup> {
    const label = opts.label ?? `walvault-harness-${Date.now()}`;
    const dir = opts.dir ?? path.join(this.makeDir('backups'), label.replace(/[^A-Za-z0-9._-]/g, '_'));
    const wait = opts.waitForArchive ?? true;
    const session = await this.connect();
    try {
      const startSql =
        this.major >= 15 ? 'SELECT pg_backup_start($1, true)::text AS lsn' : 'SELECT pg_start_backup($1, true, false)::text AS lsn';
      const started = await session.query<{ lsn: string }>(startSql, [label]);
      const startLsn = started.rows[0]?.lsn;
      if (!startLsn) throw new ClusterError(`unable to start backup '${label}': no start LSN returned`);
      await copyDataDirForBackup(this.dataDir, dir);
      const stopSql =
        this.major >= 15
          ? 'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_backup_stop($1)'
          : 'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_stop_backup(false, $1)';
      const stopped = await session.query<{ lsn: string; labelfile: string; spcmapfile: string | null }>(stopSql, [wait]);
      const row = stopped.rows[0];
      if (!row) throw new ClusterError(`unable to stop backup '${label}': no row returned`);
      await writeFile(path.join(dir, 'backup_label'), row.labelfile);
      if (row.spcmapfile) await writeFile(path.join(dir, 'tablespace_map'), row.spcmapfile);
      const names = await session.query<{ s: string; e: string }>(
        'SELECT pg_walfile_name($1::pg_lsn) AS s, pg_walfile_name($2::pg_lsn) AS e',
        [startLsn, row.lsn],
      );
      const startWalFile = names.rows[0]?.s ?? '';
      const stopWalFile = names.rows[0]?.e ?? '';
      if (opts.includeWal) await this.copyWalInto(dir, startWalFile, stopWalFile);
      await giveTreeToUser(dir, this.osUser);
      this.log.debug({ label, startLsn, stopLsn: row.lsn }, 'base backup taken');
      return { dir, label, major: this.major, startLsn, stopLsn: row.lsn, startWalFile, stopWalFile, labelFile: row.labelfile };
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      if (err instanceof ClusterError) throw err;
      throw new ClusterError(`unable to take base backup '${label}': ${describeCause(err)}`, { cause: err });
    } finally {
      await session.end().catch(() => undefined);
    }
  }

  private async copyWalInto(backupDir: string, first: string, last: string): Promise<void> {
    const segSize = await this.walSegmentSize();
    const wanted = new Set(segmentRange(first, last, segSize));
    for (const name of await readdir(this.walDir())) {
      if (wanted.has(name) || name.endsWith('.history')) {
        await copyFile(path.join(this.walDir(), name), path.join(backupDir, 'pg_wal', name));
        wanted.delete(name);
      }
    }
    if (wanted.size > 0) {
      throw new ClusterError(`unable to copy WAL into backup '${backupDir}': no longer in pg_wal: ${[...wanted].join(', ')}`);
    }
  }

  /** pg_ctl promote, then waits until the server has left recovery. */
  async promote(opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    await runBinaryOk(
      this.binaries.binDir,
      'pg_ctl',
      ['promote', '-D', this.dataDir, '-w', '-t', String(Math.ceil(timeoutMs / 1000))],
      this.osUser,
      `promote PostgreSQL cluster '${this.dataDir}'`,
    );
    await this.waitForRecoveryEnd({ timeoutMs });
  }

  /** `primary` once out of recovery; `paused` when replay is paused (e.g. at a target with action pause). */
  async recoveryState(): Promise<'primary' | 'recovering' | 'paused'> {
    const pausedExpr = this.major >= 14 ? "pg_get_wal_replay_pause_state() <> 'not paused'" : 'pg_is_wal_replay_paused()';
    const row = await this.one<{ r: boolean; p: boolean | null }>(
      `SELECT pg_is_in_recovery() AS r, CASE WHEN pg_is_in_recovery() THEN ${pausedExpr} END AS p`,
    );
    if (!row.r) return 'primary';
    return row.p ? 'paused' : 'recovering';
  }

  /** Waits until the server is out of recovery; fails early if it exits or pauses at a target. */
  async waitForRecoveryEnd(opts: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    while (Date.now() < deadline) {
      if (!this.child) {
        throw new ClusterError(
          `unable to finish recovery of cluster '${this.dataDir}': server exited; server log:\n${await this.logTail(30)}`,
        );
      }
      // Errors while polling mean the server is still starting or not yet consistent.
      const state = await this.recoveryState().catch(() => 'unknown' as const);
      if (state === 'primary') return;
      if (state === 'paused') {
        throw new ClusterError(
          `unable to finish recovery of cluster '${this.dataDir}': replay paused (at the recovery target? use targetAction 'promote')`,
        );
      }
      await sleep(50);
    }
    throw new ClusterError(
      `unable to finish recovery of cluster '${this.dataDir}': still in recovery; server log:\n${await this.logTail(30)}`,
    );
  }

  /** Waits until a server in recovery has replayed WAL up to `lsn`. */
  async waitForLsnReplayed(lsn: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    for (;;) {
      const row = await this.one<{ done: boolean | null }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done', [lsn]);
      if (row.done === null)
        throw new ClusterError(`unable to wait for replay of '${lsn}': server '${this.dataDir}' never was in recovery`);
      if (row.done) return;
      if (Date.now() > deadline) {
        throw new ClusterError(`unable to wait for replay of '${lsn}': not replayed in time; server log:\n${await this.logTail(30)}`);
      }
      await sleep(50);
    }
  }
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
