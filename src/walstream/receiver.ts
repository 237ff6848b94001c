/**
 * The streaming agent: receives WAL over physical replication into the spool, archives finished
 * segments, follows timeline switches, reconnects with capped exponential backoff, and reports
 * positions back so a replication slot keeps WAL until the agent holds it safely. The parts:
 * reconnect.ts (the session loop), session-setup.ts (what a session settles before it streams),
 * spool.ts + segment-encoder.ts (the segment writer), status.ts (status updates), uploads.ts (the
 * upload hand-off).
 */
import type { Logger } from '../common/log.js';
import { ReplicationError, describeCause, type WalvaultError } from '../common/errors.js';
import { sleep } from '../common/retry.js';
import type { ArchiveContext } from '../archive/context.js';
import { pushFile } from '../archive/push.js';
import { addLsn, formatLsn, type Lsn } from '../segment/lsn.js';
import { SegmentName } from '../segment/names.js';
import { parseSegSizeSetting } from '../segment/segsize.js';
import { ReplicationConnection } from '../postgres/replication/connection.js';
import type { ReplicationMessage } from '../postgres/replication/protocol.js';
import type { Timeline } from '../segment/timeline.js';
import { Spool, prepareSpoolDir } from './spool.js';
import { newReceiverStats, type ReceiverOptions, type ReceiverStats } from './options.js';
import { UploadQueue } from './uploads.js';
import { StatusReporter } from './status.js';
import { fatalStreamError, reconnectLoop, reconnectPolicy } from './reconnect.js';
import { archiveHistories, checkArchiveFits, ensureSlot, startPosition, timelineAfter, type SetupContext } from './session-setup.js';

export type { ReceiverOptions, ReceiverStats } from './options.js';
export { UPLOAD_RETRY, uploadMayPass } from './uploads.js';
export { reconnectPolicy } from './reconnect.js';

/** How long the socket rests after a small read, so that the next read takes more (see coalesceReads). */
const COALESCE_MS = 10;

export class WalReceiver {
  private readonly log: Logger;
  private readonly archive: ArchiveContext;
  private readonly uploads: UploadQueue;
  private readonly status: StatusReporter;
  private spool: Spool | undefined;
  private segSize = 0;
  private conn: ReplicationConnection | undefined;
  private timeline = 0;
  private paused = false;
  private onResume: (() => void) | undefined;
  private stopping = false;
  private fatal: WalvaultError | undefined;
  private readonly halt = new AbortController();
  readonly stats: ReceiverStats = newReceiverStats();

  constructor(
    archive: ArchiveContext,
    private readonly opts: ReceiverOptions,
    log: Logger,
  ) {
    // Uploads are not cancelled by the stop signal: a graceful stop lets them finish (bounded wait).
    const { signal: _ignored, ...rest } = archive;
    this.archive = rest;
    this.log = log.child({ component: 'walstream' });
    this.uploads = new UploadQueue(
      this.archive,
      this.stats,
      this.log,
      {
        stopping: () => this.stopping,
        fatal: (err) => this.failFatal(err),
        changed: (archived) => {
          this.applyBackpressure();
          if (archived) this.status.send(false);
        },
        remove: (name) => this.spool?.remove(name),
      },
      opts.uploadConcurrency,
      opts.uploads,
    );
    this.status = new StatusReporter({
      spool: () => this.spool,
      conn: () => this.conn,
      uploads: this.uploads,
      stats: this.stats,
      log: this.log,
    });
  }

