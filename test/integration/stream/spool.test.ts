/**
 * The spool on a real file system: a segment received again from its start (after a reconnect or
 * a crash) is rewritten in place, so bytes already reported as flushed never vanish from disk
 * while they are received a second time; a finished segment is renamed with exactly the bytes
 * written. Content is a made-up byte pattern: the spool does not interpret WAL.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Spool } from '../../../src/walstream/spool.js';
import { lsn } from '../../../src/segment/lsn.js';

const SEG = 1024 * 1024;
// Segment 5 of timeline 1 at 1 MiB: 0/500000, file 000000010000000000000005.
const START = lsn(5n * BigInt(SEG));
const NAME = '000000010000000000000005';

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('walstream spool', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('rewrites a segment received again in place, never truncating what was flushed', () => {
    dir = mkdtempSync(join(tmpdir(), 'walvault-spool-'));
    const wal = pattern(SEG, 7);
    const first = new Spool(dir, SEG);
    expect(first.write(1, START, wal.subarray(0, 300_000))).toEqual([]);
    expect(first.flush()).toBe(lsn(START + 300_000n));
    const closed = first.closeAsPartial();
    expect(closed).toMatchObject({ name: `${NAME}.partial`, end: lsn(START + 300_000n) });
    const partialPath = join(dir, `${NAME}.partial`);
    expect(readFileSync(partialPath).length).toBe(SEG);

    // A new run (or connection) receives the segment again from its start, in small pieces.
    const again = new Spool(dir, SEG);
    expect(again.partialFiles()).toEqual([`${NAME}.partial`]);
    again.write(1, START, wal.subarray(0, 1000));
    const onDisk = readFileSync(partialPath);
    expect(onDisk.subarray(0, 300_000).equals(wal.subarray(0, 300_000)), 'flushed bytes still on disk').toBe(true);
    expect(onDisk.subarray(300_000).every((b) => b === 0)).toBe(true);

    const finished = again.write(1, lsn(START + 1000n), wal.subarray(1000));
    expect(finished).toEqual([{ name: NAME, path: join(dir, NAME) }]);
    expect(existsSync(partialPath)).toBe(false);
    expect(readFileSync(join(dir, NAME)).equals(wal)).toBe(true);
    expect(again.pendingFiles().map((f) => f.name)).toEqual([NAME]);
  });

  it('refuses data that does not continue the open segment', () => {
    dir = mkdtempSync(join(tmpdir(), 'walvault-spool-'));
    const spool = new Spool(dir, SEG);
    spool.write(1, START, pattern(4096, 1));
    expect(() => spool.write(1, START, pattern(4096, 1))).toThrow(/expected continuation/);
    expect(() => new Spool(dir!, SEG).write(1, lsn(START + 8192n), pattern(10, 2))).toThrow(/segment boundary/);
  });
});
