import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createHashTap, sha256Hex } from '../../../src/codec/checksum.js';
import { WalvaultError } from '../../../src/common/errors.js';
import { split } from './support/streams.js';

// FIPS 180-2 appendix B examples and the empty-string digest.
const VECTORS: Array<[string, Buffer, string]> = [
  ['empty', Buffer.alloc(0), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['abc', Buffer.from('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  [
    '448-bit message',
    Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  ],
  ['one million a', Buffer.alloc(1_000_000, 'a'), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0'],
];

describe('sha256Hex', () => {
  it.each(VECTORS)('%s', (_name, input, digest) => {
    expect(sha256Hex(input)).toBe(digest);
  });
});

describe('createHashTap', () => {
  it.each(VECTORS)('passes %s through unchanged and reports its digest and size after the end', async (_name, input, digest) => {
    const tap = createHashTap();
    const seen: Buffer[] = [];
    await pipeline(
      Readable.from(split(input, [1, 1000, 65_536, 7])),
      tap,
      new Writable({
        write(chunk: Buffer, _enc, done) {
          seen.push(chunk);
          done();
        },
      }),
    );
    expect(Buffer.concat(seen).equals(input)).toBe(true);
    expect(tap.digest()).toEqual({ sha256: digest, bytes: input.length });
    expect(tap.bytes).toBe(input.length);
  });

  it('refuses to give a digest before the stream ended', async () => {
    const tap = createHashTap();
    tap.write(Buffer.from('abc'));
    expect(tap.bytes).toBe(3);
    expect(() => tap.digest()).toThrow(WalvaultError);
    tap.destroy();
  });
});
