/**
 * What a restore reads before it writes anything: the backup to restore (named, or the newest that
 * reaches the target), the records of its chain and the stored objects that are the backup besides
 * its catalogs and packs. Every failure here leaves the target directory as it was.
 *
 * A backup.json that exists but does not decode is damage (exit 128 naming its key), never an
 * unknown backup (exit 2): the operator must look at that object, not for a typo in the name.
 */
import type { ArchiveContext } from '../../archive/context.js';
import { lastArchivedSegment } from '../../archive/catalog/listing.js';
import { ExitCode, IntegrityError, NotFoundError, UsageError, WalvaultError, describeCause } from '../../common/errors.js';
import { compareLsn } from '../../segment/lsn.js';
import type { DamagedRecords } from '../chains.js';
import { completeBackups, damagedRecords, loadBackupInventory } from '../inventory.js';
import { loadBackupObject } from '../objects.js';
import type { BackupRecord } from '../record.js';
import { chooseBackup, type RecoveryTarget, type TargetTimeline } from './plan.js';

export interface Selected {
  readonly record: BackupRecord;
  /** Every complete backup of the archive (the chain is loaded from these). */
  readonly complete: readonly BackupRecord[];
  /** Backups whose record is damaged, so that a chain they break names them. */
  readonly damaged: DamagedRecords;
}

export async function selectBackup(
  ctx: ArchiveContext,
  opts: { backup?: string | undefined; target: RecoveryTarget; timeline?: TargetTimeline | undefined },
): Promise<Selected> {
  // The inventory throws on storage failures: a record it could not read is never taken for absent,
  // which would quietly pick an older backup.
  const inventory = await loadBackupInventory(ctx);
  const damaged = damagedRecords(inventory);
  const bad = opts.backup !== undefined ? damaged.get(opts.backup) : undefined;
  if (bad !== undefined) throw new IntegrityError(`unable to restore backup '${opts.backup}': ${bad}`);
  for (const [name, reason] of damaged) ctx.log.warn({ backup: name, err: reason }, 'backup record damaged; not considered');
  const complete = completeBackups(inventory);
  const record = chooseBackup(complete, opts.target, { name: opts.backup, timeline: opts.timeline });
  if (opts.target.kind === 'lsn') {
    const last = await lastArchivedSegment(ctx.storage, record.walSegSize);
    if (last && compareLsn(opts.target.lsn, last.lastLsn) > 0) {
      throw new UsageError(
        `unable to restore to target LSN ${opts.target.text}: it is after the newest archived WAL (segment ${last.toString()} ends before it)`,
      );
    }
  }
  return { record, complete, damaged };
}

/**
 * Reads back PostgreSQL's backup_manifest of every backup of the chain (newest first) and checks
 * it against its record (size, SHA-256, encryption tag). The restore does not need their content,
 * but a restore that succeeds over a damaged object of the chain would hide the damage until the
 * manifest is needed (as the parent of the next incremental backup, or for an audit), and a DBA
 * reads a clean restore as "this chain is sound". The manifest is not written into the data
 * directory: see docs/operations.md ("restore").
 */
export async function checkChainManifests(ctx: ArchiveContext, restoring: string, records: readonly BackupRecord[]): Promise<void> {
  for (const record of records) {
    if (record.manifest === null) continue;
    try {
      await loadBackupObject(ctx, record.manifest);
    } catch (err) {
      // A missing object is damage too: the record says the backup has it.
      const damage = err instanceof NotFoundError || (err instanceof WalvaultError && err.exitCode === ExitCode.integrity);
      if (!damage) throw err;
      const whose =
        record.name === restoring ? 'its backup_manifest' : `the backup_manifest of backup '${record.name}', which it builds on,`;
      throw new IntegrityError(`unable to restore backup '${restoring}': ${whose} is damaged: ${describeCause(err)}`, { cause: err });
    }
  }
}
