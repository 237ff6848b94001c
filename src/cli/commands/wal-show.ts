import { type Command } from 'commander';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

interface Flags {
  json?: boolean;
  width?: string;
}

export function registerWalShow(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('wal-show')
      .summary('Show timelines, switch points, gaps and a map of the archive')
      .description('Show the archive per timeline: parent and switch point, segment and LSN range, size, gaps, and a map')
      .option('--width <columns>', 'width of the map (default: the terminal width)')
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action(() =>
    run(
      cmd,
      async (ctx) => {
        const { intArg } = await import('../args.js');
        const { showArchive } = await import('../../ops/show.js');
        const { renderShow, showJson } = await import('../render/show.js');
        const f = cmd.opts<Flags>();
        const width = intArg('--width', f.width, 10, 10_000) ?? Math.max(20, (process.stdout.columns ?? 80) - 12);
        const report = await withArchive(ctx, showArchive);
        ctx.out(f.json ? JSON.stringify(showJson(report), null, 2) : renderShow(report, { width }));
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}
