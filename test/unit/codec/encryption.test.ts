import { createCipheriv, createDecipheriv } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CHUNK_SIZE,
  EncryptionKey,
  createDecryptStream,
  createEncryptStream,
  decrypt,
  encrypt,
  encryptedSize,
} from '../../../src/codec/encryption.js';
import { CryptoError, ExitCode, IntegrityError } from '../../../src/common/errors.js';
import { runStream, streamThrough } from './support/streams.js';
import { randomBuffer, walLike } from './support/wal-like.js';

const KEY_BYTES = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const KEY = new EncryptionKey(KEY_BYTES);
const OTHER = new EncryptionKey(Buffer.alloc(32, 0xff));

/*
 * An independent implementation of the format exactly as documented at the top of
 * src/codec/encryption.ts, using node:crypto directly. If the code and the documentation drift
 * apart, these tests fail.
 */
function u64(i: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(i));
  return b;
}

function specNonce(base: Buffer, i: number): Buffer {
  const nonce = Buffer.from(base);
  const idx = u64(i);
  for (let j = 0; j < 8; j++) nonce[4 + j] = (nonce[4 + j] as number) ^ (idx[j] as number);
  return nonce;
}

function specEncrypt(plain: Buffer, key: Buffer, keyIdHex: string, nonce: Buffer, chunkSize: number, aad = Buffer.alloc(0)): Buffer {
  const header = Buffer.concat([
    Buffer.from('WVENC1\0\0', 'latin1'),
    Buffer.from(keyIdHex, 'hex'),
    Buffer.from([chunkSize >>> 24, (chunkSize >>> 16) & 0xff, (chunkSize >>> 8) & 0xff, chunkSize & 0xff]),
    nonce,
    Buffer.alloc(8),
  ]);
  const n = Math.floor(plain.length / chunkSize) + 1;
  const out = [header];
  for (let i = 0; i < n; i++) {
    const cipher = createCipheriv('aes-256-gcm', key, specNonce(nonce, i));
    cipher.setAAD(Buffer.concat([header, u64(i), Buffer.from([i === n - 1 ? 1 : 0]), aad]));
    out.push(cipher.update(plain.subarray(i * chunkSize, (i + 1) * chunkSize)), cipher.final(), cipher.getAuthTag());
  }
  return Buffer.concat(out);
}

function specDecrypt(sealed: Buffer, key: Buffer, aad = Buffer.alloc(0)): Buffer {
  const header = sealed.subarray(0, 40);
  expect(header.subarray(0, 8).toString('latin1')).toBe('WVENC1\0\0');
  expect(header.subarray(32, 40).equals(Buffer.alloc(8))).toBe(true);
  const chunkSize = header.readUInt32BE(16);
  const nonce = header.subarray(20, 32);
  const body = sealed.subarray(40);
  const n = Math.floor(body.length / (chunkSize + 16)) + 1;
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const sealedChunk = body.subarray(i * (chunkSize + 16), Math.min(body.length, (i + 1) * (chunkSize + 16)));
    const decipher = createDecipheriv('aes-256-gcm', key, specNonce(nonce, i));
    decipher.setAAD(Buffer.concat([header, u64(i), Buffer.from([i === n - 1 ? 1 : 0]), aad]));
    decipher.setAuthTag(sealedChunk.subarray(sealedChunk.length - 16));
    out.push(decipher.update(sealedChunk.subarray(0, sealedChunk.length - 16)), decipher.final());
  }
  return Buffer.concat(out);
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

function expectIntegrity(err: unknown): void {
  expect(err).toBeInstanceOf(IntegrityError);
  expect((err as IntegrityError).exitCode).toBe(ExitCode.integrity);
}

