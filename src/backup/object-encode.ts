/**
 * The encoding of one backup object (header, compressed and possibly encrypted payload) as pieces,
 * never joined into one buffer: the one-pass compressor's output is kept as produced and encrypted
 * piece by piece, so storing an 8 MiB pack allocates only its compressed size. Pure CPU work with
 * no I/O. The packer compresses a pack while it fills (pack-encoder.ts) and seals it here with
 * sealBackupObject; small objects (catalog, manifest) go through encodeBackupObject in one call.
 */
import { createHash } from 'node:crypto';
import { getCodec, type CompressionSpec } from '../codec/codec.js';
import type { ChunkCompressor } from '../codec/chunked.js';
import { encryptParts, encryptedSize, type EncryptionKey } from '../codec/encryption.js';
import { WRITER } from '../archive/context.js';
import { encodeObjectHeader } from '../archive/object-header.js';

export interface ObjectEncoding {
  readonly compression: CompressionSpec;
  readonly encryption?: EncryptionKey | undefined;
}

export interface EncodedBackupObject {
  /** SHA-256 (hex) of the original bytes, or with `digest: 'payload'` of the compressed payload. */
  readonly sha256: string;
  /** Size of the original bytes. */
  readonly size: number;
  readonly digest?: 'payload';
  /** Header, then payload pieces, in order. */
  readonly parts: Buffer[];
  readonly length: number;
}

/** Hashes, compresses and seals `bytes` as the backup object `key`; `bytes` is not kept. */
export async function encodeBackupObject(
  enc: ObjectEncoding,
  key: string,
  bytes: Buffer,
  systemId: string | null,
): Promise<EncodedBackupObject> {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const compressor = await getCodec(enc.compression.name, enc.compression.level).createCompressor(bytes.length);
  await compressor.update(bytes);
  await compressor.end();
  return sealBackupObject(enc, key, { sha256, size: bytes.length }, compressor, systemId);
}

/**
 * The header and (encrypted) payload of the backup object `key` whose original bytes were all fed
 * to `compressor`, which has ended. With the original bytes' `sha256` the object records that; without
 * it (packs, catalog format 3) it records the SHA-256 of the compressed payload, a pass over the
 * compressed bytes only (`digest: 'payload'`).
 */
export function sealBackupObject(
  enc: ObjectEncoding,
  key: string,
  original: { readonly sha256?: string; readonly size: number },
  compressor: ChunkCompressor,
  systemId: string | null,
): EncodedBackupObject {
  const { size } = original;
  const sha256 = original.sha256 ?? payloadSha256(compressor.parts);
  const digest = original.sha256 === undefined ? ({ digest: 'payload' } as const) : {};
  const payloadBytes = enc.encryption ? encryptedSize(compressor.length) : compressor.length;
  const header = encodeObjectHeader({
    name: key,
    kind: 'backup',
    sha256,
    size,
    payloadBytes,
    codec: enc.compression.name,
    level: enc.compression.level,
    encryption: enc.encryption ? { alg: 'aes-256-gcm-chunked', keyId: enc.encryption.keyId } : null,
    systemId,
    timeline: null,
    startLsn: null,
    validBytes: null,
    createdAt: new Date().toISOString(),
    writer: WRITER,
    ...digest,
  });
  // The header is bound to every encrypted chunk (src/archive/crypto.ts), as for WAL objects.
  const payload = enc.encryption ? encryptParts(compressor.parts, enc.encryption, { aad: header }) : compressor.parts;
  return { sha256, size, ...digest, parts: [header, ...payload], length: header.length + payloadBytes };
}

/** SHA-256 (hex) of the compressed payload pieces, in order (what `digest: 'payload'` records). */
export function payloadSha256(parts: readonly Buffer[]): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return hash.digest('hex');
}
