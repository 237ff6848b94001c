/**
 * Which objects `wal-delete --before ...` removes. Pure.
 *
 * The cut is always a segment number: every WAL file (segment, `.partial`, `.backup`) of a segment
 * before it goes, on every timeline or on the one named. A time is turned into a cut too (the oldest
 * segment uploaded at or after that time), so what remains is always an unbroken suffix of the WAL,
 * never a pattern of holes left by objects that happened to be uploaded out of order.
 *
 * Never deleted: the newest segment of the newest timeline (the archive keeps its end, so the next
 * check can tell a silent archiver from an empty archive); history files that a remaining segment
 * needs (its own timeline's and its ancestors') or that recovery_target_timeline = 'latest' must
 * find when it probes upwards from the oldest remaining timeline; anything outside wal/ and
 * history/ (archive.info, archive.info.copy, errors/). Deleting WAL that a complete walvault base
 * backup needs (`needs`, from the backups' records) is refused unless forced; in an archive without
 * walvault backups, the newest `.backup` history file (pg_basebackup and friends) stands in.
 */
import { UsageError, asUsageError } from '../../common/errors.js';
import { parseLsn, type Lsn, formatLsn } from '../../segment/lsn.js';
import { SegmentName, historyFileName, segmentFileName, segnoOfLsn } from '../../segment/names.js';
import type { TimelineHistory } from '../../segment/history.js';
import type { WalObjectInfo } from './timelines.js';

export interface RetentionObject extends WalObjectInfo {
  readonly key: string;
  readonly mtime: Date;
}

export type BeforeSpec =
  | { readonly kind: 'segment'; readonly name: string; readonly segno: bigint }
  | { readonly kind: 'lsn'; readonly lsn: Lsn }
  | { readonly kind: 'time'; readonly time: Date };

const RELATIVE = /^(\d+)\s*(min|h|d)$/;
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?)?$/;
const UNIT_MS = { min: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * `--before` accepts a segment name, an LSN (`16/B374D848`), a time (`2024-05-01`,
 * `2024-05-01T03:00:00Z`, `2024-05-01 03:00+02:00`) or an age (`90min`, `36h`, `7d`). A time of day
 * needs its zone: at 3 a.m. nobody should have to guess whose midnight was meant.
 */
export function parseBefore(text: string, segSize: number, now: Date): BeforeSpec {
  const t = text.trim();
  if (/^[0-9A-Fa-f]{24}$/.test(t)) {
    const seg = SegmentName.parse(t, segSize);
    return { kind: 'segment', name: seg.name, segno: seg.segno };
  }
  if (t.includes('/')) {
    try {
      return { kind: 'lsn', lsn: parseLsn(t) };
    } catch (err) {
      throw asUsageError(err);
    }
  }
  const rel = RELATIVE.exec(t);
  if (rel) return { kind: 'time', time: new Date(now.getTime() - Number(rel[1]) * UNIT_MS[rel[2] as keyof typeof UNIT_MS]) };
  const m = DATE_TIME.exec(t);
  if (m) {
    if (m[2] !== undefined && m[3] === undefined) {
      throw new UsageError(`unable to use --before '${text}': a time of day needs a zone, e.g. '${t}Z' or '${t}+02:00'`);
    }
    const iso = m[2] === undefined ? `${m[1]}T00:00:00Z` : `${m[1]}T${m[2]}${m[3]}`;
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) throw new UsageError(`unable to use --before '${text}': not a valid date`);
    return { kind: 'time', time: new Date(ms) };
  }
  throw new UsageError(
    `unable to use --before '${text}': expected a segment name, an LSN like 16/B374D848, a time like 2024-05-01T03:00:00Z or an age like 7d`,
  );
}

export function describeBefore(b: BeforeSpec): string {
  switch (b.kind) {
    case 'segment':
      return `before segment ${b.name}`;
    case 'lsn':
      return `before LSN ${formatLsn(b.lsn)}`;
    case 'time':
      return `uploaded before ${b.time.toISOString()}`;
  }
}

