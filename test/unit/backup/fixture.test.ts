import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { silentLogger } from '../../../src/common/log.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { decodeCatalog, packRef } from '../../../src/backup/catalog.js';
import { recordKey } from '../../../src/backup/layout.js';
import { loadBackupObject } from '../../../src/backup/objects.js';
import { decodeBackupRecord } from '../../../src/backup/record.js';
import { writeFixtureBackup } from '../../support/backup-fixture.js';

describe('backup fixture writer and the format readers', () => {
  it('round trips files across packs through record, catalog and packs', async () => {
    const ctx: ArchiveContext = { storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() };
    const big = Buffer.alloc(2500, 7);
    await writeFixtureBackup(ctx, {
      name: '20261201T100000F',
      packSize: 1000,
      files: [
        { path: 'backup_label', content: Buffer.from('START WAL LOCATION: 0/2000028\n') },
        { path: 'base', type: 'dir' },
        { path: 'base/1/1', content: big },
      ],
    });
    const record = decodeBackupRecord(await ctx.storage.getBuffer(recordKey('20261201T100000F')), 'k', '20261201T100000F');
    expect(record.packs).toBe(3);
    const catalog = decodeCatalog(await loadBackupObject(ctx, record.catalog), record.catalog.key, record.name);
    const file = catalog.entries.find((e) => e.path === 'base/1/1')!;
    expect(file.extents).toEqual([
      [1, 30, 970],
      [2, 0, 1000],
      [3, 0, 530],
    ]);
    const parts: Buffer[] = [];
    for (const [pack, off, len] of file.extents) {
      const bytes = await loadBackupObject(ctx, packRef(record.name, catalog, pack));
      parts.push(bytes.subarray(off, off + len));
    }
    expect(Buffer.concat(parts).equals(big)).toBe(true);
    await expect(loadBackupObject(ctx, { ...packRef(record.name, catalog, 1), sha256: '0'.repeat(64) })).rejects.toThrow(
      /checksum in the header differs/,
    );
    expect(record.backupLabel).toContain('START WAL LOCATION');
  });
});
