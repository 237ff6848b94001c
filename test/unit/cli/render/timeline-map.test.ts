import { describe, expect, it } from 'vitest';
import { parseTimelineHistory } from '../../../../src/segment/history.js';
import { cellRange, renderTimelineMap } from '../../../../src/cli/render/timeline-map.js';
import { analyzeTimelines, type WalObjectInfo } from '../../../../src/archive/catalog/timelines.js';

const MIB = 1024 * 1024;

function segs(tli: number, numbers: number[]): WalObjectInfo[] {
  return numbers.map((n) => ({ fileName: `x${n}`, kind: 'segment', timeline: tli, segno: BigInt(n), storedBytes: 1 }));
}
const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('cellRange', () => {
  it('splits a range into columns that cover it exactly', () => {
    const cells = Array.from({ length: 4 }, (_, i) => cellRange(10n, 10n, 4, i));
    expect(cells).toEqual([
      { first: 10n, last: 11n },
      { first: 12n, last: 14n },
      { first: 15n, last: 16n },
      { first: 17n, last: 19n },
    ]);
  });
});

describe('renderTimelineMap', () => {
  const h2 = new Map([[2, parseTimelineHistory('1\t0/800060\tno recovery target specified\n', 2)]]);

  it('draws one column per segment when they fit, with the gap and the branch', () => {
    const layout = analyzeTimelines([...segs(1, [1, 2, 3, 5, 6, 7]), ...segs(2, [8, 9, 10])], h2, MIB);
    expect(renderTimelineMap(layout, { width: 40 })).toEqual([
      'WAL map: 0/100000 .. 0/B00000, 10 segments of 1.00 MiB, 1 column = 1 segment',
      '  TL 1  ###.###',
      '  TL 2         ###',
      'legend: # archived  . missing',
    ]);
  });

  it('scales a long range to the width and marks partly missing columns', () => {
    const layout = analyzeTimelines([...segs(1, range(0, 49)), ...segs(1, range(60, 99))], new Map(), MIB);
    expect(renderTimelineMap(layout, { width: 10 })).toEqual([
      'WAL map: 0/0 .. 0/6400000, 100 segments of 1.00 MiB, 1 column = 10 segments',
      '  TL 1  #####.####',
      'legend: # archived  . missing  : partly missing',
    ]);
    const layout2 = analyzeTimelines([...segs(1, range(0, 44)), ...segs(1, range(48, 99))], new Map(), MIB);
    expect(renderTimelineMap(layout2, { width: 10 })[1]).toBe('  TL 1  ####:#####');
  });

  it('lists a timeline without segments and handles an empty archive', () => {
    const layout = analyzeTimelines(segs(1, [3, 4]), h2, MIB);
    expect(renderTimelineMap(layout, { width: 20 }).slice(1, 3)).toEqual(['  TL 1  ##', '  TL 2  (no segments)']);
    expect(renderTimelineMap(analyzeTimelines([], new Map(), MIB), { width: 20 })).toEqual(['WAL map: no segments archived']);
  });
});
