/** Vectors: 1 MiB segments; PostgreSQL 15 switch points 0/1B19090 (1 -> 2) and 0/1D17B58 (2 -> 3). */
import { describe, expect, it } from 'vitest';
import { makeTimelineHistory, parseTimelineHistory } from '../../../../src/segment/history.js';
import { parseLsn } from '../../../../src/segment/lsn.js';
import { segmentCandidatesForLsn } from '../../../../src/archive/catalog/lsn-segment.js';

const MIB = 1024 * 1024;
const H3 = parseTimelineHistory('1\t0/1B19090\tno recovery target specified\n\n2\t0/1D17B58\tno recovery target specified\n', 3);

describe('segmentCandidatesForLsn', () => {
  it.each([
    ['0/1A00010', 1, ['00000001000000000000001A', '00000001000000000000001A.partial']],
    // Before the switch, in the segment holding it: timeline 2's file holds a copy of timeline 1's WAL.
    ['0/1B00000', 1, ['00000002000000000000001B', '00000001000000000000001B', '00000001000000000000001B.partial']],
    ['0/1B19090', 2, ['00000002000000000000001B', '00000002000000000000001B.partial']],
    ['0/1C00000', 2, ['00000002000000000000001C', '00000002000000000000001C.partial']],
    ['0/1D17B57', 2, ['00000003000000000000001D', '00000002000000000000001D', '00000002000000000000001D.partial']],
    ['0/2000000', 3, ['000000030000000000000020', '000000030000000000000020.partial']],
  ])('%s along timeline 3 is on timeline %i', (text, tli, candidates) => {
    const r = segmentCandidatesForLsn(parseLsn(text), H3, MIB);
    expect(r.timeline).toBe(tli);
    expect(r.along).toBe(3);
    expect(r.candidates).toEqual(candidates);
  });

  it('answers along timeline 1 with its own files only', () => {
    const r = segmentCandidatesForLsn(parseLsn('0/1C00000'), makeTimelineHistory(1), MIB);
    expect(r).toMatchObject({
      timeline: 1,
      along: 1,
      segno: 0x1cn,
      candidates: ['00000001000000000000001C', '00000001000000000000001C.partial'],
    });
  });

  it('uses the segment size', () => {
    expect(segmentCandidatesForLsn(parseLsn('16/B374D848'), makeTimelineHistory(1), 16 * MIB).candidates[0]).toBe(
      '0000000100000016000000B3',
    );
  });

  // PostgreSQL writes these after a recovery along timeline 2 stops at a restore point before
  // timeline 2's fork; tliOfPointInHistory puts everything from the restore point on timeline 3.
  const SAME_SEGMENT = parseTimelineHistory('1\t0/3018CB0\tx\n\n2\t0/3018C48\tat restore point "rp"\n', 3);
  const CROSSING = parseTimelineHistory('1\t0/4000100\tx\n\n2\t0/3FFFF00\tat restore point "rp"\n', 3);
  it.each([
    [SAME_SEGMENT, '0/3018C00', 1, ['000000030000000000000030', '000000010000000000000030', '000000010000000000000030.partial']],
    [SAME_SEGMENT, '0/3018C48', 3, ['000000030000000000000030', '000000030000000000000030.partial']],
    [SAME_SEGMENT, '0/3018C80', 3, ['000000030000000000000030', '000000030000000000000030.partial']],
    [SAME_SEGMENT, '0/3018CB0', 3, ['000000030000000000000030', '000000030000000000000030.partial']],
    [CROSSING, '0/3FFFE00', 1, ['00000003000000000000003F', '00000001000000000000003F', '00000001000000000000003F.partial']],
    [CROSSING, '0/3FFFF00', 3, ['00000003000000000000003F', '00000003000000000000003F.partial']],
    [CROSSING, '0/4000000', 3, ['000000030000000000000040', '000000030000000000000040.partial']],
    [CROSSING, '0/4000100', 3, ['000000030000000000000040', '000000030000000000000040.partial']],
  ])('non-increasing switch points: %#: %s is on timeline %i', (history, text, tli, candidates) => {
    const r = segmentCandidatesForLsn(parseLsn(text), history, MIB);
    expect(r.timeline).toBe(tli);
    expect(r.candidates).toEqual(candidates);
  });
});
