/**
 * Driving `walvault stream` from tests: the real launcher as a child process, its JSON log lines
 * collected, stopped gracefully (SIGTERM) or crashed (SIGKILL), and killed in afterAll whatever
 * happened. Plus readers for what the agent leaves behind: the archive's catalog and spool files,
 * the server's slot, the metrics endpoint, the process's peak RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chownSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createServer } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import { bin, pgOwnedDir, REPO, runCli, walCommands, writeConfig } from '../../support/walvault.js';
import { PgCluster } from '../../support/cluster.js';
import type { BaseBackup } from '../../../tools/pgcluster/index.js';
import { createStorage } from '../../../src/storage/factory.js';
import { listCatalog, type CatalogEntry } from '../../../src/archive/catalog/listing.js';
import { restoreFile } from '../../../src/restore/fetch.js';
import { parseCompression } from '../../../src/codec/codec.js';
import { createLogger } from '../../../src/common/log.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { pgUser, spawnIdentity } from '../../../tools/pgcluster/user.js';

// The test process itself loads the S3 SDK for S3 archives: keep its Node-version notice out of the output.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

/**
 * WALVAULT_TEST_STREAM_DEBUG=1: each agent's log also goes to /tmp/walvault-test-agent-<pid>.log,
 * and replays print their progress and what the standby asked restore_command for.
 */
const DEBUG = Boolean(process.env['WALVAULT_TEST_STREAM_DEBUG']);

/** Majors this directory runs on: 15 (Debian, full tools) and one newer npm build, when installed. */
export function streamMajors(all: number[]): number[] {
  const wanted = (process.env['WALVAULT_TEST_STREAM_MAJORS'] ?? '15,17').split(',').map(Number);
  const picked = all.filter((m) => wanted.includes(m));
  if (picked.length === 0) throw new Error(`none of the majors ${wanted.join(',')} is among the supported ${all.join(',')}`);
  return picked;
}

export interface WorkDir {
  readonly root: string;
  readonly archiveDir: string;
  readonly archiveUrl: string;
  readonly spoolDir: string;
  /** walvault config naming the posix archive, prefetch off (no detached prefetcher outlives a test). */
  readonly configFile: string;
  readonly restoreCommand: string;
}

/**
 * A temp directory owned by the PostgreSQL OS user with archive/, spool/, a config file and a
 * restore_command, made in beforeAll (not at collection time, so a filtered-out suite leaves
 * nothing behind) and removed in afterAll.
 */
export function useWorkDir(prefix: string): WorkDir {
  let current: WorkDir | undefined;
  beforeAll(() => {
    const root = pgOwnedDir(mkdtempSync(`/tmp/${prefix}`));
    const archiveDir = pgOwnedDir(join(root, 'archive'));
    const archiveUrl = `file://${archiveDir}`;
    const configFile = writeConfig(join(root, 'walvault.conf'), { archive: archiveUrl, 'fetch-prefetch': 0 });
    const { restoreCommand } = walCommands({ configFile, stateDir: pgOwnedDir(join(root, 'state')) });
    current = { root, archiveDir, archiveUrl, spoolDir: pgOwnedDir(join(root, 'spool')), configFile, restoreCommand };
  });
  afterAll(() => {
    if (current) rmSync(current.root, { recursive: true, force: true });
  });
  const get = (): WorkDir => {
    if (!current) throw new Error('useWorkDir: read inside hooks and tests only');
    return current;
  };
  return {
    get root() {
      return get().root;
    },
    get archiveDir() {
      return get().archiveDir;
    },
    get archiveUrl() {
      return get().archiveUrl;
    },
    get spoolDir() {
      return get().spoolDir;
    },
    get configFile() {
      return get().configFile;
    },
    get restoreCommand() {
      return get().restoreCommand;
    },
  };
}

export interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

export interface AgentOptions {
  cluster: PgCluster;
  archive: string;
  spoolDir: string;
  slot?: string;
  createSlot?: boolean;
  synchronous?: boolean;
  metricsPort?: number;
  maxPending?: number;
  /** Appended to the conninfo, e.g. `application_name=walvault`. */
  conninfoExtra?: string;
  extraArgs?: string[];
  env?: Record<string, string>;
}

