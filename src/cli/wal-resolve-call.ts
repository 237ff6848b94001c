/** wal-resolve between argv and the library: `--keep` names one version, so it goes with one name. */
import { ExitCode, UsageError } from '../common/errors.js';
import { resolveNames } from '../ops/resolve-names.js';
import type { CliContext } from './context.js';
import { renderResolveReport, resolveReportJson } from './render/resolve.js';
import { withArchive } from './with-archive.js';

export interface WalResolveFlags {
  readonly keep?: string;
  readonly dryRun?: boolean;
  readonly json?: boolean;
}

export function walResolveOptions(names: readonly string[], f: WalResolveFlags): { keep?: string; dryRun: boolean } {
  if (f.keep !== undefined && names.length !== 1) throw new UsageError('unable to resolve: --keep needs exactly one WAL file name');
  return { ...(f.keep !== undefined ? { keep: f.keep } : {}), dryRun: f.dryRun === true };
}

/** Exit 0: every name resolved (or nothing to do); 4: some name needs `--keep`. */
export async function runWalResolve(ctx: CliContext, names: readonly string[], f: WalResolveFlags): Promise<number> {
  const opts = walResolveOptions(names, f);
  const report = await withArchive(ctx, (archive) => resolveNames(archive, names, opts));
  ctx.out(f.json ? JSON.stringify(resolveReportJson(report), null, 2) : renderResolveReport(report));
  return report.unresolved > 0 ? ExitCode.conflict : ExitCode.ok;
}
