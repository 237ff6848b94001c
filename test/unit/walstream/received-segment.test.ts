/**
 * A segment received through the spool is archived from what the spool's encoder kept (hash, page
 * check, compressed bytes), without reading it back: the result must be exactly what pushFile of
 * the finished spool file gives (same key, same checksum, restores to the same bytes), for every
 * codec, with and without encryption; and a segment the page check refuses is refused by pushFile.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pushFile, pushReceivedSegment } from '../../../src/archive/push.js';
import { restoreFile } from '../../../src/restore/fetch.js';
import type { CompressionSpec } from '../../../src/codec/codec.js';
import { InvalidWalError } from '../../../src/common/errors.js';
import { lsn } from '../../../src/segment/lsn.js';
import { SegmentName } from '../../../src/segment/names.js';
import { Spool } from '../../../src/walstream/spool.js';
import { fixturesOfKind, loadFixture } from '../../support/fixtures.js';
import { makeCtx, newStorage, removeTempDirs, sha256, tempDir, testKey } from '../archive/support.js';

afterAll(removeTempDirs);

const SEGMENT = fixturesOfKind(15, 'segment')[0]!.name;
const BYTES = loadFixture(15, SEGMENT);

/** Feeds `bytes` through a spool in CopyData-sized pieces, as the receiver does. */
async function receive(bytes: Buffer, name: string, compression: CompressionSpec) {
  const dir = await tempDir('spool');
  const seg = SegmentName.parse(name, bytes.length);
  const spool = new Spool(dir, bytes.length, compression);
  const finished = [];
  for (let off = 0, i = 0; off < bytes.length; i++) {
    const n = Math.min([131_072, 7, 8192, 60_001][i % 4]!, bytes.length - off);
    finished.push(...spool.write(seg.timeline, lsn(seg.startLsn + BigInt(off)), bytes.subarray(off, off + n)));
    off += n;
  }
  expect(finished.map((f) => f.name)).toEqual([name]);
  return finished[0]!;
}

const VARIANTS: ReadonlyArray<readonly [string, CompressionSpec, boolean]> = [
  ['zstd:1', { name: 'zstd', level: 1 }, false],
  ['zstd:3, encrypted', { name: 'zstd', level: 3 }, true],
  ['gzip:1', { name: 'gzip', level: 1 }, false],
  ['lz4', { name: 'lz4', level: 1 }, false],
  ['none', { name: 'none', level: 0 }, false],
  ['none, encrypted', { name: 'none', level: 0 }, true],
];

describe('archiving a segment from what the spool received', () => {
  // The spool hands its staging windows to the encoder uncopied and reuses them once the encoder
  // gives them back; flushes write parts of a window early. Two consecutive segments with flushes
  // at odd places must still encode to exactly their bytes.
  it.each([
    ['zstd:1', { name: 'zstd', level: 1 }],
    ['none', { name: 'none', level: 0 }],
  ] as const)('%s: consecutive segments, flushed at odd places, encode to their own bytes', async (_label, compression) => {
    const names = fixturesOfKind(15, 'segment')
      .map((f) => f.name)
      .filter((n) => n.endsWith('07') || n.endsWith('08'))
      .sort();
    expect(names).toHaveLength(2);
    const segs = names.map((n) => ({ name: n, bytes: loadFixture(15, n) }));
    const size = segs[0]!.bytes.length;
    const dir = await tempDir('spool');
    const spool = new Spool(dir, size, compression);
    const first = SegmentName.parse(segs[0]!.name, size);
    const all = Buffer.concat(segs.map((s) => s.bytes));
    const finished = [];
    for (let off = 0, i = 0; off < all.length; i++) {
      const n = Math.min([131_072, 7, 8192, 60_001, 1_000_003][i % 5]!, all.length - off);
      finished.push(...spool.write(first.timeline, lsn(first.startLsn + BigInt(off)), all.subarray(off, off + n)));
      off += n;
      if (i % 3 === 0) spool.flush();
      if (i % 7 === 0) spool.writeOut();
    }
    expect(finished.map((f) => f.name)).toEqual(names);
    const ctx = makeCtx(await newStorage('posix'), { compression });
    for (const [k, f] of finished.entries()) {
      const encoding = await f.encoding!;
      expect(encoding?.sha256).toBe(sha256(segs[k]!.bytes));
      expect(readFileSync(f.path).equals(segs[k]!.bytes)).toBe(true);
      expect((await pushReceivedSegment(ctx, { fileName: f.name, path: f.path, ...encoding! })).status).toBe('uploaded');
      expect((await restoreFile(ctx, f.name)).bytes.equals(segs[k]!.bytes)).toBe(true);
    }
  });

  it.each(VARIANTS)('%s: the same object as pushFile of the spool file', async (_label, compression, encrypted) => {
    const f = await receive(BYTES, SEGMENT, compression);
    const encoding = await f.encoding!;
    expect(encoding).toBeDefined();
    expect(encoding!.sha256).toBe(sha256(BYTES));
    expect(readFileSync(f.path).equals(BYTES)).toBe(true);
    expect(encoding!.compressed === undefined).toBe(compression.name === 'none');

    const opts = { compression, ...(encrypted ? { encryption: testKey(3) } : {}) };
    const received = makeCtx(await newStorage('posix'), opts);
    const pushed = makeCtx(await newStorage('posix'), opts);
    const a = await pushReceivedSegment(received, { fileName: SEGMENT, path: f.path, ...encoding! });
    const b = await pushFile(pushed, f.path, SEGMENT);
    expect(a).toMatchObject({ status: 'uploaded', key: b.key, sha256: b.sha256, size: BYTES.length });
    expect(received.identity).toMatchObject({ systemId: pushed.identity!.systemId, walSegSize: BYTES.length });
    const restored = await restoreFile(received, SEGMENT);
    expect(restored.bytes.equals(BYTES)).toBe(true);
    // The same file again is recognised as archived, whichever way it comes.
    expect((await pushFile(received, f.path, SEGMENT)).status).toBe('already-archived');
    expect((await pushReceivedSegment(pushed, { fileName: SEGMENT, path: f.path, ...encoding! })).status).toBe('already-archived');
  });

  it('a segment the page check refuses leaves no encoding, and pushFile refuses it', async () => {
    const bad = Buffer.from(BYTES);
    bad.writeUInt16LE(0x1234, 8192); // a foreign magic on page 1
    const f = await receive(bad, SEGMENT, { name: 'zstd', level: 1 });
    expect(await f.encoding).toBeUndefined();
    const ctx = makeCtx(await newStorage('memory'));
    await expect(pushFile(ctx, f.path, SEGMENT)).rejects.toThrow(InvalidWalError);
    await expect(pushFile(ctx, f.path, SEGMENT)).rejects.toThrow(/page at offset 8192 .* has magic 0x1234/);
  });

  it('refuses an encoding made for another compression', async () => {
    const f = await receive(BYTES, SEGMENT, { name: 'none', level: 0 });
    const ctx = makeCtx(await newStorage('memory'), { compression: { name: 'zstd', level: 1 } });
    await expect(pushReceivedSegment(ctx, { fileName: SEGMENT, path: f.path, ...(await f.encoding)! })).rejects.toThrow(
      `unable to archive '${SEGMENT}': not a finished segment received for this compression`,
    );
    expect(path.basename(f.path)).toBe(SEGMENT);
  });
});
