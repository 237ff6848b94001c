import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { guardedStream, partsOf } from '../../../src/storage/body.js';

async function sizes(parts: AsyncIterable<Buffer>): Promise<number[]> {
  const out: number[] = [];
  for await (const p of parts) out.push(p.length);
  return out;
}

function stream(chunks: number[]): Readable {
  return Readable.from(
    chunks.map((n, i) => Buffer.alloc(n, i)),
    { objectMode: false },
  );
}

describe('partsOf', () => {
  it.each([
    [[], 4, [0]],
    [[0], 4, [0]],
    [[10], 4, [4, 4, 2]],
    [[8], 4, [4, 4]],
    [[3, 3, 3, 3], 4, [4, 4, 4]],
    [[1, 1, 1], 4, [3]],
    [[9, 1], 5, [5, 5]],
  ])('stream chunks %j in parts of %i -> %j', async (chunks, partSize, expected) => {
    expect(await sizes(partsOf(stream(chunks), partSize))).toEqual(expected);
  });

  it.each([
    [0, 4, [0]],
    [10, 4, [4, 4, 2]],
    [8, 4, [4, 4]],
  ])('buffer of %i in parts of %i -> %j', async (n, partSize, expected) => {
    expect(await sizes(partsOf(Buffer.alloc(n), partSize))).toEqual(expected);
  });

  it('keeps the bytes in order across part boundaries', async () => {
    const parts: Buffer[] = [];
    for await (const p of partsOf(Readable.from([Buffer.from('abc'), Buffer.from('defgh'), Buffer.from('ij')], { objectMode: false }), 4)) {
      parts.push(p);
    }
    expect(parts.map((p) => p.toString())).toEqual(['abcd', 'efgh', 'ij']);
  });
});

describe('guardedStream', () => {
  const mapError = (err: unknown): Error => new Error(`mapped: ${(err as Error)?.message}`);
  const lengthError = (a: number, e: number): Error => new Error(`got ${a} of ${e}`);

  it('fails a body shorter than announced instead of ending quietly', async () => {
    const s = guardedStream(stream([3, 3]), { expectedLength: 10, mapError, lengthError });
    await expect(async () => {
      for await (const _ of s) void _;
    }).rejects.toThrow('got 6 of 10');
  });

  it('maps source errors and destroys the source when abandoned', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('socket reset'));
      },
    });
    await expect(async () => {
      for await (const _ of guardedStream(failing, { mapError, lengthError })) void _;
    }).rejects.toThrow('mapped: socket reset');

    const endless = new Readable({
      read() {
        this.push(Buffer.alloc(10));
      },
    });
    const guarded = guardedStream(endless, { mapError, lengthError });
    for await (const _ of guarded) break;
    await new Promise((r) => setImmediate(r));
    expect(endless.destroyed).toBe(true);
  });

  it('fails with the mapped error when the signal fires', async () => {
    const controller = new AbortController();
    const stalled = new Readable({ read() {} });
    const guarded = guardedStream(stalled, { signal: controller.signal, mapError, lengthError });
    const reading = (async () => {
      for await (const _ of guarded) void _;
    })();
    controller.abort(new Error('shutdown'));
    await expect(reading).rejects.toThrow('mapped: shutdown');
    expect(stalled.destroyed).toBe(true);
  });
});
