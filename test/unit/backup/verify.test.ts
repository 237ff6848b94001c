/**
 * backup-verify over an archive of real PostgreSQL 15 WAL (fixtures: timeline 1 segments 7, 8 and
 * A; 9 was never there) and fixture backups written from memory: every problem class it must name.
 */
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { pushFile } from '../../../src/archive/push.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { packKey } from '../../../src/backup/layout.js';
import { verifyBackups } from '../../../src/ops/backup-verify.js';
import { renderBackupVerify } from '../../../src/cli/render/backups.js';
import { UnknownBackupError } from '../../../src/backup/inventory.js';
import type { BackupRecord } from '../../../src/backup/record.js';
import { fixtureManifest } from '../../support/fixtures.js';
import { writeFixtureBackup, type FixtureFile } from '../../support/backup-fixture.js';
import { makeCtx, removeTempDirs, tempDir, writeFixture } from '../archive/support.js';

const MAJOR = 15;
const wal = fixtureManifest(MAJOR);
afterAll(removeTempDirs);

const NAME = '20261201T100000F';
const big = Buffer.alloc(2500, 7);
const files: FixtureFile[] = [
  { path: 'backup_label', content: Buffer.from('START WAL LOCATION: 0/700028 (file 000000010000000000000007)\n') },
  { path: 'base', type: 'dir' },
  { path: 'base/1/1', content: big },
  { path: 'PG_VERSION', content: Buffer.from('15\n') },
  { path: 'PG_16390_x/1/2', tablespace: 16390, content: Buffer.from('tablespace bytes') },
  { path: 'empty', content: Buffer.alloc(0) },
];
const record: Partial<BackupRecord> = {
  systemId: wal.systemId,
  pgVersionNum: 150018,
  walSegSize: wal.walSegSize,
  startLsn: '0/700028',
  endLsn: '0/800100',
  walFirst: '000000010000000000000007',
  walLast: '000000010000000000000008',
};

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A backup_manifest as PostgreSQL lays it out, with its Manifest-Checksum. */
function pgManifest(entries: Array<{ path: string; size: number; checksum: string }>, startLsn = '0/700028', endLsn = '0/800100'): Buffer {
  const lines = ['{ "PostgreSQL-Backup-Manifest-Version": 1,', '"Files": ['];
  entries.forEach((e, i) => {
    const comma = i < entries.length - 1 ? ',' : '';
    lines.push(
      `{ "Path": ${JSON.stringify(e.path)}, "Size": ${e.size}, "Last-Modified": "2026-12-01 10:00:00 GMT", "Checksum-Algorithm": "SHA256", "Checksum": "${e.checksum}" }${comma}`,
    );
  });
  lines.push('],', '"WAL-Ranges": [', `{ "Timeline": 1, "Start-LSN": "${startLsn}", "End-LSN": "${endLsn}" }`, '],');
  const body = `${lines.join('\n')}\n`;
  return Buffer.from(`${body}"Manifest-Checksum": "${sha(body)}"}\n`);
}

const manifestOf = (fs: FixtureFile[]): Array<{ path: string; size: number; checksum: string }> =>
  fs
    .filter((f) => (f.type ?? 'file') === 'file')
    .map((f) => ({
      path: f.tablespace ? `pg_tblspc/${f.tablespace}/${f.path}` : f.path,
      size: f.content!.length,
      checksum: sha(f.content!),
    }));

async function archive(): Promise<ArchiveContext> {
  const ctx = makeCtx(new MemoryStorage());
  const src = await tempDir('bv-src');
  for (const f of wal.files) await pushFile(ctx, await writeFixture(src, MAJOR, f.name));
  return { ...ctx, identity: undefined } as ArchiveContext;
}

async function withBackup(overrides: { manifest?: Buffer; record?: Partial<BackupRecord> } = {}): Promise<ArchiveContext> {
  const ctx = await archive();
  await writeFixtureBackup(ctx, {
    name: NAME,
    files,
    packSize: 1000,
    manifest: overrides.manifest ?? pgManifest(manifestOf(files)),
    record: { ...record, ...overrides.record },
  });
  return ctx;
}

async function problemsOf(ctx: ArchiveContext): Promise<readonly string[]> {
  const r = await verifyBackups(ctx, { name: NAME });
  return r.backups[0]!.problems;
}

