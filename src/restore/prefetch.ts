/**
 * Read-ahead for restore_command. PostgreSQL replays WAL single-threaded and asks for one segment at
 * a time, so a download per call is the bottleneck of every restore. A detached prefetcher keeps the
 * next K segments of the current timeline downloaded and fully verified (SHA-256, size, cluster) in
 * `<state>/prefetch-<boot id>/` (prefetch-dir.ts: why no fsync); a file appears there only by rename once it is whole, so the
 * wal-fetch launcher can hand it to PostgreSQL with a single `mv` and no Node start.
 *
 * The cursor file holds the last name wal-fetch served itself; the prefetcher works forward from it
 * and starts over when it moves to another timeline (which also drops every file of other timelines).
 *
 * Every segment of the window is queued at once and carries a fetching mark (prefetch-dir.ts) while
 * it is queued or downloading, so that a call which overtakes the downloads waits in the launcher
 * for the file instead of starting Node to download it a second time. Marks of anything else (the
 * starting wal-fetch marks the first window for this process) are removed at every poll.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import PQueue from 'p-queue';
import { NotFoundError } from '../common/errors.js';
import { sweepTempFiles } from '../common/temp-files.js';
import { sleep } from '../common/retry.js';
import type { ArchiveContext } from '../archive/context.js';
import { restoreFile } from './fetch.js';
import { readIdentity } from '../archive/identity.js';
import { SegmentName, tryClassifyWalFileName } from '../segment/names.js';
import {
  CURSOR,
  clearFetching,
  fetchingNames,
  markFetching,
  otherBootsPrefetchDirs,
  prefetchDir,
  publishPrefetched,
  setCursor,
  takePrefetched,
} from './prefetch-dir.js';

export { prefetchDir, setCursor, takePrefetched };

export interface PrefetchOptions {
  readonly stateDir: string;
  /** Segments to keep ready. */
  readonly depth: number;
  readonly concurrency: number;
  /** Exit after this long without the cursor moving or a file being consumed. */
  readonly idleMs: number;
  /** How often to look again for a segment the archive does not have yet (a standby waits for it). */
  readonly missingRetryMs: number;
  readonly expectedSystemId?: string;
  /**
   * The data directory in recovery. Once it has neither standby.signal nor recovery.signal (the
   * server was promoted or recovery reached its target) or is gone, the prefetcher stops at once
   * and deletes what it downloaded: nobody will ask for those segments again.
   */
  readonly pgdata?: string;
}

/** True while `pgdata` still exists and asks for recovery (PostgreSQL 12+ signal files). */
export function stillRecovering(pgdata: string): boolean {
  if (!existsSync(join(pgdata, 'global', 'pg_control'))) return false;
  return existsSync(join(pgdata, 'standby.signal')) || existsSync(join(pgdata, 'recovery.signal'));
}

/** Deletes every prefetched segment, temp file and the cursor (the directory itself stays). */
async function dropAll(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    await unlink(join(dir, name)).catch(() => undefined);
  }
}

