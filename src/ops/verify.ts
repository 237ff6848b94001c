/**
 * wal-verify: is the archive whole, and is every object what its key says? Continuity of every
 * timeline along the path recovery takes (history files included), the header of every object
 * against the archive's identity, and with `deep` a full download and verification of every object
 * (decryption, decompression, SHA-256). Problems are collected, never thrown: the operator gets the
 * complete list. Only failures to look (storage unreachable, interrupted) are thrown.
 */
import PQueue from 'p-queue';
import type { CatalogEntry } from '../archive/catalog/listing.js';
import type { ArchiveContext } from '../archive/context.js';
import { readObject } from '../restore/fetch.js';
import type { ArchiveIdentity } from '../archive/identity.js';
import type { ObjectMeta } from '../archive/object-header.js';
import { CLAIMS_PREFIX, lookupPrefix, parseClaimKey, parseObjectKey } from '../archive/keys.js';
import { listCatalog } from '../archive/catalog/listing.js';
import { compareKeys } from '../storage/key.js';
import { VerifiedReader, VerifiedWriter, type VerifiedLine } from '../archive/catalog/verified-record.js';
import { AbortedError, ConfigError, ExitCode, NotFoundError, WalvaultError } from '../common/errors.js';
import { formatLsn } from '../segment/lsn.js';
import { readObjectHeader } from '../archive/header-read.js';
import { loadArchiveIdentity, loadHistories } from '../archive/catalog/inventory.js';
import { checkObjectMeta } from '../archive/catalog/object-checks.js';
import { StructureAggregator, sortProblems, type Problem, type VerifyScope } from '../archive/catalog/verify-structure.js';
import { errorText } from '../common/format.js';

export type { Problem, ProblemKind } from '../archive/catalog/verify-structure.js';

export interface VerifyProgress {
  readonly done: number;
  /** Objects in scope listed so far (the listing is read while objects are checked). */
  readonly total: number;
  /** Bytes read so far (whole objects with deep, headers otherwise). */
  readonly bytes: number;
}

export interface VerifyOptions extends VerifyScope {
  /** Download and verify every object in full. */
  readonly deep?: boolean;
  /** Objects checked at once. */
  readonly parallel?: number;
  readonly onProgress?: (p: VerifyProgress) => void;
  /** The verified-objects record to read and update (see verified-record.ts); none when undefined. */
  readonly recordPath?: string;
  /** Check every object again, whatever the record says. */
  readonly recheck?: boolean;
}

export interface VerifyReport {
  readonly archive: string;
  readonly identity: ArchiveIdentity;
  readonly deep: boolean;
  /** Timelines whose chain was checked. */
  readonly timelines: readonly number[];
  readonly range: { readonly from: string | null; readonly to: string | null };
  /** Full segments in scope. */
  readonly segments: number;
  /** Objects checked (headers, or whole objects with deep; history files are always read in full). */
  readonly objects: number;
  /** Objects in scope not read again: the record says an earlier run checked them as they are now. */
  readonly fromRecord: number;
  readonly bytesRead: number;
  readonly problems: readonly Problem[];
  /** Worth knowing, not wrong (a new timeline without segments yet, an object deleted while verifying). */
  readonly notes: readonly string[];
  readonly durationMs: number;
}

function isProblemError(err: unknown): err is WalvaultError {
  return err instanceof WalvaultError && err.exitCode === ExitCode.integrity;
}