describe('backup-verify', () => {
  it('passes an intact backup: every pack read, every file hashed, the manifest matched, the WAL chained', async () => {
    const ctx = await withBackup();
    const r = await verifyBackups(ctx, { name: NAME });
    expect(r.backups).toHaveLength(1);
    const b = r.backups[0]!;
    expect(b.problems).toEqual([]);
    // 61 + 2500 + 3 + 16 bytes in packs of 1000: 3 packs; 5 files (one empty).
    expect(b).toMatchObject({ packs: 3, files: 5, manifestFiles: 5, walSegments: 2, bytesRead: 2580 });
    expect(renderBackupVerify(r)).toMatch(/\nOK: no problems found/);
  });

  it('names the pack and the files lost when one byte of a pack is flipped', async () => {
    const ctx = await withBackup();
    const key = packKey(NAME, 2);
    const bytes = Buffer.from(await ctx.storage.getBuffer(key));
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
    await ctx.storage.put(key, bytes);
    const problems = await problemsOf(ctx);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^pack 2: unable to [a-z]+ (backup )?object '${key}': .*; 1 file lost: 'base/1/1'$`));
  });

  it('names a missing pack and every file with bytes in it', async () => {
    const ctx = await withBackup();
    await ctx.storage.delete([packKey(NAME, 3)]);
    expect(await problemsOf(ctx)).toEqual([
      `pack 3 ('${packKey(NAME, 3)}') is missing from the archive; 3 files lost: 'base/1/1', 'PG_VERSION', 'pg_tblspc/16390/PG_16390_x/1/2'`,
    ]);
  });

  it('names missing WAL between walFirst and walLast', async () => {
    const ctx = await withBackup({
      manifest: pgManifest(manifestOf(files), '0/800028', '0/A00100'),
      record: { startLsn: '0/800028', endLsn: '0/A00100', walFirst: '000000010000000000000008', walLast: '00000001000000000000000A' },
    });
    expect(await problemsOf(ctx)).toEqual([
      'WAL: 000000010000000000000009 is missing from the archive (needed from 000000010000000000000008 to 00000001000000000000000A)',
    ]);
  });

  it('holds the catalog against PostgreSQL manifest: sizes, checksums, files on either side only', async () => {
    const m = manifestOf(files).filter((e) => e.path !== 'PG_VERSION');
    m[0] = { ...m[0]!, checksum: sha('something else') };
    m[1] = { ...m[1]!, size: 2501 };
    m.push({ path: 'global/pg_control', size: 8192, checksum: sha('x') });
    const ctx = await withBackup({ manifest: pgManifest(m, '0/700028', '0/800200') });
    expect(await problemsOf(ctx)).toEqual([
      `manifest: 'backup_label': PostgreSQL's SHA-256 is ${sha('something else')}, the catalog's ${sha(files[0]!.content!)}`,
      "manifest: 'base/1/1' has 2501 bytes in PostgreSQL's manifest, 2500 in the catalog",
      "manifest: 'global/pg_control' (8192 bytes) is not in the backup's catalog",
      "catalog: 'PG_VERSION' is not in PostgreSQL's manifest",
      "manifest: its WAL range on timeline 1 does not end at 0/800100 (backup.json's end LSN)",
    ]);
  });

  it('reports a damaged manifest, a record that disagrees with its catalog, and an unknown name', async () => {
    const bad = pgManifest(manifestOf(files));
    bad[10] = 0x20;
    const ctx = await withBackup({ manifest: bad, record: { files: 9 } });
    const problems = await problemsOf(ctx);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(
      /^manifest: unable to read backup manifest 'backups\/20261201T100000F\/backup_manifest': manifest checksum mismatch/,
    );
    expect(problems[1]).toBe('catalog: it holds 5 files, backup.json says 9');
    await expect(verifyBackups(ctx, { name: '20261201T100001F' })).rejects.toBeInstanceOf(UnknownBackupError);
  });

  it('with --all verifies complete backups and skips unfinished ones, saying so', async () => {
    const ctx = await withBackup();
    await writeFixtureBackup(ctx, { name: '20261201T110000F', files, incomplete: true });
    const r = await verifyBackups(ctx, { all: true });
    expect(r.backups.map((b) => b.name)).toEqual([NAME]);
    expect(r.skipped).toEqual(['20261201T110000F: running']);
  });
});

describe('backup-verify of an incremental chain', () => {
  const I1 = '20261201T110000I';
  const I2 = '20261201T120000I';
  /** A block whose bytes say which version it is. */
  const blk = (tag: number): Buffer => Buffer.alloc(8192, tag);
  async function chain(): Promise<ArchiveContext> {
    const ctx = await archive();
    await writeFixtureBackup(ctx, {
      name: NAME,
      packSize: 3000,
      record,
      files: [...files, { path: 'base/1/16384', content: Buffer.concat([blk(1), blk(2)]) }],
    });
    const { incrementalFileBytes } = await import('../../support/backup-fixture.js');
    await writeFixtureBackup(ctx, {
      name: I1,
      parent: NAME,
      packSize: 3000,
      record: { ...record, endLsn: '0/800200' },
      files: [
        files[0]!,
        files[1]!,
        { path: 'base/1/1', ref: NAME },
        { path: 'PG_VERSION', content: Buffer.from('15\n') },
        { path: 'base/1/INCREMENTAL.16384', incremental: true, content: incrementalFileBytes(2, [[1, blk(3)]]) },
      ],
    });
    await writeFixtureBackup(ctx, {
      name: I2,
      parent: I1,
      record: { ...record, endLsn: '0/800300' },
      files: [
        files[0]!,
        files[1]!,
        { path: 'base/1/1', ref: I1 },
        { path: 'PG_VERSION', ref: I1 },
        { path: 'base/1/INCREMENTAL.16384', incremental: true, content: incrementalFileBytes(3, [[2, blk(4)]]) },
      ],
    });
    return ctx;
  }

  it('verifies every backup of the chain, the referenced files and the rebuild plan', async () => {
    const ctx = await chain();
    const r = await verifyBackups(ctx, { name: I2 });
    expect(r.backups.map((b) => [b.name, b.problems])).toEqual([
      [I2, []],
      [I1, []],
      [NAME, []],
    ]);
    // Its own two files and the two it references.
    expect(r.backups[0]!.files).toBe(4);
  });

  it("names a flipped byte in the full backup's pack from the grandchild's verify", async () => {
    const ctx = await chain();
    // Pack 1 of the full backup: backup_label and the start of base/1/1, which I2 references.
    const key = packKey(NAME, 1);
    const stored = await ctx.storage.getBuffer(key);
    stored[stored.length - 5]! ^= 0x01;
    await ctx.storage.put(key, stored);
    const r = await verifyBackups(ctx, { name: I2 });
    const mine = r.backups[0]!.problems.join('\n');
    expect(mine).toMatch(new RegExp(`file 'base/1/1' \\(bytes in earlier backups\\): .*backups/${NAME}/packs/000000001`));
    expect(r.backups.find((b) => b.name === NAME)!.problems.join('\n')).toMatch(/pack 1: .*lost: 'backup_label', 'base\/1\/1'/);
  });

  it("names a parent's damaged backup.json by its key, verifying it by name and with --all", async () => {
    const ctx = await chain();
    const { recordKey } = await import('../../../src/backup/layout.js');
    const key = recordKey(I1);
    const stored = await ctx.storage.getBuffer(key);
    stored[Math.floor(stored.length / 2)]! ^= 0x01;
    await ctx.storage.put(key, stored);
    for (const target of [{ name: I2 }, { all: true as const }]) {
      const r = await verifyBackups(ctx, target);
      const byName = new Map(r.backups.map((b) => [b.name, b.problems]));
      expect(byName.get(I2)!.join('\n'), JSON.stringify(target)).toMatch(
        new RegExp(`^chain: unable to use backup '${I2}': it builds on backup '${I1}', whose record is damaged: .*'${key}'`, 'm'),
      );
      expect(byName.get(I1), JSON.stringify(target)).toEqual([
        expect.stringMatching(new RegExp(`^not a complete backup: damaged: .*'${key}'`)),
      ]);
      expect(renderBackupVerify(r)).toContain(`${I1}: not a complete backup: damaged: `);
    }
  });

  it('names a missing parent and an INCREMENTAL header that does not parse', async () => {
    const ctx = await chain();
    const { recordKey } = await import('../../../src/backup/layout.js');
    await ctx.storage.delete([recordKey(I1)]);
    const r = await verifyBackups(ctx, { name: I2 });
    expect(r.backups[0]!.problems).toContain(
      `chain: unable to use backup '${I2}': it builds on backup '${I1}', which is not a complete backup in the archive`,
    );

    const bad = await archive();
    await writeFixtureBackup(bad, { name: NAME, record, files: [...files, { path: 'base/1/16384', content: blk(1) }] });
    const { incrementalFileBytes } = await import('../../support/backup-fixture.js');
    const broken = incrementalFileBytes(1, [[0, blk(3)]]);
    broken.writeUInt32LE(200_000, 12); // block number beyond a segment
    await writeFixtureBackup(bad, {
      name: I1,
      parent: NAME,
      record: { ...record, endLsn: '0/800200' },
      files: [files[0]!, files[1]!, { path: 'base/1/INCREMENTAL.16384', incremental: true, content: broken }],
    });
    const problems = (await verifyBackups(bad, { name: I1 })).backups[0]!.problems.join('\n');
    expect(problems).toMatch(
      /file 'base\/1\/INCREMENTAL.16384': unable to read incremental file 'base\/1\/INCREMENTAL.16384': block number 200000 is beyond a segment/,
    );
    expect(problems).toMatch(
      /^chain: unable to restore file 'base\/1\/INCREMENTAL.16384' of backup '20261201T110000I': .*block number 200000/m,
    );
  });
});
