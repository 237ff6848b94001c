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
import { formatLsn, type Lsn } from './lsn.js';
import { historyFileName, segmentStartLsn } from './names.js';
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

/** Builds a history after checking what readTimeLineHistory checks, and a little more. */
export function makeTimelineHistory(
  tli: Timeline | number,
  entries: readonly TimelineHistoryEntry[] = [],
): TimelineHistory {
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
    if (prev !== undefined && entry.switchpoint < prev.switchpoint) {
      throw historyError(
        own,
        `${where}: switch point ${formatLsn(entry.switchpoint)} is before the previous one ${formatLsn(prev.switchpoint)}`,
      );
    }
    if (/[\r\n]/.test(entry.reason)) {
      throw historyError(own, `${where}: the reason must be a single line`);
    }
  });
  return { timeline: own, entries: Object.freeze(entries.map((e) => Object.freeze({ ...e }))) };
}

// `parentTLI <whitespace> hi/lo [<whitespace> reason]`. sscanf("%u\t%X/%X") in PostgreSQL takes
// any whitespace for the tab; we do too, but unlike sscanf we refuse trailing junk glued to the LSN.
const ENTRY_LINE = /^[ \t]*(\d+)[ \t]+([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})(?:[ \t]+(.*))?$/;

/**
 * Parses the text of the history file of timeline `tli`. Blank lines and `#` comments are
 * skipped, as PostgreSQL does (and PostgreSQL itself writes a blank line between entries).
 */
export function parseTimelineHistory(text: string, tli: Timeline | number): TimelineHistory {
  const own = timeline(tli);
  const entries: TimelineHistoryEntry[] = [];
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const where = `line ${String(i + 1)}`;
    const match = ENTRY_LINE.exec(line);
    if (match === null) {
      const hint = /^\d/.test(trimmed)
        ? 'expected a write-ahead log switch point location like 0/2000000 after the timeline ID'
        : 'expected a numeric timeline ID';
      throw historyError(own, `${where}: syntax error in ${quoteExcerpt(line)}: ${hint}`);
    }
    const [, parentText = '', hi = '', lo = '', reason = ''] = match;
    const parent = Number(parentText);
    if (!isTimeline(parent)) {
      throw historyError(own, `${where}: ${parentText} is not a valid timeline ID`);
    }
    entries.push({ parent, switchpoint: ((BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`)) as Lsn, reason });
  });
  return makeTimelineHistory(own, entries);
}

/**
 * Formats a history the way PostgreSQL writes it (`%u\t%X/%X\t%s\n` per entry). PostgreSQL
 * builds each file by copying the parent's file and appending "\n" + the new line, so entries
 * after the first are preceded by a blank line; we reproduce that byte for byte.
 */
export function formatTimelineHistory(history: TimelineHistory): string {
  const checked = makeTimelineHistory(history.timeline, history.entries);
  return checked.entries
    .map((e) => `${String(e.parent)}\t${formatLsn(e.switchpoint)}\t${e.reason}\n`)
    .join('\n');
}

/** Every timeline on the way to the history's timeline with its LSN range, oldest first. */
export function timelineSpans(history: TimelineHistory): TimelineSpan[] {
  const spans: TimelineSpan[] = [];
  let begin = 0n as Lsn;
  for (const entry of history.entries) {
    spans.push({ timeline: entry.parent, begin, end: entry.switchpoint });
    begin = entry.switchpoint;
  }
  spans.push({ timeline: history.timeline, begin, end: null });
  return spans;
}

export function historyIncludes(history: TimelineHistory, tli: Timeline | number): boolean {
  return tli === history.timeline || history.entries.some((e) => e.parent === tli);
}

/**
 * The timeline that holds `position` when recovering to the history's timeline
 * (tliOfPointInHistory). A switch point belongs to the newer timeline.
 */
export function timelineOfLsn(history: TimelineHistory, position: Lsn): Timeline {
  // Switch points never decrease, so the first one beyond `position` ends the span holding it.
  for (const entry of history.entries) {
    if (position < entry.switchpoint) return entry.parent;
  }
  return history.timeline;
}

/**
 * The end of ancestor `tli` on the way to the history's timeline (tliSwitchPoint): the first LSN
 * that is on its successor. Null for the history's own timeline, which has not ended.
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
