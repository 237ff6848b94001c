import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Background } from '../../../src/backup/restore/background.js';
import { StreamHash, streamable } from '../../../src/backup/restore/stream-hash.js';
import { UnitSlots } from '../../../src/backup/restore/unit-slots.js';
import type { Piece } from '../../../src/backup/restore/pieces.js';

const piece = (pack: number, fileOffset: number, length: number): Piece => ({ owner: 'b', pack, packOffset: 0, fileOffset, length });

describe('restore hashing as pieces arrive', () => {
  it('hashes pieces given out of order in file order, matching the SHA-256 of the whole', async () => {
    const bytes = Buffer.from('abcdefghijklmnopqrstuvwxyz');
    const want = createHash('sha256').update(bytes).digest('hex');
    const h = new StreamHash(bytes.length);
    // The third piece arrives first, then the second, then the first: each waits for its turn.
    const late = h.add(20, bytes.subarray(20));
    const middle = h.add(8, bytes.subarray(8, 20));
    expect(h.digest).toBeUndefined();
    expect(await h.add(0, bytes.subarray(0, 8))).toBe(true);
    expect(await middle).toBe(true);
    expect(await late).toBe(true);
    expect(h.digest).toBe(want);
  });

  it('wakes a waiting piece with false when the file is given up', async () => {
    const h = new StreamHash(10);
    const waiting = h.add(5, Buffer.alloc(5));
    h.giveUp();
    expect(await waiting).toBe(false);
    expect(await h.add(0, Buffer.alloc(5))).toBe(false);
    expect(h.digest).toBeUndefined();
  });

  it.each([
    ['contiguous pieces in pack order', [piece(0, 0, 4), piece(1, 4, 4), piece(1, 8, 2)], 10, true],
    ['a hole', [piece(0, 0, 4), piece(1, 6, 4)], 10, false],
    ['short of the size (zeros at the end)', [piece(0, 0, 4), piece(1, 4, 4)], 10, false],
    ['a later piece in an earlier pack', [piece(2, 0, 4), piece(1, 4, 6)], 10, false],
  ])('streamable: %s', (_name, pieces, size, want) => {
    expect(streamable(pieces, size, (p) => p.pack)).toBe(want);
  });
});

describe('restore pack slots', () => {
  it('hands out units in order, reuses buffers and never holds more than its slots', async () => {
    const slots = new UnitSlots([8, 8, 8, 8], 2, 8, 1024);
    const a = (await slots.next())!;
    const b = (await slots.next())!;
    expect([a.index, b.index]).toEqual([0, 1]);
    let third: number | undefined;
    const pending = slots.next().then((s) => {
      third = s!.index;
      return s!;
    });
    await new Promise((r) => setImmediate(r));
    expect(third).toBeUndefined();
    a.release();
    const c = await pending;
    expect(c.index).toBe(2);
    expect(c.buffer).toBe(a.buffer);
    b.release();
    c.release();
    const d = (await slots.next())!;
    expect(d.index).toBe(3);
    d.release();
    expect(await slots.next()).toBeUndefined();
  });

  it('holds at most the byte budget beyond the first unit', async () => {
    const slots = new UnitSlots([6, 6, 6], 3, 8, 10);
    const a = (await slots.next())!;
    let got = false;
    const pending = slots.next().then((s) => {
      got = true;
      return s!;
    });
    await new Promise((r) => setImmediate(r));
    expect(got).toBe(false);
    a.release();
    expect((await pending).index).toBe(1);
  });

  it('background work: runs every job, keeps errors, drains', async () => {
    const bg = new Background(2);
    const done: number[] = [];
    for (let i = 0; i < 5; i++) {
      bg.push(async () => {
        await new Promise((r) => setTimeout(r, 5));
        if (i === 3) throw new Error('job 3');
        done.push(i);
      });
    }
    await bg.drain();
    expect(done.sort()).toEqual([0, 1, 2, 4]);
    expect(bg.errors.map((e) => (e as Error).message)).toEqual(['job 3']);
  });
});
