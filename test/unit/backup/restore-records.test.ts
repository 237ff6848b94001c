/**
 * Restore reads every stored object of the backup it restores, not only its catalog and packs:
 * its backup.json (a damaged one is an integrity failure naming the key, never "unknown backup"),
 * the backup.json of every parent in its chain, and PostgreSQL's backup_manifest of every backup of
 * the chain (not needed to rebuild the files, but a clean restore must mean a sound chain). Every failure
 * happens before anything is written, so the target directory cannot start.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { manifestKey, recordKey } from '../../../src/backup/layout.js';
import { parseTarget } from '../../../src/backup/restore/plan.js';
import { runRestore, type RestoreOptions } from '../../../src/backup/restore/restore.js';
import { silentLogger } from '../../../src/common/log.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { failure, type FixtureFile, writeFixtureBackup } from '../../support/backup-fixture.js';

const F = '20261201T100000F';
const I1 = '20261201T110000I';
const I2 = '20261201T120000I';

const tree = (tag: number): FixtureFile[] => [
  { path: 'backup_label', content: Buffer.from(`START WAL LOCATION: 0/${tag}000028 (file 00000001000000000000000${tag})\n`) },
  { path: 'global', type: 'dir' },
  { path: 'base', type: 'dir' },
  { path: 'PG_VERSION', content: Buffer.from('17\n') },
  { path: 'base/1', content: Buffer.alloc(3000, tag) },
  { path: 'global/pg_control', content: Buffer.alloc(8192, tag) },
];
/** Bytes standing for PostgreSQL's manifest: restore checks the stored object, not its JSON. */
const manifest = (name: string): Buffer => Buffer.from(`{ "PostgreSQL-Backup-Manifest-Version": 2, "fixture": "${name}" }\n`);

describe('restore reads and verifies the records and the manifest of what it restores', () => {
  let work: string;
  let ctx: ArchiveContext;
  const opts = (pgdata: string, backup: string | undefined): RestoreOptions => ({
    pgdata,
    backup,
    target: parseTarget({ target: 'immediate' }),
    tablespaceMap: new Map(),
    delta: false,
    parallel: 2,
    bufferBytes: 4096,
    archiveSettings: { archive: 'file:///srv/archive' },
    node: '/usr/bin/node',
  });

  /** One bit of the object's payload (a walvault object) or of a record (checksummed JSON: anywhere). */
  async function flip(key: string): Promise<void> {
    const stored = await ctx.storage.getBuffer(key);
    stored[key.endsWith('.json') ? Math.floor(stored.length / 2) : stored.length - 5]! ^= 0x01;
    await ctx.storage.put(key, stored);
  }

  /** Failed before writing anything: the directory was never created, so nothing there can start. */
  function untouched(pgdata: string): void {
    expect(existsSync(pgdata) ? readdirSync(pgdata) : []).toEqual([]);
  }

  beforeEach(async () => {
    work = mkdtempSync(join(tmpdir(), 'walvault-restore-records-'));
    ctx = { storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() };
    await writeFixtureBackup(ctx, { name: F, packSize: 2000, files: tree(2), manifest: manifest(F) });
    for (const [name, parent, n] of [
      [I1, F, 3],
      [I2, I1, 4],
    ] as const) {
      await writeFixtureBackup(ctx, {
        name,
        parent,
        files: tree(n),
        manifest: manifest(name),
        record: { endLsn: `0/${n}000138`, stopTime: `2026-12-01T${8 + n}:00:05.000Z` },
      });
    }
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  it('restores with intact objects, and writes no backup_manifest into the data directory', async () => {
    for (const name of [F, I2]) {
      const pgdata = join(work, name);
      const r = await runRestore(ctx, opts(pgdata, name));
      expect(r.record.name).toBe(name);
      expect(existsSync(join(pgdata, 'global/pg_control'))).toBe(true);
      expect(existsSync(join(pgdata, 'backup_manifest'))).toBe(false);
    }
  });

  for (const name of [F, I2]) {
    it(`a flipped byte in the backup_manifest of ${name} fails its restore with 128 naming the object`, async () => {
      await flip(manifestKey(name));
      const pgdata = join(work, 'bad');
      const err = await failure(runRestore(ctx, opts(pgdata, name)));
      expect(err.exitCode).toBe(128);
      expect(err.message).toMatch(
        new RegExp(`^unable to restore backup '${name}': its backup_manifest is damaged: .*'${manifestKey(name)}'`),
      );
      untouched(pgdata);
    });

    it(`a damaged backup.json of ${name} named with --backup is an integrity failure naming the key, not an unknown backup`, async () => {
      await flip(recordKey(name));
      const pgdata = join(work, 'bad');
      const err = await failure(runRestore(ctx, opts(pgdata, name)));
      expect(err.exitCode).toBe(128);
      expect(err.message).toMatch(new RegExp(`^unable to restore backup '${name}': .*'${recordKey(name)}'`));
      expect(err.message).not.toMatch(/\n/);
      untouched(pgdata);
    });
  }

  it('a missing backup_manifest object fails naming it', async () => {
    await ctx.storage.delete([manifestKey(I2)]);
    const err = await failure(runRestore(ctx, opts(join(work, 'gone'), I2)));
    expect(err.exitCode).toBe(128);
    expect(err.message).toContain(`'${manifestKey(I2)}'`);
  });

  for (const parent of [I1, F]) {
    it(`a flipped byte in the backup_manifest of ${parent}, a parent, fails the restore of ${I2} naming it`, async () => {
      await flip(manifestKey(parent));
      const pgdata = join(work, 'bad');
      const err = await failure(runRestore(ctx, opts(pgdata, I2)));
      expect(err.exitCode).toBe(128);
      expect(err.message).toMatch(
        new RegExp(
          `^unable to restore backup '${I2}': the backup_manifest of backup '${parent}', which it builds on, is damaged: .*'${manifestKey(parent)}'`,
        ),
      );
      untouched(pgdata);
    });
  }

  it("a damaged backup.json of a parent fails the restore (named or newest) with 128 naming the parent's key", async () => {
    const intact = await ctx.storage.getBuffer(recordKey(I1));
    await flip(recordKey(I1));
    for (const backup of [I2, undefined]) {
      const pgdata = join(work, `bad-${backup ?? 'newest'}`);
      const err = await failure(runRestore(ctx, opts(pgdata, backup)));
      expect(err.exitCode).toBe(128);
      expect(err.message).toMatch(new RegExp(`^unable to use backup '${I2}': it builds on backup '${I1}'.*'${recordKey(I1)}'`));
      untouched(pgdata);
    }
    // Two links down: the full backup's record, from the grandchild.
    await ctx.storage.put(recordKey(I1), intact);
    await flip(recordKey(F));
    const err = await failure(runRestore(ctx, opts(join(work, 'bad-f'), I2)));
    expect(err.message).toMatch(new RegExp(`backup '${F}' \\(the parent of '${I1}'\\).*'${recordKey(F)}'`));
  });

  it('an unknown name stays a usage error (exit 2)', async () => {
    const err = await failure(runRestore(ctx, opts(join(work, 'x'), '20261201T130000F')));
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/no complete backup of that name/);
  });
});
