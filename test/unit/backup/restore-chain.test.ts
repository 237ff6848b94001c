/**
 * Restore of incremental chains against the memory fixture: a full backup, an incremental one on
 * it and one on that (INCREMENTAL files in PostgreSQL 17's format, files stored by reference to an
 * earlier backup's packs), each restored to exactly the files of its own point; damage anywhere in
 * the chain and a missing parent fail naming the backup and file, leaving the directory not
 * startable.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { catalogKey, packKey, recordKey } from '../../../src/backup/layout.js';
import { parseTarget } from '../../../src/backup/restore/plan.js';
import { runRestore, type RestoreOptions } from '../../../src/backup/restore/restore.js';
import { INCOMPLETE_MARKER } from '../../../src/backup/restore/target-dir.js';
import { silentLogger } from '../../../src/common/log.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { failure, incrementalFileBytes, type FixtureFile, writeFixtureBackup } from '../../support/backup-fixture.js';

const F = '20261201T100000F';
const I1 = '20261201T110000I';
const I2 = '20261201T120000I';
const B = 8192;

/** A block whose every byte says which version it is (tag) and where it was (block number). */
function blk(tag: number, n: number): Buffer {
  const b = Buffer.alloc(B, tag);
  b.writeUInt32LE(n, 0);
  return b;
}
const cat = (...bs: Buffer[]): Buffer => Buffer.concat(bs);

const label = (lsn: string, incremental: boolean): Buffer =>
  Buffer.from(
    `START WAL LOCATION: ${lsn} (file 000000010000000000000002)\nCHECKPOINT LOCATION: ${lsn}\n` +
      (incremental ? 'INCREMENTAL FROM LSN: 0/2000028\nINCREMENTAL FROM TLI: 1\n' : '') +
      'BACKUP METHOD: streamed\nSTART TIMELINE: 1\n',
  );
const dirs: FixtureFile[] = [
  { path: 'global', type: 'dir' },
  { path: 'base', type: 'dir' },
  { path: 'base/5', type: 'dir' },
  { path: 'pg_wal', type: 'dir' },
];
const big = Buffer.from(Array.from({ length: 40_000 }, (_, i) => (i * 13) % 251));
const control = (tag: number): FixtureFile => ({ path: 'global/pg_control', content: Buffer.alloc(B, tag) });

// What each backup's point holds, written out by hand: the expected trees.
const atF: Record<string, Buffer> = {
  PG_VERSION: Buffer.from('17\n'),
  'base/5/16384': cat(blk(0xa0, 0), blk(0xa0, 1), blk(0xa0, 2)),
  'base/5/16390': cat(blk(0xd0, 0), blk(0xd0, 1)),
  'base/5/gone': blk(0xe0, 0),
  'base/5/big': big,
};
const atI1: Record<string, Buffer> = {
  PG_VERSION: Buffer.from('17\n'),
  'base/5/16384': cat(blk(0xa0, 0), blk(0xb1, 1), blk(0xa0, 2)),
  'base/5/16390': atF['base/5/16390']!,
  'base/5/16400': cat(blk(0xf0, 0), blk(0xf0, 1)),
  'base/5/big': big,
};
const atI2: Record<string, Buffer> = {
  PG_VERSION: Buffer.from('17\n'),
  // Block 3 added by the second increment; 1 from the first, 0 and 2 from the full backup.
  'base/5/16384': cat(blk(0xa0, 0), blk(0xb1, 1), blk(0xa0, 2), blk(0xc3, 3)),
  // Truncated to one block, which changed.
  'base/5/16390': blk(0xd9, 0),
  // Truncated to one block, unchanged: from the first increment's whole copy.
  'base/5/16400': blk(0xf0, 0),
  // Grown far beyond the parents with a hole: blocks 1-4 zeros (no backup holds them), 5 new.
  'base/5/16500': cat(blk(0x11, 0), Buffer.alloc(4 * B), blk(0x15, 5)),
  'base/5/big': big,
};

