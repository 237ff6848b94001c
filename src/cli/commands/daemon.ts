import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { ConfigError, ExitCode, describeCause } from '../../common/errors.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';

export function registerDaemon(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('daemon')
      .description(
        'Archive .ready segments ahead of archive_command, continuously (wal-push then returns in milliseconds)',
      ),
    ['storage', 's3', 'archive', 'push'],
  );
  cmd.action(() =>
    run(cmd, async (ctx) => {
      const { tryLock } = await import('../../common/pid-lock.js');
      const { openArchive } = await import('../../archive/open.js');
      const { runAhead, readyFiles } = await import('../../push/ahead.js');
      const { stateDirFor } = await import('../../push/state-dir.js');
      const { createMetrics, serveMetrics } = await import('../../daemon/metrics.js');
      const { daemonMetricsSource, newDaemonStats } = await import('../../daemon/ahead-metrics.js');
      const pgdata = ctx.config.pgdata ?? process.env['PGDATA'];
      if (!pgdata) throw new ConfigError('unable to start the daemon: set --pgdata (or WALVAULT_PGDATA, or PGDATA)');
      const walDir = join(resolve(pgdata), 'pg_wal');
      const stateDir = stateDirFor(resolve(pgdata));
      // The same lock as wal-push's detached uploader: while the daemon runs, wal-push starts none.
      const release = tryLock(join(stateDir, 'ahead.pid'));
      if (!release) throw new ConfigError(`unable to start the daemon: another uploader holds ${join(stateDir, 'ahead.pid')}`);
      const stats = newDaemonStats();
      const archive = await openArchive(ctx.config, ctx.log, ctx.signal);
      const c = ctx.config;
      const server =
        c['metrics-port'] !== undefined
          ? await serveMetrics(createMetrics(), daemonMetricsSource(stats), c['metrics-host'], c['metrics-port'])
          : undefined;
      const counter = setInterval(() => {
        void readyFiles(walDir).then((r) => (stats.readyFiles = r.length));
      }, 1000);
      ctx.log.info({ pgdata, stateDir }, 'daemon started');
      try {
        await runAhead(archive, {
          walDir,
          stateDir,
          concurrency: c['push-parallel'],
          maxFiles: Number.POSITIVE_INFINITY,
          idleMs: Number.POSITIVE_INFINITY,
          pollMs: 100,
          onArchived: (name, bytes) => {
            stats.filesArchived++;
            stats.bytesArchived += bytes;
            stats.lastArchived = name;
            stats.lastArchivedAt = new Date().toISOString();
          },
          onError: (_name, err) => {
            stats.errors++;
            stats.lastError = describeCause(err);
          },
        });
      } finally {
        clearInterval(counter);
        server?.close();
        release();
        await archive.storage.close();
      }
      ctx.log.info(stats, 'daemon stopped');
      return ExitCode.ok;
    }),
  );
}
