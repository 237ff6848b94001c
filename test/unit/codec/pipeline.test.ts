import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { CODEC_NAMES, getCodec, type Codec } from '../../../src/codec/codec.js';
import { createHashTap, sha256Hex } from '../../../src/codec/checksum.js';
import { EncryptionKey, createDecryptStream, createEncryptStream, decrypt, encrypt } from '../../../src/codec/encryption.js';
import { IntegrityError } from '../../../src/common/errors.js';
import { split } from './support/streams.js';
import { realWal, syntheticWal } from './support/wal-like.js';

/*
 * The archive's shape, end to end: raw segment -> SHA-256 tap -> compress -> [encrypt] -> stored
 * bytes, and back. Stored bytes from the buffer API and from the stream API must be
 * interchangeable, so push may use one and fetch the other.
 */

const KEY = new EncryptionKey(Buffer.alloc(32, 0x5a));
// One synthetic 16 MiB segment and one real segment per PostgreSQL major.
const samples = [syntheticWal()[0]!, ...realWal({ kinds: ['segment'], perMajor: 1 })];
const aad = Buffer.from('{"segment":"000000010000000000000003"}');

async function run(input: Buffer, stages: Transform[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(split(input, [1 << 20, 333_333])),
    ...(stages as [Transform, ...Transform[]]),
    new Writable({
      write(chunk: Buffer, _e, done) {
        out.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(out);
}

async function storeViaStreams(codec: Codec, data: Buffer, encrypted: boolean): Promise<{ stored: Buffer; sha256: string; bytes: number }> {
  const tap = createHashTap();
  const stages: Transform[] = [tap, codec.createCompressStream()];
  if (encrypted) stages.push(createEncryptStream(KEY, { aad }));
  const stored = await run(data, stages);
  return { stored, ...tap.digest() };
}

async function storeViaBuffers(codec: Codec, data: Buffer, encrypted: boolean): Promise<Buffer> {
  const packed = await codec.compress(data);
  return encrypted ? encrypt(packed, KEY, { aad }) : packed;
}

async function loadViaStreams(codec: Codec, stored: Buffer, encrypted: boolean, size: number): Promise<Buffer> {
  const stages: Transform[] = [];
  if (encrypted) stages.push(createDecryptStream(KEY, { aad, objectName: 'seg' }));
  stages.push(codec.createDecompressStream(size, 'seg'));
  return run(stored, stages);
}

async function loadViaBuffers(codec: Codec, stored: Buffer, encrypted: boolean, size: number): Promise<Buffer> {
  const packed = encrypted ? decrypt(stored, KEY, { aad, objectName: 'seg' }) : stored;
  return codec.decompress(packed, size, 'seg');
}

describe.each(CODEC_NAMES)('%s', (name) => {
  const codec = getCodec(name);
  describe.each([false, true])('encrypted: %s', (encrypted) => {
    it.each(samples.map((s) => [s.name, s.data] as const))(
      '%s: stream-stored bytes load via buffers, buffer-stored via streams',
      async (_n, data) => {
        const digest = sha256Hex(data);
        const viaStream = await storeViaStreams(codec, data, encrypted);
        expect(viaStream.sha256).toBe(digest);
        expect(viaStream.bytes).toBe(data.length);
        expect(sha256Hex(await loadViaBuffers(codec, viaStream.stored, encrypted, data.length))).toBe(digest);
        const viaBuffer = await storeViaBuffers(codec, data, encrypted);
        expect(sha256Hex(await loadViaStreams(codec, viaBuffer, encrypted, data.length))).toBe(digest);
      },
    );
  });
});

describe('encrypted and compressed', () => {
  it.each(CODEC_NAMES)('%s: one flipped stored byte fails the load with IntegrityError before any decompression', async (name) => {
    const codec = getCodec(name);
    const data = samples[0]!.data.subarray(0, 3 << 20);
    const stored = await storeViaBuffers(codec, data, true);
    const bad = Buffer.from(stored);
    bad[Math.floor(bad.length / 2)] = (bad[Math.floor(bad.length / 2)] as number) ^ 0x20;
    await expect(loadViaBuffers(codec, bad, true, data.length)).rejects.toBeInstanceOf(IntegrityError);
    await expect(loadViaStreams(codec, bad, true, data.length)).rejects.toBeInstanceOf(IntegrityError);
  });
});