export class Agent {
  readonly logs: LogLine[] = [];
  stderrText = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitState: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private buffered = '';

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitState = { code, signal };
        resolve(this.exitState);
      });
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderrText += d;
      this.buffered += d;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ level: 'raw', msg: line });
        }
      }
    });
    child.stdout!.resume();
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitState === undefined;
  }

  /** Peak resident set (kB) so far, from /proc/<pid>/status VmHWM. */
  peakRssKb(): number | undefined {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** A position in the log, for waitForLog(..., since) to ignore what came before. */
  mark(): number {
    return this.logs.length;
  }

  async waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 30_000, what = 'log line', since = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logs.slice(since).find(pred);
      if (hit) return hit;
      if (!this.running) throw new Error(`agent exited before ${what}:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms:\n${this.tail()}`);
      await sleep(50);
    }
  }

  /** SIGTERM (or SIGINT) and wait; returns the exit code (the agent must exit 0 on a graceful stop). */
  async stop(how: 'SIGTERM' | 'SIGINT' = 'SIGTERM', timeoutMs = 40_000): Promise<number | null> {
    if (!this.running) return this.exitState!.code;
    this.child.kill(how);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const { code, signal } = await this.exited;
    clearTimeout(timer);
    if (signal === 'SIGKILL') throw new Error(`agent did not stop within ${timeoutMs} ms:\n${this.tail()}`);
    return code;
  }

  async kill9(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  tail(n = 30): string {
    return this.stderrText.trimEnd().split('\n').slice(-n).join('\n');
  }

  /** The stream from the server broke or the server ended it; the agent reconnects either way. */
  static lostServer(l: LogLine): boolean {
    return l.msg === 'replication connection lost; reconnecting' || l.msg === 'the server ended the stream; reconnecting';
  }

  errors(): LogLine[] {
    return this.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
  }
}

const live = new Set<Agent>();
let hooked = false;

/**
 * Starts `walvault stream` as the PostgreSQL OS user (as a DBA runs it, and so that restore_command,
 * which runs as that user, can read the archive it writes; spool and archive directories must be
 * `pgOwnedDir`s). Every agent started here is SIGKILLed in afterAll if still running.
 */
