import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PgCluster, supportedMajors, useCluster, useClusterPool } from '../../support/cluster.js';

async function waitForFile(file: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${file}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function count(c: PgCluster, phase: string): Promise<number> {
  const rows = await c.query<{ n: string }>('SELECT count(*)::text AS n FROM events WHERE phase = $1', [phase]);
  return Number(rows[0]?.n);
}

describe.each(supportedMajors())('PostgreSQL %i low-level backup and recovery', (major) => {
  let archive = '';
  const h = useCluster({ major, walSegSizeMb: 1, archive: true });
  const pool = useClusterPool();

  it('archives WAL into a directory the server user owns', async () => {
    const c = h.cluster;
    archive = c.archiveDir as string;
    expect(archive).toBe(path.join(c.baseDir, 'archive'));
    await c.query('CREATE TABLE events (id serial, phase text NOT NULL)');
    const seg = await c.switchWal();
    await waitForFile(path.join(archive, seg));
  });

  it('restores a base backup to a named restore point and promotes to timeline 2', async () => {
    const c = h.cluster;
    await c.query("INSERT INTO events (phase) SELECT 'base' FROM generate_series(1, 10)");
    const backup = await c.baseBackup({ label: `pitr-${major}` });
    expect(backup.major).toBe(major);
    expect(readFileSync(path.join(backup.dir, 'backup_label'), 'utf8')).toMatch(/^START WAL LOCATION: /);
    expect(backup.labelFile).toContain(`LABEL: pitr-${major}`);
    expect(existsSync(path.join(backup.dir, 'postmaster.pid'))).toBe(false);
    expect(readdirSync(path.join(backup.dir, 'pg_wal'))).toEqual(['archive_status']);
    // wait_for_archive: the stop segment and the .backup history file are archived already.
    expect(existsSync(path.join(archive, backup.stopWalFile))).toBe(true);
    expect(readdirSync(archive).some((f) => f.endsWith('.backup'))).toBe(true);

    await c.query("INSERT INTO events (phase) SELECT 'before' FROM generate_series(1, 5)");
    await c.query("SELECT pg_create_restore_point('rp1')");
    await c.query("INSERT INTO events (phase) SELECT 'after' FROM generate_series(1, 7)");
    const last = await c.switchWal();
    await waitForFile(path.join(archive, last));

    const restored = pool.track(
      await PgCluster.fromBackup(backup.dir, {
        recovery: { restoreCommand: `cp ${archive}/%f %p`, targetName: 'rp1', targetAction: 'promote' },
        archive: true,
      }),
    );
    expect(restored.port).not.toBe(c.port);
    await restored.start();
    await restored.waitForRecoveryEnd();
    expect(await count(restored, 'base')).toBe(10);
    expect(await count(restored, 'before')).toBe(5);
    expect(await count(restored, 'after')).toBe(0);
    expect(await restored.timeline()).toBe(2);
    expect(existsSync(path.join(restored.walDir(), '00000002.history'))).toBe(true);
    // The restored server archives its new timeline into its own archive, not the primary's.
    expect(restored.archiveDir).not.toBe(archive);
    await waitForFile(path.join(restored.archiveDir as string, '00000002.history'));
    expect(existsSync(path.join(archive, '00000002.history'))).toBe(false);
    expect(await restored.systemIdentifier()).toBe(await c.systemIdentifier());
    // The backup stays usable: fromBackup copied it.
    expect(existsSync(path.join(backup.dir, 'backup_label'))).toBe(true);
  });

  it('runs a streaming standby from a self-contained backup and promotes it', async () => {
    const c = h.cluster;
    const backup = await c.baseBackup({ includeWal: true, waitForArchive: false });
    expect(existsSync(path.join(backup.dir, 'pg_wal', backup.startWalFile))).toBe(true);
    const standby = pool.track(
      await PgCluster.fromBackup(backup.dir, {
        standby: true,
        primaryConninfo: c.conninfo(),
        config: { archive_mode: 'off' },
        consume: true,
      }),
    );
    expect(existsSync(backup.dir)).toBe(false);
    await standby.start();
    expect(await standby.inRecovery()).toBe(true);
    await c.query("INSERT INTO events (phase) SELECT 'streamed' FROM generate_series(1, 3)");
    await standby.waitForLsnReplayed(await c.currentLsn());
    expect(await count(standby, 'streamed')).toBe(3);

    await standby.promote();
    expect(await standby.inRecovery()).toBe(false);
    expect(await standby.timeline()).toBe(2);
    const history = readFileSync(path.join(standby.walDir(), '00000002.history'), 'utf8');
    expect(history).toMatch(/^1\t[0-9A-F]+\/[0-9A-F]+\t/);
    await standby.query("INSERT INTO events (phase) VALUES ('after-promote')");
    expect(await count(standby, 'after-promote')).toBe(1);
  });
});
