/**
 * Archiving one WAL file: validate, checksum, compress, encrypt, upload, verify. Shared by wal-push
 * (archive_command), its look-ahead uploader and the streaming agent, so one rule decides what
 * "already archived" means everywhere.
 *
 * The dedupe rule: the SHA-256 of the original bytes is part of the object key, so one prefix listing
 * tells whether this name is absent (upload), present with the same content (success, nothing to do:
 * PostgreSQL re-runs archive_command after a crash) or present with different content (refused; the
 * existing object is never touched and the new bytes are kept under errors/ for the operator).
 * Because the key holds the checksum, create-only on it cannot stop two different files racing for
 * one name: a claim object (claim.ts) written create-only before the upload does, and a listing after
 * the upload catches stores that do not honour create-only writes. "Same content" counts only when
 * the stored object is whole (stored-check.ts); a damaged one is kept under errors/ and replaced.
 * `.partial` files are the exception: a longer partial of the same segment legitimately differs, so
 * several versions may coexist (no claim) and readers take the longest.
 */
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { basename } from 'node:path';
import { createHash } from 'node:crypto';
import {
  ArchiveDuplicateError,
  InvalidWalError,
  LocalIoError,
  NotFoundError,
  ObjectExistsError,
  StorageError,
  describeCause,
} from '../common/errors.js';
import { getCodec } from '../codec/codec.js';
import { encryptBuffer } from './crypto.js';
import { encryptedSize } from '../codec/encryption.js';
import { classifyWalFileName, type ClassifiedWalFileName } from '../segment/names.js';
import { inspectSegment, validateSegmentForArchive, type SegmentInspection } from '../segment/inspect.js';
import type { PutBody } from '../storage/types.js';
import { formatLsn } from '../segment/lsn.js';
import { parseTimelineHistory } from '../segment/history.js';
import { WRITER, type ArchiveContext } from './context.js';
import { checkIdentity, ensureIdentity, requireIdentity } from './identity.js';
import { claimName, newClaim } from './claim.js';
import { damagedKey, errorKey, objectKey } from './keys.js';
import { findVersions, keyExtensionOf } from './versions.js';
import { checkStoredObject } from './stored-check.js';
import { encodeObjectHeader, type ArchivedKind, type ObjectMeta } from './object-header.js';

/** Largest file archived from memory in one piece; WAL files are at most 1 GiB (wal_segment_size). */
const MAX_FILE_SIZE = 1024 * 1024 * 1024;

export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

export interface PushResult {
  readonly status: 'uploaded' | 'already-archived';
  readonly name: string;
  readonly key: string;
  readonly sha256: string;
  readonly size: number;
  readonly storedBytes: number;
  readonly durationMs: number;
  /** The file as it was read: lets a marker prove later that %p is the very file we archived. */
  readonly file: FileIdentity;
}

/** Archives the file at `path` under `fileName` (default: its base name). */
export async function pushFile(ctx: ArchiveContext, path: string, fileName: string = basename(path)): Promise<PushResult> {
  const started = performance.now();
  const classified = classifyWalFileName(fileName);
  const { bytes, file } = await readWholeFile(path, fileName);
  const meta = await describeFile(ctx, classified, bytes);
  const encoded = lazyObject(() => encodeObject(ctx, meta, bytes));
  return storeObject(ctx, { fileName, oneContent: classified.kind !== 'partial', meta, file, started, encoded });
}

/**
 * A finished segment whose producer already read every byte once: it hashed, checked
 * (SegmentStreamCheck) and compressed them as they arrived. The streaming agent archives what it
 * received this way, without reading the spool file back into memory.
 */
export interface ReceivedSegment {
  readonly fileName: string;
  /** The spool file holding the bytes; read again (in pieces) only for `compression none`. */
  readonly path: string;
  readonly sha256: string;
  readonly inspection: SegmentInspection;
  /** The bytes compressed with `ctx.compression` as one stream; absent for `none`. */
  readonly compressed?: readonly Buffer[];
}

