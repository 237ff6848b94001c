/**
 * What an archive's listing and its history files say about each timeline: where it branched off,
 * which segments it holds and which are missing. Pure.
 *
 * Gaps are found along the path PostgreSQL restores: for a timeline T, every segment from the
 * oldest one still archived on T's ancestry up to T's newest segment, each expected on the timeline
 * whose file recovery reads for it (the newest timeline whose range covers the segment's last byte,
 * as timelineOfSegment says). So a child timeline whose first segment comes later than the segment
 * holding its switch point has a gap, while WAL that retention removed from the start of the
 * archive is not a gap.
 */
import { makeTimelineHistory, timelineSpans, type TimelineHistory } from '../../segment/history.js';
import type { Lsn } from '../../segment/lsn.js';
import { historyFileName, segmentFileName, segnoOfLsn, type WalFileKind } from '../../segment/names.js';
import { timeline as toTimeline, type Timeline } from '../../segment/timeline.js';
import { RangeSet, firstInRanges, mergeRanges, missingFromRanges, sortedUnique, type SegmentRange } from './segment-ranges.js';

/** What the analysis needs of a catalog entry (CatalogEntry has all of it). */
export interface WalObjectInfo {
  readonly fileName: string;
  readonly kind: WalFileKind;
  readonly timeline: number;
  /** Segment number for segments, partials and backup labels. */
  readonly segno?: bigint;
  readonly storedBytes: number;
}

/** Full segments missing from one timeline. */
export interface TimelineGap extends SegmentRange {
  readonly timeline: Timeline;
}

export interface TimelineSummary {
  readonly timeline: Timeline;
  /** The timeline this one branched off (last entry of its history file); null for timeline 1 or without history. */
  readonly parent: Timeline | null;
  /** The first LSN on this timeline: where it left its parent. */
  readonly switchPoint: Lsn | null;
  /** `none`: timeline 1, which never has one. `missing`: a later timeline whose history file is not archived. */
  readonly history: 'present' | 'missing' | 'none';
  /** Full segments archived on this timeline. */
  readonly segments: number;
  /** Stored bytes of every object of this timeline (segments, partials, backup labels, history file). */
  readonly storedBytes: number;
  readonly first: bigint | null;
  readonly last: bigint | null;
  /** Segment numbers of archived `.partial` files. */
  readonly partials: readonly bigint[];
  /** Names of archived backup history files (`.backup`). */
  readonly backups: readonly string[];
  readonly gaps: readonly SegmentRange[];
  /** The range a map draws for this timeline: first expected segment to last archived one. */
  readonly span: SegmentRange | null;
}

export interface ArchiveLayout {
  readonly segSize: number;
  /** Ascending by timeline. */
  readonly timelines: readonly TimelineSummary[];
  /** Every gap, by timeline then position. */
  readonly gaps: readonly TimelineGap[];
}

/** Full segment numbers archived per timeline, sorted. */
export function presentSegments(objects: Iterable<WalObjectInfo>): Map<number, bigint[]> {
  const raw = new Map<number, bigint[]>();
  for (const o of objects) {
    if (o.kind !== 'segment' || o.segno === undefined) continue;
    const list = raw.get(o.timeline) ?? [];
    list.push(o.segno);
    raw.set(o.timeline, list);
  }
  const out = new Map<number, bigint[]>();
  for (const [tli, list] of raw) out.set(tli, sortedUnique(list));
  return out;
}

/** The history to recover along `tli`: the archived one, or (timeline 1, or a missing file) just the timeline itself. */
export function historyOrSelf(histories: ReadonlyMap<number, TimelineHistory>, tli: number): TimelineHistory {
  return histories.get(tli) ?? makeTimelineHistory(tli, []);
}

/**
 * The segments recovery along `history` reads from each timeline, up to `lastOwn` on the history's
 * own timeline: an ancestor that ended at switch point P provides segments up to the one before
 * the segment holding P (that segment is read from the successor, which holds a copy of the old WAL).
 */
export function chainRanges(
  history: TimelineHistory,
  lastOwn: bigint,
  segSize: number,
): Array<{ timeline: Timeline; range: SegmentRange }> {
  const size = BigInt(segSize);
  const out: Array<{ timeline: Timeline; range: SegmentRange }> = [];
  for (const span of timelineSpans(history)) {
    const first = segnoOfLsn(span.begin, segSize);
    const last = span.end === null ? lastOwn : span.end / size - 1n;
    if (first <= last) out.push({ timeline: span.timeline, range: { first, last } });
  }
  return out;
}