export interface KeptNote {
  readonly fileName: string;
  readonly reason: string;
}

export interface RetentionPlan {
  /** WAL files of segments before this segment number go (on the timeline in scope); null: nothing to cut. */
  readonly cutoff: bigint | null;
  /** Oldest first, history files last: an interruption leaves the oldest WAL gone and the rest whole. */
  readonly delete: readonly RetentionObject[];
  /** Files in reach of the cut that stay, and why. */
  readonly kept: readonly KeptNote[];
}

/** The WAL one complete base backup needs: segments from `firstSegno` on, on these timelines. */
export interface BackupWalNeed {
  readonly name: string;
  readonly firstSegno: bigint;
  /** Its start and end timeline, the timelines descending from its end timeline, and any of unknown ancestry. */
  readonly timelines: ReadonlySet<number>;
}

/** The first backup (of `needs`) that needs this WAL file, if any. */
export function neededBy(o: WalObjectInfo, needs: readonly BackupWalNeed[]): BackupWalNeed | undefined {
  if (o.segno === undefined) return undefined;
  return needs.find((n) => o.segno! >= n.firstSegno && n.timelines.has(o.timeline));
}

export interface RetentionOptions {
  /** Only this timeline's files (its segments, partials, backup labels and history file). */
  readonly timeline?: number;
  /** Delete WAL that a base backup needs. */
  readonly force?: boolean;
  /** What the archive's complete walvault backups need; without any, the newest `.backup` file is the rule. */
  readonly needs?: readonly BackupWalNeed[];
}

