/**
 * wal-resolve over a list of names (by default every name with several contents): each is planned
 * and, unless it is a dry run, resolved. A name that nothing decides (a conflict, exit 4) is
 * reported and the others still go ahead; any other failure stops the run.
 */
import { loadInventory } from '../archive/catalog/inventory.js';
import type { ArchiveContext } from '../archive/context.js';
import { ExitCode, WalvaultError } from '../common/errors.js';
import { errorText } from '../common/format.js';
import { conflictingNames, executeResolve, planResolve, type ResolveOutcome, type ResolvePlan } from './resolve.js';

export type ResolveResult =
  { readonly plan: ResolvePlan; readonly outcome: ResolveOutcome | null } | { readonly name: string; readonly error: string };

export interface ResolveReport {
  readonly archive: string;
  readonly dryRun: boolean;
  /** One per name, in the order given (or the catalog's). */
  readonly results: readonly ResolveResult[];
  /** Names left as they were because nothing decided which version to keep. */
  readonly unresolved: number;
}

export async function resolveNames(
  ctx: ArchiveContext,
  names: readonly string[],
  opts: { readonly keep?: string; readonly dryRun: boolean },
): Promise<ResolveReport> {
  const inv = await loadInventory(ctx);
  const targets = names.length > 0 ? names : conflictingNames(inv.entries);
  const results: ResolveResult[] = [];
  let unresolved = 0;
  for (const name of targets) {
    try {
      const plan = await planResolve(ctx, inv, name, opts.keep !== undefined ? { keep: opts.keep } : {});
      results.push({ plan, outcome: opts.dryRun ? null : await executeResolve(ctx, plan) });
    } catch (err) {
      if (!(err instanceof WalvaultError) || err.exitCode !== ExitCode.conflict) throw err;
      unresolved++;
      results.push({ name, error: errorText(err) });
    }
  }
  return { archive: ctx.storage.description, dryRun: opts.dryRun, results, unresolved };
}
