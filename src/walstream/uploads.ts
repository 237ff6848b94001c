/**
 * The streaming agent's upload hand-off: finished spool files are queued, archived with the shared
 * retry policy (src/common/retry.ts) and removed from the spool once the archive holds them. A
 * segment the agent encoded while receiving it (segment-encoder.ts) is archived from that encoding;
 * anything else (leftovers of an earlier run, `.partial` and history files) with pushFile.
 */
import PQueue from 'p-queue';
import type { Logger } from '../common/log.js';
import { WalvaultError, describeCause } from '../common/errors.js';
import { withRetry, type RetryPolicy } from '../common/retry.js';
import type { ArchiveContext } from '../archive/context.js';
import { pushFile, pushReceivedSegment, type PushResult } from '../archive/push.js';
import { lsn, type Lsn } from '../segment/lsn.js';
import { SegmentName, classifyWalFileName } from '../segment/names.js';
import type { UploadObserver } from '../daemon/metrics.js';
import type { ReceiverStats } from './options.js';
import type { SegmentEncoding } from './segment-encoder.js';

/** Uploads retry at 1 s doubling to 30 s, without end while the failure may pass. */
export const UPLOAD_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: Infinity,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 'none',
});

/** Our errors say whether they may pass; anything raw (not classified) gets the benefit of the doubt. */
export function uploadMayPass(err: unknown): boolean {
  return !(err instanceof WalvaultError) || err.retryable;
}

export interface UploadHooks {
  /** The agent is stopping: failures are no longer retried or fatal (files stay in the spool). */
  stopping(): boolean;
  /** A queued upload was refused: the agent must stop. */
  fatal(err: unknown): void;
  /** The number of pending segments changed (backpressure); `archived`: one just left the queue. */
  changed(archived: boolean): void;
  /** Drops a spool file the archive now holds. */
  remove(name: string): void;
}

export class UploadQueue {
  private readonly queue: PQueue;
  /** name -> segment start (0 for `.partial` and history files, which hold no archive position). */
  private readonly pending = new Map<string, Lsn>();
  /** Encodings kept in memory: bounded, a backlog beyond it is archived from the spool files. */
  private held = 0;
  private readonly maxHeld: number;

  constructor(
    private readonly archive: ArchiveContext,
    private readonly stats: ReceiverStats,
    private readonly log: Logger,
    private readonly hooks: UploadHooks,
    concurrency: number,
    private readonly observer?: UploadObserver,
  ) {
    this.queue = new PQueue({ concurrency });
    this.maxHeld = concurrency + 1;
  }

  /** Finished segments waiting (history and `.partial` files hold no position and do not count). */
  get segmentsPending(): number {
    let n = 0;
    for (const v of this.pending.values()) if (v > 0n) n++;
    return n;
  }

  /** Start of the oldest segment not archived yet. */
  oldestPendingStart(): Lsn | undefined {
    let oldest: Lsn | undefined;
    for (const v of this.pending.values()) if (v > 0n && (oldest === undefined || v < oldest)) oldest = v;
    return oldest;
  }

  /** Queues a finished segment or history file; the spool copy goes once it is archived. */
  enqueue(name: string, path: string, segSize: number, encoding?: Promise<SegmentEncoding | undefined>): void {
    if (this.pending.has(name)) return;
    const kind = classifyWalFileName(name).kind;
    this.pending.set(name, kind === 'segment' ? SegmentName.parse(name, segSize).startLsn : lsn(0n));
    this.stats.pendingUploads = this.pending.size;
    this.hooks.changed(false);
    const kept = encoding !== undefined && this.held < this.maxHeld ? encoding : undefined;
    if (kept) this.held++;
    void this.queue.add(async () => {
      try {
        await this.uploadQueued(name, path, true, kept);
      } finally {
        if (kept) this.held--;
      }
    });
  }

  /** A `.partial` is archived under its own name; `remove` drops the spool copy afterwards. */
  enqueuePartial(name: string, path: string, remove: boolean): void {
    if (this.pending.has(name)) return;
    this.pending.set(name, lsn(0n));
    void this.queue.add(() => this.uploadQueued(name, path, remove));
  }

  /** Archives now, for a caller that waits (history files before streaming); throws a refusal. */
  async uploadNow(name: string, path: string): Promise<void> {
    await this.uploadWithRetry(name, path, true);
  }

  /** Settles when every queued upload has ended (or the wait is given up by the caller). */
  onIdle(): Promise<void> {
    return this.queue.onIdle();
  }

  /** A queued upload has no caller to throw to: a refusal stops the agent. */
  private async uploadQueued(name: string, path: string, remove: boolean, encoding?: Promise<SegmentEncoding | undefined>): Promise<void> {
    try {
      await this.uploadWithRetry(name, path, remove, encoding);
    } catch (err) {
      // Stopping: the file stays in the spool and is uploaded at the next start.
      if (this.hooks.stopping()) return;
      this.hooks.fatal(err);
    }
  }

  /**
   * Retries what may pass (storage outage) until it succeeds or the agent stops: the slot keeps the
   * WAL meanwhile. A refusal (conflicting content, lost identity, denied access) is thrown at once:
   * retrying it forever would only hold WAL on the server until its disk fills.
   */
  private async uploadWithRetry(
    name: string,
    path: string,
    remove: boolean,
    encoding?: Promise<SegmentEncoding | undefined>,
  ): Promise<void> {
    const noteFailure = (err: unknown): void => {
      this.stats.uploadErrors++;
      this.stats.lastError = describeCause(err);
      this.observer?.failed(name, err);
    };
    const encoded = await encoding;
    const push = (): Promise<PushResult> =>
      encoded ? pushReceivedSegment(this.archive, { fileName: name, path, ...encoded }) : pushFile(this.archive, path, name);
    let result: PushResult;
    try {
      result = await withRetry(push, UPLOAD_RETRY, {
        retryable: (err) => !this.hooks.stopping() && uploadMayPass(err),
        onRetry: ({ error, delayMs }) => {
          noteFailure(error);
          this.log.warn({ segment: name, err: error, retryInMs: delayMs }, 'upload failed; retrying');
        },
      });
    } catch (err) {
      noteFailure(err);
      throw err;
    }
    if (remove) this.hooks.remove(name);
    this.pending.delete(name);
    this.stats.pendingUploads = this.pending.size;
    this.observer?.archived(name, result);
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
    this.hooks.changed(true);
  }
}