async function writeChain(ctx: ArchiveContext): Promise<void> {
  await writeFixtureBackup(ctx, {
    name: F,
    packSize: 5000,
    files: [
      { path: 'backup_label', content: label('0/2000028', false) },
      ...dirs,
      ...Object.entries(atF).map(([path, content]) => ({ path, content })),
      control(1),
    ],
  });
  await writeFixtureBackup(ctx, {
    name: I1,
    parent: F,
    packSize: 7000,
    record: { endLsn: '0/3000138', stopTime: '2026-12-01T11:00:05.000Z', backupLabel: label('0/3000028', true).toString() },
    files: [
      { path: 'backup_label', content: label('0/3000028', true) },
      ...dirs,
      { path: 'PG_VERSION', ref: F },
      { path: 'base/5/INCREMENTAL.16384', incremental: true, content: incrementalFileBytes(3, [[1, blk(0xb1, 1)]]) },
      { path: 'base/5/INCREMENTAL.16390', incremental: true, content: incrementalFileBytes(2, []) },
      { path: 'base/5/16400', content: atI1['base/5/16400']! },
      { path: 'base/5/big', ref: F },
      control(2),
    ],
  });
  await writeFixtureBackup(ctx, {
    name: I2,
    parent: I1,
    packSize: 6000,
    record: { endLsn: '0/4000138', stopTime: '2026-12-01T12:00:05.000Z', backupLabel: label('0/4000028', true).toString() },
    files: [
      { path: 'backup_label', content: label('0/4000028', true) },
      ...dirs,
      { path: 'PG_VERSION', ref: I1 },
      { path: 'base/5/INCREMENTAL.16384', incremental: true, content: incrementalFileBytes(3, [[3, blk(0xc3, 3)]]) },
      { path: 'base/5/INCREMENTAL.16390', incremental: true, content: incrementalFileBytes(1, [[0, blk(0xd9, 0)]]) },
      { path: 'base/5/INCREMENTAL.16400', incremental: true, content: incrementalFileBytes(1, []) },
      { path: 'base/5/16500', content: atI2['base/5/16500']! },
      { path: 'base/5/big', ref: I1 },
      control(3),
    ],
  });
}

function files(root: string, rel = ''): string[] {
  return readdirSync(join(root, rel), { withFileTypes: true }).flatMap((d) => {
    const r = rel === '' ? d.name : `${rel}/${d.name}`;
    return d.isDirectory() ? files(root, r) : [r];
  });
}