/** pushFile for a ReceivedSegment: the same checks and rules, from what its producer kept. */
export async function pushReceivedSegment(ctx: ArchiveContext, seg: ReceivedSegment): Promise<PushResult> {
  const started = performance.now();
  const classified = classifyWalFileName(seg.fileName);
  if (classified.kind !== 'segment' || (seg.compressed === undefined) !== (ctx.compression.name === 'none')) {
    throw new LocalIoError(`unable to archive '${seg.fileName}': not a finished segment received for this compression`);
  }
  const file = await fileIdentity(seg.path);
  const meta = await describeWal(ctx, classified, seg.sha256, file.size, seg.inspection);
  const encoded = lazyObject(async () => {
    const header = (payloadBytes: number): Buffer => encodeObjectHeader({ ...meta, payloadBytes });
    if (seg.compressed === undefined) {
      if (ctx.encryption) return encodeObject(ctx, meta, await readFile(seg.path));
      // The spool file is final (renamed, never written again) until it is deleted after the upload.
      const head = header(meta.size);
      return {
        length: head.length + meta.size,
        open: () => Readable.from(withHeader(head, createReadStream(seg.path, { highWaterMark: 1 << 20 }))),
      };
    }
    const compressedBytes = seg.compressed.reduce((n, c) => n + c.length, 0);
    if (ctx.encryption) {
      const head = header(encryptedSize(compressedBytes));
      return bytesObject(Buffer.concat([head, encryptBuffer(Buffer.concat(seg.compressed, compressedBytes), ctx.encryption, head)]));
    }
    const head = header(compressedBytes);
    const parts = [head, ...seg.compressed];
    return { length: head.length + compressedBytes, open: () => Readable.from(parts) };
  });
  return storeObject(ctx, { fileName: seg.fileName, oneContent: true, meta, file, started, encoded });
}

/** An object body that can be opened more than once (an upload, then a replacing put or a quarantine). */
interface EncodedObject {
  readonly length: number;
  open(): PutBody;
}

function bytesObject(bytes: Buffer): EncodedObject {
  return { length: bytes.length, open: () => bytes };
}

/** Encodes on first use only: a file found already archived is never compressed. */
function lazyObject(make: () => Promise<Buffer | EncodedObject>): () => Promise<EncodedObject> {
  let made: Promise<EncodedObject> | undefined;
  return () => (made ??= make().then((m) => (Buffer.isBuffer(m) ? bytesObject(m) : m)));
}

async function* withHeader(head: Buffer, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield head;
  yield* rest;
}

interface StoreRequest {
  readonly fileName: string;
  /** Whether the name may hold one content only (everything but `.partial`). */
  readonly oneContent: boolean;
  readonly meta: Omit<ObjectMeta, 'payloadBytes'>;
  readonly file: FileIdentity;
  readonly started: number;
  readonly encoded: () => Promise<EncodedObject>;
}

