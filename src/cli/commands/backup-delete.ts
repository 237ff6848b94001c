import { type Command } from 'commander';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

interface Flags {
  force?: boolean;
  dryRun?: boolean;
  withDependents?: boolean;
}

export function registerBackupDelete(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('backup-delete')
      .summary('Delete one base backup (its backup.json first)')
      .description(
        'Delete one base backup of any status: backup.json first (it stops being complete), then its other objects. Refuses the ' +
          'newest complete backup and a running one unless --force, and a backup others need (increments built on it) unless ' +
          '--with-dependents, which deletes those first, newest first. Its WAL stays until expire or wal-delete. Exit 1: no such backup',
      )
      .argument('<name>', 'backup name (as backup-list prints it)')
      .option('--force', 'also the newest complete backup, or a running one')
      .option('--with-dependents', 'also delete the backups that need it (its increments), newest first')
      .option('--dry-run', 'show what would be deleted, delete nothing'),
    ['storage', 's3', 'archive'],
  );
  cmd.action((nameArg: string) =>
    run(
      cmd,
      async (ctx) => {
        const { parseBackupName } = await import('../../backup/names.js');
        const { executeBackupDelete, planBackupDelete } = await import('../../ops/backup-delete.js');
        const { renderBackupDelete } = await import('../render/backups.js');
        const f = cmd.opts<Flags>();
        const name = parseBackupName(nameArg);
        await withArchive(ctx, async (archive) => {
          const plan = await planBackupDelete(archive, name, { force: f.force === true, withDependents: f.withDependents === true });
          ctx.out(renderBackupDelete(plan, f.dryRun ? null : await executeBackupDelete(archive, plan)));
        });
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}
