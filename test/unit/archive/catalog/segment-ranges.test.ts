import { describe, expect, it } from 'vitest';
import {
  clipRange,
  firstIn,
  lowerBound,
  mergeRanges,
  missingRanges,
  rangeLength,
  sortedUnique,
} from '../../../../src/archive/catalog/segment-ranges.js';

const R = (first: number, last: number) => ({ first: BigInt(first), last: BigInt(last) });
const list = [3n, 4n, 5n, 9n, 12n];

describe('sorted segment lists', () => {
  it('sorts and removes duplicates', () => {
    expect(sortedUnique([5n, 1n, 5n, 3n, 1n])).toEqual([1n, 3n, 5n]);
  });

  it('finds the first element not below a value', () => {
    expect([0n, 3n, 4n, 6n, 9n, 13n].map((v) => lowerBound(list, v))).toEqual([0, 0, 1, 3, 3, 5]);
  });

  it('finds the first element in a range', () => {
    expect(firstIn(list, R(6, 20))).toBe(9n);
    expect(firstIn(list, R(6, 8))).toBeUndefined();
  });

  it('lists what is missing inside a range', () => {
    expect(missingRanges(list, R(3, 12))).toEqual([R(6, 8), R(10, 11)]);
    expect(missingRanges(list, R(0, 14))).toEqual([R(0, 2), R(6, 8), R(10, 11), R(13, 14)]);
    expect(missingRanges(list, R(4, 5))).toEqual([]);
    expect(missingRanges([], R(7, 7))).toEqual([R(7, 7)]);
  });

  it('merges overlapping and touching ranges', () => {
    expect(mergeRanges([R(10, 12), R(1, 2), R(3, 4), R(11, 15), R(20, 20), R(8, 7)])).toEqual([R(1, 4), R(10, 15), R(20, 20)]);
  });

  it('clips and measures ranges', () => {
    expect(clipRange(R(5, 10), R(8, 20))).toEqual(R(8, 10));
    expect(clipRange(R(5, 10), R(11, 20))).toBeUndefined();
    expect(rangeLength(R(5, 10))).toBe(6n);
    expect(rangeLength(R(5, 4))).toBe(0n);
  });
});
