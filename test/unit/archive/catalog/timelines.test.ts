/**
 * Vectors: 1 MiB segments and the switch points PostgreSQL 15 wrote for two promotions
 * (timeline 2 at 0/1B19090, timeline 3 at 0/1D17B58), so timeline 1 owns segments up to 0x1A,
 * timeline 2 reads 0x1B..0x1C and timeline 3 starts with 0x1D. Expected gaps are worked out by hand.
 */
import { describe, expect, it } from 'vitest';
import { parseTimelineHistory, type TimelineHistory } from '../../../../src/segment/history.js';
import {
  analyzeTimelines,
  chainGaps,
  chainRanges,
  describeGap,
  historyProblems,
  presentSegments,
  type TimelineGap,
  type WalObjectInfo,
} from '../../../../src/archive/catalog/timelines.js';
import { timeline } from '../../../../src/segment/timeline.js';

const MIB = 1024 * 1024;
const H2 = '1\t0/1B19090\tno recovery target specified\n';
const H3 = '1\t0/1B19090\tno recovery target specified\n\n2\t0/1D17B58\tno recovery target specified\n';

function seg(tli: number, segno: number, kind: WalObjectInfo['kind'] = 'segment'): WalObjectInfo {
  const name = `${tli.toString(16).toUpperCase().padStart(8, '0')}00000000${segno.toString(16).toUpperCase().padStart(8, '0')}`;
  return { fileName: kind === 'partial' ? `${name}.partial` : name, kind, timeline: tli, segno: BigInt(segno), storedBytes: 100 };
}
function segs(tli: number, from: number, to: number): WalObjectInfo[] {
  return Array.from({ length: to - from + 1 }, (_, i) => seg(tli, from + i));
}
function hist(tli: number): WalObjectInfo {
  return { fileName: `${tli.toString(16).toUpperCase().padStart(8, '0')}.history`, kind: 'history', timeline: tli, storedBytes: 50 };
}
function histories(...list: Array<[number, string]>): Map<number, TimelineHistory> {
  return new Map(list.map(([t, text]) => [t, parseTimelineHistory(text, t)]));
}
const G = (tli: number, first: number, last: number): TimelineGap => ({
  timeline: timeline(tli),
  first: BigInt(first),
  last: BigInt(last),
});

describe('chainRanges', () => {
  it('gives each timeline the segments recovery reads from it', () => {
    const h3 = parseTimelineHistory(H3, 3);
    expect(chainRanges(h3, 0x30n, MIB)).toEqual([
      { timeline: 1, range: { first: 0n, last: 0x1an } },
      { timeline: 2, range: { first: 0x1bn, last: 0x1cn } },
      { timeline: 3, range: { first: 0x1dn, last: 0x30n } },
    ]);
  });

  it('gives a switch exactly on a segment boundary to the new timeline', () => {
    const h = parseTimelineHistory('1\t0/300000\tx\n', 2);
    expect(chainRanges(h, 5n, MIB)).toEqual([
      { timeline: 1, range: { first: 0n, last: 2n } },
      { timeline: 2, range: { first: 3n, last: 5n } },
    ]);
  });
});

describe('histories whose switch points do not increase', () => {
  // Timeline 2 forked at 0/4000100; a recovery along it stopped at a restore point at 0/3FFFF00
  // and made timeline 3. Recovery along 3 reads timeline 1 up to segment 0x3E and timeline 3 from
  // 0x3F (its file holds timeline 1's WAL before 0/3FFFF00); timeline 2 provides nothing.
  const H2X = '1\t0/4000100\tx\n';
  const H3X = '1\t0/4000100\tx\n\n2\t0/3FFFF00\tat restore point "rp"\n';

  it('chainRanges skips the empty timeline and ends timeline 1 before the restore point', () => {
    expect(chainRanges(parseTimelineHistory(H3X, 3), 0x42n, MIB)).toEqual([
      { timeline: 1, range: { first: 0n, last: 0x3en } },
      { timeline: 3, range: { first: 0x3fn, last: 0x42n } },
    ]);
  });

  it('finds no gap where recovery reads nothing', () => {
    const objects = [...segs(1, 0x30, 0x3e), ...segs(3, 0x3f, 0x42), hist(2), hist(3)];
    const layout = analyzeTimelines(objects, histories([2, H2X], [3, H3X]), MIB);
    expect(layout.gaps).toEqual([]);
    const t3 = layout.timelines.find((t) => t.timeline === 3)!;
    expect(t3).toMatchObject({ parent: 2, switchPoint: 0x3ffff00n, history: 'present' });
    expect(historyProblems(objects, histories([2, H2X], [3, H3X]))).toEqual([]);
  });

  it('still finds the segment recovery would miss', () => {
    const objects = [...segs(1, 0x30, 0x3e), ...segs(3, 0x40, 0x42), hist(2), hist(3)];
    expect(analyzeTimelines(objects, histories([2, H2X], [3, H3X]), MIB).gaps).toEqual([G(3, 0x3f, 0x3f)]);
  });
});

