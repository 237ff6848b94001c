/**
 * Reads small byte ranges of files of a chain into memory: the headers of INCREMENTAL files (a
 * restore must know which blocks each backup holds before it can place any) and an incremental
 * backup's backup_label. Each pack is downloaded once and verified (loadBackupObject); only the
 * requested bytes are kept, so memory is the ranges plus `parallel` packs. The packs are read again
 * when the files are written: the price of keeping no copy of the chain on local disk.
 */
import type { ArchiveContext } from '../../archive/context.js';
import { CryptoError, IntegrityError, NotFoundError, describeCause } from '../../common/errors.js';
import { packRef, type Catalog } from '../catalog.js';
import { loadBackupObject } from '../objects.js';
import { unitKey, type Piece } from './pieces.js';

export interface RangeRequest {
  /** Backup and file the bytes belong to, for messages. */
  readonly backup: string;
  readonly file: string;
  readonly length: number;
  /** fileOffset is relative to the start of the range. */
  readonly pieces: readonly Piece[];
}

/** The bytes of every request, in request order. */
export async function readRanges(
  ctx: ArchiveContext,
  restoring: string,
  catalogs: ReadonlyMap<string, Catalog>,
  requests: readonly RangeRequest[],
  parallel: number,
): Promise<Buffer[]> {
  const out = requests.map((r) => Buffer.alloc(r.length));
  const byUnit = new Map<string, Array<{ index: number; piece: Piece }>>();
  requests.forEach((r, index) => {
    for (const piece of r.pieces) {
      const key = unitKey(piece.owner, piece.pack);
      const list = byUnit.get(key) ?? [];
      list.push({ index, piece });
      byUnit.set(key, list);
    }
  });
  const units = [...byUnit.values()];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < units.length) {
      const placed = units[next++]!;
      const { owner, pack } = placed[0]!.piece;
      const first = requests[placed[0]!.index]!;
      const catalog = catalogs.get(owner);
      if (!catalog) {
        throw new IntegrityError(
          `unable to restore backup '${restoring}': '${first.file}' of backup '${first.backup}' needs backup '${owner}', which is not available`,
        );
      }
      let data: Buffer;
      try {
        data = await loadBackupObject(ctx, packRef(owner, catalog, pack));
      } catch (err) {
        // A pack the catalog names but the archive lacks is damage to the backup, like a corrupt one.
        if (!(err instanceof IntegrityError || err instanceof CryptoError || err instanceof NotFoundError)) throw err;
        throw new IntegrityError(
          `unable to restore backup '${restoring}': reading '${first.file}' of backup '${first.backup}' from pack ${pack} of backup '${owner}': ${describeCause(err)}`,
          { cause: err },
        );
      }
      for (const { index, piece } of placed) {
        if (piece.packOffset + piece.length > data.length) {
          const r = requests[index]!;
          throw new IntegrityError(
            `unable to restore backup '${restoring}': '${r.file}' of backup '${r.backup}' lies outside pack ${pack} of backup '${owner}'`,
          );
        }
        data.copy(out[index]!, piece.fileOffset, piece.packOffset, piece.packOffset + piece.length);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, units.length)) }, worker));
  return out;
}
