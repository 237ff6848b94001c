/**
 * Timeline history files (`0000000N.history`), parsed and answered as PostgreSQL does in
 * src/backend/access/transam/timeline.c (readTimeLineHistory, tliOfPointInHistory,
 * tliSwitchPoint) and xlogrecovery.c (XLogFileReadAnyTLI, for which file holds a segment).
 *
 * A history file for timeline T lists, oldest first, each ancestor of T and the LSN at which its
 * child branched off it: the switch point is the first byte written on the newer timeline.
 */
import { TimelineError } from '../common/errors.js';
import { quoteExcerpt } from '../common/quote.js';
import { scanHistoryLines } from './history-scan.js';
import { formatLsn, isLsn, type Lsn } from './lsn.js';
import { historyFileName, segmentStartLsn, segnoOfLsn } from './names.js';
import { assertSegSize } from './segsize.js';
import { isTimeline, timeline, type Timeline } from './timeline.js';

export interface TimelineHistoryEntry {
  /** The ancestor timeline this entry describes. */
  readonly parent: Timeline;
  /** The first LSN that is no longer on `parent` (on the way to the file's timeline). */
  readonly switchpoint: Lsn;
  /** Free text PostgreSQL writes after the switch point (e.g. "no recovery target specified"). */
  readonly reason: string;
}

export interface TimelineHistory {
  readonly timeline: Timeline;
  /** Oldest first. Empty for a timeline without ancestors (timeline 1 has no history file). */
  readonly entries: readonly TimelineHistoryEntry[];
}

/** The LSN range `[begin, end)` of one timeline on the way to the history's timeline. */
export interface TimelineSpan {
  readonly timeline: Timeline;
  readonly begin: Lsn;
  /** Exclusive; null for the history's own timeline, which has no end yet. */
  readonly end: Lsn | null;
}

function historyError(tli: Timeline, reason: string): TimelineError {
  return new TimelineError(`unable to parse timeline history '${historyFileName(tli)}': ${reason}`);
}

/**
 * Builds a history after checking what readTimeLineHistory checks: valid, strictly increasing
 * ancestor IDs below the file's own. Switch points need not increase: PostgreSQL writes
 * `1 0/3018CB0` then `2 0/3018C48` after a recovery along timeline 2 stops at a restore point
 * before 2's fork, and reads it back (see timelineOfLsn for what such a file means).
 */
export function makeTimelineHistory(tli: Timeline | number, entries: readonly TimelineHistoryEntry[] = []): TimelineHistory {
  const own = timeline(tli);
  entries.forEach((entry, i) => {
    const where = `entry ${String(i + 1)}`;
    if (!isTimeline(entry.parent)) {
      throw historyError(own, `${where}: timeline ${String(entry.parent)} is not a valid timeline ID`);
    }
    if (entry.parent >= own) {
      throw historyError(
        own,
        `${where}: ancestor timeline ${String(entry.parent)} is not less than the file's own timeline ${String(own)}`,
      );
    }
    const prev = entries[i - 1];
    if (prev !== undefined && entry.parent <= prev.parent) {
      throw historyError(
        own,
        `${where}: timeline IDs must be in increasing sequence (${String(entry.parent)} after ${String(prev.parent)})`,
      );
    }
    if (!isLsn(entry.switchpoint)) {
      throw historyError(own, `${where}: switch point ${String(entry.switchpoint)} is not a WAL position`);
    }
    // A reason is the rest of one line; a line feed in it would end the entry early.
    if (entry.reason.includes('\n')) {
      throw historyError(own, `${where}: the reason must be a single line`);
    }
  });
  return { timeline: own, entries: Object.freeze(entries.map((e) => Object.freeze({ ...e }))) };
}

/**
 * Parses the history file of timeline `tli` exactly as PostgreSQL's recovery reads it (see
 * history-scan.ts): blank lines and `#` comments are skipped, fields may be separated by any
 * whitespace, and whatever follows the switch point is the reason. The one ID PostgreSQL would
 * take that we refuse is 0, which never names WAL (a recovery would ask for 00000000... files).
 */