function bySegment(a: RetentionObject, b: RetentionObject): number {
  const sa = a.segno ?? -1n;
  const sb = b.segno ?? -1n;
  if (sa !== sb) return sa < sb ? -1 : 1;
  if (a.timeline !== b.timeline) return a.timeline - b.timeline;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

export function planRetention(
  objects: readonly RetentionObject[],
  histories: ReadonlyMap<number, TimelineHistory>,
  before: BeforeSpec,
  segSize: number,
  opts: RetentionOptions = {},
): RetentionPlan {
  const inScope = (o: RetentionObject): boolean => opts.timeline === undefined || o.timeline === opts.timeline;
  const wal = objects.filter((o) => o.kind !== 'history' && o.segno !== undefined);
  const scope = wal.filter(inScope);
  const kept: KeptNote[] = [];

  let cutoff: bigint | null;
  if (before.kind === 'segment') cutoff = before.segno;
  else if (before.kind === 'lsn') cutoff = segnoOfLsn(before.lsn, segSize);
  else {
    const recent = scope.filter((o) => o.mtime.getTime() >= before.time.getTime()).map((o) => o.segno!);
    const all = scope.map((o) => o.segno!);
    cutoff =
      recent.length > 0 ? recent.reduce((a, b) => (b < a ? b : a)) : all.length > 0 ? all.reduce((a, b) => (b > a ? b : a)) + 1n : null;
  }

  // The newest segment of the newest timeline stays, whatever the cut.
  const segments = wal.filter((o) => o.kind === 'segment');
  const newestTli = segments.reduce((m, o) => Math.max(m, o.timeline), 0);
  const newestSeg = segments
    .filter((o) => o.timeline === newestTli)
    .reduce<bigint | null>((m, o) => (m === null || o.segno! > m ? o.segno! : m), null);
  const cutFor = (tli: number): bigint | null =>
    cutoff !== null && tli === newestTli && newestSeg !== null && cutoff > newestSeg ? newestSeg : cutoff;
  if (cutoff !== null && newestSeg !== null && cutoff > newestSeg && (opts.timeline === undefined || opts.timeline === newestTli)) {
    kept.push({ fileName: segmentFileName(newestTli, newestSeg, segSize), reason: 'the newest segment of the newest timeline' });
  }

  const doomed = scope.filter((o) => {
    const c = cutFor(o.timeline);
    return c !== null && o.segno! < c;
  });

  const needs = opts.needs ?? [];
  const needed =
    needs.length > 0 && !opts.force
      ? [...doomed]
          .sort(bySegment)
          .filter((o) => o.kind === 'segment')
          .map((o) => ({ o, by: neededBy(o, needs) }))
      : [];
  const hit = needed.find((x) => x.by !== undefined);
  if (hit) {
    throw new UsageError(
      `unable to delete WAL ${describeBefore(before)}: base backup ${hit.by!.name} needs ${hit.o.fileName} and the WAL after it; ` +
        "without it that backup cannot be restored (delete the backup first with 'walvault expire' or 'walvault backup-delete', " +
        'choose an earlier cut, or pass --force)',
    );
  }
  const backups = wal.filter((o) => o.kind === 'backup');
  const newestBackup = backups.sort(bySegment)[backups.length - 1];
  if (needs.length === 0 && newestBackup && !opts.force && doomed.some((o) => o.kind === 'segment' && o.segno! >= newestBackup.segno!)) {
    throw new UsageError(
      `unable to delete WAL ${describeBefore(before)}: the newest base backup (${newestBackup.fileName}) needs WAL from ` +
        `${segmentFileName(newestBackup.timeline, newestBackup.segno!, segSize)} on; without it no archived backup can be restored ` +
        '(choose an earlier cut, or pass --force if that backup is gone)',
    );
  }

  const doomedKeys = new Set(doomed.map((o) => o.key));
  const remaining = wal.filter((o) => !doomedKeys.has(o.key) && (o.kind === 'segment' || o.kind === 'partial'));
  const historyObjects = objects.filter((o) => o.kind === 'history');
  const doomedHistories: RetentionObject[] = [];
  // Also when nothing else goes: a rerun finishes what an interrupted run left.
  const neededTl = neededHistories(
    remaining,
    histories,
    objects.map((o) => o.timeline),
  );
  for (const h of historyObjects) {
    if (!inScope(h)) continue;
    const why = neededTl.get(h.timeline);
    if (why === undefined) doomedHistories.push(h);
    else if (remaining.every((o) => o.timeline !== h.timeline)) kept.push({ fileName: h.fileName, reason: why });
  }
  doomed.sort(bySegment);
  doomedHistories.sort((a, b) => a.timeline - b.timeline);
  return { cutoff, delete: [...doomed, ...doomedHistories], kept };
}

/**
 * Timelines whose history file must stay, with the reason: the timelines of remaining WAL and their
 * ancestors, and every timeline from the oldest remaining one up, which a 'latest' probe walks.
 * Unknown ancestry (a history file missing) keeps them all.
 */
export function neededHistories(
  remaining: readonly WalObjectInfo[],
  histories: ReadonlyMap<number, TimelineHistory>,
  allTimelines: readonly number[],
): Map<number, string> {
  const needed = new Map<number, string>();
  const live = [...new Set(remaining.map((o) => o.timeline))].sort((a, b) => a - b);
  const everything = [...new Set([...allTimelines, ...histories.keys()])];
  if (live.length === 0 || live.some((t) => t > 1 && !histories.has(t))) {
    for (const t of everything) needed.set(t, 'the ancestry of the remaining WAL is not fully known');
    return needed;
  }
  const oldest = live[0]!;
  for (const t of everything) {
    if (t >= oldest) needed.set(t, `recovery_target_timeline = 'latest' probes ${historyFileName(t)} from timeline ${oldest}`);
  }
  for (const t of live) {
    for (const e of histories.get(t)?.entries ?? []) {
      if (!needed.has(e.parent)) needed.set(e.parent, `an ancestor of timeline ${t}, which still has WAL`);
    }
  }
  return needed;
}
