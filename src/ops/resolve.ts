/**
 * wal-resolve: one content per name, restored by the operator. For a WAL file name that holds
 * several different contents (an archive written before claims existed, or a store that ignores
 * create-only writes), or whose claim disagrees with what is stored, choose the version to keep:
 * the one named with `keep`, or automatically the only intact one of this cluster, or the only one
 * whose page headers chain with the neighbouring segments (wal-chain.ts). The others are moved to
 * errors/ (copied, then deleted) and the claim is rewritten to the kept content. Refuses to guess:
 * when nothing decides, the operator must name the version.
 */
import type { CatalogEntry } from '../archive/catalog/listing.js';
import { newClaim, readClaim, replaceClaim, type ClaimRecord } from '../archive/claim.js';
import { WRITER, type ArchiveContext } from '../archive/context.js';
import { readObject, restoreFile } from '../restore/fetch.js';
import { claimKey, errorKey, parseObjectKey } from '../archive/keys.js';
import {
  ArchiveDuplicateError,
  ConfigError,
  ExitCode,
  NotFoundError,
  ObjectExistsError,
  UsageError,
  WalvaultError,
} from '../common/errors.js';
import { classifyWalFileName } from '../segment/names.js';
import { errorText } from '../common/format.js';
import type { Inventory } from '../archive/catalog/inventory.js';
import { chainBreak, segmentEdges, type SegmentEdges } from '../archive/catalog/wal-chain.js';

export interface ResolveCandidate {
  readonly sha256: string;
  readonly keys: readonly string[];
  readonly storedBytes: number;
  /** Size of the original file (0 when no copy could be read). */
  readonly size: number;
  readonly uploaded: string;
  readonly claimed: boolean;
  /** Why this version cannot be kept (damaged, another cluster), or null. */
  readonly problem: string | null;
  /** Neighbours it continues or is continued by. */
  readonly chains: readonly string[];
  /** Neighbours it does not fit, and why. */
  readonly breaks: readonly string[];
}

export interface ResolvePlan {
  readonly name: string;
  readonly candidates: readonly ResolveCandidate[];
  /** SHA-256 the claim names now; null: no claim; 'unreadable': a claim that cannot be parsed. */
  readonly claim: string | null;
  /** SHA-256 of the content kept; null when the name has no data (only its claim goes). */
  readonly keep: string | null;
  readonly reason: string;
  /** Objects moved to errors/. */
  readonly remove: readonly string[];
  /** The claim is rewritten (or, with no data, deleted). */
  readonly claimChange: boolean;
}

/** Names with more than one content (`.partial` excluded: its versions legitimately differ). */
export function conflictingNames(entries: readonly CatalogEntry[]): string[] {
  const shas = new Map<string, Set<string>>();
  for (const e of entries) {
    if (e.kind === 'partial') continue;
    shas.set(e.fileName, (shas.get(e.fileName) ?? new Set()).add(e.sha256));
  }
  return [...shas].filter(([, s]) => s.size > 1).map(([n]) => n);
}

function pickByOperator(candidates: readonly ResolveCandidate[], keep: string, name: string): ResolveCandidate {
  const k = keep.trim().toLowerCase();
  const matches = candidates.filter((c) => c.keys.includes(keep.trim()) || (/^[0-9a-f]{8,64}$/.test(k) && c.sha256.startsWith(k)));
  if (matches.length !== 1) {
    throw new UsageError(
      `unable to resolve '${name}': --keep '${keep}' matches ${matches.length} of its versions ` +
        `(${candidates.map((c) => c.sha256.slice(0, 12)).join(', ')}); give an object key or at least 8 hex digits of a sha256`,
    );
  }
  const chosen = matches[0]!;
  if (chosen.problem)
    throw new UsageError(`unable to resolve '${name}': the version ${chosen.sha256.slice(0, 12)} cannot be kept: ${chosen.problem}`);
  return chosen;
}

