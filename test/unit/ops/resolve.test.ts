/**
 * Two contents under one name (what archives written before claims, or stores that ignore
 * create-only writes, can hold), on real PostgreSQL 15 WAL: wal-verify names the name, wal-resolve
 * keeps the version that chains with its neighbours or the one the operator names and moves the
 * other to errors/, retention deletes claims with their data, and a claim without data is a note.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readClaim } from '../../../src/archive/claim.js';
import { restoreFile } from '../../../src/restore/fetch.js';
import { findVersions } from '../../../src/archive/versions.js';
import { claimKey, errorKey, objectKey } from '../../../src/archive/keys.js';
import { pushFile } from '../../../src/archive/push.js';
import { ArchiveDuplicateError, ConfigError, ExitCode, UsageError } from '../../../src/common/errors.js';
import { executeWalDelete, planWalDelete } from '../../../src/ops/delete.js';
import { loadInventory } from '../../../src/archive/catalog/inventory.js';
import { conflictingNames, executeResolve, planResolve } from '../../../src/ops/resolve.js';
import { verifyArchive } from '../../../src/ops/verify.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import type { Storage } from '../../../src/storage/types.js';
import { loadFixture } from '../../support/fixtures.js';
import {
  expectWalvault,
  keysUnder,
  makeCtx,
  manifestSha,
  rejectionOf,
  removeTempDirs,
  sha256,
  snapshot,
  tempDir,
  testKey,
  writeFixture,
  writeInput,
} from '../archive/support.js';

afterAll(removeTempDirs);

const SEG7 = '000000010000000000000007';
const SEG8 = '000000010000000000000008';

/**
 * Segment 8 as a server that diverged would have written it: its first record points back to
 * another LSN than segment 7's last record (xl_prev is bytes 8..15 of the record at offset 40).
 */
function divergent8(): Buffer {
  const b = loadFixture(15, SEG8);
  b.writeBigUInt64LE(b.readBigUInt64LE(48) - 0x100n, 48);
  return b;
}

/** Segment 8 with one byte of record data changed: chains exactly like the original. */
function altered8(): Buffer {
  const b = loadFixture(15, SEG8);
  b[10 * 8192 + 4000] = (b[10 * 8192 + 4000] as number) ^ 0x01;
  return b;
}

/** An archive holding 7 and 8, plus `other` as a second version of 8 stored beside it (no claim). */
async function twoVersions(other: Buffer): Promise<{ storage: Storage; otherKey: string }> {
  const storage = new MemoryStorage();
  const src = await tempDir('src');
  await pushFile(makeCtx(storage), await writeFixture(src, 15, SEG7));
  await pushFile(makeCtx(storage), await writeFixture(src, 15, SEG8));
  const elsewhere = new MemoryStorage();
  await pushFile(makeCtx(elsewhere), await writeFixture(src, 15, SEG7));
  const { key } = await pushFile(makeCtx(elsewhere), await writeInput(await tempDir('other'), SEG8, other));
  await storage.put(key, await elsewhere.getBuffer(key));
  return { storage, otherKey: key };
}

const realKey8 = objectKey({ fileName: SEG8, sha256: manifestSha(15, SEG8), extension: 'zst', encrypted: false });

