import { describe, expect, it } from 'vitest';
import { Xxh32, xxh32 } from '../../../src/codec/xxhash32.js';

// Expected values computed with xxhsum 0.8.1 (`printf ... | xxhsum -H0`), seed 0.
const VECTORS: Array<[string, Buffer, number]> = [
  ['empty', Buffer.alloc(0), 0x02cc5d05],
  ['abc', Buffer.from('abc'), 0x32d153ff],
  ['39-byte sentence', Buffer.from('Nobody inspects the spammish repetition'), 0xe2293b2f],
  ['1000 zero bytes', Buffer.alloc(1000), 0x7f288cd0],
];

describe('xxh32', () => {
  it.each(VECTORS)('%s', (_name, input, expected) => {
    expect(xxh32(input)).toBe(expected);
  });

  it.each(VECTORS)('%s, fed in uneven pieces, gives the same digest', (_name, input, expected) => {
    for (const step of [1, 3, 15, 16, 17]) {
      const h = new Xxh32();
      for (let i = 0; i < input.length; i += step) h.update(input.subarray(i, i + step));
      expect(h.digest()).toBe(expected);
    }
  });

  it('accepts a plain Uint8Array', () => {
    expect(xxh32(new Uint8Array([0x61, 0x62, 0x63]))).toBe(0x32d153ff);
  });
});
