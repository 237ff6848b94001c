/**
 * Deleting one backup's objects, in the order that keeps the archive honest at every moment:
 * backup.json first (from then on the backup is no longer complete, so nothing restores from or
 * counts on a half-deleted backup), then everything else under its prefix, then a second listing
 * to catch objects a racing writer or an earlier interrupted delete left.
 *
 * backup-delete NAME refuses the newest complete backup and a running one unless forced, and a
 * backup others need (their parent chain or their references lead to it) unless
 * --with-dependents, which deletes those first, newest first.
 */
import type { ArchiveContext } from '../archive/context.js';
import { UsageError } from '../common/errors.js';
import { backupPrefix, recordKey } from '../backup/layout.js';
import { dependentsOf } from '../backup/chains.js';
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
  /**
   * Complete backups that need it (increments built on it and backups whose files reference its
   * packs, directly or through others), newest first: deleted before it with --with-dependents.
   */
  readonly dependents: readonly BackupEntry[];
}

export interface BackupDeleteOptions {
  readonly force?: boolean;
  readonly withDependents?: boolean;
  readonly now?: Date;
}

const list = (names: readonly string[]): string => names.join(', ');

export async function planBackupDelete(ctx: ArchiveContext, name: string, opts: BackupDeleteOptions = {}): Promise<BackupDeletePlan> {
  const inv = await loadBackupInventory(ctx, opts.now ? { now: opts.now } : {});
  const backup = inv.backups.find((b) => b.name === name);
  if (!backup) {
    throw new UnknownBackupError(
      `unable to delete backup '${name}' in archive '${ctx.storage.description}': no such backup (see 'walvault backup-list')`,
    );
  }
  const complete = completeBackups(inv);
  const dependents = dependentsOf(name, complete)
    .reverse()
    .map((r) => inv.backups.find((b) => b.name === r.name)!);
  if (dependents.length > 0 && !opts.withDependents) {
    throw new UsageError(
      `unable to delete backup '${name}': backup ${list(dependents.map((d) => d.name))} ${dependents.length > 1 ? 'need' : 'needs'} it ` +
        `(increments built on it or files stored in it); delete them first, or pass --with-dependents to delete them too (newest first)`,
    );
  }
  if (!opts.force) {
    const doomed = new Set([name, ...dependents.map((d) => d.name)]);
    const newest = complete[complete.length - 1];
    if (newest && doomed.has(newest.name)) {
      const why =
        newest.name === name ? 'it is the newest complete backup' : `it would take the newest complete backup, ${newest.name}, with it`;
      throw new UsageError(
        `unable to delete backup '${name}': ${why}, the only way back to the archive's recent state (pass --force to delete it anyway)`,
      );
    }
    if (backup.status === 'running') {
      throw new UsageError(
        `unable to delete backup '${name}': it is running (last written ${backup.lastActivity.toISOString()}); stop its backup-push, or pass --force`,
      );
    }
    const building = inv.backups.filter((b) => b.status === 'running' && b.started?.parent && doomed.has(b.started.parent));
    if (building.length > 0) {
      throw new UsageError(
        `unable to delete backup '${name}': running backup ${list(building.map((b) => b.name))} builds on it; wait for it, or pass --force`,
      );
    }
  }
  return { archive: ctx.storage.description, backup, dependents };
}

/** Deletes the dependents (newest first), then the backup: at no moment does a complete backup lack what it needs. */
export async function executeBackupDelete(ctx: ArchiveContext, plan: BackupDeletePlan): Promise<BackupDeleteOutcome[]> {
  const out: BackupDeleteOutcome[] = [];
  for (const d of [...plan.dependents, plan.backup]) out.push(await deleteBackupObjects(ctx, d));
  return out;
}
