import { type Command } from 'commander';
import { ExitCode } from '../../common/errors.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';

export function registerStream(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('stream')
      .description('Receive WAL over physical replication and archive it (long-running agent; SIGTERM stops it cleanly)'),
    ['storage', 's3', 'archive', 'stream'],
    { alsoShow: ['metrics-port', 'metrics-host'] },
  );
  cmd.action(() =>
    run(cmd, async (ctx) => {
      // Loaded here, not at start-up: pg and prom-client would slow every wal-push and wal-fetch.
      const { runStream } = await import('../../daemon/stream-agent.js');
      await runStream(ctx.config, ctx.log, ctx.signal);
      return ExitCode.ok;
    }),
  );
}
