/**
 * A full disk, for real: a small tmpfs mounted (as root) as the posix archive and, separately, as the
 * streaming agent's spool, filled up with a filler file.
 *   - archive: wal-push of a real segment exits 3 (PostgreSQL retries; never 0, never 4), nothing is
 *     left visible (no object, no temp file), and once space is freed the same push exits 0 and
 *     wal-fetch restores the bytes;
 *   - spool: the agent under a write load fails (never a clean exit 0, never a gap), and once space
 *     is freed and it runs again the archive has every segment with no gap and no conflict.
 * Each tmpfs is unmounted in afterAll, whatever happened.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster, defaultMajor, useClusterPool } from '../support/cluster.js';
import { pgOwnedDir, runCli, writeConfig } from '../support/walvault.js';
import { fixturesOfKind, loadFixture } from '../support/fixtures.js';
import { createLoadTable, startLoad } from '../support/load.js';
import { figures, seededRandom, sleep, tempFiles } from '../support/faults.js';
import { gaps, openArchiveReader, segmentsOf, startAgent, waitForAgentFlush, type Agent } from '../integration/stream/agent.js';

const MAJOR = 15;

function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0777`, 'tmpfs', dir]);
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch {
    // not mounted (setup failed before the mount)
  }
}

/** Fills the file system of `dir` up to `leaveBytes` free, with one file (removed to free the space). */
function fill(dir: string, leaveBytes: number): string {
  const filler = join(dir, 'filler');
  const st = statfsSync(dir);
  const free = Number(st.bavail) * Number(st.bsize);
  try {
    writeFileSync(filler, Buffer.alloc(Math.max(0, free - leaveBytes)));
  } catch {
    // ENOSPC while filling: full is what we wanted.
  }
  return filler;
}

