/**
 * The archive's catalog, read from object keys alone (one listing, no GETs): which WAL files exist,
 * on which timeline, at which LSN, how big, with which codec and encryption.
 */
import type { Storage } from '../../storage/types.js';
import { classifyWalFileName, segmentOfWalFileName, type ClassifiedWalFileName } from '../../segment/names.js';
import { HISTORY_PREFIX, WAL_PREFIX, parseObjectKey, timelinePrefix, type ObjectKeyParts } from '../keys.js';

export interface CatalogEntry extends ObjectKeyParts {
  readonly key: string;
  readonly kind: ClassifiedWalFileName['kind'];
  readonly timeline: number;
  /** Segment number for segments, partials and backup labels (needs the segment size). */
  readonly segno?: bigint;
  readonly storedBytes: number;
  readonly mtime: Date;
}

/** By timeline, then segment number (a timeline's history file first), then name and key. */
export function compareEntries(a: CatalogEntry, b: CatalogEntry): number {
  if (a.timeline !== b.timeline) return a.timeline - b.timeline;
  const sa = a.segno ?? -1n;
  const sb = b.segno ?? -1n;
  if (sa !== sb) return sa < sb ? -1 : 1;
  if (a.fileName !== b.fileName) return a.fileName < b.fileName ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** Every WAL-archive object (segments, partials, backup labels, history files), in key order. */
export async function* listCatalog(
  storage: Storage,
  segSize: number,
  opts: { timeline?: number; only?: 'wal' | 'history' } = {},
): AsyncGenerator<CatalogEntry> {
  const prefixes = [opts.timeline !== undefined ? timelinePrefix(opts.timeline) : WAL_PREFIX, HISTORY_PREFIX].filter(
    (p) => opts.only === undefined || (opts.only === 'history') === (p === HISTORY_PREFIX),
  );
  for (const prefix of prefixes) {
    for await (const obj of storage.list(prefix)) {
      const parts = parseObjectKey(obj.key);
      if (!parts) continue;
      let classified: ClassifiedWalFileName;
      try {
        classified = classifyWalFileName(parts.fileName);
      } catch {
        continue; // Not ours: foreign files in the bucket are ignored, never misread as WAL.
      }
      if (opts.timeline !== undefined && classified.kind === 'history' && classified.timeline !== opts.timeline) continue;
      let segno: bigint | undefined;
      if (classified.kind !== 'history') {
        try {
          segno = segmentOfWalFileName(classified, segSize).segno;
        } catch {
          continue; // A name impossible at this segment size is not ours either.
        }
      }
      yield {
        ...parts,
        key: obj.key,
        kind: classified.kind,
        timeline: classified.timeline,
        ...(segno !== undefined ? { segno } : {}),
        storedBytes: obj.size,
        mtime: obj.mtime,
      };
    }
  }
}

// Kept here for callers that found it beside listCatalog; it no longer lists the whole archive.
export { lastArchivedSegment } from './newest.js';