export function startAgent(o: AgentOptions): Agent {
  if (!hooked) {
    hooked = true;
    afterAll(async () => {
      await Promise.all([...live].map((a) => a.kill9()));
      live.clear();
    });
  }
  const conninfo = `host=127.0.0.1 port=${o.cluster.port} user=postgres${o.conninfoExtra ? ` ${o.conninfoExtra}` : ''}`;
  const args = [
    'stream',
    '--pg-conninfo',
    conninfo,
    '--archive',
    o.archive,
    '--spool-dir',
    o.spoolDir,
    '--status-interval',
    '500',
    '--log-level',
    'info',
  ];
  if (o.slot) args.push('--slot', o.slot);
  if (o.createSlot) args.push('--create-slot');
  if (o.synchronous) args.push('--synchronous');
  if (o.metricsPort !== undefined) args.push('--metrics-port', String(o.metricsPort));
  if (o.maxPending !== undefined) args.push('--max-pending', String(o.maxPending));
  args.push(...(o.extraArgs ?? []));
  const child = spawn(bin('walvault'), args, {
    cwd: REPO,
    env: {
      ...process.env,
      WALVAULT_NODE: process.execPath,
      // No config file from the machine may leak in.
      WALVAULT_CONFIG: '/dev/null',
      ...(o.env ?? {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...spawnIdentity(pgUser()),
  });
  const agent = new Agent(child);
  if (DEBUG) {
    const file = `/tmp/walvault-test-agent-${child.pid}.log`;
    child.stderr!.on('data', (d: string) => appendFileSync(file, d));
    console.log(`agent ${child.pid} logs to ${file}`);
  }
  live.add(agent);
  void agent.exited.then(() => live.delete(agent));
  return agent;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    await sleep(100);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

// ------------------------------------------------------------------ the archive, read back

export interface ArchiveReader {
  readonly ctx: ArchiveContext;
  catalog(): Promise<CatalogEntry[]>;
  /** Verified original bytes of a WAL file (for `.partial`, the longest version). */
  read(name: string): Promise<Buffer>;
  /** Keys under errors/: refused conflicting copies. */
  errorKeys(): Promise<string[]>;
  close(): Promise<void>;
}

export async function openArchiveReader(url: string, segSize: number, s3?: { endpoint: string }): Promise<ArchiveReader> {
  const storage = await createStorage(
    url,
    s3
      ? {
          endpoint: s3.endpoint,
          forcePathStyle: true,
          checksums: 'when_required',
          region: 'us-east-1',
          credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
          maxAttempts: 2,
        }
      : {},
  );
  const ctx: ArchiveContext = { storage, compression: parseCompression('zstd'), log: createLogger({ level: 'silent' }) };
  return {
    ctx,
    async catalog() {
      const out: CatalogEntry[] = [];
      for await (const e of listCatalog(storage, segSize)) out.push(e);
      return out;
    },
    async read(name) {
      return (await restoreFile(ctx, name)).bytes;
    },
    async errorKeys() {
      const out: string[] = [];
      for await (const o of storage.list('errors/')) out.push(o.key);
      return out;
    },
    close: () => storage.close(),
  };
}

/** Full segments of one timeline, by segment number. */
export function segmentsOf(entries: CatalogEntry[], timeline?: number): CatalogEntry[] {
  return entries
    .filter((e) => e.kind === 'segment' && (timeline === undefined || e.timeline === timeline))
    .sort((a, b) => (a.segno! < b.segno! ? -1 : a.segno! > b.segno! ? 1 : a.timeline - b.timeline));
}

/**
 * Segment numbers with no full segment (on any timeline) between the first and the last archived
 * one. A `.partial` does not fill a hole: recovery never asks for it. At a timeline switch the
 * segment is whole on the new timeline.
 */
export function gaps(entries: CatalogEntry[]): bigint[] {
  const segs = segmentsOf(entries);
  const have = new Set(segs.map((e) => e.segno!));
  if (segs.length === 0) return [];
  const missing: bigint[] = [];
  for (let s = segs[0]!.segno!; s <= segs[segs.length - 1]!.segno!; s++) if (!have.has(s)) missing.push(s);
  return missing;
}

export function spoolFiles(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

// ------------------------------------------------------------------ the server's view

// Type aliases, not interfaces: query rows must satisfy an index signature.
export type SlotRow = {
  active: boolean;
  restart_lsn: string | null;
};

export async function slotRow(cluster: PgCluster, slot: string): Promise<SlotRow | undefined> {
  const rows = await cluster.query<SlotRow>(
    'SELECT active, restart_lsn::text AS restart_lsn FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return rows[0];
}

export type ReplicationRow = {
  application_name: string;
  state: string;
  sent_lsn: string | null;
  write_lsn: string | null;
  flush_lsn: string | null;
  replay_lsn: string | null;
  sync_state: string;
};

export async function replicationRows(cluster: PgCluster): Promise<ReplicationRow[]> {
  return cluster.query<ReplicationRow>(
    `SELECT application_name, state, sent_lsn::text, write_lsn::text, flush_lsn::text, replay_lsn::text, sync_state
       FROM pg_stat_replication`,
  );
}

/** LSN text to a number of bytes. */
export function lsnBytes(text: string): bigint {
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

// ------------------------------------------------------------------ metrics

/** Every sample by its full series text, plus each labelled metric's bare name (sum of its series). */
export async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (!res.ok) throw new Error(`metrics answered ${res.status}`);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^(([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (!m) continue;
    out.set(m[1]!, Number(m[3]));
    // Our series carry archive/slot labels: the bare name is the sum over them (one agent = one series).
    if (m[1] !== m[2]) out.set(m[2]!, (out.get(m[2]!) ?? 0) + Number(m[3]));
  }
  return out;
}

export async function status(port: number): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${port}/status`);
  if (!res.ok) throw new Error(`status answered ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

// ------------------------------------------------------------------ recovery from the archive

export interface ReplayResult {
  /** What a standby restored from the base backup sees once it has replayed every archived segment. */
  fromArchive: number;
  /** The same after the newest `.partial` was restored into its pg_wal under the segment name. */
  withPartial: number;
}

/**
 * Replays the archive on a standby made from `backup` (restore_command only, no primary), reads
 * `count` on it once it is waiting for `tailSegment` (the segment after the last full one), then
 * does what an operator does with the newest partial: `walvault wal-fetch <seg>.partial
 * <pg_wal>/<seg>`, and reads `count` again once that is replayed. A standby rather than a
 * recovery that ends: it keeps polling, so both answers come from one replay.
 */
export async function replayArchive(o: {
  backup: BaseBackup;
  restoreCommand: string;
  configFile: string;
  workDir: string;
  tailSegment: string;
  count: (c: PgCluster) => Promise<number>;
  /** withPartial is awaited until it reaches this (or the timeout). */
  expectAll: number;
  track: (c: PgCluster) => PgCluster;
  timeoutMs?: number;
}): Promise<ReplayResult> {
  const asked = join(o.workDir, `asked-${Date.now()}.log`);
  const timeoutMs = o.timeoutMs ?? 60_000;
  const standby = o.track(
    await PgCluster.fromBackup(o.backup.dir, {
      standby: true,
      recovery: { restoreCommand: `echo %f >> '${asked}'; ${o.restoreCommand}` },
      config: { archive_mode: 'off', wal_retrieve_retry_interval: '200ms', hot_standby: true },
    }),
  );
  try {
    const t0 = Date.now();
    const dbg = (what: string): void => {
      if (DEBUG) console.log(`replayArchive +${Date.now() - t0} ms: ${what}`);
    };
    await standby.start();
    dbg('started');
    const count = async (): Promise<number> => {
      try {
        return await o.count(standby);
      } catch (err) {
        throw new Error(`reading the replaying standby failed: ${String(err)}\nits log:\n${await standby.logTail(40)}`, { cause: err });
      }
    };
    const timesAsked = (): number => {
      try {
        return readFileSync(asked, 'utf8')
          .split('\n')
          .filter((l) => l === o.tailSegment).length;
      } catch {
        return 0;
      }
    };
    // Asked twice: the first miss may come from read-ahead; by the second, all before it is replayed.
    await waitFor(async () => timesAsked() >= 2, timeoutMs, `the standby to ask for ${o.tailSegment} twice`).catch(async (err) => {
      const asks = spoolFiles(o.workDir).includes(basename(asked))
        ? readFileSync(asked, 'utf8').split('\n').slice(-15).join(' ')
        : '(none)';
      throw new Error(`${String(err)}; last asked: ${asks}\nstandby log:\n${await standby.logTail(30)}`);
    });
    const fromArchive = await count();
    dbg('asked twice');

    // The operator's step, run as root like an operator: restore the partial, hand it to the server's
    // user, and only then give it its segment name in pg_wal. The server is running here (an
    // operator would do it before starting recovery): a file it finds but cannot open stops it.
    const staged = join(standby.baseDir, `${o.tailSegment}.staged`); // same file system as pg_wal
    const res = await runCli('walvault', ['wal-fetch', `${o.tailSegment}.partial`, staged], {
      env: { WALVAULT_CONFIG: o.configFile, WALVAULT_FETCH_PREFETCH: '0' },
    });
    if (res.code !== 0) throw new Error(`wal-fetch of ${o.tailSegment}.partial failed (${res.code}): ${res.stderr}`);
    if (!standby.osUser.isCurrent) chownSync(staged, standby.osUser.uid, standby.osUser.gid);
    renameSync(staged, join(standby.walDir(), o.tailSegment));
    let withPartial = fromArchive;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      withPartial = await count();
      if (withPartial >= o.expectAll) break;
      await sleep(200);
    }
    dbg('partial replayed');
    return { fromArchive, withPartial };
  } finally {
    if (DEBUG)
      console.log(
        `restore_command was asked for:\n${spoolFiles(o.workDir).includes(basename(asked)) ? readFileSync(asked, 'utf8') : '(nothing)'}`,
      );
    await standby.destroy();
  }
}

/** Waits until the agent (application_name walvault) reports flushing at least `endLsn` to `primary`. */
export async function waitForAgentFlush(primary: PgCluster, endLsn: string, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const rows = await primary.query<{ f: string | null }>(
        "SELECT flush_lsn::text AS f FROM pg_stat_replication WHERE application_name = 'walvault'",
      );
      const f = rows[0]?.f;
      return f && lsnBytes(f) >= lsnBytes(endLsn);
    },
    timeoutMs,
    'the agent to flush the end of the load',
  );
}
