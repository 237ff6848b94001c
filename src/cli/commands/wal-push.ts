import { basename, dirname, join, resolve } from 'node:path';
import { type Command } from 'commander';
import { ExitCode } from '../../common/errors.js';
import { lockHolderAlive, tryLock } from '../../common/pid-lock.js';
import { openArchive } from '../../archive/open.js';
import { pushFile } from '../../archive/push.js';
import { consumeMarker, hasMarker } from '../../push/markers.js';
import { stateDirFor, stateDirForWalPath } from '../../push/state-dir.js';
import type { CliContext, RunFn } from '../context.js';
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
  cmd.action((path: string) => run(cmd, (ctx) => walPush(ctx, path), { exitCodeFor: pushExitCode, defaultLogLevel: 'warn' }));

  const ahead = addConfigOptions(
    program.command('wal-push-ahead', { hidden: true }).description('Background look-ahead uploader started by wal-push'),
    ['storage', 's3', 'archive', 'push'],
  ).requiredOption('--wal-dir <dir>', 'the pg_wal directory');
  ahead.action(() =>
    run(ahead, async (ctx) => {
      const walDir = resolve(ahead.opts<{ walDir: string }>().walDir);
      const stateDir = stateDirFor(dirname(walDir));
      const release = tryLock(join(stateDir, 'ahead.pid'));
      if (!release) return ExitCode.ok;
      const { runAhead } = await import('../../push/ahead.js');
      const archive = await openArchive(ctx.config, ctx.log, ctx.signal);
      try {
        const summary = await runAhead(archive, {
          walDir,
          stateDir,
          concurrency: ctx.config['push-parallel'],
          maxFiles: ctx.config['push-lookahead'],
          idleMs: 2000,
        });
        ctx.log.info(summary, 'look-ahead run finished');
      } finally {
        release();
        await archive.storage.close();
      }
      return ExitCode.ok;
    }),
  );
}

async function walPush(ctx: CliContext, path: string): Promise<number> {
  const abs = resolve(path);
  const name = basename(abs);
  const walDir = dirname(abs);
  const pgdata = dirname(walDir);
  // Undefined when not inside a data directory (an operator pushing a loose file): no markers then.
  const stateDir = stateDirForWalPath(abs);
  if (stateDir && (await consumeMarker(stateDir, name, abs))) {
    ctx.log.info({ segment: name }, 'already archived by the look-ahead uploader');
    return ExitCode.ok;
  }
  // A running daemon (or detached uploader) usually has this file in flight: give it a moment to
  // finish rather than uploading the same bytes twice; upload ourselves if it does not.
  if (stateDir && lockHolderAlive(join(stateDir, 'ahead.pid')) && (await waitForMarker(stateDir, name, abs, 3000))) {
    ctx.log.info({ segment: name }, 'archived by the running uploader');
    return ExitCode.ok;
  }
  const archive = await openArchive(ctx.config, ctx.log, ctx.signal);
  try {
    await pushFile(archive, abs, name);
  } finally {
    await archive.storage.close();
  }
  if (stateDir && ctx.config['push-lookahead'] > 0) await maybeStartAhead(ctx, walDir, pgdata, stateDir, name);
  return ExitCode.ok;
}

async function waitForMarker(stateDir: string, name: string, path: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await hasMarker(stateDir, name)) return consumeMarker(stateDir, name, path);
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** Starts the look-ahead uploader when other files wait and none is running. */
async function maybeStartAhead(ctx: CliContext, walDir: string, pgdata: string, stateDir: string, current: string): Promise<void> {
  if (lockHolderAlive(join(stateDir, 'ahead.pid'))) return;
  const { readyFiles } = await import('../../push/ahead.js');
  const waiting = (await readyFiles(walDir)).filter((n) => n !== current);
  if (waiting.length === 0) return;
  spawnDetached(['wal-push-ahead', '--wal-dir', walDir], {
    cwd: pgdata,
    config: ctx.config as unknown as Record<string, unknown>,
    sources: ctx.sources,
    logFile: join(stateDir, 'walvault.log'),
  });
  ctx.log.debug({ waiting: waiting.length }, 'started the look-ahead uploader');
}
