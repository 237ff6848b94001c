/**
 * expire and backup-delete: which backups a policy keeps (by stop LSN, never by name), what goes
 * and in which order, and which WAL no kept backup needs, over real PostgreSQL 15 WAL (fixtures:
 * timeline 1 segments 7, 8, A, the .backup label in A, the .partial of B; timeline 2 from 0/B14798
 * with its history and segment B).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { pushFile } from '../../../src/archive/push.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { UsageError } from '../../../src/common/errors.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { recordKey } from '../../../src/backup/layout.js';
import { loadBackupInventory, type BackupEntry } from '../../../src/backup/inventory.js';
import type { BackupRecord } from '../../../src/backup/record.js';
import { planBackupExpiry, type ExpirePolicy } from '../../../src/ops/backup-retention.js';
import { executeExpire, planExpire } from '../../../src/ops/expire.js';
import { deleteBackupObjects, executeBackupDelete, planBackupDelete } from '../../../src/ops/backup-delete.js';
import { planWalDelete } from '../../../src/ops/delete.js';
import { listWal } from '../../../src/ops/list.js';
import { fixtureManifest } from '../../support/fixtures.js';
import { writeFixtureBackup } from '../../support/backup-fixture.js';
import { makeCtx, removeTempDirs, tempDir, writeFixture } from '../archive/support.js';

const MAJOR = 15;
const wal = fixtureManifest(MAJOR);
afterAll(removeTempDirs);
const MIN = 60_000;
const files = [{ path: 'PG_VERSION', content: Buffer.from('15\n') }];

/** Memory storage that records every delete call, to check the order objects go in. */
class RecordingStorage extends MemoryStorage {
  readonly deletes: string[][] = [];
  override async delete(keys: readonly string[]): Promise<void> {
    this.deletes.push([...keys]);
    await super.delete(keys);
  }
}

async function archive(): Promise<ArchiveContext & { storage: RecordingStorage }> {
  const ctx = makeCtx(new RecordingStorage());
  const src = await tempDir('expire-src');
  for (const f of wal.files) await pushFile(ctx, await writeFixture(src, MAJOR, f.name));
  return { ...ctx, identity: undefined } as ArchiveContext & { storage: RecordingStorage };
}

function onSegment(seg: string, stopTime: string): Partial<BackupRecord> {
  const n = Number.parseInt(seg, 16);
  const hex = n.toString(16).toUpperCase();
  return {
    systemId: wal.systemId,
    walSegSize: wal.walSegSize,
    startLsn: `0/${hex}00028`,
    endLsn: `0/${hex}00100`,
    walFirst: `0000000100000000000000${seg}`,
    walLast: `0000000100000000000000${seg}`,
    stopTime,
  };
}

const names = (ds: ReadonlyArray<{ backup: BackupEntry }>): string[] => ds.map((d) => d.backup.name);

describe('retention plan', () => {
  async function fourBackups(): Promise<BackupEntry[]> {
    const ctx = makeCtx(new MemoryStorage());
    // Name order (start time) disagrees with WAL order: a clock that was wrong for two backups.
    await writeFixtureBackup(ctx, { name: '20261201T230000F', files, record: onSegment('07', '2026-11-20T00:00:00Z') });
    await writeFixtureBackup(ctx, { name: '20261201T010000F', files, record: onSegment('08', '2026-11-25T00:00:00Z') });
    await writeFixtureBackup(ctx, { name: '20261201T220000F', files, record: onSegment('0A', '2026-11-29T00:00:00Z') });
    await writeFixtureBackup(ctx, { name: '20261201T020000F', files, record: onSegment('0B', '2026-12-01T00:00:00Z') });
    return [...(await loadBackupInventory(ctx)).backups];
  }
  const now = new Date('2026-12-01T12:00:00Z');

  it('keeps the newest by stop LSN, not by name', async () => {
    const plan = planBackupExpiry(await fourBackups(), { retainFull: 2 }, now);
    expect(names(plan.keep)).toEqual(['20261201T220000F', '20261201T020000F']);
    expect(names(plan.expire)).toEqual(['20261201T230000F', '20261201T010000F']);
  });

  it('keeps a days window and the newest backup before it; always the newest complete one', async () => {
    const backups = await fourBackups();
    const plan = planBackupExpiry(backups, { retainDays: 3 }, now);
    // The window starts Nov 28 12:00: 0A and 0B stopped within it, 08 is the newest before it.
    expect(names(plan.keep)).toEqual(['20261201T010000F', '20261201T220000F', '20261201T020000F']);
    expect(plan.keep.map((k) => k.reason)).toEqual([
      'the newest that stopped before the 3-day window: recovery to its start needs it',
      'stopped within 3 days',
      'stopped within 3 days',
    ]);
    expect(names(plan.expire)).toEqual(['20261201T230000F']);
    const older = planBackupExpiry(backups, { retainDays: 1 }, now);
    expect(names(older.keep)).toEqual(['20261201T220000F', '20261201T020000F']);
    expect(older.keep[0]!.reason).toMatch(/^the newest that stopped before the 1-day window/);
    const none = planBackupExpiry(backups, { retainDays: 1 }, new Date('2027-06-01T00:00:00Z'));
    expect(names(none.keep)).toEqual(['20261201T020000F']);
    expect(names(none.expire)).toEqual(['20261201T230000F', '20261201T010000F', '20261201T220000F']);
  });

  it('sorts unfinished backups into leftovers (abandoned) and untouched (running, damaged)', async () => {
    const ctx = makeCtx(new MemoryStorage());
    await writeFixtureBackup(ctx, { name: '20261201T100000F', files, record: onSegment('07', '2026-11-20T00:00:00Z') });
    await writeFixtureBackup(ctx, { name: '20261201T110000F', files, incomplete: true });
    await writeFixtureBackup(ctx, { name: '20261201T120000F', files });
    await ctx.storage.put(recordKey('20261201T120000F'), Buffer.from('{"torn'));
    const later = await loadBackupInventory(ctx, { now: new Date(Date.now() + 6 * MIN) });
    const plan = planBackupExpiry(later.backups, { retainFull: 1 }, new Date());
    expect(names(plan.keep)).toEqual(['20261201T100000F']);
    expect(names(plan.leftovers)).toEqual(['20261201T110000F']);
    expect(names(plan.untouched)).toEqual(['20261201T120000F']);
    const fresh = planBackupExpiry((await loadBackupInventory(ctx)).backups, { retainFull: 1 }, new Date());
    expect(fresh.leftovers).toEqual([]);
    expect(fresh.untouched.map((u) => u.reason)).toContain('running');
  });
});