describe('gaps along recovery paths', () => {
  const whole = [...segs(1, 0x14, 0x1a), seg(1, 0x1b, 'partial'), ...segs(2, 0x1b, 0x1c), seg(2, 0x1d, 'partial'), ...segs(3, 0x1d, 0x1f)];
  const h = histories([2, H2], [3, H3]);

  it('finds none in a whole archive with three timelines', () => {
    const layout = analyzeTimelines([...whole, hist(2), hist(3)], h, MIB);
    expect(layout.gaps).toEqual([]);
    expect(layout.timelines.map((t) => [t.timeline, t.parent, t.switchPoint, t.history, t.first, t.last, t.segments])).toEqual([
      [1, null, null, 'none', 0x14n, 0x1an, 7],
      [2, 1, 0x1b19090n, 'present', 0x1bn, 0x1cn, 2],
      [3, 2, 0x1d17b58n, 'present', 0x1dn, 0x1fn, 3],
    ]);
    expect(layout.timelines[1]!.partials).toEqual([0x1dn]);
    expect(layout.timelines[1]!.storedBytes).toBe(2 * 100 + 100 + 50);
  });

  it('reports a missing segment of an ancestor once, although three chains cross it', () => {
    const layout = analyzeTimelines(
      whole.filter((o) => !(o.timeline === 1 && o.segno === 0x17n)),
      h,
      MIB,
    );
    expect(layout.gaps).toEqual([G(1, 0x17, 0x17)]);
    expect(layout.timelines[0]!.gaps).toEqual([{ first: 0x17n, last: 0x17n }]);
  });

  it('finds the hole between a switch point and a child whose first segment came later', () => {
    const layout = analyzeTimelines(
      whole.filter((o) => !(o.timeline === 2 && o.segno === 0x1bn && o.kind === 'segment')),
      h,
      MIB,
    );
    expect(layout.gaps).toEqual([G(2, 0x1b, 0x1b)]);
    expect(layout.timelines[1]!.span).toEqual({ first: 0x1bn, last: 0x1cn });
  });

  it('does not call WAL removed from the start of the archive a gap', () => {
    const trimmed = whole.filter((o) => o.timeline === 3 || (o.timeline === 2 && o.segno === 0x1cn && o.kind === 'segment'));
    expect(analyzeTimelines(trimmed, h, MIB).gaps).toEqual([]);
  });

  it('follows an old primary that kept writing on timeline 1 past the switch point', () => {
    const layout = analyzeTimelines([...segs(1, 0x14, 0x22), ...segs(2, 0x1b, 0x1c)], histories([2, H2]), MIB);
    expect(layout.gaps).toEqual([]);
    const layout2 = analyzeTimelines([...segs(1, 0x14, 0x20), ...segs(1, 0x22, 0x22), ...segs(2, 0x1b, 0x1c)], histories([2, H2]), MIB);
    expect(layout2.gaps).toEqual([G(1, 0x21, 0x21)]);
  });

  it('checks a timeline without its history file on its own segments only', () => {
    const layout = analyzeTimelines([...segs(1, 0x14, 0x1a), ...segs(2, 0x1b, 0x1c), ...segs(2, 0x1e, 0x1e)], new Map(), MIB);
    expect(layout.gaps).toEqual([G(2, 0x1d, 0x1d)]);
    expect(layout.timelines[1]!.history).toBe('missing');
    expect(layout.timelines[1]!.parent).toBeNull();
  });

  it('has no chain for a timeline that has a history file and no segment yet', () => {
    const present = presentSegments(segs(1, 0x14, 0x1a));
    expect(chainGaps(present, parseTimelineHistory(H2, 2), MIB)).toEqual([]);
    const layout = analyzeTimelines([...segs(1, 0x14, 0x1a), hist(2)], histories([2, H2]), MIB);
    expect(layout.timelines[1]!.span).toBeNull();
    expect(layout.timelines[1]!.segments).toBe(0);
  });

  it('names gaps by their segments', () => {
    expect(describeGap(G(1, 0x17, 0x17), MIB)).toBe('000000010000000000000017');
    expect(describeGap(G(2, 0x1ff, 0x201), MIB)).toBe('0000000200000000000001FF .. 000000020000000000000201 (3 segments)');
  });
});

describe('historyProblems', () => {
  it('wants every history file from the oldest timeline with segments to the newest', () => {
    const objs = [...segs(1, 1, 3), ...segs(3, 4, 5), hist(3)];
    const problems = historyProblems(objs, histories([3, H3]));
    expect(problems.map((p) => p.timeline)).toEqual([2]);
    expect(problems[0]!.message).toMatch(/00000002\.history is not in the archive/);
  });

  it('does not want files of timelines older than any remaining segment', () => {
    expect(historyProblems([...segs(3, 4, 5)], histories([3, H3]))).toEqual([]);
  });

  it('says when a timeline with segments lacks its file', () => {
    expect(historyProblems([...segs(1, 1, 3), ...segs(2, 4, 4)], new Map())[0]!.message).toMatch(
      /^it holds segments, but 00000002\.history/,
    );
  });

  it('finds a child file that disagrees with its parent', () => {
    const wrong3 = '1\t0/1A00000\tother\n\n2\t0/1D17B58\tno recovery target specified\n';
    const problems = historyProblems([...segs(3, 0x1d, 0x1d)], histories([2, H2], [3, wrong3]));
    expect(problems).toEqual([
      { timeline: 3, message: '00000003.history disagrees with 00000002.history about the ancestry of timeline 2' },
    ]);
    expect(historyProblems([...segs(3, 0x1d, 0x1d)], histories([2, H2], [3, H3]))).toEqual([]);
  });
});
