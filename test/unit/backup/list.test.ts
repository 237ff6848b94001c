import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { silentLogger } from '../../../src/common/log.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { listBackups, showBackup } from '../../../src/ops/backup-list.js';
import { backupListJson, pgVersionText, renderBackupList, renderBackupShow } from '../../../src/cli/render/backups.js';
import { writeFixtureBackup } from '../../support/backup-fixture.js';

const files = [
  { path: 'backup_label', content: Buffer.from('START WAL LOCATION: 0/2000028\n') },
  { path: 'base', type: 'dir' as const },
];

describe('backup-list and backup-show reports', () => {
  it('lists complete and unfinished backups; no WAL in the archive means no window', async () => {
    const ctx: ArchiveContext = { storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() };
    await writeFixtureBackup(ctx, {
      name: '20261201T100000F',
      files,
      record: { tablespaces: [{ oid: 16390, location: '/srv/ts1', bytes: 8192 }], pgVersionNum: 150004 },
    });
    await writeFixtureBackup(ctx, { name: '20261201T110000F', files, incomplete: true });
    const r = await listBackups(ctx, { now: new Date(Date.now() + 10 * 60_000) });
    expect(r.identity).toBeNull();
    expect(r.backups.map((b) => [b.backup.name, b.backup.status, b.window])).toEqual([
      ['20261201T100000F', 'complete', null],
      ['20261201T110000F', 'failed', null],
    ]);
    const text = renderBackupList(r);
    expect(text).toContain('20261201T100000F  complete  2026-12-01 10:00:00Z  2026-12-01 10:00:05Z  0/2000028 .. 0/2000138');
    expect(text).toMatch(/^20261201T110000F: failed: abandoned: nothing written since /m);
    const json = JSON.parse(JSON.stringify(backupListJson(r))) as { backups: Array<{ name: string; record: { endLsn: string } | null }> };
    expect(json.backups[0]!.record!.endLsn).toBe('0/2000138');
    expect(json.backups[1]!.record).toBeNull();

    const show = renderBackupShow(await showBackup(ctx, '20261201T100000F'));
    expect(show).toMatch(/^tablespace: +16390 at \/srv\/ts1 \(8.00 KiB\)$/m);
    expect(show).toMatch(/^files: +1 file, 2 entries in all/m);
    expect(show).toMatch(/^PostgreSQL: +15\.4 \(system 7000000000000000001, 16\.0 MiB segments\)$/m);
  });

  it('shows chains: type and depth, parent, own and chain size, reused bytes, and a broken chain', async () => {
    const ctx: ArchiveContext = { storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() };
    const big = [...files, { path: 'base/1', content: Buffer.alloc(50_000, 7) }];
    const f = await writeFixtureBackup(ctx, { name: '20261201T100000F', files: big });
    const i1 = await writeFixtureBackup(ctx, {
      name: '20261201T110000I',
      parent: f.name,
      files: [...files, { path: 'base/1', ref: f.name }],
      record: { endLsn: '0/3000000' },
    });
    const i2 = await writeFixtureBackup(ctx, {
      name: '20261201T120000I',
      parent: i1.name,
      files: [...files, { path: 'base/1', ref: i1.name }],
      record: { endLsn: '0/4000000' },
    });
    const r = await listBackups(ctx);
    expect(r.backups.map((b) => [b.backup.name, b.chain?.parent, b.chain?.depth])).toEqual([
      [f.name, null, 0],
      [i1.name, f.name, 1],
      [i2.name, i1.name, 2],
    ]);
    const c2 = r.backups[2]!.chain!;
    expect(c2.ownBytes).toBe(i2.storedBytes);
    expect(c2.totalBytes).toBe(f.storedBytes + i1.storedBytes + i2.storedBytes);
    expect(c2.reusedBytes).toBe(50_000);
    // The reference resolves to the owner, never chained: i2 reads f's pack directly.
    expect(i2.depends).toEqual([f.name]);
    const text = renderBackupList(r);
    expect(text).toMatch(new RegExp(`^${i2.name} .* incr 2 +${i1.name} `, 'm'));
    expect(text).toMatch(new RegExp(`^${f.name} .* full +- `, 'm'));
    const json = JSON.parse(JSON.stringify(backupListJson(r))) as { backups: Array<{ chain: { depth: number; totalBytes: number } }> };
    expect(json.backups[2]!.chain).toMatchObject({ depth: 2, totalBytes: c2.totalBytes, reusedBytes: 50_000 });
    const show = renderBackupShow(await showBackup(ctx, i2.name));
    expect(show).toMatch(/^chain: +depth 2 \(parent links to its full backup\); .* stored by every backup a restore reads$/m);
    expect(show).toMatch(/^reused: +48\.8 KiB of file content referenced in earlier backups/m);

    const { recordKey } = await import('../../../src/backup/layout.js');
    await ctx.storage.delete([recordKey(i1.name)]);
    const broken = await listBackups(ctx, { now: new Date(Date.now() + 10 * 60_000) });
    const b2 = broken.backups.find((b) => b.backup.name === i2.name)!.chain!;
    expect(b2).toMatchObject({ depth: null, totalBytes: null });
    expect(renderBackupList(broken)).toMatch(
      new RegExp(`^${i2.name}: not restorable: unable to use backup '${i2.name}': it builds on backup '${i1.name}'`, 'm'),
    );
  });

  it('prints versions as PostgreSQL does', () => {
    expect(pgVersionText(150004)).toBe('15.4');
    expect(pgVersionText(170000)).toBe('17.0');
    expect(pgVersionText(90624)).toBe('9.6.24');
  });
});
