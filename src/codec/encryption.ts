/**
 * Authenticated encryption at rest: chunked AES-256-GCM (node:crypto).
 *
 * Format "WVENC1" (all integers big-endian):
 *
 *   header, 40 bytes:
 *     offset  size  field
 *          0     8  magic: "WVENC1" followed by two zero bytes (57 56 45 4E 43 31 00 00)
 *          8     8  key id: the first 8 bytes of SHA-256("walvault-key-id" || key), where
 *                   "walvault-key-id" is those 15 ASCII bytes and key the 32 key bytes
 *         16     4  chunk size C, u32, 1 <= C <= 16 MiB (writers use 1 MiB)
 *         20    12  base nonce N, random per object
 *         32     8  reserved, zero
 *
 *   then n = floor(L / C) + 1 chunks for a plaintext of L bytes, chunk i = 0 .. n-1 being
 *     ciphertext_i || tag_i
 *   where ciphertext_i is plaintext bytes [i*C, min((i+1)*C, L)) encrypted with AES-256-GCM,
 *   tag_i is its 16-byte GCM tag, and
 *     nonce_i = N with its last 8 bytes XORed with u64(i)
 *     AAD_i   = header (40 bytes) || u64(i) || final_i (1 byte: 1 if i = n-1, else 0) || A
 *   A being optional caller-supplied additional data (empty by default), the same for every chunk.
 *   Every chunk but the last holds exactly C plaintext bytes; the last holds 0 .. C-1, so an
 *   object whose length is a multiple of C ends with an empty chunk (just a tag).
 *   Total size: 40 + L + 16 * n.
 *
 * What this detects: any change to the header (it is in every chunk's AAD), the ciphertext or a
 * tag; chunks reordered, dropped or duplicated (index in AAD and nonce); truncation at any point,
 * including exactly at a chunk boundary (a full-sized chunk is never final, so data that ends
 * with one is incomplete); bytes appended (they form a chunk that fails authentication or exceeds the
 * layout); a different key (its id differs from the header's, which we report as such), and
 * different additional data A. Decryption never releases a chunk's plaintext before its tag has
 * been verified; the streaming decryptor holds back one incomplete chunk (< C + 16 bytes) for that.
 * A stream that fails mid-way has released the verified chunks before the failure, so consumers
 * must treat the whole output as void on error (write to a temporary file, rename on success).
 *
 * Nonce uniqueness: N is fresh and random per object and chunk nonces are N XOR a counter, so two
 * objects can only share a chunk nonce if their N agree in the first 4 bytes and nearly agree in
 * the last 8. With 17 chunks per 16 MiB segment, the chance of any repeated chunk nonce among
 * 2^24 segments (256 TiB of WAL) under one key is about 2^-41; NIST SP 800-38D asks for at most
 * 2^-32. Rotate keys long before 2^32 objects.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { CryptoError, IntegrityError, WalvaultError, describeCause } from '../common/errors.js';
import { ByteQueue } from './byte-queue.js';
import { UNNAMED } from './guard.js';
import { type EncryptionKey } from './encryption-key.js';

export { EncryptionKey, encryptionKeyId, loadEncryptionKey, KEY_BYTES, type KeyFileAccess, type KeySource } from './encryption-key.js';

export const MAGIC = Buffer.from('WVENC1\0\0', 'latin1');
export const HEADER_BYTES = 40;
export const TAG_BYTES = 16;
export const NONCE_BYTES = 12;
export const DEFAULT_CHUNK_SIZE = 1 << 20;
export const MAX_CHUNK_SIZE = 16 << 20;

export interface EncryptOptions {
  /** Additional authenticated data bound to every chunk, e.g. the object's metadata header. */
  aad?: Buffer | undefined;
  /** Plaintext bytes per chunk; 1 MiB by default. */
  chunkSize?: number | undefined;
}

export interface DecryptOptions {
  /** Must equal the `aad` given at encryption. */
  aad?: Buffer | undefined;
  /** Only for error messages: `unable to decrypt object '<objectName>': ...`. */
  objectName?: string | undefined;
}

/** Size of the encrypted form of `plainLength` bytes. */
export function encryptedSize(plainLength: number, chunkSize = DEFAULT_CHUNK_SIZE): number {
  return HEADER_BYTES + plainLength + TAG_BYTES * (Math.floor(plainLength / chunkSize) + 1);
}

/** Sealing state of one object: header, nonce and AAD derivation. */
class ChunkSealer {
  readonly header: Buffer;
  private readonly aad: Buffer;
  private readonly baseNonce: Buffer;
  private index = 0;

