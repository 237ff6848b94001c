import { describe, expect, it } from 'vitest';
import { recoveryWindow } from '../../../src/ops/backup-window.js';
import { makeTimelineHistory, type TimelineHistory } from '../../../src/segment/history.js';
import { lsn } from '../../../src/segment/lsn.js';
import { timeline } from '../../../src/segment/timeline.js';

const SEG = 16 * 1024 * 1024;
const range = (a: number, b: number): bigint[] => Array.from({ length: b - a + 1 }, (_, i) => BigInt(a + i));
const noHistories = new Map<number, TimelineHistory>();
// Timeline 2 left timeline 1 at 0/5000100, inside segment 5: recovery reads segment 5 from timeline 2.
const tl2 = new Map([[2, makeTimelineHistory(2, [{ parent: timeline(1), switchpoint: lsn(0x5000100), reason: 'promoted' }])]]);

const backup = (walFirst: string, walLast: string, endTimeline = 1, endLsn = '0/2000138') => ({ walFirst, walLast, endTimeline, endLsn });

describe('recovery window of a backup', () => {
  it('reaches the end of the newest segment of its timeline', () => {
    const w = recoveryWindow(backup('000000010000000000000002', '000000010000000000000002'), new Map([[1, range(1, 8)]]), noHistories, SEG);
    expect(w).toEqual({
      timeline: 1,
      from: 0x2000138n,
      to: 0x9000000n,
      lastSegment: '000000010000000000000008',
      stop: 'end',
      gap: null,
      consistent: true,
    });
  });

  it('stops where a segment is missing', () => {
    const w = recoveryWindow(
      backup('000000010000000000000002', '000000010000000000000003'),
      new Map([[1, [...range(2, 5), ...range(7, 8)]]]),
      noHistories,
      SEG,
    );
    expect(w).toMatchObject({
      to: 0x6000000n,
      lastSegment: '000000010000000000000005',
      stop: 'gap',
      gap: '000000010000000000000006',
      consistent: true,
    });
  });

  it('opens no window when WAL the backup needs is missing, naming the first missing segment', () => {
    const missingLast = recoveryWindow(
      backup('000000010000000000000002', '000000010000000000000004'),
      new Map([[1, range(2, 3)]]),
      noHistories,
      SEG,
    );
    expect(missingLast).toMatchObject({ to: null, lastSegment: null, stop: 'gap', gap: '000000010000000000000004', consistent: false });
    const hole = recoveryWindow(
      backup('000000010000000000000002', '000000010000000000000004'),
      new Map([[1, [2n, 4n, 5n]]]),
      noHistories,
      SEG,
    );
    expect(hole).toMatchObject({ to: null, gap: '000000010000000000000003', consistent: false });
    const nothing = recoveryWindow(backup('000000010000000000000002', '000000010000000000000002'), new Map(), noHistories, SEG);
    expect(nothing).toMatchObject({ to: null, gap: '000000010000000000000002', consistent: false });
  });

  it('follows the history of a later timeline: the switch segment comes from the child', () => {
    const present = new Map([
      [1, range(2, 5)],
      [2, range(5, 9)],
    ]);
    const w = recoveryWindow(backup('000000010000000000000003', '000000020000000000000005', 2, '0/5000200'), present, tl2, SEG);
    expect(w).toMatchObject({
      timeline: 2,
      from: 0x5000200n,
      to: 0xa000000n,
      lastSegment: '000000020000000000000009',
      stop: 'end',
      consistent: true,
    });
    // The old primary's own segment 5 does not stand in for the child's.
    const noChild5 = new Map([
      [1, range(2, 5)],
      [2, range(6, 9)],
    ]);
    expect(
      recoveryWindow(backup('000000010000000000000003', '000000020000000000000005', 2, '0/5000200'), noChild5, tl2, SEG),
    ).toMatchObject({
      consistent: false,
      gap: '000000020000000000000005',
    });
    // A gap right at the child's first segment after the backup: the window ends on the parent.
    const w2 = recoveryWindow(backup('000000010000000000000002', '000000010000000000000003', 2, '0/3000100'), noChild5, tl2, SEG);
    expect(w2).toMatchObject({
      to: 0x5000000n,
      lastSegment: '000000010000000000000004',
      gap: '000000020000000000000005',
      consistent: true,
    });
  });

  it('stays on its own timeline: a backup of timeline 1 does not borrow timeline 2', () => {
    const present = new Map([
      [1, range(2, 6)],
      [2, range(5, 9)],
    ]);
    const w = recoveryWindow(backup('000000010000000000000002', '000000010000000000000002'), present, tl2, SEG);
    expect(w).toMatchObject({ timeline: 1, to: 0x7000000n, lastSegment: '000000010000000000000006', stop: 'end' });
  });
});
