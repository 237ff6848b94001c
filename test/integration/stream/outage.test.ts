/**
 * The agent survives the server and the storage going away, into an S3 archive on s3rver:
 *   - a primary restart mid-stream: it reconnects and goes on where it was;
 *   - a storage outage: uploads retry, the stream pauses at --max-pending, the slot then holds the
 *     WAL on the server (wal_keep_size = 0, so only the slot does), and everything is archived
 *     once storage is back;
 *   - both at once: the server restarts while storage is still down.
 * After each, the archive has no gap and no refused duplicate.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster, supportedMajors, useClusterPool } from '../../support/cluster.js';
import { startS3rver, type S3rverHandle } from '../../support/s3server.js';
import {
  freePort,
  gaps,
  lsnBytes,
  openArchiveReader,
  scrape,
  segmentsOf,
  slotRow,
  sleep,
  spoolFiles,
  startAgent,
  status,
  streamMajors,
  useWorkDir,
  waitFor,
  Agent,
  type ArchiveReader,
} from './agent.js';

const SEG = 1024 * 1024;

/** Timeline 1 segment name of a segment number (1 MiB segments: 4096 per log file). */
function segmentName(segno: bigint): string {
  const hex = (n: bigint): string => n.toString(16).toUpperCase().padStart(8, '0');
  return `00000001${hex(segno / 4096n)}${hex(segno % 4096n)}`;
}

