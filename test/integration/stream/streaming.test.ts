/**
 * `walvault stream` under write load against a real server: every finished segment in the archive
 * is byte-identical to the server's pg_wal file, the slot's restart_lsn follows the agent's flush
 * position and never passes it, the metrics endpoint and /status track the archiving, and a
 * graceful stop leaves the newest WAL in the archive as `.partial`. Also measures catch-up
 * throughput and peak RSS (printed, not asserted).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster, supportedMajors, useClusterPool } from '../../support/cluster.js';
import { runCli } from '../../support/walvault.js';
import {
  freePort,
  gaps,
  lsnBytes,
  openArchiveReader,
  replicationRows,
  scrape,
  segmentsOf,
  slotRow,
  startAgent,
  status,
  streamMajors,
  useWorkDir,
  waitFor,
  type Agent,
  type ArchiveReader,
} from './agent.js';

const SEG = 1024 * 1024;

describe.each(streamMajors(supportedMajors()))('PostgreSQL %i: walvault stream under load', (major) => {
  const pool = useClusterPool();
  const w = useWorkDir('walvault-stream-');
  let primary: PgCluster;
  let agent: Agent;
  let reader: ArchiveReader;
  let metricsPort: number;

  beforeAll(async () => {
    primary = pool.track(await PgCluster.create({ major, walSegSizeMb: 1 }));
    await primary.start();
    metricsPort = await freePort();
  });

  afterAll(async () => {
    await agent?.kill9();
    await reader?.close();
    await pool.destroyAll();
  });

  it('archives byte-identical segments while the slot follows the flush position', async () => {
    agent = startAgent({ cluster: primary, archive: w.archiveUrl, spoolDir: w.spoolDir, slot: 'walvault', createSlot: true, metricsPort });
    await agent.waitForLog((l) => l.msg === 'streaming', 20_000, "'streaming'");
    const before = await scrape(metricsPort);
    expect(before.get('walvault_segments_archived_total')).toBe(0);

    // Write load in steps; after each, the slot must never be ahead of what the agent reported flushed.
    const samples: Array<{ restart: bigint; flushed: bigint }> = [];
    const archivedSeen: number[] = [];
    for (let i = 0; i < 6; i++) {
      await primary.generateWal({ bytes: 1.5 * SEG });
      const slot = await slotRow(primary, 'walvault');
      const st = await status(metricsPort);
      const m = await scrape(metricsPort);
      archivedSeen.push(m.get('walvault_archived_lsn_bytes') ?? 0);
      if (slot?.restart_lsn && typeof st['flushedLsn'] === 'string') {
        samples.push({ restart: lsnBytes(slot.restart_lsn), flushed: lsnBytes(st['flushedLsn']) });
      }
    }
    const endLsn = await primary.currentLsn();
    const lastFull = await primary.switchWal();
    reader = await openArchiveReader(w.archiveUrl, SEG);
    await waitFor(async () => segmentsOf(await reader.catalog()).some((e) => e.fileName === lastFull), 30_000, `${lastFull} archived`);

    // The slot caught up with the agent's flush position (status interval 500 ms), never beyond it.
    const final = await waitFor(
      async () => {
        const slot = await slotRow(primary, 'walvault');
        return slot?.restart_lsn && lsnBytes(slot.restart_lsn) >= lsnBytes(endLsn) ? slot : undefined;
      },
      10_000,
      'restart_lsn to pass the end of the load',
    );
    expect(final.active).toBe(true);
    // Feedback: write = received >= flush = fsynced >= apply = archived, and apply reaches the end
    // of the last archived segment.
    const lastFullEnd = (lsnBytes(endLsn) / BigInt(SEG) + 1n) * BigInt(SEG);
    const rep = await waitFor(
      async () => (await replicationRows(primary)).find((r) => r.replay_lsn && lsnBytes(r.replay_lsn) >= lastFullEnd),
      10_000,
      'the reported apply (archived) position to reach the last archived segment',
    );
    expect(rep.application_name).toBe('walvault');
    expect(lsnBytes(rep.write_lsn!)).toBeGreaterThanOrEqual(lsnBytes(rep.flush_lsn!));
    expect(lsnBytes(rep.flush_lsn!)).toBeGreaterThanOrEqual(lsnBytes(rep.replay_lsn!));
    expect(lsnBytes(final.restart_lsn!)).toBeLessThanOrEqual(lsnBytes(rep.flush_lsn!));
    expect(samples.length).toBeGreaterThan(3);
    for (const s of samples) expect(s.restart).toBeLessThanOrEqual(s.flushed);
    expect(samples[samples.length - 1]!.restart).toBeGreaterThan(samples[0]!.restart);

    // Every finished segment equals the server's file (those still in pg_wal: all, with wal_keep_size 64MB).
    const entries = await reader.catalog();
    const segs = segmentsOf(entries, 1);
    expect(segs.length).toBeGreaterThanOrEqual(8);
    expect(gaps(entries)).toEqual([]);
    expect(await reader.errorKeys()).toEqual([]);
    let compared = 0;
    for (const e of segs) {
      const onServer = join(primary.walDir(), e.fileName);
      if (!existsSync(onServer)) continue;
      const archived = await reader.read(e.fileName);
      expect(archived.equals(readFileSync(onServer)), `${e.fileName} differs from pg_wal`).toBe(true);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(8);

    // The restore_command path reads the same bytes back.
    const dest = join(w.root, 'fetched');
    const res = await runCli('walvault', ['wal-fetch', lastFull, dest], {
      env: { WALVAULT_ARCHIVE: w.archiveUrl, WALVAULT_FETCH_PREFETCH: '0', WALVAULT_CONFIG: '/dev/null' },
    });
    expect(res.code, res.stderr).toBe(0);
    expect(readFileSync(dest).equals(readFileSync(join(primary.walDir(), lastFull)))).toBe(true);

    // Metrics advanced with the archive; /status agrees with them.
    const after = await scrape(metricsPort);
    expect(after.get('walvault_segments_archived_total')).toBeGreaterThanOrEqual(segs.length);
    const archivedLsn = after.get('walvault_archived_lsn_bytes')!;
    expect(archivedLsn).toBeGreaterThan(archivedSeen[0]!);
    for (let i = 1; i < archivedSeen.length; i++) expect(archivedSeen[i]!).toBeGreaterThanOrEqual(archivedSeen[i - 1]!);
    expect(archivedLsn).toBeGreaterThanOrEqual(Number(lsnBytes(endLsn)) - SEG);
    expect(after.get('walvault_bytes_archived_total')).toBeGreaterThanOrEqual(segs.length * SEG);
    const st = await status(metricsPort);
    expect(st).toMatchObject({ connected: true, timeline: 1, lastError: null, uploadErrors: 0, reconnects: 0 });
    expect(st['pendingUploads']).toBeLessThanOrEqual(2);
    expect(Date.now() - Date.parse(st['lastArchivedAt'] as string)).toBeLessThan(60_000);
    // Two uploads run at once, so the last one to finish may be the one before the newest.
    expect(segs.slice(-2).map((e) => e.fileName)).toContain(st['lastArchivedSegment']);
    for (const k of ['receivedLsn', 'flushedLsn', 'archivedLsn', 'serverLsn']) expect(st[k], k).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    const received = lsnBytes(st['receivedLsn'] as string);
    const flushed = lsnBytes(st['flushedLsn'] as string);
    const archived = lsnBytes(st['archivedLsn'] as string);
    expect(received).toBeGreaterThanOrEqual(flushed);
    expect(flushed).toBeGreaterThanOrEqual(archived);
    expect(Number(archived)).toBe(archivedLsn);
    expect(st['segmentsArchived']).toBe(after.get('walvault_segments_archived_total'));
    expect(typeof st['lagBytes']).toBe('number');
    expect(agent.errors()).toEqual([]);
  });

  it('catches up from the slot after a pause, and a graceful stop archives the newest WAL as .partial', async () => {
    expect(await agent.stop()).toBe(0);
    // The agent is gone: the slot keeps the WAL written meanwhile.
    const catchUpBytes = 24 * SEG;
    const gen = await primary.generateWal({ bytes: catchUpBytes });
    const lastFull = await primary.switchWal();
    await primary.query('CREATE TABLE marker (v text)');
    await primary.query("INSERT INTO marker VALUES ('after the last full segment')");
    const tailLsn = await primary.currentLsn();

    agent = startAgent({ cluster: primary, archive: w.archiveUrl, spoolDir: w.spoolDir, slot: 'walvault', metricsPort });
    const streaming = await agent.waitForLog((l) => l.msg === 'streaming', 20_000, "'streaming'");
    const archived = await agent.waitForLog((l) => l.msg === 'archived' && l['segment'] === lastFull, 60_000, `${lastFull} archived`);
    // From the first byte requested to the last segment stored, by the agent's own clock.
    const seconds = (Date.parse(archived['time'] as string) - Date.parse(streaming['time'] as string)) / 1000;
    const mbps = gen.bytes / SEG / seconds;
    // Receive up to the tail, then stop: the tail segment must land as .partial holding the marker row.
    await waitFor(
      async () => {
        const st = await status(metricsPort);
        return typeof st['flushedLsn'] === 'string' && lsnBytes(st['flushedLsn']) >= lsnBytes(tailLsn);
      },
      10_000,
      'the agent to flush the tail',
    );
    const rss = agent.peakRssKb();
    console.log(
      `[stream PG${major}] catch-up of ${(gen.bytes / SEG).toFixed(1)} MiB from the slot into a zstd posix archive: ` +
        `${seconds.toFixed(2)} s = ${mbps.toFixed(1)} MiB/s; agent peak RSS (VmHWM) ${rss} kB`,
    );
    expect(await agent.stop()).toBe(0);
    expect(agent.errors()).toEqual([]);

    const entries = await reader.catalog();
    expect(gaps(entries)).toEqual([]);
    const tailSeg = await primary.walFileName(tailLsn);
    const partial = entries.find((e) => e.kind === 'partial' && e.fileName === `${tailSeg}.partial`);
    expect(partial, `${tailSeg}.partial archived at stop`).toBeDefined();
    const bytes = await reader.read(`${tailSeg}.partial`);
    const server = readFileSync(join(primary.walDir(), tailSeg));
    const validEnd = Number(lsnBytes(tailLsn) % BigInt(SEG));
    expect(bytes.length).toBe(SEG);
    expect(bytes.subarray(0, validEnd).equals(server.subarray(0, validEnd)), 'the .partial holds the server WAL up to the tail').toBe(true);
  });
});