export async function verifyArchive(ctx: ArchiveContext, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now();
  const identity = await loadArchiveIdentity(ctx);
  const segSize = identity.walSegSize;
  // History files first (one per timeline): they decide which timelines a scope covers.
  const historyEntries: CatalogEntry[] = [];
  for await (const e of listCatalog(ctx.storage, segSize, { only: 'history' })) historyEntries.push(e);
  const { histories, failures } = await loadHistories(ctx, historyEntries);
  const agg = new StructureAggregator(histories, failures, segSize, opts);
  if (opts.deep && !ctx.encryption) await refuseEncryptedWithoutKey(ctx, segSize, agg);

  const record = await VerifiedReader.open(opts.recordPath, identity, ctx.storage.description);
  const writer = VerifiedWriter.create(opts.recordPath, identity, ctx.storage.description);
  const problems: Problem[] = [];
  const notes: string[] = [];
  const claims = new ClaimCursor(ctx.storage);
  const unstoredClaims: string[] = [];
  const parallel = Math.max(1, opts.parallel ?? 4);
  const queue = new PQueue({ concurrency: parallel });
  const settled = new SettledInOrder(writer);
  let total = 0;
  let historyObjects = 0;
  let done = 0;
  let fromRecord = 0;
  let bytesRead = 0;
  let fatal: unknown;
  const report = (): void => opts.onProgress?.({ done, total, bytes: bytesRead });
  report();
  try {
    // One pass over the listing: structure tallies, claims matched side by side, and each object's
    // check queued as it is listed (a bounded queue), so nothing holds the whole listing.
    for await (const entry of listCatalog(ctx.storage, segSize)) {
      if (fatal !== undefined) break;
      await claims.pass(entry, unstoredClaims);
      const scoped = agg.add(entry);
      if (entry.kind === 'history') {
        if (scoped) historyObjects++; // downloaded and verified in full above
        continue;
      }
      const seq = settled.next();
      const old = await record.find(entry.key);
      const valid = old && !opts.recheck && old.size === entry.storedBytes && old.mtimeMs === entry.mtime.getTime() ? old : undefined;
      if (!scoped) {
        settled.settle(seq, valid);
        continue;
      }
      total++;
      if (valid && (valid.level === 'd' || !opts.deep)) {
        fromRecord++;
        done++;
        settled.settle(seq, valid);
        report();
        continue;
      }
      if (queue.size >= parallel * 2) await queue.onSizeLessThan(parallel);
      // A check that hangs must not let the in-order record buffer grow without bound.
      if (settled.waiting > 10_000) await queue.onIdle();
      void queue.add(async () => {
        let line: VerifiedLine | undefined;
        if (fatal !== undefined) return settled.settle(seq, undefined);
        try {
          if (ctx.signal?.aborted) throw new AbortedError('unable to verify the archive: interrupted', { cause: ctx.signal.reason });
          const { meta, bytes, payloadOffset } = await readMeta(ctx, entry, opts.deep === true);
          bytesRead += bytes;
          const found = checkObjectMeta(entry, meta, identity, payloadOffset);
          for (const p of found) problems.push({ kind: p.kind, timeline: entry.timeline, subject: entry.key, message: p.message });
          if (found.length === 0) {
            line = {
              key: entry.key,
              size: entry.storedBytes,
              mtimeMs: entry.mtime.getTime(),
              level: opts.deep ? 'd' : (valid?.level ?? 'h'),
            };
          }
        } catch (err) {
          if (err instanceof NotFoundError) notes.push(`'${entry.key}' was deleted while verifying`);
          else if (isProblemError(err)) {
            problems.push({
              kind: opts.deep ? 'damaged' : 'header',
              timeline: entry.timeline,
              subject: entry.key,
              message: errorText(err),
            });
          } else {
            fatal ??= err;
            queue.clear();
          }
        }
        settled.settle(seq, line);
        done++;
        report();
      });
    }
    await queue.onIdle();
    if (fatal !== undefined) throw fatal;
    await claims.rest(unstoredClaims);
    const structure = agg.finish(await reallyUnstored(ctx, unstoredClaims));
    problems.unshift(...structure.problems);
    notes.push(...structure.notes);
    sortProblems(problems);
    if (writer) await writer.commit();
    return {
      archive: ctx.storage.description,
      identity,
      deep: opts.deep === true,
      timelines: structure.chainTimelines,
      range: {
        from: opts.from !== undefined ? formatLsn(opts.from) : null,
        to: opts.to !== undefined ? formatLsn(opts.to) : null,
      },
      segments: agg.segmentsInScope,
      objects: total + historyObjects,
      fromRecord,
      bytesRead,
      problems,
      notes: notes.sort(),
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    record.close();
    await writer?.abandon();
  }
}

/** With --deep and no key, refuses before anything is read (as the full listing did before). */
async function refuseEncryptedWithoutKey(ctx: ArchiveContext, segSize: number, agg: StructureAggregator): Promise<void> {
  let encrypted = 0;
  for await (const e of listCatalog(ctx.storage, segSize, { only: 'wal' })) if (e.encrypted && agg.inScope(e)) encrypted++;
  if (encrypted > 0) {
    throw new ConfigError(
      `unable to verify the archive in depth: ${encrypted} objects are encrypted and no encryption key is configured (set encryption-key-file)`,
    );
  }
}

/** Claimed names the side-by-side merge did not see stored, each confirmed with a lookup listing. */
async function reallyUnstored(ctx: ArchiveContext, candidates: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const name of candidates) {
    let stored = false;
    for await (const obj of ctx.storage.list(lookupPrefix(name))) {
      if (parseObjectKey(obj.key)?.fileName === name) {
        stored = true;
        break;
      }
    }
    if (!stored) out.push(name);
  }
  return out;
}