function pickAutomatically(candidates: readonly ResolveCandidate[], name: string): { chosen: ResolveCandidate; reason: string } {
  const intact = candidates.filter((c) => c.problem === null);
  const refuse = (why: string): never => {
    throw new ArchiveDuplicateError(`unable to resolve '${name}' automatically: ${why}; name the version to keep with --keep <sha256>`);
  };
  if (intact.length === 0) return refuse('no version is intact');
  if (intact.length === 1) {
    return { chosen: intact[0]!, reason: candidates.length > 1 ? 'the only intact version of this cluster' : 'the content stored' };
  }
  const fitting = intact.filter((c) => c.chains.length > 0 && c.breaks.length === 0);
  if (fitting.length === 1)
    return { chosen: fitting[0]!, reason: `the only version that chains with its neighbours (${fitting[0]!.chains.join(', ')})` };
  return refuse(
    fitting.length === 0
      ? 'no version chains with archived neighbouring segments'
      : `${fitting.length} versions chain with the archived neighbouring segments`,
  );
}

export async function planResolve(ctx: ArchiveContext, inv: Inventory, name: string, opts: { keep?: string } = {}): Promise<ResolvePlan> {
  const classified = classifyWalFileName(name);
  if (classified.kind === 'partial') {
    throw new UsageError(`unable to resolve '${name}': several .partial versions are normal (the one with the most WAL is restored)`);
  }
  let claim: ClaimRecord | undefined;
  let claimState: string | null = null;
  try {
    claim = await readClaim(ctx.storage, name, ctx.signal);
    claimState = claim?.sha256 ?? null;
  } catch (err) {
    if (!(err instanceof WalvaultError) || err.exitCode !== ExitCode.integrity) throw err;
    claimState = 'unreadable';
  }
  const mine = inv.entries.filter((e) => e.fileName === name);
  if (mine.length === 0) {
    if (claimState === null) throw new NotFoundError(`unable to resolve '${name}': the archive holds no such file and no claim for it`);
    return {
      name,
      candidates: [],
      claim: claimState,
      keep: null,
      reason: 'a claim without data (a push that never finished)',
      remove: [],
      claimChange: true,
    };
  }

  if (mine.some((e) => e.encrypted) && !ctx.encryption) {
    // Every version would read as damaged: refuse instead of deciding on that.
    throw new ConfigError(
      `unable to resolve '${name}': its versions are encrypted and no encryption key is configured (set encryption-key-file)`,
    );
  }
  const neighbours = classified.kind === 'segment' ? await neighbourEdges(ctx, inv, mine[0]!) : {};
  const candidates: ResolveCandidate[] = [];
  for (const sha of new Set(mine.map((e) => e.sha256))) {
    const copies = mine.filter((e) => e.sha256 === sha);
    let problem: string | null = null;
    let edges: SegmentEdges | undefined;
    let size = 0;
    for (const copy of copies) {
      try {
        const restored = await readObject(ctx, { key: copy.key, parts: copy, storedBytes: copy.storedBytes });
        size = restored.meta.size;
        if (restored.meta.systemId !== null && restored.meta.systemId !== inv.identity.systemId) {
          problem = `it is from database system ${restored.meta.systemId}, the archive belongs to ${inv.identity.systemId}`;
        } else {
          problem = null;
          if (classified.kind === 'segment') edges = segmentEdges(restored.bytes);
        }
        break;
      } catch (err) {
        if (!(err instanceof WalvaultError) || err.exitCode !== ExitCode.integrity) throw err;
        problem = errorText(err);
      }
    }
    const chains: string[] = [];
    const breaks: string[] = [];
    if (edges && neighbours.prev) {
      const why = chainBreak(neighbours.prev.edges, edges);
      if (why) breaks.push(`${neighbours.prev.name}: ${why}`);
      else chains.push(`continues ${neighbours.prev.name}`);
    }
    if (edges && neighbours.next) {
      const why = chainBreak(edges, neighbours.next.edges);
      if (why) breaks.push(`${neighbours.next.name}: ${why}`);
      else chains.push(`continued by ${neighbours.next.name}`);
    }
    candidates.push({
      sha256: sha,
      keys: copies.map((c) => c.key),
      storedBytes: copies[0]!.storedBytes,
      size,
      uploaded: copies.map((c) => c.mtime.toISOString()).sort()[0]!,
      claimed: claimState === sha,
      problem,
      chains,
      breaks,
    });
  }
  const { chosen, reason } =
    opts.keep !== undefined
      ? { chosen: pickByOperator(candidates, opts.keep, name), reason: 'named by the operator' }
      : pickAutomatically(candidates, name);
  return {
    name,
    candidates,
    claim: claimState,
    keep: chosen.sha256,
    reason,
    remove: candidates.filter((c) => c !== chosen).flatMap((c) => c.keys),
    claimChange: claimState !== chosen.sha256,
  };
}

