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
import { createReadStream, readFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  ArchiveDuplicateError,
  InvalidWalError,
  LocalIoError,
  NotFoundError,
  ObjectExistsError,
  StorageError,
  WalvaultError,
  describeCause,
} from '../common/errors.js';
import { getCodec } from '../codec/codec.js';
import type { ChunkCompressor } from '../codec/chunked.js';
import { encryptParts, encryptedSize } from '../codec/encryption.js';
import { classifyWalFileName, type ClassifiedWalFileName } from '../segment/names.js';
import { finishArchiveScan, segmentScanner, type SegmentInspection } from '../segment/inspect.js';
import { formatLsn } from '../segment/lsn.js';
import { parseTimelineHistory } from '../segment/history.js';
import { WRITER, type ArchiveContext } from './context.js';
import { checkIdentity, ensureIdentity, requireIdentity } from './identity.js';
import { claimName, newClaim } from './claim.js';
import { damagedKey, errorKey, objectKey } from './keys.js';
import { findVersions, keyExtensionOf } from './versions.js';
import { checkStoredObject } from './stored-check.js';
import { encodeObjectHeader, type ArchivedKind, type ObjectMeta } from './object-header.js';

/** Largest file archived; WAL files are at most 1 GiB (wal_segment_size). */
const MAX_FILE_SIZE = 1024 * 1024 * 1024;
/**
 * The file is read once, in chunks of this size into one reused buffer: hashing, page checks and
 * compression run over each chunk while it is in cache. A multiple of every WAL block size.
 */
const READ_CHUNK = 1 << 20;

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

export interface PushFileOptions {
  /**
   * Native compression threads (zstd only; see CompressorOptions): the uploaders compress on them so
   * that hashing, I/O and several uploads overlap compression. 0, the default, compresses here.
   */
  readonly compressThreads?: number;
}

/** Archives the file at `path` under `fileName` (default: its base name). */
export async function pushFile(
  ctx: ArchiveContext,
  path: string,
  fileName: string = basename(path),
  opts: PushFileOptions = {},
): Promise<PushResult> {
  const started = performance.now();
  const classified = classifyWalFileName(fileName);
  const read = await readOnce(ctx, path, classified, opts.compressThreads ?? 0);
  return pushRead(ctx, classified, read, started);
}

/**
 * A finished segment whose producer already read every byte once, in the chunks pushFile would
 * read (the streaming agent, while it received it): its SHA-256, the page walk's verdict
 * (finishArchiveScan over segmentScanner(segSize, { expectedName })) and the compressed bytes.
 * `compressed` is absent for `compression none`: the object body is then the file at `path`, read
 * in pieces during the upload, so no copy of the segment is held.
 */
export interface ReceivedSegment {
  readonly fileName: string;
  readonly path: string;
  readonly sha256: string;
  readonly scan: SegmentInspection;
  readonly compressed?: ChunkCompressor;
}

