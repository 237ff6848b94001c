import { type Command } from 'commander';
import { collectArg } from '../args.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import type { RestoreFlags } from '../restore-call.js';

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
      .option('--tablespace-map <oid=dir>', 'restore tablespace OID into DIR instead of its original location (repeatable)', collectArg, [])
      .option('--delta', 'reuse an existing data directory: keep files whose SHA-256 matches, remove files the backup does not have'),
    ['storage', 's3', 'archive', 'fetch', 'restore'],
  );
  cmd.action(() =>
    run(cmd, async (ctx) => (await import('../restore-call.js')).runRestoreCommand(ctx, cmd.opts<RestoreFlags>()), {
      defaultLogLevel: 'warn',
    }),
  );
}