describe('expire on an archive of real WAL', () => {
  it('deletes the expired backups (backup.json first), the abandoned leftovers and exactly the WAL only they needed', async () => {
    const ctx = await archive();
    await writeFixtureBackup(ctx, { name: '20261201T100000F', files, record: onSegment('07', '2026-11-20T00:00:00Z') });
    await writeFixtureBackup(ctx, { name: '20261201T110000F', files, record: onSegment('08', '2026-11-21T00:00:00Z') });
    await writeFixtureBackup(ctx, { name: '20261201T120000F', files, record: onSegment('0A', '2026-11-22T00:00:00Z') });
    await writeFixtureBackup(ctx, { name: '20261201T130000F', files, incomplete: true });
    const plan = await planExpire(ctx, { retainFull: 1 }, { now: new Date(Date.now() + 6 * MIN) });
    expect(names(plan.backups.expire)).toEqual(['20261201T100000F', '20261201T110000F']);
    expect(names(plan.backups.leftovers)).toEqual(['20261201T130000F']);
    expect(plan.wal.delete.map((o) => o.fileName)).toEqual(['000000010000000000000007', '000000010000000000000008']);

    ctx.storage.deletes.length = 0;
    const outcome = await executeExpire(ctx, plan);
    expect(outcome).toMatchObject({
      backupsDeleted: ['20261201T100000F', '20261201T110000F'],
      leftoversDeleted: ['20261201T130000F'],
      walDeleted: 2,
    });
    // Each expired backup loses its completion record before anything else of it.
    const first = ctx.storage.deletes.findIndex((d) => d.some((k) => k.startsWith('backups/20261201T100000F/')));
    expect(ctx.storage.deletes[first]).toEqual([recordKey('20261201T100000F')]);
    const second = ctx.storage.deletes.findIndex((d) => d.some((k) => k.startsWith('backups/20261201T110000F/')));
    expect(ctx.storage.deletes[second]).toEqual([recordKey('20261201T110000F')]);

    const left = await loadBackupInventory(ctx);
    expect(left.backups.map((b) => [b.name, b.status])).toEqual([['20261201T120000F', 'complete']]);
    expect((await listWal(ctx)).rows.map((r) => r.name)).toEqual([
      '00000001000000000000000A',
      '00000001000000000000000A.00000028.backup',
      '00000001000000000000000B.partial',
      '00000002.history',
      '00000002000000000000000B',
    ]);
    // A second run finds nothing more to do.
    const again = await planExpire(ctx, { retainFull: 1 });
    expect(again.backups.expire).toEqual([]);
    expect(again.wal.delete).toEqual([]);
  });

  it('postpones WAL deletion while a backup runs, and deletes no WAL without any complete backup', async () => {
    const ctx = await archive();
    await writeFixtureBackup(ctx, { name: '20261201T100000F', files, record: onSegment('07', '2026-11-20T00:00:00Z') });
    await writeFixtureBackup(ctx, { name: '20261201T110000F', files, record: onSegment('0A', '2026-11-21T00:00:00Z') });
    await writeFixtureBackup(ctx, { name: '20261201T130000F', files, incomplete: true });
    const plan = await planExpire(ctx, { retainFull: 1 });
    expect(names(plan.backups.expire)).toEqual(['20261201T100000F']);
    expect(plan.wal.delete).toEqual([]);
    expect(plan.walPostponed).toMatch(/^backup 20261201T130000F is running/);

    const bare = await archive();
    const p2 = await planExpire(bare, { retainFull: 1 });
    expect(p2.backups.keep).toEqual([]);
    expect(p2.wal.delete).toEqual([]);
  });
});