describe('a full disk', { timeout: 240_000 }, () => {
  const pool = useClusterPool();
  seededRandom('full-disk'); // nothing random here; printed for a uniform header
  const mounts: string[] = [];
  const archiveFig = { pushes: 0, refused: 0, afterFree: 0, lost: 0, wrong: [] as string[], visible: [] as string[] };
  const spoolFig = { runs: 0, failed: 0, segments: 0, gaps: 0, conflicts: 0, wrong: [] as string[] };
  let root: string;

  beforeAll(() => {
    root = pgOwnedDir(mkdtempSync('/tmp/walvault-faults-disk-'));
  });

  afterAll(async () => {
    figures('full disk archive', {
      'wal-push and wal-fetch calls checked': archiveFig.pushes,
      'refused with exit 3': archiveFig.refused,
      'archived after space was freed': archiveFig.afterFree,
      'partial files visible': archiveFig.visible.length,
      'WAL lost': archiveFig.lost,
      'wrong exit codes': archiveFig.wrong.length,
    });
    figures('full disk spool', {
      'agent runs': spoolFig.runs,
      'failed on the full spool': spoolFig.failed,
      'segments checked': spoolFig.segments,
      gaps: spoolFig.gaps,
      conflicts: spoolFig.conflicts,
      'WAL lost': spoolFig.gaps,
      'wrong exit codes': spoolFig.wrong.length,
    });
    await pool.destroyAll();
    for (const m of mounts) unmount(m);
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('archive on a full tmpfs: wal-push exits 3, leaves nothing visible, and archives once space is freed', async () => {
    const fs = join(root, 'archive-fs');
    mountTmpfs(fs, '4m');
    mounts.push(fs);
    const archiveDir = join(fs, 'archive');
    mkdirSync(archiveDir);
    // No compression: an object is as large as its segment, so the disk really fills.
    const configFile = writeConfig(join(root, 'archive.conf'), { archive: `file://${archiveDir}`, compression: 'none' });
    const env = { WALVAULT_CONFIG: configFile, WALVAULT_NO_FASTPATH: '1', WALVAULT_FETCH_PREFETCH: '0' };
    const segs = fixturesOfKind(MAJOR, 'segment').filter((s) => s.timeline === 1);
    const srcDir = join(root, 'src');
    mkdirSync(srcDir);
    const paths = segs.map((s) => {
      const p = join(srcDir, s.name);
      writeFileSync(p, loadFixture(MAJOR, s.name));
      return p;
    });
    // The first push writes the archive's identity record while there is room.
    const first = await runCli('wal-push', [paths[0]!], { env });
    archiveFig.pushes++;
    expect(first.code, first.stderr).toBe(0);

    // No room at all, then room for half a segment (the write fails part-way through the object).
    for (const leave of [0, 512 * 1024]) {
      const filler = fill(fs, leave);
      for (const p of paths.slice(1)) {
        const name = p.slice(-24);
        const res = await runCli('wal-push', [p], { env });
        archiveFig.pushes++;
        if (res.code === 3) archiveFig.refused++;
        else archiveFig.wrong.push(`${name} with ${leave} bytes free: exit ${res.code} (${res.stderr.slice(-200)})`);
        // Nothing of it is visible: no object under its name, no temp file, and wal-fetch says "not there".
        const fetched = await runCli('wal-fetch', [name, join(root, 'out')], { env });
        archiveFig.pushes++;
        if (fetched.code !== 1) archiveFig.visible.push(`${name}: wal-fetch exited ${fetched.code}`);
        for (const t of tempFiles(archiveDir)) archiveFig.visible.push(t);
      }
      rmSync(filler);
    }
    // Space is back: the same pushes succeed and restore byte-identical.
    for (const p of paths) {
      const name = p.slice(-24);
      const res = await runCli('wal-push', [p], { env });
      archiveFig.pushes++;
      if (res.code !== 0) archiveFig.wrong.push(`${name} after freeing space: exit ${res.code}`);
      else archiveFig.afterFree++;
      const out = join(root, 'out');
      const fetched = await runCli('wal-fetch', [name, out], { env });
      if (fetched.code !== 0 || !readFileSync(out).equals(readFileSync(p))) archiveFig.lost++;
    }
    expect(archiveFig.wrong).toEqual([]);
    expect(archiveFig.visible).toEqual([]);
    expect(archiveFig.refused).toBe(2 * (paths.length - 1));
    expect(archiveFig.lost).toBe(0);
  });

  it('spool on a full tmpfs: the agent fails without losing WAL, and catches up once space is freed', async () => {
    const fs = join(root, 'spool-fs');
    mountTmpfs(fs, '6m');
    mounts.push(fs);
    const spoolDir = pgOwnedDir(join(fs, 'spool'));
    const archiveDir = pgOwnedDir(join(root, 'spool-archive'));
    const archiveUrl = `file://${archiveDir}`;
    const primary = pool.track(await PgCluster.create({ major: defaultMajor(), walSegSizeMb: 1 }));
    await primary.start();
    await createLoadTable(primary);
    const start = (): Agent => startAgent({ cluster: primary, archive: archiveUrl, spoolDir, slot: 'walvault', createSlot: true });
    let agent = start();
    spoolFig.runs++;
    await agent.waitForLog((l) => l.msg === 'streaming', 30_000, "'streaming'");
    const load = startLoad(primary);
    try {
      await sleep(1500);
      const filler = fill(fs, 64 * 1024);
      // The agent cannot write: it must stop streaming with an error (exit non-zero), not pretend.
      const exit = await Promise.race([agent.exited, sleep(60_000).then(() => undefined)]);
      if (exit === undefined) {
        // Still running: it must at least not be reporting progress it cannot make durable.
        spoolFig.wrong.push('agent neither failed nor stopped on a full spool within 60 s');
      } else {
        spoolFig.failed++;
        if (exit.code === 0) spoolFig.wrong.push('agent exited 0 on a full spool');
      }
      await agent.kill9();
      rmSync(filler);
      agent = start();
      spoolFig.runs++;
      await agent.waitForLog((l) => l.msg === 'streaming', 30_000, "'streaming' after space was freed");
      const target = load.batches.length + 15;
      while (load.batches.length < target) await sleep(100);
    } finally {
      await load.stop();
    }
    const endLsn = await primary.currentLsn();
    await primary.switchWal();
    await waitForAgentFlush(primary, endLsn, 60_000);
    const stopCode = await agent.stop();
    if (stopCode !== 0) spoolFig.wrong.push(`graceful stop exited ${stopCode}`);
    const reader = await openArchiveReader(archiveUrl, 1024 * 1024);
    try {
      const entries = await reader.catalog();
      const segs = segmentsOf(entries, 1);
      spoolFig.segments = segs.length;
      spoolFig.gaps = gaps(entries).length;
      spoolFig.conflicts = (await reader.errorKeys()).length;
      for (const s of segs) {
        const local = join(primary.walDir(), s.fileName);
        if (existsSync(local) && !(await reader.read(s.fileName)).equals(readFileSync(local))) spoolFig.wrong.push(`${s.fileName} differs`);
      }
      // The end of the load is archived: the segment before the one holding endLsn is whole.
      const tail = await primary.walFileName(endLsn);
      expect(segs.some((s) => s.fileName >= tail) || entries.some((e) => e.fileName.startsWith(tail))).toBe(true);
    } finally {
      await reader.close();
    }
    expect(spoolFig.wrong).toEqual([]);
    expect(spoolFig.failed).toBe(1);
    expect(spoolFig.gaps).toBe(0);
    expect(spoolFig.conflicts).toBe(0);
    expect(spoolFig.segments).toBeGreaterThanOrEqual(3);
  });
});
