import { type Command } from 'commander';
import { ExitCode, NotInArchiveError } from '../../common/errors.js';
import { runPrefetchHelper } from '../../restore/wal-fetch.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import type { FetchUnavailable } from '../fetch-exit.js';
import { runWalFetch, walFetchCall, walFetchExitCode, type WalFetchFailure, type WalFetchFlags } from '../wal-fetch-call.js';

// main.ts asks this module for the exit code of arguments the parser refused.
export { walFetchArgumentsExitCode } from '../wal-fetch-call.js';

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
  cmd.action((name: string, path: string | undefined) => {
    const flags = cmd.opts<WalFetchFlags>();
    // `fetch-unavailable` is known once the settings load; before that (a config error) the flag or
    // the environment decides. The data directory comes from the arguments alone.
    let setting: FetchUnavailable | undefined;
    const failure = (): WalFetchFailure => ({ operatorCommand: flags.lsn !== undefined, walPath: path, setting, flags: cmd.opts() });
    return run(
      cmd,
      async (ctx) => {
        setting = ctx.config['fetch-unavailable'] as FetchUnavailable;
        await runWalFetch(ctx, walFetchCall(name, path, flags));
        return ExitCode.ok;
      },
      {
        defaultLogLevel: 'warn',
        quietFor: (err) => err instanceof NotInArchiveError && !process.stderr.isTTY,
        exitCodeFor: (err, defaultCode) => walFetchExitCode(err, defaultCode, failure()),
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
