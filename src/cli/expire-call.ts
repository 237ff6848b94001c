/**
 * expire between argv and the library: the one retention policy the flags name (checked before
 * the archive opens), then plan, show, and delete unless it is a dry run.
 */
import { UsageError } from '../common/errors.js';
import type { ExpirePolicy } from '../ops/backup-retention.js';
import { executeExpire, planExpire } from '../ops/expire.js';
import { intArg } from './args.js';
import type { CliContext } from './context.js';
import { showPlanThenRun } from './plan-run.js';
import { expirePlanJson, renderExpireOutcome, renderExpirePlan } from './render/backups.js';
import { withArchive } from './with-archive.js';

export interface ExpireFlags {
  readonly retainFull?: string;
  readonly retainDays?: string;
  readonly dryRun?: boolean;
  readonly json?: boolean;
}

const MAX_RETAIN = 100_000;

export function expirePolicy(f: ExpireFlags): ExpirePolicy {
  if ((f.retainFull === undefined) === (f.retainDays === undefined)) {
    throw new UsageError('unable to expire backups: give exactly one of --retain-full N and --retain-days D');
  }
  return f.retainFull !== undefined
    ? { retainFull: intArg('--retain-full', f.retainFull, 1, MAX_RETAIN)! }
    : { retainDays: intArg('--retain-days', f.retainDays, 1, MAX_RETAIN)! };
}

export async function runExpire(ctx: CliContext, f: ExpireFlags): Promise<number> {
  const policy = expirePolicy(f);
  return withArchive(ctx, async (archive) => {
    const plan = await planExpire(archive, policy);
    return showPlanThenRun(ctx, f, {
      plan,
      execute: () => executeExpire(archive, plan),
      renderPlan: renderExpirePlan,
      renderOutcome: renderExpireOutcome,
      json: expirePlanJson,
    });
  });
}
