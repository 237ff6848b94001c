import { type Command } from 'commander';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import type { ExpireFlags } from '../expire-call.js';

export function registerExpire(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('expire')
      .summary('Retention: delete old base backups, failed leftovers and the WAL no kept backup needs')
      .description(
        'Delete base backups beyond a policy, oldest first by stop LSN and time (never the newest complete one), the leftovers of ' +
          'failed backup-pushes, then the WAL no kept backup needs (history files stay). Safe to interrupt and run again',
      )
      .option('--retain-full <n>', 'keep the n newest complete backups')
      .option('--retain-days <d>', 'keep what recovery to any point of the last d days needs')
      .option('--dry-run', 'show what would be deleted, delete nothing')
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action(() =>
    run(cmd, async (ctx) => (await import('../expire-call.js')).runExpire(ctx, cmd.opts<ExpireFlags>()), { defaultLogLevel: 'warn' }),
  );
}
