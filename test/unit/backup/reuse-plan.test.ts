/** Which parent timelines an incremental can bridge to the server's current timeline history. */
import { describe, expect, it } from 'vitest';
import { unbridgeable } from '../../../src/backup/reuse-plan.js';
import { parseTimelineHistory } from '../../../src/segment/history.js';

// Timeline 3: 1 left at 0/5000000, 2 left at 0/9000000.
const history = parseTimelineHistory('1\t0/5000000\tno recovery target specified\n2\t0/9000000\tno recovery target specified\n', 3);
const parent = (endTimeline: number, endLsn: string): { name: string; endTimeline: number; endLsn: string } => ({
  name: '20261202T010000F',
  endTimeline,
  endLsn,
});

describe('unbridgeable', () => {
  it('accepts a parent on the current timeline or on an ancestor before the switch point', () => {
    expect(unbridgeable(parent(3, '0/A000000'), history)).toBeNull();
    expect(unbridgeable(parent(1, '0/4FFFFFF'), history)).toBeNull();
    expect(unbridgeable(parent(2, '0/9000000'), history)).toBeNull();
  });

  it('names a parent that ended after its timeline was left, or on a timeline not in the history', () => {
    expect(unbridgeable(parent(1, '0/5000100'), history)).toMatch(
      /ended at 0\/5000100 on timeline 1, after the server's history left that timeline at 0\/5000000/,
    );
    expect(unbridgeable(parent(4, '0/1000000'), history)).toMatch(/timeline 4, which is not in the history of the server's timeline 3/);
  });
});