/** Full segments archived per timeline, as ranges (timelines without a full segment are absent). */
export type PresentRanges = ReadonlyMap<number, readonly SegmentRange[]>;

/**
 * Segments missing on the way to `history.timeline`'s newest segment, from the oldest segment of
 * that way still in the archive. Empty when the timeline has no segment yet.
 */
export function chainGaps(present: ReadonlyMap<number, readonly bigint[]>, history: TimelineHistory, segSize: number): TimelineGap[] {
  const ranges = new Map<number, readonly SegmentRange[]>();
  for (const [tli, list] of present) ranges.set(tli, RangeSet.of(list).ranges());
  return chainGapsOfRanges(ranges, history, segSize);
}

/** chainGaps over ranges: what the streaming aggregators keep instead of every segment number. */
export function chainGapsOfRanges(present: PresentRanges, history: TimelineHistory, segSize: number): TimelineGap[] {
  const own = present.get(history.timeline) ?? [];
  const lastOwn = own[own.length - 1]?.last;
  if (lastOwn === undefined) return [];
  const ranges = chainRanges(history, lastOwn, segSize);
  let start: bigint | undefined;
  for (const { timeline, range } of ranges) {
    const f = firstInRanges(present.get(timeline) ?? [], range);
    if (f !== undefined && (start === undefined || f < start)) start = f;
  }
  if (start === undefined) return [];
  const gaps: TimelineGap[] = [];
  for (const { timeline, range } of ranges) {
    if (range.last < start) continue;
    const from = range.first > start ? range.first : start;
    for (const g of missingFromRanges(present.get(timeline) ?? [], { first: from, last: range.last })) gaps.push({ timeline, ...g });
  }
  return gaps;
}

/** Joins gap lists of several chains: each missing segment once, merged into ranges. */
export function mergeGaps(gaps: Iterable<TimelineGap>): TimelineGap[] {
  const byTimeline = new Map<Timeline, SegmentRange[]>();
  for (const g of gaps) {
    const list = byTimeline.get(g.timeline) ?? [];
    list.push({ first: g.first, last: g.last });
    byTimeline.set(g.timeline, list);
  }
  const out: TimelineGap[] = [];
  for (const tli of [...byTimeline.keys()].sort((a, b) => a - b)) {
    for (const r of mergeRanges(byTimeline.get(tli)!)) out.push({ timeline: tli, ...r });
  }
  return out;
}

/** Every timeline that has an object or a history file, with its segments, gaps and parent. */
export function analyzeTimelines(
  objects: readonly WalObjectInfo[],
  histories: ReadonlyMap<number, TimelineHistory>,
  segSize: number,
): ArchiveLayout {
  const agg = new TimelineAggregator();
  for (const o of objects) agg.add(o);
  return agg.layout(histories, segSize);
}

interface TimelineTally {
  readonly segments: RangeSet;
  storedBytes: number;
  readonly partials: bigint[];
  readonly backups: string[];
}

/**
 * What wal-show needs of a listing, taken one object at a time in any order: per timeline the
 * segments as ranges, byte totals, partials and backup labels. Its state grows with timelines,
 * gaps, partials and backup labels, never with the number of segments.
 */
export class TimelineAggregator {
  private readonly tallies = new Map<number, TimelineTally>();

  add(o: WalObjectInfo): void {
    let t = this.tallies.get(o.timeline);
    if (!t) {
      t = { segments: new RangeSet(), storedBytes: 0, partials: [], backups: [] };
      this.tallies.set(o.timeline, t);
    }
    t.storedBytes += o.storedBytes;
    if (o.segno !== undefined && o.kind === 'segment') t.segments.add(o.segno);
    else if (o.segno !== undefined && o.kind === 'partial') t.partials.push(o.segno);
    else if (o.kind === 'backup') t.backups.push(o.fileName);
  }

  /** Full segments per timeline, as ranges; only timelines that hold one. */
  present(): Map<number, readonly SegmentRange[]> {
    const out = new Map<number, readonly SegmentRange[]>();
    for (const [tli, t] of this.tallies) if (t.segments.size > 0n) out.set(tli, t.segments.ranges());
    return out;
  }