describe.each(streamMajors(supportedMajors()))('PostgreSQL %i: server restart and storage outage', (major) => {
  const pool = useClusterPool();
  const w = useWorkDir('walvault-stream-outage-');
  let s3: S3rverHandle;
  let primary: PgCluster;
  let agent: Agent;
  let reader: ArchiveReader;
  let metricsPort: number;
  const archiveUrl = 's3://walvault-test/stream';

  beforeAll(async () => {
    s3 = await startS3rver({ bucket: 'walvault-test' });
    primary = pool.track(await PgCluster.create({ major, walSegSizeMb: 1, config: { wal_keep_size: 0 } }));
    await primary.start();
    reader = await openArchiveReader(archiveUrl, SEG, { endpoint: s3.endpoint });
    metricsPort = await freePort();
    agent = startAgent({
      cluster: primary,
      archive: archiveUrl,
      spoolDir: w.spoolDir,
      slot: 'walvault',
      createSlot: true,
      maxPending: 2,
      metricsPort,
      extraArgs: [
        '--s3-endpoint',
        s3.endpoint,
        '--s3-force-path-style',
        '--s3-checksums',
        'when_required',
        '--s3-max-attempts',
        '2',
        '--s3-request-timeout',
        '3000',
      ],
      env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' },
    });
    await agent.waitForLog((l) => l.msg === 'streaming', 20_000, "'streaming'");
  });

  afterAll(async () => {
    await agent?.kill9();
    await reader?.close();
    await pool.destroyAll();
    await s3?.stop();
  });

  /** Writes WAL, ends the segment, waits until the archive holds it; returns that segment's name. */
  async function writeAndWaitArchived(bytes: number, timeoutMs = 40_000): Promise<string> {
    await primary.generateWal({ bytes });
    const last = await primary.switchWal();
    await waitFor(async () => segmentsOf(await reader.catalog()).some((e) => e.fileName === last), timeoutMs, `${last} archived`);
    return last;
  }

  async function checkArchive(): Promise<number> {
    const entries = await reader.catalog();
    expect(gaps(entries)).toEqual([]);
    expect(await reader.errorKeys()).toEqual([]);
    return segmentsOf(entries).length;
  }

  it('reconnects after a primary restart mid-stream', async () => {
    await writeAndWaitArchived(2 * SEG);
    // Half a segment more: the agent holds an open, unfinished segment when the server goes away.
    await primary.generateWal({ bytes: SEG / 2 });
    const target = await primary.currentLsn();
    await waitFor(
      async () => {
        const st = await status(metricsPort);
        return st['connected'] === true && typeof st['flushedLsn'] === 'string' && lsnBytes(st['flushedLsn']) >= lsnBytes(target);
      },
      20_000,
      'the agent to be streaming and flushed',
    );
    const mark = agent.mark();
    await primary.restart();
    await agent.waitForLog(Agent.lostServer, 20_000, 'the lost connection', mark);
    await agent.waitForLog((l) => l.msg === 'resuming the open segment from its start', 20_000, 'the open segment resumed', mark);
    await agent.waitForLog((l) => l.msg === 'streaming', 20_000, 'streaming again', mark);
    await writeAndWaitArchived(2 * SEG);
    expect(await checkArchive()).toBeGreaterThanOrEqual(5);
    expect(agent.errors()).toEqual([]);
  });

  it('holds WAL in the slot during a storage outage and catches up when storage returns', async () => {
    await s3.suspend();
    const mark = agent.mark();
    const outageStart = await primary.currentLsn();
    // More than --max-pending segments: the agent must pause the stream rather than spool without bound.
    await primary.generateWal({ bytes: 6 * SEG });
    await agent.waitForLog((l) => l.msg === 'upload failed; retrying', 20_000, 'a failed upload', mark);
    await agent.waitForLog((l) => l.msg === 'storage is behind; pausing the stream', 20_000, 'the stream to pause', mark);
    await primary.switchWal();
    await primary.checkpoint();
    const slot = await slotRow(primary, 'walvault');
    const serverLsn = await primary.currentLsn();
    // The slot stops where the agent stopped reading; the server keeps every segment after it.
    expect(lsnBytes(slot!.restart_lsn!)).toBeLessThan(lsnBytes(serverLsn) - BigInt(SEG));
    const firstKept = lsnBytes(slot!.restart_lsn!) / BigInt(SEG);
    const lastSeg = segmentName(lsnBytes(serverLsn) / BigInt(SEG));
    for (let n = firstKept; n <= lsnBytes(serverLsn) / BigInt(SEG); n++) {
      expect(existsSync(join(primary.walDir(), segmentName(n))), `${segmentName(n)} kept by the slot`).toBe(true);
    }
    // /status tells the operator what is going on.
    const during = await status(metricsPort);
    expect(during['pendingUploads']).toBeGreaterThanOrEqual(2);
    expect(during['uploadErrors']).toBeGreaterThan(0);
    expect(String(during['lastError'])).toMatch(/unable to/);
    expect(lsnBytes(during['archivedLsn'] as string)).toBeLessThan(lsnBytes(during['flushedLsn'] as string));
    const errorsMetric = (await scrape(metricsPort)).get(`walvault_upload_errors_total{archive="${archiveUrl}"}`);
    expect(errorsMetric).toBeGreaterThan(0);
    await s3.resume();
    const last = await writeAndWaitArchived(SEG, 60_000);
    const after = await waitFor(
      async () => {
        const st = await status(metricsPort);
        return lsnBytes(st['archivedLsn'] as string) > lsnBytes(serverLsn) ? st : undefined;
      },
      10_000,
      'the archived position to pass the outage',
    );
    expect(after['pendingUploads']).toBeLessThanOrEqual(2);
    await agent.waitForLog((l) => l.msg === 'storage caught up; resuming the stream', 5_000, 'the stream to resume', mark);
    const n = await checkArchive();
    expect(segmentsOf(await reader.catalog()).some((e) => e.segno! * BigInt(SEG) <= lsnBytes(outageStart))).toBe(true);
    expect(last > lastSeg).toBe(true);
    expect(n).toBeGreaterThanOrEqual(12);
  });

  it('restarts the server while storage is down and the stream is paused, and still loses nothing', async () => {
    const mark = agent.mark();
    await s3.suspend();
    await primary.generateWal({ bytes: 3 * SEG });
    await agent.waitForLog((l) => l.msg === 'storage is behind; pausing the stream', 20_000, 'the stream to pause', mark);
    // A paused agent must not hold up the server's shutdown (a walsender waits for its client to
    // take all WAL before the server can stop).
    const t0 = Date.now();
    await primary.restart({ timeoutMs: 20_000 });
    expect(Date.now() - t0).toBeLessThan(15_000);
    await primary.generateWal({ bytes: 2 * SEG });
    await sleep(1000);
    expect(agent.running, agent.tail()).toBe(true);
    await s3.resume();
    await writeAndWaitArchived(SEG, 60_000);
    await checkArchive();
    expect(await agent.stop()).toBe(0);
    // Nothing finished is left behind in the spool: at most the open segment, kept as .partial.
    expect(
      spoolFiles(w.spoolDir).filter((f) => !f.endsWith('.partial')),
      agent.tail(15),
    ).toEqual([]);
    expect(agent.errors()).toEqual([]);
  });
});
