import { resolve } from 'node:path';
import { type Command } from 'commander';
import { ExitCode } from '../../common/errors.js';
import { VERSION } from '../../common/version.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';

export function registerStream(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('stream')
      .description('Receive WAL over physical replication and archive it (long-running agent; SIGTERM stops it cleanly)'),
    ['storage', 's3', 'archive', 'stream'],
    { alsoShow: ['metrics-port', 'metrics-host'] },
  );
  cmd.action(() =>
    run(cmd, async (ctx) => {
      // Loaded here, not at start-up: pg and prom-client would slow every wal-push and wal-fetch.
      const { openArchive } = await import('../../archive/open.js');
      const { createMetrics, metricsAddress, serveMetrics } = await import('../../daemon/metrics.js');
      const { receiverMetricsSource } = await import('../../daemon/stream-metrics.js');
      const { WalReceiver } = await import('../../walstream/receiver.js');
      const c = ctx.config;
      const archive = await openArchive(c, ctx.log, ctx.signal);
      const spoolDir = resolve(c['spool-dir']);
      const metrics =
        c['metrics-port'] !== undefined ? createMetrics('stream', { archive: c.archive ?? '', slot: c.slot ?? '' }) : undefined;
      const receiver = new WalReceiver(
        archive,
        {
          ...(c['pg-conninfo'] !== undefined ? { conninfo: c['pg-conninfo'] } : {}),
          ...(c.slot !== undefined ? { slot: c.slot } : {}),
          ...(metrics ? { uploads: metrics.uploads } : {}),
          createSlot: c['create-slot'],
          synchronous: c.synchronous,
          spoolDir,
          statusIntervalMs: c['status-interval'],
          maxPending: c['max-pending'],
          uploadConcurrency: 2,
          reconnectMinMs: 1000,
          reconnectMaxMs: 30_000,
        },
        ctx.log,
      );
      try {
        const server = metrics
          ? await serveMetrics(metrics, receiverMetricsSource(receiver.stats), c['metrics-host'], c['metrics-port']!)
          : undefined;
        try {
          ctx.log.info(
            { version: VERSION, archive: c.archive, slot: c.slot ?? null, spool: spoolDir, metrics: server ? metricsAddress(server) : 'off' },
            'walvault stream starting',
          );
          await receiver.run(ctx.signal);
        } finally {
          server?.close();
        }
      } finally {
        await archive.storage.close();
      }
      return ExitCode.ok;
    }),
  );
}
