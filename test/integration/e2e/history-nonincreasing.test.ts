/**
 * Issue 10, item 3: PostgreSQL writes a history file whose switch points do not increase, and the
 * archive must take it. Timeline 1 gets a restore point; a point-in-time recovery a little after it
 * (same segment) makes timeline 2; a recovery along timeline 2 to the restore point makes timeline
 * 3, whose 00000003.history reads `1 <fork of 2>` then `2 <restore point>`, the second smaller.
 * wal-push must archive it and what follows it; recovery with recovery_target_timeline = 'latest'
 * must then follow timeline 3 (not create a second timeline 3 off timeline 2); and wal-show,
 * wal-verify and wal-fetch --lsn must place LSNs where PostgreSQL's recovery takes them from.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLsn, parseLsn, type Lsn } from '../../../src/segment/lsn.js';
import { parseTimelineHistory, type TimelineHistory } from '../../../src/segment/history.js';
import { defaultMajor, PgCluster, useClusterPool, type BaseBackup, type RecoveryOptions } from '../../support/cluster.js';
import { pgOwnedDir, runCli, waitForArchiveDone, walCommands, writeConfig } from '../../support/walvault.js';

async function rows(c: PgCluster): Promise<Record<string, number>> {
  const result = await c.query<{ tag: string; n: string }>('SELECT tag, count(*)::text AS n FROM t GROUP BY tag ORDER BY tag');
  return Object.fromEntries(result.map((r) => [r.tag, Number(r.n)]));
}

async function lsnNow(c: PgCluster): Promise<Lsn> {
  return parseLsn(await c.currentLsn());
}

describe.each([defaultMajor()])('PostgreSQL %i: a history file whose switch points do not increase', (major) => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-history-'));
  const archiveDir = pgOwnedDir(join(root, 'archive'));
  const configFile = writeConfig(join(root, 'walvault.conf'), { archive: `file://${archiveDir}`, compression: 'zstd' });
  const { archiveCommand, restoreCommand } = walCommands({ configFile, stateDir: pgOwnedDir(join(root, 'state')) });
  const env = { WALVAULT_CONFIG: configFile, WALVAULT_NO_FASTPATH: '1' };
  let backup: BaseBackup;
  let tl3: PgCluster;
  let history3: TimelineHistory;
  let forkOf2: Lsn; // where timeline 2 left timeline 1
  let restorePoint: Lsn; // where timeline 3 left (the empty) timeline 2
  let afterD: Lsn; // on timeline 3, after batch d

  function recover(recovery: RecoveryOptions, archiving: boolean): Promise<PgCluster> {
    return PgCluster.fromBackup(backup.dir, {
      recovery: { restoreCommand, targetAction: 'promote', ...recovery },
      config: archiving ? { archive_mode: 'on', archive_command: archiveCommand } : { archive_mode: 'off' },
    }).then(async (c) => {
      pool.track(c);
      await c.start();
      await c.waitForRecoveryEnd({ timeoutMs: 90_000 });
      return c;
    });
  }

  beforeAll(async () => {
    const primary = pool.track(
      await PgCluster.create({
        major,
        walSegSizeMb: 1,
        config: { archive_mode: 'on', archive_command: archiveCommand, wal_keep_size: '64MB' },
      }),
    );
    await primary.start();
    await primary.query('CREATE TABLE t (id int, tag text)');
    backup = await primary.baseBackup({ waitForArchive: true });
    await primary.query("INSERT INTO t SELECT g, 'a' FROM generate_series(1, 100) g");
    // A fresh segment, so the restore point, batch b and timeline 2's fork share one.
    await primary.switchWal();
    await primary.query("SELECT pg_create_restore_point('rp')");
    await primary.query("INSERT INTO t SELECT g, 'b' FROM generate_series(1, 3000) g");
    const afterB = await primary.currentLsn();
    await primary.query("INSERT INTO t SELECT g, 'c' FROM generate_series(1, 10) g");
    await primary.switchWal();
    await waitForArchiveDone(primary);
    await primary.stop(); // the base backup lives in its directory: the pool destroys it last

    // Timeline 2: recovery to just after batch b, archiving into the same archive.
    const tl2 = await recover({ targetLsn: afterB }, true);
    expect(await tl2.timeline()).toBe(2);
    await tl2.query("INSERT INTO t SELECT g, 'tl2' FROM generate_series(1, 10) g");
    await tl2.switchWal();
    await waitForArchiveDone(tl2);
    await tl2.destroy();

    // Timeline 3: recovery along timeline 2 (latest) to the restore point, before 2's fork.
    tl3 = await recover({ targetName: 'rp', targetTimeline: 'latest' }, true);
    expect(await tl3.timeline()).toBe(3);
    history3 = parseTimelineHistory(readFileSync(join(tl3.walDir(), '00000003.history')), 3);
    [forkOf2, restorePoint] = history3.entries.map((e) => e.switchpoint) as [Lsn, Lsn];
    await tl3.query("INSERT INTO t SELECT g, 'd' FROM generate_series(1, 10) g");
    afterD = await lsnNow(tl3);
    await tl3.query("INSERT INTO t SELECT g, 'e' FROM generate_series(1, 500) g");
    await tl3.switchWal();
  }, 300_000);

  afterAll(async () => {
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('PostgreSQL wrote a history whose second switch point is before the first, in the same segment', async () => {
    expect(history3.entries.map((e) => e.parent)).toEqual([1, 2]);
    expect(restorePoint < forkOf2).toBe(true);
    expect((await tl3.walFileName(formatLsn(restorePoint))).slice(8)).toBe((await tl3.walFileName(formatLsn(forkOf2))).slice(8));
    expect(await rows(tl3)).toEqual({ a: 100, d: 10, e: 500 });
    // Batch d lies where timeline 1 still had batch b: which timeline holds it decides the data.
    expect(afterD > restorePoint && afterD < forkOf2, 'batch d must end before timeline 2 forked').toBe(true);
  });

  it('wal-push archives 00000003.history and archiving continues after it', async () => {
    const done = await waitForArchiveDone(tl3);
    expect(done).toContain('00000003.history');
    const stats = await tl3.query<{ failed: string; last: string }>(
      'SELECT failed_count::text AS failed, last_archived_wal AS last FROM pg_stat_archiver',
    );
    expect(stats[0]!.failed).toBe('0');
    expect(stats[0]!.last).toMatch(/^00000003[0-9A-F]{16}$/);
    const again = await runCli('wal-push', [join(tl3.walDir(), '00000003.history')], { env });
    expect(again.code, again.stderr).toBe(0);
  });

  it('recovery_target_timeline = latest follows timeline 3 with its data', async () => {
    const latest = await recover({ targetTimeline: 'latest' }, false);
    expect(await latest.timeline()).toBe(4);
    expect(await rows(latest)).toEqual({ a: 100, d: 10, e: 500 });
    const h4 = parseTimelineHistory(readFileSync(join(latest.walDir(), '00000004.history')), 4);
    expect(h4.entries.map((e) => e.parent)).toEqual([1, 2, 3]);
    await latest.destroy();
  });

  it('wal-show and wal-verify find the archive whole', async () => {
    const show = await runCli('walvault', ['wal-show', '--json'], { env });
    expect(show.code, show.stderr).toBe(0);
    const report = JSON.parse(show.stdout) as {
      timelines: Array<{ timeline: number; parent: number | null; switchPoint: string | null; gaps: unknown[] }>;
      historyIssues: string[];
    };
    expect(report.historyIssues).toEqual([]);
    const t3 = report.timelines.find((t) => t.timeline === 3)!;
    expect(t3.parent).toBe(2);
    expect(parseLsn(t3.switchPoint!)).toBe(restorePoint);
    expect(report.timelines.flatMap((t) => t.gaps)).toEqual([]);
    const verify = await runCli('walvault', ['wal-verify'], { env });
    expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);
    const verify3 = await runCli('walvault', ['wal-verify', '--timeline', '3'], { env });
    expect(verify3.code, `${verify3.stdout}\n${verify3.stderr}`).toBe(0);
  });

  it('wal-fetch --lsn puts an LSN on the timeline PostgreSQL recovers it from', async () => {
    const text = formatLsn;
    const segmentOf = async (l: Lsn): Promise<string> => (await tl3.walFileName(text(l))).slice(8);
    // Between the restore point and timeline 2's fork: timeline 3 along 3's history ...
    const onThree = await runCli('wal-fetch', ['--lsn', text(afterD), join(root, 'fetched-d')], { env });
    expect(onThree.code, onThree.stderr).toBe(0);
    expect(onThree.stdout).toContain(`restored 00000003${await segmentOf(afterD)}`);
    expect(onThree.stdout).toContain('which is on timeline 3 (history of timeline 3)');
    // ... and timeline 1 along 2's.
    const alongTwo = await runCli('wal-fetch', ['--lsn', text(afterD), '--timeline', '2', join(root, 'fetched-d2')], { env });
    expect(alongTwo.code, alongTwo.stderr).toBe(0);
    expect(alongTwo.stdout).toContain('which is on timeline 1 (history of timeline 2)');
    // Just before the restore point: timeline 1, read from timeline 3's copy of the segment.
    const before = await runCli('wal-fetch', ['--lsn', text((restorePoint - 1n) as Lsn), join(root, 'fetched-rp')], { env });
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toContain(`restored 00000003${await segmentOf(restorePoint)}`);
    expect(before.stdout).toContain('which is on timeline 1 (history of timeline 3)');

    // PostgreSQL's own answer: recovering along timeline 3 to that LSN replays batch d (timeline
    // 3's WAL there), not batch b (timeline 1's).
    const atD = await recover({ targetTimeline: 3, targetLsn: text(afterD) }, false);
    expect(await rows(atD)).toEqual({ a: 100, d: 10 });
    await atD.destroy();
  });
});
