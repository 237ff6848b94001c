import { type Command } from 'commander';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

interface Flags {
  force?: boolean;
  dryRun?: boolean;
}

export function registerBackupDelete(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('backup-delete')
      .summary('Delete one base backup (its backup.json first)')
      .description(
        'Delete one base backup of any status: backup.json first (it stops being complete), then its other objects. Refuses the ' +
          'newest complete backup and a running one unless --force. Its WAL stays until expire or wal-delete. Exit 1: no such backup',
      )
      .argument('<name>', 'backup name (as backup-list prints it)')
      .option('--force', 'also the newest complete backup, or a running one')
      .option('--dry-run', 'show what would be deleted, delete nothing'),
    ['storage', 's3', 'archive'],
  );
  cmd.action((nameArg: string) =>
    run(
      cmd,
      async (ctx) => {
        const { parseBackupName } = await import('../../backup/names.js');
        const { deleteBackupObjects, planBackupDelete } = await import('../../ops/backup-delete.js');
        const { renderBackupDelete } = await import('../render/backups.js');
        const f = cmd.opts<Flags>();
        const name = parseBackupName(nameArg);
        await withArchive(ctx, async (archive) => {
          const plan = await planBackupDelete(archive, name, f.force ? { force: true } : {});
          ctx.out(renderBackupDelete(plan, f.dryRun ? null : await deleteBackupObjects(archive, plan.backup)));
        });
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}