interface Neighbour {
  readonly name: string;
  readonly edges: SegmentEdges;
}

/**
 * The segments before and after on the same timeline (before: an ancestor's when this timeline has
 * none there, since a child starts as a copy of its parent's WAL). Only neighbours with one intact
 * content count; anything else is no evidence.
 */
async function neighbourEdges(ctx: ArchiveContext, inv: Inventory, entry: CatalogEntry): Promise<{ prev?: Neighbour; next?: Neighbour }> {
  const segments = inv.entries.filter((e) => e.kind === 'segment' && e.segno !== undefined);
  const at = (segno: bigint, pick: (tlis: number[]) => number | undefined): string | undefined => {
    const tlis = [...new Set(segments.filter((e) => e.segno === segno).map((e) => e.timeline))];
    const tli = pick(tlis);
    return tli === undefined ? undefined : segments.find((e) => e.segno === segno && e.timeline === tli)?.fileName;
  };
  const segno = entry.segno!;
  const prevName =
    segno > 0n
      ? at(segno - 1n, (t) => (t.includes(entry.timeline) ? entry.timeline : t.filter((x) => x < entry.timeline).sort((a, b) => b - a)[0]))
      : undefined;
  const nextName = at(segno + 1n, (t) => (t.includes(entry.timeline) ? entry.timeline : undefined));
  const load = async (name: string | undefined): Promise<Neighbour | undefined> => {
    if (name === undefined) return undefined;
    try {
      return { name, edges: segmentEdges((await restoreFile(ctx, name)).bytes) };
    } catch (err) {
      if (err instanceof WalvaultError && err.exitCode === ExitCode.integrity) return undefined;
      throw err;
    }
  };
  const prev = await load(prevName);
  const next = await load(nextName);
  return { ...(prev ? { prev } : {}), ...(next ? { next } : {}) };
}

export interface ResolveOutcome {
  readonly moved: readonly { readonly from: string; readonly to: string }[];
  readonly claim: 'rewritten' | 'deleted' | 'unchanged';
}

/** Copies every other version to errors/, rewrites the claim, then deletes the copies' originals. */
export async function executeResolve(ctx: ArchiveContext, plan: ResolvePlan): Promise<ResolveOutcome> {
  const moved: { from: string; to: string }[] = [];
  for (const key of plan.remove) {
    const parts = parseObjectKey(key)!;
    const to = errorKey(parts);
    try {
      await ctx.storage.put(to, await ctx.storage.getBuffer(key), { ifAbsent: true });
    } catch (err) {
      if (!(err instanceof ObjectExistsError)) throw err;
    }
    moved.push({ from: key, to });
  }
  let claim: ResolveOutcome['claim'] = 'unchanged';
  if (plan.keep === null) {
    await ctx.storage.delete([claimKey(plan.name)]);
    claim = 'deleted';
  } else if (plan.claimChange) {
    const kept = plan.candidates.find((c) => c.sha256 === plan.keep)!;
    await replaceClaim(ctx.storage, newClaim(plan.name, kept.sha256, kept.size, `${WRITER} (wal-resolve)`));
    claim = 'rewritten';
  }
  if (plan.remove.length > 0) await ctx.storage.delete(plan.remove);
  ctx.log.info({ component: 'ops.resolve', segment: plan.name, moved: moved.length, claim }, `resolved: kept ${plan.keep ?? 'nothing'}`);
  return { moved, claim };
}
