/**
 * Leftovers: the objects of a backup-push that was killed or failed. A backup without backup.json
 * is never used by restore or retention; once its heartbeat (or its started.json, when it died
 * before the first heartbeat) is older than the abandoned threshold, nobody is writing it any
 * more and its objects only take space. backup-push removes them when it starts; expire calls the
 * same functions.
 *
 * A backup with a backup.json is never touched here, whatever else is under its prefix.
 */
import type { ArchiveContext } from '../archive/context.js';
import { ArchiveMismatchError, IntegrityError, NotFoundError, describeCause } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { BACKUPS_PREFIX, HEARTBEAT_LEAF, RECORD_LEAF, STARTED_LEAF, parseBackupKey } from './layout.js';
import { ABANDONED_AFTER_MS, decodeRecord, type HeartbeatRecord, type StartedRecord } from './record.js';

export interface Leftover {
  readonly name: string;
  /** Every key under backups/<name>/, records last (so an interrupted removal is found again). */
  readonly keys: readonly string[];
  /** Last sign of life: heartbeat, else started.json, else the newest object's mtime. */
  readonly lastSeen: Date;
  readonly bytes: number;
}

export interface LeftoverOptions {
  readonly now?: Date;
  readonly abandonedAfterMs?: number;
  /** A backup this process is writing (never a leftover). */
  readonly exclude?: string;
}

interface Group {
  keys: string[];
  bytes: number;
  newestMtime: number;
  complete: boolean;
}

/** Unfinished backups whose last sign of life is older than the threshold. */
export async function findLeftovers(ctx: Pick<ArchiveContext, 'storage'>, opts: LeftoverOptions = {}): Promise<Leftover[]> {
  const now = (opts.now ?? new Date()).getTime();
  const threshold = opts.abandonedAfterMs ?? ABANDONED_AFTER_MS;
  const groups = new Map<string, Group>();
  for await (const obj of ctx.storage.list(BACKUPS_PREFIX)) {
    const parsed = parseBackupKey(obj.key);
    if (!parsed || parsed.name === opts.exclude) continue;
    let g = groups.get(parsed.name);
    if (!g) groups.set(parsed.name, (g = { keys: [], bytes: 0, newestMtime: 0, complete: false }));
    g.keys.push(obj.key);
    g.bytes += obj.size;
    g.newestMtime = Math.max(g.newestMtime, obj.mtime.getTime());
    if (parsed.leaf === RECORD_LEAF) g.complete = true;
  }
  const found: Leftover[] = [];
  for (const [name, g] of groups) {
    if (g.complete) continue;
    const life = await lastSignOfLife(ctx, name, g);
    if (life === 'unknown') continue;
    const lastSeen = life ?? g.newestMtime;
    if (now - lastSeen <= threshold) continue;
    const isRecord = (k: string): boolean => k.endsWith(`/${HEARTBEAT_LEAF}`) || k.endsWith(`/${STARTED_LEAF}`);
    const keys = [...g.keys.filter((k) => !isRecord(k)), ...g.keys.filter(isRecord)];
    found.push({ name, keys, lastSeen: new Date(lastSeen), bytes: g.bytes });
  }
  return found;
}

async function lastSignOfLife(ctx: Pick<ArchiveContext, 'storage'>, name: string, g: Group): Promise<number | undefined | 'unknown'> {
  for (const leaf of [HEARTBEAT_LEAF, STARTED_LEAF]) {
    const key = g.keys.find((k) => k.endsWith(`/${leaf}`));
    if (!key) continue;
    try {
      const record = decodeRecord<HeartbeatRecord | StartedRecord>(await ctx.storage.getBuffer(key), key, name);
      const at = Date.parse('at' in record ? record.at : record.startTime);
      if (!Number.isNaN(at)) return at;
    } catch (err) {
      // A newer walvault wrote it: its rules, not ours, say when it is abandoned.
      if (err instanceof ArchiveMismatchError) return 'unknown';
      // Deleted meanwhile, or damaged: the next source (or the objects' mtime) decides.
      if (err instanceof NotFoundError || err instanceof IntegrityError) continue;
      throw err;
    }
  }
  return undefined;
}

/** Deletes the leftovers' objects; returns how many backups were removed. */
export async function removeLeftovers(ctx: Pick<ArchiveContext, 'storage'>, leftovers: readonly Leftover[], log: Logger): Promise<number> {
  let removed = 0;
  for (const l of leftovers) {
    try {
      // Records last: a removal cut short leaves a backup that is still found as a leftover.
      for (let i = 0; i < l.keys.length; i += 100) await ctx.storage.delete(l.keys.slice(i, i + 100));
      removed++;
      log.info(
        { backup: l.name, objects: l.keys.length, bytes: l.bytes, lastSeen: l.lastSeen.toISOString() },
        'removed an abandoned backup',
      );
    } catch (err) {
      log.warn({ backup: l.name, err: describeCause(err) }, 'unable to remove an abandoned backup; the next run retries');
    }
  }
  return removed;
}
