/**
 * expire: apply a retention policy to the backups (backup-retention.ts decides), delete the
 * abandoned leftovers of failed backup-pushes, then the WAL no kept backup needs. Backups go oldest
 * first, each with its backup.json first; WAL goes last and oldest first (executeWalDelete), so an
 * interruption at any point leaves kept backups restorable and running the command again finishes.
 *
 * While a backup-push runs, its WAL needs are unknown (its start LSN is only in its final record),
 * so the WAL step is postponed to the next expire instead of guessing.
 */
import type { ArchiveContext } from '../archive/context.js';
import type { ArchiveIdentity } from '../archive/identity.js';
import { loadHistories, loadInventory } from '../archive/catalog/inventory.js';
import type { KeptNote, RetentionObject } from '../archive/catalog/retention.js';
import { NotFoundError } from '../common/errors.js';
import { loadBackupInventory } from '../backup/inventory.js';
import { deleteBackupObjects } from './backup-delete.js';
import { executeWalDelete } from './delete.js';
import { backupWalNeeds, planBackupExpiry, planExpireWal, type BackupExpiryPlan, type ExpirePolicy } from './backup-retention.js';

export interface ExpirePlan {
  readonly archive: string;
  readonly policy: ExpirePolicy;
  readonly identity: ArchiveIdentity | null;
  readonly backups: BackupExpiryPlan;
  readonly wal: { readonly delete: readonly RetentionObject[]; readonly kept: readonly KeptNote[] };
  /** Why no WAL is deleted this time (a backup is running), or null. */
  readonly walPostponed: string | null;
  readonly historyProblems: readonly string[];
}

export async function planExpire(ctx: ArchiveContext, policy: ExpirePolicy, opts: { now?: Date } = {}): Promise<ExpirePlan> {
  const now = opts.now ?? new Date();
  const inventory = await loadBackupInventory(ctx, { now });
  const backups = planBackupExpiry(inventory.backups, policy, now);
  const base = { archive: ctx.storage.description, policy, backups };
  let wal;
  try {
    wal = await loadInventory(ctx);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    return { ...base, identity: null, wal: { delete: [], kept: [] }, walPostponed: 'the archive holds no WAL', historyProblems: [] };
  }
  const { histories, failures } = await loadHistories(ctx, wal.entries);
  const historyProblems = failures.map((f) => `${f.fileName}: ${f.message}`);
  const running = inventory.backups.filter((b) => b.status === 'running').map((b) => b.name);
  if (running.length > 0) {
    const walPostponed = `backup ${running.join(', ')} is running and its WAL needs are not known yet: run expire again after it ends`;
    return { ...base, identity: wal.identity, wal: { delete: [], kept: [] }, walPostponed, historyProblems };
  }
  const timelines = [...new Set([...wal.entries.map((e) => e.timeline), ...histories.keys()])];
  const needs = backupWalNeeds(
    backups.keep.map((k) => k.backup.record!),
    histories,
    timelines,
    wal.segSize,
  );
  return { ...base, identity: wal.identity, wal: planExpireWal(wal.entries, needs), walPostponed: null, historyProblems };
}

export interface ExpireOutcome {
  readonly backupsDeleted: readonly string[];
  readonly leftoversDeleted: readonly string[];
  readonly backupObjects: number;
  readonly walDeleted: number;
  readonly storedBytes: number;
  readonly interrupted: boolean;
}

export async function executeExpire(ctx: ArchiveContext, plan: ExpirePlan): Promise<ExpireOutcome> {
  const backupsDeleted: string[] = [];
  const leftoversDeleted: string[] = [];
  let backupObjects = 0;
  let storedBytes = 0;
  const done = (interrupted: boolean, walDeleted = 0): ExpireOutcome => ({
    backupsDeleted,
    leftoversDeleted,
    backupObjects,
    walDeleted,
    storedBytes,
    interrupted,
  });
  for (const [list, into] of [
    [plan.backups.expire, backupsDeleted],
    [plan.backups.leftovers, leftoversDeleted],
  ] as const) {
    for (const d of list) {
      if (ctx.signal?.aborted) return done(true);
      const o = await deleteBackupObjects(ctx, d.backup);
      into.push(o.name);
      backupObjects += o.objects;
      storedBytes += o.storedBytes;
    }
  }
  if (ctx.signal?.aborted) return done(true);
  const wal = await executeWalDelete(ctx, { cutoff: null, delete: plan.wal.delete, kept: plan.wal.kept });
  storedBytes += wal.storedBytes;
  return done(wal.interrupted, wal.deleted);
}