/** pushFile for a ReceivedSegment: the same checks and rules, from what its producer kept. */
export async function pushReceivedSegment(ctx: ArchiveContext, seg: ReceivedSegment): Promise<PushResult> {
  const started = performance.now();
  const classified = classifyWalFileName(seg.fileName);
  if (classified.kind !== 'segment' || (seg.compressed === undefined) !== (ctx.compression.name === 'none')) {
    throw new LocalIoError(`unable to archive '${seg.fileName}': not a finished segment received for this compression`);
  }
  let st;
  try {
    st = await stat(seg.path, { bigint: true });
  } catch (err) {
    throw new LocalIoError(`unable to open WAL file '${seg.path}': ${describeCause(err)}`, { cause: err });
  }
  const size = Number(st.size);
  const file = { dev: Number(st.dev), ino: Number(st.ino), size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
  const read: ReadFile = { file, sha256: seg.sha256, size, compressed: seg.compressed ?? EMPTY, scan: seg.scan, text: undefined };
  const fromFile = seg.compressed === undefined ? seg.path : undefined;
  return pushRead(ctx, classified, read, started, fromFile);
}

const EMPTY: ChunkCompressor = { parts: [], length: 0, update: () => Promise.resolve(), end: () => Promise.resolve() };

/** The dedupe rule, the claim and the verified upload for a file read (or received) once. */
async function pushRead(
  ctx: ArchiveContext,
  classified: ClassifiedWalFileName,
  read: ReadFile,
  started: number,
  /** compression none: the object's payload is this file, streamed. */
  payloadFile?: string,
): Promise<PushResult> {
  const fileName = classified.name;
  let encoded: EncodedObject | undefined;
  const { file } = read;
  const log = ctx.log.child({ component: 'archive.push', segment: fileName });

  const meta = await describeFile(ctx, classified, read);
  const extension = keyExtensionOf(getCodec(ctx.compression.name, ctx.compression.level).extension);
  const key = objectKey({ fileName, sha256: meta.sha256, extension, encrypted: ctx.encryption !== undefined });

  const oneContent = classified.kind !== 'partial';
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
    const onTorn =
      existing.length === 0
        ? (err: Error): void =>
            log.warn({ err }, 'the claim was torn by an interrupted write and no data is stored under this name: claiming it again')
        : undefined;
    const holding = await claimName(ctx.storage, newClaim(fileName, meta.sha256, meta.size, WRITER), ctx.signal, onTorn);
    if (holding.sha256 !== meta.sha256) {
      throw await refuse(
        `another push claimed this name for a different file (sha256 ${holding.sha256.slice(0, 16)}..., ` +
          `by ${holding.writer} on ${holding.host} at ${holding.createdAt}`,
      );
    }
  }
  for (const d of damaged) await keepDamaged(ctx, d);

  const body = encodedBody();
  const putOpts = { contentLength: body.length, ...(ctx.signal ? { signal: ctx.signal } : {}) };
  let status: PushResult['status'] = 'uploaded';
  let storedBytes = body.length;
  if (damaged.some((d) => d.key === key)) {
    // A plain put replaces the damaged object atomically: readers see it or the whole new one, and
    // a concurrent push replacing it too writes the same content.
    await ctx.storage.put(key, body.stream(), putOpts);
  } else {
    try {
      await ctx.storage.put(key, body.stream(), { ifAbsent: true, ...putOpts });
    } catch (err) {
      if (!(err instanceof ObjectExistsError)) throw err;
      // Same key = same name and checksum: a concurrent push of the same file landed first.
      const check = await checkStoredObject(ctx.storage, key, { name: fileName, sha256: meta.sha256 }, ctx.signal);
      if (check.state === 'whole') {
        log.info({ key }, 'already archived with the same content (concurrent push)');
        status = 'already-archived';
        storedBytes = (await ctx.storage.head(key))?.size ?? body.length;
      } else {
        if (check.state === 'damaged') await keepDamaged(ctx, { key, sha256: meta.sha256, size: 0, reason: check.reason });
        await ctx.storage.put(key, body.stream(), putOpts);
      }
    }
  }
  if (status === 'uploaded') await verifyStored(ctx, key, body.length);
  // Only now that a whole copy is stored under our key may the damaged ones under other keys go.
  const stale = damaged.filter((d) => d.key !== key).map((d) => d.key);
  if (stale.length > 0) await ctx.storage.delete(stale);
  if (oneContent) await checkStillAlone(ctx, fileName, meta.sha256, key);
  if (status === 'uploaded') {
    log.info(
      { key, bytes: meta.size, storedBytes: body.length, durationMs: Math.round(performance.now() - started) },
      damaged.length > 0 ? 'archived, replacing a damaged copy' : 'archived',
    );
  }
  return result(status, key, storedBytes);

  /** Encoded once (one nonce when encrypted), written as often as a retry needs. */
  function encodedBody(): EncodedObject {
    encoded ??= payloadFile !== undefined ? fileObject(ctx, meta, payloadFile) : sealObject(ctx, meta, read.compressed);
    return encoded;
  }

  async function refuse(why: string): Promise<ArchiveDuplicateError> {
    const quarantined = await quarantine(ctx, meta, extension, encodedBody());
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

interface ReadFile {
  readonly file: FileIdentity;
  readonly sha256: string;
  readonly size: number;
  /** The compressed bytes, as the compressor produced them. */
  readonly compressed: ChunkCompressor;
  /** Segments and `.partial` files: the page walk over every chunk. */
  readonly scan: SegmentInspection | undefined;
  /** History and backup-label files (small text): their content, for the checks of their kind. */
  readonly text: Buffer | undefined;
}

/**
 * Reads the file once in READ_CHUNK pieces into one buffer, and feeds each piece to the SHA-256, the
 * page walk and the compressor: no copy of the whole file is ever made. Nothing is written here, so a
 * refused file leaves nothing behind.
 */
async function readOnce(ctx: ArchiveContext, path: string, classified: ClassifiedWalFileName, threads: number): Promise<ReadFile> {
  const fileName = classified.name;
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
    const size = Number(st.size);
    const changed = (): LocalIoError =>
      new LocalIoError(`unable to archive '${path}': the file changed while it was read`, { retryable: true });
    const isWal = classified.kind === 'segment' || classified.kind === 'partial';
    const scanner = isWal ? segmentScanner(size, { expectedName: fileName }) : undefined;
    const textParts: Buffer[] = [];
    const hash = createHash('sha256');
    const compressor = await getCodec(ctx.compression.name, ctx.compression.level).createCompressor(size, { threads });
    const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(size, 1)));
    let total = 0;
    for (;;) {
      // Fill the whole buffer: the page walk needs every chunk but the last to end on a page boundary.
      let filled = 0;
      while (filled < buffer.length) {
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (filled === 0) break;
      total += filled;
      // More bytes than the size we compress for (pledged to zstd): the file grew under us.
      if (total > size) throw changed();
      const chunk = buffer.subarray(0, filled);
      hash.update(chunk);
      scanner?.update(chunk);
      if (!isWal) textParts.push(Buffer.from(chunk));
      await compressor.update(chunk);
      if (filled < buffer.length) break;
    }
    // A file that changed while we read it is not what we checksummed: refuse rather than guess.
    const after = await handle.stat({ bigint: true });
    if (after.size !== st.size || after.mtimeNs !== st.mtimeNs || total !== size) throw changed();
    const scan = scanner ? finishArchiveScan(scanner, fileName) : undefined;
    await compressor.end();
    return {
      file: { dev: Number(st.dev), ino: Number(st.ino), size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs },
      sha256: hash.digest('hex'),
      size,
      compressed: compressor,
      scan,
      text: isWal ? undefined : Buffer.concat(textParts, total),
    };
  } catch (err) {
    if (err instanceof WalvaultError) throw err;
    throw new LocalIoError(`unable to read WAL file '${path}': ${describeCause(err)}`, { cause: err });
  } finally {
    await handle.close();
  }
}

