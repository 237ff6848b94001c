/**
 * backup-verify, what an incremental backup needs beyond its own packs: its chain (every parent
 * down to the full backup and every backup its files reference, each a complete backup with an
 * intact catalog), the files whose bytes are in those backups' packs (hashed through a small cache
 * of packs, since references to one owner are mostly in order), and its INCREMENTAL files: every
 * header parses, fits its file's size, and together with the chain's headers plans a rebuild,
 * exactly as restore would plan it (chain-plan.ts). Problems are findings, as in the rest of
 * backup-verify.
 */
import { createHash } from 'node:crypto';
import type { ArchiveContext } from '../archive/context.js';
import { ExitCode, IntegrityError, NotFoundError, WalvaultError } from '../common/errors.js';
import { errorText } from '../common/format.js';
import { extentOwner, packRef, restoredPath, type Catalog, type CatalogEntry } from '../backup/catalog.js';
import { loadBackupObject } from '../backup/objects.js';
import type { DamagedRecords } from '../backup/chains.js';
import type { BackupRecord } from '../backup/record.js';
import { loadChain } from '../backup/restore/chain.js';
import { headerRequests, parseHeaders, planFiles } from '../backup/restore/chain-plan.js';
import { readRanges } from '../backup/restore/ranges.js';
import { unitKey } from '../backup/restore/pieces.js';
import { checkIncrementalSize, incrementalHeaderLengthForSize, parseIncrementalHeader } from '../backup/incremental/file-format.js';

export interface Findings {
  readonly problems: string[];
  readonly notes: string[];
}

/** Integrity-class failures are findings; storage failures and interruptions are thrown. */
export function isFinding(err: unknown): err is WalvaultError {
  return err instanceof WalvaultError && err.exitCode === ExitCode.integrity;
}

/** A file with bytes in another backup's packs. */
export function isReferencing(e: CatalogEntry): boolean {
  return e.extents.some((x) => x[3] !== undefined);
}

/** The header of an INCREMENTAL file from its first bytes: parses and fits the file's size, else a problem. */
export function checkIncrementalHead(e: CatalogEntry, first: Buffer, out: Findings): void {
  try {
    const header = parseIncrementalHeader(first, restoredPath(e));
    checkIncrementalSize(header, e.size, restoredPath(e));
  } catch (err) {
    if (!isFinding(err)) throw err;
    out.problems.push(`file '${restoredPath(e)}': ${errorText(err)}`);
  }
}

/** How many leading bytes of an INCREMENTAL file hold its header (all of it when the size fits no header). */
export function headLength(e: CatalogEntry): number {
  try {
    return incrementalHeaderLengthForSize(e.size, e.path);
  } catch {
    return Math.min(e.size, 12);
  }
}

/** The chain's catalogs, or undefined with the problem recorded; then the rebuild planned as restore plans it. */
export async function checkChain(
  ctx: ArchiveContext,
  record: BackupRecord,
  complete: readonly BackupRecord[],
  out: Findings,
  damaged?: DamagedRecords,
): Promise<ReadonlyMap<string, Catalog> | undefined> {
  try {
    const chain = await loadChain(ctx, record, complete, damaged);
    const requests = headerRequests(chain);
    planFiles(chain, parseHeaders(requests, await readRanges(ctx, record.name, chain.catalogs, requests, 2)));
    return chain.catalogs;
  } catch (err) {
    if (!isFinding(err)) throw err;
    out.problems.push(`chain: ${errorText(err)}`);
    return undefined;
  }
}

const CACHED_PACKS = 4;

/** Hashes every file of `catalog` that references other backups' packs; returns files checked and bytes read. */
export async function checkReferencingFiles(
  ctx: ArchiveContext,
  record: BackupRecord,
  catalog: Catalog,
  catalogs: ReadonlyMap<string, Catalog>,
  out: Findings,
): Promise<{ files: number; bytesRead: number }> {
  const cache = new Map<string, Buffer>();
  let bytesRead = 0;
  const pack = async (owner: string, n: number): Promise<Buffer> => {
    const key = unitKey(owner, n);
    const hit = cache.get(key);
    if (hit) return hit;
    const c = catalogs.get(owner);
    if (!c) throw new IntegrityError(`it needs backup '${owner}', whose catalog is not available`);
    const data = await loadBackupObject(ctx, packRef(owner, c, n));
    bytesRead += data.length;
    cache.set(key, data);
    if (cache.size > CACHED_PACKS) cache.delete(cache.keys().next().value!);
    return data;
  };
  let files = 0;
  for (const e of catalog.entries) {
    if (e.type !== 'file' || !isReferencing(e)) continue;
    const hash = createHash('sha256');
    const head: Buffer[] = [];
    let headBytes = 0;
    const want = e.incremental ? headLength(e) : 0;
    try {
      for (const x of e.extents) {
        const data = await pack(extentOwner(record.name, x), x[0]);
        if (x[1] + x[2] > data.length) throw new IntegrityError(`extent [${x.join(', ')}] lies outside its pack`);
        const slice = data.subarray(x[1], x[1] + x[2]);
        hash.update(slice);
        if (headBytes < want) {
          head.push(slice.subarray(0, want - headBytes));
          headBytes += Math.min(slice.length, want - headBytes);
        }
      }
    } catch (err) {
      if (!isFinding(err) && !(err instanceof NotFoundError)) throw err;
      out.problems.push(`file '${restoredPath(e)}' (bytes in earlier backups): ${errorText(err)}`);
      continue;
    }
    files++;
    const sha = hash.digest('hex');
    if (sha !== e.sha256) out.problems.push(`file '${restoredPath(e)}': its bytes hash to ${sha}, the catalog says ${e.sha256}`);
    else if (e.incremental) checkIncrementalHead(e, Buffer.concat(head), out);
  }
  return { files, bytesRead };
}
