import { describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { isAbandoned, lastSignOfLife, type LifeSigns } from '../../../src/backup/abandoned.js';
import { loadBackupInventory } from '../../../src/backup/inventory.js';
import { heartbeatKey, packKey, startedKey } from '../../../src/backup/layout.js';
import { findLeftovers } from '../../../src/backup/leftovers.js';
import { ABANDONED_AFTER_MS, encodeRecord, newStartedRecord, type HeartbeatRecord } from '../../../src/backup/record.js';
import { silentLogger } from '../../../src/common/log.js';
import { MemoryStorage } from '../../../src/storage/memory.js';

const MIN = 60_000;
const now = new Date('2026-12-02T05:00:00.000Z');
const ago = (m: number): string => new Date(now.getTime() - m * MIN).toISOString();
const agoMs = (m: number): number => now.getTime() - m * MIN;

describe('the abandoned rule', () => {
  // [case, signs, threshold (ms, undefined = the default 5 min), expected source, expected abandoned]
  const table: Array<[string, LifeSigns, number | undefined, string, boolean]> = [
    [
      'fresh heartbeat wins over an old start and old objects',
      { heartbeatAt: ago(1), startedAt: ago(90), newestMtimeMs: agoMs(90) },
      undefined,
      'heartbeat',
      false,
    ],
    [
      'stale heartbeat: abandoned even while objects look fresh',
      { heartbeatAt: ago(10), startedAt: ago(90), newestMtimeMs: agoMs(0) },
      undefined,
      'heartbeat',
      true,
    ],
    ['no heartbeat: the started record decides (fresh)', { startedAt: ago(2), newestMtimeMs: agoMs(60) }, undefined, 'started', false],
    ['no heartbeat: the started record decides (old)', { startedAt: ago(6), newestMtimeMs: agoMs(0) }, undefined, 'started', true],
    ['no records: the newest object mtime decides (fresh)', { newestMtimeMs: agoMs(4) }, undefined, 'objects', false],
    ['no records: the newest object mtime decides (old)', { newestMtimeMs: agoMs(6) }, undefined, 'objects', true],
    [
      'an unparseable heartbeat time counts as unreadable',
      { heartbeatAt: 'yesterday', startedAt: ago(1), newestMtimeMs: agoMs(60) },
      undefined,
      'started',
      false,
    ],
    ['exactly at the threshold: abandoned', { heartbeatAt: ago(5), newestMtimeMs: agoMs(0) }, undefined, 'heartbeat', true],
    [
      'just under the threshold: running',
      { heartbeatAt: new Date(now.getTime() - ABANDONED_AFTER_MS + 1).toISOString(), newestMtimeMs: 0 },
      undefined,
      'heartbeat',
      false,
    ],
    [
      'the setting backup-abandoned-after moves the threshold (60 s)',
      { heartbeatAt: ago(2), newestMtimeMs: agoMs(2) },
      60_000,
      'heartbeat',
      true,
    ],
    [
      'the setting backup-abandoned-after moves the threshold (1 h)',
      { startedAt: ago(30), newestMtimeMs: agoMs(30) },
      3_600_000,
      'started',
      false,
    ],
  ];
  it.each(table)('%s', (_label, signs, threshold, source, abandoned) => {
    expect(lastSignOfLife(signs).source).toBe(source);
    expect(isAbandoned(signs, now, threshold)).toBe(abandoned);
  });

  it('reports the time of the sign it used', () => {
    expect(lastSignOfLife({ heartbeatAt: ago(3), startedAt: ago(9), newestMtimeMs: agoMs(1) }).at.toISOString()).toBe(ago(3));
    expect(lastSignOfLife({ newestMtimeMs: agoMs(7) }).at.getTime()).toBe(agoMs(7));
  });
});

describe('backup-push (leftovers) and the inventory (backup-list, expire) decide alike', () => {
  const name = '20261202T040000F';
  async function unfinished(heartbeatAt: Date | null): Promise<ArchiveContext> {
    const ctx: ArchiveContext = { storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() };
    const started = newStartedRecord({ name, type: 'full', parent: null, label: 'x', startTime: new Date().toISOString(), writer: 'test' });
    await ctx.storage.put(startedKey(name), encodeRecord(started));
    await ctx.storage.put(packKey(name, 1), Buffer.from('pack'));
    if (heartbeatAt) {
      const hb: HeartbeatRecord = { format: 1, name, at: heartbeatAt.toISOString(), doneBytes: 1, totalBytes: 2, phase: 'copy' };
      await ctx.storage.put(heartbeatKey(name), encodeRecord(hb));
    }
    return ctx;
  }
  const decide = async (ctx: ArchiveContext, at: Date, abandonedAfterMs?: number): Promise<[boolean, boolean]> => {
    const opts = { now: at, ...(abandonedAfterMs !== undefined ? { abandonedAfterMs } : {}) };
    const inv = await loadBackupInventory(ctx, opts);
    const left = await findLeftovers(ctx, opts);
    return [inv.backups.find((b) => b.name === name)!.abandoned, left.some((l) => l.name === name)];
  };

  it.each([
    // [case, heartbeat offset from now (min, null = none), evaluated at (min from now), threshold, abandoned]
    ['a heartbeat 3 min ahead keeps it running 6 min after its objects were written', 3, 6, undefined, false],
    ['the same backup 9 min later is abandoned', 3, 9, undefined, true],
    ['without a heartbeat the started record decides: 4 min', null, 4, undefined, false],
    ['without a heartbeat the started record decides: 6 min', null, 6, undefined, true],
    ['backup-abandoned-after = 60 s', 0, 2, 60_000, true],
  ] as const)('%s', async (_label, hbMin, atMin, threshold, abandoned) => {
    const t0 = Date.now();
    const ctx = await unfinished(hbMin === null ? null : new Date(t0 + hbMin * MIN));
    expect(await decide(ctx, new Date(t0 + atMin * MIN), threshold)).toEqual([abandoned, abandoned]);
  });
});
