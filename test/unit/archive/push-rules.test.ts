/**
 * The dedupe rule and what pushFile refuses, on real PostgreSQL 15 WAL: the same file twice is a
 * success with nothing written; different bytes under a name already archived are refused (exit 4)
 * and kept under errors/, the original untouched; `.partial` versions coexist and the longest wins;
 * anything that is not this cluster's WAL is refused with nothing written under wal/.
 */
import { mkdir, truncate } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ArchiveDuplicateError,
  ArchiveMismatchError,
  ExitCode,
  IntegrityError,
  InvalidNameError,
  InvalidWalError,
  LocalIoError,
  TimelineError,
  type WalvaultError,
} from '../../../src/common/errors.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { readObject, restoreFile } from '../../../src/restore/fetch.js';
import { findVersions } from '../../../src/archive/versions.js';
import { errorKey, objectKey, parseObjectKey } from '../../../src/archive/keys.js';
import { pushFile } from '../../../src/archive/push.js';
import { validateSegmentForArchive } from '../../../src/segment/inspect.js';
import type { Storage } from '../../../src/storage/types.js';
import { fixtureManifest, loadFixture } from '../../support/fixtures.js';
import {
  DRIVERS,
  expectWalvault,
  keysUnder,
  makeCtx,
  manifestSha,
  newStorage,
  observedOf,
  rejectionOf,
  removeTempDirs,
  sha256,
  snapshot,
  tempDir,
  testKey,
  writeFixture,
  writeInput,
} from './support.js';

afterAll(removeTempDirs);

const MAJOR = 15;
const SEG7 = '000000010000000000000007';
const SEG8 = '000000010000000000000008';
const PARTIAL = '00000001000000000000000B.partial';
const HISTORY = '00000002.history';
const BACKUP = '00000001000000000000000A.00000028.backup';
const BLOCK = 8192;

/**
 * Segment 8 with one byte changed inside record data (page 10, byte 4000: far past the 24-byte
 * page header), so it is still valid WAL by every header check but has other content.
 */
function alteredSegment8(): Buffer {
  const bytes = loadFixture(MAJOR, SEG8);
  bytes[10 * BLOCK + 4000] = (bytes[10 * BLOCK + 4000] as number) ^ 0x01;
  return bytes;
}

/** The real .partial cut back to its first `pages` pages (the rest zeroed): a shorter, valid partial. */
function shorterPartial(pages: number): Buffer {
  const bytes = loadFixture(MAJOR, PARTIAL);
  bytes.fill(0, pages * BLOCK);
  return bytes;
}

