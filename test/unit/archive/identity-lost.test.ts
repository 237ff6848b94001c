/**
 * An archive that holds WAL but lost its identity record (deleted, or both copies damaged) refuses
 * every push, its own cluster's included, until the identity is restored: otherwise the first
 * segment of *any* cluster would be accepted and a new identity naming it written over an archive
 * full of another cluster's WAL. `rebuildIdentity` restores it from what the objects prove.
 * Real PostgreSQL 15 and 13 WAL (two clusters with different system ids).
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArchiveMismatchError, ExitCode, IdentityLostError, IntegrityError } from '../../../src/common/errors.js';
import { encodeIdentity, readIdentity, type ArchiveIdentity } from '../../../src/archive/identity.js';
import { IDENTITY_COPY_KEY, IDENTITY_KEY } from '../../../src/archive/keys.js';
import { pushFile } from '../../../src/archive/push.js';
import { restoreFile } from '../../../src/restore/fetch.js';
import { rebuildIdentity } from '../../../src/ops/identity-rebuild.js';
import { runAhead } from '../../../src/push/ahead.js';
import type { Storage } from '../../../src/storage/types.js';
import { fixtureManifest } from '../../support/fixtures.js';
import {
  DRIVERS,
  expectWalvault,
  flipByte,
  keysUnder,
  makeCtx,
  newStorage,
  overwrite,
  rejectionOf,
  removeTempDirs,
  snapshot,
  tempDir,
  testKey,
  writeFixture,
} from './support.js';

afterAll(removeTempDirs);

const SEG7 = '000000010000000000000007';
const SEG8 = '000000010000000000000008';
const SEG_A = '00000001000000000000000A';
const HISTORY = '00000002.history';
const BACKUP = '00000001000000000000000A.00000028.backup';
const OURS = fixtureManifest(15);
const FOREIGN = fixtureManifest(13);

describe.each(DRIVERS)('%s storage', (driver) => {
  /** An archive holding PG15's segment 7 (and its identity), plus a directory of input files. */
  async function archived(): Promise<{ storage: Storage; src: string; original: Buffer }> {
    const storage = await newStorage(driver);
    const src = await tempDir('src');
    await pushFile(makeCtx(storage), await writeFixture(src, 15, SEG7));
    return { storage, src, original: await storage.getBuffer(IDENTITY_KEY) };
  }

  function expectLost(err: unknown, heldPrefix = 'wal/'): IdentityLostError {
    const e = expectWalvault(err, IdentityLostError, ExitCode.conflict);
    expect(e.message).toContain(`holds WAL ('${heldPrefix}`);
    expect(e.message).toContain("run 'walvault identity-rebuild'");
    expect(e.message).not.toMatch(/\n/);
    return e;
  }

  describe('identity deleted', () => {
    it("a foreign cluster's segment is refused, nothing written (no identity naming it)", async () => {
      const { storage, src } = await archived();
      await storage.delete([IDENTITY_KEY, IDENTITY_COPY_KEY]);
      const snap = await snapshot(storage);
      const e = expectLost(await rejectionOf(pushFile(makeCtx(storage), await writeFixture(src, 13, SEG8))));
      expect(e.message).toContain(`'${SEG8}'`);
      expect(e.message).toContain('both missing');
      expect(await snapshot(storage)).toEqual(snap);
      expect(await readIdentity(storage)).toBeUndefined();
    });

    it("the archive's own cluster is refused too (the archive cannot tell it apart)", async () => {
      const { storage, src } = await archived();
      await storage.delete([IDENTITY_KEY, IDENTITY_COPY_KEY]);
      const snap = await snapshot(storage);
      expectLost(await rejectionOf(pushFile(makeCtx(storage), await writeFixture(src, 15, SEG8))));
      expect(await snapshot(storage)).toEqual(snap);
    });

    it.each([HISTORY, BACKUP])('%s pushes are refused too', async (name) => {
      const { storage, src } = await archived();
      await storage.delete([IDENTITY_KEY, IDENTITY_COPY_KEY]);
      const snap = await snapshot(storage);
      expectLost(await rejectionOf(pushFile(makeCtx(storage), await writeFixture(src, 15, name))));
      expect(await snapshot(storage)).toEqual(snap);
    });

    it('an archive holding only history objects archived with an identity is not empty', async () => {
      const { storage, src } = await archived();
      await pushFile(makeCtx(storage), await writeFixture(src, 15, HISTORY));
      await storage.delete([...(await keysUnder(storage, 'wal/')), IDENTITY_KEY, IDENTITY_COPY_KEY]);
      const snap = await snapshot(storage);
      expectLost(await rejectionOf(pushFile(makeCtx(storage), await writeFixture(src, 13, SEG8))), 'history/');
      expect(await snapshot(storage)).toEqual(snap);
    });

    it('the look-ahead uploader (and so the daemon) archives nothing and leaves no marker', async () => {
      const { storage, src } = await archived();
      await storage.delete([IDENTITY_KEY, IDENTITY_COPY_KEY]);
      const walDir = await tempDir('pg_wal');
      await mkdir(path.join(walDir, 'archive_status'));
      await writeFixture(walDir, 13, SEG8);
      await writeFile(path.join(walDir, 'archive_status', `${SEG8}.ready`), '');
      const stateDir = await tempDir('state');
      const snap = await snapshot(storage);
      const errors: unknown[] = [];
      const summary = await runAhead(makeCtx(storage), {
        walDir,
        stateDir,
        concurrency: 2,
        maxFiles: 5,
        idleMs: 0,
        pollMs: 10,
        // A fixed, long backoff: with full jitter the retry could fall inside one 10 ms poll and
        // this run would try the file twice.
        retry: { maxAttempts: 5, baseDelayMs: 60_000, maxDelayMs: 60_000, factor: 2, jitter: 'none' },
        onError: (_n, err) => errors.push(err),
      });
      expect(summary).toEqual({ archived: 0, failed: 1 });
      expectLost(errors[0]);
      expect(await snapshot(storage)).toEqual(snap);
      // No marker: only the note that makes the launcher stop waiting and run wal-push itself.
      expect(await readdir(stateDir)).toEqual(['pushed']);
      expect(await readdir(path.join(stateDir, 'pushed'))).toEqual([`${SEG8}.failed`]);
      void src;
    });
  });

  describe('identity unreadable', () => {
    it('both copies damaged and a foreign segment: refused naming both copies, archive untouched', async () => {
      const { storage, src, original } = await archived();
      await overwrite(storage, IDENTITY_KEY, flipByte(original, 30));
      await overwrite(storage, IDENTITY_COPY_KEY, original.subarray(0, 50));
      const snap = await snapshot(storage);
      const e = expectLost(await rejectionOf(pushFile(makeCtx(storage), await writeFixture(src, 13, SEG8))));
      expect(e.message).toContain(`'${IDENTITY_KEY}': `);
      expect(e.message).toContain(`'${IDENTITY_COPY_KEY}': `);
      expect(e.cause).toBeInstanceOf(IntegrityError);
      expect(await snapshot(storage)).toEqual(snap);
    });

    it('one copy damaged, the other missing: refused', async () => {
      const { storage, src, original } = await archived();
      await overwrite(storage, IDENTITY_KEY, flipByte(original, 3));
      await storage.delete([IDENTITY_COPY_KEY]);
      const snap = await snapshot(storage);
      const e = expectLost(await rejectionOf(pushFile(makeCtx(storage), await writeFixture(src, 13, SEG8))));
      expect(e.message).toContain(`'${IDENTITY_COPY_KEY}': missing`);
      expect(await snapshot(storage)).toEqual(snap);
    });

    it.each([IDENTITY_KEY, IDENTITY_COPY_KEY])(
      'only %s damaged: own pushes work and heal it byte for byte, foreign ones are still refused',
      async (damaged) => {
        const { storage, src, original } = await archived();
        await overwrite(storage, damaged, flipByte(original, 40));
        const foreign = await rejectionOf(pushFile(makeCtx(storage), await writeFixture(src, 13, SEG8)));
        expectWalvault(foreign, ArchiveMismatchError, ExitCode.integrity);
        expect((await pushFile(makeCtx(storage), await writeFixture(src, 15, SEG8))).status).toBe('uploaded');
        expect((await storage.getBuffer(IDENTITY_KEY)).equals(original)).toBe(true);
        expect((await storage.getBuffer(IDENTITY_COPY_KEY)).equals(original)).toBe(true);
      },
    );
  });

  describe('a new archive', () => {
    it('takes its identity from the first segment even when a history file was archived first', async () => {
      const storage = await newStorage(driver);
      const src = await tempDir('src');
      await pushFile(makeCtx(storage), await writeFixture(src, 15, HISTORY));
      await pushFile(makeCtx(storage), await writeFixture(src, 15, BACKUP));
      expect(await readIdentity(storage)).toBeUndefined();
      expect((await pushFile(makeCtx(storage), await writeFixture(src, 15, SEG7))).status).toBe('uploaded');
      expect(await readIdentity(storage)).toMatchObject({ systemId: OURS.systemId, pgMajor: 15 });
    });

    it('two clusters pushing first at once: exactly one identity, the other push refused', async () => {
      const storage = await newStorage(driver);
      const src = await tempDir('src');
      const [a, b] = [await writeFixture(src, 15, SEG7), await writeFixture(await tempDir('src13'), 13, SEG8)];
      const results = await Promise.allSettled([pushFile(makeCtx(storage), a), pushFile(makeCtx(storage), b)]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toBeInstanceOf(ArchiveMismatchError);
      const id = await readIdentity(storage);
      expect((await storage.getBuffer(IDENTITY_KEY)).equals(await storage.getBuffer(IDENTITY_COPY_KEY))).toBe(true);
      expect(await keysUnder(storage, 'wal/')).toHaveLength(1);
      const winner = results[0]!.status === 'fulfilled' ? OURS : FOREIGN;
      expect(id?.systemId).toBe(winner.systemId);
    });
  });

  describe('rebuildIdentity', () => {
    it('rebuilds a deleted identity from the objects; pushes work again and foreign WAL is refused', async () => {
      const { storage, src, original } = await archived();
      await pushFile(makeCtx(storage), await writeFixture(src, 15, SEG8));
      await pushFile(makeCtx(storage), await writeFixture(src, 15, HISTORY));
      const before = JSON.parse(original.toString()) as { identity: ArchiveIdentity };
      await storage.delete([IDENTITY_KEY, IDENTITY_COPY_KEY]);

      const snap = await snapshot(storage);
      const dry = await rebuildIdentity(makeCtx(storage), { dryRun: true });
      expect(dry).toMatchObject({ action: 'rebuilt', dryRun: true, written: [IDENTITY_KEY, IDENTITY_COPY_KEY], objectsRead: 3 });
      expect(await snapshot(storage)).toEqual(snap);

      const report = await rebuildIdentity(makeCtx(storage));
      expect(report.identity).toMatchObject({ systemId: OURS.systemId, pgMajor: 15, walSegSize: OURS.walSegSize, formatVersion: 1 });
      // The creation time is the oldest object's: no later than the original record's.
      expect(report.identity!.createdAt <= before.identity.createdAt).toBe(true);
      expect(report.decoded).toMatch(/^wal\/00000001\/0000000100000000\/00000001000000000000000[78]-/);
      expect((await storage.getBuffer(IDENTITY_KEY)).equals(await storage.getBuffer(IDENTITY_COPY_KEY))).toBe(true);
      expect(await readIdentity(storage)).toEqual(report.identity);

      // A second run finds it intact and writes nothing.
      const again = await snapshot(storage);
      expect((await rebuildIdentity(makeCtx(storage))).action).toBe('intact');
      expect(await snapshot(storage)).toEqual(again);

      expect((await pushFile(makeCtx(storage), await writeFixture(src, 15, SEG_A))).status).toBe('uploaded');
      const foreign = await rejectionOf(
        pushFile(makeCtx(storage), await writeFixture(await tempDir('f'), 13, '00000001000000000000000B.partial')),
      );
      expectWalvault(foreign, ArchiveMismatchError, ExitCode.integrity);
      expect((await restoreFile(makeCtx(storage), SEG7)).meta.systemId).toBe(OURS.systemId);
    });

    it('rebuilds from an encrypted archive with the key, and says so without it', async () => {
      const storage = await newStorage(driver);
      const src = await tempDir('src');
      await pushFile(makeCtx(storage, { encryption: testKey(7) }), await writeFixture(src, 15, SEG7));
      await storage.delete([IDENTITY_KEY, IDENTITY_COPY_KEY]);
      const snap = await snapshot(storage);
      await rejectionOf(rebuildIdentity(makeCtx(storage)));
      expect(await snapshot(storage)).toEqual(snap);
      const report = await rebuildIdentity(makeCtx(storage, { encryption: testKey(7) }));
      expect(report.identity).toMatchObject({ systemId: OURS.systemId, pgMajor: 15 });
    });

    it('refuses when the objects come from two clusters, naming both, and writes nothing', async () => {
      const { storage } = await archived();
      // Another cluster's object copied in by hand (the kind of mix-up the identity exists to stop).
      const other = await newStorage('memory');
      await pushFile(makeCtx(other), await writeFixture(await tempDir('f'), 13, SEG8));
      const [foreignKey] = await keysUnder(other, 'wal/');
      await storage.put(foreignKey!, await other.getBuffer(foreignKey!));
      await storage.delete([IDENTITY_KEY, IDENTITY_COPY_KEY]);
      const snap = await snapshot(storage);
      const e = expectWalvault(await rejectionOf(rebuildIdentity(makeCtx(storage))), ArchiveMismatchError, ExitCode.integrity);
      expect(e.message).toContain(`system ${OURS.systemId}`);
      expect(e.message).toContain(`system ${FOREIGN.systemId}`);
      expect(e.message).toContain(foreignKey!);
      expect(await snapshot(storage)).toEqual(snap);
    });

    it.each([IDENTITY_KEY, IDENTITY_COPY_KEY])('repairs a damaged %s from the other copy, byte for byte', async (damaged) => {
      const { storage, original } = await archived();
      await overwrite(storage, damaged, flipByte(original, 12));
      const report = await rebuildIdentity(makeCtx(storage));
      expect(report).toMatchObject({ action: 'repaired', written: [damaged], objectsRead: 0 });
      expect((await storage.getBuffer(damaged)).equals(original)).toBe(true);
    });

    it('two intact copies that disagree: keeps the one the WAL agrees with', async () => {
      const { storage, original } = await archived();
      const good = JSON.parse(original.toString()) as { identity: ArchiveIdentity };
      await storage.put(IDENTITY_COPY_KEY, encodeIdentity({ ...good.identity, systemId: FOREIGN.systemId }));
      await expect(readIdentity(storage)).rejects.toThrow(/disagree/);
      const report = await rebuildIdentity(makeCtx(storage));
      expect(report.action).toBe('rebuilt');
      expect((await storage.getBuffer(IDENTITY_KEY)).equals(original)).toBe(true);
      expect((await storage.getBuffer(IDENTITY_COPY_KEY)).equals(original)).toBe(true);
    });

    it('a damaged record in an archive without WAL: pushes refused pointing at the rebuild, which sets it aside', async () => {
      const storage = await newStorage(driver);
      const src = await tempDir('src');
      const seg = await writeFixture(src, 15, SEG7);
      await pushFile(makeCtx(storage), seg);
      // What a store that acknowledged the first write and lost its end leaves: no WAL, a torn record, no copy.
      await storage.delete(await keysUnder(storage, 'wal/'));
      await storage.delete(await keysUnder(storage, 'claims/'));
      const torn = (await storage.getBuffer(IDENTITY_KEY)).subarray(0, 40);
      await overwrite(storage, IDENTITY_KEY, torn);
      await storage.delete([IDENTITY_COPY_KEY]);
      const refused = expectWalvault(await rejectionOf(pushFile(makeCtx(storage), seg)), IntegrityError, ExitCode.integrity);
      expect(refused.message).toContain("the archive holds no WAL; nothing was written. Run 'walvault identity-rebuild'");
      expect(refused.message).not.toMatch(/\n/);

      const dry = await rebuildIdentity(makeCtx(storage), { dryRun: true });
      expect(dry.action).toBe('cleared');
      expect((await storage.getBuffer(IDENTITY_KEY)).equals(torn)).toBe(true);

      const cleared = await rebuildIdentity(makeCtx(storage));
      expect(cleared.action).toBe('cleared');
      expect(cleared.identity).toBeNull();
      expect(cleared.setAside).toHaveLength(1);
      expect((await storage.getBuffer(cleared.setAside[0]!)).equals(torn)).toBe(true);
      expect(await storage.head(IDENTITY_KEY)).toBeUndefined();

      await pushFile(makeCtx(storage), seg);
      expect((await readIdentity(storage))?.pgMajor).toBe(15);
    });

    it('an archive with no segment has nothing to rebuild from', async () => {
      const storage = await newStorage(driver);
      await pushFile(makeCtx(storage), await writeFixture(await tempDir('src'), 15, HISTORY));
      expectWalvault(await rejectionOf(rebuildIdentity(makeCtx(storage))), IdentityLostError, ExitCode.conflict);
    });
  });
});
