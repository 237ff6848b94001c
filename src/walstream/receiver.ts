/**
 * The streaming agent: receives WAL over physical replication into the spool, archives finished
 * segments, follows timeline switches, reconnects with capped exponential backoff, and reports
 * positions back so a replication slot keeps WAL until the agent holds it safely.
 *
 * Standby status update semantics:
 *   write = end of WAL received and written to the spool file
 *   flush = end of WAL fsynced in the spool (advances the slot; what synchronous commit waits for)
 *   apply = end of WAL durably archived (start of the oldest segment not archived yet)
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import PQueue from 'p-queue';
import type { Logger } from '../common/log.js';
import {
  ArchiveMismatchError,
  LocalIoError,
  ReplicationError,
  SqlState,
  WalvaultError,
  describeCause,
  sqlStateOf,
} from '../common/errors.js';
import { Backoff, sleep, withRetry, type RetryPolicy } from '../common/retry.js';
import { writeFileAtomic } from '../common/atomic-file.js';
import type { ArchiveContext } from '../archive/context.js';
import { pushFile } from '../archive/push.js';
import { requireIdentity } from '../archive/identity.js';
import { lastArchivedSegment } from '../archive/catalog/newest.js';
import { formatLsn, lsn, type Lsn } from '../segment/lsn.js';
import { SegmentName, classifyWalFileName, historyFileName, parseWalFileName, segmentStartLsn, segnoOfLsn } from '../segment/names.js';
import { parseSegSizeSetting } from '../segment/segsize.js';
import { parseTimelineHistory, timelineAfterEnd, timelineToStreamFrom, type TimelineSpan } from '../segment/history.js';
import { timeline as toTimeline } from '../segment/timeline.js';
import { ReplicationConnection } from '../postgres/replication/connection.js';
import type { ReplicationMessage } from '../postgres/replication/protocol.js';
import { Spool, prepareSpoolDir } from './spool.js';
import type { UploadObserver } from '../daemon/metrics.js';

export interface ReceiverOptions {
  readonly conninfo?: string;
  readonly slot?: string;
  readonly createSlot: boolean;
  /** fsync and report after every burst of messages (fit to be a synchronous standby). */
  readonly synchronous: boolean;
  readonly spoolDir: string;
  readonly statusIntervalMs: number;
  /** Finished segments waiting for upload before the agent stops reading from the server. */
  readonly maxPending: number;
  readonly uploadConcurrency: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly applicationName?: string;
  /** Hears every upload outcome as it happens (the metrics' duration histogram needs each one). */
  readonly uploads?: UploadObserver;
}

export interface ReceiverStats {
  connected: boolean;
  timeline: number;
  receivedLsn: Lsn | null;
  flushedLsn: Lsn | null;
  archivedLsn: Lsn | null;
  serverLsn: Lsn | null;
  bytesReceived: number;
  /** Segments uploaded; files the archive already held count in `alreadyArchived`. */
  segmentsArchived: number;
  /** Original bytes of the segments uploaded. */
  bytesArchived: number;
  alreadyArchived: number;
  uploadErrors: number;
  pendingUploads: number;
  lastError: string | null;
  lastArchivedSegment: string | null;
  lastArchivedAt: string | null;
  reconnects: number;
}

export class WalReceiver {
  private readonly log: Logger;
  private readonly uploads: PQueue;
  private readonly pending = new Map<string, Lsn>(); // name -> segment start (history files: 0)
  private spool: Spool | undefined;
  private segSize = 0;
  private conn: ReplicationConnection | undefined;
  private timeline = 0;
  private flushedEnd: Lsn | undefined;
  private paused = false;
  private onResume: (() => void) | undefined;
  private flushScheduled = false;
  private stopping = false;
  private fatal: WalvaultError | undefined;
  private readonly halt = new AbortController();
  readonly stats: ReceiverStats = {
    connected: false,
    timeline: 0,
    receivedLsn: null,
    flushedLsn: null,
    archivedLsn: null,
    serverLsn: null,
    bytesReceived: 0,
    segmentsArchived: 0,
    bytesArchived: 0,
    alreadyArchived: 0,
    uploadErrors: 0,
    pendingUploads: 0,
    lastError: null,
    lastArchivedSegment: null,
    lastArchivedAt: null,
    reconnects: 0,
  };