  constructor(
    private readonly key: EncryptionKey,
    readonly chunkSize: number,
    extraAad: Buffer | undefined,
  ) {
    if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
      throw new CryptoError(`unable to encrypt with chunk size ${chunkSize}: it must be 1..${MAX_CHUNK_SIZE}`);
    }
    this.baseNonce = randomBytes(NONCE_BYTES);
    this.header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(this.header, 0);
    Buffer.from(key.keyId, 'hex').copy(this.header, 8);
    this.header.writeUInt32BE(chunkSize, 16);
    this.baseNonce.copy(this.header, 20);
    this.aad = chunkAad(this.header, extraAad);
  }

  /** Encrypts the next chunk; returns [ciphertext, tag]. */
  seal(plain: Buffer, final: boolean): [Buffer, Buffer] {
    const i = this.index++;
    setChunkAad(this.aad, i, final);
    const cipher = createCipheriv('aes-256-gcm', this.key.key, chunkNonce(this.baseNonce, i), { authTagLength: TAG_BYTES });
    cipher.setAAD(this.aad);
    const ct = cipher.update(plain);
    const rest = cipher.final();
    return [rest.length === 0 ? ct : Buffer.concat([ct, rest]), cipher.getAuthTag()];
  }
}

/** Opening state of one object: validates the header, then authenticates chunk by chunk. */
class ChunkOpener {
  readonly chunkSize: number;
  private readonly aad: Buffer;
  private readonly baseNonce: Buffer;
  private index = 0;

  constructor(
    private readonly key: EncryptionKey,
    header: Buffer,
    extraAad: Buffer | undefined,
    private readonly objectName: string | undefined,
  ) {
    if (!header.subarray(0, 8).equals(MAGIC)) throw this.integrity('not a walvault encrypted object (bad magic)');
    const keyId = header.subarray(8, 16).toString('hex');
    if (keyId !== key.keyId) {
      throw new CryptoError(
        `unable to decrypt object '${objectName ?? UNNAMED}': it was encrypted with key id ${keyId}, ` +
          `but the configured key has id ${key.keyId}`,
      );
    }
    this.chunkSize = header.readUInt32BE(16);
    if (this.chunkSize < 1 || this.chunkSize > MAX_CHUNK_SIZE) {
      throw this.integrity(`invalid chunk size ${this.chunkSize} in header`);
    }
    if (header.subarray(32, HEADER_BYTES).some((b) => b !== 0)) {
      throw this.integrity('reserved header bytes are set (corrupt, or written by a newer version)');
    }
    this.baseNonce = Buffer.from(header.subarray(20, 32));
    this.aad = chunkAad(Buffer.from(header.subarray(0, HEADER_BYTES)), extraAad);
  }

  /** Authenticates and decrypts the next chunk (ciphertext followed by its tag). */
  open(sealed: Buffer, final: boolean): Buffer {
    const i = this.index++;
    const ctLength = sealed.length - TAG_BYTES;
    setChunkAad(this.aad, i, final);
    const decipher = createDecipheriv('aes-256-gcm', this.key.key, chunkNonce(this.baseNonce, i), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(this.aad);
    decipher.setAuthTag(sealed.subarray(ctLength));
    const plain = decipher.update(sealed.subarray(0, ctLength));
    try {
      const rest = decipher.final();
      return rest.length === 0 ? plain : Buffer.concat([plain, rest]);
    } catch (err) {
      throw this.integrity(
        `authentication failed for chunk ${i} (the data was modified or truncated, or the additional data differs)`,
        err,
      );
    }
  }

  integrity(reason: string, cause?: unknown): IntegrityError {
    return new IntegrityError(`unable to decrypt object '${this.objectName ?? UNNAMED}': ${reason}`, cause === undefined ? {} : { cause });
  }
}

function chunkAad(header: Buffer, extra: Buffer | undefined): Buffer {
  const extraLength = extra?.length ?? 0;
  const aad = Buffer.alloc(HEADER_BYTES + 9 + extraLength);
  header.copy(aad, 0, 0, HEADER_BYTES);
  extra?.copy(aad, HEADER_BYTES + 9);
  return aad;
}

function setChunkAad(aad: Buffer, index: number, final: boolean): void {
  aad.writeBigUInt64BE(BigInt(index), HEADER_BYTES);
  aad[HEADER_BYTES + 8] = final ? 1 : 0;
}

function chunkNonce(base: Buffer, index: number): Buffer {
  const nonce = Buffer.from(base);
  nonce.writeBigUInt64BE(base.readBigUInt64BE(4) ^ BigInt(index), 4);
  return nonce;
}

function truncated(objectName: string | undefined, detail: string): IntegrityError {
  return new IntegrityError(`unable to decrypt object '${objectName ?? UNNAMED}': encrypted data is truncated (${detail})`);
}

export function encrypt(plain: Buffer, key: EncryptionKey, opts: EncryptOptions = {}): Buffer {
  return Buffer.concat(encryptParts([plain], key, opts), encryptedSize(plain.length, opts.chunkSize ?? DEFAULT_CHUNK_SIZE));
}

/**
 * encrypt() over a plaintext given in pieces (a compressor's output as produced): the same layout,
 * returned as pieces (header, then each chunk's ciphertext and tag), so nothing is joined into one
 * buffer the size of the object.
 */
export function encryptParts(plain: readonly Buffer[], key: EncryptionKey, opts: EncryptOptions = {}): Buffer[] {
  const sealer = new ChunkSealer(key, opts.chunkSize ?? DEFAULT_CHUNK_SIZE, opts.aad);
  const c = sealer.chunkSize;
  const out: Buffer[] = [sealer.header];
  const pending = new ByteQueue();
  for (const piece of plain) {
    pending.push(piece);
    // Only a full chunk is sealed as non-final: whatever is left at the end (< C) is the final one.
    while (pending.length >= c) out.push(...sealer.seal(pending.take(c), false));
  }
  out.push(...sealer.seal(pending.take(pending.length), true));
  return out;
}

export function decrypt(sealed: Buffer, key: EncryptionKey, opts: DecryptOptions = {}): Buffer {
  if (sealed.length < HEADER_BYTES) truncatedThrow(opts.objectName, `${sealed.length} bytes, shorter than the header`);
  const opener = new ChunkOpener(key, sealed.subarray(0, HEADER_BYTES), opts.aad, opts.objectName);
  const sealedChunk = opener.chunkSize + TAG_BYTES;
  const body = sealed.length - HEADER_BYTES;
  // Everything but the final chunk is full-sized, and the final chunk is shorter than a full one.
  const fullChunks = Math.floor(body / sealedChunk);
  const finalLength = body - fullChunks * sealedChunk;
  if (finalLength < TAG_BYTES) {
    truncatedThrow(opts.objectName, finalLength === 0 ? 'the final chunk is missing' : 'the final chunk is cut short');
  }
  const parts: Buffer[] = [];
  let pos = HEADER_BYTES;
  for (let i = 0; i < fullChunks; i++, pos += sealedChunk) parts.push(opener.open(sealed.subarray(pos, pos + sealedChunk), false));
  parts.push(opener.open(sealed.subarray(pos), true));
  return Buffer.concat(parts);
}

function truncatedThrow(objectName: string | undefined, detail: string): never {
  throw truncated(objectName, detail);
}

class EncryptStream extends Transform {
  private readonly sealer: ChunkSealer;
  private readonly pending = new ByteQueue();
  private headerSent = false;