/**
 * Claims in key order, walked beside the catalog listing: both sort a name at `<dir>/<name>`, so a
 * claim behind the listing's position has no object (a candidate, confirmed later by a lookup).
 */
class ClaimCursor {
  private readonly it: AsyncIterator<{ key: string }>;
  private head: { name: string; pos: string } | undefined;
  private ended = false;

  constructor(storage: ArchiveContext['storage']) {
    this.it = storage.list(CLAIMS_PREFIX)[Symbol.asyncIterator]();
  }

  private async peek(): Promise<{ name: string; pos: string } | undefined> {
    while (!this.head && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else {
        const name = parseClaimKey(r.value.key);
        if (name !== undefined) this.head = { name, pos: r.value.key.slice(CLAIMS_PREFIX.length) };
      }
    }
    return this.head;
  }

  async pass(entry: CatalogEntry, out: string[]): Promise<void> {
    const pos = `${entry.key.slice(0, entry.key.lastIndexOf('/') + 1)}${entry.fileName}`;
    for (let h = await this.peek(); h; h = await this.peek()) {
      const c = compareKeys(h.pos, pos);
      if (c > 0) return;
      this.head = undefined;
      if (c < 0) out.push(h.name);
    }
  }

  async rest(out: string[]): Promise<void> {
    for (let h = await this.peek(); h; h = await this.peek()) {
      this.head = undefined;
      out.push(h.name);
    }
  }
}

/** Hands record lines to the writer in listing order, whatever order the checks finish in. */
class SettledInOrder {
  private readonly slots = new Map<number, VerifiedLine | undefined>();
  private issued = 0;
  private flushed = 0;

  constructor(private readonly writer: VerifiedWriter | undefined) {}

  next(): number {
    return this.issued++;
  }

  get waiting(): number {
    return this.slots.size;
  }

  settle(seq: number, line: VerifiedLine | undefined): void {
    if (!this.writer) return;
    this.slots.set(seq, line);
    while (this.slots.has(this.flushed)) {
      const l = this.slots.get(this.flushed);
      this.slots.delete(this.flushed);
      if (l) this.writer.add(l);
      this.flushed++;
    }
  }
}

async function readMeta(
  ctx: ArchiveContext,
  entry: CatalogEntry,
  deep: boolean,
): Promise<{ meta: ObjectMeta; bytes: number; payloadOffset?: number }> {
  if (deep) {
    // readObject proved sizes, checksum and decryption already.
    const restored = await readObject(ctx, { key: entry.key, parts: entry, storedBytes: entry.storedBytes });
    return { meta: restored.meta, bytes: restored.storedBytes };
  }
  const header = await readObjectHeader(ctx.storage, entry.key, ctx.signal);
  return { meta: header.meta, bytes: header.payloadOffset, payloadOffset: header.payloadOffset };
}
