/**
 * The look-ahead uploader: archives segments that PostgreSQL has marked `.ready` but not yet asked
 * for, so that archive_command finds them done (a marker) and returns at once. PostgreSQL's archiver
 * calls archive_command one file at a time; this is what lets a backlog drain at the speed of
 * parallel uploads instead of one process start per segment. It never touches archive_status: the
 * markers live in the state directory, and PostgreSQL still calls archive_command for every file.
 */
import { join } from 'node:path';
import PQueue from 'p-queue';
import { DEFAULT_RETRY_POLICY, backoffDelayMs, sleep, type RetryPolicy } from '../common/retry.js';
import { pushFile, type PushResult } from '../archive/push.js';
import type { ArchiveContext } from '../archive/context.js';
import { clearUploadFailed, markerNames, noteUploadFailed, sweepMarkers, writeMarker } from './markers.js';
import { readyFiles } from './ready.js';

export { readyFiles };

export interface AheadOptions {
  readonly walDir: string;
  readonly stateDir: string;
  /** Parallel uploads. */
  readonly concurrency: number;
  /** Native compression threads per upload (`push-compress-threads`). */
  readonly compressThreads?: number;
  /** Stop after this many uploads; Infinity for the daemon and the detached helper. */
  readonly maxFiles: number;
  /**
   * At most this many files archived and still `.ready` (PostgreSQL has not asked for them yet): how
   * far the uploader runs ahead of the archiver. Infinity when unbounded.
   */
  readonly maxAhead?: number;
  /** Stop after this long without starting an upload (nothing new `.ready`, or as far ahead as allowed); Infinity for the daemon. */
  readonly idleMs: number;
  /** Checked at every poll: true ends the run after its uploads in flight (a daemon taking over). */
  readonly stopRequested?: () => boolean;
  readonly pollMs?: number;
  /** Called after each file is archived (uploaded, or found already archived) and its marker written. */
  readonly onArchived?: (name: string, result: PushResult) => void;
  readonly onError?: (name: string, err: unknown) => void;
  /** How long a failed file waits before the next attempt (the growing window of the policy). */
  readonly retry?: RetryPolicy;
  /** A file the wal-push that started this run uploads itself: skipped while it is `.ready`. */
  readonly exclude?: string;
}

/** A file whose upload failed: tried again once `retryAt` has passed, so an outage is not forever. */
interface FailedFile {
  attempts: number;
  retryAt: number;
}

export interface AheadSummary {
  archived: number;
  failed: number;
}

export async function runAhead(ctx: ArchiveContext, opts: AheadOptions): Promise<AheadSummary> {
  const log = ctx.log.child({ component: 'push.ahead' });
  const queue = new PQueue({ concurrency: opts.concurrency });
  const inFlight = new Set<string>();
  const failed = new Map<string, FailedFile>();
  // Archived by this run and still `.ready`: the launcher consumes our marker and exits 0 before
  // PostgreSQL renames `.ready` to `.done`, so without this set the next poll would push it again.
  const archivedHere = new Set<string>(opts.exclude !== undefined ? [opts.exclude] : []);
  const retry = opts.retry ?? DEFAULT_RETRY_POLICY;
  const summary: AheadSummary = { archived: 0, failed: 0 };
  let started = 0;
  let idleSince = Date.now();
  const pollMs = opts.pollMs ?? 200;

  const maxAhead = opts.maxAhead ?? Number.POSITIVE_INFINITY;
  let wakeUp: (() => void) | undefined;
  while (!ctx.signal?.aborted && started < opts.maxFiles && !opts.stopRequested?.()) {
    const candidates: string[] = [];
    const ready = await readyFiles(opts.walDir);
    forgetGone(failed, ready);
    forgetGone(archivedHere, ready);
    const now = Date.now();
    const marked = ready.length > 0 ? await markerNames(opts.stateDir) : new Set<string>();
    for (const name of ready) {
      if (inFlight.has(name) || archivedHere.has(name) || marked.has(name) || (failed.get(name)?.retryAt ?? 0) > now) continue;
      candidates.push(name);
    }
    // As far ahead as allowed counts as idle: if PostgreSQL stops asking, the run ends.
    const room = maxAhead - archivedHere.size - inFlight.size;
    if ((candidates.length === 0 || room <= 0) && queue.size === 0 && queue.pending === 0) {
      if (Date.now() - idleSince >= opts.idleMs) break;
      await sleep(pollMs, ctx.signal).catch(() => undefined);
      continue;
    }
    idleSince = Date.now();
    for (const [i, name] of candidates.entries()) {
      if (started >= opts.maxFiles || i >= room) break;
      // Keep the queue short so newly ready files are picked up in order.
      if (queue.size >= opts.concurrency) break;
      started++;
      inFlight.add(name);
      void queue.add(async () => {
        try {
          const result = await pushFile(ctx, join(opts.walDir, name), name, { compressThreads: opts.compressThreads ?? 0 });
          await clearUploadFailed(opts.stateDir, name);
          await writeMarker(opts.stateDir, name, result.file);
          archivedHere.add(name);
          failed.delete(name);
          summary.archived++;
          opts.onArchived?.(name, result);
        } catch (err) {
          // The archiver will call archive_command for this file and report the error properly; we
          // try it again after a backoff, so that the uploader helps again once the storage is back.
          const attempts = (failed.get(name)?.attempts ?? 0) + 1;
          failed.set(name, { attempts, retryAt: Date.now() + backoffDelayMs(attempts, retry) });
          summary.failed++;
          await noteUploadFailed(opts.stateDir, name).catch(() => undefined);
          log.warn({ segment: name, err }, 'look-ahead upload failed; trying again after a backoff (archive_command retries it too)');
          opts.onError?.(name, err);
        } finally {
          inFlight.delete(name);
          wakeUp?.();
        }
      });
    }
    // Wake up when an upload ends (its lane takes the next file at once: waiting for the whole
    // queue to drain left one lane idle while the other finished) or new .ready files may have appeared.
    const woken = new Promise<void>((resolve) => (wakeUp = resolve));
    await Promise.race([woken, sleep(pollMs)]);
    wakeUp = undefined;
  }
  await queue.onIdle();
  await sweepMarkers(opts.stateDir, opts.walDir).catch(() => 0);
  return summary;
}

/** Drops names that are no longer `.ready` (PostgreSQL archived them): the map or set stays small. */
function forgetGone(names: Map<string, unknown> | Set<string>, ready: readonly string[]): void {
  if (names.size === 0) return;
  const still = new Set(ready);
  for (const name of names.keys()) if (!still.has(name)) names.delete(name);
}