describe('two contents under one name', () => {
  it('wal-verify names the name and both objects, and points at wal-resolve', async () => {
    const { storage, otherKey } = await twoVersions(altered8());
    const report = await verifyArchive(makeCtx(storage));
    const dup = report.problems.filter((p) => p.kind === 'duplicate');
    expect(dup).toHaveLength(1);
    expect(dup[0]).toMatchObject({ subject: SEG8, timeline: 1 });
    expect(dup[0]!.message).toContain(realKey8);
    expect(dup[0]!.message).toContain(otherKey);
    expect(dup[0]!.message).toContain(`wal-resolve ${SEG8}`);
    expect(conflictingNames((await loadInventory(makeCtx(storage))).entries)).toEqual([SEG8]);
  });

  it('auto: keeps the version that chains with segment 7, moves the other to errors/, rewrites the claim', async () => {
    const { storage, otherKey } = await twoVersions(divergent8());
    const ctx = makeCtx(storage);
    const plan = await planResolve(ctx, await loadInventory(ctx), SEG8);
    expect(plan.keep).toBe(manifestSha(15, SEG8));
    expect(plan.reason).toMatch(/chains with its neighbours \(continues 000000010000000000000007\)/);
    expect(plan.remove).toEqual([otherKey]);
    const rejected = plan.candidates.find((c) => c.sha256 === sha256(divergent8()))!;
    expect(rejected.breaks[0]).toMatch(/^000000010000000000000007: its first record points back to/);

    const before = await snapshot(storage);
    const outcome = await executeResolve(ctx, plan);
    expect(outcome.moved).toEqual([
      { from: otherKey, to: errorKey({ fileName: SEG8, sha256: sha256(divergent8()), extension: 'zst', encrypted: false }) },
    ]);
    expect((await findVersions(ctx, SEG8)).map((v) => v.key)).toEqual([realKey8]);
    expect(sha256(await storage.getBuffer(outcome.moved[0]!.to))).toBe(before.get(otherKey));
    expect((await readClaim(storage, SEG8))?.sha256).toBe(manifestSha(15, SEG8));
    expect(sha256((await restoreFile(ctx, SEG8)).bytes)).toBe(manifestSha(15, SEG8));
    expect((await verifyArchive(ctx)).problems).toEqual([]);
  });

  it('auto refuses when both versions chain (exit 4); --keep chooses, by sha256 prefix or key', async () => {
    const { storage, otherKey } = await twoVersions(altered8());
    const ctx = makeCtx(storage);
    const inv = await loadInventory(ctx);
    const err = await rejectionOf(planResolve(ctx, inv, SEG8));
    expect(expectWalvault(err, ArchiveDuplicateError, ExitCode.conflict).message).toMatch(/2 versions chain .* --keep/);
    expectWalvault(await rejectionOf(planResolve(ctx, inv, SEG8, { keep: 'abc' })), UsageError, ExitCode.usage);

    const otherSha = sha256(altered8());
    const byKey = await planResolve(ctx, inv, SEG8, { keep: otherKey });
    expect(byKey.keep).toBe(otherSha);
    const plan = await planResolve(ctx, inv, SEG8, { keep: otherSha.slice(0, 12) });
    expect(plan).toMatchObject({ keep: otherSha, reason: 'named by the operator', remove: [realKey8], claimChange: true });
    await executeResolve(ctx, plan);
    expect(sha256((await restoreFile(ctx, SEG8)).bytes)).toBe(otherSha);
    expect((await readClaim(storage, SEG8))?.sha256).toBe(otherSha);
    // The operator's choice holds from now on: a push of the other content is refused.
    const again = await rejectionOf(pushFile(ctx, await writeFixture(await tempDir('again'), 15, SEG8)));
    expectWalvault(again, ArchiveDuplicateError, ExitCode.conflict);
  });

  it('a version that is not intact is never kept, and the intact one is kept without chaining evidence', async () => {
    const { storage, otherKey } = await twoVersions(altered8());
    const raw = await storage.getBuffer(otherKey);
    await storage.put(otherKey, raw.subarray(0, raw.length - 50));
    const ctx = makeCtx(storage);
    const inv = await loadInventory(ctx);
    const plan = await planResolve(ctx, inv, SEG8);
    expect(plan).toMatchObject({ keep: manifestSha(15, SEG8), reason: 'the only intact version of this cluster', remove: [otherKey] });
    expectWalvault(await rejectionOf(planResolve(ctx, inv, SEG8, { keep: otherKey })), UsageError, ExitCode.usage);
  });
});

describe('an encrypted archive', () => {
  it('wal-resolve needs the key (exit 2) and with it chooses as usual', async () => {
    const key = testKey(7);
    const storage = new MemoryStorage();
    const src = await tempDir('src');
    await pushFile(makeCtx(storage, { encryption: key }), await writeFixture(src, 15, SEG7));
    await pushFile(makeCtx(storage, { encryption: key }), await writeFixture(src, 15, SEG8));
    const elsewhere = new MemoryStorage();
    await pushFile(makeCtx(elsewhere, { encryption: key }), await writeFixture(src, 15, SEG7));
    const other = await pushFile(makeCtx(elsewhere, { encryption: key }), await writeInput(await tempDir('o'), SEG8, divergent8()));
    await storage.put(other.key, await elsewhere.getBuffer(other.key));
    const plain = makeCtx(storage);
    expectWalvault(await rejectionOf(planResolve(plain, await loadInventory(plain), SEG8)), ConfigError, ExitCode.usage);
    const keyed = makeCtx(storage, { encryption: key });
    const plan = await planResolve(keyed, await loadInventory(keyed), SEG8);
    expect(plan).toMatchObject({ keep: manifestSha(15, SEG8), remove: [other.key] });
  });
});

describe('claims', () => {
  it('a claim without data is a note in wal-verify, not a problem; wal-resolve removes it', async () => {
    const storage = new MemoryStorage();
    const src = await tempDir('src');
    await pushFile(makeCtx(storage), await writeFixture(src, 15, SEG7));
    const { claimName, newClaim } = await import('../../../src/archive/claim.js');
    await claimName(storage, newClaim(SEG8, sha256(altered8()), 1048576, 'test'));
    const ctx = makeCtx(storage);
    const report = await verifyArchive(ctx);
    expect(report.problems).toEqual([]);
    expect(report.notes).toContain(
      `'${SEG8}' is claimed but not archived (an unfinished push; retrying it completes it, 'walvault wal-resolve ${SEG8}' removes the claim)`,
    );
    const plan = await planResolve(ctx, await loadInventory(ctx), SEG8);
    expect(plan).toMatchObject({ keep: null, claimChange: true });
    await executeResolve(ctx, plan);
    expect(await storage.head(claimKey(SEG8))).toBeUndefined();
    expect((await pushFile(ctx, await writeFixture(src, 15, SEG8))).status).toBe('uploaded');
  });

  it('wal-delete deletes the claims of the WAL it deletes, and only those', async () => {
    const storage = new MemoryStorage();
    const src = await tempDir('src');
    for (const n of [SEG7, SEG8, '00000001000000000000000A']) await pushFile(makeCtx(storage), await writeFixture(src, 15, n));
    const ctx = makeCtx(storage);
    const plan = await planWalDelete(ctx, '00000001000000000000000A');
    await executeWalDelete(ctx, plan.plan);
    expect(await keysUnder(storage, 'claims/')).toEqual([claimKey('00000001000000000000000A')]);
  });
});
