/**
 * One content per WAL name under concurrency, and "already archived" only for a whole object, on
 * real PostgreSQL 15 WAL and both local drivers: racing pushes of different files under one name
 * have exactly one winner (the claim), racing pushes of the same file all succeed, a leftover claim
 * decides like a live one, and an existing object that is truncated or not ours is kept under
 * errors/ and replaced instead of being answered "already archived".
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArchiveDuplicateError, ExitCode, IntegrityError } from '../../../src/common/errors.js';
import { claimKey, errorKey, objectKey } from '../../../src/archive/keys.js';
import { encodeClaim, newClaim, readClaim } from '../../../src/archive/claim.js';
import { restoreFile } from '../../../src/restore/fetch.js';
import { findVersions } from '../../../src/archive/versions.js';
import { pushFile, type PushResult } from '../../../src/archive/push.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import type { PutBody, PutOptions, Storage } from '../../../src/storage/types.js';
import { loadFixture } from '../../support/fixtures.js';
import {
  DRIVERS,
  expectWalvault,
  keysUnder,
  makeCtx,
  manifestSha,
  newStorage,
  overwrite,
  rejectionOf,
  removeTempDirs,
  sha256,
  tempDir,
  writeFixture,
  writeInput,
} from './support.js';

afterAll(removeTempDirs);

const MAJOR = 15;
const SEG7 = '000000010000000000000007';
const SEG8 = '000000010000000000000008';
const BLOCK = 8192;

/** Segment 8 with one byte of record data changed (page `page`, byte 4000): valid WAL, other content. */
function variantOf8(page: number): Buffer {
  const bytes = loadFixture(MAJOR, SEG8);
  bytes[page * BLOCK + 4000] = (bytes[page * BLOCK + 4000] as number) ^ 0x01;
  return bytes;
}

async function settle(pushes: Array<Promise<PushResult>>): Promise<{ ok: PushResult[]; refused: unknown[] }> {
  const outcomes = await Promise.allSettled(pushes);
  return {
    ok: outcomes.filter((o): o is PromiseFulfilledResult<PushResult> => o.status === 'fulfilled').map((o) => o.value),
    refused: outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as unknown),
  };
}

