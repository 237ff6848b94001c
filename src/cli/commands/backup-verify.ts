import { type Command } from 'commander';
import { ExitCode, UsageError } from '../../common/errors.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

interface Flags {
  all?: boolean;
  json?: boolean;
}

export function registerBackupVerify(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('backup-verify')
      .summary('Verify a base backup is restorable (exit 128 when problems are found)')
      .description(
        "Verify a base backup: every object read and checked, every file's SHA-256, PostgreSQL's backup_manifest against the catalog, " +
          'the WAL from its start to its end segment present and chained. Exit 0: no problems; 128: problems (one per line); ' +
          '1: no backup of that name; 3: could not verify',
      )
      .argument('[name]', 'backup name (as backup-list prints it)')
      .option('--all', 'every complete (and damaged) backup')
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action((nameArg: string | undefined) =>
    run(
      cmd,
      async (ctx) => {
        const { parseBackupName } = await import('../../backup/names.js');
        const { verifyBackups } = await import('../../ops/backup-verify.js');
        const { backupVerifyJson, renderBackupVerify } = await import('../render/backups.js');
        const f = cmd.opts<Flags>();
        if ((nameArg === undefined) === (f.all !== true)) throw new UsageError('unable to verify backups: give one backup name or --all');
        const target = nameArg !== undefined ? { name: parseBackupName(nameArg) } : { all: true as const };
        const report = await withArchive(ctx, (archive) => verifyBackups(archive, target));
        ctx.out(f.json ? JSON.stringify(backupVerifyJson(report), null, 2) : renderBackupVerify(report));
        return report.backups.every((b) => b.problems.length === 0) ? ExitCode.ok : ExitCode.integrity;
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}
