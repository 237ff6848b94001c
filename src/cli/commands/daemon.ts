import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command } from 'commander';
import { ConfigError, ExitCode, LocalIoError, describeCause } from '../../common/errors.js';
import { VERSION } from '../../common/version.js';
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
    { alsoShow: ['metrics-port', 'metrics-host'] },
  );
  cmd.action(() =>
    run(cmd, async (ctx) => {
      const { tryLock } = await import('../../common/pid-lock.js');
      const { openArchive } = await import('../../archive/open.js');
      const { runAhead, readyFiles } = await import('../../push/ahead.js');
      const { stateDirFor } = await import('../../push/state-dir.js');
      const { createMetrics, fanOut, metricsAddress, serveMetrics } = await import('../../daemon/metrics.js');
      const { daemonMetricsSource, daemonStatsObserver, newDaemonStats } = await import('../../daemon/ahead-metrics.js');
      const given = ctx.config.pgdata ?? process.env['PGDATA'];
      if (!given) throw new ConfigError('unable to start the daemon: set --pgdata (or WALVAULT_PGDATA, or PGDATA)');
      const pgdata = resolve(given);
      checkDataDirectory(pgdata);
      const walDir = join(pgdata, 'pg_wal');
      const stateDir = stateDirFor(pgdata);
      const lockFile = join(stateDir, 'ahead.pid');
      // The same lock as wal-push's detached uploader: while the daemon runs, wal-push starts none.
      let release: (() => void) | undefined;
      try {
        release = tryLock(lockFile);
      } catch (err) {
        throw new LocalIoError(`unable to lock state directory '${stateDir}': ${describeCause(err)}`, { cause: err });
      }
      if (!release) throw new ConfigError(`unable to start the daemon: another uploader holds ${lockFile}`);
      try {
        const stats = newDaemonStats();
        const archive = await openArchive(ctx.config, ctx.log, ctx.signal);
        const c = ctx.config;
        const metrics = c['metrics-port'] !== undefined ? createMetrics('daemon', { archive: c.archive ?? '' }) : undefined;
        const uploads = fanOut(daemonStatsObserver(stats), metrics?.uploads);
        const counter = setInterval(() => {
          void readyFiles(walDir).then((r) => (stats.readyFiles = r.length));
        }, 1000);
        try {
          const server = metrics ? await serveMetrics(metrics, daemonMetricsSource(stats), c['metrics-host'], c['metrics-port']!) : undefined;
          try {
            ctx.log.info(
              { version: VERSION, archive: c.archive, pgdata, stateDir, metrics: server ? metricsAddress(server) : 'off' },
              'walvault daemon starting',
            );
            await runAhead(archive, {
              walDir,
              stateDir,
              concurrency: c['push-parallel'],
              maxFiles: Number.POSITIVE_INFINITY,
              idleMs: Number.POSITIVE_INFINITY,
              pollMs: 100,
              onArchived: (name, result) => uploads.archived(name, result),
              onError: (name, err) => uploads.failed(name, err),
            });
          } finally {
            server?.close();
          }
        } finally {
          clearInterval(counter);
          await archive.storage.close();
        }
        ctx.log.info(stats, 'daemon stopped');
      } finally {
        release();
      }
      return ExitCode.ok;
    }),
  );
}

/** A wrong --pgdata is a configuration mistake (exit 2), said in one line, not an ENOENT from deep inside. */
function checkDataDirectory(pgdata: string): void {
  let isDir = false;
  try {
    isDir = statSync(pgdata).isDirectory();
  } catch (err) {
    throw new ConfigError(`unable to use data directory '${pgdata}': ${describeCause(err)}`, { cause: err });
  }
  if (!isDir) throw new ConfigError(`unable to use data directory '${pgdata}': not a directory`);
  if (!existsSync(join(pgdata, 'pg_wal', 'archive_status'))) {
    throw new ConfigError(`unable to use data directory '${pgdata}': not a PostgreSQL data directory (no pg_wal/archive_status)`);
  }
}
