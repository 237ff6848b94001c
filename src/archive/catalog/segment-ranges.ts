/**
 * Ranges of segment numbers, and questions about sorted lists of the segment numbers an archive
 * holds. Pure. Everything works on ranges, never segment by segment, so a corrupt history that
 * names an absurd switch point cannot make a command loop over 2^40 segments.
 */

/** Segment numbers `first..last`, both inclusive. */
export interface SegmentRange {
  readonly first: bigint;
  readonly last: bigint;
}

export function rangeLength(r: SegmentRange): bigint {
  return r.last < r.first ? 0n : r.last - r.first + 1n;
}

/** Sorts ascending and removes duplicates. */
export function sortedUnique(values: Iterable<bigint>): bigint[] {
  const sorted = [...new Set(values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return sorted;
}

/** Index of the first element `>= value` in a sorted list (its length when there is none). */
export function lowerBound(sorted: readonly bigint[], value: bigint): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The smallest element in `range`, if any. */
export function firstIn(sorted: readonly bigint[], range: SegmentRange): bigint | undefined {
  const i = lowerBound(sorted, range.first);
  const v = sorted[i];
  return v !== undefined && v <= range.last ? v : undefined;
}

/** The numbers in `range` that a sorted, duplicate-free list lacks, as ranges, ascending. */
export function missingRanges(sorted: readonly bigint[], range: SegmentRange): SegmentRange[] {
  const out: SegmentRange[] = [];
  if (range.last < range.first) return out;
  let next = range.first;
  for (let i = lowerBound(sorted, range.first); i < sorted.length; i++) {
    const v = sorted[i]!;
    if (v > range.last) break;
    if (v > next) out.push({ first: next, last: v - 1n });
    next = v + 1n;
  }
  if (next <= range.last) out.push({ first: next, last: range.last });
  return out;
}

/** Sorts ranges and joins the ones that overlap or touch. */
export function mergeRanges(ranges: Iterable<SegmentRange>): SegmentRange[] {
  const sorted = [...ranges].filter((r) => r.first <= r.last).sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const out: SegmentRange[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev && r.first <= prev.last + 1n) {
      if (r.last > prev.last) out[out.length - 1] = { first: prev.first, last: r.last };
    } else {
      out.push(r);
    }
  }
  return out;
}

/** The part of `r` inside `within`, or undefined when they do not overlap. */
export function clipRange(r: SegmentRange, within: SegmentRange): SegmentRange | undefined {
  const first = r.first > within.first ? r.first : within.first;
  const last = r.last < within.last ? r.last : within.last;
  return first <= last ? { first, last } : undefined;
}

/**
 * A set of segment numbers kept as sorted, disjoint, non-touching ranges: the segments an archive
 * holds on one timeline take one range per gap, not one entry per segment. Adding in ascending
 * order (as a listing yields them) extends the last range in O(1); any other order still works.
 */
export class RangeSet {
  private readonly list: Array<{ first: bigint; last: bigint }> = [];
  /** Distinct numbers in the set. */
  size = 0n;

  add(v: bigint): void {
    const n = this.list.length;
    const tail = this.list[n - 1];
    if (!tail || v > tail.last + 1n) {
      this.list.push({ first: v, last: v });
    } else if (v === tail.last + 1n) {
      tail.last = v;
    } else if (v >= tail.first) {
      return; // already in
    } else {
      this.insert(v);
      return;
    }
    this.size++;
  }

  /** Out-of-order insertion: join the neighbours it touches. */
  private insert(v: bigint): void {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.list[mid]!.last < v) lo = mid + 1;
      else hi = mid;
    }
    const at = this.list[lo];
    if (at && at.first <= v) return;
    const prev = this.list[lo - 1];
    const joinsPrev = prev !== undefined && prev.last + 1n === v;
    const joinsNext = at !== undefined && at.first - 1n === v;
    if (joinsPrev && joinsNext) {
      prev.last = at.last;
      this.list.splice(lo, 1);
    } else if (joinsPrev) prev.last = v;
    else if (joinsNext) at.first = v;
    else this.list.splice(lo, 0, { first: v, last: v });
    this.size++;
  }

  get first(): bigint | undefined {
    return this.list[0]?.first;
  }

  get last(): bigint | undefined {
    return this.list[this.list.length - 1]?.last;
  }

  ranges(): readonly SegmentRange[] {
    return this.list;
  }

  static of(values: Iterable<bigint>): RangeSet {
    const s = new RangeSet();
    for (const v of values) s.add(v);
    return s;
  }
}

/** The smallest number of `ranges` (sorted, disjoint) inside `within`, if any. */
export function firstInRanges(ranges: readonly SegmentRange[], within: SegmentRange): bigint | undefined {
  for (const r of ranges) {
    if (r.last < within.first) continue;
    if (r.first > within.last) return undefined;
    return r.first > within.first ? r.first : within.first;
  }
  return undefined;
}

/** The numbers in `within` that `ranges` (sorted, disjoint) lack, as ranges, ascending. */
export function missingFromRanges(ranges: readonly SegmentRange[], within: SegmentRange): SegmentRange[] {
  const out: SegmentRange[] = [];
  if (within.last < within.first) return out;
  let next = within.first;
  for (const r of ranges) {
    if (r.last < next) continue;
    if (r.first > within.last) break;
    if (r.first > next) out.push({ first: next, last: r.first - 1n });
    next = r.last + 1n;
    if (next > within.last) return out;
  }
  if (next <= within.last) out.push({ first: next, last: within.last });
  return out;
}
