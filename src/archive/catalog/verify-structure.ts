/**
 * The part of wal-verify that needs no object contents: continuity of every recovery path, the
 * history files, and names stored with different contents. Pure.
 */
import { compareEntries, type CatalogEntry } from './listing.js';
import { historyIncludes, type TimelineHistory } from '../../segment/history.js';
import type { Lsn } from '../../segment/lsn.js';
import {
  historyFileName,
  segmentFileName,
  segmentOfWalFileName,
  segnoOfLsn,
  tryClassifyWalFileName,
  type ClassifiedWalFileName,
} from '../../segment/names.js';
import { RangeSet, clipRange, type SegmentRange } from './segment-ranges.js';
import { chainGapsOfRanges, describeGap, historyOrSelf, historyProblems, mergeGaps } from './timelines.js';

export type ProblemKind = 'gap' | 'history' | 'duplicate' | 'wrong-cluster' | 'header' | 'damaged';

export interface Problem {
  readonly kind: ProblemKind;
  readonly timeline: number | null;
  /** The file or object concerned; for a gap, its first missing segment. */
  readonly subject: string;
  readonly message: string;
  /** For gaps: the last missing segment. */
  readonly through?: string;
}

export interface VerifyScope {
  /** Only the chain that recovery to this timeline reads (the timeline and its ancestors). */
  readonly timeline?: number;
  readonly from?: Lsn;
  readonly to?: Lsn;
}

export interface StructureResult {
  readonly problems: Problem[];
  readonly notes: string[];
  /** Timelines whose recovery path was checked. */
  readonly chainTimelines: number[];
  /** The catalog entries in scope, whose objects are checked next. */
  readonly scope: CatalogEntry[];
}

export function checkStructure(
  entries: readonly CatalogEntry[],
  histories: ReadonlyMap<number, TimelineHistory>,
  historyFailures: ReadonlyArray<{ fileName: string; timeline: number; message: string }>,
  segSize: number,
  opts: VerifyScope = {},
  claimed: readonly string[] = [],
): StructureResult {
  const agg = new StructureAggregator(histories, historyFailures, segSize, opts);
  // The aggregator finds copies of one name among neighbours, as a listing in key order has them.
  for (const e of [...entries].sort(compareEntries)) agg.add(e);
  const stored = new Set(entries.map((e) => e.fileName));
  const result = agg.finish(claimed.filter((name) => !stored.has(name)));
  return { ...result, scope: entries.filter((e) => agg.inScope(e)) };
}

/**
 * checkStructure one catalog entry at a time, for a listing too large to hold: segments are kept
 * as ranges per timeline, and copies of one name are compared while they are neighbours (all keys
 * of one name share the prefix `<dir>/<name>-`, so any listing in key order yields them together).
 * Its state grows with timelines, gaps and history files, not with objects.
 */
export class StructureAggregator {
  private readonly present = new Map<number, RangeSet>();
  private readonly historyTimelines = new Set<number>();
  private readonly window: SegmentRange;
  private readonly problems: Problem[] = [];
  private group: CatalogEntry[] = [];
  /** Full segments in scope (every copy counts). */
  segmentsInScope = 0;

  constructor(
    private readonly histories: ReadonlyMap<number, TimelineHistory>,
    private readonly historyFailures: ReadonlyArray<{ fileName: string; timeline: number; message: string }>,
    private readonly segSize: number,
    private readonly opts: VerifyScope = {},
  ) {
    this.window = {
      first: opts.from !== undefined ? segnoOfLsn(opts.from, segSize) : 0n,
      last: opts.to !== undefined ? segnoOfLsn(opts.to, segSize) : (1n << 64n) - 1n,
    };
  }

  private inTimelines(tli: number): boolean {
    return this.opts.timeline === undefined || historyIncludes(historyOrSelf(this.histories, this.opts.timeline), tli);
  }

  /** Whether the entry's object is checked (its timeline is on the chain, its WAL in the window). */
  inScope(e: CatalogEntry): boolean {
    return this.inTimelines(e.timeline) && (e.segno === undefined || (e.segno >= this.window.first && e.segno <= this.window.last));
  }

