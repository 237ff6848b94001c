/**
 * Leftovers: the objects of a backup-push that was killed or failed. A backup without backup.json
 * is never used by restore or retention; once it is abandoned by the one rule of abandoned.ts
 * (heartbeat, else started.json, else the newest object's mtime, against `backup-abandoned-after`),
 * nobody is writing it any more and its objects only take space. backup-push removes them when it starts; expire calls the
 * same functions.
 *
 * A backup with a backup.json is never touched here, whatever else is under its prefix.
 */
import type { ArchiveContext } from '../archive/context.js';
import { ArchiveMismatchError, IntegrityError, NotFoundError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { BACKUPS_PREFIX, HEARTBEAT_LEAF, RECORD_LEAF, STARTED_LEAF, parseBackupKey } from './layout.js';
import { isAbandoned, lastSignOfLife, type LifeSigns } from './abandoned.js';
import { decodeRecord, type HeartbeatRecord, type StartedRecord } from './record.js';

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
  const now = opts.now ?? new Date();
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
    const signs = await readLifeSigns(ctx, name, g);
    if (signs === 'unknown' || !isAbandoned(signs, now, opts.abandonedAfterMs)) continue;
    const isRecord = (k: string): boolean => k.endsWith(`/${HEARTBEAT_LEAF}`) || k.endsWith(`/${STARTED_LEAF}`);
    const keys = [...g.keys.filter((k) => !isRecord(k)), ...g.keys.filter(isRecord)];
    found.push({ name, keys, lastSeen: lastSignOfLife(signs).at, bytes: g.bytes });
  }
  return found;
}

async function readLifeSigns(ctx: Pick<ArchiveContext, 'storage'>, name: string, g: Group): Promise<LifeSigns | 'unknown'> {
  const signs: { heartbeatAt?: string; startedAt?: string; newestMtimeMs: number } = { newestMtimeMs: g.newestMtime };
  for (const leaf of [HEARTBEAT_LEAF, STARTED_LEAF]) {
    const key = g.keys.find((k) => k.endsWith(`/${leaf}`));
    if (!key) continue;
    try {
      const record = decodeRecord<HeartbeatRecord | StartedRecord>(await ctx.storage.getBuffer(key), key, name);
      if ('at' in record) signs.heartbeatAt = record.at;
      else signs.startedAt = record.startTime;
      // The freshest readable record is enough: the rule prefers it anyway.
      if (lastSignOfLife(signs).source !== 'objects') return signs;
    } catch (err) {
      // A newer walvault wrote it: its rules, not ours, say when it is abandoned.
      if (err instanceof ArchiveMismatchError) return 'unknown';
      // Deleted meanwhile, or damaged: the next source (or the objects' mtime) decides.
      if (err instanceof NotFoundError || err instanceof IntegrityError) continue;
      throw err;
    }
  }
  return signs;
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
      log.warn({ backup: l.name, err }, 'unable to remove an abandoned backup; the next run retries');
    }
  }
  return removed;
}
