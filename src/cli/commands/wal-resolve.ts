import { type Command } from 'commander';
import { ExitCode, UsageError, WalvaultError } from '../../common/errors.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

interface Flags {
  keep?: string;
  dryRun?: boolean;
  json?: boolean;
}

export function registerWalResolve(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('wal-resolve')
      .summary('Keep one content for a WAL name that holds several (moves the others to errors/)')
      .description(
        'For WAL file names with several different contents (wal-verify reports them as [duplicate]) or a claim that disagrees ' +
          'with what is stored: keep the version named with --keep, or automatically the only intact one, or the only one whose ' +
          'page headers chain with the neighbouring segments; the others are moved to errors/. Without names: every such name. ' +
          'Exit 0: resolved; 4: could not choose (name the version with --keep)',
      )
      .argument('[names...]', 'WAL file names (default: every name with several contents)')
      .option('--keep <sha256|key>', 'the version to keep (at least 8 hex digits of its sha256, or its object key); one name only')
      .option('--dry-run', 'show the decision, change nothing')
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action((names: string[]) =>
    run(
      cmd,
      async (ctx) => {
        const { loadInventory } = await import('../../archive/catalog/inventory.js');
        const { conflictingNames, executeResolve, planResolve } = await import('../../ops/resolve.js');
        const { renderResolve } = await import('../render/resolve.js');
        const { errorText } = await import('../../common/format.js');
        const f = cmd.opts<Flags>();
        if (f.keep !== undefined && names.length !== 1) throw new UsageError('unable to resolve: --keep needs exactly one WAL file name');
        return withArchive(ctx, async (archive) => {
          const inv = await loadInventory(archive);
          const targets = names.length > 0 ? names : conflictingNames(inv.entries);
          const results: unknown[] = [];
          const text: string[] = [];
          let unresolved = 0;
          for (const name of targets) {
            try {
              const plan = await planResolve(archive, inv, name, f.keep !== undefined ? { keep: f.keep } : {});
              const outcome = f.dryRun ? null : await executeResolve(archive, plan);
              results.push({ ...plan, outcome });
              text.push(renderResolve(plan, outcome));
            } catch (err) {
              if (!(err instanceof WalvaultError) || err.exitCode !== ExitCode.conflict) throw err;
              unresolved++;
              results.push({ name, error: errorText(err) });
              text.push(`${name}:\n  NOT RESOLVED: ${errorText(err)}`);
            }
          }
          if (targets.length === 0) text.push('nothing to resolve: every WAL file name holds one content');
          if (f.dryRun && targets.length > 0) text.push('dry run: nothing changed');
          ctx.out(
            f.json
              ? JSON.stringify({ archive: archive.storage.description, dryRun: f.dryRun === true, results }, null, 2)
              : text.join('\n'),
          );
          return unresolved > 0 ? ExitCode.conflict : ExitCode.ok;
        });
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}
