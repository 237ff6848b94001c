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
 */
import type { ArchiveContext } from '../archive/context.js';
import { ConfigError, describeCause } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { ReplicationConnection } from '../postgres/replication/connection.js';
import { parseTimelineHistory } from '../segment/history.js';
import type { BackupEntrySink } from './entry-sink.js';
import { findLeftovers, removeLeftovers } from './leftovers.js';
import { BackupPacker } from './packer.js';
import { Heartbeat, claimBackupName, recordFailure } from './push-claim.js';
import { WalSwitcher, checkArchiveFor, identifyServer } from './push-server.js';
import { HEARTBEAT_INTERVAL_MS, type BackupRecord } from './record.js';
import { buildRecord, storeCompletionRecord } from './push-record.js';
import { neededWal, waitForWal } from './wal-wait.js';

/** What the BASE_BACKUP reader (source.ts, readBaseBackup) is asked for. */
export interface BaseBackupRequest {
  readonly label: string;
  readonly checkpoint: 'fast' | 'spread';
  /** Server-side rate limit in kB/s (32..1048576); omitted = unlimited. */
  readonly maxRateKbps?: number;
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
  readonly archiveTimeoutMs: number;
  readonly abandonedAfterMs: number;
  readonly heartbeatIntervalMs?: number;
  readonly packSize?: number;
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
}

export async function backupPush(ctx: ArchiveContext, reader: BaseBackupReader, opts: PushOptions, log: Logger): Promise<PushResult> {
  const t0 = Date.now();
  const rate = maxRateKbps(opts.maxRate);
  const removed = await removeLeftovers(ctx, await findLeftovers(ctx, { abandonedAfterMs: opts.abandonedAfterMs }), log);
  const conn = await ReplicationConnection.connect(opts.conninfo, log, 'walvault backup-push');
  try {
    const server = await identifyServer(conn);
    await checkArchiveFor(ctx, server);
    const labelOf = (name: string): string => opts.label ?? `walvault ${name}`;
    const claim = await claimBackupName(ctx, labelOf);
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
        ...(opts.packSize !== undefined ? { packSize: opts.packSize } : {}),
        onProgress: (d) => {
          done = d;
          report();
        },
      },
      blog,
    );
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
    try {
      await setPhase('checkpoint');
      blog.info({ checkpoint: opts.checkpoint, server: conn.conn.description }, 'starting base backup');
      const sink: BackupEntrySink = {
        begin: async (start) => {
          const sizes = start.tablespaces.map((t) => t.sizeBytes);
          total = sizes.every((s) => s !== null) ? sizes.reduce<number>((a, s) => a + (s ?? 0), 0) : null;
          await packer.begin(start);
          await setPhase('copy');
        },
        entry: (h) => packer.entry(h),
        data: (c) => packer.data(c),
        entryEnd: () => packer.entryEnd(),
        manifest: (c) => packer.manifest(c),
        progress: (d) => packer.progress(d),
        end: (e) => packer.end(e),
      };
      await reader(
        conn,
        { label: labelOf(name), checkpoint: opts.checkpoint, ...(rate !== undefined ? { maxRateKbps: rate } : {}) },
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
      const record = buildRecord({
        name,
        label: labelOf(name),
        server,
        packed,
        startTime: claim.startTime,
        stopTime,
        ctx,
        needed: needed.segments,
      });
      await storeCompletionRecord(ctx, record);
      return { record, durationMs: Date.now() - t0, leftoversRemoved: removed };
    } catch (err) {
      await packer.settle().catch(() => undefined);
      blog.debug({ err: describeCause(err) }, 'backup failed');
      await recordFailure(ctx, name, err, blog);
      throw err;
    } finally {
      await heartbeat.stop();
    }
  } finally {
    await conn.close();
  }
}

async function historyOf(conn: ReplicationConnection, tli: number): Promise<ReturnType<typeof parseTimelineHistory>> {
  const { content } = await conn.timelineHistory(tli);
  return parseTimelineHistory(content, tli);
}