describe.each(DRIVERS)('%s storage', (driver) => {
  async function archive(): Promise<{ storage: Storage; src: string }> {
    const storage = await newStorage(driver);
    const src = await tempDir('src');
    await pushFile(makeCtx(storage), await writeFixture(src, MAJOR, SEG7));
    return { storage, src };
  }

  async function inputs(src: string, contents: Buffer[]): Promise<string[]> {
    return Promise.all(
      contents.map(async (bytes, i) => {
        const dir = path.join(src, `in-${i}`);
        await mkdir(dir);
        return writeInput(dir, SEG8, bytes);
      }),
    );
  }

  it('racing pushes of different files under one name: one wins, the rest are refused and quarantined', async () => {
    for (let round = 0; round < 5; round++) {
      const { storage, src } = await archive();
      const contents = [loadFixture(MAJOR, SEG8), variantOf8(10), variantOf8(20), variantOf8(30)];
      const paths = await inputs(src, contents);
      const { ok, refused } = await settle(paths.map((p) => pushFile(makeCtx(storage), p)));
      expect(ok).toHaveLength(1);
      expect(refused).toHaveLength(3);
      for (const err of refused) expectWalvault(err, ArchiveDuplicateError, ExitCode.conflict);
      const winner = ok[0]!;
      expect(await keysUnder(storage, 'wal/00000001/0000000100000000/000000010000000000000008')).toEqual([winner.key]);
      expect((await readClaim(storage, SEG8))?.sha256).toBe(winner.sha256);
      const losers = contents.map((c) => sha256(c)).filter((s) => s !== winner.sha256);
      expect((await keysUnder(storage, 'errors/')).sort()).toEqual(
        losers.map((s) => errorKey({ fileName: SEG8, sha256: s, extension: 'zst', encrypted: false })).sort(),
      );
      expect(sha256((await restoreFile(makeCtx(storage), SEG8)).bytes)).toBe(winner.sha256);
    }
  });

  it('racing pushes of the same file all succeed, with one object', async () => {
    const { storage, src } = await archive();
    const p = await writeFixture(src, MAJOR, SEG8);
    const { ok, refused } = await settle([1, 2, 3, 4].map(() => pushFile(makeCtx(storage), p)));
    expect(refused).toEqual([]);
    expect(ok).toHaveLength(4);
    expect(ok.filter((r) => r.status === 'uploaded')).toHaveLength(1);
    expect(await findVersions(makeCtx(storage), SEG8)).toHaveLength(1);
    expect(await keysUnder(storage, 'errors/')).toEqual([]);
  });

  it('a claim left for another content (a push that died before uploading) refuses this one', async () => {
    const { storage, src } = await archive();
    const other = variantOf8(10);
    await storage.put(claimKey(SEG8), encodeClaim(newClaim(SEG8, sha256(other), other.length, 'walvault test')));
    const err = await rejectionOf(pushFile(makeCtx(storage), await writeFixture(src, MAJOR, SEG8)));
    expect(expectWalvault(err, ArchiveDuplicateError, ExitCode.conflict).message).toContain(sha256(other).slice(0, 16));
    expect(await findVersions(makeCtx(storage), SEG8)).toEqual([]);
    expect(await keysUnder(storage, 'errors/')).toEqual([
      errorKey({ fileName: SEG8, sha256: manifestSha(MAJOR, SEG8), extension: 'zst', encrypted: false }),
    ]);
  });

  it('a claim left for the same content (a push that died after claiming) lets the retry upload', async () => {
    const { storage, src } = await archive();
    const bytes = loadFixture(MAJOR, SEG8);
    await storage.put(claimKey(SEG8), encodeClaim(newClaim(SEG8, sha256(bytes), bytes.length, 'walvault test')));
    const res = await pushFile(makeCtx(storage), await writeFixture(src, MAJOR, SEG8));
    expect(res.status).toBe('uploaded');
    expect(sha256((await restoreFile(makeCtx(storage), SEG8)).bytes)).toBe(manifestSha(MAJOR, SEG8));
  });

  it('a torn claim (not JSON: a write cut short) over a name with no data is claimed again and the push uploads', async () => {
    const { storage, src } = await archive();
    for (const torn of [Buffer.alloc(0), Buffer.from('{"claim":1,')]) {
      await storage.put(claimKey(SEG8), torn);
      const res = await pushFile(makeCtx(storage), await writeFixture(src, MAJOR, SEG8));
      expect(res.status).toBe('uploaded');
      expect((await readClaim(storage, SEG8))?.sha256).toBe(manifestSha(MAJOR, SEG8));
      expect(sha256((await restoreFile(makeCtx(storage), SEG8)).bytes)).toBe(manifestSha(MAJOR, SEG8));
      await storage.delete((await findVersions(makeCtx(storage), SEG8)).map((v) => v.key));
    }
  });

  it('a claim that is JSON but wrong refuses the push (integrity, which wal-push reports as exit 4), nothing uploaded', async () => {
    const { storage, src } = await archive();
    await storage.put(claimKey(SEG8), Buffer.from('{"claim":1,"name":"000000010000000000000008"}'));
    const err = await rejectionOf(pushFile(makeCtx(storage), await writeFixture(src, MAJOR, SEG8)));
    expect(expectWalvault(err, IntegrityError, ExitCode.integrity).message).toContain(`the claim '${claimKey(SEG8)}': no valid sha256`);
    expect(await findVersions(makeCtx(storage), SEG8)).toEqual([]);
  });

  it('a torn claim over a name that holds data refuses the push: only the operator may decide', async () => {
    const { storage, src } = await archive();
    const elsewhere = await newStorage('memory');
    await pushFile(makeCtx(elsewhere), await writeFixture(await tempDir('e'), MAJOR, SEG7));
    const { key } = await pushFile(makeCtx(elsewhere), await writeFixture(await tempDir('o'), MAJOR, SEG8));
    // A damaged copy of this very file: the push would replace it, but not past a torn claim.
    await storage.put(key, (await elsewhere.getBuffer(key)).subarray(0, 1000));
    await storage.put(claimKey(SEG8), Buffer.from('{"cla'));
    const err = await rejectionOf(pushFile(makeCtx(storage), await writeFixture(src, MAJOR, SEG8)));
    expect(expectWalvault(err, IntegrityError, ExitCode.integrity).message).toContain('not valid JSON');
    expect((await findVersions(makeCtx(storage), SEG8)).map((v) => v.key)).toEqual([key]);
    expect((await storage.getBuffer(claimKey(SEG8))).toString()).toBe('{"cla');
  });

  it('a name that holds two contents refuses a re-push of either, even though its own copy is whole', async () => {
    const { storage, src } = await archive();
    const [p0, p1] = await inputs(src, [loadFixture(MAJOR, SEG8), variantOf8(10)]);
    await pushFile(makeCtx(storage), p0!);
    // The state a store without create-only writes (or an older walvault) can leave.
    const elsewhere = await newStorage('memory');
    await pushFile(makeCtx(elsewhere), await writeFixture(await tempDir('e'), MAJOR, SEG7));
    const { key } = await pushFile(makeCtx(elsewhere), p1!);
    await storage.put(key, await elsewhere.getBuffer(key));
    for (const p of [p0!, p1!]) expectWalvault(await rejectionOf(pushFile(makeCtx(storage), p)), ArchiveDuplicateError, ExitCode.conflict);
  });

  it('a push claims before it uploads; history and backup files are claimed, .partial files are not', async () => {
    const { storage, src } = await archive();
    await pushFile(makeCtx(storage), await writeFixture(src, MAJOR, SEG8));
    await pushFile(makeCtx(storage), await writeFixture(src, MAJOR, '00000002.history'));
    await pushFile(makeCtx(storage), await writeFixture(src, MAJOR, '00000001000000000000000B.partial'));
    expect(await keysUnder(storage, 'claims/')).toEqual([
      'claims/history/00000002.history',
      'claims/wal/00000001/0000000100000000/000000010000000000000007',
      'claims/wal/00000001/0000000100000000/000000010000000000000008',
    ]);
    expect(await readClaim(storage, SEG8)).toMatchObject({ name: SEG8, sha256: manifestSha(MAJOR, SEG8), size: 1048576 });
  });

  describe('an existing object of the same content that is not whole', () => {
    const key8 = objectKey({ fileName: SEG8, sha256: manifestSha(MAJOR, SEG8), extension: 'zst', encrypted: false });

    it.each([
      ['truncated to half', (b: Buffer) => b.subarray(0, Math.floor(b.length / 2))],
      ['cut inside its header', (b: Buffer) => b.subarray(0, 20)],
      ['one byte longer', (b: Buffer) => Buffer.concat([b, Buffer.alloc(1)])],
      ['not a walvault object', (b: Buffer) => Buffer.alloc(b.length, 0x41)],
    ])('%s: is kept under errors/ as damaged and replaced; the push reports an upload', async (_what, damage) => {
      const { storage, src } = await archive();
      const p = await writeFixture(src, MAJOR, SEG8);
      await pushFile(makeCtx(storage), p);
      const good = await storage.getBuffer(key8);
      const bad = damage(good);
      await overwrite(storage, key8, bad);
      const res = await pushFile(makeCtx(storage), p);
      expect(res).toMatchObject({ status: 'uploaded', key: key8, storedBytes: good.length });
      expect((await storage.getBuffer(key8)).length).toBe(good.length);
      expect(sha256((await restoreFile(makeCtx(storage), SEG8)).bytes)).toBe(manifestSha(MAJOR, SEG8));
      const kept = await keysUnder(storage, 'errors/');
      expect(kept).toHaveLength(1);
      expect(kept[0]).toMatch(new RegExp(`^errors/${SEG8}-${manifestSha(MAJOR, SEG8)}\\.zst\\.damaged-\\d{8}T\\d{9}Z$`));
      expect((await storage.getBuffer(kept[0]!)).equals(bad)).toBe(true);
      // Whole now: the next push is "already archived" and changes nothing.
      expect((await pushFile(makeCtx(storage), p)).status).toBe('already-archived');
    });

    it('stored under another codec: the new copy is written first, then the damaged one removed', async () => {
      const { storage, src } = await archive();
      const p = await writeFixture(src, MAJOR, SEG8);
      const gz = await pushFile(makeCtx(storage, { compression: { name: 'gzip', level: 1 } }), p);
      const good = await storage.getBuffer(gz.key);
      await overwrite(storage, gz.key, good.subarray(0, good.length - 100));
      const res = await pushFile(makeCtx(storage), p);
      expect(res).toMatchObject({ status: 'uploaded', key: key8 });
      expect((await findVersions(makeCtx(storage), SEG8)).map((v) => v.key)).toEqual([key8]);
      expect(await keysUnder(storage, 'errors/')).toHaveLength(1);
      expect(sha256((await restoreFile(makeCtx(storage), SEG8)).bytes)).toBe(manifestSha(MAJOR, SEG8));
    });
  });
});

