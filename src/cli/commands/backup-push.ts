import { type Command } from 'commander';
import { ArchiveMismatchError, ExitCode, UsageError } from '../../common/errors.js';
import { parseBackupName } from '../../backup/names.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

export function registerBackupPush(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('backup-push')
      .summary('Take a base backup over the replication protocol into the archive')
      .description(
        'Take a base backup with BASE_BACKUP (a role with REPLICATION, the connection settings of `walvault stream`; ' +
          'no access to the data directory needed) into the archive. Complete only when the server ended the backup ' +
          'without error, every object is stored and verified and every WAL segment from its start to its end is ' +
          'archived; then backup.json is written, last. Exit 0: complete; 4: the server is another cluster or major ' +
          'than the archive; 3: any other failure (nothing recorded as complete), among them an incremental ' +
          'the server cannot take (WV_ERR_INCREMENTAL_UNAVAILABLE; `--incremental=auto` takes a full backup instead)',
      )
      .option(
        '--incremental [auto]',
        'only what changed since a parent backup: block-level on PostgreSQL 17+ (summarize_wal on), ' +
          'chunk-level (unchanged 1 MiB pieces stored by reference) on 13-16; `auto`: a full backup when not possible',
      )
      .option('--parent <name>', 'the parent of --incremental (default: the newest complete backup on this timeline history)'),
    ['storage', 's3', 'archive', 'stream', 'backup'],
  );
  cmd.action(() =>
    run(
      cmd,
      async (ctx) => {
        const { backupPush } = await import('../../backup/push.js');
        const { readBaseBackup } = await import('../../backup/source.js');
        const { progressReporter, renderBackupSummary } = await import('../render/progress.js');
        const c = ctx.config;
        const flags = cmd.opts<{ incremental?: boolean | string; parent?: string }>();
        const incremental = incrementalMode(flags.incremental);
        if (flags.parent !== undefined && incremental === 'off') {
          throw new UsageError(`unable to use --parent '${flags.parent}': it needs --incremental`);
        }
        const parent = flags.parent === undefined ? undefined : parseBackupName(flags.parent);
        const progress = progressReporter({
          tty: process.stderr.isTTY === true,
          write: (s) => process.stderr.write(s),
          log: ctx.log,
        });
        try {
          const result = await withArchive(ctx, (archive) =>
            backupPush(
              archive,
              readBaseBackup,
              {
                conninfo: c['pg-conninfo'],
                checkpoint: c['backup-checkpoint'] as 'fast' | 'spread',
                label: c['backup-label'],
                maxRate: c['backup-max-rate'],
                uploadParallel: c['backup-upload-parallel'],
                compressThreads: c['backup-compress-threads'],
                archiveTimeoutMs: c['archive-timeout'] * 1000,
                abandonedAfterMs: c['backup-abandoned-after'] * 1000,
                incremental,
                ...(parent !== undefined ? { parent } : {}),
                onProgress: progress.update,
              },
              ctx.log,
            ),
          );
          progress.done();
          ctx.out(renderBackupSummary(result));
        } finally {
          progress.done();
        }
        return ExitCode.ok;
      },
      // A server of another cluster or major is a refusal (4), as for wal-push and stream.
      { exitCodeFor: (err, code) => (err instanceof ArchiveMismatchError ? ExitCode.conflict : code) },
    ),
  );
}

function incrementalMode(flag: boolean | string | undefined): 'off' | 'on' | 'auto' {
  if (flag === undefined || flag === false) return 'off';
  if (flag === true) return 'on';
  if (flag === 'auto') return 'auto';
  throw new UsageError(`unable to use --incremental '${flag}': expected no value or 'auto'`);
}
