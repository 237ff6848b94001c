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
import { CLAIMS_PREFIX, parseClaimKey } from '../archive/keys.js';
import { AbortedError, ConfigError, ExitCode, NotFoundError, WalvaultError } from '../common/errors.js';
import { formatLsn } from '../segment/lsn.js';
import { readObjectHeader } from '../archive/header-read.js';
import { loadHistories, loadInventory } from '../archive/catalog/inventory.js';
import { checkObjectMeta } from '../archive/catalog/object-checks.js';
import { checkStructure, sortProblems, type Problem, type VerifyScope } from '../archive/catalog/verify-structure.js';
import { errorText } from '../common/format.js';

export type { Problem, ProblemKind } from '../archive/catalog/verify-structure.js';

export interface VerifyProgress {
  readonly done: number;
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
  const { identity, segSize, entries } = await loadInventory(ctx);
  const { histories, failures } = await loadHistories(ctx, entries);
  const claimed: string[] = [];
  for await (const obj of ctx.storage.list(CLAIMS_PREFIX)) {
    const name = parseClaimKey(obj.key);
    if (name !== undefined) claimed.push(name);
  }
  const { problems, notes, chainTimelines, scope } = checkStructure(entries, histories, failures, segSize, opts, claimed);

  // History files were downloaded and verified in full above.
  const objects = scope.filter((e) => e.kind !== 'history');
  const encrypted = objects.filter((e) => e.encrypted).length;
  if (opts.deep && encrypted > 0 && !ctx.encryption) {
    throw new ConfigError(
      `unable to verify the archive in depth: ${encrypted} objects are encrypted and no encryption key is configured (set encryption-key-file)`,
    );
  }
  const historyCount = scope.length - objects.length;
  let done = 0;
  let bytesRead = 0;
  let fatal: unknown;
  const queue = new PQueue({ concurrency: Math.max(1, opts.parallel ?? 4) });
  const report = (): void => opts.onProgress?.({ done, total: objects.length, bytes: bytesRead });
  report();
  for (const entry of objects) {
    void queue.add(async () => {
      if (fatal !== undefined) return;
      try {
        if (ctx.signal?.aborted) throw new AbortedError('unable to verify the archive: interrupted', { cause: ctx.signal.reason });
        const { meta, bytes, payloadOffset } = await readMeta(ctx, entry, opts.deep === true);
        bytesRead += bytes;
        for (const p of checkObjectMeta(entry, meta, identity, payloadOffset)) {
          problems.push({ kind: p.kind, timeline: entry.timeline, subject: entry.key, message: p.message });
        }
      } catch (err) {
        if (err instanceof NotFoundError) notes.push(`'${entry.key}' was deleted while verifying`);
        else if (isProblemError(err)) {
          problems.push({ kind: opts.deep ? 'damaged' : 'header', timeline: entry.timeline, subject: entry.key, message: errorText(err) });
        } else {
          fatal ??= err;
          queue.clear();
        }
      }
      done++;
      report();
    });
  }
  await queue.onIdle();
  if (fatal !== undefined) throw fatal;

  sortProblems(problems);
  return {
    archive: ctx.storage.description,
    identity,
    deep: opts.deep === true,
    timelines: chainTimelines,
    range: {
      from: opts.from !== undefined ? formatLsn(opts.from) : null,
      to: opts.to !== undefined ? formatLsn(opts.to) : null,
    },
    segments: scope.filter((e) => e.kind === 'segment').length,
    objects: objects.length + historyCount,
    bytesRead,
    problems,
    notes: notes.sort(),
    durationMs: Math.round(performance.now() - started),
  };
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