describe('AES-256-GCM primitive (NIST GCM spec, test case 16)', () => {
  it('node:crypto reproduces the published ciphertext and tag', () => {
    const key = Buffer.from('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308', 'hex');
    const iv = Buffer.from('cafebabefacedbaddecaf888', 'hex');
    const plain = Buffer.from(
      'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
      'hex',
    );
    const aad = Buffer.from('feedfacedeadbeeffeedfacedeadbeefabaddad2', 'hex');
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(aad);
    const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
    expect(ct.toString('hex')).toBe(
      '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662',
    );
    expect(cipher.getAuthTag().toString('hex')).toBe('76fc6ece0f4e1768cddf8853bb2d551b');
  });
});

describe('format', () => {
  it('key id is the first 8 bytes of SHA-256("walvault-key-id" || key) (vector from sha256sum)', () => {
    expect(KEY.keyId).toBe('b74f463c52df5a5b');
    expect(OTHER.keyId).toBe('41155e12ec0b836c');
  });

  it('writes the documented header', () => {
    const sealed = encrypt(Buffer.from('x'), KEY, { chunkSize: 4096 });
    expect(sealed.subarray(0, 8).toString('hex')).toBe('5756454e43310000');
    expect(sealed.subarray(8, 16).toString('hex')).toBe('b74f463c52df5a5b');
    expect(sealed.readUInt32BE(16)).toBe(4096);
    expect(sealed.subarray(32, 40).equals(Buffer.alloc(8))).toBe(true);
    expect(encrypt(Buffer.alloc(0), KEY).readUInt32BE(16)).toBe(DEFAULT_CHUNK_SIZE);
  });

  it('uses a fresh random base nonce per object', () => {
    const a = encrypt(Buffer.from('same'), KEY);
    const b = encrypt(Buffer.from('same'), KEY);
    expect(a.subarray(20, 32).equals(b.subarray(20, 32))).toBe(false);
    expect(a.equals(b)).toBe(false);
  });

  const C = 64;
  const sizes = [0, 1, C - 1, C, C + 1, 2 * C, 3 * C + 5];
  it.each(sizes)('a from-spec decoder opens encrypt() and stream output of %i bytes (chunk size 64)', async (size) => {
    const plain = randomBuffer(size, size + 1);
    const aad = Buffer.from('metadata header');
    const sealed = encrypt(plain, KEY, { chunkSize: C, aad });
    expect(sealed.length).toBe(encryptedSize(size, C));
    expect(sealed.length).toBe(40 + size + 16 * (Math.floor(size / C) + 1));
    expect(specDecrypt(sealed, KEY_BYTES, aad).equals(plain)).toBe(true);
    const streamed = await streamThrough(createEncryptStream(KEY, { chunkSize: C, aad }), plain, [1, 13, 64, 100]);
    expect(streamed.length).toBe(sealed.length);
    expect(specDecrypt(streamed, KEY_BYTES, aad).equals(plain)).toBe(true);
  });

  it.each(sizes)('decrypt() and the stream open from-spec output of %i bytes (chunk size 64)', async (size) => {
    const plain = randomBuffer(size, size + 2);
    const made = specEncrypt(plain, KEY_BYTES, KEY.keyId, Buffer.from('00112233445566778899aabb', 'hex'), C);
    expect(decrypt(made, KEY).equals(plain)).toBe(true);
    expect((await streamThrough(createDecryptStream(KEY), made, [1, 79, 80, 81])).equals(plain)).toBe(true);
  });
});

