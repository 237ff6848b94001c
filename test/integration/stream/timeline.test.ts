/**
 * The agent streams from a standby (through a physical slot on the standby), the standby is
 * promoted: the agent follows to timeline 2, archives 00000002.history and the last timeline-1
 * segment as `.partial`, and continues with timeline-2 segments, byte-identical to the promoted
 * server's pg_wal.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster, supportedMajors, useClusterPool } from '../../support/cluster.js';
import {
  gaps,
  lsnBytes,
  openArchiveReader,
  segmentsOf,
  slotRow,
  startAgent,
  streamMajors,
  useWorkDir,
  waitFor,
  type Agent,
  type ArchiveReader,
} from './agent.js';

const SEG = 1024 * 1024;

describe.each(streamMajors(supportedMajors()))('PostgreSQL %i: streaming from a standby that is promoted', (major) => {
  const pool = useClusterPool();
  const w = useWorkDir('walvault-stream-tli-');
  let primary: PgCluster;
  let standby: PgCluster;
  let agent: Agent;
  let reader: ArchiveReader;

  beforeAll(async () => {
    primary = pool.track(await PgCluster.create({ major, walSegSizeMb: 1 }));
    await primary.start();
    const backup = await primary.baseBackup({ waitForArchive: false });
    standby = pool.track(await PgCluster.fromBackup(backup.dir, { standby: true, primaryConninfo: primary.conninfo() }));
    await standby.start();
    reader = await openArchiveReader(w.archiveUrl, SEG);
  });

  afterAll(async () => {
    await agent?.kill9();
    await reader?.close();
    await pool.destroyAll();
  });

  it('follows the promotion to timeline 2', async () => {
    agent = startAgent({ cluster: standby, archive: w.archiveUrl, spoolDir: w.spoolDir, slot: 'walvault', createSlot: true });
    await agent.waitForLog((l) => l.msg === 'streaming', 20_000, "'streaming'");
    await primary.generateWal({ bytes: 2.5 * SEG });
    const lastOnPrimary = await primary.currentLsn();
    await standby.waitForLsnReplayed(lastOnPrimary, { timeoutMs: 30_000 });
    // The standby's slot follows the agent (a slot on a standby works like one on a primary).
    await waitFor(
      async () => {
        const s = await slotRow(standby, 'walvault');
        return s?.restart_lsn && lsnBytes(s.restart_lsn) >= lsnBytes(lastOnPrimary) - BigInt(SEG);
      },
      20_000,
      'the standby slot to advance',
    );
    await waitFor(async () => segmentsOf(await reader.catalog(), 1).length >= 2, 20_000, 'timeline-1 segments archived');

    // Promotion: the old primary goes away, the standby becomes timeline 2.
    await primary.stop();
    await standby.promote();
    expect(await standby.timeline()).toBe(2);
    const history = readFileSync(join(standby.walDir(), '00000002.history'), 'utf8');
    const switchLsn = /^1\s+([0-9A-F]+\/[0-9A-F]+)/m.exec(history)![1]!;
    const switchSeg = lsnBytes(switchLsn) / BigInt(SEG);
    await standby.generateWal({ bytes: 2.5 * SEG });
    const lastTli2 = await standby.switchWal();
    await waitFor(async () => segmentsOf(await reader.catalog(), 2).some((e) => e.fileName === lastTli2), 30_000, `${lastTli2} archived`);
    await agent.waitForLog((l) => l.msg === 'timeline switch', 1_000, "'timeline switch'");

    const entries = await reader.catalog();
    expect(entries.some((e) => e.kind === 'history' && e.fileName === '00000002.history')).toBe(true);
    const oldPartial = entries.find((e) => e.kind === 'partial' && e.timeline === 1);
    expect(oldPartial, 'the last timeline-1 segment archived as .partial').toBeDefined();
    expect(oldPartial!.segno).toBe(switchSeg);
    // Timeline 1 up to the switch, timeline 2 from the switch segment on: no gap in between.
    expect(gaps(entries)).toEqual([]);
    expect(await reader.errorKeys()).toEqual([]);
    const tli1 = segmentsOf(entries, 1);
    const tli2 = segmentsOf(entries, 2);
    expect(tli1[tli1.length - 1]!.segno).toBe(switchSeg - 1n);
    expect(tli2[0]!.segno).toBe(switchSeg);
    expect(tli2.length).toBeGreaterThanOrEqual(3);

    // The .partial holds timeline 1 up to the switch point, as the promoted server's own copy does.
    const partial = await reader.read(oldPartial!.fileName);
    // PostgreSQL renames its copy to .partial only when it archives; otherwise it keeps the segment name.
    const names = [oldPartial!.fileName, oldPartial!.fileName.slice(0, 24)].map((n) => join(standby.walDir(), n));
    const serverCopy = names.find((n) => existsSync(n));
    expect(serverCopy, 'the promoted server still has its timeline-1 copy').toBeDefined();
    const upTo = Number(lsnBytes(switchLsn) % BigInt(SEG));
    expect(upTo).toBeGreaterThan(0);
    expect(partial.subarray(0, upTo).equals(readFileSync(serverCopy!).subarray(0, upTo))).toBe(true);
    const history2 = await reader.read('00000002.history');
    expect(history2.toString('utf8')).toBe(history);
    let compared = 0;
    for (const e of tli2) {
      const onServer = join(standby.walDir(), e.fileName);
      if (!existsSync(onServer)) continue;
      expect((await reader.read(e.fileName)).equals(readFileSync(onServer)), e.fileName).toBe(true);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(3);
    expect(agent.logs.filter((l) => l.msg === 'streaming').map((l) => l['timeline'])).toEqual([1, 2]);
    // Ctrl-C stops it as cleanly as SIGTERM.
    expect(await agent.stop('SIGINT')).toBe(0);
    expect(agent.errors()).toEqual([]);
  });
});
