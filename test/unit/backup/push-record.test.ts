import { describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { maxRateKbps } from '../../../src/backup/push.js';
import { checkpointOf, storeCompletionRecord } from '../../../src/backup/push-record.js';
import { loadBackupInventory } from '../../../src/backup/inventory.js';
import { recordKey } from '../../../src/backup/layout.js';
import { decodeBackupRecord, encodeRecord, type BackupRecord } from '../../../src/backup/record.js';
import { ConfigError, IntegrityError } from '../../../src/common/errors.js';
import { silentLogger } from '../../../src/common/log.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import type { PutBody, PutOptions } from '../../../src/storage/types.js';
import { writeFixtureBackup } from '../../support/backup-fixture.js';

describe('backup-push settings and record fields', () => {
  it('turns backup-max-rate into the server MAX_RATE in kB/s within its range', () => {
    expect(maxRateKbps(undefined)).toBeUndefined();
    expect(maxRateKbps(50 * 1024 * 1024)).toBe(51200);
    expect(maxRateKbps(32 * 1024)).toBe(32);
    expect(() => maxRateKbps(31 * 1024)).toThrow(ConfigError);
    expect(() => maxRateKbps(2 * 1024 ** 3)).toThrow(/accepts 32kB to 1GB per second/);
  });

  it('reads the checkpoint location from backup_label', () => {
    const label =
      'START WAL LOCATION: 0/4500028 (file 000000010000000000000045)\nCHECKPOINT LOCATION: 0/4500060\nBACKUP METHOD: streamed\n';
    expect(checkpointOf(label)).toBe(0x4500060n);
    expect(checkpointOf('START WAL LOCATION: 0/4500028\n')).toBeNull();
  });
});

/** A storage that acknowledges a put of backup.json but keeps other bytes (a torn or lost write). */
class TearingStorage extends MemoryStorage {
  constructor(private readonly tear: (bytes: Buffer) => Buffer) {
    super();
  }
  override async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<void> {
    if (!key.endsWith('/backup.json') || !Buffer.isBuffer(body)) return super.put(key, body, opts);
    const { contentLength: _ignored, ...rest } = opts;
    return super.put(key, this.tear(body), rest);
  }
}

describe('backup.json is read back after the create-only put', () => {
  const name = '20261202T050000F';
  const files = [{ path: 'PG_VERSION', content: Buffer.from('15\n') }];
  async function recordOf(): Promise<BackupRecord> {
    // A real record of a complete fixture backup, written elsewhere and decoded.
    const src: ArchiveContext = { storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() };
    await writeFixtureBackup(src, { name, files });
    return decodeBackupRecord(await src.storage.getBuffer(recordKey(name)), recordKey(name), name);
  }
  const ctxOf = (storage: MemoryStorage): ArchiveContext => ({ storage, compression: { name: 'zstd', level: 1 }, log: silentLogger() });

  it('accepts the exact bytes, and a retry that meets its own first attempt', async () => {
    const record = await recordOf();
    const ctx = ctxOf(new MemoryStorage());
    await storeCompletionRecord(ctx, record);
    expect((await ctx.storage.getBuffer(recordKey(name))).equals(encodeRecord(record))).toBe(true);
    await expect(storeCompletionRecord(ctx, record)).resolves.toBeUndefined();
  });

  it.each([
    ['torn (cut short)', (b: Buffer) => b.subarray(0, b.length - 20), 'the stored bytes differ from those written'],
    ['one byte changed', (b: Buffer) => Buffer.from(b.toString('utf8').replace('"files": 1', '"files": 2')), 'the stored bytes differ'],
  ])('fails when the stored record is %s', async (_label, tear, why) => {
    const record = await recordOf();
    const ctx = ctxOf(new TearingStorage(tear));
    const err = await storeCompletionRecord(ctx, record).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain(`unable to verify backup record '${recordKey(name)}': ${why}`);
  });

  it('fails when another backup.json was there first, and leaves it alone', async () => {
    const record = await recordOf();
    const ctx = ctxOf(new MemoryStorage());
    const foreign = encodeRecord({ ...record, label: 'someone else' });
    await ctx.storage.put(recordKey(name), foreign);
    const err = await storeCompletionRecord(ctx, record).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain('another backup.json was already there');
    expect((await ctx.storage.getBuffer(recordKey(name))).equals(foreign)).toBe(true);
  });

  it('a torn record is never listed as complete', async () => {
    const record = await recordOf();
    const ctx = ctxOf(new TearingStorage((b) => b.subarray(0, b.length - 20)));
    await storeCompletionRecord(ctx, record).catch(() => undefined);
    const inv = await loadBackupInventory(ctx);
    expect(inv.backups.find((b) => b.name === name)?.status).toBe('damaged');
  });
});