/** The dedupe rule, the claim and the verified upload, shared by every way a file reaches us. */
async function storeObject(ctx: ArchiveContext, req: StoreRequest): Promise<PushResult> {
  const { fileName, meta, file, started, oneContent } = req;
  const log = ctx.log.child({ component: 'archive.push', segment: fileName });
  const extension = keyExtensionOf(getCodec(ctx.compression.name, ctx.compression.level).extension);
  const key = objectKey({ fileName, sha256: meta.sha256, extension, encrypted: ctx.encryption !== undefined });

  const existing = await existingVersions(ctx, fileName);
  const conflicting = existing.filter((e) => e.sha256 !== meta.sha256);
  if (conflicting.length > 0 && oneContent) {
    throw await refuse(`the archive already holds a different file under this name (sha256 ${conflicting[0]!.sha256.slice(0, 16)}...`);
  }
  // "Already archived" lets PostgreSQL recycle its copy: only a whole object may answer it.
  const damaged: DamagedVersion[] = [];
  for (const v of existing.filter((e) => e.sha256 === meta.sha256)) {
    const check = await checkStoredObject(ctx.storage, v.key, { name: fileName, sha256: meta.sha256 }, ctx.signal);
    if (check.state === 'whole') {
      log.info({ key: v.key }, 'already archived with the same content');
      return result('already-archived', v.key, v.size);
    }
    if (check.state === 'damaged') damaged.push({ ...v, reason: check.reason });
  }
  if (oneContent) {
    const holding = await claimName(ctx.storage, newClaim(fileName, meta.sha256, meta.size, WRITER), ctx.signal);
    if (holding.sha256 !== meta.sha256) {
      throw await refuse(
        `another push claimed this name for a different file (sha256 ${holding.sha256.slice(0, 16)}..., ` +
          `by ${holding.writer} on ${holding.host} at ${holding.createdAt}`,
      );
    }
  }
  for (const d of damaged) await keepDamaged(ctx, d);

  const encoded = await req.encoded();
  const putOpts = { contentLength: encoded.length, ...(ctx.signal ? { signal: ctx.signal } : {}) };
  let status: PushResult['status'] = 'uploaded';
  let storedBytes = encoded.length;
  if (damaged.some((d) => d.key === key)) {
    // A plain put replaces the damaged object atomically: readers see it or the whole new one, and
    // a concurrent push replacing it too writes the same content.
    await ctx.storage.put(key, encoded.open(), putOpts);
  } else {
    try {
      await ctx.storage.put(key, encoded.open(), { ifAbsent: true, ...putOpts });
    } catch (err) {
      if (!(err instanceof ObjectExistsError)) throw err;
      // Same key = same name and checksum: a concurrent push of the same file landed first.
      const check = await checkStoredObject(ctx.storage, key, { name: fileName, sha256: meta.sha256 }, ctx.signal);
      if (check.state === 'whole') {
        log.info({ key }, 'already archived with the same content (concurrent push)');
        status = 'already-archived';
        storedBytes = (await ctx.storage.head(key))?.size ?? encoded.length;
      } else {
        if (check.state === 'damaged') await keepDamaged(ctx, { key, sha256: meta.sha256, size: 0, reason: check.reason });
        await ctx.storage.put(key, encoded.open(), putOpts);
      }
    }
  }
  if (status === 'uploaded') await verifyStored(ctx, key, encoded.length);
  // Only now that a whole copy is stored under our key may the damaged ones under other keys go.
  const stale = damaged.filter((d) => d.key !== key).map((d) => d.key);
  if (stale.length > 0) await ctx.storage.delete(stale);
  if (oneContent) await checkStillAlone(ctx, fileName, meta.sha256, key);
  if (status === 'uploaded') {
    log.info(
      { key, bytes: meta.size, storedBytes: encoded.length, durationMs: Math.round(performance.now() - started) },
      damaged.length > 0 ? 'archived, replacing a damaged copy' : 'archived',
    );
  }
  return result(status, key, storedBytes);

  async function refuse(why: string): Promise<ArchiveDuplicateError> {
    const quarantined = await quarantine(ctx, meta, extension, req.encoded);
    return new ArchiveDuplicateError(
      `unable to archive '${fileName}': ${why}, this file ${meta.sha256.slice(0, 16)}...); ` +
        `nothing was overwritten, this copy was kept as '${quarantined}'`,
    );
  }

  function result(status: PushResult['status'], k: string, storedBytes: number): PushResult {
    return {
      status,
      name: fileName,
      key: k,
      sha256: meta.sha256,
      size: meta.size,
      storedBytes,
      durationMs: performance.now() - started,
      file,
    };
  }
}

async function fileIdentity(path: string): Promise<FileIdentity> {
  try {
    const st = await stat(path, { bigint: true });
    return { dev: Number(st.dev), ino: Number(st.ino), size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
  } catch (err) {
    throw new LocalIoError(`unable to open WAL file '${path}': ${describeCause(err)}`, { cause: err });
  }
}

async function readWholeFile(path: string, fileName: string): Promise<{ bytes: Buffer; file: FileIdentity }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new LocalIoError(`unable to open WAL file '${path}': ${describeCause(err)}`, { cause: err });
  }
  try {
    const st = await handle.stat({ bigint: true });
    if (!st.isFile()) throw new LocalIoError(`unable to archive '${path}': not a regular file`);
    if (st.size > BigInt(MAX_FILE_SIZE)) {
      throw new InvalidWalError(`unable to archive '${fileName}': ${st.size} bytes is larger than any WAL file`);
    }
    const bytes = await handle.readFile();
    // A file that changed while we read it is not what we checksummed: refuse rather than guess.
    const after = await handle.stat({ bigint: true });
    if (after.size !== st.size || after.mtimeNs !== st.mtimeNs || BigInt(bytes.length) !== st.size) {
      throw new LocalIoError(`unable to archive '${path}': the file changed while it was read`, { retryable: true });
    }
    return {
      bytes,
      file: { dev: Number(st.dev), ino: Number(st.ino), size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs },
    };
  } catch (err) {
    if (err instanceof LocalIoError || err instanceof InvalidWalError) throw err;
    throw new LocalIoError(`unable to read WAL file '${path}': ${describeCause(err)}`, { cause: err });
  } finally {
    await handle.close();
  }
}

