/**
 * `walvault stream`: receives WAL over physical replication and archives it, serving /metrics and
 * /status when a port is set. Runs until `signal` aborts.
 */
import { resolve } from 'node:path';
import type { Logger } from '../common/log.js';
import { VERSION } from '../common/version.js';
import type { Config } from '../config/load.js';
import { openArchive } from '../archive/open.js';
import { WalReceiver } from '../walstream/receiver.js';
import { receiverMetricsSource } from './stream-metrics.js';

/** Finished segments uploaded at once (the receiver writes one segment at a time). */
export const STREAM_UPLOAD_CONCURRENCY = 2;
/** Reconnect backoff after a lost replication connection: first wait, and the cap. */
export const STREAM_RECONNECT_MIN_MS = 1000;
export const STREAM_RECONNECT_MAX_MS = 30_000;

export async function runStream(config: Config, log: Logger, signal: AbortSignal): Promise<void> {
  const c = config;
  const archive = await openArchive(c, log, signal);
  const spoolDir = resolve(c['spool-dir']);
  // prom-client and the HTTP server load only when metrics are asked for: a few MiB of RSS otherwise.
  const served = c['metrics-port'] !== undefined ? await import('./metrics.js') : undefined;
  const metrics = served?.createMetrics('stream', { archive: c.archive ?? '', slot: c.slot ?? '' });
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
      compressThreads: c['stream-compress-threads'],
      uploadConcurrency: STREAM_UPLOAD_CONCURRENCY,
      reconnectMinMs: STREAM_RECONNECT_MIN_MS,
      reconnectMaxMs: STREAM_RECONNECT_MAX_MS,
    },
    log,
  );
  try {
    const server =
      served && metrics
        ? await served.serveMetrics(metrics, receiverMetricsSource(receiver.stats), c['metrics-host'], c['metrics-port']!)
        : undefined;
    try {
      log.info(
        {
          version: VERSION,
          archive: c.archive,
          slot: c.slot ?? null,
          spool: spoolDir,
          metrics: server && served ? served.metricsAddress(server) : 'off',
        },
        'walvault stream starting',
      );
      await receiver.run(signal);
    } finally {
      server?.close();
    }
  } finally {
    await archive.storage.close();
  }
}
