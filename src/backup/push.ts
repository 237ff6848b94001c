/**
 * `walvault backup-push`: one base backup over the replication protocol into the archive.
 *
 *   1. remove leftovers of abandoned backups (leftovers.ts);
 *   2. connect, check the server against the archive identity (push-server.ts);
 *   3. claim a name (started.json, create-only), start the heartbeat;
 *   4. BASE_BACKUP into the packer: packs, catalog, backup_manifest, all stored and verified;
 *   5. wait until every WAL segment from the start to the end LSN is archived (wal-wait.ts);
 *   6. write backup.json, create-only and last: only now does the backup exist.
 * Any failure writes failed.json (best effort) and is rethrown; nothing before step 6 makes a
 * backup that restore or retention would use.
 *
 * `--incremental` (issue 13): reuse-plan.ts picks the parent before step 3; every backup's data
 * passes the reuse layer (reuse.ts), which stores by reference what the parent already holds. A
 * PostgreSQL 17 server that refuses the incremental at BASE_BACKUP (summaries missing) ends that
 * attempt; with `auto` its claim is removed and a full backup is taken on a new connection.
 */
import type { ArchiveContext } from '../archive/context.js';
import { ConfigError } from '../common/errors.js';
import { isIncrementalUnavailable, type IncrementalUnavailableError } from './incremental/errors.js';
import type { Logger } from '../common/log.js';
import { ReplicationConnection } from '../postgres/replication/connection.js';
import { parseTimelineHistory } from '../segment/history.js';
import type { BackupEntrySink } from './entry-sink.js';
import { backupPrefix } from './layout.js';
import { findLeftovers, removeLeftovers } from './leftovers.js';
import { BackupPacker } from './packer.js';
import { Heartbeat, claimBackupName, recordFailure } from './push-claim.js';
import { WalSwitcher, checkArchiveFor, identifyServer, type ServerIdentity } from './push-server.js';
import { HEARTBEAT_INTERVAL_MS, type BackupRecord } from './record.js';
import { buildRecord, storeCompletionRecord } from './push-record.js';
import { ReuseSink } from './reuse.js';
import { fullInstead, planBackup, type BackupPlan, type IncrementalMode } from './reuse-plan.js';
import { neededWal, waitForWal } from './wal-wait.js';

/** What the BASE_BACKUP reader (source.ts, readBaseBackup) is asked for. */
export interface BaseBackupRequest {
  readonly label: string;
  readonly checkpoint: 'fast' | 'spread';
  /** Server-side rate limit in kB/s (32..1048576); omitted = unlimited. */
  readonly maxRateKbps?: number;
  /** PostgreSQL 17+ block-level incremental on the backup whose backup_manifest this is. */
  readonly incremental?: { readonly parentManifest: Buffer };
}

/** Runs BASE_BACKUP on `conn` and feeds the sink (through end()); rejects on any server or sink failure. */
export type BaseBackupReader = (
  conn: ReplicationConnection,
  request: BaseBackupRequest,
  sink: BackupEntrySink,
  log: Logger,
) => Promise<unknown>;

/** The server's MAX_RATE bounds, in kB/s. */
export const MAX_RATE_MIN_KBPS = 32;
export const MAX_RATE_MAX_KBPS = 1_048_576;

/** `backup-max-rate` (bytes per second) as the server's kB/s, or a configuration error outside its range. */
export function maxRateKbps(bytesPerSecond: number | undefined): number | undefined {
  if (bytesPerSecond === undefined) return undefined;
  const kbps = Math.floor(bytesPerSecond / 1024);
  if (kbps < MAX_RATE_MIN_KBPS || kbps > MAX_RATE_MAX_KBPS) {
    throw new ConfigError(`unable to use backup-max-rate '${bytesPerSecond}': the server accepts 32kB to 1GB per second`);
  }
  return kbps;
}

export interface PushOptions {
  readonly conninfo: string | undefined;
  readonly checkpoint: 'fast' | 'spread';
  readonly label: string | undefined;
  readonly maxRate: number | undefined;
  readonly uploadParallel: number;
  /** zstd threads per pack (setting `backup-compress-threads`); 0 or absent = the main thread. */
  readonly compressThreads?: number;
  readonly archiveTimeoutMs: number;
  readonly abandonedAfterMs: number;
  readonly heartbeatIntervalMs?: number;
  readonly packSize?: number;
  /** `--incremental` (on), `--incremental=auto`, or absent (off); `parent` names the parent. */
  readonly incremental?: IncrementalMode;
  readonly parent?: string;
  readonly onProgress?: (p: PushProgress) => void;
}

