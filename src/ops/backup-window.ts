/**
 * The recovery window a complete backup opens: from its end LSN (the earliest point a restore of it
 * is consistent) to the end of the newest WAL archived on its timeline, or to where a missing
 * segment stops replay. Pure, over the archive listing's segment sets and the history files, along
 * the path recovery reads (chainRanges: the segment holding a switch point comes from the child).
 */
import { chainRanges, historyOrSelf } from '../archive/catalog/timelines.js';
import { missingRanges } from '../archive/catalog/segment-ranges.js';
import type { TimelineHistory } from '../segment/history.js';
import { parseLsn, type Lsn } from '../segment/lsn.js';
import { SegmentName, segmentFileName, segmentStartLsn } from '../segment/names.js';
import type { BackupRecord } from '../backup/record.js';

export interface RecoveryWindow {
  readonly timeline: number;
  readonly from: Lsn;
  /** End of the last segment replay reaches (exclusive), or null when it cannot even reach `from`. */
  readonly to: Lsn | null;
  /** The last segment replay reaches. */
  readonly lastSegment: string | null;
  /** `end`: the newest archived WAL of the timeline; `gap`: a missing segment (named in `gap`). */
  readonly stop: 'end' | 'gap';
  readonly gap: string | null;
  /** Every segment walFirst..walLast is there: a restore of this backup can become consistent. */
  readonly consistent: boolean;
}

export function recoveryWindow(
  record: Pick<BackupRecord, 'endLsn' | 'endTimeline' | 'walFirst' | 'walLast'>,
  present: ReadonlyMap<number, readonly bigint[]>,
  histories: ReadonlyMap<number, TimelineHistory>,
  segSize: number,
): RecoveryWindow {
  const tli = record.endTimeline;
  const from = parseLsn(record.endLsn);
  const first = SegmentName.parse(record.walFirst, segSize).segno;
  const lastNeeded = SegmentName.parse(record.walLast, segSize).segno;
  const own = present.get(tli) ?? [];
  const newest = own[own.length - 1];
  const none = { timeline: tli, from, to: null, lastSegment: null, consistent: false };
  // Without WAL up to walLast, walk to walLast anyway: the first missing segment is what to name.
  const reach = newest === undefined || newest < lastNeeded ? lastNeeded : newest;
  let before = { timeline: tli, segno: first - 1n };
  for (const { timeline, range } of chainRanges(historyOrSelf(histories, tli), reach, segSize)) {
    if (range.last < first) continue;
    const from0 = range.first > first ? range.first : first;
    const hole = missingRanges(present.get(timeline) ?? [], { first: from0, last: range.last })[0];
    if (hole === undefined) {
      before = { timeline, segno: range.last };
      continue;
    }
    const gap = segmentFileName(timeline, hole.first, segSize);
    if (hole.first <= lastNeeded) return { ...none, stop: 'gap', gap };
    const last = hole.first > from0 ? { timeline, segno: hole.first - 1n } : before;
    return {
      timeline: tli,
      from,
      to: segmentStartLsn(hole.first, segSize),
      lastSegment: segmentFileName(last.timeline, last.segno, segSize),
      stop: 'gap',
      gap,
      consistent: true,
    };
  }
  if (newest === undefined || newest < lastNeeded) return { ...none, stop: 'gap', gap: segmentFileName(tli, lastNeeded, segSize) };
  return {
    timeline: tli,
    from,
    to: segmentStartLsn(newest + 1n, segSize),
    lastSegment: segmentFileName(tli, newest, segSize),
    stop: 'end',
    gap: null,
    consistent: true,
  };
}