  private readonly archive: ArchiveContext;

  constructor(
    archive: ArchiveContext,
    private readonly opts: ReceiverOptions,
    log: Logger,
  ) {
    // Uploads are not cancelled by the stop signal: a graceful stop lets them finish (bounded wait).
    const { signal: _ignored, ...rest } = archive;
    this.archive = rest;
    this.log = log.child({ component: 'walstream' });
    this.uploads = new PQueue({ concurrency: opts.uploadConcurrency });
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
    const reconnect = new Backoff(reconnectPolicy(this.opts));
    try {
      prepareSpoolDir(this.opts.spoolDir);
      while (!stop.aborted) {
        const started = Date.now();
        let failure: WalvaultError | undefined;
        let failedConnected = false;
        try {
          await this.session(stop);
        } catch (err) {
          this.stats.lastError = describeCause(err);
          if (stop.aborted) break;
          // Only errors known to be passing (connection, server restart, storage outage) are
          // retried; anything else (a local I/O error, a refusal, a bug) stops the agent with its own message.
          if (!(err instanceof WalvaultError && err.retryable)) throw fatalStreamError(err);
          failure = err;
          failedConnected = this.stats.connected;
          this.stats.reconnects++;
        } finally {
          this.stats.connected = false;
          await this.conn?.close();
          this.conn = undefined;
        }
        if (stop.aborted) break;
        if (failure === undefined && this.paused) {
          // Backpressure ended the stream: reconnect once storage has caught up.
          await new Promise<void>((resolve) => {
            this.onResume = resolve;
            if (!this.paused || stop.aborted) resolve();
          });
          this.onResume = undefined;
          reconnect.reset();
          continue;
        }
        // A session that streamed for a while resets the backoff.
        if (Date.now() - started > 30_000) reconnect.reset();
        const retryInMs = reconnect.next();
        if (failure !== undefined) this.log.warn({ err: failure, retryInMs }, retryMessage(failure, failedConnected));
        // The server ended the stream without a next timeline (e.g. it is shutting down).
        else this.log.warn({ retryInMs }, 'the server ended the stream; reconnecting');
        await sleep(retryInMs, stop).catch(() => undefined);
      }
      if (this.fatal) throw this.fatal;
    } finally {
      signal.removeEventListener('abort', onAbort);
      await this.shutdown();
    }
  }

  private async session(signal: AbortSignal): Promise<void> {
    const conn = await ReplicationConnection.connect(this.opts.conninfo, this.log, this.opts.applicationName ?? 'walvault');
    this.conn = conn;
    const system = await conn.identifySystem();
    const segSize = parseSegSizeSetting(await conn.show('wal_segment_size'));
    const serverMajor = Math.floor(Number(await conn.show('server_version_num')) / 10000);
    await this.checkIdentity(system.systemId, segSize, serverMajor);
    if (this.segSize !== 0 && this.segSize !== segSize) {
      throw new ReplicationError(`unable to stream: wal_segment_size changed from ${this.segSize} to ${segSize}`);
    }
    this.segSize = segSize;
    this.spool ??= new Spool(this.opts.spoolDir, segSize);
    this.stats.connected = true;
    this.stats.serverLsn = system.xlogpos;
    this.log.info({ systemId: system.systemId, timeline: system.timeline, serverLsn: formatLsn(system.xlogpos) }, 'connected');

    // A reconnect within this process: the segment being received is closed (fsynced) and restarts
    // from its beginning like one left by an earlier run; continuing it in memory would expect the
    // bytes at its end, while streaming restarts at the segment start.
    const open = this.spool.closeAsPartial();
    if (open) this.log.info({ segment: open.name, lsn: formatLsn(open.end) }, 'resuming the open segment from its start');
    await this.uploadLeftovers();
    if (this.opts.slot) await this.ensureSlot(conn, serverMajor);

    let { start, timeline } = await this.startPosition(conn, system.timeline, system.xlogpos, serverMajor);
    await this.archiveHistories(conn, Math.max(timeline, system.timeline));
    const statusTimer = setInterval(() => this.onStatusTimer(), this.opts.statusIntervalMs);
    try {
      while (!signal.aborted && !this.paused) {
        this.timeline = timeline;
        this.stats.timeline = timeline;
        this.log.info({ timeline, lsn: formatLsn(start) }, 'streaming');
        const end = await conn.startReplication(
          { ...(this.opts.slot ? { slot: this.opts.slot } : {}), startLsn: start, timeline },
          { onMessage: (m) => this.onMessage(m) },
        );
        if (end.nextTimeline === undefined || this.stopping) break;
        // The server ended a historic timeline: keep its last segment as .partial, then follow.
        const partial = this.spool.closeAsPartial();
        const switchPoint = end.nextTimelineStart!;
        const next = await this.timelineAfter(conn, timeline, end.nextTimeline, switchPoint);
        await this.archiveHistories(conn, next.timeline);
        if (partial) this.enqueuePartial(partial.name, partial.path, true);
        this.log.info({ timeline: next.timeline, lsn: formatLsn(switchPoint) }, 'timeline switch');
        timeline = next.timeline;
        start = SegmentName.fromLsn(timeline, next.begin, segSize).startLsn;
      }
    } finally {
      clearInterval(statusTimer);
    }
  }

