/**
 * `walvault identity-rebuild`: gives an archive back its identity record when both copies were lost
 * or damaged (pushes are refused until then), or repairs one damaged copy from the other.
 *
 * The record is rebuilt from what the archived objects prove, never from configuration or from the
 * server at hand (that could be the very foreign cluster the identity exists to keep out):
 *   - system id: every object header that names one; two different ones refuse the rebuild;
 *   - segment size: the `size` of every segment and partial (always exactly wal_segment_size);
 *   - PostgreSQL major: the page magic of one segment, downloaded, verified and decoded in full.
 * The rebuilt record is deterministic (its creation time is the oldest object's), so two rebuilds
 * racing write the same bytes and can never leave two copies that disagree.
 */
import PQueue from 'p-queue';
import type { ArchiveContext } from '../archive/context.js';
import { WRITER } from '../archive/context.js';
import { readObject } from '../restore/fetch.js';
import {
  STORAGE_FORMAT_VERSION,
  decodeIdentity,
  encodeIdentity,
  readIdentity,
  findClusterObject,
  readIdentityCopies,
  repairCopies,
  type ArchiveIdentity,
  type IdentityCopies,
} from '../archive/identity.js';
import { HISTORY_PREFIX, IDENTITY_COPY_KEY, IDENTITY_KEY, WAL_PREFIX, damagedKey, parseObjectKey } from '../archive/keys.js';
import type { ObjectMeta } from '../archive/object-header.js';
import { ArchiveMismatchError, IdentityLostError, IntegrityError, NotFoundError, WalvaultError, describeCause } from '../common/errors.js';
import { inspectSegment } from '../segment/inspect.js';
import { tryClassifyWalFileName } from '../segment/names.js';
import { readObjectHeader } from '../archive/header-read.js';

export type RebuildAction = 'intact' | 'repaired' | 'rebuilt' | 'cleared';

export interface RebuildReport {
  readonly archive: string;
  /** What was done (or, with dryRun, what would be done). */
  readonly action: RebuildAction;
  readonly dryRun: boolean;
  /** null when cleared: the archive holds nothing to take an identity from until its next push. */
  readonly identity: ArchiveIdentity | null;
  /** Keys written (with dryRun: that would be written). */
  readonly written: readonly string[];
  /** Damaged copies set aside under errors/ and removed (action 'cleared'). */
  readonly setAside: readonly string[];
  /** Object headers read to rebuild (0 when a copy was intact). */
  readonly objectsRead: number;
  /** The segment whose page header gave the PostgreSQL major. */
  readonly decoded: string | null;
  /** Objects whose header could not be read: they vouch for nothing, check them with wal-verify. */
  readonly unreadable: readonly string[];
}

export interface RebuildOptions {
  readonly dryRun?: boolean;
  /** Headers read at once. */
  readonly parallel?: number;
}

const DECODE_ATTEMPTS = 3;

export async function rebuildIdentity(ctx: ArchiveContext, opts: RebuildOptions = {}): Promise<RebuildReport> {
  const dryRun = opts.dryRun === true;
  const archive = ctx.storage.description;
  let read: IdentityCopies | undefined;
  try {
    read = await readIdentityCopies(ctx.storage);
  } catch (err) {
    // Two intact copies that disagree: the archived WAL decides which (if either) is right.
    if (!(err instanceof IntegrityError)) throw err;
  }
  if (read?.identity && read.intactCopies === 2) {
    return {
      archive,
      action: 'intact',
      dryRun,
      identity: read.identity,
      written: [],
      setAside: [],
      objectsRead: 0,
      decoded: null,
      unreadable: [],
    };
  }
  if (read?.identity) {
    const broken = [...read.missing, ...read.damaged.map((d) => d.key), ...(read.stale ?? [])];
    const written = dryRun ? broken : await repairCopies(ctx.storage, read);
    return {
      archive,
      action: 'repaired',
      dryRun,
      identity: read.identity,
      written,
      setAside: [],
      objectsRead: 0,
      decoded: null,
      unreadable: [],
    };
  }
  if (read && read.damaged.length > 0 && (await findClusterObject(ctx.storage)) === undefined) {
    return clearDamaged(ctx, read, dryRun);
  }

  const scan = await scanHeaders(ctx, opts.parallel ?? 8);
  const derived = await derive(ctx, scan);
  const bytes = (await agreeingCopy(ctx, derived)) ?? encodeIdentity(derived);
  const identity = decodeIdentity(bytes, IDENTITY_KEY);
  const written = [IDENTITY_KEY, IDENTITY_COPY_KEY];
  if (!dryRun) {
    for (const key of written) await ctx.storage.put(key, bytes);
    const check = await readIdentity(ctx.storage);
    if (!check || JSON.stringify(check) !== JSON.stringify(identity)) {
      throw new IntegrityError(`unable to rebuild archive identity '${IDENTITY_KEY}': the record read back differs from the one written`);
    }
    ctx.identity = identity;
  }
  return {
    archive,
    action: 'rebuilt',
    dryRun,
    identity,
    written,
    setAside: [],
    objectsRead: scan.read,
    decoded: derived.decodedKey,
    unreadable: scan.unreadable.sort(),
  };
}

