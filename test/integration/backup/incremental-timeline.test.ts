/**
 * backup-push --incremental across timelines, PostgreSQL 17 (issue 13), through the launcher:
 *
 * - a parent that ended on a timeline the server's history does not hold: exit 3 with the
 *   documented reason, nothing left behind; `--incremental=auto` takes a full backup saying why;
 * - after the server itself switched timeline (standby, then promoted) an increment on a parent
 *   from the old timeline, which ended before the switch, bridges it: it is taken, and restored to
 *   `immediate` it holds exactly the rows of the server at its end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { loadBackupObject } from '../../../src/backup/objects.js';
import { writeFixtureBackup } from '../../support/backup-fixture.js';
import { type PgCluster, supportedMajors, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, runCli, waitForArchiveDone } from '../../support/walvault.js';
import { archiveSetup, archivingCluster, backupNames, backupPush, openArchiveCtx, readBackup, type ArchiveSetup } from './push-setup.js';
import { startRestored, stopRestored } from './restore-support.js';

const NAME_OF = /^backup (\d{8}T\d{6}[FI]) complete: /m;

function nameOf(stdout: string): string {
  const name = NAME_OF.exec(stdout)?.[1];
  expect(name, stdout).toBeDefined();
  return name!;
}

const SUM = "SELECT count(*)::text AS n, md5(string_agg(id::text || pad, ',' ORDER BY id)) AS h FROM t";

describe.runIf(supportedMajors().includes(17))('backup-push --incremental across timelines on PostgreSQL 17', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-inctli-'));
  let a: ArchiveSetup;
  let c: PgCluster;
  let ctx: ArchiveContext;
  let full = '';

  beforeAll(async () => {
    a = archiveSetup(root);
    c = pool.track(await archivingCluster(17, a));
    await c.query('ALTER SYSTEM SET summarize_wal = on');
    await c.query('SELECT pg_reload_conf()');
    await c.query('CREATE TABLE t AS SELECT g AS id, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 30000) g');
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
    ctx = await openArchiveCtx(a);
    const res = await backupPush(c, a);
    expect(res.code, res.stderr).toBe(0);
    full = nameOf(res.stdout);
  }, 300_000);
  afterAll(async () => {
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it("a parent that ended on a timeline outside the server's history: exit 3 naming it; auto takes a full backup", async () => {
    // The archive's record of a backup of this cluster taken on timeline 2 of another history (a
    // promoted copy): this server, still on timeline 1, has no timeline 2 to replay from it.
    const { record } = await readBackup(ctx, full);
    const foreign = '20200101T000000F';
    await writeFixtureBackup(ctx, {
      name: foreign,
      files: [{ path: 'PG_VERSION', content: Buffer.from('17\n') }],
      manifest: await loadBackupObject(ctx, record.manifest!),
      record: {
        systemId: record.systemId,
        pgVersionNum: record.pgVersionNum,
        walSegSize: record.walSegSize,
        startTimeline: 2,
        endTimeline: 2,
      },
    });
    const before = (await backupNames(ctx)).any;
    const refused = await backupPush(c, a, ['--incremental', '--parent', foreign]);
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toMatch(
      new RegExp(
        `unable to take incremental backup into archive '.+': .*parent backup '${foreign}' ended on timeline 2, which is not in the history of the server's timeline 1`,
      ),
    );
    expect(refused.stderr).toContain('WV_ERR_INCREMENTAL_UNAVAILABLE');
    expect((await backupNames(ctx)).any).toEqual(before);
    const auto = await backupPush(c, a, ['--incremental=auto', '--parent', foreign]);
    expect(auto.code, auto.stderr).toBe(0);
    expect(nameOf(auto.stdout)).toMatch(/F$/);
    expect(auto.stdout).toMatch(/^full backup instead of incremental: .*timeline 2/m);
  }, 300_000);

  it('after the server switched timeline, an increment on a parent from before the switch is taken and restores exactly', async () => {
    await c.query('UPDATE t SET pad = upper(pad) WHERE id % 1000 = 0');
    // The server becomes a standby of nothing and is promoted: timeline 2 starts after the parent's end.
    await c.stop();
    await c.writeRecoverySetup({ standby: true });
    await c.start();
    await c.promote();
    expect(await c.timeline()).toBe(2);
    await c.query('INSERT INTO t SELECT g, repeat(md5(g::text), 8) FROM generate_series(30001, 32000) g');
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
    const res = await backupPush(c, a, ['--incremental', '--parent', full]);
    expect(res.code, res.stderr).toBe(0);
    const name = nameOf(res.stdout);
    expect(name).toMatch(/I$/);
    const inc = await readBackup(ctx, name);
    expect([inc.record.parent, inc.record.startTimeline, inc.record.endTimeline]).toEqual([full, 2, 2]);
    const [want] = await c.query<{ n: string; h: string }>(SUM);

    const dir = pgOwnedDir(join(root, 'restored'));
    const env = { WALVAULT_CONFIG: a.configFile, WALVAULT_STATE_DIR: join(root, 'state'), ...a.env };
    const restored = await runCli('walvault', ['restore', '--pgdata', dir, '--backup', name, '--target', 'immediate'], {
      env,
      timeoutMs: 240_000,
    });
    expect(restored.code, restored.stderr).toBe(0);
    const server = await startRestored(c, dir, root, { timeoutMs: 180_000 });
    try {
      const [got] = await server.query<{ n: string; h: string }>(SUM);
      expect(got).toEqual(want);
    } finally {
      await stopRestored(c, dir);
    }
  }, 600_000);
});
