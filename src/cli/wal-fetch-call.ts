/**
 * What wal-fetch does between argv and the library: which of its two calls the arguments ask for,
 * how the prefetcher process is started, and the inputs of the restore_command exit-code table
 * (fetch-exit.ts) that come from outside the settings: the launcher's environment, the data
 * directory, the flags. Kept out of the command file so that it stays argv -> call -> render.
 */
import { join, resolve } from 'node:path';
import { ExitCode, NotFoundError, UsageError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { Config } from '../config/load.js';
import { detectRecoveryMode, restoreDataDir } from '../postgres/pgdata.js';
import { BACKGROUND_LOG_NAME } from '../push/state-dir.js';
import { walFetch } from '../restore/wal-fetch.js';
import { formatLsn } from '../segment/lsn.js';
import { lsnArg, timelineArg } from './args.js';
import type { CliContext } from './context.js';
import { spawnDetached } from './detach.js';
import { fetchOutcomeOf, parseFetchUnavailable, restoreExitCode, type FetchUnavailable } from './fetch-exit.js';

export interface WalFetchFlags {
  readonly lsn?: string;
  readonly timeline?: string;
}

/** The two calls wal-fetch makes: PostgreSQL's restore_command, or an operator's fetch by LSN. */
export type WalFetchCall =
  | { readonly kind: 'restore'; readonly name: string; readonly path: string }
  | { readonly kind: 'lsn'; readonly lsn: string; readonly timeline: string | undefined; readonly dest: string };

/** Which call the arguments ask for; a UsageError (which then follows `fetch-unavailable`) if neither. */
export function walFetchCall(name: string, path: string | undefined, flags: WalFetchFlags): WalFetchCall {
  if (flags.lsn !== undefined) {
    if (path !== undefined) throw new UsageError('unable to fetch by LSN: give only the destination (wal-fetch --lsn <lsn> <dest>)');
    return { kind: 'lsn', lsn: flags.lsn, timeline: flags.timeline, dest: resolve(name) };
  }
  if (flags.timeline !== undefined) throw new UsageError('unable to fetch: --timeline goes with --lsn');
  if (path === undefined) throw new UsageError(`unable to fetch '${name}': missing <path> (restore_command = 'wal-fetch %f %p')`);
  return { kind: 'restore', name, path };
}

/** Runs the call; restore_command starts the background prefetcher as a detached walvault process. */
export async function runWalFetch(ctx: CliContext, call: WalFetchCall): Promise<void> {
  if (call.kind === 'lsn') {
    ctx.out(await fetchLsnCommand(ctx.config, ctx.log, ctx.signal, call));
    return;
  }
  await walFetch(ctx.config, ctx.log, ctx.signal, call.name, call.path, {
    startPrefetcher: (s) => {
      const opts = { cwd: s.pgdata, config: ctx.config as unknown as Record<string, unknown>, sources: ctx.sources };
      return spawnDetached(['wal-prefetch', '--pgdata', s.pgdata], { ...opts, logFile: join(s.stateDir, BACKGROUND_LOG_NAME) });
    },
  });
}

/** `wal-fetch --lsn <lsn> [--timeline <tli>] <dest>`: opens the archive, fetches, says what it did. */
export async function fetchLsnCommand(
  config: Config,
  log: Logger,
  signal: AbortSignal,
  args: { lsn: string; timeline?: string | undefined; dest: string },
): Promise<string> {
  const position = lsnArg('--lsn', args.lsn)!;
  const timeline = timelineArg(args.timeline);
  // Loaded only for this operator command: restore_command's path stays as small as it was.
  const { openArchive } = await import('../archive/open.js');
  const { fetchSegmentForLsn } = await import('../ops/fetch-lsn.js');
  const archive = await openArchive(config, log, signal);
  let found: Awaited<ReturnType<typeof fetchSegmentForLsn>>;
  try {
    found = await fetchSegmentForLsn(archive, position, args.dest, timeline !== undefined ? { timeline } : {});
  } finally {
    await archive.storage.close();
  }
  const { lookup, result } = found;
  return (
    `restored ${result.name} to ${args.dest}: it holds ${formatLsn(lookup.lsn)}, which is on timeline ${lookup.timeline} ` +
    `(history of timeline ${lookup.along}); ${result.size} bytes, sha256 ${result.sha256}`
  );
}

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
 * What one wal-fetch invocation has learned when it fails: whether it is an operator's command
 * (plain exit codes), the %p it was given (which locates the data directory) and, once the settings
 * were loaded, `fetch-unavailable`.
 */
export interface WalFetchFailure {
  readonly operatorCommand: boolean;
  readonly walPath: string | undefined;
  readonly setting: FetchUnavailable | undefined;
  readonly flags: Record<string, unknown>;
}

/** The exit code of a failed wal-fetch: the restore_command table, or plain codes for `--lsn`. */
export function walFetchExitCode(err: unknown, defaultCode: number, f: WalFetchFailure): number {
  if (f.operatorCommand) return err instanceof NotFoundError ? notFoundExitCode() : defaultCode;
  return restoreExitCode(fetchOutcomeOf(err), isStandby(f.walPath), f.setting ?? settingBeforeConfig(f.flags), notFoundExitCode());
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