  private async checkIdentity(systemId: string, segSize: number, major: number): Promise<void> {
    // Refuses up front an archive that holds WAL but lost its identity, before any slot or spool work.
    this.archive.identity ??= await requireIdentity(this.archive.storage, 'stream into this archive');
    const id = this.archive.identity;
    if (!id) return; // A new archive takes its identity from the first segment archived.
    const problems: string[] = [];
    if (id.systemId !== systemId) problems.push(`the server is database system ${systemId}, the archive belongs to ${id.systemId}`);
    if (id.walSegSize !== segSize) problems.push(`the server's wal_segment_size is ${segSize}, the archive's ${id.walSegSize}`);
    if (id.pgMajor !== major) problems.push(`the server is PostgreSQL ${major}, the archive holds PostgreSQL ${id.pgMajor} WAL`);
    if (problems.length > 0) throw new ArchiveMismatchError(`unable to stream into this archive: ${problems.join('; ')}`);
  }

  private async ensureSlot(conn: ReplicationConnection, major: number): Promise<void> {
    const slot = this.opts.slot!;
    if (major >= 15) {
      if (await conn.readReplicationSlot(slot)) return;
    }
    if (!this.opts.createSlot) {
      if (major >= 15) {
        throw new ReplicationError(`unable to use replication slot '${slot}': it does not exist (add --create-slot)`);
      }
      return; // PostgreSQL < 15 cannot check over a replication connection; START_REPLICATION will say.
    }
    try {
      await conn.createPhysicalSlot(slot);
      this.log.info({ slot }, 'created physical replication slot');
    } catch (err) {
      if (sqlStateOf(err) !== SqlState.duplicateObject) throw err;
    }
  }

