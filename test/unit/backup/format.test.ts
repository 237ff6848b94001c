/** names, layout, records and objects of the base-backup format (docs/storage-format.md "Base backups"). */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { catalogKey, packKey, parseBackupKey, recordKey, startedKey, backupPrefix } from '../../../src/backup/layout.js';
import { backupName, isBackupName, parseBackupName, typeOfBackupName } from '../../../src/backup/names.js';
import { decodeBackupObject, loadBackupObject, storeBackupObject } from '../../../src/backup/objects.js';
import { decodeBackupRecord, decodeRecord, encodeRecord, type BackupRecord, type HeartbeatRecord } from '../../../src/backup/record.js';
import { ArchiveMismatchError, CryptoError, IntegrityError, InvalidKeyError, UsageError } from '../../../src/common/errors.js';
import { EncryptionKey } from '../../../src/codec/encryption.js';
import { silentLogger } from '../../../src/common/log.js';
import { MemoryStorage } from '../../../src/storage/memory.js';

const NAME = '20261202T004512F';

describe('backup names and keys', () => {
  it('names a backup by its UTC start second', () => {
    expect(backupName(new Date('2026-12-02T00:45:12.999Z'), 'full')).toBe(NAME);
    expect(backupName(new Date('2026-01-09T23:05:01Z'), 'incremental')).toBe('20260109T230501I');
    expect(isBackupName(NAME)).toBe(true);
    for (const bad of ['20261202T004512', '20261202T004512X', '2026120T004512F', '../20261202T004512F', '20261202T004512F ']) {
      expect(isBackupName(bad)).toBe(false);
    }
    expect(() => parseBackupName('latest')).toThrow(UsageError);
    expect(typeOfBackupName('20260109T230501I')).toBe('incremental');
  });

  it('places every object under backups/<name>/ with packs in listing order', () => {
    expect(backupPrefix(NAME)).toBe('backups/20261202T004512F/');
    expect(recordKey(NAME)).toBe('backups/20261202T004512F/backup.json');
    expect(startedKey(NAME)).toBe('backups/20261202T004512F/started.json');
    expect(catalogKey(NAME)).toBe('backups/20261202T004512F/catalog');
    expect(packKey(NAME, 1)).toBe('backups/20261202T004512F/packs/000000001');
    expect(packKey(NAME, 123456789)).toBe('backups/20261202T004512F/packs/123456789');
    expect(packKey(NAME, 9) < packKey(NAME, 10)).toBe(true);
    expect(() => packKey(NAME, 0)).toThrow(InvalidKeyError);
    expect(() => recordKey('../x')).toThrow(InvalidKeyError);
    expect(parseBackupKey('backups/20261202T004512F/packs/000000002')).toEqual({ name: NAME, leaf: 'packs/000000002' });
    expect(parseBackupKey('backups/notaname/backup.json')).toBeUndefined();
    expect(parseBackupKey('wal/00000001/x')).toBeUndefined();
  });
});

