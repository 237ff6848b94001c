/**
 * The prefetcher wal-fetch starts in the background must not outlive the recovery it serves: once
 * the server is promoted it stops within moments (not after its 30 s idle timeout, spinning the
 * CPU meanwhile) and deletes the segments it downloaded that nobody will ask for any more.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockHolderAlive } from '../../../src/common/pid-lock.js';
import { stateDirFor } from '../../../src/push/state-dir.js';
import { prefetchDir } from '../../../src/restore/prefetch.js';
import { PgCluster, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, waitForArchiveDone, walCommands, writeConfig } from '../../support/walvault.js';

async function until(what: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return what();
}

describe('PostgreSQL 15: the prefetcher after recovery ends', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-prefetch-stop-'));
  const archiveDir = pgOwnedDir(join(root, 'archive'));
  const stateDir = pgOwnedDir(join(root, 'state'));
  const configFile = writeConfig(join(root, 'walvault.conf'), { archive: `file://${archiveDir}`, 'fetch-prefetch': 4 });
  const { archiveCommand, restoreCommand } = walCommands({ configFile, stateDir });

  afterAll(async () => {
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('stops soon after promotion and leaves no downloaded segment behind', async () => {
    const primary = pool.track(
      await PgCluster.create({ major: 15, walSegSizeMb: 1, config: { archive_mode: 'on', archive_command: archiveCommand } }),
    );
    await primary.start();
    await primary.query('CREATE TABLE t (id int)');
    const backup = await primary.baseBackup({ waitForArchive: true });
    await primary.query('INSERT INTO t SELECT generate_series(1, 100)');
    const target = (await primary.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;
    // Segments after the target: the prefetcher downloads them, recovery never asks for them.
    await primary.generateWal({ bytes: 6 * 1024 * 1024 });
    await primary.switchWal();
    await waitForArchiveDone(primary);
    await primary.stop();

    const c = pool.track(
      await PgCluster.fromBackup(backup.dir, {
        recovery: { restoreCommand, targetAction: 'promote', targetLsn: target },
        config: { archive_mode: 'off' },
      }),
    );
    await c.start();
    await c.waitForRecoveryEnd({ timeoutMs: 60_000 });
    const state = stateDirFor(c.dataDir, { WALVAULT_STATE_DIR: stateDir });
    // The prefetcher ran during this recovery (its directory exists).
    expect(existsSync(prefetchDir(state))).toBe(true);
    const segments = (): string[] => readdirSync(prefetchDir(state)).filter((n) => /^[0-9A-F]{24}$/.test(n));
    // Well under the 30 s idle timeout the prefetcher used to wait for.
    const gone = await until(() => !lockHolderAlive(join(state, 'prefetch.pid')) && segments().length === 0, 15_000);
    expect(gone, `prefetcher alive: ${lockHolderAlive(join(state, 'prefetch.pid'))}, left: ${segments().join(', ')}`).toBe(true);
    await c.destroy();
  });
});