/**
 * Damaged copies in an archive that holds no WAL (a store that lost the end of the first write, like
 * an S3 server killed after acknowledging it): there is nothing to rebuild from and nothing for the
 * record to protect, yet every push refuses it. Keep the damaged bytes under errors/ for the
 * operator, then remove them, so the next push creates the identity from its own segment. Only on
 * this explicit command: a push never replaces a damaged record by itself.
 */
async function clearDamaged(ctx: ArchiveContext, read: IdentityCopies, dryRun: boolean): Promise<RebuildReport> {
  const now = new Date();
  const keys = read.damaged.map((d) => d.key);
  const setAside = keys.map((k) => damagedKey(k, now));
  if (!dryRun) {
    for (const [i, key] of keys.entries()) {
      await ctx.storage.put(setAside[i]!, await ctx.storage.getBuffer(key), { ifAbsent: true });
    }
    await ctx.storage.delete(keys);
  }
  return {
    archive: ctx.storage.description,
    action: 'cleared',
    dryRun,
    identity: null,
    written: [],
    setAside,
    objectsRead: 0,
    decoded: null,
    unreadable: [],
  };
}

interface Seen {
  count: number;
  keys: string[];
}

interface Scan {
  read: number;
  /** System id -> objects that name it (first few keys kept for messages). */
  systems: Map<string, Seen>;
  /** Segment size -> segments and partials of that size. */
  sizes: Map<number, Seen>;
  /** Segments (whole ones first), candidates to decode for the major. */
  segments: { key: string; meta: ObjectMeta; storedBytes: number }[];
  oldest: string | undefined;
  unreadable: string[];
}

async function scanHeaders(ctx: ArchiveContext, parallel: number): Promise<Scan> {
  const scan: Scan = { read: 0, systems: new Map(), sizes: new Map(), segments: [], oldest: undefined, unreadable: [] };
  const queue = new PQueue({ concurrency: Math.max(1, parallel) });
  let fatal: unknown;
  for (const prefix of [WAL_PREFIX, HISTORY_PREFIX]) {
    for await (const obj of ctx.storage.list(prefix)) {
      const parts = parseObjectKey(obj.key);
      if (!parts || !tryClassifyWalFileName(parts.fileName)) continue; // not one of our objects
      if (fatal !== undefined) break;
      // Keep the listing from running far ahead of the reads (bounded memory on huge archives).
      if (queue.size > parallel * 4) await queue.onSizeLessThan(parallel * 2);
      void queue.add(async () => {
        try {
          const { meta } = await readObjectHeader(ctx.storage, obj.key, ctx.signal);
          scan.read++;
          record(scan, obj.key, obj.size, meta);
        } catch (err) {
          if (err instanceof NotFoundError) return; // deleted since the listing
          if (err instanceof IntegrityError) scan.unreadable.push(obj.key);
          else fatal ??= err;
        }
      });
    }
  }
  await queue.onIdle();
  if (fatal !== undefined) throw fatal;
  scan.segments.sort((a, b) => Number(b.meta.kind === 'segment') - Number(a.meta.kind === 'segment') || (a.key < b.key ? -1 : 1));
  return scan;
}

