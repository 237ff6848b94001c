import { type Command } from 'commander';
import { ExitCode } from '../../common/errors.js';
import { runDetachedAhead } from '../../push/wal-push.js';
import type { RunFn } from '../context.js';
import { walPushBody, WAL_PUSH_RUN } from '../hooks.js';
import { addConfigOptions } from '../options.js';

export function registerWalPush(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('wal-push')
      .description("Archive one WAL file (archive_command = 'wal-push %p')")
      .argument('<path>', 'the WAL file to archive (%p)'),
    ['storage', 's3', 'archive', 'push'],
  );
  cmd.action((path: string) => run(cmd, walPushBody(path), WAL_PUSH_RUN));

  const ahead = addConfigOptions(
    program.command('wal-push-ahead', { hidden: true }).description('Background look-ahead uploader started by wal-push'),
    ['storage', 's3', 'archive', 'push'],
  )
    .requiredOption('--wal-dir <dir>', 'the pg_wal directory')
    .option('--exclude <name>', 'a file the starting wal-push uploads itself');
  ahead.action(() =>
    run(ahead, async (ctx) => {
      const o = ahead.opts<{ walDir: string; exclude?: string }>();
      const summary = await runDetachedAhead(ctx.config, ctx.log, ctx.signal, o.walDir, o.exclude);
      if (summary) ctx.log.info(summary, 'look-ahead run finished');
      return ExitCode.ok;
    }),
  );
}
