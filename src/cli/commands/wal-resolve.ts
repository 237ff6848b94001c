import { type Command } from 'commander';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import type { WalResolveFlags } from '../wal-resolve-call.js';

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
    run(cmd, async (ctx) => (await import('../wal-resolve-call.js')).runWalResolve(ctx, names, cmd.opts<WalResolveFlags>()), {
      defaultLogLevel: 'warn',
    }),
  );
}
