import { type Command } from 'commander';
import { ExitCode } from '../../common/errors.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

interface Flags {
  pgdata: string;
  backup?: string;
  targetTime?: string;
  targetLsn?: string;
  targetXid?: string;
  targetName?: string;
  target?: string;
  targetAction?: string;
  targetTimeline?: string;
  tablespaceMap?: string[];
  delta?: boolean;
}

export function registerRestore(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('restore')
      .summary('Restore a base backup into a data directory, set up for point-in-time recovery')
      .description(
        'Restore a complete base backup into an empty data directory (or over an existing one with --delta), every file ' +
          "checked against its SHA-256, and write recovery.signal, restore_command (this install's wal-fetch) and the " +
          'recovery target into postgresql.auto.conf, so that `pg_ctl start` is the only step left. Without --backup it ' +
          'picks the newest complete backup that can reach the target',
      )
      .requiredOption('--pgdata <dir>', 'the data directory to restore into (absent or empty, unless --delta)')
      .option('--backup <name|latest>', 'the backup to restore (default: the newest that reaches the target)')
      .option('--target-time <time>', "recover up to this time, with a zone: 2026-12-02T01:30:00Z or '2026-12-02 01:30:00+01'")
      .option('--target-lsn <lsn>', 'recover up to this LSN (16/B374D848)')
      .option('--target-xid <xid>', 'recover up to this transaction id')
      .option('--target-name <name>', 'recover up to this restore point (pg_create_restore_point)')
      .option('--target <immediate>', 'immediate: stop as soon as the backup is consistent')
      .option('--target-action <action>', 'at the target: promote (default), pause or shutdown')
      .option('--target-timeline <tli>', 'latest (PostgreSQL default), current or a timeline id')
      .option('--tablespace-map <oid=dir>', 'restore tablespace OID into DIR instead of its original location (repeatable)', collect, [])
      .option('--delta', 'reuse an existing data directory: keep files whose SHA-256 matches, remove files the backup does not have'),
    ['storage', 's3', 'archive', 'fetch', 'restore'],
  );
  cmd.action(() =>
    run(
      cmd,
      async (ctx) => {
        const plan = await import('../../backup/restore/plan.js');
        const { parseTablespaceMap } = await import('../../backup/restore/tablespaces.js');
        const { persistedArchiveSettings } = await import('../../backup/restore/recovery.js');
        const { runRestore } = await import('../../backup/restore/restore.js');
        const { renderRestore } = await import('../../backup/restore/report.js');
        const f = cmd.opts<Flags>();
        const target = plan.parseTarget(f);
        const options = {
          pgdata: f.pgdata,
          backup: f.backup,
          target,
          action: plan.parseTargetAction(f.targetAction),
          timeline: plan.parseTargetTimeline(f.targetTimeline),
          tablespaceMap: parseTablespaceMap(f.tablespaceMap ?? []),
          delta: f.delta === true,
          parallel: ctx.config['restore-parallel'],
          bufferBytes: ctx.config['restore-buffer'],
          archiveSettings: persistedArchiveSettings(ctx.config, ctx.sources),
          stateDir: process.env['WALVAULT_STATE_DIR'],
        };
        return withArchive(ctx, async (archive) => {
          const result = await runRestore(archive, options);
          ctx.out(renderRestore(result, target));
          return ExitCode.ok;
        });
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
