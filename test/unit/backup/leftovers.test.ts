import { describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { heartbeatKey, packKey, recordKey, startedKey } from '../../../src/backup/layout.js';
import { findLeftovers, removeLeftovers } from '../../../src/backup/leftovers.js';
import { claimBackupName, Heartbeat, recordFailure } from '../../../src/backup/push-claim.js';
import { decodeRecord, encodeRecord, newStartedRecord, type FailedRecord, type HeartbeatRecord } from '../../../src/backup/record.js';
import { silentLogger } from '../../../src/common/log.js';
import { StorageError } from '../../../src/common/errors.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { writeFixtureBackup } from '../../support/backup-fixture.js';

const ctxOf = (): ArchiveContext => ({ storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() });
const MIN = 60_000;

async function started(ctx: ArchiveContext, name: string, at: Date): Promise<void> {
  const r = newStartedRecord({ name, type: 'full', parent: null, label: 'x', startTime: at.toISOString(), writer: 'test' });
  await ctx.storage.put(startedKey(name), encodeRecord(r));
}

async function heartbeat(ctx: ArchiveContext, name: string, at: Date): Promise<void> {
  const r: HeartbeatRecord = { format: 1, name, at: at.toISOString(), doneBytes: 1, totalBytes: 2, phase: 'copy' };
  await ctx.storage.put(heartbeatKey(name), encodeRecord(r));
}

describe('leftovers of killed or failed backups', () => {
  const now = new Date('2026-12-02T02:00:00Z');

  it('finds unfinished backups whose heartbeat (or started.json) is old, never a complete or a live one', async () => {
    const ctx = ctxOf();
    await writeFixtureBackup(ctx, { name: '20261202T000000F', files: [{ path: 'PG_VERSION', content: Buffer.from('15\n') }] });
    // Complete, yet its own started.json is ancient: never touched.
    await started(ctx, '20261202T000000F', new Date(now.getTime() - 600 * MIN));
    // Killed during the copy: packs and an old heartbeat (the started.json is older still).
    await started(ctx, '20261202T010000F', new Date(now.getTime() - 60 * MIN));
    await heartbeat(ctx, '20261202T010000F', new Date(now.getTime() - 10 * MIN));
    await ctx.storage.put(packKey('20261202T010000F', 1), Buffer.alloc(10));
    // Running: old started.json, fresh heartbeat.
    await started(ctx, '20261202T013000F', new Date(now.getTime() - 60 * MIN));
    await heartbeat(ctx, '20261202T013000F', new Date(now.getTime() - 1 * MIN));
    // Killed before the first heartbeat.
    await started(ctx, '20261202T014000F', new Date(now.getTime() - 6 * MIN));
    // Just started.
    await started(ctx, '20261202T015800F', new Date(now.getTime() - 2 * MIN));

    const found = await findLeftovers(ctx, { now });
    expect(found.map((l) => l.name)).toEqual(['20261202T010000F', '20261202T014000F']);
    const first = found[0]!;
    // Records last, so a removal cut short is found again.
    expect(first.keys).toEqual([packKey('20261202T010000F', 1), heartbeatKey('20261202T010000F'), startedKey('20261202T010000F')]);
    expect(first.lastSeen.toISOString()).toBe(new Date(now.getTime() - 10 * MIN).toISOString());
    expect((await findLeftovers(ctx, { now, abandonedAfterMs: 30_000 })).map((l) => l.name)).toEqual([
      '20261202T010000F',
      '20261202T013000F',
      '20261202T014000F',
      '20261202T015800F',
    ]);
    expect((await findLeftovers(ctx, { now, abandonedAfterMs: 30_000, exclude: '20261202T015800F' })).map((l) => l.name)).not.toContain(
      '20261202T015800F',
    );

    expect(await removeLeftovers(ctx, found, silentLogger())).toBe(2);
    const left: string[] = [];
    for await (const o of ctx.storage.list('backups/')) left.push(o.key);
    expect(left.some((k) => k.includes('20261202T010000F') || k.includes('20261202T014000F'))).toBe(false);
    expect(left).toContain(recordKey('20261202T000000F'));
    expect(left).toContain(startedKey('20261202T013000F'));
  });

  it('falls back to the objects mtime when the records are damaged or gone', async () => {
    const ctx = ctxOf();
    await ctx.storage.put(startedKey('20261202T010000F'), Buffer.from('{"record": {"name": "x"}, "sha256": "00"}'));
    await ctx.storage.put(packKey('20261202T010000F', 1), Buffer.alloc(10));
    // Just written (mtime now): not abandoned yet; an hour later it is.
    expect(await findLeftovers(ctx)).toEqual([]);
    expect((await findLeftovers(ctx, { now: new Date(Date.now() + 60 * MIN) })).map((l) => l.name)).toEqual(['20261202T010000F']);
  });

  it('keeps a backup whose record a newer walvault wrote', async () => {
    const ctx = ctxOf();
    const r = {
      ...newStartedRecord({
        name: '20261202T010000F',
        type: 'full',
        parent: null,
        label: 'x',
        startTime: '2020-01-01T00:00:00Z',
        writer: 't',
      }),
      format: 9,
    };
    await ctx.storage.put(startedKey('20261202T010000F'), encodeRecord(r as unknown as Parameters<typeof encodeRecord>[0]));
    expect(await findLeftovers(ctx, { now })).toEqual([]);
  });
});

describe('claiming a name, heartbeat and failure records', () => {
  it('takes the next second when the name is taken, and recognises its own earlier claim', async () => {
    const ctx = ctxOf();
    const times = [new Date('2026-12-02T01:00:00.100Z'), new Date('2026-12-02T01:00:00.900Z'), new Date('2026-12-02T01:00:01.000Z')];
    let i = 0;
    const clock = (): Date => times[Math.min(i++, times.length - 1)]!;
    await started(ctx, '20261202T010000F', new Date());
    const claim = await claimBackupName(ctx, (n) => `walvault ${n}`, clock);
    expect(claim.name).toBe('20261202T010001F');
    const rec = decodeRecord<ReturnType<typeof newStartedRecord>>(await ctx.storage.getBuffer(startedKey(claim.name)), 'k', claim.name);
    expect(rec.label).toBe('walvault 20261202T010001F');
    expect(rec.pid).toBe(process.pid);
  });

  it('writes a heartbeat on each phase and records a failure', async () => {
    const ctx = ctxOf();
    const hb = new Heartbeat(ctx, '20261202T010000F', () => ({ doneBytes: 5, totalBytes: 10 }), silentLogger(), 60_000);
    hb.start();
    await hb.setPhase('wal-wait');
    await hb.stop();
    const beat = decodeRecord<HeartbeatRecord>(await ctx.storage.getBuffer(heartbeatKey('20261202T010000F')), 'k', '20261202T010000F');
    expect([beat.phase, beat.doneBytes, beat.totalBytes]).toEqual(['wal-wait', 5, 10]);
    await recordFailure(ctx, '20261202T010000F', new StorageError("unable to write object 'x': disk full"), silentLogger());
    const failed = decodeRecord<FailedRecord>(await ctx.storage.getBuffer('backups/20261202T010000F/failed.json'), 'k', '20261202T010000F');
    expect([failed.code, failed.error]).toEqual(['WV_ERR_STORAGE', "unable to write object 'x': disk full"]);
  });
});
