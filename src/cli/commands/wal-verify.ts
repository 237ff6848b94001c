import { type Command } from 'commander';
import { ExitCode } from '../../common/errors.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { withArchive } from '../with-archive.js';

interface Flags {
  timeline?: string;
  from?: string;
  to?: string;
  deep?: boolean;
  recheck?: boolean;
  parallel?: string;
  json?: boolean;
}

/** Problems found: above 125 like every integrity failure, so scripts and restore tooling stop. */
const VERIFY_PROBLEMS_EXIT = ExitCode.integrity;
const LOG_EVERY_MS = 10_000;
const REDRAW_EVERY_MS = 100;

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
        const { intArg, lsnArg, timelineArg } = await import('../args.js');
        const { verifyArchive } = await import('../../ops/verify.js');
        const { renderVerify } = await import('../render/reports.js');
        const { renderProgressBar } = await import('../render/layout.js');
        const f = cmd.opts<Flags>();
        const timeline = timelineArg(f.timeline);
        const from = lsnArg('--from', f.from);
        const to = lsnArg('--to', f.to);
        const parallel = intArg('--parallel', f.parallel, 1, 256) ?? 4;

        const tty = process.stderr.isTTY === true;
        let lastDraw = 0;
        let lastLog = Date.now();
        let drawn = false;
        const onProgress = (p: { done: number; total: number; bytes: number }): void => {
          const now = Date.now();
          const finished = p.done === p.total;
          if (tty) {
            if (!finished && now - lastDraw < REDRAW_EVERY_MS) return;
            lastDraw = now;
            drawn = true;
            process.stderr.write(`\r${renderProgressBar({ ...p, width: 30 })}`);
          } else if (now - lastLog >= LOG_EVERY_MS) {
            lastLog = now;
            ctx.log.info(
              { component: 'ops.verify', done: p.done, total: p.total, bytes: p.bytes },
              `verified ${p.done} of ${p.total} objects`,
            );
          }
        };

        const { verifiedRecordPath } = await import('../../archive/catalog/verified-record.js');
        const recordOption = (setting: string, description: string): { recordPath?: string } => {
          const path = verifiedRecordPath(setting, description);
          return path !== undefined ? { recordPath: path } : {};
        };
        return withArchive(ctx, async (archive) => {
          try {
            const report = await verifyArchive(archive, {
              ...(timeline !== undefined ? { timeline } : {}),
              ...(from !== undefined ? { from } : {}),
              ...(to !== undefined ? { to } : {}),
              deep: f.deep === true,
              recheck: f.recheck === true,
              ...recordOption(ctx.config['verify-record'], archive.storage.description),
              parallel,
              onProgress,
            });
            if (drawn) process.stderr.write('\n');
            drawn = false;
            ctx.out(f.json ? JSON.stringify({ ok: report.problems.length === 0, ...report }, null, 2) : renderVerify(report));
            return report.problems.length === 0 ? ExitCode.ok : VERIFY_PROBLEMS_EXIT;
          } finally {
            // Interrupted or failed mid-way: clear the half-drawn bar before the error line.
            if (drawn) process.stderr.write('\x1b[2K\r');
          }
        });
      },
      { defaultLogLevel: 'info' },
    ),
  );
}
