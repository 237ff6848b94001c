/**
 * What backup-push takes (issue 13): a full backup, or an incremental one on a parent, decided
 * before a name is claimed. The parent is the one named, or the newest complete backup (stop LSN,
 * then time) of the same system whose timeline lies on the server's current timeline history and
 * ended before that history left it: WAL after the switch point cannot be bridged.
 *
 * PostgreSQL 17+: a block-level incremental (UPLOAD_MANIFEST with the parent's backup_manifest,
 * then BASE_BACKUP INCREMENTAL), which needs summarize_wal on and a parent with a version 2
 * manifest. PostgreSQL 13-16: a chunk-level incremental (the server sends every file whole; the
 * reuse layer stores by reference what the parent holds). In both, the parent's catalog feeds
 * reuse.ts. When no incremental is possible, IncrementalUnavailableError says why; with
 * `--incremental=auto` that becomes a full backup carrying the reason.
 */
import type { ArchiveContext } from '../archive/context.js';
import type { Logger } from '../common/log.js';
import type { ReplicationConnection } from '../postgres/replication/connection.js';
import { INCREMENTAL_VERSION_NUM } from '../postgres/replication/base-backup.js';
import {
  historyIncludes,
  makeTimelineHistory,
  parseTimelineHistory,
  timelineSwitchPoint,
  type TimelineHistory,
} from '../segment/history.js';
import { formatLsn, parseLsn } from '../segment/lsn.js';
import { decodeCatalog } from './catalog.js';
import { IncrementalUnavailableError, isIncrementalUnavailable, type IncrementalUnavailableReason } from './incremental/errors.js';
import { completeBackups, loadBackupInventory } from './inventory.js';
import { loadBackupObject } from './objects.js';
import type { ServerIdentity } from './push-server.js';
import type { BackupRecord } from './record.js';
import { reuseIndex, type ReuseIndex } from './reuse.js';

/** `--incremental` absent (off), given (on), or `--incremental=auto`. */
export type IncrementalMode = 'off' | 'on' | 'auto';

export type BackupPlan =
  | {
      readonly kind: 'full';
      /** Why the incremental asked for with `auto` was not taken; null when none was asked for. */ readonly fallback: string | null;
    }
  | {
      readonly kind: 'incremental';
      readonly parent: BackupRecord;
      readonly index: ReuseIndex;
      /** PostgreSQL 17+: the parent's backup_manifest for UPLOAD_MANIFEST; null for a chunk-level incremental. */
      readonly parentManifest: Buffer | null;
    };

export interface PlanRequest {
  readonly mode: IncrementalMode;
  /** `--parent NAME`; undefined = the newest bridgeable complete backup. */
  readonly parent?: string;
}

export async function planBackup(
  ctx: ArchiveContext,
  conn: ReplicationConnection,
  server: ServerIdentity,
  req: PlanRequest,
  log: Logger,
): Promise<BackupPlan> {
  if (req.mode === 'off') return { kind: 'full', fallback: null };
  try {
    return await planIncremental(ctx, conn, server, req.parent);
  } catch (err) {
    if (req.mode !== 'auto' || !isIncrementalUnavailable(err)) throw err;
    return fullInstead(err, log);
  }
}

/** `--incremental=auto`: the full backup that replaces a refused incremental, logged with the reason. */
export function fullInstead(err: IncrementalUnavailableError, log: Logger): BackupPlan {
  log.warn({ reason: err.reason, err: err.message }, 'incremental backup not possible: taking a full backup instead');
  return { kind: 'full', fallback: err.message };
}

async function planIncremental(
  ctx: ArchiveContext,
  conn: ReplicationConnection,
  server: ServerIdentity,
  named: string | undefined,
): Promise<BackupPlan> {
  const fail = (reason: IncrementalUnavailableReason, why: string): never => {
    throw new IncrementalUnavailableError(`unable to take incremental backup into archive '${ctx.storage.description}': ${why}`, reason);
  };
  const history =
    server.timeline === 1
      ? makeTimelineHistory(1)
      : parseTimelineHistory((await conn.timelineHistory(server.timeline)).content, server.timeline);
  const inventory = await loadBackupInventory(ctx);
  const mine = completeBackups(inventory).filter((r) => r.systemId === server.systemId);
  let parent: BackupRecord;
  if (named !== undefined) {
    const found = mine.find((r) => r.name === named);
    if (!found) {
      const other = inventory.backups.find((b) => b.name === named);
      fail(
        'no-parent',
        other ? `backup '${named}' is ${other.status}, not complete` : `there is no complete backup '${named}' of this cluster`,
      );
    }
    parent = found!;
    const why = unbridgeable(parent, history);
    if (why) fail('timeline', why);
  } else {
    const usable = mine.filter((r) => unbridgeable(r, history) === null);
    if (usable.length === 0) {
      const newest = mine[mine.length - 1];
      if (newest) fail('timeline', unbridgeable(newest, history)!);
      fail('no-parent', 'the archive holds no complete backup of this cluster to build on');
    }
    parent = usable[usable.length - 1]!;
  }
  let parentManifest: Buffer | null = null;
  if (server.pgVersionNum >= INCREMENTAL_VERSION_NUM) {
    // The message starts as docs/operations.md documents the reason (and as the server says it).
    if (parent.pgVersionNum < INCREMENTAL_VERSION_NUM) {
      const major = Math.floor(parent.pgVersionNum / 10000);
      fail(
        'parent-unsupported',
        `the parent backup is from PostgreSQL older than 17 (backup '${parent.name}' is from PostgreSQL ${major})`,
      );
    }
    if (parent.manifest === null) {
      fail('parent-unsupported', `the parent backup has no backup_manifest (backup '${parent.name}': the server sent none)`);
    }
    const summarize = await conn.show('summarize_wal');
    if (summarize !== 'on') fail('summarize-wal-off', 'summarize_wal is off on the server');
    parentManifest = await loadBackupObject(ctx, parent.manifest!);
  }
  const catalog = decodeCatalog(await loadBackupObject(ctx, parent.catalog), parent.catalog.key, parent.name);
  return { kind: 'incremental', parent, index: reuseIndex(parent.name, catalog), parentManifest };
}

/**
 * Null when WAL replay can lead from the end of `parent` to the server's current timeline: the
 * parent ended on that timeline, or on an ancestor before the history left it. Else why not.
 */
export function unbridgeable(parent: Pick<BackupRecord, 'name' | 'endLsn' | 'endTimeline'>, history: TimelineHistory): string | null {
  const tli = parent.endTimeline;
  if (tli === history.timeline) return null;
  if (!historyIncludes(history, tli)) {
    return `parent backup '${parent.name}' ended on timeline ${tli}, which is not in the history of the server's timeline ${history.timeline}`;
  }
  const switchpoint = timelineSwitchPoint(history, tli);
  if (switchpoint !== null && parseLsn(parent.endLsn) > switchpoint) {
    return (
      `parent backup '${parent.name}' ended at ${parent.endLsn} on timeline ${tli}, after the server's ` +
      `history left that timeline at ${formatLsn(switchpoint)}`
    );
  }
  return null;
}
