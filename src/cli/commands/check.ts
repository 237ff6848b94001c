import { type Command, Option } from 'commander';
import { ExitCode } from '../../common/errors.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { emit, withArchive } from '../with-archive.js';

interface Flags {
  stream?: boolean;
  switchWal?: boolean;
  switchWalTimeout?: string;
  json?: boolean;
}

export function registerCheck(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('check')
      .summary('Check PostgreSQL, archiving settings, storage and archive identity')
      .description(
        'Check the setup: PostgreSQL reachable, wal_level, archive_mode, archive_command runs wal-push, archiver healthy, ' +
          'replication slot, storage writable and readable, archive identity matches the server. Exit 0: all passed; 3: a check failed',
      )
      .addOption(new Option('--pg-conninfo <conninfo>', 'PostgreSQL connection (normal, not replication) (env WALVAULT_PG_CONNINFO)'))
      .addOption(new Option('--slot <name>', 'also check this physical replication slot (env WALVAULT_SLOT)'))
      .option('--stream', 'the archive is fed by walvault stream: skip the archive_mode/archive_command checks')
      .option('--switch-wal', 'force a WAL segment switch and wait until that segment is in the archive')
      .option('--switch-wal-timeout <seconds>', 'how long --switch-wal waits (default 60)')
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action(() =>
    run(
      cmd,
      async (ctx) => {
        const { intArg } = await import('../args.js');
        const { runChecks } = await import('../../ops/check.js');
        const { renderCheck } = await import('../render/reports.js');
        const f = cmd.opts<Flags>();
        const timeoutS = intArg('--switch-wal-timeout', f.switchWalTimeout, 1, 86_400) ?? 60;
        const report = await withArchive(ctx, (archive) =>
          runChecks(archive, {
            ...(ctx.config['pg-conninfo'] !== undefined ? { conninfo: ctx.config['pg-conninfo'] } : {}),
            ...(ctx.config.slot !== undefined ? { slot: ctx.config.slot } : {}),
            stream: f.stream === true,
            switchWal: f.switchWal === true,
            switchWalTimeoutMs: timeoutS * 1000,
          }),
        );
        emit(ctx, f.json, report, renderCheck);
        return report.ok ? ExitCode.ok : ExitCode.failure;
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}
