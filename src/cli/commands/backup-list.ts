import { type Command } from 'commander';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

interface Flags {
  json?: boolean;
}

export function registerBackupList(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('backup-list')
      .summary('List base backups with status, LSNs, sizes and the recovery window each opens')
      .description(
        'List base backups, oldest first by stop LSN: status (complete, running, failed, damaged), start and stop time, ' +
          'LSNs and timeline, PostgreSQL version, raw and stored size, and the recovery window (end LSN to the newest WAL or a gap)',
      )
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action(() =>
    run(
      cmd,
      async (ctx) => {
        const { listBackups } = await import('../../ops/backup-list.js');
        const { backupListJson, renderBackupList } = await import('../render/backups.js');
        const f = cmd.opts<Flags>();
        const report = await withArchive(ctx, (archive) => listBackups(archive));
        ctx.out(f.json ? JSON.stringify(backupListJson(report), null, 2) : renderBackupList(report));
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}