describe('restore of an incremental chain', () => {
  let work: string;
  let ctx: ArchiveContext;
  const opts = (pgdata: string, backup: string, more: Partial<RestoreOptions> = {}): RestoreOptions => ({
    pgdata,
    backup,
    target: parseTarget({ target: 'immediate' }),
    tablespaceMap: new Map(),
    delta: false,
    parallel: 3,
    bufferBytes: 4096,
    archiveSettings: { archive: 'file:///srv/archive' },
    node: '/usr/bin/node',
    ...more,
  });
  beforeEach(async () => {
    work = mkdtempSync(join(tmpdir(), 'walvault-chain-unit-'));
    ctx = { storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() };
    await writeChain(ctx);
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  for (const [name, want, tag] of [
    [F, atF, 1],
    [I1, atI1, 2],
    [I2, atI2, 3],
  ] as const) {
    it(`restores ${name} to exactly the files of its point`, async () => {
      const pgdata = join(work, name);
      const r = await runRestore(ctx, opts(pgdata, name));
      expect(r.record.name).toBe(name);
      const got = files(pgdata).filter(
        (f) => !['backup_label', 'global/pg_control', 'postgresql.auto.conf', 'recovery.signal', 'walvault-restore.conf'].includes(f),
      );
      expect(got.sort()).toEqual(Object.keys(want).sort());
      for (const [path, content] of Object.entries(want)) {
        expect(readFileSync(join(pgdata, path)).equals(content), path).toBe(true);
      }
      expect(readFileSync(join(pgdata, 'global/pg_control')).equals(Buffer.alloc(B, tag))).toBe(true);
      const restoredLabel = readFileSync(join(pgdata, 'backup_label'), 'utf8');
      expect(restoredLabel).toMatch(/^START WAL LOCATION: /);
      // The rebuilt directory is a full one: no line naming a parent (PostgreSQL refuses those).
      expect(restoredLabel).not.toMatch(/INCREMENTAL/);
      expect(restoredLabel).toContain('BACKUP METHOD: streamed\nSTART TIMELINE: 1\n');
      expect(existsSync(join(pgdata, INCOMPLETE_MARKER))).toBe(false);
    });
  }

  it('--delta over a restore of the parent gives the child', async () => {
    const pgdata = join(work, 'delta');
    await runRestore(ctx, opts(pgdata, I1));
    const r = await runRestore(ctx, opts(pgdata, I2, { delta: true }));
    expect(r.kept).toBeGreaterThan(0);
    for (const [path, content] of Object.entries(atI2)) expect(readFileSync(join(pgdata, path)).equals(content), path).toBe(true);
    expect(existsSync(join(pgdata, 'base/5/gone'))).toBe(false);
  });

  async function flipPackHolding(backup: string, pack: number): Promise<void> {
    const key = packKey(backup, pack);
    const stored = await ctx.storage.getBuffer(key);
    stored[stored.length - 5]! ^= 0x01;
    await ctx.storage.put(key, stored);
  }

  it("a flipped byte in a pack of the full backup fails the grandchild's restore naming the file and both backups", async () => {
    // Pack 1 of the full backup holds backup_label, PG_VERSION and block 0 of 16384.
    await flipPackHolding(F, 1);
    const pgdata = join(work, 'bad');
    const err = await failure(runRestore(ctx, opts(pgdata, I2)));
    expect(err.exitCode).toBe(128);
    expect(err.message).toMatch(
      new RegExp(
        `unable to restore file '(PG_VERSION|base/5/16384)' of backup '${I2}'.*\\(pack 1 of backup '${F}', which it builds on\\): .*${F}/packs/000000001`,
      ),
    );
    expect(existsSync(join(pgdata, 'global/pg_control'))).toBe(false);
    expect(readFileSync(join(pgdata, INCOMPLETE_MARKER), 'utf8')).toMatch(new RegExp(`failed at .*${F}/packs/000000001`));
  });

  it("a flipped byte in the parent's INCREMENTAL file is caught by the pack checksum, naming the parent", async () => {
    // I1's pack 1: backup_label, then INCREMENTAL.16384 (header and block 1) begins.
    await flipPackHolding(I1, 2);
    const err = await failure(runRestore(ctx, opts(join(work, 'bad1'), I2)));
    expect(err.message).toMatch(new RegExp(`backup '${I2}'.*pack 2 of backup '${I1}'`));
  });

  it('a damaged INCREMENTAL header in the chain fails naming the file and the backup it is in', async () => {
    const ctx2: ArchiveContext = { ...ctx, storage: new MemoryStorage() };
    await writeFixtureBackup(ctx2, {
      name: F,
      files: [
        { path: 'backup_label', content: label('0/2000028', false) },
        ...dirs,
        { path: 'base/5/16384', content: atF['base/5/16384']! },
        control(1),
      ],
    });
    const bad = incrementalFileBytes(3, [[1, blk(0xb1, 1)]]);
    bad.writeUInt32LE(0xdeadbeef, 0);
    await writeFixtureBackup(ctx2, {
      name: I1,
      parent: F,
      record: { endLsn: '0/3000138', stopTime: '2026-12-01T11:00:05.000Z' },
      files: [
        { path: 'backup_label', content: label('0/3000028', true) },
        ...dirs,
        { path: 'base/5/INCREMENTAL.16384', incremental: true, content: bad },
        control(2),
      ],
    });
    const pgdata = join(work, 'hdr');
    await expect(runRestore(ctx2, opts(pgdata, I1))).rejects.toThrow(
      new RegExp(`unable to restore file 'base/5/INCREMENTAL.16384' of backup '${I1}': .*bad magic 0xdeadbeef`),
    );
    expect(existsSync(join(pgdata, 'global/pg_control'))).toBe(false);
    expect(existsSync(join(pgdata, INCOMPLETE_MARKER))).toBe(true);
  });

  it('a missing parent fails before anything is written, naming both backups', async () => {
    await ctx.storage.delete([recordKey(I1)]);
    const pgdata = join(work, 'orphan');
    const err = await failure(runRestore(ctx, opts(pgdata, I2)));
    expect(err.message).toBe(`unable to use backup '${I2}': it builds on backup '${I1}', which is not a complete backup in the archive`);
    expect(err.exitCode).toBe(128);
    expect(existsSync(join(pgdata, 'global/pg_control'))).toBe(false);
  });

  it("a damaged catalog of the full backup fails the child's restore naming it", async () => {
    const stored = await ctx.storage.getBuffer(catalogKey(F));
    stored[stored.length - 3]! ^= 0x01;
    await ctx.storage.put(catalogKey(F), stored);
    await expect(runRestore(ctx, opts(join(work, 'cat'), I1))).rejects.toThrow(
      new RegExp(`unable to restore backup '${I1}': the catalog of backup '${F}', which it builds on, is damaged: .*${F}/catalog`),
    );
  });

  it('a missing pack of an owner fails naming it', async () => {
    await ctx.storage.delete([packKey(F, 12)]);
    await expect(runRestore(ctx, opts(join(work, 'gone'), I2))).rejects.toThrow(new RegExp(`of backup '${I2}'.*${F}/packs/000000012`));
  });
});