/** Validates the file for its kind and builds its object metadata (checking the archive identity). */
async function describeFile(
  ctx: ArchiveContext,
  classified: ClassifiedWalFileName,
  read: ReadFile,
): Promise<Omit<ObjectMeta, 'payloadBytes'>> {
  const name = classified.name;
  const { sha256, size } = read;
  const base = {
    name,
    sha256,
    size,
    codec: ctx.compression.name,
    level: ctx.compression.level,
    encryption: ctx.encryption ? ({ alg: 'aes-256-gcm-chunked', keyId: ctx.encryption.keyId } as const) : null,
    createdAt: new Date().toISOString(),
    writer: WRITER,
  };
  const info = read.scan;
  if (info !== undefined) {
    // Strict structure first (checked while reading: nothing is written for a refused file), then
    // the archive identity: a finished segment must be whole; a .partial may end anywhere but must be full-sized.
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
  const bytes = read.text ?? Buffer.alloc(0);
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

/** An encoded object: header and payload pieces, never joined into one buffer. */
export interface EncodedObject {
  readonly parts: readonly Buffer[];
  readonly length: number;
  /** A fresh stream of the pieces, for each put. */
  stream(): Readable;
}

/** Header plus payload of compressed bytes `compressed` (encrypted when the archive is). */
function sealObject(ctx: ArchiveContext, meta: Omit<ObjectMeta, 'payloadBytes'>, compressed: ChunkCompressor): EncodedObject {
  const payloadBytes = ctx.encryption ? encryptedSize(compressed.length) : compressed.length;
  const header = encodeObjectHeader({ ...meta, payloadBytes });
  const payload = ctx.encryption ? encryptParts(compressed.parts, ctx.encryption, { aad: header }) : compressed.parts;
  const parts = [header, ...payload];
  return { parts, length: header.length + payloadBytes, stream: () => partsStream(parts) };
}

/**
 * The pieces as a stream that yields each one as it is (the storages iterate put bodies piece by
 * piece). A byte-mode stream would hand its reader everything buffered joined into one new buffer:
 * a copy of the whole object into fresh memory per put, a large share of a cold push's CPU.
 */
function partsStream(parts: readonly Buffer[]): Readable {
  return Readable.from(parts, { objectMode: true });
}

/** compression none: the header, then the file itself read in 1 MiB pieces at each put (it must not change). */
function fileObject(ctx: ArchiveContext, meta: Omit<ObjectMeta, 'payloadBytes'>, path: string): EncodedObject {
  if (ctx.encryption) {
    // Sealing takes the payload whole: an encrypted uncompressed archive reads the segment into memory.
    const header = encodeObjectHeader({ ...meta, payloadBytes: encryptedSize(meta.size) });
    const parts = [header, ...encryptParts([readFileSync(path)], ctx.encryption, { aad: header })];
    return { parts, length: header.length + encryptedSize(meta.size), stream: () => partsStream(parts) };
  }
  const header = encodeObjectHeader({ ...meta, payloadBytes: meta.size });
  return {
    parts: [header],
    length: header.length + meta.size,
    stream: () => Readable.from(withHeader(header, createReadStream(path, { highWaterMark: READ_CHUNK })), { objectMode: false }),
  };
}

async function* withHeader(header: Buffer, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield header;
  yield* rest;
}

/** The whole object for `bytes` in one buffer, for callers that hold small files whole (backup objects). */
export async function encodeObject(ctx: ArchiveContext, meta: Omit<ObjectMeta, 'payloadBytes'>, bytes: Buffer): Promise<Buffer> {
  const compressor = await getCodec(ctx.compression.name, ctx.compression.level).createCompressor(bytes.length);
  await compressor.update(bytes);
  await compressor.end();
  const encoded = sealObject(ctx, meta, compressor);
  return Buffer.concat(encoded.parts, encoded.length);
}

async function quarantine(
  ctx: ArchiveContext,
  meta: Omit<ObjectMeta, 'payloadBytes'>,
  extension: string,
  body: EncodedObject,
): Promise<string> {
  const key = errorKey({ fileName: meta.name, sha256: meta.sha256, extension, encrypted: ctx.encryption !== undefined });
  try {
    await ctx.storage.put(key, body.stream(), { ifAbsent: true, contentLength: body.length });
  } catch (err) {
    if (!(err instanceof ObjectExistsError)) {
      ctx.log.warn({ key, err }, 'could not keep the refused copy');
    }
  }
  return key;
}

/**
 * Looked at again after these waits before an upload is called failed: on a store whose writes are not
 * atomic (s3rver writes in place) a racing push of the same content (same key) can be seen mid-write,
 * empty or short; what it writes is byte for byte ours.
 */
const VERIFY_SETTLE_MS = [50, 200, 500];

/** Uploads are verified: the object must be visible with exactly the bytes we sent. */
async function verifyStored(ctx: ArchiveContext, key: string, expectedSize: number): Promise<void> {
  let info = await ctx.storage.head(key);
  for (const ms of VERIFY_SETTLE_MS) {
    if (info?.size === expectedSize) return;
    await new Promise((r) => setTimeout(r, ms));
    info = await ctx.storage.head(key);
  }
  if (!info) throw new StorageError(`unable to verify object '${key}': not visible after upload`, { retryable: true });
  if (info.size !== expectedSize) {
    throw new StorageError(`unable to verify object '${key}': stored ${info.size} bytes, sent ${expectedSize}`, {
      retryable: true,
    });
  }
}