export function parseTimelineHistory(content: string | Uint8Array, tli: Timeline | number): TimelineHistory {
  const own = timeline(tli);
  const entries: TimelineHistoryEntry[] = [];
  for (const line of scanHistoryLines(content)) {
    const where = `line ${String(line.lineNo)}`;
    if (line.fields === 0 || line.tliText?.startsWith('-') === true) {
      throw historyError(own, `${where}: syntax error in ${quoteExcerpt(line.text)}: expected a numeric timeline ID`);
    }
    if (line.outOfRange === 'tli' || line.tli === 0n) {
      throw historyError(own, `${where}: ${line.tliText ?? String(line.tli)} is not a valid timeline ID`);
    }
    if (line.fields !== 3) {
      throw historyError(
        own,
        `${where}: syntax error in ${quoteExcerpt(line.text)}: expected a write-ahead log switch point location like 0/2000000 after the timeline ID`,
      );
    }
    if (line.outOfRange === 'lsn') {
      throw historyError(own, `${where}: syntax error in ${quoteExcerpt(line.text)}: each half of the switch point must fit in 32 bits`);
    }
    entries.push({
      parent: Number(line.tli) as Timeline,
      switchpoint: ((line.hi! << 32n) | line.lo!) as Lsn,
      reason: line.rest,
    });
  }
  return makeTimelineHistory(own, entries);
}

/**
 * Formats a history the way PostgreSQL writes it (`%u\t%X/%X\t%s\n` per entry). PostgreSQL
 * builds each file by copying the parent's file and appending "\n" + the new line, so entries
 * after the first are preceded by a blank line; we reproduce that byte for byte.
 */
export function formatTimelineHistory(history: TimelineHistory): string {
  const checked = makeTimelineHistory(history.timeline, history.entries);
  return checked.entries.map((e) => `${String(e.parent)}\t${formatLsn(e.switchpoint)}\t${e.reason}\n`).join('\n');
}

/**
 * The first LSN after each ancestor's effective end, oldest first: the smallest switch point at or
 * after the entry. PostgreSQL looks an LSN up newest timeline first (tliOfPointInHistory), each
 * entry covering [previous switch point, own switch point), so a later, smaller switch point hides
 * the end of an older range: for `1 0/3018CB0`, `2 0/3018C48`, LSN 0/3018C80 is on timeline 3, and
 * timeline 2 holds nothing. A switch point of 0/0 (InvalidXLogRecPtr) makes PostgreSQL treat the
 * range after it as starting at 0, so it hides every older range, as the minimum says too.
 */
function effectiveEnds(history: TimelineHistory): Lsn[] {
  const ends: Lsn[] = new Array<Lsn>(history.entries.length);
  let min: Lsn | undefined;
  for (let i = history.entries.length - 1; i >= 0; i--) {
    const sp = history.entries[i]!.switchpoint;
    if (min === undefined || sp < min) min = sp;
    ends[i] = min;
  }
  return ends;
}

/**
 * Every timeline on the way to the history's timeline with the LSNs recovery takes from it, oldest
 * first; the ranges are contiguous and ascending. A timeline whose switch point is at or before
 * where its range would start (PostgreSQL writes such files, see effectiveEnds) holds nothing:
 * its span is empty, `begin === end`.
 */
export function timelineSpans(history: TimelineHistory): TimelineSpan[] {
  const ends = effectiveEnds(history);
  const spans: TimelineSpan[] = [];
  let begin = 0n as Lsn;
  history.entries.forEach((entry, i) => {
    const end = ends[i]!;
    spans.push({ timeline: entry.parent, begin, end });
    begin = end;
  });
  spans.push({ timeline: history.timeline, begin, end: null });
  return spans;
}

export function historyIncludes(history: TimelineHistory, tli: Timeline | number): boolean {
  return tli === history.timeline || history.entries.some((e) => e.parent === tli);
}