  /** Takes the next entry of the listing; returns whether it is in scope. */
  add(e: CatalogEntry): boolean {
    if (e.kind === 'segment' && e.segno !== undefined) {
      let set = this.present.get(e.timeline);
      if (!set) this.present.set(e.timeline, (set = new RangeSet()));
      set.add(e.segno);
    }
    if (e.kind === 'history') this.historyTimelines.add(e.timeline);
    const scoped = this.inScope(e);
    if (scoped && e.kind === 'segment') this.segmentsInScope++;
    if (scoped && e.kind !== 'partial') {
      if (this.group.length > 0 && this.group[0]!.fileName !== e.fileName) this.closeGroup();
      this.group.push(e);
    }
    return scoped;
  }

  private closeGroup(): void {
    const list = this.group;
    this.group = [];
    // Same-content copies (two codecs after racing pushes) restore fine; different contents do not.
    const distinct = new Set(list.map((c) => c.sha256)).size;
    if (distinct > 1) {
      this.problems.push({
        kind: 'duplicate',
        timeline: list[0]!.timeline,
        subject: list[0]!.fileName,
        message:
          `the archive holds ${distinct} different versions (${list.map((c) => c.key).join(', ')}); recovery refuses to choose ` +
          `(run 'walvault wal-resolve ${list[0]!.fileName}')`,
      });
    }
  }

  /** The result, given the claimed names that have no stored object. */
  finish(unstoredClaims: readonly string[]): Omit<StructureResult, 'scope'> {
    this.closeGroup();
    const { opts, histories, historyFailures, segSize, window } = this;
    const problems: Problem[] = [];
    const notes: string[] = [];
    const present = new Map<number, readonly SegmentRange[]>([...this.present].map(([tli, set]) => [tli, set.ranges()]));
    const chainTimelines = opts.timeline !== undefined ? [opts.timeline] : [...present.keys()].sort((a, b) => a - b);

    if (opts.timeline !== undefined && !present.has(opts.timeline)) notes.push(`timeline ${opts.timeline} has no segments in the archive`);
    for (const tli of this.historyTimelines) {
      if (!present.has(tli) && this.inTimelines(tli)) notes.push(`timeline ${tli} has a history file but no segments yet`);
    }
    for (const f of historyFailures) {
      if (this.inTimelines(f.timeline)) problems.push({ kind: 'history', timeline: f.timeline, subject: f.fileName, message: f.message });
    }
    // historyProblems only asks which timelines hold segments.
    const withSegments = [...present.keys()].map((timeline) => ({ fileName: '', kind: 'segment' as const, timeline, storedBytes: 0 }));
    for (const p of historyProblems(withSegments, histories)) {
      // A damaged file is reported above, not again as missing.
      if (!this.inTimelines(p.timeline) || historyFailures.some((f) => f.timeline === p.timeline)) continue;
      problems.push({ kind: 'history', timeline: p.timeline, subject: historyFileName(p.timeline), message: p.message });
    }
    for (const g of mergeGaps(chainTimelines.flatMap((tli) => chainGapsOfRanges(present, historyOrSelf(histories, tli), segSize)))) {
      const clipped = clipRange(g, window);
      if (!clipped) continue;
      problems.push({
        kind: 'gap',
        timeline: g.timeline,
        subject: segmentFileName(g.timeline, clipped.first, segSize),
        ...(clipped.last !== clipped.first ? { through: segmentFileName(g.timeline, clipped.last, segSize) } : {}),
        message: `missing ${describeGap({ timeline: g.timeline, ...clipped }, segSize)}`,
      });
    }
    problems.push(...this.problems);
    // A claim without data is a push that stopped between claiming and uploading: nothing was
    // acknowledged for it, so it is not damage; PostgreSQL's retry of the same file completes it.
    for (const name of unstoredClaims) {
      const c = tryClassifyWalFileName(name);
      if (!c || !this.inTimelines(c.timeline)) continue;
      if (c.kind !== 'history') {
        const segno = segnoOf(c, segSize);
        if (segno === undefined || segno < window.first || segno > window.last) continue;
      }
      notes.push(
        `'${name}' is claimed but not archived (an unfinished push; retrying it completes it, 'walvault wal-resolve ${name}' removes the claim)`,
      );
    }
    return { problems, notes, chainTimelines };
  }
}

export function sortProblems(problems: Problem[]): Problem[] {
  return problems.sort(
    (a, b) =>
      (a.timeline ?? 0) - (b.timeline ?? 0) || (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0) || a.kind.localeCompare(b.kind),
  );
}

function segnoOf(name: Exclude<ClassifiedWalFileName, { kind: 'history' }>, segSize: number): bigint | undefined {
  try {
    return segmentOfWalFileName(name, segSize).segno;
  } catch {
    return undefined;
  }
}
