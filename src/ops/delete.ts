/**
 * wal-delete: plan with the retention rules (retention.ts), then delete oldest first in batches.
 * WAL that a complete base backup needs is refused unless forced (expire deletes old backups and
 * their WAL together).
 * An interruption (SIGINT/SIGTERM) lets the running batch finish and stops before the next, so the
 * archive is always "the oldest WAL gone, everything after it whole", and running the same command
 * again completes the job.
 */
import type { ArchiveContext } from '../archive/context.js';
import type { ArchiveIdentity } from '../archive/identity.js';
import { claimKey } from '../archive/keys.js';
import { loadHistories, loadInventory } from '../archive/catalog/inventory.js';
import { parseBefore, planRetention, type BeforeSpec, type RetentionPlan } from '../archive/catalog/retention.js';
import { completeBackups, loadBackupInventory } from '../backup/inventory.js';
import { backupWalNeeds } from './backup-retention.js';

export interface DeletePlan {
  readonly archive: string;
  readonly identity: ArchiveIdentity;
  readonly before: BeforeSpec;
  readonly plan: RetentionPlan;
  /** WAL objects (segments, partials, backup labels, history files) in the archive before deleting. */
  readonly objects: number;
  /** Problems reading history files: their ancestry is then unknown and every history file is kept. */
  readonly historyFailures: readonly string[];
}

export async function planWalDelete(
  ctx: ArchiveContext,
  before: string,
  opts: { timeline?: number; force?: boolean; now?: Date } = {},
): Promise<DeletePlan> {
  const { identity, segSize, entries } = await loadInventory(ctx);
  const spec = parseBefore(before, segSize, opts.now ?? new Date());
  const { histories, failures } = await loadHistories(ctx, entries);
  // Every complete walvault backup is kept by wal-delete: its WAL is protected (expire deletes both).
  const records = completeBackups(await loadBackupInventory(ctx));
  const timelines = [...new Set([...entries.map((e) => e.timeline), ...histories.keys()])];
  const needs = backupWalNeeds(records, histories, timelines, segSize);
  const plan = planRetention(entries, histories, spec, segSize, {
    ...(opts.timeline !== undefined ? { timeline: opts.timeline } : {}),
    ...(opts.force ? { force: true } : {}),
    needs,
  });
  return {
    archive: ctx.storage.description,
    identity,
    before: spec,
    plan,
    objects: entries.length,
    historyFailures: failures.map((f) => `${f.fileName}: ${f.message}`),
  };
}

export interface DeleteOutcome {
  readonly deleted: number;
  readonly storedBytes: number;
  readonly batches: number;
  /** Stopped early by the signal, after a whole batch. */
  readonly interrupted: boolean;
}

const DEFAULT_DELETE_BATCH = 100;

export async function executeWalDelete(
  ctx: ArchiveContext,
  plan: RetentionPlan,
  opts: { batchSize?: number; onBatch?: (deleted: number, total: number) => void } = {},
): Promise<DeleteOutcome> {
  const size = Math.max(1, opts.batchSize ?? DEFAULT_DELETE_BATCH);
  let deleted = 0;
  let storedBytes = 0;
  let batches = 0;
  for (let i = 0; i < plan.delete.length; i += size) {
    if (ctx.signal?.aborted) return { deleted, storedBytes, batches, interrupted: true };
    const batch = plan.delete.slice(i, i + size);
    // No signal passed down: a batch, once started, completes. Claims go with their data (partials
    // have none); a claim left without data would refuse a later push of that name.
    const claims = [...new Set(batch.filter((o) => o.kind !== 'partial').map((o) => claimKey(o.fileName)))];
    await ctx.storage.delete([...batch.map((o) => o.key), ...claims]);
    deleted += batch.length;
    storedBytes += batch.reduce((n, o) => n + o.storedBytes, 0);
    batches++;
    ctx.log.info(
      { component: 'ops.delete', key: batch[0]!.key, bytes: storedBytes },
      `deleted ${batch.length} objects (${batch[0]!.fileName} .. ${batch[batch.length - 1]!.fileName})`,
    );
    opts.onBatch?.(deleted, plan.delete.length);
  }
  return { deleted, storedBytes, batches, interrupted: false };
}