function record(scan: Scan, key: string, storedBytes: number, meta: ObjectMeta): void {
  const note = (map: Map<string | number, Seen>, value: string | number): void => {
    const seen = map.get(value) ?? { count: 0, keys: [] };
    seen.count++;
    if (seen.keys.length < 2) seen.keys.push(key);
    map.set(value, seen);
  };
  if (meta.systemId !== null) note(scan.systems as Map<string | number, Seen>, meta.systemId);
  if (meta.kind === 'segment' || meta.kind === 'partial') {
    note(scan.sizes as Map<string | number, Seen>, meta.size);
    scan.segments.push({ key, meta, storedBytes });
  }
  if (scan.oldest === undefined || meta.createdAt < scan.oldest) scan.oldest = meta.createdAt;
}

function describeSeen(map: Map<string | number, Seen>, label: (v: string | number) => string): string {
  return [...map]
    .sort((a, b) => b[1].count - a[1].count)
    .map(([v, s]) => `${label(v)} (${s.count} objects, e.g. '${s.keys[0]}')`)
    .join(', ');
}

async function derive(ctx: ArchiveContext, scan: Scan): Promise<ArchiveIdentity & { decodedKey: string }> {
  const where = `unable to rebuild the archive identity of '${ctx.storage.description}'`;
  if (scan.systems.size > 1) {
    throw new ArchiveMismatchError(
      `${where}: its objects come from ${scan.systems.size} database systems: ${describeSeen(scan.systems, (v) => `system ${v}`)}; ` +
        "move the other cluster's objects out of the archive and run it again",
    );
  }
  if (scan.sizes.size > 1) {
    throw new ArchiveMismatchError(
      `${where}: its segments have ${scan.sizes.size} different sizes: ${describeSeen(scan.sizes, (v) => `${v} bytes`)}`,
    );
  }
  const systemId = [...scan.systems.keys()][0];
  const walSegSize = [...scan.sizes.keys()][0];
  if (systemId === undefined || walSegSize === undefined || scan.segments.length === 0) {
    throw new IdentityLostError(
      `${where}: it holds no readable segment to rebuild it from` +
        (scan.unreadable.length > 0 ? ` (${scan.unreadable.length} objects have unreadable headers, e.g. '${scan.unreadable[0]}')` : ''),
    );
  }
  // The header proves system id and size; only the page magic proves the major: decode a segment.
  let firstError: unknown;
  for (const { key, meta, storedBytes } of scan.segments.slice(0, DECODE_ATTEMPTS)) {
    try {
      const restored = await readObject(ctx, { key, parts: parseObjectKey(key)!, storedBytes });
      const inspected = inspectSegment(restored.bytes, { expectedName: meta.name });
      if (inspected.systemId !== systemId || inspected.segSize !== walSegSize) {
        throw new IntegrityError(`unable to decode '${key}': its page header disagrees with its object header`);
      }
      return {
        formatVersion: STORAGE_FORMAT_VERSION,
        systemId,
        pgMajor: inspected.pgMajor,
        walSegSize,
        // Deterministic: concurrent rebuilds write identical records.
        createdAt: scan.oldest ?? meta.createdAt,
        createdBy: `${WRITER} (identity-rebuild)`,
        decodedKey: key,
      };
    } catch (err) {
      if (!(err instanceof WalvaultError) || !(err.exitCode > 125)) throw err;
      firstError ??= err;
    }
  }
  throw new IntegrityError(`${where}: no segment could be decoded to learn the PostgreSQL major: ${describeCause(firstError)}`, {
    cause: firstError,
  });
}

/**
 * When the two copies were intact but disagreed, the one that matches what the WAL proves is kept
 * byte for byte (its creation time and author are history worth keeping).
 */
async function agreeingCopy(ctx: ArchiveContext, derived: ArchiveIdentity): Promise<Buffer | undefined> {
  for (const key of [IDENTITY_KEY, IDENTITY_COPY_KEY]) {
    let bytes: Buffer;
    let id: ArchiveIdentity;
    try {
      bytes = await ctx.storage.getBuffer(key);
      id = decodeIdentity(bytes, key);
    } catch (err) {
      if (err instanceof NotFoundError || err instanceof IntegrityError) continue;
      throw err;
    }
    if (id.systemId === derived.systemId && id.pgMajor === derived.pgMajor && id.walSegSize === derived.walSegSize) return bytes;
  }
  return undefined;
}
