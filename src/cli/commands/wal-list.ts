import { type Command } from 'commander';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

interface Flags {
  timeline?: string;
  from?: string;
  to?: string;
  json?: boolean;
}

export function registerWalList(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('wal-list')
      .summary('List archived WAL files with sizes, codec and upload time (listing only)')
      .description(
        'List archived WAL files with LSN range, sizes, codec, encryption, checksum and upload time (listing only, no downloads)',
      )
      .option('--timeline <tli>', 'only this timeline')
      .option('--from <lsn>', 'only WAL files reaching at or after this LSN')
      .option('--to <lsn>', 'only WAL files starting at or before this LSN')
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action(() =>
    run(
      cmd,
      async (ctx) => {
        const { lsnArg, timelineArg } = await import('../args.js');
        const { eachWalRow } = await import('../../ops/list-stream.js');
        const { WalListPrinter } = await import('../render/list-stream.js');
        const f = cmd.opts<Flags>();
        const filter = {
          ...(f.timeline !== undefined ? { timeline: timelineArg(f.timeline)! } : {}),
          ...(f.from !== undefined ? { from: lsnArg('--from', f.from)! } : {}),
          ...(f.to !== undefined ? { to: lsnArg('--to', f.to)! } : {}),
        };
        // Rows stream through a temp file: wal-list's memory does not grow with the archive.
        const printer = new WalListPrinter(f.json === true);
        try {
          const head = await withArchive(ctx, (archive) => eachWalRow(archive, filter, printer));
          await printer.print(head, ctx.out);
        } finally {
          printer.dispose();
        }
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}
