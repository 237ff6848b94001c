/**
 * The one rule for when an unfinished backup is abandoned, used by backup-push (leftovers.ts,
 * which deletes them) and by the inventory (backup-list, expire, backup-delete). Two rules used to
 * disagree: the push looked at the heartbeat, the inventory at the newest object's mtime, so a
 * backup one command called running the other could call abandoned.
 *
 * The last sign of life is, in this order: the heartbeat record when it could be read (backup-push
 * rewrites it every 30 s, so it is the freshest), else the started record (a push that died before
 * its first heartbeat), else the newest object's mtime (both records gone or damaged). A backup is
 * abandoned once that sign is as old as the threshold (setting `backup-abandoned-after`, default
 * ABANDONED_AFTER_MS) or older.
 */
import { ABANDONED_AFTER_MS } from './record.js';

export interface LifeSigns {
  /** `at` of a heartbeat record that decoded; undefined when there is none or it is unreadable. */
  readonly heartbeatAt?: string | undefined;
  /** `startTime` of a started record that decoded. */
  readonly startedAt?: string | undefined;
  /** The newest mtime among the backup's objects (epoch ms). */
  readonly newestMtimeMs: number;
}

export type LifeSource = 'heartbeat' | 'started' | 'objects';

export interface LastSeen {
  readonly at: Date;
  readonly source: LifeSource;
}

/** The last sign of life by the rule's order; a record whose time does not parse counts as unreadable. */
export function lastSignOfLife(signs: LifeSigns): LastSeen {
  for (const [source, text] of [
    ['heartbeat', signs.heartbeatAt],
    ['started', signs.startedAt],
  ] as const) {
    const at = text === undefined ? Number.NaN : Date.parse(text);
    if (!Number.isNaN(at)) return { at: new Date(at), source };
  }
  return { at: new Date(signs.newestMtimeMs), source: 'objects' };
}

/** True when the last sign of life is at least `thresholdMs` old at `now`. */
export function isAbandoned(signs: LifeSigns, now: Date, thresholdMs: number = ABANDONED_AFTER_MS): boolean {
  return now.getTime() - lastSignOfLife(signs).at.getTime() >= thresholdMs;
}