  /**
   * Where to start: right after what the spool or the archive already holds; else the slot's restart
   * point; else the server's current position. Always a segment start, on the timeline that the
   * server's history says holds it (see timelineToStreamFrom for the one exception).
   */
  private async startPosition(
    conn: ReplicationConnection,
    serverTimeline: number,
    serverLsn: Lsn,
    major: number,
  ): Promise<{ start: Lsn; timeline: number }> {
    const spool = this.spool!;
    let start: Lsn | undefined;
    const partials = spool.partialFiles();
    if (partials.length > 0) {
      const newest = partials[partials.length - 1]!;
      start = segmentOf(newest, this.segSize).startLsn;
      // Older partials are ends of timelines that never got archived (a crash in between).
      for (const p of partials.slice(0, -1)) this.enqueuePartial(p, join(spool.dir, p), true);
    }
    if (start === undefined) {
      const pendingSegs = spool.pendingFiles().filter((f) => classifyWalFileName(f.name).kind === 'segment');
      const lastLocal = pendingSegs.length > 0 ? SegmentName.parse(pendingSegs[pendingSegs.length - 1]!.name, this.segSize) : undefined;
      let lastArchived: SegmentName | undefined;
      let slotStart: Lsn | undefined;
      try {
        lastArchived = await lastArchivedSegment(this.archive.storage, this.segSize);
      } catch (err) {
        // Storage is down. Everything before the slot's restart point was flushed by this agent, so
        // it is in the spool or archived: stream on from there while uploads retry, rather than
        // wait for storage before receiving anything.
        if (!this.opts.slot || major < 15 || (err instanceof WalvaultError && !err.retryable)) throw err;
        const slot = await conn.readReplicationSlot(this.opts.slot);
        if (!slot?.restartLsn) throw err;
        slotStart = segmentStart(slot.restartLsn, this.segSize);
        this.log.warn({ err, lsn: formatLsn(slotStart) }, 'cannot list the archive; starting from the spool and the slot');
      }
      const candidates = [lastLocal, lastArchived].filter((s): s is SegmentName => s !== undefined);
      if (candidates.length > 0) {
        const last = candidates.reduce((a, b) => (b.segno > a.segno ? b : a));
        start = segmentStartLsn(last.segno + 1n, this.segSize);
      }
      if (slotStart !== undefined && (start === undefined || slotStart > start)) start = slotStart;
    }
    if (start !== undefined && start > serverLsn) {
      this.log.warn(
        { lsn: formatLsn(start), serverLsn: formatLsn(serverLsn) },
        'archive is ahead of the server; starting at the server position',
      );
      start = undefined;
    }
    if (start === undefined && this.opts.slot && major >= 15) {
      const slot = await conn.readReplicationSlot(this.opts.slot);
      if (slot?.restartLsn) start = segmentStart(slot.restartLsn, this.segSize);
    }
    start ??= segmentStart(serverLsn, this.segSize);
    let timeline = serverTimeline;
    if (serverTimeline > 1) {
      const h = await conn.timelineHistory(serverTimeline);
      timeline = timelineToStreamFrom(parseTimelineHistory(h.content, serverTimeline), start, this.segSize);
    }
    return { start, timeline };
  }

  /**
   * The timeline to follow after a historic one ended at `switchPoint`: the one the server's
   * current history says holds that point (usually `nextTimeline`; a later, smaller switch point
   * can leave it empty), from where that history starts it.
   */
  private async timelineAfter(conn: ReplicationConnection, ended: number, nextTimeline: number, switchPoint: Lsn): Promise<TimelineSpan> {
    const current = Math.max(nextTimeline, (await conn.identifySystem()).timeline);
    const h = await conn.timelineHistory(current);
    const span = timelineAfterEnd(parseTimelineHistory(h.content, current), switchPoint);
    // Along one history the holder is always newer than the ended timeline; a server whose history
    // changed in between gets the timeline it named, so a stream never goes back.
    if (span.timeline <= ended) return { timeline: toTimeline(nextTimeline), begin: switchPoint, end: null };
    if (span.timeline !== nextTimeline) {
      // Its switch point lies at or before where it would begin (a recovery stopped before its fork).
      this.log.info(
        { timeline: span.timeline, skipped: nextTimeline, lsn: formatLsn(span.begin) },
        'skipping a timeline that holds no WAL',
      );
    }
    return span;
  }

  /** Archives the history files of `upTo` and its ancestors (idempotent: identical content dedupes). */
  private async archiveHistories(conn: ReplicationConnection, upTo: number): Promise<void> {
    for (let tli = upTo; tli > 1;) {
      const h = await conn.timelineHistory(tli);
      const name = historyFileName(tli);
      const path = join(this.spool!.dir, name);
      if (!existsSync(path)) await writeFileAtomic(path, h.content);
      await this.uploadNow(name, path);
      const history = parseTimelineHistory(h.content, tli);
      const parent = history.entries.length > 0 ? history.entries[history.entries.length - 1]!.parent : 1;
      if (parent >= tli) break;
      tli = parent;
    }
  }

