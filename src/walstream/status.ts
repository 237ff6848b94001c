/**
 * Standby status updates, and the positions /status shows:
 *   write = end of WAL written to the spool file (staged bytes are not written yet)
 *   flush = end of WAL fsynced in the spool (advances the slot; what synchronous commit waits for)
 *   apply = end of WAL durably archived (start of the oldest segment not archived yet)
 */
import type { Logger } from '../common/log.js';
import { lsn, type Lsn } from '../segment/lsn.js';
import type { ReplicationConnection } from '../postgres/replication/connection.js';
import type { ReceiverStats } from './options.js';
import type { Spool } from './spool.js';
import type { UploadQueue } from './uploads.js';

export interface StatusSources {
  spool(): Spool | undefined;
  conn(): ReplicationConnection | undefined;
  readonly uploads: UploadQueue;
  readonly stats: ReceiverStats;
  readonly log: Logger;
}

export class StatusReporter {
  private flushedEnd: Lsn | undefined;
  private flushScheduled = false;

  constructor(private readonly src: StatusSources) {}

  /** A segment was finished (fsynced and renamed) up to `end`. */
  segmentFinished(end: Lsn): void {
    this.flushedEnd = end;
    // /status must never show less than what the server is told is flushed.
    this.src.stats.flushedLsn = end;
  }

  /** Synchronous mode: fsync once the current burst of messages is written, then report. */
  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (!this.src.spool() || !this.src.conn()) return;
      this.flushNow();
      this.send(false);
    });
  }

  flushNow(): void {
    const end = this.src.spool()?.flush();
    if (end !== undefined && (this.flushedEnd === undefined || end > this.flushedEnd)) this.flushedEnd = end;
    if (this.flushedEnd !== undefined) this.src.stats.flushedLsn = this.flushedEnd;
  }

  /** The periodic update: a failure drops the connection (the session then fails and reconnects). */
  onTimer(): void {
    try {
      this.flushNow();
      this.send(false);
    } catch (err) {
      this.src.log.error({ err }, 'status update failed');
      this.src.conn()?.destroy();
    }
  }

  private archivedEnd(): Lsn | undefined {
    const pending = this.src.uploads.oldestPendingStart();
    const open = this.src.spool()?.openSegment?.startLsn;
    if (pending === undefined && open === undefined) return this.flushedEnd;
    if (pending === undefined) return open;
    if (open === undefined) return pending;
    return open < pending ? open : pending;
  }

  send(replyRequested: boolean): void {
    const conn = this.src.conn();
    const write = this.src.spool()?.writtenEnd ?? this.flushedEnd;
    const apply = this.archivedEnd() ?? lsn(0n);
    // Also while disconnected (paused, server down): uploads go on and /status must show them.
    this.src.stats.archivedLsn = apply > 0n ? apply : this.src.stats.archivedLsn;
    if (!conn || write === undefined) return;
    const flush = this.flushedEnd ?? lsn(0n);
    conn.sendStatus({ write, flush, apply: apply > flush ? flush : apply, replyRequested });
  }
}
