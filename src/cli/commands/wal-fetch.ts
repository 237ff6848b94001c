import { join, resolve } from 'node:path';
import { Command } from 'commander';
import {
  ArchiveMismatchError,
  CryptoError,
  ExitCode,
  IntegrityError,
  InvalidNameError,
  InvalidWalError,
  NotFoundError,
  UsageError,
} from '../../common/errors.js';
import { lockHolderAlive, tryLock } from '../../common/pid-lock.js';
import { openArchive } from '../../archive/open.js';
import { fetchFile } from '../../archive/fetch.js';
import { classifyWalFileName } from '../../segment/names.js';
import { dataDirOfWalPath, stateDirFor, stateDirForWalPath } from '../../push/state-dir.js';
import { detectRecoveryMode, readSystemIdentifier } from '../../restore/pgdata.js';
import type { CliContext, RunFn } from '../context.js';
import { spawnDetached } from '../detach.js';
import { addConfigOptions } from '../options.js';

/**
 * The restore_command contract. 0: restored. 1: the archive definitely has no such file
 * (PostgreSQL ends archive recovery or switches to streaming). Integrity failures: 128, above 125,
 * so PostgreSQL aborts recovery instead of promoting on a hole in the WAL. Anything else (archive
 * unreachable after retries, local disk full, misconfiguration) follows `fetch-unavailable`: a
 * standby must survive a short outage (3: "not available now", it retries), while a point-in-time
 * recovery must not silently end early (128: stop, fix, restart, recovery resumes where it was).
 */
export function fetchExitCode(err: unknown, unavailable: 'retry' | 'abort'): number {
  if (err instanceof NotFoundError) return notFoundExitCode();
  // A name PostgreSQL would never pass (an operator's typo): plain usage error.
  if (err instanceof InvalidNameError || err instanceof UsageError) return ExitCode.usage;
  if (
    err instanceof IntegrityError ||
    err instanceof ArchiveMismatchError ||
    err instanceof CryptoError ||
    err instanceof InvalidWalError
  ) {
    return ExitCode.integrity;
  }
  return unavailable === 'abort' ? ExitCode.integrity : ExitCode.failure;
}

/**
 * The wal-fetch launcher asks for "not found" as 81 so that it can tell it apart from node's own exit
 * 1 on a crash; it turns 81 into 1 for PostgreSQL and anything unexpected into 128.
 */
function notFoundExitCode(): number {
  const requested = Number(process.env['WALVAULT_NOT_FOUND_EXIT']);
  return Number.isInteger(requested) && requested > 0 && requested < 126 ? requested : ExitCode.notFound;
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
  let unavailable: 'retry' | 'abort' = 'abort';
  cmd.action((name: string, path: string | undefined) =>
    run(
      cmd,
      async (ctx) => {
        const byLsn = cmd.opts<{ lsn?: string; timeline?: string }>();
        if (byLsn.lsn !== undefined) {
          // An operator's command, not restore_command: an unreachable archive is a plain failure (3).
          unavailable = 'retry';
          if (path !== undefined) throw new UsageError('unable to fetch by LSN: give only the destination (wal-fetch --lsn <lsn> <dest>)');
          const { fetchLsnCommand } = await import('../../ops/fetch-lsn.js');
          ctx.out(await fetchLsnCommand(ctx.config, ctx.log, ctx.signal, { lsn: byLsn.lsn, timeline: byLsn.timeline, dest: resolve(name) }));
          return ExitCode.ok;
        }
        if (byLsn.timeline !== undefined) throw new UsageError('unable to fetch: --timeline goes with --lsn');
        if (path === undefined) throw new UsageError(`unable to fetch '${name}': missing <path> (restore_command = 'wal-fetch %f %p')`);
        const pgdata = dataDirOfWalPath(path);
        const policy = ctx.config['fetch-unavailable'];
        unavailable =
          policy === 'auto'
            ? pgdata !== undefined && detectRecoveryMode(pgdata) === 'standby'
              ? 'retry'
              : 'abort'
            : (policy as 'retry' | 'abort');
        return walFetch(ctx, name, path, pgdata);
      },
      {
        defaultLogLevel: 'warn',
        quietFor: (err) => err instanceof NotFoundError && !process.stderr.isTTY,
        exitCodeFor: (err) => {
          // Before the policy is known (e.g. a config error), be safe: never look like "not found".
          return fetchExitCode(err, unavailable);
        },
      },
    ),
  );

  const prefetch = addConfigOptions(
    program.command('wal-prefetch', { hidden: true }).description('Background prefetcher started by wal-fetch'),
    ['storage', 's3', 'archive', 'fetch'],
  ).requiredOption('--pgdata <dir>', 'the data directory');
  prefetch.action(() =>
    run(prefetch, async (ctx) => {
      const pgdata = resolve(prefetch.opts<{ pgdata: string }>().pgdata);
      const stateDir = stateDirFor(pgdata);
      const release = tryLock(join(stateDir, 'prefetch.pid'));
      if (!release) return ExitCode.ok;
      const { runPrefetcher } = await import('../../restore/prefetch.js');
      const archive = await openArchive(ctx.config, ctx.log, ctx.signal);
      try {
        const systemId = readSystemIdentifier(pgdata);
        await runPrefetcher(archive, {
          stateDir,
          depth: ctx.config['fetch-prefetch'],
          concurrency: Math.min(4, Math.max(1, ctx.config['fetch-prefetch'])),
          idleMs: 30_000,
          missingRetryMs: 2_000,
          ...(systemId ? { expectedSystemId: systemId } : {}),
        });
      } finally {
        release();
        await archive.storage.close();
      }
      return ExitCode.ok;
    }),
  );
}

async function walFetch(ctx: CliContext, name: string, path: string, pgdata: string | undefined): Promise<number> {
  const kind = classifyWalFileName(name).kind;
  const dest = resolve(path);
  const stateDir = pgdata === undefined ? undefined : stateDirForWalPath(path);
  const prefetching = stateDir !== undefined && kind === 'segment' && ctx.config['fetch-prefetch'] > 0;
  const { setCursor, takePrefetched } = await import('../../restore/prefetch.js');
  if (prefetching && (await takePrefetched(stateDir!, name, dest))) {
    ctx.log.info({ segment: name }, 'restored from prefetch');
    return ExitCode.ok;
  }
  const systemId = pgdata === undefined ? undefined : readSystemIdentifier(pgdata);
  const archive = await openArchive(ctx.config, ctx.log, ctx.signal);
  try {
    try {
      await fetchFile(archive, name, dest, systemId ? { expectedSystemId: systemId } : {});
    } catch (err) {
      if (!(err instanceof NotFoundError && kind === 'segment' && ctx.config['fetch-partial'])) throw err;
      // The newest WAL may exist only as the streaming agent's .partial (zero-padded to full size).
      await fetchFile(archive, `${name}.partial`, dest, systemId ? { expectedSystemId: systemId } : {});
      ctx.log.warn({ segment: name }, `served ${name}.partial: recovery ends inside this segment`);
      return ExitCode.ok;
    }
  } finally {
    await archive.storage.close();
  }
  if (prefetching && pgdata !== undefined) {
    await setCursor(stateDir!, name);
    if (!lockHolderAlive(join(stateDir!, 'prefetch.pid'))) {
      spawnDetached(['wal-prefetch', '--pgdata', pgdata], {
        cwd: pgdata,
        config: ctx.config as unknown as Record<string, unknown>,
        sources: ctx.sources,
        logFile: join(stateDir!, 'walvault.log'),
      });
    }
  }
  return ExitCode.ok;
}
