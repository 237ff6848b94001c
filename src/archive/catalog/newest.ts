/**
 * The newest full segment in the archive without listing the archive: what the streaming agent
 * needs to know before it receives anything, on every start.
 *
 * The key layout (`wal/<TLI>/<TLI><LOG>/<name>-…`, see ../keys.ts) sorts by timeline, then by the
 * high 32 bits of the LSN, then by segment. A listing that starts after a chosen key and stops at
 * its first result answers "the first log directory at or after L" in one request; a binary search
 * over L finds a timeline's newest log directory in at most 32 such probes, and only that one
 * directory (at most 4 GiB of WAL: 256 segments of 16 MiB) is listed in full. Timelines are found
 * the same way, one probe each. So the work grows with the number of timelines and log
 * directories' count in bits, not with the number of objects.
 *
 * The answer is exactly what a full listing gives (highest segment number, then highest timeline;
 * `.partial` and `.backup` files do not count), so the agent's start position does not change.
 */
import type { Storage } from '../../storage/types.js';
import { SegmentName, tryClassifyWalFileName } from '../../segment/names.js';
import { WAL_PREFIX, parseObjectKey } from '../keys.js';

const LOG_SPACE = 0x1_0000_0000; // log directories are the LSN's high 32 bits
const hex8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');
const TIMELINE_DIR = /^wal\/([0-9A-F]{8})\//;
const LOG_DIR = /^wal\/([0-9A-F]{8})\/([0-9A-F]{8})([0-9A-F]{8})\//;

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
export async function archivedTimelines(storage: Storage): Promise<number[]> {
  const out: number[] = [];
  let after: string | undefined;
  for (;;) {
    const tli = await firstMatch(storage, WAL_PREFIX, after, (key) => {
      const m = TIMELINE_DIR.exec(key);
      return m ? Number.parseInt(m[1]!, 16) : undefined;
    });
    if (tli === undefined) return out;
    out.push(tli);
    // 'wal/<TLI>0' sorts after every 'wal/<TLI>/…' key ('/' < '0') and before the next timeline.
    after = `${WAL_PREFIX}${hex8(tli)}0`;
  }
}

/** The smallest log directory number >= `log` on `tli`, or undefined when there is none. */
async function logAtOrAfter(storage: Storage, tli: number, log: number): Promise<number | undefined> {
  const t = hex8(tli);
  const prefix = `${WAL_PREFIX}${t}/`;
  // Log directory names all have 16 characters, so '<TLI><LOG-1>0' sorts after every key in
  // directory LOG-1 and before directory LOG.
  const after = log > 0 ? `${prefix}${t}${hex8(log - 1)}0` : undefined;
  return firstMatch(storage, prefix, after, (key) => {
    const m = LOG_DIR.exec(key);
    return m && m[2] === t ? Number.parseInt(m[3]!, 16) : undefined;
  });
}

/** The highest log directory below `below` on `tli`, given `known`, one that exists below it. */
async function highestLogBelow(storage: Storage, tli: number, known: number, below: number): Promise<number> {
  let lo = known;
  let hi = below;
  while (lo + 1 < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const found = await logAtOrAfter(storage, tli, mid);
    if (found === undefined || found >= hi) hi = mid;
    else lo = found;
  }
  return lo;
}

/** The highest full segment in one log directory, if it holds any. */
async function newestInLog(storage: Storage, tli: number, log: number, segSize: number): Promise<SegmentName | undefined> {
  let best: SegmentName | undefined;
  for await (const obj of storage.list(`${WAL_PREFIX}${hex8(tli)}/${hex8(tli)}${hex8(log)}/`)) {
    const parts = parseObjectKey(obj.key);
    if (!parts || tryClassifyWalFileName(parts.fileName)?.kind !== 'segment' || parts.fileName.slice(0, 8) !== hex8(tli)) continue;
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
async function newestOnTimeline(storage: Storage, tli: number, floor: number, segSize: number): Promise<SegmentName | undefined> {
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