describe('wal-delete and backup-delete protect complete backups', () => {
  it('wal-delete refuses WAL a complete backup needs, names it, and goes ahead with --force', async () => {
    const ctx = await archive();
    await writeFixtureBackup(ctx, { name: '20261201T100000F', files, record: onSegment('08', '2026-11-20T00:00:00Z') });
    // Segment 7 is before the backup's walFirst: free to go.
    expect((await planWalDelete(ctx, '000000010000000000000008')).plan.delete.map((o) => o.fileName)).toEqual(['000000010000000000000007']);
    await expect(planWalDelete(ctx, '00000001000000000000000A')).rejects.toThrow(
      'unable to delete WAL before segment 00000001000000000000000A: base backup 20261201T100000F needs 000000010000000000000008 and the WAL after it',
    );
    await expect(planWalDelete(ctx, '00000001000000000000000A')).rejects.toBeInstanceOf(UsageError);
    const forced = await planWalDelete(ctx, '00000001000000000000000A', { force: true });
    expect(forced.plan.delete.map((o) => o.fileName)).toEqual(['000000010000000000000007', '000000010000000000000008']);
  });

  it('backup-delete refuses the newest complete backup unless forced, and deletes backup.json first', async () => {
    const ctx = await archive();
    await writeFixtureBackup(ctx, { name: '20261201T100000F', files, record: onSegment('07', '2026-11-20T00:00:00Z') });
    await writeFixtureBackup(ctx, { name: '20261201T090000F', files, record: onSegment('0A', '2026-11-21T00:00:00Z') });
    await expect(planBackupDelete(ctx, '20261201T090000F')).rejects.toThrow(/it is the newest complete backup/);
    await expect(planBackupDelete(ctx, '20261201T000000F')).rejects.toThrow(/no such backup/);
    const plan = await planBackupDelete(ctx, '20261201T100000F');
    ctx.storage.deletes.length = 0;
    const out = await deleteBackupObjects(ctx, plan.backup);
    expect(ctx.storage.deletes[0]).toEqual([recordKey('20261201T100000F')]);
    expect(out.objects).toBe(plan.backup.objects.length);
    expect((await loadBackupInventory(ctx)).backups.map((b) => b.name)).toEqual(['20261201T090000F']);
    await planBackupDelete(ctx, '20261201T090000F', { force: true });
  });
});

