/**
 * Retention must never cut away a point the kept backups promise to reach. Four real backups
 * taken by `walvault backup-push` on PostgreSQL 15 under a write load (WAL archived by wal-push),
 * then `expire --retain-full 2`: exactly the two oldest backups and the WAL only they need are
 * gone, and point-in-time recovery from the OLDEST KEPT backup still reaches both the newest
 * archived WAL and a time between the kept backups, with exact row counts. expire.test.ts checks
 * the same policy on objects; this test proves the WAL it keeps is enough for a real recovery.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { silentLogger } from '../../../src/common/log.js';
import { listWal } from '../../../src/ops/list.js';
import { PosixStorage } from '../../../src/storage/posix.js';
import { PgCluster, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, runCli, waitForArchiveDone, walCommands, writeConfig, type CliResult } from '../../support/walvault.js';
import { startRestored, stopRestored } from './restore-support.js';

interface ListedBackup {
  name: string;
  status: string;
  record: { walFirst: string; walLast: string } | null;
}

describe('PostgreSQL 15: expire --retain-full 2 keeps PITR from the oldest kept backup', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-expire-pitr-'));
  const archiveDir = pgOwnedDir(join(root, 'archive'));
  const stateDir = pgOwnedDir(join(root, 'state'));
  const configFile = writeConfig(join(root, 'walvault.conf'), { archive: `file://${archiveDir}`, compression: 'zstd:1' });
  const { archiveCommand } = walCommands({ configFile, stateDir });
  const env = { WALVAULT_CONFIG: configFile, WALVAULT_STATE_DIR: stateDir };
  const vv = (args: string[], timeoutMs = 180_000): Promise<CliResult> => runCli('walvault', args, { env, timeoutMs });
  const ctx = (): ArchiveContext => ({
    storage: new PosixStorage({ root: archiveDir }),
    compression: { name: 'zstd', level: 1 },
    log: silentLogger(),
  });
  const segments = async (): Promise<string[]> => (await listWal(ctx())).rows.filter((r) => r.kind === 'segment').map((r) => r.name);
  const running: string[] = [];
  let primary: PgCluster;
  const names: string[] = [];
  /** Rows of t committed before the marker time (between the two kept backups), and in the end. */
  let rowsAtMarker = 0;
  let rowsAtEnd = 0;
  let loadAtMarker = 0;
  let loadAtEnd = 0;
  let markerTime = '';
  let segmentsBefore: string[] = [];
  let historyBefore: string[] = [];

  const count = async (q: (sql: string) => Promise<Array<{ n: string }>>, table: string): Promise<number> =>
    Number((await q(`SELECT count(*)::text AS n FROM ${table}`))[0]!.n);
  const batch = (n: number): Promise<unknown> => primary.query('INSERT INTO t SELECT g, $1 FROM generate_series(1, 1000) g', [n]);

  /** backup-push while a writer inserts into `load`, so every backup has WAL written during it. */
  async function pushUnderLoad(): Promise<string> {
    let stop = false;
    const loader = (async () => {
      while (!stop) {
        await primary.query("INSERT INTO load SELECT g, repeat('x', 200) FROM generate_series(1, 50) g");
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const res = await vv(['backup-push', '--pg-conninfo', primary.conninfo(), '--backup-checkpoint', 'fast'], 240_000);
      expect(res.code, res.stderr).toBe(0);
      const name = /backup (\d{8}T\d{6}F) complete/.exec(res.stdout + res.stderr)?.[1];
      expect(name, res.stdout + res.stderr).toBeDefined();
      return name!;
    } finally {
      stop = true;
      await loader;
    }
  }

  beforeAll(async () => {
    primary = pool.track(
      await PgCluster.create({
        major: 15,
        walSegSizeMb: 1,
        config: { archive_mode: 'on', archive_command: archiveCommand, wal_keep_size: '256MB' },
      }),
    );
    await primary.start();
    await primary.query('CREATE TABLE t (id int, batch int)');
    await primary.query('CREATE TABLE load (x int, pad text)');
    for (let i = 0; i < 4; i++) {
      names.push(await pushUnderLoad());
      await batch(i + 1);
      // WAL between backups, so that the oldest backups own segments nobody else needs.
      await primary.generateWal({ bytes: 2 * 1024 * 1024 });
      if (i === 2) {
        // A point strictly between the oldest kept backup (index 2) and the newest (index 3).
        rowsAtMarker = await count((s) => primary.query(s), 't');
        loadAtMarker = await count((s) => primary.query(s), 'load');
        await new Promise((r) => setTimeout(r, 1100));
        markerTime = (
          await primary.query<{ t: string }>(
            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t",
          )
        )[0]!.t;
        await new Promise((r) => setTimeout(r, 1100));
        await batch(100);
      }
      // Backup names have one-second resolution; never two in the same second.
      await new Promise((r) => setTimeout(r, 1100));
    }
    await batch(5);
    loadAtEnd = await count((s) => primary.query(s), 'load');
    rowsAtEnd = await count((s) => primary.query(s), 't');
    await primary.switchWal();
    await waitForArchiveDone(primary, 180_000);
    segmentsBefore = await segments();
    historyBefore = (await listWal(ctx())).rows.filter((r) => r.kind === 'history').map((r) => r.name);
  }, 900_000);

  afterAll(async () => {
    for (const dir of running) await stopRestored(primary, dir).catch(() => undefined);
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('deletes exactly the two oldest backups and the WAL only they need', async () => {
    const before = JSON.parse((await vv(['backup-list', '--json'])).stdout) as { backups: ListedBackup[] };
    expect(before.backups.map((b) => b.name).sort()).toEqual([...names].sort());
    const res = await vv(['expire', '--retain-full', '2']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const after = JSON.parse((await vv(['backup-list', '--json'])).stdout) as { backups: ListedBackup[] };
    expect(after.backups.map((b) => b.name).sort()).toEqual(names.slice(2).sort());
    for (const b of after.backups) expect(b.status).toBe('complete');
    const oldestKeptFirst = before.backups.find((b) => b.name === names[2])!.record!.walFirst;
    expect(oldestKeptFirst).toMatch(/^[0-9A-F]{24}$/);
    const left = await segments();
    // Every segment older than the oldest kept backup's first one is gone, every other one stays.
    expect(left).toEqual(segmentsBefore.filter((s) => s >= oldestKeptFirst));
    expect(left.length).toBeLessThan(segmentsBefore.length);
    expect((await listWal(ctx())).rows.filter((r) => r.kind === 'history').map((r) => r.name)).toEqual(historyBefore);
    const walVerify = await vv(['wal-verify']);
    expect(walVerify.code, walVerify.stdout + walVerify.stderr).toBe(0);
  }, 300_000);

  it('refuses backup-delete of the newest complete backup', async () => {
    const res = await vv(['backup-delete', names[3]!]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`unable to delete backup '${names[3]!}': it is the newest complete backup`);
    const list = JSON.parse((await vv(['backup-list', '--json'])).stdout) as { backups: ListedBackup[] };
    expect(list.backups.map((b) => b.name)).toContain(names[3]!);
  });

  it.each([
    ['the newest archived WAL', () => [], () => [rowsAtEnd, loadAtEnd]],
    ['a time between the kept backups', () => ['--target-time', markerTime], () => [rowsAtMarker, loadAtMarker]],
  ] as const)(
    'recovers from the oldest kept backup to %s with exact row counts',
    async (label, args, expected) => {
      const dir = pgOwnedDir(join(root, `r-${label.replace(/\W+/g, '-')}`));
      const res = await vv(['restore', '--pgdata', dir, '--backup', names[2]!, ...args()]);
      expect(res.code, res.stderr).toBe(0);
      running.push(dir);
      const server = await startRestored(primary, dir, root);
      const [rows, load] = expected();
      expect(await count((s) => server.query(s), 't')).toBe(rows);
      // The write load ran only during the backups, so its count at each target is known exactly.
      expect(await count((s) => server.query(s), 'load')).toBe(load);
      await stopRestored(primary, dir);
    },
    300_000,
  );
});
