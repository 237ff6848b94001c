/**
 * wal-list: every WAL object with its LSN range, sizes, codec, encryption, checksum and upload
 * time, from the listing alone (no object is downloaded; only the identity record, for the
 * segment size).
 */
import type { CatalogEntry } from '../archive/catalog/listing.js';
import type { ArchiveContext } from '../archive/context.js';
import { codecFromExtension } from '../codec/codec.js';
import { codecExtensionOf } from '../archive/versions.js';
import { addLsn, formatLsn, type Lsn } from '../segment/lsn.js';
import { segmentStartLsn } from '../segment/names.js';
import { loadInventory } from '../archive/catalog/inventory.js';

export interface WalListFilter {
  readonly timeline?: number;
  /** Objects whose WAL reaches at or after this position. */
  readonly from?: Lsn;
  /** Objects whose WAL starts at or before this position. */
  readonly to?: Lsn;
}

export interface WalListRow {
  readonly name: string;
  readonly kind: CatalogEntry['kind'];
  readonly timeline: number;
  /** Segments and partials: the segment's range [start, end). Backup labels: where the backup started. */
  readonly startLsn: string | null;
  readonly endLsn: string | null;
  /** Size of the original file (a segment's size for segments and partials); unknown for others without a download. */
  readonly originalBytes: number | null;
  readonly storedBytes: number;
  readonly codec: string;
  readonly encrypted: boolean;
  readonly sha256: string;
  readonly uploadedAt: string;
  readonly key: string;
}

export interface WalList {
  readonly archive: string;
  readonly systemId: string;
  readonly walSegSize: number;
  readonly rows: readonly WalListRow[];
}

export async function listWal(ctx: ArchiveContext, filter: WalListFilter = {}): Promise<WalList> {
  const inv = await loadInventory(ctx, filter.timeline !== undefined ? { timeline: filter.timeline } : {});
  const rows = filterEntries(inv.entries, inv.segSize, filter).map((e) => toRow(e, inv.segSize));
  return { archive: ctx.storage.description, systemId: inv.identity.systemId, walSegSize: inv.segSize, rows };
}

/** Entries that match the filter. History files have no LSN and are kept unless their timeline is filtered out. */
function filterEntries(entries: readonly CatalogEntry[], segSize: number, filter: WalListFilter): CatalogEntry[] {
  return entries.filter((e) => matchesFilter(e, segSize, filter));
}

export function matchesFilter(e: CatalogEntry, segSize: number, filter: WalListFilter): boolean {
  if (filter.timeline !== undefined && e.timeline !== filter.timeline) return false;
  if (e.segno === undefined) return true;
  const size = BigInt(segSize);
  const start = e.segno * size;
  if (filter.to !== undefined && start > filter.to) return false;
  if (filter.from !== undefined && start + size <= filter.from) return false;
  return true;
}

function codecLabel(extension: string): string {
  try {
    return codecFromExtension(codecExtensionOf(extension)).name;
  } catch {
    return `?${extension}`;
  }
}

export function toRow(e: CatalogEntry, segSize: number): WalListRow {
  let startLsn: string | null = null;
  let endLsn: string | null = null;
  let originalBytes: number | null = null;
  if (e.segno !== undefined) {
    const start = segmentStartLsn(e.segno, segSize);
    if (e.kind === 'backup') {
      const offset = Number.parseInt(e.fileName.slice(25, 33), 16);
      startLsn = formatLsn(addLsn(start, offset));
    } else {
      startLsn = formatLsn(start);
      endLsn = formatLsn(addLsn(start, segSize));
      originalBytes = segSize;
    }
  }
  return {
    name: e.fileName,
    kind: e.kind,
    timeline: e.timeline,
    startLsn,
    endLsn,
    originalBytes,
    storedBytes: e.storedBytes,
    codec: codecLabel(e.extension),
    encrypted: e.encrypted,
    sha256: e.sha256,
    uploadedAt: e.mtime.toISOString(),
    key: e.key,
  };
}