describe('retention and backup-delete over incremental chains', () => {
  /** [name, parent, day of November it stopped]; the names say the chain: F1 <- I (1..), F2 <- I ... */
  type Spec = readonly [name: string, parent: string | null, day: number];
  const F1 = '20261101T000000F';
  const I1a = '20261102T000000I';
  const I1b = '20261103T000000I';
  const F2 = '20261104T000000F';
  const I2a = '20261105T000000I';
  const chains: Spec[] = [
    [F1, null, 1],
    [I1a, F1, 2],
    [I1b, I1a, 3],
    [F2, null, 4],
    [I2a, F2, 5],
  ];
  async function archiveOf(specs: readonly Spec[]): Promise<ArchiveContext> {
    const ctx = makeCtx(new MemoryStorage());
    for (const [name, parent, day] of specs) {
      const stop = `2026-11-${String(day).padStart(2, '0')}T00:00:00Z`;
      await writeFixtureBackup(ctx, {
        name,
        files,
        ...(parent ? { parent } : {}),
        record: { endLsn: `0/${day.toString(16).toUpperCase()}000100`, stopTime: stop },
      });
    }
    return ctx;
  }
  const at = (day: number): Date => new Date(`2026-11-${String(day).padStart(2, '0')}T12:00:00Z`);

  const cases: ReadonlyArray<{
    what: string;
    specs: readonly Spec[];
    policy: ExpirePolicy;
    now: number;
    keep: string[];
    expire: string[];
    reasons?: Record<string, RegExp>;
  }> = [
    {
      what: '--retain-full 1 keeps the newest full with its increments; an old chain goes children first, newest first',
      specs: chains,
      policy: { retainFull: 1 },
      now: 6,
      keep: [F2, I2a],
      expire: [I1b, I1a, F1],
      reasons: { [F2]: /^one of the 1 newest full backups$/, [I2a]: new RegExp(`^an increment of kept full backup ${F2}$`) },
    },
    {
      what: '--retain-full 2 keeps both chains',
      specs: chains,
      policy: { retainFull: 2 },
      now: 6,
      keep: chains.map((c) => c[0]),
      expire: [],
    },
    {
      what: 'the newest complete backup is an increment of an older full: that full stays with it',
      specs: [
        [F1, null, 1],
        [F2, null, 2],
        [I1b, F1, 3],
      ],
      policy: { retainFull: 1 },
      now: 4,
      keep: [F1, F2, I1b],
      expire: [],
      reasons: { [I1b]: /^the newest complete backup$/, [F1]: new RegExp(`^the parent of kept backup ${I1b}$`) },
    },
    {
      what: '--retain-days keeps the newest backup before the window with every ancestor',
      specs: chains,
      policy: { retainDays: 2 },
      now: 5,
      // From Nov 3 12:00: F2 and I2a stopped inside; I1b is the newest before it and needs I1a and F1.
      keep: [F1, I1a, I1b, F2, I2a],
      expire: [],
      reasons: { [I1b]: /^the newest that stopped before the 2-day window/, [I1a]: new RegExp(`^the parent of kept backup ${I1b}$`) },
    },
    {
      what: '--retain-days later: the first chain is not needed any more',
      specs: chains,
      policy: { retainDays: 1 },
      now: 6,
      keep: [F2, I2a],
      expire: [I1b, I1a, F1],
    },
  ];
  for (const c of cases) {
    it(c.what, async () => {
      const ctx = await archiveOf(c.specs);
      const plan = planBackupExpiry((await loadBackupInventory(ctx)).backups, c.policy, at(c.now));
      expect(names(plan.keep)).toEqual(c.keep);
      expect(names(plan.expire)).toEqual(c.expire);
      for (const [name, re] of Object.entries(c.reasons ?? {})) expect(plan.keep.find((k) => k.backup.name === name)?.reason).toMatch(re);
    });
  }

  it('leaves an increment whose parent is gone alone, and keeps the parent of a running incremental backup-push', async () => {
    const ctx = await archiveOf(chains);
    const gone: string[] = [];
    for await (const o of ctx.storage.list(`backups/${I1a}/`)) gone.push(o.key);
    await ctx.storage.delete(gone); // I1b is broken now
    await writeFixtureBackup(ctx, { name: '20261106T000000I', parent: F1, files, incomplete: true });
    const plan = planBackupExpiry((await loadBackupInventory(ctx)).backups, { retainFull: 1 }, new Date());
    expect(names(plan.keep)).toEqual([F1, F2, I2a]);
    expect(plan.keep[0]!.reason).toBe('the parent of running backup 20261106T000000I');
    expect(plan.untouched.find((u) => u.backup.name === I1b)?.reason).toMatch(
      new RegExp(`^not restorable \\(unable to use backup '${I1b}': it builds on backup '${I1a}'.*backup-delete ${I1b}'$`),
    );
    expect(names(plan.expire)).toEqual([]);
  });

  it('backup-delete refuses a backup others build on, naming them; --with-dependents deletes them newest first', async () => {
    const ctx = await archiveOf([...chains, ['20261106T000000F', null, 6]]);
    await expect(planBackupDelete(ctx, F1)).rejects.toMatchObject({
      exitCode: 2,
      message: `unable to delete backup '${F1}': backup ${I1b}, ${I1a} need it (increments built on it or files stored in it); delete them first, or pass --with-dependents to delete them too (newest first)`,
    });
    const plan = await planBackupDelete(ctx, F1, { withDependents: true });
    expect(plan.dependents.map((d) => d.name)).toEqual([I1b, I1a]);
    const out = await executeBackupDelete(ctx, plan);
    expect(out.map((o) => o.name)).toEqual([I1b, I1a, F1]);
    expect((await loadBackupInventory(ctx)).backups.map((b) => b.name)).toEqual([F2, I2a, '20261106T000000F']);
    // An increment with no dependents goes alone.
    expect((await planBackupDelete(ctx, I2a)).dependents).toEqual([]);
  });

  it('backup-delete --with-dependents never takes the newest complete backup along unless forced', async () => {
    const ctx = await archiveOf(chains);
    await expect(planBackupDelete(ctx, F2, { withDependents: true })).rejects.toThrow(
      `unable to delete backup '${F2}': it would take the newest complete backup, ${I2a}, with it, the only way back to the archive's recent state (pass --force to delete it anyway)`,
    );
    expect((await planBackupDelete(ctx, F2, { withDependents: true, force: true })).dependents.map((d) => d.name)).toEqual([I2a]);
  });
});