  layout(histories: ReadonlyMap<number, TimelineHistory>, segSize: number): ArchiveLayout {
    const present = this.present();
    const allGaps = mergeGaps([...present.keys()].flatMap((tli) => chainGapsOfRanges(present, historyOrSelf(histories, tli), segSize)));
    const summaries: TimelineSummary[] = [];
    for (const tli of [...new Set([...this.tallies.keys(), ...histories.keys()])].sort((a, b) => a - b)) {
      const t = this.tallies.get(tli);
      const history = histories.get(tli);
      const lastEntry = history?.entries[history.entries.length - 1];
      const gaps = allGaps.filter((g) => g.timeline === tli).map(({ first, last }) => ({ first, last }));
      const first = t?.segments.first ?? null;
      const last = t?.segments.last ?? null;
      const spanStart = [first, ...gaps.map((g) => g.first)]
        .filter((v): v is bigint => v !== null)
        .reduce<bigint | null>((a, b) => (a === null || b < a ? b : a), null);
      summaries.push({
        timeline: toTimeline(tli),
        parent: lastEntry?.parent ?? null,
        switchPoint: lastEntry?.switchpoint ?? null,
        history: history ? 'present' : tli === 1 ? 'none' : 'missing',
        segments: Number(t?.segments.size ?? 0n),
        storedBytes: t?.storedBytes ?? 0,
        first,
        last,
        partials: sortedUnique(t?.partials ?? []),
        backups: [...(t?.backups ?? [])].sort(),
        gaps,
        span: spanStart !== null && last !== null ? { first: spanStart, last } : null,
      });
    }
    return { segSize, timelines: summaries, gaps: allGaps };
  }
}

/** Names of the segments in a gap, for messages: one name, or `first .. last (n segments)`. */
export function describeGap(g: TimelineGap, segSize: number): string {
  const a = segmentFileName(g.timeline, g.first, segSize);
  if (g.first === g.last) return a;
  return `${a} .. ${segmentFileName(g.timeline, g.last, segSize)} (${String(g.last - g.first + 1n)} segments)`;
}

export interface HistoryProblem {
  readonly timeline: Timeline;
  readonly message: string;
}

/**
 * History files that are missing or disagree with each other. Restoring with
 * recovery_target_timeline = 'latest' probes for `N+1.history`, `N+2.history`, ... and stops at
 * the first one missing, so every timeline from the oldest one holding segments up to the newest
 * needs its file; and a child's file must repeat its parent's file line for line.
 */
export function historyProblems(objects: readonly WalObjectInfo[], histories: ReadonlyMap<number, TimelineHistory>): HistoryProblem[] {
  const problems: HistoryProblem[] = [];
  const withSegments = [...new Set(objects.filter((o) => o.kind === 'segment').map((o) => o.timeline))];
  const known = [...withSegments, ...histories.keys()];
  if (known.length > 0 && withSegments.length > 0) {
    const from = Math.max(2, Math.min(...withSegments));
    const to = Math.max(...known);
    for (let tli = from; tli <= to; tli++) {
      if (histories.has(tli)) continue;
      const holds = withSegments.includes(tli) ? 'it holds segments, but ' : '';
      problems.push({
        timeline: toTimeline(tli),
        message: `${holds}${historyFileName(tli)} is not in the archive: recovery cannot follow timeline ${tli}, and recovery_target_timeline = 'latest' stops probing before it`,
      });
    }
  }
  for (const [tli, h] of [...histories].sort((a, b) => a[0] - b[0])) {
    const last = h.entries[h.entries.length - 1];
    if (!last) continue;
    const parentHistory = histories.get(last.parent);
    const expected = h.entries.slice(0, -1);
    const actual = parentHistory?.entries ?? (last.parent === 1 ? [] : undefined);
    if (actual === undefined) continue;
    const same =
      expected.length === actual.length &&
      expected.every((e, i) => e.parent === actual[i]!.parent && e.switchpoint === actual[i]!.switchpoint);
    if (!same) {
      problems.push({
        timeline: toTimeline(tli),
        message: `${historyFileName(tli)} disagrees with ${historyFileName(last.parent)} about the ancestry of timeline ${last.parent}`,
      });
    }
  }
  return problems;
}
