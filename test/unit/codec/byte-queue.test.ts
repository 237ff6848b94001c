import { describe, expect, it } from 'vitest';
import { ByteQueue } from '../../../src/codec/byte-queue.js';

describe('ByteQueue', () => {
  it('takes exact ranges across chunk boundaries, in order', () => {
    const q = new ByteQueue();
    q.push(Buffer.from('abc'));
    q.push(Buffer.alloc(0));
    q.push(Buffer.from('defgh'));
    q.push(Buffer.from('i'));
    expect(q.length).toBe(9);
    expect(q.peek(4).toString()).toBe('abcd');
    expect(q.take(2).toString()).toBe('ab');
    expect(q.take(4).toString()).toBe('cdef');
    expect(q.skip(1)).toBe(1);
    expect(q.take(2).toString()).toBe('hi');
    expect(q.length).toBe(0);
    expect(q.take(0).length).toBe(0);
  });

  it('refuses to take or peek more than it holds', () => {
    const q = new ByteQueue();
    q.push(Buffer.from('ab'));
    expect(() => q.take(3)).toThrow(RangeError);
    expect(() => q.peek(3)).toThrow(RangeError);
    expect(q.skip(5)).toBe(2);
  });

  it('stays correct over many small chunks (compaction)', () => {
    const q = new ByteQueue();
    const all: number[] = [];
    for (let i = 0; i < 1000; i++) {
      q.push(Buffer.from([i & 0xff, (i * 7) & 0xff]));
      all.push(i & 0xff, (i * 7) & 0xff);
      if (i % 3 === 2) {
        const got = q.take(5);
        expect([...got]).toEqual(all.splice(0, 5));
      }
    }
    expect([...q.take(q.length)]).toEqual(all);
  });
});