  private onMessage(msg: ReplicationMessage): void {
    const spool = this.spool!;
    if (msg.kind === 'xlogdata') {
      if (msg.data.length > 0) {
        const finished = spool.write(this.timeline, lsn(msg.dataStart), msg.data);
        this.stats.bytesReceived += msg.data.length;
        this.stats.receivedLsn = spool.receivedEnd ?? lsn(msg.dataStart + BigInt(msg.data.length));
        for (const f of finished) {
          this.flushedEnd = lsn(SegmentName.parse(f.name, this.segSize).startLsn + BigInt(this.segSize));
          // /status must never show less than what the server is told is flushed.
          this.stats.flushedLsn = this.flushedEnd;
          this.enqueueUpload(f.name, f.path);
        }
        if (finished.length > 0) this.sendStatus(false);
        if (this.opts.synchronous) this.scheduleFlush();
      }
      this.stats.serverLsn = lsn(msg.walEnd);
      return;
    }
    this.stats.serverLsn = lsn(msg.walEnd);
    if (msg.replyRequested) {
      if (this.opts.synchronous) this.flushNow();
      this.sendStatus(false);
    }
  }

  /** Reports the final position while the stream is still open, then ends it cleanly (CopyDone). */
  private endStream(): void {
    try {
      this.flushNow();
      this.sendStatus(false);
    } catch (err) {
      this.log.error({ err }, 'could not flush before ending the stream');
    }
    this.conn?.stopStreaming();
  }

  /** Synchronous mode: fsync once the current burst of messages is written, then report. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (!this.spool || !this.conn) return;
      this.flushNow();
      this.sendStatus(false);
    });
  }

  private flushNow(): void {
    const end = this.spool?.flush();
    if (end !== undefined && (this.flushedEnd === undefined || end > this.flushedEnd)) this.flushedEnd = end;
    if (this.flushedEnd !== undefined) this.stats.flushedLsn = this.flushedEnd;
  }

  private onStatusTimer(): void {
    try {
      this.flushNow();
      this.sendStatus(false);
    } catch (err) {
      this.log.error({ err }, 'status update failed');
      this.conn?.destroy();
    }
  }

  private archivedEnd(): Lsn | undefined {
    const starts = [...this.pending.values()].filter((v) => v > 0n);
    const open = this.spool?.openSegment?.startLsn;
    if (open !== undefined) starts.push(open);
    if (starts.length === 0) return this.flushedEnd;
    return starts.reduce((a, b) => (b < a ? b : a));
  }

  private sendStatus(replyRequested: boolean): void {
    const conn = this.conn;
    const write = this.spool?.receivedEnd ?? this.flushedEnd;
    const apply = this.archivedEnd() ?? lsn(0n);
    // Also while disconnected (paused, server down): uploads go on and /status must show them.
    this.stats.archivedLsn = apply > 0n ? apply : this.stats.archivedLsn;
    if (!conn || write === undefined) return;
    const flush = this.flushedEnd ?? lsn(0n);
    conn.sendStatus({ write, flush, apply: apply > flush ? flush : apply, replyRequested });
  }

  private enqueueUpload(name: string, path: string): void {
    if (this.pending.has(name)) return;
    const kind = classifyWalFileName(name).kind;
    this.pending.set(name, kind === 'segment' ? SegmentName.parse(name, this.segSize).startLsn : lsn(0n));
    this.stats.pendingUploads = this.pending.size;
    this.applyBackpressure();
    void this.uploads.add(() => this.uploadQueued(name, path, true));
  }

  /** A `.partial` is archived under its own name; `remove` drops the spool copy afterwards. */
  private enqueuePartial(name: string, path: string, remove: boolean): void {
    if (this.pending.has(name)) return;
    this.pending.set(name, lsn(0n));
    void this.uploads.add(() => this.uploadQueued(name, path, remove));
  }

  private async uploadNow(name: string, path: string): Promise<void> {
    await this.uploadWithRetry(name, path, true);
  }

  /** A queued upload has no caller to throw to: a refusal stops the agent (failFatal). */
  private async uploadQueued(name: string, path: string, remove: boolean): Promise<void> {
    try {
      await this.uploadWithRetry(name, path, remove);
    } catch (err) {
      // Stopping: the file stays in the spool and is uploaded at the next start.
      if (this.stopping) return;
      this.failFatal(err);
    }
  }

