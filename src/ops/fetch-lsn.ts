/**
 * Fetching the segment that holds an LSN: which timeline holds the position comes from the archived
 * history files (the newest timeline's, unless the operator names one), then the first candidate
 * file the archive holds is restored and verified like any wal-fetch.
 *
 * Only history/ and one lookup per candidate are listed, not the whole archive, so this stays fast on
 * archives of any size.
 */
import type { ArchiveContext } from '../archive/context.js';
import { fetchFile, restoreFile, type FetchResult } from '../restore/fetch.js';
import { findVersions } from '../archive/versions.js';
import { readIdentity } from '../archive/identity.js';
import { HISTORY_PREFIX, parseObjectKey, timelinePrefix } from '../archive/keys.js';
import { NotFoundError, TimelineError } from '../common/errors.js';
import { makeTimelineHistory, parseTimelineHistory, type TimelineHistory } from '../segment/history.js';
import { formatLsn, type Lsn } from '../segment/lsn.js';
import { historyFileName, tryClassifyWalFileName } from '../segment/names.js';
import { timeline as toTimeline, type Timeline } from '../segment/timeline.js';
import { segmentCandidatesForLsn, type LsnLookup } from '../archive/catalog/lsn-segment.js';

export interface LsnLocation {
  readonly lookup: LsnLookup;
  /** The candidate the archive holds, if any. */
  readonly fileName: string | undefined;
  readonly segSize: number;
}

/** Finds, without downloading WAL, which archived file holds `position`. */
export async function locateLsn(ctx: ArchiveContext, position: Lsn, opts: { timeline?: number } = {}): Promise<LsnLocation> {
  const identity = await readIdentity(ctx.storage);
  if (!identity) throw new NotFoundError(`unable to find LSN '${formatLsn(position)}': the archive '${ctx.storage.description}' is empty`);
  ctx.identity = identity;
  const historyTimelines = await archivedHistoryTimelines(ctx);
  let history: TimelineHistory;
  if (opts.timeline !== undefined) {
    const tli = toTimeline(opts.timeline);
    history = historyTimelines.includes(tli) ? await readHistory(ctx, tli) : makeTimelineHistory(tli, []);
  } else {
    const newest = toTimeline(Math.max(1, ...historyTimelines));
    // A later timeline with segments but no history file would silently be ignored: say so instead.
    for await (const obj of ctx.storage.list(timelinePrefix(newest + 1))) {
      throw new TimelineError(
        `unable to choose a timeline for LSN '${formatLsn(position)}': the archive holds WAL of timeline ${newest + 1} ('${obj.key}') but no ${historyFileName(newest + 1)} (pass --timeline)`,
      );
    }
    // Timeline 1 has no history file; any later newest timeline was found through its file.
    history = historyTimelines.includes(newest) ? await readHistory(ctx, newest) : makeTimelineHistory(newest, []);
  }
  const lookup = segmentCandidatesForLsn(position, history, identity.walSegSize);
  for (const name of lookup.candidates) {
    if ((await findVersions(ctx, name)).length > 0) return { lookup, fileName: name, segSize: identity.walSegSize };
  }
  return { lookup, fileName: undefined, segSize: identity.walSegSize };
}

/** Restores the archived file that holds `position` into `destPath` (verified, written atomically). */
export async function fetchSegmentForLsn(
  ctx: ArchiveContext,
  position: Lsn,
  destPath: string,
  opts: { timeline?: number; expectedSystemId?: string } = {},
): Promise<{ lookup: LsnLookup; result: FetchResult }> {
  const location = await locateLsn(ctx, position, opts.timeline !== undefined ? { timeline: opts.timeline } : {});
  if (location.fileName === undefined) {
    throw new NotFoundError(
      `unable to find LSN '${formatLsn(position)}' in the archive: timeline ${location.lookup.timeline} holds it ` +
        `(history of timeline ${location.lookup.along}), and none of ${location.lookup.candidates.join(', ')} is archived`,
    );
  }
  const result = await fetchFile(
    ctx,
    location.fileName,
    destPath,
    opts.expectedSystemId ? { expectedSystemId: opts.expectedSystemId } : {},
  );
  return { lookup: location.lookup, result };
}

async function archivedHistoryTimelines(ctx: ArchiveContext): Promise<Timeline[]> {
  const out = new Set<Timeline>();
  for await (const obj of ctx.storage.list(HISTORY_PREFIX)) {
    const parts = parseObjectKey(obj.key);
    const c = parts ? tryClassifyWalFileName(parts.fileName) : undefined;
    if (c?.kind === 'history') out.add(c.timeline);
  }
  return [...out].sort((a, b) => a - b);
}

async function readHistory(ctx: ArchiveContext, tli: Timeline): Promise<TimelineHistory> {
  const restored = await restoreFile(ctx, historyFileName(tli));
  return parseTimelineHistory(restored.bytes, tli);
}
