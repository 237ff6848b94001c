import { type Command } from 'commander';
import { ExitCode } from '../../common/errors.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';

export function registerDaemon(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('daemon')
      .description('Archive .ready segments ahead of archive_command, continuously (wal-push then returns in milliseconds)'),
    ['storage', 's3', 'archive', 'push'],
    { alsoShow: ['metrics-port', 'metrics-host'] },
  );
  cmd.action(() =>
    run(cmd, async (ctx) => {
      // Loaded here, not at start-up: prom-client and the SDKs would slow every wal-push and wal-fetch.
      const { runDaemon } = await import('../../daemon/agent.js');
      ctx.log.info(await runDaemon(ctx.config, ctx.log, ctx.signal), 'daemon stopped');
      return ExitCode.ok;
    }),
  );
}