/**
 * A store that accepts create-only writes but overwrites anyway (s3rver and some S3-compatible
 * services ignore If-None-Match): every put is delayed a little so that racing pushes interleave.
 */
class OverwritingStorage extends MemoryStorage {
  override async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<void> {
    await new Promise((r) => setTimeout(r, 5));
    const { ifAbsent: _ignored, ...rest } = opts;
    await super.put(key, body, rest);
  }
}

describe('a store that ignores create-only writes', () => {
  it('at most one of several racing pushes of different files answers success', async () => {
    for (let round = 0; round < 10; round++) {
      const storage = new OverwritingStorage();
      const src = await tempDir('src');
      await pushFile(makeCtx(storage), await writeFixture(src, MAJOR, SEG7));
      const contents = [loadFixture(MAJOR, SEG8), variantOf8(10), variantOf8(20)];
      const paths = await Promise.all(
        contents.map(async (bytes, i) => {
          const dir = path.join(src, `in-${i}`);
          await mkdir(dir);
          return writeInput(dir, SEG8, bytes);
        }),
      );
      const { ok, refused } = await settle(paths.map((p) => pushFile(makeCtx(storage), p)));
      expect(ok.length).toBeLessThanOrEqual(1);
      expect(ok.length + refused.length).toBe(3);
      for (const err of refused) expect(err).toBeInstanceOf(ArchiveDuplicateError);
      if (ok.length === 1) {
        const versions = await findVersions(makeCtx(storage), SEG8);
        // The winner's object is there; any other content left behind is for wal-resolve.
        expect(versions.map((v) => v.parts.sha256)).toContain(ok[0]!.sha256);
      }
    }
  });
});
