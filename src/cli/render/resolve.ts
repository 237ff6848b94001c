/** wal-resolve: a plan (and what was done) as the lines an operator reads before and after. */
import type { ResolveReport } from '../../ops/resolve-names.js';
import type { ResolveOutcome, ResolvePlan } from '../../ops/resolve.js';

export function renderResolve(plan: ResolvePlan, outcome: ResolveOutcome | null): string {
  const lines = [`${plan.name}:`];
  for (const c of plan.candidates) {
    const tag = c.sha256 === plan.keep ? 'keep  ' : 'remove';
    const notes = [
      c.claimed ? 'claimed' : null,
      c.problem ? `cannot be kept: ${c.problem}` : null,
      ...c.chains,
      ...c.breaks.map((b) => `does not fit ${b}`),
    ].filter((x): x is string => x !== null);
    lines.push(`  ${tag} sha256 ${c.sha256.slice(0, 16)}  uploaded ${c.uploaded}  ${c.keys.join(', ')}`);
    for (const n of notes) lines.push(`           ${n}`);
  }
  lines.push(`  decision: ${plan.keep ? `keep ${plan.keep.slice(0, 16)}, ${plan.reason}` : `delete the claim: ${plan.reason}`}`);
  if (plan.claimChange && plan.keep)
    lines.push(
      `  claim: ${plan.claim === null ? 'none' : plan.claim === 'unreadable' ? 'unreadable' : plan.claim.slice(0, 16)} -> ${plan.keep.slice(0, 16)}`,
    );
  if (outcome) {
    for (const m of outcome.moved) lines.push(`  moved ${m.from} -> ${m.to}`);
    lines.push(`  claim ${outcome.claim}`);
  }
  return lines.join('\n');
}

/** Every name's plan (or why it was left), then what the run as a whole did. */
export function renderResolveReport(report: ResolveReport): string {
  const text = report.results.map((r) => ('plan' in r ? renderResolve(r.plan, r.outcome) : `${r.name}:\n  NOT RESOLVED: ${r.error}`));
  if (report.results.length === 0) text.push('nothing to resolve: every WAL file name holds one content');
  if (report.dryRun && report.results.length > 0) text.push('dry run: nothing changed');
  return text.join('\n');
}

/** `--json`: each result as its plan with the outcome beside it, or the name with its error. */
export function resolveReportJson(report: ResolveReport): Record<string, unknown> {
  const results = report.results.map((r) => ('plan' in r ? { ...r.plan, outcome: r.outcome } : r));
  return { archive: report.archive, dryRun: report.dryRun, results };
}
