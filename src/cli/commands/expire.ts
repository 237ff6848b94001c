import { type Command } from 'commander';
import { ExitCode, UsageError } from '../../common/errors.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

interface Flags {
  retainFull?: string;
  retainDays?: string;
  dryRun?: boolean;
  json?: boolean;
}

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
    run(
      cmd,
      async (ctx) => {
        const { intArg } = await import('../args.js');
        const { executeExpire, planExpire } = await import('../../ops/expire.js');
        const { expirePlanJson, renderExpireOutcome, renderExpirePlan } = await import('../render/backups.js');
        const f = cmd.opts<Flags>();
        if ((f.retainFull === undefined) === (f.retainDays === undefined)) {
          throw new UsageError('unable to expire backups: give exactly one of --retain-full N and --retain-days D');
        }
        const policy =
          f.retainFull !== undefined
            ? { retainFull: intArg('--retain-full', f.retainFull, 1, 100_000)! }
            : { retainDays: intArg('--retain-days', f.retainDays, 1, 100_000)! };
        return withArchive(ctx, async (archive) => {
          const plan = await planExpire(archive, policy);
          if (!f.json) ctx.out(renderExpirePlan(plan));
          if (f.dryRun) {
            ctx.out(f.json ? JSON.stringify(expirePlanJson(plan, null, true), null, 2) : 'dry run: nothing deleted');
            return ExitCode.ok;
          }
          const outcome = await executeExpire(archive, plan);
          ctx.out(f.json ? JSON.stringify(expirePlanJson(plan, outcome, false), null, 2) : renderExpireOutcome(outcome));
          return outcome.interrupted ? ExitCode.failure : ExitCode.ok;
        });
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}
