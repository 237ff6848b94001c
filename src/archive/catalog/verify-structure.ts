/**
 * The part of wal-verify that needs no object contents: continuity of every recovery path, the
 * history files, and names stored with different contents. Pure.
 */
import type { CatalogEntry } from './listing.js';
import { historyIncludes, type TimelineHistory } from '../../segment/history.js';
import type { Lsn } from '../../segment/lsn.js';
import { SegmentName, historyFileName, segmentFileName, segnoOfLsn, tryClassifyWalFileName } from '../../segment/names.js';
import { clipRange, type SegmentRange } from './segment-ranges.js';
import { chainGaps, describeGap, historyOrSelf, historyProblems, mergeGaps, presentSegments } from './timelines.js';

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
  const problems: Problem[] = [];
  const notes: string[] = [];
  const window: SegmentRange = {
    first: opts.from !== undefined ? segnoOfLsn(opts.from, segSize) : 0n,
    last: opts.to !== undefined ? segnoOfLsn(opts.to, segSize) : (1n << 64n) - 1n,
  };
  const present = presentSegments(entries);
  const chainTimelines = opts.timeline !== undefined ? [opts.timeline] : [...present.keys()].sort((a, b) => a - b);
  const inTimelines = (tli: number): boolean =>
    opts.timeline === undefined || historyIncludes(historyOrSelf(histories, opts.timeline), tli);
  const inWindow = (e: CatalogEntry): boolean => e.segno === undefined || (e.segno >= window.first && e.segno <= window.last);

  if (opts.timeline !== undefined && !present.has(opts.timeline)) notes.push(`timeline ${opts.timeline} has no segments in the archive`);
  for (const tli of new Set(entries.filter((e) => e.kind === 'history').map((e) => e.timeline))) {
    if (!present.has(tli) && inTimelines(tli)) notes.push(`timeline ${tli} has a history file but no segments yet`);
  }

  for (const f of historyFailures) {
    if (inTimelines(f.timeline)) problems.push({ kind: 'history', timeline: f.timeline, subject: f.fileName, message: f.message });
  }
  for (const p of historyProblems(entries, histories)) {
    // A damaged file is reported above, not again as missing.
    if (!inTimelines(p.timeline) || historyFailures.some((f) => f.timeline === p.timeline)) continue;
    problems.push({ kind: 'history', timeline: p.timeline, subject: historyFileName(p.timeline), message: p.message });
  }

  for (const g of mergeGaps(chainTimelines.flatMap((tli) => chainGaps(present, historyOrSelf(histories, tli), segSize)))) {
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

  const scope = entries.filter((e) => inTimelines(e.timeline) && inWindow(e));
  // Same-content copies (two codecs after racing pushes) restore fine; different contents do not.
  const copies = new Map<string, CatalogEntry[]>();
  for (const e of scope) if (e.kind !== 'partial') copies.set(e.fileName, [...(copies.get(e.fileName) ?? []), e]);
  for (const [name, list] of copies) {
    const distinct = new Set(list.map((c) => c.sha256)).size;
    if (distinct > 1) {
      problems.push({
        kind: 'duplicate',
        timeline: list[0]!.timeline,
        subject: name,
        message:
          `the archive holds ${distinct} different versions (${list.map((c) => c.key).join(', ')}); recovery refuses to choose ` +
          `(run 'walvault wal-resolve ${name}')`,
      });
    }
  }
  // A claim without data is a push that stopped between claiming and uploading: nothing was
  // acknowledged for it, so it is not damage; PostgreSQL's retry of the same file completes it.
  const stored = new Set(entries.map((e) => e.fileName));
  for (const name of claimed) {
    if (stored.has(name)) continue;
    const c = tryClassifyWalFileName(name);
    if (!c || !inTimelines(c.timeline)) continue;
    if (c.kind !== 'history') {
      const segno = segnoOfName(name, segSize);
      if (segno === undefined || segno < window.first || segno > window.last) continue;
    }
    notes.push(
      `'${name}' is claimed but not archived (an unfinished push; retrying it completes it, 'walvault wal-resolve ${name}' removes the claim)`,
    );
  }
  return { problems, notes, chainTimelines, scope };
}

export function sortProblems(problems: Problem[]): Problem[] {
  return problems.sort(
    (a, b) =>
      (a.timeline ?? 0) - (b.timeline ?? 0) || (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0) || a.kind.localeCompare(b.kind),
  );
}

function segnoOfName(name: string, segSize: number): bigint | undefined {
  try {
    return SegmentName.parse(name.slice(0, 24), segSize).segno;
  } catch {
    return undefined;
  }
}
