/**
 * The flow the retention commands share (wal-delete, expire): show the plan, then stop (a dry run,
 * or nothing to do) or execute it and show what was done. The plan is printed before anything is
 * deleted, so an operator who interrupts a long run has already seen what it set out to do.
 */
import { ExitCode } from '../common/errors.js';
import type { CliContext } from './context.js';

export interface PlanRun<P, O extends { readonly interrupted: boolean }> {
  readonly plan: P;
  /** Undefined when there is nothing to do. */
  readonly execute: (() => Promise<O>) | undefined;
  readonly renderPlan: (plan: P) => string;
  readonly renderOutcome: (outcome: O) => string;
  readonly json: (plan: P, outcome: O | null, dryRun: boolean) => unknown;
}

/** Exit 0 when done (or nothing to do), 3 when a signal stopped it between batches. */
export async function showPlanThenRun<P, O extends { readonly interrupted: boolean }>(
  ctx: CliContext,
  flags: { readonly json?: boolean; readonly dryRun?: boolean },
  run: PlanRun<P, O>,
): Promise<number> {
  if (!flags.json) ctx.out(run.renderPlan(run.plan));
  if (flags.dryRun || run.execute === undefined) {
    if (flags.json) ctx.out(JSON.stringify(run.json(run.plan, null, flags.dryRun === true), null, 2));
    else if (flags.dryRun) ctx.out('dry run: nothing deleted');
    return ExitCode.ok;
  }
  const outcome = await run.execute();
  ctx.out(flags.json ? JSON.stringify(run.json(run.plan, outcome, false), null, 2) : run.renderOutcome(outcome));
  return outcome.interrupted ? ExitCode.failure : ExitCode.ok;
}