export interface PushProgress {
  readonly phase: 'checkpoint' | 'copy' | 'wal-wait' | 'finish';
  readonly doneBytes: number;
  /** Sum of the tablespace sizes the server estimated; null before it sent them. */
  readonly totalBytes: number | null;
}

export interface PushResult {
  readonly record: BackupRecord;
  readonly durationMs: number;
  readonly leftoversRemoved: number;
  /** `--incremental=auto` took a full backup instead: why (absent or null otherwise). */
  readonly fallback?: string | null;
}

export async function backupPush(ctx: ArchiveContext, reader: BaseBackupReader, opts: PushOptions, log: Logger): Promise<PushResult> {
  const t0 = Date.now();
  const rate = maxRateKbps(opts.maxRate);
  const removed = await removeLeftovers(ctx, await findLeftovers(ctx, { abandonedAfterMs: opts.abandonedAfterMs }), log);
  const mode = opts.incremental ?? 'off';
  let conn = await ReplicationConnection.connect(opts.conninfo, log, 'walvault backup-push', { directReads: true });
  try {
    const server = await identifyServer(conn);
    await checkArchiveFor(ctx, server);
    let plan = await planBackup(ctx, conn, server, { mode, ...(opts.parent !== undefined ? { parent: opts.parent } : {}) }, log);
    let record: BackupRecord;
    try {
      record = await takeBackup(ctx, conn, reader, server, plan, { ...opts, rate }, log);
    } catch (err) {
      if (!(err instanceof RefusedAttempt)) throw err;
      if (mode !== 'auto') throw err.refusal;
      plan = fullInstead(err.refusal, log);
      await conn.close();
      conn = await ReplicationConnection.connect(opts.conninfo, log, 'walvault backup-push', { directReads: true });
      // A new connection may reach another server (failover): checked like the first one.
      const again = await identifyServer(conn);
      await checkArchiveFor(ctx, again);
      record = await takeBackup(ctx, conn, reader, again, plan, { ...opts, rate }, log);
    }
    return { record, durationMs: Date.now() - t0, leftoversRemoved: removed, fallback: plan.kind === 'full' ? plan.fallback : null };
  } finally {
    await conn.close();
  }
}

/** The server refused the incremental before sending anything; the attempt's claim is already removed. */
class RefusedAttempt extends Error {
  constructor(readonly refusal: IncrementalUnavailableError) {
    super(refusal.message);
  }
}

