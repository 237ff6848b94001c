/**
 * Deleting one backup's objects, in the order that keeps the archive honest at every moment:
 * backup.json first (from then on the backup is no longer complete, so nothing restores from or
 * counts on a half-deleted backup), then everything else under its prefix, then a second listing
 * to catch objects a racing writer or an earlier interrupted delete left.
 *
 * backup-delete NAME refuses the newest complete backup and a running one unless forced.
 */
import type { ArchiveContext } from '../archive/context.js';
import { UsageError } from '../common/errors.js';
import { backupPrefix, recordKey } from '../backup/layout.js';
import { completeBackups, loadBackupInventory, UnknownBackupError, type BackupEntry } from '../backup/inventory.js';

const BATCH = 100;

export interface BackupDeleteOutcome {
  readonly name: string;
  readonly objects: number;
  readonly storedBytes: number;
}

export async function deleteBackupObjects(ctx: ArchiveContext, entry: BackupEntry): Promise<BackupDeleteOutcome> {
  const record = recordKey(entry.name);
  const log = ctx.log.child({ component: 'ops.backup-delete', key: backupPrefix(entry.name) });
  let objects = 0;
  let storedBytes = 0;
  if (entry.objects.some((o) => o.key === record)) {
    await ctx.storage.delete([record]);
    objects++;
    storedBytes += entry.objects.find((o) => o.key === record)!.size;
  }
  const rest = entry.objects.filter((o) => o.key !== record);
  for (let i = 0; i < rest.length; i += BATCH) {
    const batch = rest.slice(i, i + BATCH);
    await ctx.storage.delete(batch.map((o) => o.key));
    objects += batch.length;
    storedBytes += batch.reduce((n, o) => n + o.size, 0);
  }
  const late: string[] = [];
  for await (const o of ctx.storage.list(backupPrefix(entry.name))) late.push(o.key);
  if (late.length > 0) await ctx.storage.delete(late);
  objects += late.length;
  log.info({ bytes: storedBytes }, `deleted backup ${entry.name} (${objects} objects)`);
  return { name: entry.name, objects, storedBytes };
}

export interface BackupDeletePlan {
  readonly archive: string;
  readonly backup: BackupEntry;
}

export async function planBackupDelete(
  ctx: ArchiveContext,
  name: string,
  opts: { force?: boolean; now?: Date } = {},
): Promise<BackupDeletePlan> {
  const inv = await loadBackupInventory(ctx, opts.now ? { now: opts.now } : {});
  const backup = inv.backups.find((b) => b.name === name);
  if (!backup) {
    throw new UnknownBackupError(
      `unable to delete backup '${name}' in archive '${ctx.storage.description}': no such backup (see 'walvault backup-list')`,
    );
  }
  if (!opts.force) {
    const complete = completeBackups(inv);
    if (complete.length > 0 && complete[complete.length - 1]!.name === name) {
      throw new UsageError(
        `unable to delete backup '${name}': it is the newest complete backup, the only way back to the archive's recent state (pass --force to delete it anyway)`,
      );
    }
    if (backup.status === 'running') {
      throw new UsageError(
        `unable to delete backup '${name}': it is running (last written ${backup.lastActivity.toISOString()}); stop its backup-push, or pass --force`,
      );
    }
  }
  return { archive: ctx.storage.description, backup };
}
