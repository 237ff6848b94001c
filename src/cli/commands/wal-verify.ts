import { type Command } from 'commander';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';
import type { WalVerifyFlags } from '../wal-verify-call.js';

export function registerWalVerify(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('wal-verify')
      .summary('Verify the archive is whole and intact (exit 128 when problems are found)')
      .description(
        'Verify the archive: continuity of every timeline (with switch points), every object header against the archive identity, ' +
          'and with --deep every object downloaded and checked in full. Exit 0: no problems; 128: problems found (listed); 3: could not verify',
      )
      .option('--timeline <tli>', 'only what recovery to this timeline reads (it and its ancestors)')
      .option('--from <lsn>', 'only WAL at or after this LSN')
      .option('--to <lsn>', 'only WAL at or before this LSN')
      .option('--deep', 'download and verify every object (decrypt, decompress, SHA-256)')
      .option('--recheck', 'check objects again that the verify-record says an earlier run checked')
      .option('--parallel <n>', 'objects checked at once (default 4)')
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action(() =>
    run(
      cmd,
      async (ctx) => {
        const { verifyArchive } = await import('../../ops/verify.js');
        const { renderVerify } = await import('../render/reports.js');
        const { verifyProgressReporter } = await import('../render/verify-progress.js');
        const { verifyRecordOption, walVerifyExitCode, walVerifyJson, walVerifyOptions } = await import('../wal-verify-call.js');
        const f = cmd.opts<WalVerifyFlags>();
        const opts = walVerifyOptions(f);
        const progress = verifyProgressReporter({
          tty: process.stderr.isTTY === true,
          write: (s) => process.stderr.write(s),
          log: ctx.log,
        });
        return withArchive(ctx, async (archive) => {
          try {
            const record = verifyRecordOption(ctx.config['verify-record'], archive.storage.description);
            const report = await verifyArchive(archive, { ...opts, ...record, onProgress: progress.update });
            progress.finish();
            ctx.out(f.json ? walVerifyJson(report) : renderVerify(report));
            return walVerifyExitCode(report);
          } finally {
            progress.clear();
          }
        });
      },
      { defaultLogLevel: 'info' },
    ),
  );
}