  /**
   * Retries what may pass (storage outage) until it succeeds or the agent stops: the slot keeps the
   * WAL meanwhile. A refusal (conflicting content, lost identity, denied access) is thrown at once:
   * retrying it forever would only hold WAL on the server until its disk fills.
   */
  private async uploadWithRetry(name: string, path: string, remove: boolean): Promise<void> {
    const noteFailure = (err: unknown): void => {
      this.stats.uploadErrors++;
      this.stats.lastError = describeCause(err);
      this.opts.uploads?.failed(name, err);
    };
    let result: Awaited<ReturnType<typeof pushFile>>;
    try {
      result = await withRetry(() => pushFile(this.archive, path, name), UPLOAD_RETRY, {
        retryable: (err) => !this.stopping && uploadMayPass(err),
        onRetry: ({ error, delayMs }) => {
          noteFailure(error);
          this.log.warn({ segment: name, err: error, retryInMs: delayMs }, 'upload failed; retrying');
        },
      });
    } catch (err) {
      noteFailure(err);
      throw err;
    }
    if (remove) this.spool?.remove(name);
    this.pending.delete(name);
    this.stats.pendingUploads = this.pending.size;
    this.opts.uploads?.archived(name, result);
    if (classifyWalFileName(name).kind === 'segment') {
      if (result.status === 'uploaded') {
        this.stats.segmentsArchived++;
        this.stats.bytesArchived += result.size;
      } else {
        this.stats.alreadyArchived++;
      }
      this.stats.lastArchivedSegment = name;
      this.stats.lastArchivedAt = new Date().toISOString();
    }
    this.applyBackpressure();
    this.sendStatus(false);
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
    const segs = [...this.pending.values()].filter((v) => v > 0n).length;
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

  /** Spool files left by an earlier run: finished segments and history files to upload. */
  private async uploadLeftovers(): Promise<void> {
    for (const f of this.spool!.pendingFiles()) this.enqueueUpload(f.name, f.path);
  }

  /** Graceful end: keep what was received, archive it as `.partial`, drain uploads, report. */
  private async shutdown(): Promise<void> {
    const spool = this.spool;
    if (!spool) return;
    this.stopping = true;
    try {
      this.flushNow();
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

/** Uploads retry at 1 s doubling to 30 s, without end while the failure may pass. */
export const UPLOAD_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: Infinity,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 'none',
});

/** Reconnects wait reconnectMinMs doubling to reconnectMaxMs, for as long as the agent runs. */
export function reconnectPolicy(opts: Pick<ReceiverOptions, 'reconnectMinMs' | 'reconnectMaxMs'>): RetryPolicy {
  return { maxAttempts: Infinity, baseDelayMs: opts.reconnectMinMs, maxDelayMs: opts.reconnectMaxMs, factor: 2, jitter: 'none' };
}

/** Our errors say whether they may pass; anything raw (not classified) gets the benefit of the doubt. */
export function uploadMayPass(err: unknown): boolean {
  return !(err instanceof WalvaultError) || err.retryable;
}

/** What a retried session failure is called: a connection never made is not a connection "lost". */
function retryMessage(err: WalvaultError, wasConnected: boolean): string {
  if (!(err instanceof ReplicationError)) return 'unable to stream; retrying';
  return wasConnected ? 'replication connection lost; reconnecting' : 'unable to connect to the server; retrying';
}

/** Errors without our type (raw file-system errors) still leave with one `unable to ...` line. */
function fatalStreamError(err: unknown): WalvaultError {
  if (err instanceof WalvaultError) return err;
  return new LocalIoError(`unable to stream WAL: ${describeCause(err)}`, { cause: err });
}

function formatNullableLsn(value: Lsn | null): string | null {
  return value === null ? null : formatLsn(value);
}

/** The segment a spool file name (segment or `.partial`) stands for. */
function segmentOf(fileName: string, segSize: number): SegmentName {
  const parsed = parseWalFileName(fileName, segSize);
  if (parsed.kind === 'history') throw new LocalIoError(`unable to use spool file '${fileName}': not a segment`);
  return parsed.segment;
}

/** Start of the segment that holds `position`. */
function segmentStart(position: Lsn, segSize: number): Lsn {
  return segmentStartLsn(segnoOfLsn(position, segSize), segSize);
}
