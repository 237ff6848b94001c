/**
 * wal-delete between argv and the library: its flags as a typed request (a bad value is a usage
 * error before the archive opens), then plan, show, and delete unless it is a dry run.
 */
import { UsageError } from '../common/errors.js';
import { executeWalDelete, planWalDelete } from '../ops/delete.js';
import type { Timeline } from '../segment/timeline.js';
import { intArg, timelineArg } from './args.js';
import type { CliContext } from './context.js';
import { showPlanThenRun } from './plan-run.js';
import { deletePlanJson, renderDeleteOutcome, renderDeletePlan } from './render/reports.js';
import { withArchive } from './with-archive.js';

export interface WalDeleteFlags {
  readonly before?: string;
  readonly timeline?: string;
  readonly dryRun?: boolean;
  readonly force?: boolean;
  readonly batch?: string;
  readonly json?: boolean;
}

export interface WalDeleteRequest {
  readonly before: string;
  readonly plan: { readonly timeline?: Timeline; readonly force?: true };
  readonly execute: { readonly batchSize?: number };
}

export function walDeleteRequest(f: WalDeleteFlags): WalDeleteRequest {
  if (f.before === undefined) throw new UsageError('unable to delete WAL: --before is required');
  const timeline = timelineArg(f.timeline);
  const batchSize = intArg('--batch', f.batch, 1, 1000);
  return {
    before: f.before,
    plan: { ...(timeline !== undefined ? { timeline } : {}), ...(f.force ? { force: true as const } : {}) },
    execute: batchSize !== undefined ? { batchSize } : {},
  };
}

export async function runWalDelete(ctx: CliContext, f: WalDeleteFlags): Promise<number> {
  const req = walDeleteRequest(f);
  return withArchive(ctx, async (archive) => {
    const plan = await planWalDelete(archive, req.before, req.plan);
    const total = plan.plan.delete.length;
    return showPlanThenRun(ctx, f, {
      plan,
      execute: total === 0 ? undefined : () => executeWalDelete(archive, plan.plan, req.execute),
      renderPlan: renderDeletePlan,
      renderOutcome: (outcome) => renderDeleteOutcome(outcome, total),
      json: deletePlanJson,
    });
  });
}
