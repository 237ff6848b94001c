/**
 * `walvault daemon`: the long-running look-ahead uploader. It holds the same lock as wal-push's
 * detached uploader (so wal-push starts none while it runs), archives every `.ready` file as soon as
 * it appears, and serves /metrics and /status when a port is set.
 */
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, LocalIoError, describeCause } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { tryLock } from '../common/pid-lock.js';
import { sleep } from '../common/retry.js';
import { VERSION } from '../common/version.js';
import type { Config } from '../config/load.js';
import { openArchive } from '../archive/open.js';
import { readyFiles, runAhead } from '../push/ahead.js';
import { handoverFile, stateDirFor } from '../push/state-dir.js';
import { daemonMetricsSource, daemonStatsObserver, newDaemonStats, type DaemonStats } from './ahead-metrics.js';
import { createMetrics, fanOut, metricsAddress, serveMetrics } from './metrics.js';

/** How often the daemon looks for new `.ready` files. */
export const DAEMON_POLL_MS = 100;
/** How often the `.ready` backlog shown as queue depth is counted. */
export const READY_COUNT_INTERVAL_MS = 1000;

/**
 * How long the daemon waits for the lock that wal-push's detached uploader may hold. That uploader
 * runs until the `.ready` queue has been empty for DETACHED_AHEAD_IDLE_MS, and stops after its
 * uploads in flight once a daemon asks for the lock (the handover file), so a daemon started while
 * it runs (at boot, or right after a kill) waits for it instead of failing; only a lock still held
 * after this long is an error. Another daemon holding it is an error at once.
 */
export const UPLOADER_LOCK_WAIT_MS = 60_000;

/** Runs until `signal` aborts; returns the final counters. */
export async function runDaemon(config: Config, log: Logger, signal: AbortSignal): Promise<DaemonStats> {
  const given = config.pgdata ?? process.env['PGDATA'];
  if (!given) throw new ConfigError('unable to start the daemon: set --pgdata (or WALVAULT_PGDATA, or PGDATA)');
  const pgdata = resolve(given);
  checkDataDirectory(pgdata);
  const walDir = join(pgdata, 'pg_wal');
  const stateDir = stateDirFor(pgdata);
  const lockFile = join(stateDir, 'ahead.pid');
  const release = await takeLockWithHandover(lockFile, stateDir, log, signal);
  try {
    const stats = newDaemonStats();
    const archive = await openArchive(config, log, signal);
    const port = config['metrics-port'];
    const metrics = port !== undefined ? createMetrics('daemon', { archive: config.archive ?? '' }) : undefined;
    const uploads = fanOut(daemonStatsObserver(stats), metrics?.uploads);
    const counter = setInterval(() => {
      void readyFiles(walDir).then((r) => (stats.readyFiles = r.length));
    }, READY_COUNT_INTERVAL_MS);
    try {
      const server = metrics ? await serveMetrics(metrics, daemonMetricsSource(stats), config['metrics-host'], port!) : undefined;
      try {
        log.info(
          { version: VERSION, archive: config.archive, pgdata, stateDir, metrics: server ? metricsAddress(server) : 'off' },
          'walvault daemon starting',
        );
        await runAhead(archive, {
          walDir,
          stateDir,
          concurrency: config['push-parallel'],
          compressThreads: config['push-compress-threads'],
          maxFiles: Number.POSITIVE_INFINITY,
          idleMs: Number.POSITIVE_INFINITY,
          pollMs: DAEMON_POLL_MS,
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
    return stats;
  } finally {
    release();
  }
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

async function takeUploaderLock(lockFile: string, stateDir: string, log: Logger, signal: AbortSignal): Promise<() => void> {
  const deadline = Date.now() + UPLOADER_LOCK_WAIT_MS;
  let said = false;
  for (;;) {
    let release: (() => void) | undefined;
    try {
      release = tryLock(lockFile);
    } catch (err) {
      throw new LocalIoError(`unable to lock state directory '${stateDir}': ${describeCause(err)}`, { cause: err });
    }
    if (release) return release;
    if (Date.now() >= deadline || signal.aborted || heldByDaemon(lockFile)) {
      throw new ConfigError(`unable to start the daemon: another uploader holds ${lockFile}`);
    }
    if (!said) {
      // Until then the detached uploader archives what is ready; asked to, it stops after its
      // uploads in flight and the daemon takes over.
      log.info({ lockFile }, 'waiting for the running look-ahead uploader to finish');
      writeFileSync(handoverFile(stateDir), `${process.pid}\n`);
      said = true;
    }
    await sleep(200, signal).catch(() => undefined);
  }
}

/** Takes the lock, asking a running detached uploader to hand over; the request is removed either way. */
async function takeLockWithHandover(lockFile: string, stateDir: string, log: Logger, signal: AbortSignal): Promise<() => void> {
  try {
    return await takeUploaderLock(lockFile, stateDir, log, signal);
  } finally {
    rmSync(handoverFile(stateDir), { force: true });
  }
}

/** Whether the lock's holder is a `walvault daemon` (Linux: its command line); false when unknown. */
function heldByDaemon(lockFile: string): boolean {
  try {
    const pid = readFileSync(lockFile, 'utf8').trim();
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('daemon');
  } catch {
    return false;
  }
}