describe('round trips', () => {
  const segment = walLike({ size: 16 * 1024 * 1024, seed: 3 });

  it('16 MiB segment through buffer and stream APIs, in every combination (default 1 MiB chunks)', async () => {
    const a = encrypt(segment, KEY);
    const b = await streamThrough(createEncryptStream(KEY), segment, [65_536, 1 << 20, 999_999]);
    expect(a.length).toBe(encryptedSize(segment.length));
    expect(b.length).toBe(a.length);
    for (const sealed of [a, b]) {
      expect(decrypt(sealed, KEY).equals(segment)).toBe(true);
      expect((await streamThrough(createDecryptStream(KEY), sealed, [1 << 20, 12_345])).equals(segment)).toBe(true);
    }
  });

  it.each([0, 1, DEFAULT_CHUNK_SIZE - 1, DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE + 1])(
    'chunk boundary: %i bytes with the default chunk size',
    async (size) => {
      const plain = segment.subarray(0, size);
      const sealed = encrypt(plain, KEY);
      expect(decrypt(sealed, KEY).equals(plain)).toBe(true);
      const streamed = await streamThrough(createEncryptStream(KEY), plain, 300_000);
      expect((await streamThrough(createDecryptStream(KEY), streamed, 70_000)).equals(plain)).toBe(true);
    },
  );

  it('rejects chunk sizes outside 1..16 MiB when encrypting', () => {
    expect(() => encrypt(Buffer.alloc(1), KEY, { chunkSize: 0 })).toThrow(CryptoError);
    expect(() => createEncryptStream(KEY, { chunkSize: (16 << 20) + 1 })).toThrow(CryptoError);
  });
});

describe('tampering', () => {
  const C = 64;
  const plain = randomBuffer(150, 9); // chunks of 64, 64 and 22 bytes
  const aad = Buffer.from('object metadata');
  const sealed = encrypt(plain, KEY, { chunkSize: C, aad });
  const chunk = (i: number): Buffer => sealed.subarray(40 + i * (C + 16), Math.min(sealed.length, 40 + (i + 1) * (C + 16)));
  const header = sealed.subarray(0, 40);

  async function expectRejectedBoth(bad: Buffer, check: (err: unknown) => void = expectIntegrity, key: EncryptionKey = KEY): Promise<void> {
    check(thrown(() => decrypt(bad, key, { aad, objectName: 'seg' })));
    const { error } = await runStream(createDecryptStream(key, { aad, objectName: 'seg' }), bad, 7);
    check(error);
  }

  it('every single flipped byte is rejected: IntegrityError, or CryptoError in the key id field', async () => {
    for (let pos = 0; pos < sealed.length; pos++) {
      for (const mask of [0x01, 0x80]) {
        const bad = Buffer.from(sealed);
        bad[pos] = (bad[pos] as number) ^ mask;
        await expectRejectedBoth(bad, (err) => {
          if (pos >= 8 && pos < 16) expect(err).toBeInstanceOf(CryptoError);
          else expectIntegrity(err);
          expect((err as Error).message.startsWith("unable to decrypt object 'seg': ")).toBe(true);
        });
      }
    }
  });

  it('truncation at every length is rejected', async () => {
    for (let len = 0; len < sealed.length; len++) await expectRejectedBoth(sealed.subarray(0, len));
  });

  it('dropping the final chunk (a cut exactly at a chunk boundary) is rejected', async () => {
    const bad = Buffer.concat([header, chunk(0), chunk(1)]);
    await expectRejectedBoth(bad);
    expect(() => decrypt(bad, KEY, { aad })).toThrow('the final chunk is missing');
  });

  it('appended bytes are rejected (1 byte, a tag, a whole copied chunk)', async () => {
    await expectRejectedBoth(Buffer.concat([sealed, Buffer.from([0])]));
    await expectRejectedBoth(Buffer.concat([sealed, Buffer.alloc(16)]));
    await expectRejectedBoth(Buffer.concat([sealed, chunk(0)]));
  });

  it('reordered, dropped or duplicated chunks are rejected', async () => {
    await expectRejectedBoth(Buffer.concat([header, chunk(1), chunk(0), chunk(2)]));
    await expectRejectedBoth(Buffer.concat([header, chunk(0), chunk(2)]));
    await expectRejectedBoth(Buffer.concat([header, chunk(0), chunk(0), chunk(1), chunk(2)]));
  });

  it('a chunk spliced in from another object under the same key is rejected', async () => {
    const other = encrypt(randomBuffer(150, 10), KEY, { chunkSize: C, aad });
    await expectRejectedBoth(Buffer.concat([header, other.subarray(40, 40 + C + 16), chunk(1), chunk(2)]));
    // The other object's header with this object's chunks, too.
    await expectRejectedBoth(Buffer.concat([other.subarray(0, 40), sealed.subarray(40)]));
  });

  it('different or missing additional data is rejected', async () => {
    expectIntegrity(thrown(() => decrypt(sealed, KEY, { aad: Buffer.from('object metadatA') })));
    expectIntegrity(thrown(() => decrypt(sealed, KEY)));
    const noAad = encrypt(plain, KEY, { chunkSize: C });
    expectIntegrity(thrown(() => decrypt(noAad, KEY, { aad })));
  });

  it('a wrong key is reported from the header as a CryptoError naming both key ids', async () => {
    await expectRejectedBoth(
      sealed,
      (err) => {
        expect(err).toBeInstanceOf(CryptoError);
        expect((err as CryptoError).exitCode).toBe(ExitCode.integrity);
      },
      OTHER,
    );
    expect(() => decrypt(sealed, OTHER, { aad, objectName: 'seg' })).toThrow(
      "unable to decrypt object 'seg': it was encrypted with key id b74f463c52df5a5b, but the configured key has id 41155e12ec0b836c",
    );
  });

  it('a wrong key with the key id forged to match is still rejected (authentication)', () => {
    const forged = Buffer.from(sealed);
    Buffer.from(OTHER.keyId, 'hex').copy(forged, 8);
    expectIntegrity(thrown(() => decrypt(forged, OTHER, { aad })));
  });

  it('a forged chunk size or reserved byte is rejected', () => {
    const big = Buffer.from(sealed);
    big.writeUInt32BE(0xffffffff, 16);
    expect(() => decrypt(big, KEY, { aad })).toThrow('invalid chunk size');
    const reserved = Buffer.from(sealed);
    reserved[39] = 1;
    expect(() => decrypt(reserved, KEY, { aad })).toThrow('reserved header bytes are set');
    expectIntegrity(thrown(() => decrypt(Buffer.concat([Buffer.from('WVENC2\0\0'), sealed.subarray(8)]), KEY, { aad })));
  });
});

