/**
 * expire's decisions, pure: which backups a policy keeps, which go, and which WAL no kept backup
 * needs. Backups are ordered by stop LSN and stop time, never by name (wal-g#636: name order
 * deleted the newest backups after a timeline reset).
 *
 * - `--retain-full N` keeps the N newest full backups and every incremental whose chain of parents
 *   leads to one of them.
 * - `--retain-days D` keeps every backup that stopped within D days, and the newest one that stopped
 *   before that: without it no point early in the window could be recovered.
 * - The newest complete backup is always kept. Every kept backup keeps what its restore reads: its
 *   parents down to the full backup and every backup its files reference (chains.ts), so an
 *   increment never loses its parent: a full backup stays while a kept increment needs it.
 * - An incremental whose chain is broken (a parent or referenced backup is not complete) cannot be
 *   restored and is left alone, like a damaged one: only `backup-delete NAME` removes it.
 * - Failed backups silent for ABANDONED_AFTER_MS are leftovers and go; running and damaged ones stay
 *   (a damaged record may be a newer walvault's: only `backup-delete NAME` removes it).
 * - Expired backups go oldest first, except that a backup goes only after the expired backups that
 *   need it (newest first), so an interrupted expire never leaves a chain without its base.
 * - WAL goes when no kept backup needs it (`neededBy`); history files always stay, and so does the
 *   newest segment of the newest timeline (the archive keeps its end).
 */
import type { TimelineHistory } from '../segment/history.js';
import { SegmentName } from '../segment/names.js';
import { neededBy, type BackupWalNeed, type KeptNote, type RetentionObject } from '../archive/catalog/retention.js';
import { errorText } from '../common/format.js';
import { dependentsOf, requiredBackups } from '../backup/chains.js';
import { compareRecords, type BackupEntry } from '../backup/inventory.js';
import type { BackupRecord } from '../backup/record.js';

export type ExpirePolicy = { readonly retainFull: number } | { readonly retainDays: number };

export interface BackupDecision {
  readonly backup: BackupEntry;
  readonly reason: string;
}

export interface BackupExpiryPlan {
  /** Complete backups kept, oldest first. */
  readonly keep: readonly BackupDecision[];
  /** Complete backups to delete, in the order they go. */
  readonly expire: readonly BackupDecision[];
  /** Abandoned leftovers of failed backup-pushes. */
  readonly leftovers: readonly BackupDecision[];
  /** Neither kept by the policy nor deleted: running and damaged backups, broken chains. */
  readonly untouched: readonly BackupDecision[];
}

const DAY_MS = 86_400_000;

/** Why a complete backup cannot be restored (its chain is broken), or undefined. */
function brokenReason(record: BackupRecord, byName: ReadonlyMap<string, BackupRecord>): string | undefined {
  try {
    const missing = requiredBackups(record, byName).filter((n) => !byName.has(n));
    return missing.length > 0 ? `it references backup ${missing.join(', ')}, which is not complete` : undefined;
  } catch (err) {
    return errorText(err);
  }
}

