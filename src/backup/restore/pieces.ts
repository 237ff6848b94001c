/**
 * Where the bytes of a restored file come from, as pieces of packs (pure). A pack is named by its
 * owner (the backup whose `packs/` holds it) and number: an extent `[pack, offset, length]` of
 * backup B is in B's pack, `[pack, offset, length, owner]` in the owner's (catalog.ts). A restored
 * file is its pieces placed at their offsets; whatever no piece covers is zeros (blocks of a
 * rebuilt file that no backup of the chain holds).
 */
import { IntegrityError } from '../../common/errors.js';
import { extentOwner, type CatalogEntry } from '../catalog.js';

export interface Piece {
  /** The backup whose pack holds the bytes. */
  readonly owner: string;
  readonly pack: number;
  readonly packOffset: number;
  /** Offset in the restored file. */
  readonly fileOffset: number;
  readonly length: number;
}

/** The key of a pack across backups: the restore's unit of download and of the memory budget. */
export function unitKey(owner: string, pack: number): string {
  return `${owner}\u0000${pack}`;
}

/**
 * The pieces holding bytes [start, start + length) of file `entry` of backup `backup`, placed at
 * `at` in the restored file, in order.
 */
export function rangePieces(backup: string, entry: CatalogEntry, start: number, length: number, at: number): Piece[] {
  if (start < 0 || length < 0 || start + length > entry.size) {
    throw new IntegrityError(
      `unable to read file '${entry.path}' of backup '${backup}': bytes ${start}..${start + length} lie beyond its ${entry.size} bytes`,
    );
  }
  const out: Piece[] = [];
  let pos = 0;
  const end = start + length;
  for (const x of entry.extents) {
    const [pack, offset, len] = x;
    const from = Math.max(start, pos);
    const to = Math.min(end, pos + len);
    if (from < to) {
      out.push({
        owner: extentOwner(backup, x),
        pack,
        packOffset: offset + (from - pos),
        fileOffset: at + (from - start),
        length: to - from,
      });
    }
    pos += len;
    if (pos >= end) break;
  }
  return out;
}

/** The whole of `entry`, at offset 0. */
export function filePieces(backup: string, entry: CatalogEntry): Piece[] {
  return rangePieces(backup, entry, 0, entry.size, 0);
}
