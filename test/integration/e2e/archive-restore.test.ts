/**
 * archive_command = wal-push and restore_command = wal-fetch against real PostgreSQL servers of
 * every installed major: archiving under load, byte-identical restores, point-in-time recovery to
 * LSN, restore point, xid and time targets, a promoted timeline 2 that keeps archiving and is
 * followed with recovery_target_timeline = 'latest', and a damaged object that must stop recovery
 * instead of ending it early.
 */
import { readFileSync, readdirSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster, supportedMajors, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, runCli, waitForArchiveDone, walCommands, writeConfig } from '../../support/walvault.js';
import type { BaseBackup } from '../../../tools/pgcluster/index.js';

interface Targets {
  lsn: string;
  restorePoint: string;
  xid: string;
  time: string;
}

async function batch(c: PgCluster, n: number): Promise<void> {
  await c.query('INSERT INTO t SELECT g, $1 FROM generate_series(1, 1000) g', [n]);
}

async function countRows(c: PgCluster): Promise<number> {
  const rows = await c.query<{ n: string }>('SELECT count(*)::text AS n FROM t');
  return Number(rows[0]!.n);
}

function findObject(archiveDir: string, segment: string): string {
  const dir = join(archiveDir, 'wal', segment.slice(0, 8), segment.slice(0, 16));
  const hit = readdirSync(dir).find((f) => f.startsWith(`${segment}-`));
  if (!hit) throw new Error(`no archived object for ${segment}`);
  return join(dir, hit);
}

