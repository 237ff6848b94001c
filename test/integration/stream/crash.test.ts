/**
 * kill -9 of the streaming agent at random points during write load, restarted each time: the
 * archive has no gap and no refused duplicate, a final SIGTERM leaves the newest WAL as `.partial`,
 * and a base backup taken before the load, replayed by a standby (see replayArchive), reaches:
 *   - from the archive alone (restore_command = wal-fetch): every row committed before the end of the
 *     last full segment, no more (PostgreSQL never asks restore_command for a `.partial` name);
 *   - with the `.partial` restored into pg_wal under its segment name (the operator's manual step):
 *     every committed row.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster, supportedMajors, useClusterPool } from '../../support/cluster.js';
import type { BaseBackup } from '../../../tools/pgcluster/index.js';
import { createLoadTable, maxId, startLoad } from '../../support/load.js';
import {
  gaps,
  lsnBytes,
  waitForAgentFlush,
  openArchiveReader,
  replayArchive,
  segmentsOf,
  sleep,
  spoolFiles,
  startAgent,
  streamMajors,
  useWorkDir,
  type Agent,
  type ArchiveReader,
} from './agent.js';

const SEG = 1024 * 1024;
/** ~100 kB of WAL per batch, one every ~200 ms: a segment every 2 s or so, so the replay stays short. */
const BATCH = 400;
const PAUSE_MS = 150;

describe.each(streamMajors(supportedMajors()))('PostgreSQL %i: agent crashes under load', (major) => {
  const pool = useClusterPool();
  const w = useWorkDir('walvault-stream-crash-');
  let primary: PgCluster;
  let reader: ArchiveReader;
  let agent: Agent | undefined;

  beforeAll(async () => {
    primary = pool.track(await PgCluster.create({ major, walSegSizeMb: 1 }));
    await primary.start();
    await createLoadTable(primary);
    reader = await openArchiveReader(w.archiveUrl, SEG);
  });

  afterAll(async () => {
    await agent?.kill9();
    await reader?.close();
    await pool.destroyAll();
  });

  it('leaves no gap after kill -9 at random points, and recovery reaches every committed row', async () => {
    const start = (): Agent =>
      startAgent({ cluster: primary, archive: w.archiveUrl, spoolDir: w.spoolDir, slot: 'walvault', createSlot: true });
    agent = start();
    await agent.waitForLog((l) => l.msg === 'streaming', 20_000, "'streaming'");
    // The backup's WAL starts after the agent's start point, so the archive holds all it needs.
    const backup: BaseBackup = await primary.baseBackup({ waitForArchive: false });

    const load = startLoad(primary, { batch: BATCH, pauseMs: PAUSE_MS });
    const kills: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        await sleep(400 + Math.floor(Math.random() * 1200));
        const spool = spoolFiles(w.spoolDir);
        await agent.kill9();
        kills.push(`kill ${i + 1} after ${load.batches.length} batches, spool: ${spool.join(' ')}`);
        await sleep(Math.floor(Math.random() * 400));
        agent = start();
        await agent.waitForLog((l) => l.msg === 'streaming', 20_000, "'streaming' after restart");
      }
      // Enough WAL for a few full segments (~100 kB a batch), however quick the kills were.
      while (load.batches.length < 35) await sleep(100);
    } finally {
      await load.stop();
    }
    const batches = load.batches;
    const committed = batches[batches.length - 1]!.lastId;
    const endLsn = await primary.currentLsn();

    // Let the agent receive everything, then stop it gracefully: the newest WAL goes out as .partial.
    await waitForAgentFlush(primary, endLsn, 30_000);
    expect(await agent.stop()).toBe(0);
    expect(agent.errors()).toEqual([]);

    const entries = await reader.catalog();
    const segs = segmentsOf(entries, 1);
    expect(segs.length, kills.join('\n')).toBeGreaterThanOrEqual(3);
    expect(gaps(entries), `gaps; ${kills.join('\n')}`).toEqual([]);
    expect(await reader.errorKeys()).toEqual([]);
    // The first archived segment holds the backup's start, so recovery can begin.
    expect(segs[0]!.fileName <= backup.startWalFile).toBe(true);

    const tailSeg = await primary.walFileName(endLsn);
    const lastFull = segs[segs.length - 1]!;
    expect(lastFull.fileName < tailSeg).toBe(true);
    const partialName = `${tailSeg}.partial`;
    expect(
      entries.some((e) => e.kind === 'partial' && e.fileName === partialName),
      `${partialName} archived`,
    ).toBe(true);
    const partial = await reader.read(partialName);
    const validEnd = Number(lsnBytes(endLsn) % BigInt(SEG));
    expect(partial.subarray(0, validEnd).equals(readFileSync(join(primary.walDir(), tailSeg)).subarray(0, validEnd))).toBe(true);

    // Everything committed before the end of the last full segment is recoverable from the archive alone.
    const lastFullEnd = (lastFull.segno! + 1n) * BigInt(SEG);
    const safe = batches.filter((b) => b.lsnAfter <= lastFullEnd).pop()?.lastId ?? 0;
    // ... and nothing whose WAL starts after it (a batch starts after the previous one's lsnAfter).
    const reachable = batches.filter((b, i) => i === 0 || batches[i - 1]!.lsnAfter < lastFullEnd).pop()!.lastId;

    const { fromArchive, withPartial: full } = await replayArchive({
      backup,
      restoreCommand: w.restoreCommand,
      configFile: w.configFile,
      workDir: w.root,
      tailSegment: tailSeg,
      count: maxId,
      expectAll: committed,
      track: (c) => pool.track(c),
    });

    console.log(
      `[stream crash PG${major}] ${kills.length} kills; ${segs.length} segments + ${partialName}; committed ${committed} rows; ` +
        `archive alone recovers ${fromArchive} (expected ${safe}..${reachable}: commits before the end of ${lastFull.fileName}); ` +
        `with the .partial in pg_wal: ${full}\n  ${kills.join('\n  ')}`,
    );
    expect(fromArchive).toBeGreaterThanOrEqual(safe);
    expect(fromArchive).toBeLessThanOrEqual(reachable);
    expect(fromArchive).toBeLessThan(committed);
    expect(full).toBe(committed);
  });
});