describe('backup records', () => {
  const beat: HeartbeatRecord = { format: 1, name: NAME, at: '2026-12-02T00:46:00.000Z', doneBytes: 1, totalBytes: null, phase: 'copy' };

  it('round-trips a record and refuses an altered one', () => {
    const bytes = encodeRecord(beat);
    expect(decodeRecord<HeartbeatRecord>(bytes, 'k', NAME)).toEqual(beat);
    const altered = Buffer.from(bytes.toString().replace('"doneBytes": 1', '"doneBytes": 2'));
    expect(() => decodeRecord(altered, 'k', NAME)).toThrow(/checksum mismatch/);
    expect(() => decodeRecord(bytes, 'k', '20261202T004513F')).toThrow(/names backup '20261202T004512F'/);
    expect(() => decodeRecord(Buffer.from('{'), 'k', NAME)).toThrow(IntegrityError);
    // Field order does not change the checksum (canonical body).
    const reordered = JSON.parse(bytes.toString()) as { record: Record<string, unknown>; sha256: string };
    const rev = Object.fromEntries(Object.entries(reordered.record).reverse());
    expect(decodeRecord(Buffer.from(JSON.stringify({ record: rev, sha256: reordered.sha256 })), 'k', NAME)).toEqual(beat);
  });

  it('refuses a record of a newer format as a mismatch, not as damage', () => {
    const bytes = encodeRecord({ ...beat, format: 2 } as unknown as HeartbeatRecord);
    expect(() => decodeRecord(bytes, 'k', NAME)).toThrow(ArchiveMismatchError);
  });

  it('checks the fields of backup.json', () => {
    const ref = { key: catalogKey(NAME), sha256: 'a'.repeat(64), size: 10 };
    const rec: BackupRecord = {
      format: 1,
      name: NAME,
      type: 'full',
      parent: null,
      label: 'l',
      systemId: '7000000000000000001',
      pgVersionNum: 150004,
      walSegSize: 16777216,
      startLsn: '0/2000028',
      startTimeline: 1,
      endLsn: '0/2000100',
      endTimeline: 1,
      checkpointLsn: '0/2000060',
      startTime: '2026-12-02T00:45:12.000Z',
      stopTime: '2026-12-02T00:46:12.000Z',
      walFirst: '000000010000000000000002',
      walLast: '000000010000000000000002',
      tablespaces: [],
      entries: 3,
      files: 2,
      rawBytes: 10,
      storedBytes: 20,
      packs: 1,
      catalog: ref,
      manifest: null,
      backupLabel: 'START WAL LOCATION: 0/2000028',
      compression: 'zstd:1',
      encryptionKeyId: null,
      writer: 'w',
      host: 'h',
    };
    expect(decodeBackupRecord(encodeRecord(rec), 'k', NAME)).toEqual(rec);
    expect(() => decodeBackupRecord(encodeRecord({ ...rec, endLsn: '0/zz' }), 'k', NAME)).toThrow(/field 'endLsn'/);
    expect(() => decodeBackupRecord(encodeRecord({ ...rec, parent: 'x' }), 'k', NAME)).toThrow(/field 'parent'/);
    expect(() => decodeBackupRecord(encodeRecord({ ...rec, walLast: 'x' }), 'k', NAME)).toThrow(/field 'walLast'/);
  });
});

describe('backup objects', () => {
  const ctxOf = (encryption?: EncryptionKey): ArchiveContext => ({
    storage: new MemoryStorage(),
    compression: { name: 'zstd', level: 3 },
    ...(encryption ? { encryption } : {}),
    log: silentLogger(),
  });

  it('stores verified, compressed and encrypted objects and loads them back', async () => {
    const ctx = ctxOf(new EncryptionKey(Buffer.alloc(32, 9)));
    const bytes = Buffer.alloc(100_000, 'abc');
    const stored = await storeBackupObject(ctx, packKey(NAME, 1), bytes, '7000000000000000001');
    expect(stored.ref).toEqual({ key: packKey(NAME, 1), sha256: createHash('sha256').update(bytes).digest('hex'), size: 100_000 });
    expect(stored.storedBytes).toBeLessThan(2000);
    expect((await loadBackupObject(ctx, stored.ref)).equals(bytes)).toBe(true);
    // Another key's object swapped in: named by its key, never taken for this one.
    const other = await storeBackupObject(ctx, packKey(NAME, 2), bytes, null);
    const raw2 = await ctx.storage.getBuffer(other.ref.key);
    await expect(decodeBackupObject(ctx, stored.ref, raw2)).rejects.toThrow(/was written as/);
    // A flipped byte in the payload fails authentication or the checksum.
    const raw = await ctx.storage.getBuffer(stored.ref.key);
    raw[raw.length - 5] = raw[raw.length - 5]! ^ 1;
    await expect(decodeBackupObject(ctx, stored.ref, raw)).rejects.toThrow(IntegrityError);
    const { encryption: _key, ...noKey } = ctx;
    await expect(loadBackupObject(noKey, stored.ref)).rejects.toThrow(CryptoError);
  });
});