/** Validates the file for its kind and builds its object metadata (checking the archive identity). */
async function describeFile(
  ctx: ArchiveContext,
  classified: ClassifiedWalFileName,
  bytes: Buffer,
): Promise<Omit<ObjectMeta, 'payloadBytes'>> {
  const name = classified.name;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const base = baseMeta(ctx, name, sha256, bytes.length);
  if (classified.kind === 'segment' || classified.kind === 'partial') {
    const header = inspectSegment(bytes, { expectedName: name });
    // Strict structure first (nothing is written for a refused file), then the archive identity:
    // a finished segment must be whole; a .partial may end anywhere but must be full-sized.
    const info = validateSegmentForArchive(bytes, name, { systemId: header.systemId, segSize: header.segSize });
    return describeWal(ctx, classified, sha256, bytes.length, info);
  }
  if (classified.kind === 'history') {
    // Refuse garbage: PostgreSQL reads this file at every timeline decision.
    parseTimelineHistory(bytes.toString('utf8'), classified.timeline);
  } else if (!bytes.toString('latin1').startsWith('START WAL LOCATION:')) {
    throw new InvalidWalError(`unable to archive '${name}': not a backup history file (no 'START WAL LOCATION' line)`);
  }
  // History and backup-label files carry no system id; they join whatever archive this is, but never
  // one that holds WAL and lost its identity (they would be recorded as that unknown cluster's).
  ctx.identity ??= await requireIdentity(ctx.storage, `archive '${name}'`);
  return {
    ...base,
    kind: classified.kind,
    systemId: ctx.identity?.systemId ?? null,
    timeline: classified.timeline,
    startLsn: null,
    validBytes: null,
  };
}

/** Metadata of a checked segment or `.partial` of `size` bytes, once its cluster fits the archive. */
async function describeWal(
  ctx: ArchiveContext,
  classified: ClassifiedWalFileName,
  sha256: string,
  size: number,
  info: SegmentInspection,
): Promise<Omit<ObjectMeta, 'payloadBytes'>> {
  const name = classified.name;
  if (classified.kind !== 'segment' && classified.kind !== 'partial') throw new InvalidWalError(`unable to archive '${name}': not WAL`);
  // Stamped before the identity is (maybe) created: no object is newer than the archive's identity.
  const base = baseMeta(ctx, name, sha256, size);
  const observed = { systemId: info.systemId, pgMajor: info.pgMajor, walSegSize: info.segSize };
  if (ctx.identity) checkIdentity(ctx.identity, observed, name);
  else ctx.identity = await ensureIdentity(ctx.storage, observed, name, WRITER);
  if (size !== info.segSize) {
    throw new InvalidWalError(`unable to archive '${name}': ${size} bytes, a WAL segment of this cluster has ${info.segSize}`);
  }
  return {
    ...base,
    kind: classified.kind as ArchivedKind,
    systemId: info.systemId,
    timeline: classified.timeline,
    startLsn: formatLsn(info.startLsn),
    validBytes: info.validBytes,
  };
}

function baseMeta(ctx: ArchiveContext, name: string, sha256: string, size: number) {
  return {
    name,
    sha256,
    size,
    codec: ctx.compression.name,
    level: ctx.compression.level,
    encryption: ctx.encryption ? ({ alg: 'aes-256-gcm-chunked', keyId: ctx.encryption.keyId } as const) : null,
    createdAt: new Date().toISOString(),
    writer: WRITER,
  };
}