describe('streaming decryption releases only authenticated plaintext', () => {
  const C = 1000;
  const plain = randomBuffer(4 * C + 10, 77);
  const sealed = encrypt(plain, KEY, { chunkSize: C });

  it.each([1, 333, C + 16, 1 << 16])('with chunk 2 tampered, emits exactly chunks 0 and 1 (input split by %i)', async (split) => {
    const bad = Buffer.from(sealed);
    const inChunk2 = 40 + 2 * (C + 16) + 500;
    bad[inChunk2] = (bad[inChunk2] as number) ^ 0x04;
    const { output, error } = await runStream(createDecryptStream(KEY), bad, split);
    expectIntegrity(error);
    expect((error as Error).message).toContain('authentication failed for chunk 2');
    expect(output.equals(plain.subarray(0, 2 * C))).toBe(true);
  });

  it('with the final chunk cut, emits the full chunks before it and then fails', async () => {
    const { output, error } = await runStream(createDecryptStream(KEY), sealed.subarray(0, sealed.length - 1), 4096);
    expectIntegrity(error);
    expect(output.equals(plain.subarray(0, 4 * C))).toBe(true);
  });

  it('emits a chunk as soon as it is complete, without waiting for the end', async () => {
    const stream = createDecryptStream(KEY);
    const first = new Promise<Buffer>((resolve) => stream.once('data', resolve));
    stream.write(sealed.subarray(0, 40 + C + 16));
    expect((await first).equals(plain.subarray(0, C))).toBe(true);
    stream.destroy();
  });

  it('holds back a chunk until its tag has arrived', async () => {
    const stream = createDecryptStream(KEY);
    const got: Buffer[] = [];
    stream.pipe(
      new Writable({
        write(c: Buffer, _e, done) {
          got.push(c);
          done();
        },
      }),
    );
    stream.write(sealed.subarray(0, 40 + C + 15));
    await new Promise((r) => setImmediate(r));
    expect(got.length).toBe(0);
    stream.destroy();
  });
});
