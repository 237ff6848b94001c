import { type Command } from 'commander';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import type { WalDeleteFlags } from '../wal-delete-call.js';

export function registerWalDelete(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('wal-delete')
      .summary('Retention: delete WAL before a segment, an LSN or a time')
      .description(
        'Retention: delete WAL older than a segment, an LSN or a time, oldest first and in batches (safe to interrupt). ' +
          'Keeps the newest segment, history files still needed, archive.info; refuses WAL a complete base backup needs unless --force',
      )
      .requiredOption(
        '--before <segment|lsn|time>',
        'a segment name, an LSN (16/B374D848), a time (2024-05-01T03:00:00Z) or an age (7d, 36h)',
      )
      .option('--timeline <tli>', 'only this timeline')
      .option('--dry-run', 'show what would be deleted, delete nothing')
      .option('--force', 'also delete WAL that a complete base backup needs (or, without walvault backups, the newest .backup file)')
      .option('--batch <n>', 'objects per delete request (default 100)')
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action(() =>
    run(cmd, async (ctx) => (await import('../wal-delete-call.js')).runWalDelete(ctx, cmd.opts<WalDeleteFlags>()), {
      defaultLogLevel: 'warn',
    }),
  );
}
