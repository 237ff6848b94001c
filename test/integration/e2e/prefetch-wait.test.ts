/**
 * A recovery that replays faster than the prefetcher downloads does not start Node for the segments
 * the prefetcher has in flight: the wal-fetch launcher sees the prefetcher's mark and waits in sh for
 * the verified file (issue 14). The first call starts the prefetcher and marks its first window, so
 * even the calls made while the prefetcher boots wait instead of starting Node. Node starts are
 * counted through WALVAULT_NODE, a wrapper that logs each start with its arguments.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PgCluster, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, waitForArchiveDone, walCommands, writeConfig } from '../../support/walvault.js';

const SEGMENT = /^[0-9A-F]{24}$/;

describe('PostgreSQL 15: restore_command while the prefetcher downloads', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-prefetch-wait-'));
  const archiveDir = pgOwnedDir(join(root, 'archive'));
  const stateDir = pgOwnedDir(join(root, 'state'));
  afterAll(async () => {
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('waits in sh for segments in flight: Node starts only for the first segment and the end of the archive', async () => {
    const configFile = writeConfig(join(root, 'walvault.conf'), { archive: `file://${archiveDir}`, 'fetch-prefetch': 4 });
    const archiving = walCommands({ configFile, stateDir });
    const primary = pool.track(
      await PgCluster.create({ major: 15, walSegSizeMb: 1, config: { archive_mode: 'on', archive_command: archiving.archiveCommand } }),
    );
    await primary.start();
    await primary.query('CREATE TABLE t (id int)');
    const backup = await primary.baseBackup({ waitForArchive: true });
    // 1 MiB segments of bulk inserts replay in a few ms each: recovery asks faster than 4
    // downloads at a time deliver, so most calls find their segment still in flight.
    await primary.generateWal({ bytes: 24 * 1024 * 1024 });
    await primary.switchWal();
    await waitForArchiveDone(primary);
    await primary.stop();

    const starts = join(pgOwnedDir(join(root, 'log')), 'node-starts');
    const wrapper = join(root, 'node-wrapper');
    writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> '${starts}'\nexec '${process.execPath}' "$@"\n`);
    chmodSync(wrapper, 0o755);
    const { restoreCommand } = walCommands({ configFile, stateDir, extraEnv: { WALVAULT_NODE: wrapper } });
    const c = pool.track(
      await PgCluster.fromBackup(backup.dir, { recovery: { restoreCommand, targetAction: 'promote' }, config: { archive_mode: 'off' } }),
    );
    await c.start();
    await c.waitForRecoveryEnd({ timeoutMs: 120_000 });
    const log = readFileSync(c.logFile, 'utf8');
    const restored = [...new Set([...log.matchAll(/restored log file "([0-9A-F]{24})" from archive/g)].map((m) => m[1]!))].sort();
    expect(restored.length).toBeGreaterThanOrEqual(20);
    // The file name each Node start was asked for (the launcher passes `%f %p` on).
    const nodeFor = (existsSync(starts) ? readFileSync(starts, 'utf8') : '')
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(' ')[1] ?? '');
    // Allowed: the first segment (it starts the prefetcher), and the end of the archive: the first
    // segment it lacks ("not found" is never answered from sh), and the last one, which
    // PostgreSQL reads again at the end of recovery after the launcher handed it over.
    const first = restored[0]!;
    const last = restored.at(-1)!;
    const fromNode = nodeFor.filter((n) => SEGMENT.test(n) && restored.includes(n) && n !== first && n !== last);
    expect(fromNode, `Node starts: ${nodeFor.join(', ')}`).toEqual([]);
    await c.destroy();
  });
});
