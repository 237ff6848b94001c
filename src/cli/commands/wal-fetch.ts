import { join, resolve } from 'node:path';
import { type Command } from 'commander';
import { ExitCode, NotFoundError, NotInArchiveError, UsageError } from '../../common/errors.js';
import { detectRecoveryMode, restoreDataDir } from '../../postgres/pgdata.js';
import { runPrefetchHelper, walFetch } from '../../restore/wal-fetch.js';
import { fetchOutcomeOf, parseFetchUnavailable, restoreExitCode, type FetchUnavailable } from '../fetch-exit.js';
import type { CliContext, RunFn } from '../context.js';
import { spawnDetached } from '../detach.js';
import { BACKGROUND_LOG_NAME } from '../../push/state-dir.js';
import { addConfigOptions } from '../options.js';

/**
 * The wal-fetch launcher asks for "not found" as 81 so that it can tell it apart from node's own exit
 * 1 on a crash; it turns 81 into 1 for PostgreSQL and anything unexpected into 128.
 */
function notFoundExitCode(): number {
  const requested = Number(process.env['WALVAULT_NOT_FOUND_EXIT']);
  return Number.isInteger(requested) && requested > 0 && requested < 126 ? requested : ExitCode.notFound;
}

function isStandby(walPath: string | undefined): boolean {
  const pgdata = restoreDataDir(walPath);
  return pgdata !== undefined && detectRecoveryMode(pgdata) === 'standby';
}

/** `fetch-unavailable` when the settings could not be loaded: the flag, the environment, else auto. */
function settingBeforeConfig(flags: Record<string, unknown>): FetchUnavailable {
  return parseFetchUnavailable(flags['fetchUnavailable']) ?? parseFetchUnavailable(process.env['WALVAULT_FETCH_UNAVAILABLE']) ?? 'auto';
}

/**
 * The exit code of a wal-fetch call whose arguments the parser refused (missing, extra or unknown
 * ones), or that asked for --help/--version along with file names: such a call restored nothing,
 * and proves nothing about the archive, so it follows `fetch-unavailable` like any other failure.
 */
export function walFetchArgumentsExitCode(args: readonly string[], parserExitCode: number): number {
  if (parserExitCode === 0 && !args.some((a) => !a.startsWith('-'))) return ExitCode.ok;
  const i = args.findIndex((a) => a === '--fetch-unavailable' || a.startsWith('--fetch-unavailable='));
  const flag = i === -1 ? undefined : args[i]!.includes('=') ? args[i]!.split('=')[1] : args[i + 1];
  // PostgreSQL runs restore_command in the data directory; the arguments cannot be trusted here.
  return restoreExitCode('misconfigured', isStandby(undefined), parseFetchUnavailable(flag) ?? settingBeforeConfig({}));
}

export function registerWalFetch(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('wal-fetch')
      .description("Restore one WAL file (restore_command = 'wal-fetch %f %p'), or with --lsn the segment that holds an LSN")
      .argument('<name>', 'the WAL file name PostgreSQL asks for (%f); with --lsn, the destination file')
      .argument('[path]', 'where to write it (%p)')
      .option('--lsn <lsn>', 'fetch the archived segment that holds this LSN: wal-fetch --lsn <lsn> [--timeline <tli>] <dest>')
      .option('--timeline <tli>', 'with --lsn: follow this timeline (default: the newest timeline in the archive)'),
    ['storage', 's3', 'archive', 'fetch'],
  );
  // Known once the settings are loaded; before that (a config error) the flag or the environment
  // variable decides, else `auto`. The data directory comes from the arguments alone.
  let setting: FetchUnavailable | undefined;
  let operatorCommand = false;
  let walPath: string | undefined;
  cmd.action((name: string, path: string | undefined) => {
    walPath = path;
    operatorCommand = cmd.opts<{ lsn?: string }>().lsn !== undefined;
    return run(
      cmd,
      async (ctx) => {
        setting = ctx.config['fetch-unavailable'] as FetchUnavailable;
        const byLsn = cmd.opts<{ lsn?: string; timeline?: string }>();
        if (byLsn.lsn !== undefined) {
          // An operator's command, not restore_command: plain exit codes (3 for an unreachable archive).
          if (path !== undefined) throw new UsageError('unable to fetch by LSN: give only the destination (wal-fetch --lsn <lsn> <dest>)');
          const { fetchLsnCommand } = await import('../../ops/fetch-lsn.js');
          ctx.out(
            await fetchLsnCommand(ctx.config, ctx.log, ctx.signal, { lsn: byLsn.lsn, timeline: byLsn.timeline, dest: resolve(name) }),
          );
          return ExitCode.ok;
        }
        if (byLsn.timeline !== undefined) throw new UsageError('unable to fetch: --timeline goes with --lsn');
        if (path === undefined) throw new UsageError(`unable to fetch '${name}': missing <path> (restore_command = 'wal-fetch %f %p')`);
        return restoreCommand(ctx, name, path);
      },
      {
        defaultLogLevel: 'warn',
        quietFor: (err) => err instanceof NotInArchiveError && !process.stderr.isTTY,
        exitCodeFor: (err, defaultCode) => {
          if (operatorCommand) return err instanceof NotFoundError ? notFoundExitCode() : defaultCode;
          return restoreExitCode(fetchOutcomeOf(err), isStandby(walPath), setting ?? settingBeforeConfig(cmd.opts()), notFoundExitCode());
        },
      },
    );
  });

  const prefetch = addConfigOptions(
    program.command('wal-prefetch', { hidden: true }).description('Background prefetcher started by wal-fetch'),
    ['storage', 's3', 'archive', 'fetch'],
  ).requiredOption('--pgdata <dir>', 'the data directory');
  prefetch.action(() =>
    run(prefetch, async (ctx) => {
      await runPrefetchHelper(ctx.config, ctx.log, ctx.signal, prefetch.opts<{ pgdata: string }>().pgdata);
      return ExitCode.ok;
    }),
  );
}

async function restoreCommand(ctx: CliContext, name: string, path: string): Promise<number> {
  await walFetch(ctx.config, ctx.log, ctx.signal, name, path, {
    startPrefetcher: (s) => {
      const opts = { cwd: s.pgdata, config: ctx.config as unknown as Record<string, unknown>, sources: ctx.sources };
      spawnDetached(['wal-prefetch', '--pgdata', s.pgdata], { ...opts, logFile: join(s.stateDir, BACKGROUND_LOG_NAME) });
    },
  });
  return ExitCode.ok;
}
