/**
 * The one-pass compressors wal-push feeds chunk by chunk (into a buffer it overwrites after each
 * call) must produce frames every reader decodes to the original, and encryptParts the layout of
 * encrypt().
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ChunkCompressor } from '../../../src/codec/chunked.js';
import { CODEC_NAMES, getCodec } from '../../../src/codec/codec.js';
import { decrypt, encrypt, encryptParts, encryptedSize } from '../../../src/codec/encryption.js';
import { EncryptionKey } from '../../../src/codec/encryption-key.js';

function sample(): Buffer {
  // Compressible and incompressible stretches, not a multiple of the chunk size.
  return Buffer.concat([Buffer.alloc(300_000, 'walvault '), randomBytes(200_001), Buffer.alloc(123_457, 7)]);
}

/** Feeds `input` through one reused buffer that is overwritten after each update, then ends. */
async function feed(compressor: ChunkCompressor, input: Buffer, chunkBytes: number): Promise<void> {
  const reused = Buffer.alloc(chunkBytes);
  for (let pos = 0; pos < input.length; pos += reused.length) {
    const n = input.copy(reused, 0, pos, pos + reused.length);
    await compressor.update(reused.subarray(0, n));
    reused.fill(0xee);
  }
  await compressor.end();
}

describe.each(CODEC_NAMES)('%s one-pass compressor', (name) => {
  it('decodes to the original although the caller reuses its chunk buffer', async () => {
    const input = sample();
    const codec = getCodec(name);
    const compressor = await codec.createCompressor(input.length);
    await feed(compressor, input, 64 * 1024);
    const out = Buffer.concat(compressor.parts);
    expect(out.length).toBe(compressor.length);
    expect((await codec.decompress(out, input.length, 'x')).equals(input)).toBe(true);
  });
});

describe('zstd with threads of its own', () => {
  it('gives one standard frame with its content size, decoded to the original, whatever the thread count', async () => {
    // Several 1 MiB jobs, so the threads really split the input.
    const input = Buffer.concat(Array.from({ length: 6 }, () => sample()));
    const codec = getCodec('zstd', 3);
    for (const threads of [0, 1, 2, 0, 2]) {
      const compressor = await codec.createCompressor(input.length, { threads });
      await feed(compressor, input, 1 << 20);
      const out = Buffer.concat(compressor.parts);
      // Frame header descriptor: the content-size flag (2 high bits) set, one frame to the end.
      expect(out.readUInt32LE(0)).toBe(0xfd2fb528);
      expect((out[4] as number) >> 6).toBeGreaterThan(0);
      expect((await codec.decompress(out, input.length, 'x')).equals(input)).toBe(true);
    }
  });

  it('refuses a thread count that is not a whole number >= 0', async () => {
    await expect(getCodec('zstd').createCompressor(10, { threads: -1 })).rejects.toThrow(/threads/);
    await expect(getCodec('zstd').createCompressor(10, { threads: 1.5 })).rejects.toThrow(/threads/);
  });
});

describe('encryptParts', () => {
  it('gives a layout decrypt() opens, of the size encrypt() gives, whatever the pieces', () => {
    const key = new EncryptionKey(randomBytes(32));
    const plain = randomBytes(3 * 1024 * 1024 + 5);
    const aad = Buffer.from('header');
    const pieces = [plain.subarray(0, 10), plain.subarray(10, 1_500_000), plain.subarray(1_500_000)];
    const sealed = Buffer.concat(encryptParts(pieces, key, { aad }));
    expect(sealed.length).toBe(encryptedSize(plain.length));
    expect(sealed.length).toBe(encrypt(plain, key, { aad }).length);
    expect(decrypt(sealed, key, { aad }).equals(plain)).toBe(true);
  });
});
