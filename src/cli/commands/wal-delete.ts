import { type Command } from 'commander';
import { ExitCode, UsageError } from '../../common/errors.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

interface Flags {
  before?: string;
  timeline?: string;
  dryRun?: boolean;
  force?: boolean;
  batch?: string;
  json?: boolean;
}

export function registerWalDelete(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('wal-delete')
      .summary('Retention: delete WAL before a segment, an LSN or a time')
      .description(
        'Retention: delete WAL older than a segment, an LSN or a time, oldest first and in batches (safe to interrupt). ' +
          'Keeps the newest segment, history files still needed, archive.info; refuses WAL a complete base backup needs unless --force',
      )
      .requiredOption(
        '--before <segment|lsn|time>',
        'a segment name, an LSN (16/B374D848), a time (2024-05-01T03:00:00Z) or an age (7d, 36h)',
      )
      .option('--timeline <tli>', 'only this timeline')
      .option('--dry-run', 'show what would be deleted, delete nothing')
      .option('--force', 'also delete WAL that a complete base backup needs (or, without walvault backups, the newest .backup file)')
      .option('--batch <n>', 'objects per delete request (default 100)')
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action(() =>
    run(
      cmd,
      async (ctx) => {
        const { intArg, timelineArg } = await import('../args.js');
        const { executeWalDelete, planWalDelete } = await import('../../ops/delete.js');
        const { deletePlanJson, renderDeleteOutcome, renderDeletePlan } = await import('../render/reports.js');
        const f = cmd.opts<Flags>();
        const before = f.before;
        if (before === undefined) throw new UsageError('unable to delete WAL: --before is required');
        const timeline = timelineArg(f.timeline);
        const batchSize = intArg('--batch', f.batch, 1, 1000);
        return withArchive(ctx, async (archive) => {
          const plan = await planWalDelete(archive, before, {
            ...(timeline !== undefined ? { timeline } : {}),
            ...(f.force ? { force: true } : {}),
          });
          if (!f.json) ctx.out(renderDeletePlan(plan));
          if (f.dryRun || plan.plan.delete.length === 0) {
            if (f.json) ctx.out(JSON.stringify(deletePlanJson(plan, null, f.dryRun === true), null, 2));
            else if (f.dryRun) ctx.out('dry run: nothing deleted');
            return ExitCode.ok;
          }
          const outcome = await executeWalDelete(archive, plan.plan, batchSize !== undefined ? { batchSize } : {});
          ctx.out(
            f.json ? JSON.stringify(deletePlanJson(plan, outcome, false), null, 2) : renderDeleteOutcome(outcome, plan.plan.delete.length),
          );
          return outcome.interrupted ? ExitCode.failure : ExitCode.ok;
        });
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}
