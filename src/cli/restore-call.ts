/**
 * restore between argv and the library: the flags and settings as restore options (a bad target,
 * action, timeline or tablespace mapping is a usage error before the archive opens), then the
 * restore and its summary.
 */
import { parseTarget, parseTargetAction, parseTargetTimeline, type TargetFlags } from '../backup/restore/plan.js';
import { persistedArchiveSettings } from '../backup/restore/recovery.js';
import { renderRestore } from '../backup/restore/report.js';
import { runRestore, type RestoreOptions } from '../backup/restore/restore.js';
import { parseTablespaceMap } from '../backup/restore/tablespaces.js';
import type { Config, ConfigSource } from '../config/load.js';
import type { CliContext } from './context.js';
import { withArchive } from './with-archive.js';

export interface RestoreFlags extends TargetFlags {
  readonly pgdata: string;
  readonly backup?: string;
  readonly targetAction?: string;
  readonly targetTimeline?: string;
  readonly tablespaceMap?: readonly string[];
  readonly delta?: boolean;
}

export function restoreOptions(
  f: RestoreFlags,
  config: Config,
  sources: Readonly<Record<string, ConfigSource>>,
  env: NodeJS.ProcessEnv,
): RestoreOptions {
  return {
    pgdata: f.pgdata,
    backup: f.backup,
    target: parseTarget(f),
    action: parseTargetAction(f.targetAction),
    timeline: parseTargetTimeline(f.targetTimeline),
    tablespaceMap: parseTablespaceMap(f.tablespaceMap ?? []),
    delta: f.delta === true,
    parallel: config['restore-parallel'],
    bufferBytes: config['restore-buffer'],
    archiveSettings: persistedArchiveSettings(config, sources),
    stateDir: env['WALVAULT_STATE_DIR'],
  };
}

export async function runRestoreCommand(ctx: CliContext, f: RestoreFlags): Promise<void> {
  const options = restoreOptions(f, ctx.config, ctx.sources, process.env);
  const result = await withArchive(ctx, (archive) => runRestore(archive, options));
  ctx.out(renderRestore(result, options.target));
}