describe.each(DRIVERS)('%s storage', (driver) => {
  async function archiveWith(...names: string[]): Promise<{ storage: Storage; ctx: ArchiveContext; src: string }> {
    const storage = await newStorage(driver);
    const ctx = makeCtx(storage);
    const src = await tempDir('src');
    for (const name of names) await pushFile(ctx, await writeFixture(src, MAJOR, name));
    return { storage, ctx, src };
  }

  describe('the same file twice', () => {
    it('second push is already-archived, with one object, not rewritten', async () => {
      const { storage, ctx, src } = await archiveWith();
      const p = await writeFixture(src, MAJOR, SEG8);
      const first = await pushFile(ctx, p);
      const snap = await snapshot(storage);
      const second = await pushFile(makeCtx(storage), p);
      expect(first.status).toBe('uploaded');
      expect(second).toMatchObject({ status: 'already-archived', key: first.key, sha256: manifestSha(MAJOR, SEG8), size: 1048576 });
      expect(second.storedBytes).toBe(first.storedBytes);
      expect(await snapshot(storage)).toEqual(snap);
      expect(await keysUnder(storage, 'wal/')).toEqual([first.key]);
    });

    it('is already-archived even under another codec or with encryption turned on', async () => {
      const { storage, src } = await archiveWith();
      const p = await writeFixture(src, MAJOR, SEG8);
      const first = await pushFile(makeCtx(storage, { compression: { name: 'gzip', level: 1 } }), p);
      const snap = await snapshot(storage);
      for (const opts of [
        { compression: { name: 'zstd' as const, level: 3 } },
        { compression: { name: 'none' as const, level: 0 } },
        { compression: { name: 'lz4' as const, level: 1 }, encryption: testKey(9) },
      ]) {
        const again = await pushFile(makeCtx(storage, opts), p);
        expect(again).toMatchObject({ status: 'already-archived', key: first.key });
      }
      expect(await snapshot(storage)).toEqual(snap);
    });

    it('a .history and a .backup file pushed twice are already-archived', async () => {
      const { storage, ctx, src } = await archiveWith(SEG7);
      for (const name of [HISTORY, BACKUP]) {
        const p = await writeFixture(src, MAJOR, name);
        expect((await pushFile(ctx, p)).status).toBe('uploaded');
        const snap = await snapshot(storage);
        expect((await pushFile(ctx, p)).status).toBe('already-archived');
        expect(await snapshot(storage)).toEqual(snap);
      }
    });

    it('concurrent pushes of the same file with the same settings store one object', async () => {
      const { storage, src } = await archiveWith(SEG7);
      const p = await writeFixture(src, MAJOR, SEG8);
      const results = await Promise.all([1, 2, 3].map(() => pushFile(makeCtx(storage), p)));
      expect(results.filter((r) => r.status === 'uploaded')).toHaveLength(1);
      expect(new Set(results.map((r) => r.key)).size).toBe(1);
      expect(await findVersions(makeCtx(storage), SEG8)).toHaveLength(1);
      expect(sha256((await restoreFile(makeCtx(storage), SEG8)).bytes)).toBe(manifestSha(MAJOR, SEG8));
    });
  });

  describe('different bytes under an archived name', () => {
    it('the altered copy is still valid WAL (so the refusal below is the dedupe rule, not validation)', () => {
      const altered = alteredSegment8();
      expect(sha256(altered)).not.toBe(manifestSha(MAJOR, SEG8));
      const m = fixtureManifest(MAJOR);
      expect(validateSegmentForArchive(altered, SEG8, { systemId: m.systemId, segSize: m.walSegSize }).complete).toBe(true);
    });

    it('is refused with ArchiveDuplicateError (exit 4); the original stays; the copy goes to errors/', async () => {
      const { storage, ctx, src } = await archiveWith(SEG8);
      const originalKey = objectKey({ fileName: SEG8, sha256: manifestSha(MAJOR, SEG8), extension: 'zst', encrypted: false });
      const originalBytes = await storage.getBuffer(originalKey);
      const altered = alteredSegment8();
      const dir = path.join(src, 'other');
      await mkdir(dir);
      const err = await rejectionOf(pushFile(ctx, await writeInput(dir, SEG8, altered)));
      const e = expectWalvault(err, ArchiveDuplicateError, ExitCode.conflict);
      expect(e.retryable).toBe(false);

      const refusedKey = errorKey({ fileName: SEG8, sha256: sha256(altered), extension: 'zst', encrypted: false });
      expect(e.message).toContain(refusedKey);
      expect(e.message).toContain(manifestSha(MAJOR, SEG8).slice(0, 16));
      expect(await keysUnder(storage, 'wal/')).toEqual([originalKey]);
      expect((await storage.getBuffer(originalKey)).equals(originalBytes)).toBe(true);
      expect(await keysUnder(storage, 'errors/')).toEqual([refusedKey]);

      // The original is what a restore gets; the refused copy is a complete, verifiable object.
      expect(sha256((await restoreFile(makeCtx(storage), SEG8)).bytes)).toBe(manifestSha(MAJOR, SEG8));
      const kept = await readObject(ctx, {
        key: refusedKey,
        parts: parseObjectKey(refusedKey)!,
        storedBytes: (await storage.head(refusedKey))!.size,
      });
      expect(kept.bytes.equals(altered)).toBe(true);

      // Pushing the refused copy again is refused again, and changes nothing.
      const snap = await snapshot(storage);
      expectWalvault(await rejectionOf(pushFile(makeCtx(storage), path.join(dir, SEG8))), ArchiveDuplicateError, ExitCode.conflict);
      expect(await snapshot(storage)).toEqual(snap);
    });

    it('an encrypted archive keeps the refused copy encrypted', async () => {
      const storage = await newStorage(driver);
      const key = testKey(4);
      const ctx = makeCtx(storage, { encryption: key });
      const src = await tempDir('src');
      await pushFile(ctx, await writeFixture(src, MAJOR, SEG8));
      const dir = path.join(src, 'other');
      await mkdir(dir);
      expectWalvault(
        await rejectionOf(pushFile(ctx, await writeInput(dir, SEG8, alteredSegment8()))),
        ArchiveDuplicateError,
        ExitCode.conflict,
      );
      const [refused] = await keysUnder(storage, 'errors/');
      expect(refused).toBe(errorKey({ fileName: SEG8, sha256: sha256(alteredSegment8()), extension: 'zst', encrypted: true }));
      const raw = await storage.getBuffer(refused!);
      expect(raw.includes(alteredSegment8().subarray(10 * BLOCK, 10 * BLOCK + 64))).toBe(false);
    });

    it('a different .history file of the same timeline is refused', async () => {
      const { storage, ctx } = await archiveWith(SEG7, HISTORY);
      const snapWal = await keysUnder(storage, 'history/');
      const other = Buffer.from('1\t0/B14798\tno recovery target specified, but another server\n');
      const err = await rejectionOf(pushFile(ctx, await writeInput(await tempDir('h'), HISTORY, other)));
      expectWalvault(err, ArchiveDuplicateError, ExitCode.conflict);
      expect(await keysUnder(storage, 'history/')).toEqual(snapWal);
      expect(sha256((await restoreFile(makeCtx(storage), HISTORY)).bytes)).toBe(manifestSha(MAJOR, HISTORY));
      expect(await keysUnder(storage, 'errors/')).toHaveLength(1);
    });

    it('a different .backup label with the same name is refused', async () => {
      const { storage, ctx } = await archiveWith(SEG7, BACKUP);
      const other = Buffer.from(loadFixture(MAJOR, BACKUP).toString('latin1').replace('walvault-fixture', 'another-label'), 'latin1');
      const err = await rejectionOf(pushFile(ctx, await writeInput(await tempDir('b'), BACKUP, other)));
      expectWalvault(err, ArchiveDuplicateError, ExitCode.conflict);
      expect(sha256((await restoreFile(makeCtx(storage), BACKUP)).bytes)).toBe(manifestSha(MAJOR, BACKUP));
    });
  });

  describe('.partial versions', () => {
    it('coexist, and restoreFile returns the one with the most valid WAL, in either push order', async () => {
      const m = fixtureManifest(MAJOR);
      const short = shorterPartial(5);
      const shortInfo = validateSegmentForArchive(short, PARTIAL, { systemId: m.systemId, segSize: m.walSegSize });
      const fullInfo = validateSegmentForArchive(loadFixture(MAJOR, PARTIAL), PARTIAL, { systemId: m.systemId, segSize: m.walSegSize });
      expect(shortInfo.validBytes).toBe(5 * BLOCK);
      expect(fullInfo.validBytes).toBeGreaterThan(shortInfo.validBytes);

      for (const order of ['short first', 'full first'] as const) {
        const { storage, ctx, src } = await archiveWith(SEG7);
        const shortDir = path.join(src, 'short');
        await mkdir(shortDir);
        const shortPath = await writeInput(shortDir, PARTIAL, short);
        const fullPath = await writeFixture(src, MAJOR, PARTIAL);
        const paths = order === 'short first' ? [shortPath, fullPath] : [fullPath, shortPath];
        for (const p of paths) expect((await pushFile(ctx, p)).status, order).toBe('uploaded');

        const versions = await findVersions(makeCtx(storage), PARTIAL);
        expect(versions.map((v) => v.parts.sha256).sort()).toEqual([manifestSha(MAJOR, PARTIAL), sha256(short)].sort());
        const restored = await restoreFile(makeCtx(storage), PARTIAL);
        expect(sha256(restored.bytes), order).toBe(manifestSha(MAJOR, PARTIAL));
        expect(restored.meta.validBytes).toBe(fullInfo.validBytes);
        expect(await keysUnder(storage, 'errors/')).toEqual([]);

        // And each version once more is already-archived.
        for (const p of paths) expect((await pushFile(ctx, p)).status).toBe('already-archived');
        expect(await findVersions(makeCtx(storage), PARTIAL)).toHaveLength(2);
      }
    });

    it('a damaged shorter version still stops the restore (every version must verify)', async () => {
      const { storage, ctx, src } = await archiveWith(SEG7, PARTIAL);
      const shortDir = path.join(src, 'short');
      await mkdir(shortDir);
      const { key } = await pushFile(ctx, await writeInput(shortDir, PARTIAL, shorterPartial(3)));
      const obj = await storage.getBuffer(key);
      obj[obj.length - 1] = (obj[obj.length - 1] as number) ^ 0xff;
      await storage.put(key, obj);
      expectWalvault(await rejectionOf(restoreFile(makeCtx(storage), PARTIAL)), IntegrityError, ExitCode.integrity);
    });
  });

  describe('.history and .backup files', () => {
    it('go to history/ and wal/ and come back bit-exact', async () => {
      const { storage } = await archiveWith(SEG7, HISTORY, BACKUP);
      expect(await keysUnder(storage, 'history/')).toEqual([
        objectKey({ fileName: HISTORY, sha256: manifestSha(MAJOR, HISTORY), extension: 'zst', encrypted: false }),
      ]);
      expect(await keysUnder(storage, 'wal/00000001/0000000100000000/00000001000000000000000A.')).toEqual([
        objectKey({ fileName: BACKUP, sha256: manifestSha(MAJOR, BACKUP), extension: 'zst', encrypted: false }),
      ]);
      for (const name of [HISTORY, BACKUP]) {
        const restored = await restoreFile(makeCtx(storage), name);
        expect(sha256(restored.bytes)).toBe(manifestSha(MAJOR, name));
        expect(restored.meta.systemId).toBe(fixtureManifest(MAJOR).systemId);
      }
    });

    it('may be the first thing archived: no identity is created, no system id recorded', async () => {
      const { storage } = await archiveWith(HISTORY, BACKUP);
      expect(await storage.head('archive.info')).toBeUndefined();
      const restored = await restoreFile(makeCtx(storage), HISTORY);
      expect(restored.meta.systemId).toBeNull();
      expect(sha256(restored.bytes)).toBe(manifestSha(MAJOR, HISTORY));
    });
  });

  describe('what is refused, with nothing written under wal/', () => {
    const cases: Array<[string, string, () => Buffer, abstract new (...a: never[]) => WalvaultError, number]> = [
      ['text', SEG8, () => Buffer.from('this is not WAL\n'.repeat(1000)), InvalidWalError, ExitCode.integrity],
      ['one segment of zeros', SEG8, () => Buffer.alloc(1048576), InvalidWalError, ExitCode.integrity],
      ['an empty file', SEG8, () => Buffer.alloc(0), InvalidWalError, ExitCode.integrity],
      ['a truncated segment', SEG8, () => loadFixture(MAJOR, SEG8).subarray(0, 512 * 1024), InvalidWalError, ExitCode.integrity],
      [
        'a segment one byte too long',
        SEG8,
        () => Buffer.concat([loadFixture(MAJOR, SEG8), Buffer.alloc(1)]),
        InvalidWalError,
        ExitCode.integrity,
      ],
      ['segment 7 named as segment 8', SEG8, () => loadFixture(MAJOR, SEG7), InvalidWalError, ExitCode.integrity],
      [
        'a segment with a broken page chain',
        SEG8,
        () => {
          const b = loadFixture(MAJOR, SEG8);
          b.writeUInt32LE(0xdeadbeef, 20 * BLOCK + 8); // xlp_pageaddr of page 20
          return b;
        },
        InvalidWalError,
        ExitCode.integrity,
      ],
      ['a segment of the pg13 fixture cluster', SEG8, () => loadFixture(13, SEG8), ArchiveMismatchError, ExitCode.integrity],
      ['a segment of the pg17 fixture cluster', SEG8, () => loadFixture(17, SEG8), ArchiveMismatchError, ExitCode.integrity],
      ['a partial of the pg13 fixture cluster', PARTIAL, () => loadFixture(13, PARTIAL), ArchiveMismatchError, ExitCode.integrity],
      ['a history file that is not one', HISTORY, () => Buffer.from('hello\n'), TimelineError, ExitCode.integrity],
      ['a backup label that is not one', BACKUP, () => Buffer.from('LABEL: x\n'), InvalidWalError, ExitCode.integrity],
      // Real bytes of segment 0xA, under the name PostgreSQL would never write.
      [
        'a lower-case segment name',
        '00000001000000000000000a',
        () => loadFixture(MAJOR, '00000001000000000000000A'),
        InvalidNameError,
        ExitCode.usage,
      ],
      ['a file that is not named like WAL', 'backup_label', () => Buffer.from('x'), InvalidNameError, ExitCode.usage],
    ];

    // One populated archive for all refusals: each test proves it changed nothing at all.
    let populated: { storage: Storage; ctx: ArchiveContext; snap: Map<string, string> };
    beforeAll(async () => {
      const { storage, ctx } = await archiveWith(SEG7, HISTORY, BACKUP);
      populated = { storage, ctx, snap: await snapshot(storage) };
    });

    it.each(cases)('%s', async (_what, name, bytes, type, exitCode) => {
      const { storage, snap } = populated;
      const ctx = makeCtx(storage);
      const err = await rejectionOf(pushFile(ctx, await writeInput(await tempDir('bad'), name, bytes())));
      expectWalvault(err, type, exitCode);
      expect(await snapshot(storage)).toEqual(snap);
    });

    // Another cluster's WAL is not refused by a new archive: the first segment pushed defines it.
    const invalidAnywhere = cases.filter(([, , , type]) => type !== ArchiveMismatchError);

    it.each(invalidAnywhere)('%s, into a new archive: nothing under wal/, history/ or errors/', async (_what, name, bytes, type) => {
      const storage = await newStorage(driver);
      const err = await rejectionOf(pushFile(makeCtx(storage), await writeInput(await tempDir('bad'), name, bytes())));
      expect(err).toBeInstanceOf(type);
      for (const prefix of ['wal/', 'history/', 'errors/']) expect(await keysUnder(storage, prefix)).toEqual([]);
    });

    it('another cluster is refused even when this process already knows the identity', async () => {
      const { storage, ctx, src } = await archiveWith(SEG7);
      expect(ctx.identity).toMatchObject(observedOf(MAJOR));
      const snap = await snapshot(storage);
      const dir = path.join(src, 'pg13');
      await mkdir(dir);
      const err = await rejectionOf(pushFile(ctx, await writeFixture(dir, 13, SEG7)));
      expect(expectWalvault(err, ArchiveMismatchError, ExitCode.integrity).message).toContain(fixtureManifest(13).systemId);
      expect(await snapshot(storage)).toEqual(snap);
    });

    it('a missing file or a directory is a local I/O failure (exit 3), not "invalid WAL"', async () => {
      const { ctx, src } = await archiveWith();
      expectWalvault(await rejectionOf(pushFile(ctx, path.join(src, SEG8))), LocalIoError, ExitCode.failure);
      const dir = path.join(src, SEG7);
      await mkdir(dir);
      expectWalvault(await rejectionOf(pushFile(ctx, dir)), LocalIoError, ExitCode.failure);
    });

    it('a file cut short after it was written is refused (the name is what counts, not %p)', async () => {
      const { storage, ctx, src } = await archiveWith(SEG7);
      const p = await writeFixture(src, MAJOR, SEG8);
      await truncate(p, 8192 * 3);
      expectWalvault(await rejectionOf(pushFile(ctx, p)), InvalidWalError, ExitCode.integrity);
      expect(await findVersions(makeCtx(storage), SEG8)).toEqual([]);
    });
  });
});