export function planBackupExpiry(backups: readonly BackupEntry[], policy: ExpirePolicy, now: Date): BackupExpiryPlan {
  const complete = backups.filter((b) => b.record !== null).sort((a, b) => compareRecords(a.record!, b.record!));
  const byName = new Map(complete.map((b) => [b.name, b.record!]));
  const untouched: BackupDecision[] = [];
  const usable: BackupEntry[] = [];
  for (const b of complete) {
    const why = brokenReason(b.record!, byName);
    if (why === undefined) usable.push(b);
    else untouched.push({ backup: b, reason: `not restorable (${why}): delete it with 'walvault backup-delete ${b.name}'` });
  }
  const keepReason = new Map<string, string>();
  if ('retainFull' in policy) {
    const fulls = usable.filter((b) => b.record!.parent === null).slice(-policy.retainFull);
    for (const b of fulls) keepReason.set(b.name, `one of the ${policy.retainFull} newest full backups`);
    for (const b of usable) {
      if (b.record!.parent === null) continue;
      const chain = requiredBackups(b.record!, byName);
      const base = fulls.find((f) => chain.includes(f.name));
      if (base) keepReason.set(b.name, `an increment of kept full backup ${base.name}`);
    }
  } else {
    const cutoff = now.getTime() - policy.retainDays * DAY_MS;
    for (const b of usable.filter((x) => Date.parse(x.record!.stopTime) >= cutoff)) {
      keepReason.set(b.name, `stopped within ${policy.retainDays} days`);
    }
    const before = usable.filter((b) => Date.parse(b.record!.stopTime) < cutoff).pop();
    if (before)
      keepReason.set(before.name, `the newest that stopped before the ${policy.retainDays}-day window: recovery to its start needs it`);
  }
  const newest = usable[usable.length - 1];
  if (newest && !keepReason.has(newest.name)) keepReason.set(newest.name, 'the newest complete backup');
  // A running incremental backup-push builds on its parent: the parent's chain must outlive it.
  for (const b of backups) {
    const parent = b.status === 'running' ? b.started?.parent : null;
    if (parent && byName.has(parent) && !keepReason.has(parent)) keepReason.set(parent, `the parent of running backup ${b.name}`);
  }
  // What a kept backup's restore reads stays, to a fixed point (a kept owner keeps its own chain).
  for (let grew = true; grew;) {
    grew = false;
    for (const name of [...keepReason.keys()]) {
      for (const need of requiredBackups(byName.get(name)!, byName)) {
        if (keepReason.has(need)) continue;
        const parentOf = byName.get(name)!.parent === need;
        keepReason.set(need, parentOf ? `the parent of kept backup ${name}` : `needed by kept backup ${name}`);
        grew = true;
      }
    }
  }
  const keep = usable.filter((b) => keepReason.has(b.name)).map((b) => ({ backup: b, reason: keepReason.get(b.name)! }));
  const doomed = usable.filter((b) => !keepReason.has(b.name));
  const expire: BackupDecision[] = [];
  const queued = new Set<string>();
  const doomedRecords = doomed.map((b) => b.record!);
  for (const b of doomed) {
    const first = dependentsOf(b.name, doomedRecords).reverse();
    for (const d of [...first.map((r) => doomed.find((x) => x.name === r.name)!), b]) {
      if (queued.has(d.name)) continue;
      queued.add(d.name);
      expire.push({ backup: d, reason: 'beyond the retention policy' });
    }
  }
  const leftovers: BackupDecision[] = [];
  for (const b of backups) {
    if (b.record) continue;
    if (b.status === 'failed' && b.abandoned) leftovers.push({ backup: b, reason: b.reason ?? 'failed' });
    else if (b.status === 'damaged')
      untouched.push({ backup: b, reason: `damaged (${b.reason}): delete it with 'walvault backup-delete ${b.name}'` });
    else untouched.push({ backup: b, reason: 'running' });
  }
  return { keep, expire, leftovers, untouched };
}

/**
 * The WAL a backup needs: from its walFirst segment on, on its start and end timeline and every
 * timeline descending from the end one (recovery_target_timeline = 'latest' follows them). A
 * timeline whose history file is missing might descend from anything, so it counts as needed.
 */
export function backupWalNeeds(
  records: readonly BackupRecord[],
  histories: ReadonlyMap<number, TimelineHistory>,
  allTimelines: readonly number[],
  segSize: number,
): BackupWalNeed[] {
  return records.map((r) => {
    const timelines = new Set([r.startTimeline, r.endTimeline]);
    for (const t of allTimelines) {
      const h = histories.get(t);
      if (t > 1 && !h) timelines.add(t);
      else if (h?.entries.some((e) => e.parent === r.endTimeline)) timelines.add(t);
    }
    return { name: r.name, firstSegno: SegmentName.parse(r.walFirst, segSize).segno, timelines };
  });
}

export interface ExpireWalPlan {
  /** Oldest first. */
  readonly delete: readonly RetentionObject[];
  readonly kept: readonly KeptNote[];
}

export function planExpireWal(objects: readonly RetentionObject[], needs: readonly BackupWalNeed[]): ExpireWalPlan {
  if (needs.length === 0) return { delete: [], kept: [] }; // no complete backup: the WAL is all there is
  const wal = objects.filter((o) => o.kind !== 'history' && o.segno !== undefined);
  const segments = wal.filter((o) => o.kind === 'segment');
  const newestTli = segments.reduce((m, o) => Math.max(m, o.timeline), 0);
  const newestSeg = segments
    .filter((o) => o.timeline === newestTli)
    .reduce<bigint | null>((m, o) => (m === null || o.segno! > m ? o.segno! : m), null);
  const kept: KeptNote[] = [];
  const doomed = wal.filter((o) => {
    if (neededBy(o, needs)) return false;
    if (o.kind === 'segment' && o.timeline === newestTli && o.segno === newestSeg) {
      kept.push({ fileName: o.fileName, reason: 'the newest segment of the newest timeline' });
      return false;
    }
    return true;
  });
  doomed.sort((a, b) => (a.segno! !== b.segno! ? (a.segno! < b.segno! ? -1 : 1) : a.timeline - b.timeline || (a.key < b.key ? -1 : 1)));
  return { delete: doomed, kept };
}
