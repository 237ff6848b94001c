import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { silentLogger } from '../../../src/common/log.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { backupsOf } from '../../../src/ops/status.js';
import { writeFixtureBackup } from '../../support/backup-fixture.js';

const files = [{ path: 'PG_VERSION', content: Buffer.from('17\n') }];

describe('status: the backups line', () => {
  it('counts backups by status and names the newest complete one by stop LSN', async () => {
    const ctx: ArchiveContext = { storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() };
    expect(await backupsOf(ctx)).toEqual({ complete: 0, newest: null, running: 0, failed: 0, damaged: 0, error: null });
    await writeFixtureBackup(ctx, {
      name: '20261201T120000F',
      files,
      record: { endLsn: '0/3000100', stopTime: '2026-12-01T12:00:05.000Z' },
    });
    await writeFixtureBackup(ctx, {
      name: '20261201T110000F',
      files,
      record: { endLsn: '0/5000100', stopTime: '2026-12-01T11:00:05.000Z' },
    });
    await writeFixtureBackup(ctx, { name: '20261201T130000F', files, incomplete: true });
    expect(await backupsOf(ctx)).toEqual({
      complete: 2,
      newest: { name: '20261201T110000F', stopTime: '2026-12-01T11:00:05.000Z', endLsn: '0/5000100' },
      running: 1,
      failed: 0,
      damaged: 0,
      error: null,
    });
  });
});
