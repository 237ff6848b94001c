import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { silentLogger } from '../../../src/common/log.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { failedKey, heartbeatKey, recordKey } from '../../../src/backup/layout.js';
import { BACKUP_FORMAT_VERSION, encodeRecord } from '../../../src/backup/record.js';
import {
  UnknownBackupError,
  classifyBackup,
  compareRecords,
  groupBackupListing,
  loadBackup,
  loadBackupInventory,
} from '../../../src/backup/inventory.js';
import { writeFixtureBackup } from '../../support/backup-fixture.js';

const MIN = 60_000;

function newCtx(): ArchiveContext {
  return { storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() };
}

const files = [
  { path: 'backup_label', content: Buffer.from('START WAL LOCATION: 0/2000028\n') },
  { path: 'PG_VERSION', content: Buffer.from('17\n') },
];

describe('backup inventory', () => {
  it('tells complete, running, failed and damaged backups apart from one listing', async () => {
    const ctx = newCtx();
    await writeFixtureBackup(ctx, { name: '20261201T100000F', files });
    await writeFixtureBackup(ctx, { name: '20261201T110000F', files, incomplete: true });
    await writeFixtureBackup(ctx, { name: '20261201T120000F', files, incomplete: true });
    await ctx.storage.put(
      failedKey('20261201T120000F'),
      encodeRecord({
        format: BACKUP_FORMAT_VERSION,
        name: '20261201T120000F',
        at: new Date().toISOString(),
        error: 'server said no',
        code: 'X',
      }),
    );
    await writeFixtureBackup(ctx, { name: '20261201T130000F', files });
    // Tear the completion record: one byte of the JSON changed keeps it JSON but breaks its checksum.
    const key = recordKey('20261201T130000F');
    const text = (await ctx.storage.getBuffer(key)).toString('utf8').replace('"label": "fixture"', '"label": "fixturX"');
    await ctx.storage.delete([key]);
    await ctx.storage.put(key, Buffer.from(text));

    const now = await loadBackupInventory(ctx);
    const byName = new Map(now.backups.map((b) => [b.name, b]));
    expect(byName.get('20261201T100000F')!.status).toBe('complete');
    expect(byName.get('20261201T110000F')!.status).toBe('running');
    expect(byName.get('20261201T110000F')!.abandoned).toBe(false);
    // failed.json makes no difference while the objects are fresh: age decides, failed.json explains.
    expect(byName.get('20261201T120000F')!.status).toBe('running');
    const damaged = byName.get('20261201T130000F')!;
    expect(damaged.status).toBe('damaged');
    expect(damaged.reason).toMatch(/unable to read backup record 'backups\/20261201T130000F\/backup.json': checksum mismatch/);
    expect(now.backups[0]!.name).toBe('20261201T100000F');

    const later = await loadBackupInventory(ctx, { now: new Date(Date.now() + 6 * MIN) });
    const l = new Map(later.backups.map((b) => [b.name, b]));
    expect(l.get('20261201T110000F')!.status).toBe('failed');
    expect(l.get('20261201T110000F')!.abandoned).toBe(true);
    expect(l.get('20261201T110000F')!.reason).toMatch(/^abandoned: nothing written since /);
    expect(l.get('20261201T120000F')!.status).toBe('failed');
    expect(l.get('20261201T120000F')!.reason).toBe('server said no');
    expect(l.get('20261201T100000F')!.status).toBe('complete');
    expect(l.get('20261201T130000F')!.status).toBe('damaged');
    expect(l.get('20261201T130000F')!.abandoned).toBe(false);
  });

  it('counts any fresh object as a sign of life, and the newest one as last activity', () => {
    const name = '20261201T100000F';
    const at = (m: number): Date => new Date(Date.UTC(2026, 11, 1, 10, m));
    const objects = [
      { key: `backups/${name}/started.json`, size: 10, mtime: at(0) },
      { key: `backups/${name}/packs/000000001`, size: 100, mtime: at(9) },
      { key: `backups/${name}/heartbeat.json`, size: 10, mtime: at(1) },
    ];
    const e = classifyBackup(name, objects, {}, at(13));
    expect(e.status).toBe('running');
    expect(e.lastActivity).toEqual(at(9));
    expect(e.storedBytes).toBe(120);
    expect(classifyBackup(name, objects, {}, at(14)).status).toBe('failed');
  });

  it('ignores keys that are not a backup object', () => {
    const t = new Date(0);
    const groups = groupBackupListing([
      { key: 'backups/README', size: 1, mtime: t },
      { key: 'backups/not-a-name/x', size: 1, mtime: t },
      { key: 'backups/20261201T100000F/catalog', size: 1, mtime: t },
      { key: 'backups/20261201T100000F/backup.json', size: 1, mtime: t },
    ]);
    expect([...groups.keys()]).toEqual(['20261201T100000F']);
    expect(groups.get('20261201T100000F')!.map((o) => o.key)).toEqual([
      'backups/20261201T100000F/backup.json',
      'backups/20261201T100000F/catalog',
    ]);
  });

  it('orders complete backups by stop LSN, then stop time, never by name', async () => {
    const ctx = newCtx();
    // Names (start times) say A < B < C; the WAL positions say C, A, B (a clock set back, a restored VM).
    await writeFixtureBackup(ctx, { name: '20261201T100000F', files, record: { endLsn: '0/5000100', stopTime: '2026-12-01T10:00:05Z' } });
    await writeFixtureBackup(ctx, { name: '20261201T110000F', files, record: { endLsn: '1/100', stopTime: '2026-12-01T11:00:05Z' } });
    await writeFixtureBackup(ctx, { name: '20261201T120000F', files, record: { endLsn: '0/3000100', stopTime: '2026-12-01T12:00:05Z' } });
    // Same stop LSN as the first: the stop time decides.
    await writeFixtureBackup(ctx, { name: '20261201T090000F', files, record: { endLsn: '0/5000100', stopTime: '2026-12-01T10:00:06Z' } });
    const inv = await loadBackupInventory(ctx);
    expect(inv.backups.map((b) => b.name)).toEqual(['20261201T120000F', '20261201T100000F', '20261201T090000F', '20261201T110000F']);
    // '0/5000100' < '1/100' as LSNs although not as strings.
    const a = inv.backups[1]!.record!;
    const b = inv.backups[3]!.record!;
    expect(compareRecords(a, b)).toBeLessThan(0);
  });

  it('finds one backup by name with one listing of its prefix, and names an unknown one', async () => {
    const ctx = newCtx();
    await writeFixtureBackup(ctx, { name: '20261201T100000F', files });
    await ctx.storage.put(heartbeatKey('20261201T100000F'), Buffer.from('not json'));
    const one = await loadBackup(ctx, '20261201T100000F');
    expect(one.status).toBe('complete');
    expect(one.objects.map((o) => o.key.split('/').slice(2).join('/'))).toEqual([
      'backup.json',
      'catalog',
      'heartbeat.json',
      'packs/000000001',
      'started.json',
    ]);
    const err = await loadBackup(ctx, '20261201T100001F').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownBackupError);
    expect((err as UnknownBackupError).exitCode).toBe(1);
    expect((err as Error).message).toBe(
      "unable to find backup '20261201T100001F' in archive 'memory:memory': no such backup (see 'walvault backup-list')",
    );
  });
});
