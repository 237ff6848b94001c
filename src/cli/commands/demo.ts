import { type Command } from 'commander';
import type { RunFn } from '../context.js';

export function registerDemo(program: Command, run: RunFn): void {
  const cmd = program
    .command('demo')
    .description('Run the whole job on a throwaway local PostgreSQL: archive, stream, list, point-in-time restore')
    .option('--dir <dir>', 'where to put the demo archive', 'walvault-demo')
    .option('--keep', 'keep the archive afterwards', false)
    .option('--log-level <level>', 'log level', 'warn');
  cmd.action(() =>
    run(cmd, async (ctx) => {
      const { runDemo } = await import('../../demo/run.js');
      const o = cmd.opts<{ dir: string; keep: boolean }>();
      return runDemo({ dir: o.dir, keep: o.keep, out: ctx.out });
    }),
  );
}