/** Steps 3-6 for one plan on an identified server; the connection is closed before the WAL wait. */
async function takeBackup(
  ctx: ArchiveContext,
  conn: ReplicationConnection,
  reader: BaseBackupReader,
  server: ServerIdentity,
  plan: BackupPlan,
  opts: PushOptions & { rate: number | undefined },
  log: Logger,
): Promise<BackupRecord> {
  const labelOf = (name: string): string => opts.label ?? `walvault ${name}`;
  const parent = plan.kind === 'incremental' ? plan.parent.name : null;
  const claim = await claimBackupName(ctx, labelOf, undefined, { type: parent === null ? 'full' : 'incremental', parent });
  const name = claim.name;
  const blog = log.child({ backup: name });
  let phase: PushProgress['phase'] = 'checkpoint';
  let done = 0;
  let total: number | null = null;
  const report = (): void => opts.onProgress?.({ phase, doneBytes: done, totalBytes: total });
  const packer = new BackupPacker(
    ctx,
    {
      name,
      systemId: server.systemId,
      parallel: opts.uploadParallel,
      ...(opts.compressThreads !== undefined ? { compressThreads: opts.compressThreads } : {}),
      ...(opts.packSize !== undefined ? { packSize: opts.packSize } : {}),
      // The server hashes what it sends for its manifest anyway (baseBackupCommand asks SHA256):
      // a pass over every byte saved here.
      fileChecksums: 'manifest',
      onProgress: (d) => {
        done = d;
        report();
      },
    },
    blog,
  );
  const reuse = new ReuseSink(packer, {
    index: plan.kind === 'incremental' ? plan.index : null,
    markIncremental: plan.kind === 'incremental' && plan.parentManifest !== null,
  });
  const heartbeat = new Heartbeat(
    ctx,
    name,
    () => ({ doneBytes: done, totalBytes: total }),
    blog,
    opts.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS,
  );
  const setPhase = async (p: PushProgress['phase']): Promise<void> => {
    phase = p;
    report();
    await heartbeat.setPhase(p);
  };
  heartbeat.start();
  let copying = false;
  try {
    await setPhase('checkpoint');
    blog.info(
      {
        checkpoint: opts.checkpoint,
        server: conn.conn.description,
        parent,
        blockLevel: plan.kind === 'incremental' && plan.parentManifest !== null,
      },
      'starting base backup',
    );
    const sink: BackupEntrySink = {
      begin: async (start) => {
        copying = true;
        const sizes = start.tablespaces.map((t) => t.sizeBytes);
        total = sizes.every((s) => s !== null) ? sizes.reduce<number>((a, s) => a + (s ?? 0), 0) : null;
        await reuse.begin(start);
        await setPhase('copy');
      },
      entry: (h) => reuse.entry(h),
      data: (c) => reuse.data(c),
      entryEnd: () => reuse.entryEnd(),
      manifest: (c) => reuse.manifest(c),
      progress: (d) => reuse.progress(d),
      end: (e) => reuse.end(e),
    };
    await reader(
      conn,
      {
        label: labelOf(name),
        checkpoint: opts.checkpoint,
        ...(opts.rate !== undefined ? { maxRateKbps: opts.rate } : {}),
        ...(plan.kind === 'incremental' && plan.parentManifest !== null ? { incremental: { parentManifest: plan.parentManifest } } : {}),
      },
      sink,
      blog,
    );
    const packed = packer.packed;
    const stopTime = new Date();
    await setPhase('wal-wait');
    const needed = neededWal({
      startLsn: packed.start.startLsn,
      startTimeline: packed.start.startTimeline,
      endLsn: packed.end.endLsn,
      endTimeline: packed.end.endTimeline,
      segSize: server.walSegSize,
      ...(packed.end.endTimeline !== packed.start.startTimeline ? { history: await historyOf(conn, packed.end.endTimeline) } : {}),
    });
    await conn.close();
    const switcher = new WalSwitcher(opts.conninfo, blog);
    try {
      await waitForWal(ctx, needed, {
        timeoutMs: opts.archiveTimeoutMs,
        switchWal: () => switcher.switch(),
        log: blog,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
    } finally {
      await switcher.close();
    }
    await setPhase('finish');
    const base = buildRecord({
      name,
      label: labelOf(name),
      server,
      packed,
      startTime: claim.startTime,
      stopTime,
      ctx,
      needed: needed.segments,
    });
    const record: BackupRecord =
      parent === null ? base : { ...base, type: 'incremental', parent, reusedBytes: packed.reusedBytes, depends: packed.depends };
    // Create-only and read back: a backup.json is never replaced, and a torn one never counts.
    await storeCompletionRecord(ctx, record);
    if (parent !== null) blog.info({ parent, reusedBytes: packed.reusedBytes, rawBytes: packed.rawBytes }, 'incremental backup stored');
    return record;
  } catch (err) {
    await packer.settle().catch(() => undefined);
    await heartbeat.stop();
    if (isIncrementalUnavailable(err) && !copying) {
      // Nothing but the claim and a heartbeat exists: remove them, so no failed backup is left to list.
      const keys: string[] = [];
      for await (const o of ctx.storage.list(backupPrefix(name))) keys.push(o.key);
      await ctx.storage.delete(keys);
      blog.info({ reason: err.reason }, 'the server refused the incremental backup');
      throw new RefusedAttempt(err);
    }
    blog.debug({ err }, 'backup failed');
    await recordFailure(ctx, name, err, blog);
    throw err;
  } finally {
    await heartbeat.stop();
  }
}

async function historyOf(conn: ReplicationConnection, tli: number): Promise<ReturnType<typeof parseTimelineHistory>> {
  const { content } = await conn.timelineHistory(tli);
  return parseTimelineHistory(content, tli);
}