interface ExistingVersion {
  readonly key: string;
  readonly sha256: string;
  readonly size: number;
}

async function existingVersions(ctx: ArchiveContext, fileName: string): Promise<ExistingVersion[]> {
  return (await findVersions(ctx, fileName)).map((v) => ({ key: v.key, sha256: v.parts.sha256, size: v.storedBytes }));
}

interface DamagedVersion extends ExistingVersion {
  readonly reason: string;
}

/** Copies a damaged object to errors/ (for the operator, and for proof) before a push replaces it. */
async function keepDamaged(ctx: ArchiveContext, d: DamagedVersion): Promise<void> {
  let raw: Buffer;
  try {
    raw = await ctx.storage.getBuffer(d.key, ctx.signal ? { signal: ctx.signal } : {});
  } catch (err) {
    if (err instanceof NotFoundError) return;
    throw err;
  }
  const kept = damagedKey(d.key, new Date());
  try {
    await ctx.storage.put(kept, raw, { ifAbsent: true });
  } catch (err) {
    if (!(err instanceof ObjectExistsError)) throw err;
  }
  ctx.log.warn({ component: 'archive.push', key: d.key, err: d.reason }, `replacing a damaged object; it was kept as '${kept}'`);
}

/**
 * The claim makes a second content impossible where create-only writes hold. Where they do not (a
 * store that ignores If-None-Match, or an older walvault writing beside this one), a listing after
 * our upload still catches the race: of two pushes that both stored their object, the later one
 * to list sees the other's, so at most one of them answers 0. Its object stays (deleting it could
 * take away a copy someone else already reported archived); wal-verify names the name and
 * wal-resolve chooses.
 */
async function checkStillAlone(ctx: ArchiveContext, fileName: string, sha256: string, key: string): Promise<void> {
  const others = (await existingVersions(ctx, fileName)).filter((v) => v.sha256 !== sha256);
  if (others.length === 0) return;
  throw new ArchiveDuplicateError(
    `unable to archive '${fileName}': a different file (sha256 ${others[0]!.sha256.slice(0, 16)}...) was stored under this name ` +
      `at the same time as this one ('${key}'), so the storage did not enforce the claim; both are in the archive, ` +
      `run 'walvault wal-resolve ${fileName}' to keep one`,
  );
}

export async function encodeObject(ctx: ArchiveContext, meta: Omit<ObjectMeta, 'payloadBytes'>, bytes: Buffer): Promise<Buffer> {
  const codec = getCodec(ctx.compression.name, ctx.compression.level);
  const compressed = await codec.compress(bytes);
  const payloadBytes = ctx.encryption ? encryptedSize(compressed.length) : compressed.length;
  const header = encodeObjectHeader({ ...meta, payloadBytes });
  const payload = ctx.encryption ? encryptBuffer(compressed, ctx.encryption, header) : compressed;
  return Buffer.concat([header, payload]);
}

async function quarantine(
  ctx: ArchiveContext,
  meta: Omit<ObjectMeta, 'payloadBytes'>,
  extension: string,
  encode: () => Promise<EncodedObject>,
): Promise<string> {
  const key = errorKey({ fileName: meta.name, sha256: meta.sha256, extension, encrypted: ctx.encryption !== undefined });
  try {
    const encoded = await encode();
    await ctx.storage.put(key, encoded.open(), { ifAbsent: true, contentLength: encoded.length });
  } catch (err) {
    if (!(err instanceof ObjectExistsError)) {
      ctx.log.warn({ key, err: describeCause(err) }, 'could not keep the refused copy');
    }
  }
  return key;
}

/** Uploads are verified: the object must be visible with exactly the bytes we sent. */
async function verifyStored(ctx: ArchiveContext, key: string, expectedSize: number): Promise<void> {
  const info = await ctx.storage.head(key);
  if (!info) throw new StorageError(`unable to verify object '${key}': not visible after upload`, { retryable: true });
  if (info.size !== expectedSize) {
    throw new StorageError(`unable to verify object '${key}': stored ${info.size} bytes, sent ${expectedSize}`, {
      retryable: true,
    });
  }
}
