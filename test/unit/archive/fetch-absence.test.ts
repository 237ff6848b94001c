/**
 * "Not in the archive" is the one answer wal-fetch turns into exit 1, which ends a recovery. It must
 * come only from an archive that proves it is one: not from an empty directory (a volume that is
 * not mounted), not from another cluster's archive.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fetchFile } from '../../../src/restore/fetch.js';
import { IDENTITY_COPY_KEY, IDENTITY_KEY } from '../../../src/archive/keys.js';
import { pushFile } from '../../../src/archive/push.js';
import {
  ArchiveMismatchError,
  ExitCode,
  IntegrityError,
  NotFoundError,
  NotInArchiveError,
  StorageError,
} from '../../../src/common/errors.js';
import { fixtureManifest } from '../../support/fixtures.js';
import { DRIVERS, dirEntries, expectWalvault, makeCtx, newStorage, rejectionOf, removeTempDirs, tempDir, writeFixture } from './support.js';

const SEG = '000000010000000000000008';
const MISSING = '000000010000000000000009';

afterAll(removeTempDirs);

describe.each(DRIVERS)('fetch of a missing file (%s)', (driver) => {
  async function archiveWithOneSegment() {
    const ctx = makeCtx(await newStorage(driver));
    await pushFile(ctx, await writeFixture(await tempDir('in'), 15, SEG));
    return ctx;
  }

  it('from an empty storage (no identity record) is a storage failure, not "not found"', async () => {
    const dest = await tempDir('dest');
    const err = await rejectionOf(fetchFile(makeCtx(await newStorage(driver)), MISSING, path.join(dest, 'RECOVERYXLOG')));
    expectWalvault(err, StorageError, ExitCode.failure);
    expect(err).not.toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toMatch(/holds no archive identity record, so it is not an archive/);
    expect(await dirEntries(dest)).toEqual([]);
  });

  it('from an archive with its identity is NotInArchiveError', async () => {
    const ctx = await archiveWithOneSegment();
    const err = await rejectionOf(fetchFile(makeCtx(ctx.storage), MISSING, path.join(await tempDir('dest'), 'x')));
    expectWalvault(err, NotInArchiveError, ExitCode.notFound);
  });

  it('from the archive of another cluster is ArchiveMismatchError, not "not found"', async () => {
    const ctx = await archiveWithOneSegment();
    const other = fixtureManifest(13).systemId;
    const err = await rejectionOf(
      fetchFile(makeCtx(ctx.storage), MISSING, path.join(await tempDir('dest'), 'x'), { expectedSystemId: other }),
    );
    expectWalvault(err, ArchiveMismatchError, ExitCode.integrity);
    expect((err as Error).message).toContain(`this cluster is ${other}`);
  });

  it('with one identity copy left is still a proven absence', async () => {
    const ctx = await archiveWithOneSegment();
    await ctx.storage.delete([IDENTITY_COPY_KEY]);
    const err = await rejectionOf(fetchFile(makeCtx(ctx.storage), MISSING, path.join(await tempDir('dest'), 'x')));
    expect(err).toBeInstanceOf(NotInArchiveError);
  });

  it('with both identity copies damaged is an integrity failure', async () => {
    const ctx = await archiveWithOneSegment();
    await ctx.storage.put(IDENTITY_KEY, Buffer.from('{"identity":{}}\n'));
    await ctx.storage.put(IDENTITY_COPY_KEY, Buffer.from('garbage'));
    const err = await rejectionOf(fetchFile(makeCtx(ctx.storage), MISSING, path.join(await tempDir('dest'), 'x')));
    expectWalvault(err, IntegrityError, ExitCode.integrity);
  });
});
