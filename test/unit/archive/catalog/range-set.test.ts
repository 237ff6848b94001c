import { describe, expect, it } from 'vitest';
import { RangeSet, firstInRanges, missingFromRanges } from '../../../../src/archive/catalog/segment-ranges.js';

const plain = (s: RangeSet): Array<[number, number]> => s.ranges().map((r) => [Number(r.first), Number(r.last)]);

describe('RangeSet', () => {
  it('keeps ascending runs as single ranges and counts distinct numbers', () => {
    const s = RangeSet.of([1n, 2n, 3n, 3n, 5n, 6n, 9n]);
    expect(plain(s)).toEqual([
      [1, 3],
      [5, 6],
      [9, 9],
    ]);
    expect(s.size).toBe(6n);
    expect([s.first, s.last]).toEqual([1n, 9n]);
  });

  it('accepts numbers out of order, joining the ranges they touch', () => {
    const s = RangeSet.of([10n, 1n, 5n, 3n, 4n, 2n, 7n, 6n, 1n]);
    expect(plain(s)).toEqual([
      [1, 7],
      [10, 10],
    ]);
    expect(s.size).toBe(8n);
  });

  it('gives the same ranges whatever the order (against a brute force)', () => {
    let state = 7;
    const rand = (n: number): number => (state = (state * 1103515245 + 12345) % 2 ** 31) % n;
    for (let round = 0; round < 50; round++) {
      const values = Array.from({ length: rand(60) }, () => BigInt(rand(80)));
      const s = RangeSet.of(values);
      const distinct = [...new Set(values)].sort((a, b) => (a < b ? -1 : 1));
      const expected: Array<[number, number]> = [];
      for (const v of distinct.map(Number)) {
        const last = expected[expected.length - 1];
        if (last && last[1] + 1 === v) last[1] = v;
        else expected.push([v, v]);
      }
      expect(plain(s)).toEqual(expected);
      expect(s.size).toBe(BigInt(distinct.length));
    }
  });
});

describe('range questions', () => {
  const present = RangeSet.of([3n, 4n, 5n, 9n, 10n]).ranges();
  it('firstInRanges: the smallest present number inside a window', () => {
    expect(firstInRanges(present, { first: 0n, last: 2n })).toBeUndefined();
    expect(firstInRanges(present, { first: 0n, last: 3n })).toBe(3n);
    expect(firstInRanges(present, { first: 4n, last: 20n })).toBe(4n);
    expect(firstInRanges(present, { first: 6n, last: 8n })).toBeUndefined();
    expect(firstInRanges(present, { first: 6n, last: 9n })).toBe(9n);
  });
  it('missingFromRanges: what a window lacks', () => {
    expect(missingFromRanges(present, { first: 1n, last: 12n })).toEqual([
      { first: 1n, last: 2n },
      { first: 6n, last: 8n },
      { first: 11n, last: 12n },
    ]);
    expect(missingFromRanges(present, { first: 4n, last: 5n })).toEqual([]);
    expect(missingFromRanges(present, { first: 5n, last: 4n })).toEqual([]);
  });
});