/**
 * The timeline that holds `position` when recovering to the history's timeline, as PostgreSQL's
 * tliOfPointInHistory answers: the newest timeline whose range [previous switch point, own switch
 * point) contains it, the history's own timeline from its last switch point on. A switch point
 * belongs to the newer timeline.
 */
export function timelineOfLsn(history: TimelineHistory, position: Lsn): Timeline {
  for (const span of timelineSpans(history)) {
    if (span.end === null || position < span.end) return span.timeline;
  }
  return history.timeline;
}

/**
 * Where ancestor `tli` ended on the way to the history's timeline, as PostgreSQL's tliSwitchPoint
 * answers (a walsender streams a historic timeline up to this point): the switch point its entry
 * records, even when a later, smaller switch point means recovery leaves it earlier (see
 * timelineSpans). Null for the history's own timeline, which has not ended.
 */
export function timelineSwitchPoint(history: TimelineHistory, tli: Timeline | number): Lsn | null {
  if (tli === history.timeline) return null;
  const entry = history.entries.find((e) => e.parent === tli);
  if (entry === undefined) {
    throw new TimelineError(
      `unable to find timeline '${String(tli)}' in the history of timeline ${String(history.timeline)}: it is not an ancestor`,
    );
  }
  return entry.switchpoint;
}

/**
 * The timelines whose range overlaps segment `segno`, newest first: the files that may hold it.
 * The first is the one PostgreSQL reads (XLogFileReadAnyTLI scans newest first): in a segment
 * that contains a switch point, the newer timeline's file holds the older WAL up to the switch
 * point and the newer WAL after it, while the older timeline's copy (usually `.partial`) is
 * only good up to the switch point.
 */
export function timelinesForSegment(history: TimelineHistory, segno: bigint, segSize: number): Timeline[] {
  const first = segmentStartLsn(segno, segSize);
  const afterLast = first + BigInt(assertSegSize(segSize));
  return timelineSpans(history)
    .filter((s) => s.begin < afterLast && (s.end === null || (s.end > first && s.end > s.begin)))
    .map((s) => s.timeline)
    .reverse();
}

/** The timeline whose file PostgreSQL restores segment `segno` from when recovering along `history`. */
export function timelineOfSegment(history: TimelineHistory, segno: bigint, segSize: number): Timeline {
  // The newest timeline overlapping the segment is the one that holds its last byte.
  const last = segmentStartLsn(segno, segSize) + BigInt(assertSegSize(segSize)) - 1n;
  return timelineOfLsn(history, last as Lsn);
}

/**
 * Where to stream next after the server ended a historic timeline at `endedAt` (its
 * tliSwitchPoint): the timeline that holds `endedAt` along `history` (tliOfPointInHistory), from
 * the start of its span. That is the server's next timeline unless a later, smaller switch point
 * emptied it; and the span can start before `endedAt` (even in an earlier segment), where the
 * older timeline's WAL is not what recovery along `history` reads.
 */
export function timelineAfterEnd(history: TimelineHistory, endedAt: Lsn): TimelineSpan {
  const span = timelineSpans(history).find((s) => s.end === null || endedAt < s.end);
  // The last span has no end, so find() always succeeds.
  return span!;
}

/**
 * The timeline to start streaming segment-aligned `start` on from a server whose history is
 * `history`: the one holding `start` (tliOfPointInHistory), unless that is an ancestor whose range
 * a later, smaller switch point cut short. A walsender streams a historic timeline up to its
 * tliSwitchPoint, reading the segment holding that point from the next timeline's file, which a
 * server that recovered past that branch need not have; then the timeline recovery reads the
 * segment from is streamed instead (it holds the ancestor's WAL up to the cut too).
 */
export function timelineToStreamFrom(history: TimelineHistory, start: Lsn, segSize: number): Timeline {
  const holder = timelineOfLsn(history, start);
  if (holder === history.timeline) return holder;
  const span = timelineSpans(history).find((s) => s.timeline === holder)!;
  if (span.end === timelineSwitchPoint(history, holder)) return holder;
  return timelineOfSegment(history, segnoOfLsn(start, segSize), segSize);
}
