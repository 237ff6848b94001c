/**
 * The catalogs a restore of one backup reads: its own, its parents' down to the full backup
 * (chainOf), and those of every backup a catalog's extents read (its header's `depends`). A
 * parent or owner that is not a complete backup, or a damaged catalog anywhere, fails the restore
 * before a byte is written, naming the backup being restored and the one at fault.
 */
import PQueue from 'p-queue';
import type { ArchiveContext } from '../../archive/context.js';
import { CryptoError, IntegrityError, describeCause } from '../../common/errors.js';
import { chainOf, notCompleteReason, type DamagedRecords } from '../chains.js';
import { decodeCatalog, type Catalog } from '../catalog.js';
import { loadBackupObject } from '../objects.js';
import type { BackupRecord } from '../record.js';
import type { ChainCatalogs } from './chain-plan.js';

export interface LoadedChain extends ChainCatalogs {
  /** The chain's records, newest first. */
  readonly records: readonly BackupRecord[];
}

async function loadCatalog(ctx: ArchiveContext, restoring: string, r: BackupRecord): Promise<Catalog> {
  try {
    return decodeCatalog(await loadBackupObject(ctx, r.catalog), r.catalog.key, r.name);
  } catch (err) {
    if (!(err instanceof IntegrityError || err instanceof CryptoError) || r.name === restoring) throw err;
    throw new IntegrityError(
      `unable to restore backup '${restoring}': the catalog of backup '${r.name}', which it builds on, is damaged: ${describeCause(err)}`,
      {
        cause: err,
      },
    );
  }
}

/**
 * `complete`: every complete backup of the archive (the inventory's); `damaged`: the backups whose
 * record does not decode, so that a chain broken by one names it.
 */
export async function loadChain(
  ctx: ArchiveContext,
  record: BackupRecord,
  complete: readonly BackupRecord[],
  damaged?: DamagedRecords,
): Promise<LoadedChain> {
  const byName = new Map(complete.map((r) => [r.name, r]));
  byName.set(record.name, record);
  const records = chainOf(record, byName, damaged);
  const catalogs = new Map<string, Catalog>();
  const queue = new PQueue({ concurrency: 4 });
  await Promise.all(records.map((r) => queue.add(async () => catalogs.set(r.name, await loadCatalog(ctx, record.name, r)))));
  const wanted = new Set<string>();
  for (const r of records) for (const d of [...(r.depends ?? []), ...(catalogs.get(r.name)!.depends ?? [])]) wanted.add(d);
  for (const d of wanted) {
    if (catalogs.has(d)) continue;
    const owner = byName.get(d);
    if (!owner) {
      throw new IntegrityError(`unable to restore backup '${record.name}': its files read backup '${d}', ${notCompleteReason(d, damaged)}`);
    }
    catalogs.set(d, await loadCatalog(ctx, record.name, owner));
  }
  return { names: records.map((r) => r.name), catalogs, records };
}
