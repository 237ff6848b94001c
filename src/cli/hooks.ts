/**
 * The archiver's hook without the command-line parser: PostgreSQL calls `wal-push %p` with exactly
 * one argument, and loading commander and every option definition for it costs about as much CPU as
 * compressing a segment. Anything else (a flag, --help, a second argument) goes through main.ts,
 * which runs the very same body (commands/wal-push.ts).
 */
import { join } from 'node:path';
import { ExitCode } from '../common/errors.js';
import { walPush } from '../push/wal-push.js';
import { BACKGROUND_LOG_NAME } from '../push/state-dir.js';
import type { CommandBody, RunOptions } from './context.js';
import { spawnDetached } from './detach.js';
import { runCommand } from './run.js';

/**
 * archive_command must not exit above 125: PostgreSQL's archiver treats that as fatal and restarts.
 * Every failure is retried by PostgreSQL anyway, so integrity-class failures (foreign or corrupt
 * WAL) map to `conflict` here; they are refused, never archived, whatever the code.
 */
function pushExitCode(_err: unknown, code: number): number {
  return code > 125 ? ExitCode.conflict : code;
}

export const WAL_PUSH_RUN: RunOptions = { exitCodeFor: pushExitCode, defaultLogLevel: 'warn' };

/** The body of `wal-push <path>`: archive the file, starting the look-ahead uploader when due. */
export function walPushBody(path: string): CommandBody {
  return async (ctx) => {
    await walPush(ctx.config, ctx.log, ctx.signal, path, {
      startAhead: (s) => {
        const opts = { cwd: s.pgdata, config: ctx.config as unknown as Record<string, unknown>, sources: ctx.sources };
        const args = ['wal-push-ahead', '--wal-dir', s.walDir, '--exclude', s.exclude];
        spawnDetached(args, { ...opts, logFile: join(s.stateDir, BACKGROUND_LOG_NAME) });
        ctx.log.debug({ waiting: s.waiting }, 'started the look-ahead uploader');
      },
    });
    return ExitCode.ok;
  };
}

/** `wal-push <path>` as the archiver calls it (walvault.ts checks the arguments). */
export function runPlainWalPush(path: string): Promise<void> {
  return runCommand('walvault wal-push', {}, walPushBody(path), WAL_PUSH_RUN);
}
