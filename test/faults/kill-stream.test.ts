/**
 * kill -9 loop against `walvault stream` (the streaming agent) on a real PostgreSQL under a real write
 * load: killed at seeded random points while it receives and uploads, restarted each time. Then:
 * no gap and no refused conflicting copy in the archive, every archived segment byte-identical to
 * the server's pg_wal file, a graceful stop exits 0, and a base backup taken before the loop replays
 * from the archive (plus the final .partial) to every committed row. The longer three-kill version
 * with the exact recovery bounds is test/integration/stream/crash.test.ts.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster, defaultMajor, useClusterPool } from '../support/cluster.js';
import { createLoadTable, maxId, startLoad } from '../support/load.js';
import { faultCount, figures, kill9, seededRandom, sleep, walvaultProcesses } from '../support/faults.js';
import { walCommands } from '../support/walvault.js';
import {
  gaps,
  waitForAgentFlush,
  openArchiveReader,
  replayArchive,
  segmentsOf,
  spoolFiles,
  startAgent,
  useWorkDir,
  type Agent,
  type ArchiveReader,
} from '../integration/stream/agent.js';

const SEG = 1024 * 1024;
const KILLS = faultCount(20);

describe('kill -9 of walvault stream under load', { timeout: 480_000 }, () => {
  const pool = useClusterPool();
  const w = useWorkDir('walvault-faults-stream-');
  const rnd = seededRandom('kill-stream');
  let primary: PgCluster;
  let reader: ArchiveReader;
  let agent: Agent | undefined;

  beforeAll(async () => {
    primary = pool.track(
      await PgCluster.create({ major: defaultMajor(), walSegSizeMb: 1, config: { wal_keep_size: '4GB', max_wal_size: '4GB' } }),
    );
    await primary.start();
    await createLoadTable(primary);
    reader = await openArchiveReader(w.archiveUrl, SEG);
  });

  afterAll(async () => {
    await agent?.kill9();
    await reader?.close();
    await pool.destroyAll();
  });

  it(`survives ${KILLS} kills at random points: no gap, no conflict, byte-identical, recovery reaches every row`, async () => {
    const start = (): Agent =>
      startAgent({ cluster: primary, archive: w.archiveUrl, spoolDir: w.spoolDir, slot: 'walvault', createSlot: true });
    agent = start();
    await agent.waitForLog((l) => l.msg === 'streaming', 30_000, "'streaming'");
    const backup = await primary.baseBackup({ waitForArchive: false });
    const load = startLoad(primary);
    let kills = 0;
    let midStream = 0;
    const wrongExit: string[] = [];
    try {
      while (kills < KILLS) {
        const batchesBefore = load.batches.length;
        await sleep(rnd.int(100, 900));
        // Mid-stream: WAL arrived since the (re)start and the spool holds the segment being received.
        const receiving = load.batches.length > batchesBefore && spoolFiles(w.spoolDir).some((f) => f.endsWith('.partial'));
        if (!agent.running) wrongExit.push(`the agent exited by itself: ${agent.tail(10)}`);
        await agent.kill9();
        kills++;
        if (receiving) midStream++;
        await sleep(rnd.int(0, 300));
        agent = start();
        await agent.waitForLog((l) => l.msg === 'streaming', 30_000, "'streaming' after a restart");
      }
      // A few full segments after the last kill, however quick the kills were.
      const target = load.batches.length + 20;
      while (load.batches.length < target) await sleep(100);
    } finally {
      await load.stop();
    }
    const committed = load.committed();
    const endLsn = await primary.currentLsn();
    await waitForAgentFlush(primary, endLsn, 60_000);
    const stopCode = await agent.stop();
    if (stopCode !== 0) wrongExit.push(`graceful stop exited ${stopCode}`);
    if (agent.errors().length > 0) wrongExit.push(`errors logged: ${JSON.stringify(agent.errors()).slice(0, 400)}`);

    const entries = await reader.catalog();
    const segs = segmentsOf(entries, 1);
    const holes = gaps(entries);
    const conflicts = await reader.errorKeys();
    const differ: string[] = [];
    for (const s of segs) {
      const local = join(primary.walDir(), s.fileName);
      if (existsSync(local) && !(await reader.read(s.fileName)).equals(readFileSync(local))) differ.push(s.fileName);
    }
    const tailSeg = await primary.walFileName(endLsn);
    // With the prefetcher: one Node start per segment is too slow on a busy machine.
    const stateBase = join(w.root, 'state');
    const { restoreCommand } = walCommands({ configFile: w.configFile, stateDir: stateBase, extraEnv: { WALVAULT_FETCH_PREFETCH: '8' } });
    const { fromArchive, withPartial } = await replayArchive({
      backup,
      restoreCommand,
      timeoutMs: 240_000,
      configFile: w.configFile,
      workDir: w.root,
      tailSegment: tailSeg,
      count: maxId,
      expectAll: committed,
      track: (c) => pool.track(c),
    }).finally(() => {
      // The detached prefetcher the standby's wal-fetch started (it would idle out after 30 s).
      for (const d of readdirSync(stateBase)) {
        const pidFile = join(stateBase, d, 'prefetch.pid');
        const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
        if (pid > 0 && walvaultProcesses([pid], 'wal-prefetch').length > 0) kill9(pid);
      }
    });

    figures('walvault stream kill-9', {
      kills,
      'of them mid-stream': midStream,
      'segments checked': segs.length,
      gaps: holes.length,
      conflicts: conflicts.length,
      'WAL lost': holes.length + differ.length + (committed - withPartial),
      'wrong exit codes': wrongExit.length,
      [`rows recovered of ${committed} (archive alone: ${fromArchive})`]: withPartial,
    });
    expect(kills).toBeGreaterThanOrEqual(KILLS);
    expect(midStream).toBeGreaterThan(0);
    expect(wrongExit).toEqual([]);
    expect(holes).toEqual([]);
    expect(conflicts).toEqual([]);
    expect(differ).toEqual([]);
    expect(segs.length).toBeGreaterThanOrEqual(5);
    expect(segs[0]!.fileName <= backup.startWalFile).toBe(true);
    expect(withPartial).toBe(committed);
  });
});
