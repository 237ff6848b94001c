/**
 * Completeness condition (3) of a base backup: every WAL segment from the start LSN's segment to
 * the end LSN's segment is in the archive (and the timeline history files recovery needs to follow
 * the backup's timeline). Without them the copied files are not a consistent cluster: recovery must
 * replay at least up to the end LSN.
 *
 * `neededWal` is pure; `waitForWal` polls the archive until everything is there, asks the server to
 * finish the current segment when the last one is still missing, and fails naming the first missing
 * file after the timeout (pgBackRest's archive-timeout, pgbackrest#2059 and friends: the most
 * common backup failure is WAL that never reached the archive).
 */
import type { ArchiveContext } from '../archive/context.js';
import { checkStoredObject } from '../archive/stored-check.js';
import { findVersions } from '../archive/versions.js';
import { AbortedError, WalvaultError, ExitCode } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { formatDuration } from '../common/format.js';
import { timelineOfSegment, type TimelineHistory } from '../segment/history.js';
import type { Lsn } from '../segment/lsn.js';
import { historyFileName, segmentFileName, segnoOfLsn } from '../segment/names.js';

/** WAL a backup needs did not reach the archive in time; nothing was recorded as complete. */
export class WalMissingError extends WalvaultError {
  override readonly code = 'WV_ERR_WAL_MISSING';
  override readonly exitCode = ExitCode.failure;
}

export interface WalRange {
  readonly startLsn: Lsn;
  readonly startTimeline: number;
  readonly endLsn: Lsn;
  readonly endTimeline: number;
  readonly segSize: number;
  /** History of the end timeline; required when it differs from the start timeline. */
  readonly history?: TimelineHistory;
}

export interface NeededWal {
  /** Segment file names in WAL order; the first and last are walFirst and walLast. */
  readonly segments: readonly string[];
  /** `<TLI>.history` files of the backup's timelines above 1. */
  readonly histories: readonly string[];
}

/**
 * The files a backup from `startLsn` to `endLsn` needs. The end LSN is where the server's
 * backup-end record finished: when it lies exactly on a segment boundary, no byte of the segment
 * starting there is needed (PostgreSQL's XLByteToPrevSeg for the stop segment).
 */
export function neededWal(range: WalRange): NeededWal {
  const { startLsn, endLsn, segSize, startTimeline, endTimeline } = range;
  if (endLsn < startLsn) throw new WalvaultError('unable to find the WAL of the backup: its end LSN lies before its start LSN');
  if (startTimeline !== endTimeline && range.history?.timeline !== endTimeline) {
    throw new WalvaultError(
      `unable to find the WAL of the backup: it crosses from timeline ${startTimeline} to ${endTimeline} and the history of timeline ${endTimeline} is needed`,
    );
  }
  const first = segnoOfLsn(startLsn, segSize);
  // max(): an end LSN on the boundary right after the start would otherwise name the previous segment.
  const prev = segnoOfLsn((endLsn > 0n ? endLsn - 1n : 0n) as Lsn, segSize);
  const last = prev < first ? first : prev;
  const segments: string[] = [];
  const timelines = new Set<number>([startTimeline, endTimeline]);
  for (let segno = first; segno <= last; segno++) {
    const tli = startTimeline === endTimeline ? startTimeline : timelineOfSegment(range.history!, segno, segSize);
    timelines.add(tli);
    segments.push(segmentFileName(tli, segno, segSize));
  }
  const histories = [...timelines]
    .filter((t) => t > 1)
    .sort((a, b) => a - b)
    .map((t) => historyFileName(t));
  return { segments, histories };
}

export interface WaitOptions {
  readonly timeoutMs: number;
  /** Asks the server to finish its current segment (pg_switch_wal); undefined on a standby. */
  readonly switchWal?: () => Promise<void>;
  readonly log: Logger;
  readonly signal?: AbortSignal;
  /** Longest pause between lookups (the first ones are shorter: FIRST_POLL_MS, doubling). */
  readonly pollMs?: number;
  /** First switch request after this long without the last segment, then every `switchEveryMs`. */
  readonly switchAfterMs?: number;
  readonly switchEveryMs?: number;
}

/**
 * First pause between lookups, doubled after each up to `pollMs`. The last segment usually arrives
 * within a few hundred milliseconds of the backup's end (the server switched WAL, the archiver
 * pushes it), so a fixed 500 ms poll added most of a poll to every backup; this costs at most four
 * more lookups.
 */
export const FIRST_POLL_MS = 50;

/** Is `fileName` archived with an object whose header and length are whole? */
export async function isArchived(ctx: Pick<ArchiveContext, 'storage' | 'signal'>, fileName: string): Promise<boolean> {
  for (const v of await findVersions(ctx, fileName)) {
    const check = await checkStoredObject(ctx.storage, v.key, { name: fileName, sha256: v.parts.sha256 }, ctx.signal);
    if (check.state === 'whole') return true;
  }
  return false;
}

/** Resolves when every needed file is archived; WalMissingError naming the first missing one on timeout. */
export async function waitForWal(ctx: Pick<ArchiveContext, 'storage' | 'signal'>, needed: NeededWal, opts: WaitOptions): Promise<void> {
  const pollMs = opts.pollMs ?? 500;
  // On a primary the server already switched at backup end; the wait is usually the archiver's
  // latency. A switch request costs a segment, so it comes only when that did not suffice.
  const switchAfterMs = opts.switchAfterMs ?? 3_000;
  const switchEveryMs = opts.switchEveryMs ?? 15_000;
  const started = Date.now();
  let delay = Math.min(FIRST_POLL_MS, pollMs);
  let lastSwitch: number | undefined;
  let missing = [...needed.histories, ...needed.segments];
  const lastSegment = needed.segments[needed.segments.length - 1];
  for (;;) {
    // Only the files still missing are looked up again: an archived file stays archived.
    const still: string[] = [];
    for (const f of missing) if (!(await isArchived(ctx, f))) still.push(f);
    missing = still;
    if (missing.length === 0) return;
    const waited = Date.now() - started;
    if (waited >= opts.timeoutMs) {
      throw new WalMissingError(
        `unable to complete the backup: WAL file '${missing[0]}' did not reach the archive within ${formatDuration(opts.timeoutMs)}` +
          `${missing.length > 1 ? ` (${missing.length} files missing)` : ''}; check archive_command or the stream agent (setting archive-timeout)`,
      );
    }
    const lastMissing = lastSegment !== undefined && missing.includes(lastSegment);
    if (
      opts.switchWal &&
      lastMissing &&
      waited >= switchAfterMs &&
      (lastSwitch === undefined || Date.now() - lastSwitch >= switchEveryMs)
    ) {
      lastSwitch = Date.now();
      opts.log.info({ segment: lastSegment }, 'asking the server to switch WAL');
      await opts.switchWal();
    }
    opts.log.debug({ missing: missing.length, first: missing[0], waitedMs: waited }, 'waiting for WAL to be archived');
    await sleep(Math.min(delay, Math.max(1, opts.timeoutMs - waited)), opts.signal);
    delay = Math.min(pollMs, delay * 2);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError('unable to wait for WAL: aborted'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortedError('unable to wait for WAL: aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