export async function runPrefetcher(ctx: ArchiveContext, opts: PrefetchOptions): Promise<{ fetched: number }> {
  const log = ctx.log.child({ component: 'restore.prefetch' });
  const dir = prefetchDir(opts.stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Half-written downloads of a killed prefetcher (the launcher only takes whole, renamed files).
  sweepTempFiles(dir);
  // Files of earlier boots are never handed out again (prefetch-dir.ts): only their space is left.
  for (const old of otherBootsPrefetchDirs(opts.stateDir)) await rm(old, { recursive: true, force: true }).catch(() => undefined);
  const identity = ctx.identity ?? (await readIdentity(ctx.storage));
  if (!identity) return { fetched: 0 };
  const segSize = identity.walSegSize;
  const queue = new PQueue({ concurrency: opts.concurrency });
  const inFlight = new Set<string>();
  const missingUntil = new Map<string, number>();
  let fetched = 0;
  let cursor: SegmentName | undefined;
  let lastActivity = Date.now();
  let lastPresent = new Map<string, SegmentName>();
  // The launcher hands files over with `mv` and never moves the cursor: what disappeared from here
  // was consumed, so the window moves past it.
  let consumedUpTo: SegmentName | undefined;
  let recoveryOver = false;
  const over = (): boolean => {
    if (!recoveryOver && opts.pgdata !== undefined && !stillRecovering(opts.pgdata)) recoveryOver = true;
    return recoveryOver;
  };
  const mark = (name: string): void => {
    try {
      markFetching(dir, [name], process.pid);
    } catch (err) {
      // Only a shortcut for the launcher: without the mark a call starts Node and fetches itself.
      log.warn({ segment: name, err }, 'unable to mark a prefetch in flight');
    }
  };
  const segmentOf = (name: string): SegmentName | undefined =>
    tryClassifyWalFileName(name)?.kind === 'segment' ? SegmentName.parse(name, segSize) : undefined;
  const readCursor = async (): Promise<SegmentName | undefined> =>
    segmentOf((await readFile(join(dir, CURSOR), 'utf8').catch(() => '')).trim());

  while (!ctx.signal?.aborted && !over()) {
    const current = await readCursor();
    if (current === undefined) break;
    if (cursor === undefined || current.name !== cursor.name) {
      cursor = current;
      lastActivity = Date.now();
    }
    const present = new Map<string, SegmentName>();
    for (const n of await readdir(dir)) {
      const seg = n.startsWith('.') ? undefined : segmentOf(n);
      if (seg && isAfter(seg, cursor)) present.set(n, seg);
    }
    for (const [n, seg] of lastPresent) {
      if (!present.has(n)) {
        lastActivity = Date.now(); // consumed by the launcher
        if (seg.timeline === cursor.timeline && (consumedUpTo === undefined || isAfter(seg, consumedUpTo))) consumedUpTo = seg;
      }
    }
    lastPresent = present;
    if (Date.now() - lastActivity > opts.idleMs) break;

    let next =
      consumedUpTo !== undefined && consumedUpTo.timeline === cursor.timeline && isAfter(consumedUpTo, cursor) ? consumedUpTo : cursor;
    let budget = opts.depth;
    while (budget > 0) {
      next = SegmentName.of(next.timeline, next.segno + 1n, segSize);
      budget--;
      const want = next;
      const name = want.name;
      if (present.has(name) || inFlight.has(name)) continue;
      if ((missingUntil.get(name) ?? 0) > Date.now()) break; // not archived yet: nothing after it either
      inFlight.add(name);
      mark(name);
      void queue.add(async () => {
        try {
          const restored = await restoreFile(ctx, name, opts.expectedSystemId ? { expectedSystemId: opts.expectedSystemId } : {});
          // Dropped while downloading (the cursor moved to another timeline, or past it): do not publish.
          const stillWanted = await readCursor();
          const wanted =
            stillWanted !== undefined &&
            stillWanted.timeline === want.timeline &&
            isAfter(want, stillWanted) &&
            (consumedUpTo === undefined || isAfter(want, consumedUpTo));
          if (!over() && wanted) {
            await publishPrefetched(dir, name, restored.bytes);
            fetched++;
          }
        } catch (err) {
          if (err instanceof NotFoundError) missingUntil.set(name, Date.now() + opts.missingRetryMs);
          else {
            // Leave it to wal-fetch, which reports the failure to PostgreSQL with the right exit code.
            missingUntil.set(name, Date.now() + opts.missingRetryMs);
            log.warn({ segment: name, err }, 'prefetch failed');
          }
        } finally {
          inFlight.delete(name);
          clearFetching(dir, name);
        }
      });
    }
    // Marks this run does not (or no longer) honour: a launcher must not wait for them.
    for (const n of fetchingNames(dir)) if (!inFlight.has(n)) clearFetching(dir, n);
    // onIdle() resolves at once on an idle queue: racing it alone would spin the loop at full CPU.
    await (queue.pending + queue.size > 0 ? Promise.race([queue.onIdle(), sleep(100)]) : sleep(100));
  }
  await queue.onIdle();
  for (const n of fetchingNames(dir)) clearFetching(dir, n);
  if (over()) {
    log.info('recovery has ended: prefetcher stops and drops its downloads');
    await dropAll(dir);
  }
  return { fetched };
}

/** `a` comes after `b` in (timeline, segment number) order, the order PostgreSQL names them in. */
function isAfter(a: SegmentName, b: SegmentName): boolean {
  return a.timeline !== b.timeline ? a.timeline > b.timeline : a.segno > b.segno;
}
