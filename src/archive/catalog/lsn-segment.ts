/**
 * Which archived file holds a WAL position. Pure.
 *
 * Positions are answered along one timeline's history (the newest timeline's, unless the operator
 * names one), as recovery to that timeline would read them: the history says which timeline's WAL
 * holds the position, and the file recovery reads for that segment comes first. In the segment
 * that holds a switch point that is the successor's file, which starts with a copy of the
 * predecessor's WAL, so it holds positions on both sides of the switch. The predecessor's own full
 * segment (when an old primary kept writing) and its `.partial` follow as fallbacks.
 */
import { timelineOfLsn, timelineOfSegment, type TimelineHistory } from '../../segment/history.js';
import { SegmentName, segnoOfLsn } from '../../segment/names.js';
import type { Lsn } from '../../segment/lsn.js';
import type { Timeline } from '../../segment/timeline.js';

export interface LsnLookup {
  readonly lsn: Lsn;
  readonly segno: bigint;
  /** The timeline whose WAL holds the position, along `along`'s history. */
  readonly timeline: Timeline;
  /** The timeline whose history answered the question. */
  readonly along: Timeline;
  /** File names that hold the position, best first. */
  readonly candidates: readonly string[];
}

export function segmentCandidatesForLsn(position: Lsn, history: TimelineHistory, segSize: number): LsnLookup {
  const segno = segnoOfLsn(position, segSize);
  const holder = timelineOfLsn(history, position);
  const reader = timelineOfSegment(history, segno, segSize);
  const own = SegmentName.of(holder, segno, segSize);
  const names = [SegmentName.of(reader, segno, segSize).name, own.name, own.partialName];
  return { lsn: position, segno, timeline: holder, along: history.timeline, candidates: [...new Set(names)] };
}
