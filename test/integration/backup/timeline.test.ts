/**
 * Base backups and timelines on a real PostgreSQL 15: a backup taken on timeline 1, restored to a
 * point in the past and promoted (timeline 2), that cluster archiving into the SAME archive, and
 * `walvault backup-push` on timeline 2 under a write load. Then, with exact row counts:
 *   - the timeline-2 backup restores to the end of the archived WAL;
 *   - the timeline-1 backup with --target-timeline 2 follows the switch into timeline 2's WAL;
 *   - the timeline-1 backup with --target-timeline 1 stays on timeline 1 (its own later rows);
 *   - `expire --retain-full 1` keeps 00000002.history and what the timeline-2 backup needs, and
 *     that backup still restores.
 * The unit tests cover the needed-WAL arithmetic across a switch; this proves it on a server.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { silentLogger } from '../../../src/common/log.js';
import { listWal } from '../../../src/ops/list.js';
import { PosixStorage } from '../../../src/storage/posix.js';
import { freePort } from '../../../tools/pgcluster/proc.js';
import { runBinary } from '../../../tools/pgcluster/run.js';
import { PgCluster, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, runCli, waitForArchiveDone, walCommands, writeConfig, type CliResult } from '../../support/walvault.js';
import { startRestored, stopRestored } from './restore-support.js';

interface Listed {
  name: string;
  status: string;
  record: { startTimeline: number; endTimeline: number; walFirst: string } | null;
}

describe('PostgreSQL 15: base backups across a timeline switch', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-timeline-'));
  const archiveDir = pgOwnedDir(join(root, 'archive'));
  const stateDir = pgOwnedDir(join(root, 'state'));
  const configFile = writeConfig(join(root, 'walvault.conf'), { archive: `file://${archiveDir}`, compression: 'zstd:1' });
  const { archiveCommand } = walCommands({ configFile, stateDir });
  const env = { WALVAULT_CONFIG: configFile, WALVAULT_STATE_DIR: stateDir };
  const vv = (args: string[], timeoutMs = 240_000): Promise<CliResult> => runCli('walvault', args, { env, timeoutMs });
  const ctx = (): ArchiveContext => ({
    storage: new PosixStorage({ root: archiveDir }),
    compression: { name: 'zstd', level: 1 },
    log: silentLogger(),
  });
  const walRows = async (kind: string): Promise<string[]> => (await listWal(ctx())).rows.filter((r) => r.kind === kind).map((r) => r.name);
  const running: string[] = [];
  let primary: PgCluster;
  /** The timeline-1 backup's restore, promoted to timeline 2 and archiving into the same archive. */
  const tl2Dir = pgOwnedDir(join(root, 'tl2'));
  let tl2Port = 0;
  let tl1Name = '';
  let tl2Name = '';
  let tl1Rows = 0;
  let tl2Rows = 0;
  let tl2Load = 0;

  const backupName = (res: CliResult): string => {
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const name = /backup (\d{8}T\d{6}F) complete/.exec(res.stdout + res.stderr)?.[1];
    expect(name, res.stdout + res.stderr).toBeDefined();
    return name!;
  };
  const tl2 = async <R extends Record<string, unknown>>(sql: string): Promise<R[]> => {
    const client = new pg.Client({ host: '127.0.0.1', port: tl2Port, user: 'postgres', database: 'postgres' });
    await client.connect();
    try {
      return (await client.query<R>(sql)).rows;
    } finally {
      await client.end();
    }
  };
  const count = async (q: (sql: string) => Promise<Array<{ n: string }>>, table: string): Promise<number> =>
    Number((await q(`SELECT count(*)::text AS n FROM ${table}`))[0]!.n);

  /** Starts the restored directory as a primary that archives (pg_ctl start, archive_mode on). */
  async function startArchiving(dir: string): Promise<void> {
    const sock = pgOwnedDir(mkdtempSync(join(root, 'sock-')));
    tl2Port = await freePort();
    const r = await runBinary(
      primary.binaries.binDir,
      'pg_ctl',
      ['start', '-D', dir, '-w', '-t', '120', '-l', join(sock, 'postgres.log'), '-o', `-p ${tl2Port} -k ${sock} -c archive_mode=on`],
      primary.osUser,
    );
    if (r.code !== 0) throw new Error(`pg_ctl start failed (${r.code}): ${r.stderr}${r.stdout}`);
    running.push(dir);
    const deadline = Date.now() + 120_000;
    while ((await tl2<{ r: boolean }>('SELECT pg_is_in_recovery() AS r').catch(() => [{ r: true }]))[0]!.r) {
      if (Date.now() > deadline) throw new Error('the restored cluster did not promote');
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  async function waitArchived(dir: string): Promise<void> {
    const status = join(dir, 'pg_wal', 'archive_status');
    const deadline = Date.now() + 180_000;
    while (readdirSync(status).some((e) => e.endsWith('.ready'))) {
      if (Date.now() > deadline) throw new Error(`archiving on timeline 2 did not finish: ${readdirSync(status).join(', ')}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  beforeAll(async () => {
    primary = pool.track(
      await PgCluster.create({
        major: 15,
        walSegSizeMb: 1,
        config: { archive_mode: 'on', archive_command: archiveCommand, wal_keep_size: '256MB', max_wal_senders: '10' },
      }),
    );
    await primary.start();
    await primary.query('CREATE TABLE t (id int, batch int)');
    await primary.query('CREATE TABLE load (x int, pad text)');
    const batch = (q: (sql: string) => Promise<unknown>, n: number): Promise<unknown> =>
      q(`INSERT INTO t SELECT g, ${n} FROM generate_series(1, 1000) g`);

    tl1Name = backupName(await vv(['backup-push', '--pg-conninfo', primary.conninfo(), '--backup-checkpoint', 'fast']));
    await batch((s) => primary.query(s), 1);
    const branchAt = (await primary.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;
    await primary.generateWal({ bytes: 1024 * 1024 });
    // Timeline 1 goes on after the point timeline 2 branches off.
    await batch((s) => primary.query(s), 2);
    tl1Rows = await count((s) => primary.query(s), 't');
    await primary.switchWal();
    await waitForArchiveDone(primary, 180_000);
    await primary.stop();

    // The old cluster's backup brought back to just after batch 1, promoted: timeline 2.
    const restored = await vv(['restore', '--pgdata', tl2Dir, '--backup', tl1Name, '--target-lsn', branchAt]);
    expect(restored.code, restored.stderr).toBe(0);
    await startArchiving(tl2Dir);
    expect((await tl2<{ t: string }>('SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS t'))[0]!.t).toBe('00000002');
    await batch(tl2, 3);

    // Time names have one-second resolution.
    await new Promise((r) => setTimeout(r, 1100));
    let stop = false;
    const loader = (async () => {
      while (!stop) {
        await tl2("INSERT INTO load SELECT g, repeat('x', 200) FROM generate_series(1, 50) g");
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const conninfo = `host=127.0.0.1 port=${tl2Port} user=postgres dbname=postgres`;
      tl2Name = backupName(await vv(['backup-push', '--pg-conninfo', conninfo, '--backup-checkpoint', 'fast']));
    } finally {
      stop = true;
      await loader;
    }
    await batch(tl2, 4);
    tl2Rows = await count(tl2, 't');
    tl2Load = await count(tl2, 'load');
    await tl2('SELECT pg_switch_wal()');
    await waitArchived(tl2Dir);
  }, 900_000);

  afterAll(async () => {
    for (const dir of running) await stopRestored(primary, dir).catch(() => undefined);
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('records the timeline-2 backup on timeline 2, with the history file archived', async () => {
    const list = JSON.parse((await vv(['backup-list', '--json'])).stdout) as { backups: Listed[] };
    const byName = new Map(list.backups.map((b) => [b.name, b]));
    expect(byName.get(tl1Name)!.record).toMatchObject({ startTimeline: 1, endTimeline: 1 });
    expect(byName.get(tl2Name)!.record).toMatchObject({ startTimeline: 2, endTimeline: 2 });
    expect(byName.get(tl2Name)!.record!.walFirst.slice(0, 8)).toBe('00000002');
    expect(await walRows('history')).toEqual(['00000002.history']);
    const verify = await vv(['backup-verify', '--all']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  }, 300_000);

  it.each([
    ['the timeline-2 backup to the end of WAL', () => ['--backup', tl2Name], () => [tl2Rows, tl2Load]],
    [
      'the timeline-1 backup into timeline 2 (--target-timeline 2)',
      () => ['--backup', tl1Name, '--target-timeline', '2'],
      () => [tl2Rows, tl2Load],
    ],
    [
      'the timeline-1 backup along timeline 1 (--target-timeline 1)',
      () => ['--backup', tl1Name, '--target-timeline', '1'],
      () => [tl1Rows, 0],
    ],
  ] as const)(
    'restores %s with exact row counts',
    async (label, args, expected) => {
      const dir = pgOwnedDir(join(root, `r-${label.replace(/\W+/g, '-')}`));
      const res = await vv(['restore', '--pgdata', dir, ...args()]);
      expect(res.code, res.stderr).toBe(0);
      running.push(dir);
      const server = await startRestored(primary, dir, root);
      const [rows, load] = expected();
      expect(await count((s) => server.query(s), 't')).toBe(rows);
      expect(await count((s) => server.query(s), 'load')).toBe(load);
      await stopRestored(primary, dir);
    },
    300_000,
  );

  it('expire --retain-full 1 keeps the history file and what the timeline-2 backup needs', async () => {
    const res = await vv(['expire', '--retain-full', '1']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const list = JSON.parse((await vv(['backup-list', '--json'])).stdout) as { backups: Listed[] };
    expect(list.backups.map((b) => b.name)).toEqual([tl2Name]);
    expect(await walRows('history')).toEqual(['00000002.history']);
    // Nothing older than the kept backup's first segment is left on its timeline.
    const first = list.backups[0]!.record!.walFirst;
    expect((await walRows('segment')).filter((s) => s.startsWith('00000002') && s < first)).toEqual([]);
    const dir = pgOwnedDir(join(root, 'r-after-expire'));
    const restore = await vv(['restore', '--pgdata', dir]);
    expect(restore.code, restore.stderr).toBe(0);
    running.push(dir);
    const server = await startRestored(primary, dir, root);
    expect(await count((s) => server.query(s), 't')).toBe(tl2Rows);
    await stopRestored(primary, dir);
  }, 300_000);
});
