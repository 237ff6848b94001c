/**
 * The newest full segment in the archive without listing the archive: what the streaming agent
 * needs to know before it receives anything, on every start.
 *
 * The key layout (`wal/<TLI>/<TLI><LOG>/<name>-…`, see ../keys.ts) sorts by timeline, then by the
 * high 32 bits of the LSN, then by segment. A listing that starts after a chosen key and stops at
 * its first result answers "the first log directory at or after L" in one request; a binary search
 * over L finds a timeline's newest log directory in at most 32 such probes, and only that one
 * directory (at most 4 GiB of WAL: 256 segments of 16 MiB) is listed in full; galloping up from
 * the first directory first keeps that to about 2·log2(directories in use). Timelines are found
 * the same way, one probe each. So the work grows with the number of timelines and log
 * directories' count in bits, not with the number of objects.
 *
 * The answer is exactly what a full listing gives (highest segment number, then highest timeline;
 * `.partial` and `.backup` files do not count), so the agent's start position does not change.
 */
import type { Storage } from '../../storage/types.js';
import { SegmentName, tryClassifyWalFileName } from '../../segment/names.js';
import type { Timeline } from '../../segment/timeline.js';
import { WAL_PREFIX, logDirectoryPrefix, parseLogDirectory, parseObjectKey, parseTimelineDirectory, timelinePrefix } from '../keys.js';

const LOG_SPACE = 0x1_0000_0000; // log directories are the LSN's high 32 bits

/** The first key the listing yields that `accept` maps to a value, or undefined. */
async function firstMatch<T>(
  storage: Storage,
  prefix: string,
  startAfter: string | undefined,
  accept: (key: string) => T | undefined,
): Promise<T | undefined> {
  for await (const obj of storage.list(prefix, startAfter !== undefined ? { startAfter } : {})) {
    const v = accept(obj.key);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Every timeline that has a directory under wal/, ascending: one probe per timeline. */
export async function archivedTimelines(storage: Storage): Promise<Timeline[]> {
  const out: Timeline[] = [];
  let after: string | undefined;
  for (;;) {
    const tli = await firstMatch(storage, WAL_PREFIX, after, parseTimelineDirectory);
    if (tli === undefined) return out;
    out.push(tli);
    // 'wal/<TLI>0' sorts after every 'wal/<TLI>/…' key ('/' < '0') and before the next timeline.
    after = `${timelinePrefix(tli).slice(0, -1)}0`;
  }
}

/** The smallest log directory number >= `log` on `tli`, or undefined when there is none. */
async function logAtOrAfter(storage: Storage, tli: Timeline, log: number): Promise<number | undefined> {
  // Log directory names all have 16 characters, so '<TLI><LOG-1>0' sorts after every key in
  // directory LOG-1 and before directory LOG.
  const after = log > 0 ? `${logDirectoryPrefix(tli, log - 1).slice(0, -1)}0` : undefined;
  return firstMatch(storage, timelinePrefix(tli), after, (key) => {
    const dir = parseLogDirectory(key);
    return dir?.timeline === tli ? dir.log : undefined;
  });
}

/**
 * The highest log directory below `below` on `tli`, given `known`, one that exists below it.
 * Galloping up from `known` first (steps 1, 2, 4, ...) bounds the search by the span of log
 * directories actually used, usually a few hundred, instead of the whole 32-bit space: about
 * 2·log2(span) probes.
 */
async function highestLogBelow(storage: Storage, tli: Timeline, known: number, below: number): Promise<number> {
  let lo = known;
  let hi = below;
  for (let step = 1; lo + step < hi; step *= 2) {
    const found = await logAtOrAfter(storage, tli, lo + step);
    if (found === undefined || found >= hi) {
      hi = lo + step;
      break;
    }
    lo = found;
  }
  while (lo + 1 < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const found = await logAtOrAfter(storage, tli, mid);
    if (found === undefined || found >= hi) hi = mid;
    else lo = found;
  }
  return lo;
}

/** The highest full segment in one log directory, if it holds any. */
async function newestInLog(storage: Storage, tli: Timeline, log: number, segSize: number): Promise<SegmentName | undefined> {
  let best: SegmentName | undefined;
  for await (const obj of storage.list(logDirectoryPrefix(tli, log))) {
    const parts = parseObjectKey(obj.key);
    const c = parts ? tryClassifyWalFileName(parts.fileName) : undefined;
    if (!parts || c?.kind !== 'segment' || c.timeline !== tli) continue;
    let seg: SegmentName;
    try {
      seg = SegmentName.parse(parts.fileName, segSize);
    } catch {
      continue; // A name impossible at this segment size is not ours.
    }
    if (!best || seg.segno > best.segno) best = seg;
  }
  return best;
}

/** Newest full segment of `tli` in a log directory >= `floor`, if any. */
async function newestOnTimeline(storage: Storage, tli: Timeline, floor: number, segSize: number): Promise<SegmentName | undefined> {
  let below = LOG_SPACE;
  const first = await logAtOrAfter(storage, tli, floor);
  if (first === undefined) return undefined;
  for (;;) {
    const log = await highestLogBelow(storage, tli, first, below);
    const seg = await newestInLog(storage, tli, log, segSize);
    if (seg) return seg;
    // That directory holds only .partial or .backup files: look below it.
    if (log === first) return undefined;
    below = log;
  }
}

/** The full segment that reaches furthest in WAL (highest segment number, then timeline), if any. */
export async function lastArchivedSegment(storage: Storage, segSize: number): Promise<SegmentName | undefined> {
  let best: SegmentName | undefined;
  const segsPerLog = BigInt(LOG_SPACE) / BigInt(segSize);
  // Newest timeline first: usually it holds the answer, and older ones are then skipped after one
  // probe each (they have no log directory at or above the best one's).
  for (const tli of (await archivedTimelines(storage)).reverse()) {
    const floor = best ? Number(best.segno / segsPerLog) : 0;
    const seg = await newestOnTimeline(storage, tli, floor, segSize);
    if (seg && (!best || seg.segno > best.segno || (seg.segno === best.segno && seg.timeline > best.timeline))) best = seg;
  }
  return best;
}