  /** Streams until `signal` aborts, then shuts down gracefully. Throws only on fatal errors. */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = (): void => {
      this.stopping = true;
      this.onResume?.();
      this.endStream();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    // Stops on the caller's signal or on a fatal upload refusal (see failFatal).
    const stop = AbortSignal.any([signal, this.halt.signal]);
    try {
      prepareSpoolDir(this.opts.spoolDir);
      await reconnectLoop(stop, reconnectPolicy(this.opts), this.log, {
        run: (s) => this.session(s),
        cleanup: async () => {
          this.stats.connected = false;
          await this.conn?.close();
          this.conn = undefined;
        },
        connected: () => this.stats.connected,
        failed: (err, retried) => {
          this.stats.lastError = describeCause(err);
          if (retried) this.stats.reconnects++;
        },
        paused: () => (this.paused ? this.resumed(stop) : undefined),
      });
      if (this.fatal) throw this.fatal;
    } finally {
      signal.removeEventListener('abort', onAbort);
      await this.shutdown();
    }
  }

  private resumed(stop: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      this.onResume = resolve;
      if (!this.paused || stop.aborted) resolve();
    }).finally(() => {
      this.onResume = undefined;
    });
  }

  private async session(signal: AbortSignal): Promise<void> {
    const conn = await ReplicationConnection.connect(this.opts.conninfo, this.log, this.opts.applicationName ?? 'walvault', {
      directReads: true,
    });
    this.conn = conn;
    const system = await conn.identifySystem();
    const segSize = parseSegSizeSetting(await conn.show('wal_segment_size'));
    const major = Math.floor(Number(await conn.show('server_version_num')) / 10000);
    await checkArchiveFits(this.archive, system.systemId, segSize, major);
    if (this.segSize !== 0 && this.segSize !== segSize) {
      throw new ReplicationError(`unable to stream: wal_segment_size changed from ${this.segSize} to ${segSize}`);
    }
    this.segSize = segSize;
    this.spool ??= new Spool(this.opts.spoolDir, segSize, this.archive.compression, this.opts.compressThreads ?? 0);
    const spool = this.spool;
    this.stats.connected = true;
    this.stats.serverLsn = system.xlogpos;
    this.log.info({ systemId: system.systemId, timeline: system.timeline, serverLsn: formatLsn(system.xlogpos) }, 'connected');

    // A reconnect within this process: the segment being received is closed (fsynced) and restarts
    // from its beginning like one left by an earlier run; continuing it in memory would expect the
    // bytes at its end, while streaming restarts at the segment start.
    const open = spool.closeAsPartial();
    if (open) this.log.info({ segment: open.name, lsn: formatLsn(open.end) }, 'resuming the open segment from its start');
    // Spool files left by an earlier run: finished segments and history files to upload.
    for (const f of spool.pendingFiles()) this.uploads.enqueue(f.name, f.path, segSize);
    const setup: SetupContext = {
      archive: this.archive,
      conn,
      spool,
      uploads: this.uploads,
      log: this.log,
      slot: this.opts.slot,
      createSlot: this.opts.createSlot,
      major,
    };
    if (this.opts.slot) await ensureSlot(setup);

    let { start, timeline } = await startPosition(setup, system.timeline, system.xlogpos);
    await archiveHistories(setup, Math.max(timeline, system.timeline));
    const statusTimer = setInterval(() => this.status.onTimer(), this.opts.statusIntervalMs);
    try {
      while (!signal.aborted && !this.paused) {
        this.timeline = timeline;
        this.stats.timeline = timeline;
        this.log.info({ timeline, lsn: formatLsn(start) }, 'streaming');
        const end = await conn.startReplication(
          // Synchronous commits wait for our flush reports: no read may wait there.
          {
            ...(this.opts.slot ? { slot: this.opts.slot } : {}),
            startLsn: start,
            timeline,
            coalesceMs: this.opts.synchronous ? 0 : COALESCE_MS,
          },
          { onMessage: (m) => this.onMessage(m) },
        );
        if (end.next === undefined || this.stopping) break;
        // The server ended a historic timeline: keep its last segment as .partial, then follow.
        const partial = spool.closeAsPartial();
        const next = await timelineAfter(setup, timeline, end.next.timeline, end.next.start);
        await archiveHistories(setup, next.timeline);
        if (partial) this.uploads.enqueuePartial(partial.name, partial.path, true);
        this.log.info({ timeline: next.timeline, lsn: formatLsn(end.next.start) }, 'timeline switch');
        timeline = next.timeline as Timeline;
        start = SegmentName.fromLsn(timeline, next.begin, segSize).startLsn;
      }
    } finally {
      clearInterval(statusTimer);
    }
  }

  private onMessage(msg: ReplicationMessage): void {
    this.stats.serverLsn = msg.walEnd;
    if (msg.kind === 'xlogdata') {
      if (msg.data.length === 0) return;
      const spool = this.spool!;
      const finished = spool.write(this.timeline, msg.dataStart, msg.data);
      this.stats.bytesReceived += msg.data.length;
      this.stats.receivedLsn = spool.receivedEnd ?? addLsn(msg.dataStart, msg.data.length);
      for (const f of finished) {
        this.status.segmentFinished(addLsn(SegmentName.parse(f.name, this.segSize).startLsn, this.segSize));
        this.uploads.enqueue(f.name, f.path, this.segSize, f.encoding);
      }
      if (finished.length > 0) this.status.send(false);
      if (this.opts.synchronous) this.status.scheduleFlush();
      return;
    }
    if (msg.replyRequested) {
      if (this.opts.synchronous) this.status.flushNow();
      else this.spool?.writeOut();
      this.status.send(false);
    }
  }

  /** Reports the final position while the stream is still open, then ends it cleanly (CopyDone). */
  private endStream(): void {
    try {
      this.status.flushNow();
      this.status.send(false);
    } catch (err) {
      this.log.error({ err }, 'could not flush before ending the stream');
    }
    this.conn?.stopStreaming();
  }

  /** Ends streaming and makes run() throw `err` after the graceful shutdown. */
  private failFatal(err: unknown): void {
    if (this.fatal) return;
    this.fatal = fatalStreamError(err);
    this.stopping = true;
    this.onResume?.();
    this.endStream();
    this.halt.abort(this.fatal);
  }

  private applyBackpressure(): void {
    const segs = this.uploads.segmentsPending;
    if (!this.paused && segs >= this.opts.maxPending) {
      this.paused = true;
      // End the stream rather than stop reading the socket: a walsender whose client reads nothing
      // (while still answering with status updates) holds up the server's shutdown indefinitely.
      // The slot keeps the WAL meanwhile; run() reconnects once storage has caught up.
      this.endStream();
      this.log.warn({ pendingUploads: segs }, 'storage is behind; pausing the stream');
    } else if (this.paused && segs < Math.max(1, Math.floor(this.opts.maxPending / 2))) {
      this.paused = false;
      this.onResume?.();
      this.log.info({ pendingUploads: segs }, 'storage caught up; resuming the stream');
    }
  }

  /** Graceful end: keep what was received, archive it as `.partial`, drain uploads, report. */
  private async shutdown(): Promise<void> {
    const spool = this.spool;
    if (!spool) return;
    this.stopping = true;
    try {
      this.status.flushNow();
      const open = spool.openSegment;
      const end = spool.receivedEnd;
      if (open && end !== undefined && end > open.startLsn) {
        // Archive it as .partial and keep the spool file: the next start resumes from it.
        const partial = spool.closeAsPartial()!;
        await pushFile(this.archive, partial.path, partial.name);
      }
    } catch (err) {
      this.log.error({ err }, 'could not archive the partial segment at shutdown');
    }
    await Promise.race([this.uploads.onIdle(), sleep(30_000)]);
    this.log.info(
      { archivedLsn: formatNullableLsn(this.stats.archivedLsn), flushedLsn: formatNullableLsn(this.stats.flushedLsn) },
      'stopped',
    );
  }
}

function formatNullableLsn(value: Lsn | null): string | null {
  return value === null ? null : formatLsn(value);
}