  constructor(key: EncryptionKey, opts: EncryptOptions) {
    super();
    this.sealer = new ChunkSealer(key, opts.chunkSize ?? DEFAULT_CHUNK_SIZE, opts.aad);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.run(false, done);
  }

  override _flush(done: TransformCallback): void {
    this.run(true, done);
  }

  private run(final: boolean, done: TransformCallback): void {
    try {
      if (!this.headerSent) {
        this.push(this.sealer.header);
        this.headerSent = true;
      }
      const c = this.sealer.chunkSize;
      // Only seal a full chunk as non-final: whatever is left at the end (< C) is the final one.
      while (this.pending.length >= c) this.pushAll(this.sealer.seal(this.pending.take(c), false));
      if (final) this.pushAll(this.sealer.seal(this.pending.take(this.pending.length), true));
    } catch (err) {
      done(err instanceof WalvaultError ? err : new CryptoError(`unable to encrypt data: ${describeCause(err)}`, { cause: err }));
      return;
    }
    done();
  }

  private pushAll(parts: Buffer[]): void {
    for (const part of parts) this.push(part);
  }
}

class DecryptStream extends Transform {
  private readonly pending = new ByteQueue();
  private opener: ChunkOpener | undefined;

  constructor(
    private readonly key: EncryptionKey,
    private readonly opts: DecryptOptions,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.run(false, done);
  }

  override _flush(done: TransformCallback): void {
    this.run(true, done);
  }

  private run(final: boolean, done: TransformCallback): void {
    try {
      if (this.opener === undefined) {
        if (this.pending.length < HEADER_BYTES) {
          if (final) truncatedThrow(this.opts.objectName, `${this.pending.length} bytes, shorter than the header`);
          done();
          return;
        }
        this.opener = new ChunkOpener(this.key, this.pending.take(HEADER_BYTES), this.opts.aad, this.opts.objectName);
      }
      const sealedChunk = this.opener.chunkSize + TAG_BYTES;
      // A full-sized sealed chunk can never be the final one, so it can be opened right away.
      while (this.pending.length >= sealedChunk) this.push(this.opener.open(this.pending.take(sealedChunk), false));
      if (final) {
        const left = this.pending.length;
        if (left < TAG_BYTES) {
          truncatedThrow(this.opts.objectName, left === 0 ? 'the final chunk is missing' : 'the final chunk is cut short');
        }
        this.push(this.opener.open(this.pending.take(left), true));
      }
    } catch (err) {
      done(
        err instanceof WalvaultError
          ? err
          : new IntegrityError(`unable to decrypt object '${this.opts.objectName ?? UNNAMED}': ${describeCause(err)}`, {
              cause: err,
            }),
      );
      return;
    }
    done();
  }
}

/** Streaming encrypt(): the same chunk layout as encrypt(), whatever the input chunking. */
export function createEncryptStream(key: EncryptionKey, opts: EncryptOptions = {}): Transform {
  return new EncryptStream(key, opts);
}

/** Streaming decrypt(): releases each chunk only after its tag verified; buffers one chunk at most. */
export function createDecryptStream(key: EncryptionKey, opts: DecryptOptions = {}): Transform {
  return new DecryptStream(key, opts);
}
