import { type Command } from 'commander';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

interface Flags {
  json?: boolean;
}

export function registerBackupShow(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('backup-show')
      .summary('Show everything about one base backup')
      .description(
        'Show one base backup: status, LSNs and times, WAL it needs and the recovery window, files, sizes, tablespaces, ' +
          'manifest, writer. Exit 1 when the archive holds no backup of that name',
      )
      .argument('<name>', 'backup name, as backup-list prints it (e.g. 20261202T004512F)')
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action((nameArg: string) =>
    run(
      cmd,
      async (ctx) => {
        const { parseBackupName } = await import('../../backup/names.js');
        const { showBackup } = await import('../../ops/backup-list.js');
        const { backupShowJson, renderBackupShow } = await import('../render/backups.js');
        const f = cmd.opts<Flags>();
        const name = parseBackupName(nameArg);
        const report = await withArchive(ctx, (archive) => showBackup(archive, name));
        ctx.out(f.json ? JSON.stringify(backupShowJson(report), null, 2) : renderBackupShow(report));
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}