describe.each(supportedMajors())('PostgreSQL %i: wal-push and wal-fetch', (major) => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-e2e-'));
  const archiveDir = pgOwnedDir(join(root, 'archive'));
  const stateDir = pgOwnedDir(join(root, 'state'));
  const configFile = writeConfig(join(root, 'walvault.conf'), {
    archive: `file://${archiveDir}`,
    compression: 'zstd',
    'push-lookahead': 16,
    'fetch-prefetch': 4,
  });
  const { archiveCommand, restoreCommand } = walCommands({ configFile, stateDir });
  let primary: PgCluster;
  let backup: BaseBackup;
  const targets = {} as Targets;

  beforeAll(async () => {
    primary = pool.track(
      await PgCluster.create({
        major,
        walSegSizeMb: 1,
        config: { archive_mode: 'on', archive_command: archiveCommand, wal_keep_size: '256MB' },
      }),
    );
    await primary.start();
    await primary.query('CREATE TABLE t (id int, batch int)');
    backup = await primary.baseBackup({ waitForArchive: true });

    await batch(primary, 1);
    targets.lsn = (await primary.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;
    await primary.generateWal({ bytes: 2 * 1024 * 1024 });
    await batch(primary, 2);
    await primary.query("SELECT pg_create_restore_point('after_batch_2')");
    targets.restorePoint = 'after_batch_2';
    await primary.generateWal({ bytes: 2 * 1024 * 1024 });
    const client = await primary.connect();
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO t SELECT g, 3 FROM generate_series(1, 1000) g');
      targets.xid = (await client.query<{ x: string }>('SELECT txid_current()::text AS x')).rows[0]!.x;
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    await primary.generateWal({ bytes: 2 * 1024 * 1024 });
    await batch(primary, 4);
    targets.time = (await primary.query<{ t: string }>('SELECT clock_timestamp()::text AS t'))[0]!.t;
    await new Promise((r) => setTimeout(r, 1200));
    await batch(primary, 5);
    await primary.switchWal();
    await waitForArchiveDone(primary);
  });

  afterAll(async () => {
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('archives every segment byte-identical to pg_wal', async () => {
    const done = await waitForArchiveDone(primary);
    const segments = done.filter((n) => /^[0-9A-F]{24}$/.test(n));
    expect(segments.length).toBeGreaterThan(6);
    const out = join(root, 'check');
    for (const name of segments) {
      const local = join(primary.walDir(), name);
      let original: Buffer;
      try {
        original = readFileSync(local);
      } catch {
        continue; // recycled by a checkpoint since
      }
      const res = await runCli('wal-fetch', [name, out], { env: { WALVAULT_CONFIG: configFile, WALVAULT_FETCH_PREFETCH: '0' } });
      expect(res.code, res.stderr).toBe(0);
      expect(readFileSync(out).equals(original), `${name} differs`).toBe(true);
    }
  });

  it('answers 1 for a file the archive does not hold, and is idempotent for one it does', async () => {
    const missing = await runCli('wal-fetch', ['00000001000000FF000000FF', join(root, 'x')], { env: { WALVAULT_CONFIG: configFile } });
    expect(missing.code).toBe(1);
    const history = await runCli('wal-fetch', ['00000009.history', join(root, 'x')], { env: { WALVAULT_CONFIG: configFile } });
    expect(history.code).toBe(1);
    const [first] = (await waitForArchiveDone(primary)).filter((n) => /^[0-9A-F]{24}$/.test(n)).slice(-1);
    const again = await runCli('wal-push', [join(primary.walDir(), first!)], {
      env: { WALVAULT_CONFIG: configFile, WALVAULT_NO_FASTPATH: '1' },
    });
    expect(again.code, again.stderr).toBe(0);
  });

  async function recover(recovery: Record<string, string>, extra: Record<string, string> = {}): Promise<PgCluster> {
    const c = pool.track(
      await PgCluster.fromBackup(backup.dir, {
        recovery: { restoreCommand, targetAction: 'promote', ...recovery },
        config: { archive_mode: 'off', ...extra },
      }),
    );
    await c.start();
    await c.waitForRecoveryEnd({ timeoutMs: 60_000 });
    return c;
  }

  it.each([
    ['LSN', (t: Targets) => ({ targetLsn: t.lsn }), 1000],
    ['restore point', (t: Targets) => ({ targetName: t.restorePoint }), 2000],
    ['xid', (t: Targets) => ({ targetXid: t.xid }), 3000],
    ['time', (t: Targets) => ({ targetTime: t.time }), 4000],
  ])('recovers to a %s target with exactly the expected rows', async (_label, target, expected) => {
    const c = await recover(target(targets) as Record<string, string>);
    expect(await countRows(c)).toBe(expected);
    await c.destroy();
  });

  it('follows a promoted timeline 2 that keeps archiving (recovery_target_timeline = latest)', async () => {
    const promoted = await recover({}, { archive_mode: 'on', archive_command: archiveCommand });
    expect(await promoted.timeline()).toBe(2);
    expect(await countRows(promoted)).toBe(5000);
    await batch(promoted, 6);
    await promoted.switchWal();
    await waitForArchiveDone(promoted);
    expect(readdirSync(join(archiveDir, 'history')).some((f) => f.startsWith('00000002.history-'))).toBe(true);
    await promoted.destroy();

    const latest = await recover({ targetTimeline: 'latest' });
    expect(await latest.timeline()).toBe(3);
    expect(await countRows(latest)).toBe(6000);
    await latest.destroy();
  });

  it('stops recovery on a damaged object instead of ending it early', async () => {
    // The segment holding batch 3: if it looked "missing", recovery would end and promote with 2000 rows.
    const segment = await primary.walFileName(targets.lsn);
    const later = `${segment.slice(0, 16)}${(parseInt(segment.slice(16), 16) + 3).toString(16).toUpperCase().padStart(8, '0')}`;
    const object = findObject(archiveDir, later);
    const original = readFileSync(object);
    const damaged = Buffer.from(original);
    damaged[Math.floor(damaged.length / 2)]! ^= 0x55;
    writeFileSync(object, damaged);
    try {
      // A fresh state directory: no prefetched copy from the earlier recoveries may stand in for the object.
      const fresh = walCommands({ configFile, stateDir: pgOwnedDir(join(root, 'state-damaged')) });
      const c = pool.track(
        await PgCluster.fromBackup(backup.dir, {
          recovery: { restoreCommand: fresh.restoreCommand, targetAction: 'promote' },
          config: { archive_mode: 'off' },
        }),
      );
      let promoted = false;
      try {
        await c.start({ timeoutMs: 30_000 });
        await c.waitForRecoveryEnd({ timeoutMs: 30_000 });
        promoted = true;
      } catch {
        // expected: the startup process fails and the server stops
      }
      expect(promoted).toBe(false);
      const log = await c.logTail(80);
      expect(log).toMatch(/WV_ERR_INTEGRITY|unable to (restore|decompress|read)/);
      expect(log).not.toMatch(/selected new timeline ID/);
      await c.destroy();
    } finally {
      writeFileSync(object, original);
    }
  });
});
