/**
 * Backup objects (packs, catalog, manifest) are walvault objects of kind 'backup': the same header,
 * codecs, SHA-256 and authenticated encryption as WAL (src/archive/object-header.ts). Every store is
 * verified (visible, with exactly the bytes sent); every load checks size, codec and SHA-256 against
 * what the backup's records say, so a damaged or swapped object is an IntegrityError naming its key.
 */
import { createHash } from 'node:crypto';
import { IntegrityError, StorageError } from '../common/errors.js';
import { quoteExcerpt } from '../common/quote.js';
import { Readable } from 'node:stream';
import { getCodec, isCodecName, type CodecName } from '../codec/codec.js';
import { decompressInto } from '../codec/decompress-into.js';
import type { ArchiveContext } from '../archive/context.js';
import { decryptBuffer } from '../archive/crypto.js';
import { decodeObjectHeader } from '../archive/object-header.js';
import { encodeBackupObject, type EncodedBackupObject } from './object-encode.js';
import type { StoredRef } from './record.js';

export interface StoredObjectResult {
  readonly ref: StoredRef;
  /** Bytes the object takes in storage (header + compressed, encrypted payload). */
  readonly storedBytes: number;
}

/** Encodes `bytes` with the archive's codec and encryption, stores it at `key` and verifies it. */
export async function storeBackupObject(
  ctx: ArchiveContext,
  key: string,
  bytes: Buffer,
  systemId: string | null,
): Promise<StoredObjectResult> {
  return storeEncodedObject(ctx, key, await encodeBackupObject(ctx, key, bytes, systemId));
}

/** Stores an object encodeBackupObject produced (here or in a pack worker) and verifies it. */
export async function storeEncodedObject(ctx: ArchiveContext, key: string, encoded: EncodedBackupObject): Promise<StoredObjectResult> {
  // A single piece goes as a buffer (S3 then sends it without buffering a part); pieces as a stream.
  const body = encoded.parts.length === 1 ? (encoded.parts[0] as Buffer) : Readable.from(encoded.parts, { objectMode: false });
  await ctx.storage.put(key, body, { contentLength: encoded.length, ...(ctx.signal ? { signal: ctx.signal } : {}) });
  const info = await ctx.storage.head(key);
  if (!info) throw new StorageError(`unable to verify backup object '${key}': not visible after upload`, { retryable: true });
  if (info.size !== encoded.length) {
    throw new StorageError(`unable to verify backup object '${key}': stored ${info.size} bytes, sent ${encoded.length}`, {
      retryable: true,
    });
  }
  const digest = encoded.digest ? { digest: encoded.digest } : {};
  return { ref: { key, sha256: encoded.sha256, size: encoded.size, ...digest }, storedBytes: encoded.length };
}

/** Downloads, decrypts, decompresses and verifies the object `ref` names; its original bytes. */
export async function loadBackupObject(ctx: ArchiveContext, ref: StoredRef): Promise<Buffer> {
  const raw = await ctx.storage.getBuffer(ref.key, ctx.signal ? { signal: ctx.signal } : {});
  return decodeBackupObject(ctx, ref, raw);
}

/** The checks of loadBackupObject on bytes already read (verification tools read them once). */
export async function decodeBackupObject(ctx: Pick<ArchiveContext, 'encryption'>, ref: StoredRef, raw: Buffer): Promise<Buffer> {
  const { codec, payload, fail } = openPayload(ctx, ref, raw);
  const bytes = await getCodec(codec).decompress(payload, ref.size, ref.key);
  return checkDecoded(ref, bytes, fail);
}

/**
 * loadBackupObject decoding into `target`, a buffer the caller reuses from object to object (the
 * restore writer's pack buffer): returns target.subarray(0, ref.size), or a fresh buffer when
 * `target` is smaller than the object. The same checks; the bytes are valid until `target` is reused.
 */
export async function loadBackupObjectInto(ctx: ArchiveContext, ref: StoredRef, target: Buffer): Promise<Buffer> {
  const raw = await ctx.storage.getBuffer(ref.key, ctx.signal ? { signal: ctx.signal } : {});
  return decodeBackupObjectInto(ctx, ref, raw, target);
}

/** decodeBackupObject into `target` (see loadBackupObjectInto). */
export async function decodeBackupObjectInto(
  ctx: Pick<ArchiveContext, 'encryption'>,
  ref: StoredRef,
  raw: Buffer,
  target: Buffer,
): Promise<Buffer> {
  if (target.length < ref.size) return decodeBackupObject(ctx, ref, raw);
  const { codec, payload, fail } = openPayload(ctx, ref, raw);
  const n = await decompressInto(getCodec(codec), payload, target.subarray(0, ref.size), ref.key);
  return checkDecoded(ref, target.subarray(0, n), fail);
}

type Fail = (reason: string) => never;

/** Header checks and decryption: the compressed payload and its codec. */
function openPayload(
  ctx: Pick<ArchiveContext, 'encryption'>,
  ref: StoredRef,
  raw: Buffer,
): { codec: CodecName; payload: Buffer; fail: Fail } {
  const fail: Fail = (reason) => {
    throw new IntegrityError(`unable to read backup object '${ref.key}': ${reason}`);
  };
  const header = decodeObjectHeader(raw, ref.key);
  if (!header) return fail('object is shorter than its header');
  const { meta } = header;
  if (meta.kind !== 'backup') fail(`it holds a ${meta.kind}, not backup data`);
  if (meta.name !== ref.key) fail(`it was written as ${quoteExcerpt(meta.name)}`);
  if (meta.sha256 !== ref.sha256) fail('checksum in the header differs from the one the backup recorded');
  if (meta.digest !== ref.digest)
    fail(
      `the header's checksum covers the ${meta.digest ?? 'original'} bytes, the backup recorded one of the ${ref.digest ?? 'original'} bytes`,
    );
  if (meta.size !== ref.size) fail(`header says ${meta.size} bytes, the backup recorded ${ref.size}`);
  let payload = raw.subarray(header.payloadOffset);
  if (payload.length !== meta.payloadBytes) {
    fail(`payload is ${payload.length} bytes, the header says ${meta.payloadBytes} (truncated or extended object)`);
  }
  if (meta.encryption) payload = decryptBuffer(payload, ctx.encryption, meta.encryption.keyId, header.headerBytes, ref.key);
  if (ref.digest === 'payload') {
    const sha256 = createHash('sha256').update(payload).digest('hex');
    if (sha256 !== ref.sha256) fail(`SHA-256 mismatch of the compressed payload: read ${sha256}, recorded ${ref.sha256}`);
  }
  if (!isCodecName(meta.codec)) return fail(`unknown codec ${quoteExcerpt(meta.codec)}`);
  return { codec: meta.codec, payload, fail };
}

function checkDecoded(ref: StoredRef, bytes: Buffer, fail: Fail): Buffer {
  if (bytes.length !== ref.size) fail(`decoded ${bytes.length} bytes, expected ${ref.size}`);
  // The payload's hash was checked before decoding; the files' own SHA-256 cover the result.
  if (ref.digest === 'payload') return bytes;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== ref.sha256) fail(`SHA-256 mismatch: decoded ${sha256}, recorded ${ref.sha256}`);
  return bytes;
}
