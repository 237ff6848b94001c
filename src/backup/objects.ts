/**
 * Backup objects (packs, catalog, manifest) are walvault objects of kind 'backup': the same header,
 * codecs, SHA-256 and authenticated encryption as WAL (src/archive/object-header.ts). Every store is
 * verified (visible, with exactly the bytes sent); every load checks size, codec and SHA-256 against
 * what the backup's records say, so a damaged or swapped object is an IntegrityError naming its key.
 */
import { createHash } from 'node:crypto';
import { IntegrityError, StorageError } from '../common/errors.js';
import { quoteExcerpt } from '../common/quote.js';
import { getCodec, isCodecName } from '../codec/codec.js';
import type { ArchiveContext } from '../archive/context.js';
import { WRITER } from '../archive/context.js';
import { decryptBuffer } from '../archive/crypto.js';
import { decodeObjectHeader } from '../archive/object-header.js';
import { encodeObject } from '../archive/push.js';
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
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const encoded = await encodeObject(
    ctx,
    {
      name: key,
      kind: 'backup',
      sha256,
      size: bytes.length,
      codec: ctx.compression.name,
      level: ctx.compression.level,
      encryption: ctx.encryption ? { alg: 'aes-256-gcm-chunked', keyId: ctx.encryption.keyId } : null,
      systemId,
      timeline: null,
      startLsn: null,
      validBytes: null,
      createdAt: new Date().toISOString(),
      writer: WRITER,
    },
    bytes,
  );
  await ctx.storage.put(key, encoded, { contentLength: encoded.length, ...(ctx.signal ? { signal: ctx.signal } : {}) });
  const info = await ctx.storage.head(key);
  if (!info) throw new StorageError(`unable to verify backup object '${key}': not visible after upload`, { retryable: true });
  if (info.size !== encoded.length) {
    throw new StorageError(`unable to verify backup object '${key}': stored ${info.size} bytes, sent ${encoded.length}`, {
      retryable: true,
    });
  }
  return { ref: { key, sha256, size: bytes.length }, storedBytes: encoded.length };
}

/** Downloads, decrypts, decompresses and verifies the object `ref` names; its original bytes. */
export async function loadBackupObject(ctx: ArchiveContext, ref: StoredRef): Promise<Buffer> {
  const raw = await ctx.storage.getBuffer(ref.key, ctx.signal ? { signal: ctx.signal } : {});
  return decodeBackupObject(ctx, ref, raw);
}

/** The checks of loadBackupObject on bytes already read (verification tools read them once). */
export async function decodeBackupObject(ctx: Pick<ArchiveContext, 'encryption'>, ref: StoredRef, raw: Buffer): Promise<Buffer> {
  const fail = (reason: string): never => {
    throw new IntegrityError(`unable to read backup object '${ref.key}': ${reason}`);
  };
  const header = decodeObjectHeader(raw, ref.key);
  if (!header) return fail('object is shorter than its header');
  const { meta } = header;
  if (meta.kind !== 'backup') fail(`it holds a ${meta.kind}, not backup data`);
  if (meta.name !== ref.key) fail(`it was written as ${quoteExcerpt(meta.name)}`);
  if (meta.sha256 !== ref.sha256) fail('checksum in the header differs from the one the backup recorded');
  if (meta.size !== ref.size) fail(`header says ${meta.size} bytes, the backup recorded ${ref.size}`);
  let payload = raw.subarray(header.payloadOffset);
  if (payload.length !== meta.payloadBytes) {
    fail(`payload is ${payload.length} bytes, the header says ${meta.payloadBytes} (truncated or extended object)`);
  }
  if (meta.encryption) payload = decryptBuffer(payload, ctx.encryption, meta.encryption.keyId, header.headerBytes, ref.key);
  if (!isCodecName(meta.codec)) return fail(`unknown codec ${quoteExcerpt(meta.codec)}`);
  const bytes = await getCodec(meta.codec).decompress(payload, meta.size, ref.key);
  if (bytes.length !== meta.size) fail(`decoded ${bytes.length} bytes, expected ${meta.size}`);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== ref.sha256) fail(`SHA-256 mismatch: decoded ${sha256}, recorded ${ref.sha256}`);
  return bytes;
}