/*
 * BUG (src/restore/fetch.ts restoreFile, line ~96): two stored objects with the *same* SHA-256 in
 * their keys (so the same content, e.g. one `.zst` and one `.lz4.enc`) make a finished segment
 * unrestorable: "the archive holds 2 different versions", IntegrityError, exit 128, so PostgreSQL
 * aborts recovery. They arise when two pushers with different compression or encryption settings
 * (wal-push and the agent during a configuration change) push the same segment at the same time:
 * both list, see nothing, and put under different keys (`ifAbsent` only guards one key). Reproduced
 * here with real concurrent pushFile calls on PosixStorage (both returned 'uploaded'). Push's own
 * dedupe rule calls same-SHA "already archived", so restore should treat same-SHA versions as one
 * (verify one, or all) instead of as a conflict. Flip to `it` once fixed.
 */
describe('two stored copies of the same content', () => {
  it('a finished segment stored under two codecs (same SHA-256) is still restorable', async () => {
    const storage = await newStorage('memory');
    const src = await tempDir('src');
    const p = await writeFixture(src, MAJOR, SEG8);
    await pushFile(makeCtx(storage), await writeFixture(src, MAJOR, SEG7));
    await pushFile(makeCtx(storage, { compression: { name: 'zstd', level: 1 } }), p);
    // The outcome of the race, built deterministically: the other pusher's object beside ours.
    const other = await newStorage('memory');
    const { key } = await pushFile(makeCtx(other, { compression: { name: 'lz4', level: 1 } }), p);
    await storage.put(key, await other.getBuffer(key));
    expect(await findVersions(makeCtx(storage), SEG8)).toHaveLength(2);

    const restored = await restoreFile(makeCtx(storage), SEG8);
    expect(sha256(restored.bytes)).toBe(manifestSha(MAJOR, SEG8));
  });

  it('copies of different content are still a conflict (the guard the fix must keep)', async () => {
    const storage = await newStorage('memory');
    const src = await tempDir('src');
    await pushFile(makeCtx(storage), await writeFixture(src, MAJOR, SEG7));
    await pushFile(makeCtx(storage), await writeFixture(src, MAJOR, SEG8));
    const other = await newStorage('memory');
    const { key } = await pushFile(makeCtx(other), await writeInput(await tempDir('alt'), SEG8, alteredSegment8()));
    await storage.put(key, await other.getBuffer(key));
    const err = await rejectionOf(restoreFile(makeCtx(storage), SEG8));
    expect(expectWalvault(err, IntegrityError, ExitCode.integrity).message).toContain('2 different versions');
  });
});
