/**
 * The failure that loses data without a word: a point-in-time recovery whose restore_command answers
 * "no such file" (any exit code up to 125) for a reason that proves nothing about the archive. With a
 * base backup that carries the WAL to consistency (pg_basebackup's default), PostgreSQL then ends
 * recovery right there and promotes, and everything committed after the backup is gone. wal-fetch
 * must stop the recovery instead (exit 128), on a real server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultMajor, PgCluster, useClusterPool, type BaseBackup } from '../../support/cluster.js';
import { pgOwnedDir, waitForArchiveDone, walCommands, writeConfig } from '../../support/walvault.js';

describe(`PostgreSQL ${defaultMajor()}: a recovery never ends early on an answer that proves nothing`, () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-exit-contract-'));
  const archiveDir = pgOwnedDir(join(root, 'archive'));
  const stateDir = pgOwnedDir(join(root, 'state'));
  const configFile = writeConfig(join(root, 'walvault.conf'), {
    archive: `file://${archiveDir}`,
    'push-lookahead': 0,
    'fetch-prefetch': 0,
  });
  const { archiveCommand, restoreCommand } = walCommands({ configFile, stateDir });
  let backup: BaseBackup;
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  beforeAll(async () => {
    const primary = pool.track(
      await PgCluster.create({
        major: defaultMajor(),
        walSegSizeMb: 1,
        config: { archive_mode: 'on', archive_command: archiveCommand, wal_keep_size: '64MB' },
      }),
    );
    await primary.start();
    await primary.query('CREATE TABLE t (id int)');
    backup = await primary.baseBackup({ waitForArchive: true, includeWal: true });
    // Committed after the backup: only the archive has it.
    await primary.query('INSERT INTO t SELECT generate_series(1, 1000)');
    await primary.query('SELECT pg_switch_wal()');
    await waitForArchiveDone(primary);
    await primary.stop();
  });

  /** Starts a recovery with this restore_command; true if it promoted. */
  async function recoverWith(command: string): Promise<{ promoted: boolean; log: string; rows?: number }> {
    const c = pool.track(
      await PgCluster.fromBackup(backup.dir, {
        recovery: { restoreCommand: command, targetAction: 'promote' },
        config: { archive_mode: 'off' },
      }),
    );
    let promoted = false;
    let rows: number | undefined;
    try {
      await c.start({ timeoutMs: 30_000 });
      await c.waitForRecoveryEnd({ timeoutMs: 30_000 });
      promoted = true;
      rows = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM t'))[0]!.n);
    } catch {
      // expected for the bad commands: the startup process exits FATAL and the server stops
    }
    const log = await c.logTail(120);
    await c.destroy();
    return { promoted, log, ...(rows !== undefined ? { rows } : {}) };
  }

  it('the right restore_command recovers every row (the control)', async () => {
    const res = await recoverWith(restoreCommand);
    expect(res.promoted, res.log).toBe(true);
    expect(res.rows).toBe(1000);
  });

  it.each([
    [
      'an empty archive directory (a volume that is not mounted)',
      () => {
        const empty = pgOwnedDir(join(root, `empty-${Date.now()}`));
        const conf = writeConfig(join(root, `empty-${Date.now()}.conf`), { archive: `file://${empty}` });
        return walCommands({ configFile: conf, stateDir }).restoreCommand;
      },
      /holds no archive identity record/,
    ],
    [
      'archive = file:// (no path)',
      () => {
        const conf = writeConfig(join(root, `root-${Date.now()}.conf`), { archive: 'file://' });
        return walCommands({ configFile: conf, stateDir }).restoreCommand;
      },
      /file system root is not an archive directory/,
    ],
    ['restore_command without %p', () => restoreCommand.replace(' %f %p', ' %f'), /missing <path>/],
    ['%f and %p swapped', () => restoreCommand.replace(' %f %p', ' %p %f'), /a path, not a file name/],
    ['an extra argument', () => `${restoreCommand} extra`, /too many arguments/],
  ])('%s: recovery stops instead of promoting without the archived rows', async (_label, command, message) => {
    const res = await recoverWith(command());
    expect(res.promoted, `promoted with ${String(res.rows)} rows:\n${res.log}`).toBe(false);
    expect(res.log).toMatch(message);
    expect(res.log).toMatch(/restore_command|exit code 128|terminated/i);
    expect(res.log).not.toMatch(/selected new timeline ID/);
  });
});
