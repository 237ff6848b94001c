import { join } from 'node:path';
import { type Command } from 'commander';
import { ExitCode } from '../../common/errors.js';
import { walPush, runDetachedAhead } from '../../push/wal-push.js';
import { BACKGROUND_LOG_NAME } from '../../push/state-dir.js';
import type { RunFn } from '../context.js';
import { spawnDetached } from '../detach.js';
import { addConfigOptions } from '../options.js';

/**
 * archive_command must not exit above 125: PostgreSQL's archiver treats that as fatal and restarts.
 * Every failure is retried by PostgreSQL anyway, so integrity-class failures (foreign or corrupt
 * WAL) map to `conflict` here; they are refused, never archived, whatever the code.
 */
function pushExitCode(_err: unknown, code: number): number {
  return code > 125 ? ExitCode.conflict : code;
}

export function registerWalPush(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('wal-push')
      .description("Archive one WAL file (archive_command = 'wal-push %p')")
      .argument('<path>', 'the WAL file to archive (%p)'),
    ['storage', 's3', 'archive', 'push'],
  );
  cmd.action((path: string) =>
    run(
      cmd,
      async (ctx) => {
        await walPush(ctx.config, ctx.log, ctx.signal, path, {
          startAhead: (s) => {
            const opts = { cwd: s.pgdata, config: ctx.config as unknown as Record<string, unknown>, sources: ctx.sources };
            const args = ['wal-push-ahead', '--wal-dir', s.walDir, '--exclude', s.exclude];
            spawnDetached(args, { ...opts, logFile: join(s.stateDir, BACKGROUND_LOG_NAME) });
            ctx.log.debug({ waiting: s.waiting }, 'started the look-ahead uploader');
          },
        });
        return ExitCode.ok;
      },
      { exitCodeFor: pushExitCode, defaultLogLevel: 'warn' },
    ),
  );

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
