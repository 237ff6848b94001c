/**
 * Prometheus metrics and a JSON status endpoint for the long-running processes (`stream`, `daemon`).
 * Values are read from the process's own stats object at scrape time, so there is one source of truth.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { parseLsn } from '../segment/lsn.js';

export interface MetricsSource {
  /** Current status, also served as JSON at /status. */
  status(): Record<string, unknown>;
  /** Brings the metrics up to date just before a scrape. */
  refresh(metrics: Metrics): void;
}

export interface Metrics {
  readonly registry: Registry;
  readonly segmentsArchived: Counter;
  readonly bytesArchived: Counter;
  readonly uploadErrors: Counter<'kind'>;
  readonly uploadSeconds: Histogram;
  readonly queueDepth: Gauge;
  readonly receivedLsn: Gauge;
  readonly flushedLsn: Gauge;
  readonly archivedLsn: Gauge;
  readonly serverLsn: Gauge;
  readonly lagBytes: Gauge;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'walvault_process_' });
  const m: Metrics = {
    registry,
    segmentsArchived: new Counter({ name: 'walvault_segments_archived_total', help: 'WAL files archived', registers: [registry] }),
    bytesArchived: new Counter({ name: 'walvault_bytes_archived_total', help: 'Original bytes of WAL archived', registers: [registry] }),
    uploadErrors: new Counter({
      name: 'walvault_upload_errors_total',
      help: 'Failed archive attempts, by error code',
      labelNames: ['kind'],
      registers: [registry],
    }),
    uploadSeconds: new Histogram({
      name: 'walvault_upload_duration_seconds',
      help: 'Time to archive one WAL file (read, compress, encrypt, upload, verify)',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    queueDepth: new Gauge({ name: 'walvault_queue_depth', help: 'WAL files waiting to be archived', registers: [registry] }),
    receivedLsn: new Gauge({ name: 'walvault_received_lsn_bytes', help: 'End of WAL received (stream)', registers: [registry] }),
    flushedLsn: new Gauge({ name: 'walvault_flushed_lsn_bytes', help: 'End of WAL fsynced in the spool (stream)', registers: [registry] }),
    archivedLsn: new Gauge({ name: 'walvault_archived_lsn_bytes', help: 'End of WAL durably archived', registers: [registry] }),
    serverLsn: new Gauge({ name: 'walvault_server_lsn_bytes', help: "Server's WAL end as last reported by it", registers: [registry] }),
    lagBytes: new Gauge({ name: 'walvault_archive_lag_bytes', help: 'Server WAL end minus archived position', registers: [registry] }),
  };
  return m;
}

/** Sets an LSN gauge from `X/X` text (bytes; a double holds 2^53 exactly, ~9 PB of WAL). */
export function setLsnGauge(gauge: Gauge, text: string | null): void {
  if (text) gauge.set(Number(parseLsn(text)));
}

export async function serveMetrics(metrics: Metrics, source: MetricsSource, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    void (async () => {
      try {
        if (req.url === '/metrics') {
          source.refresh(metrics);
          res.setHeader('content-type', metrics.registry.contentType);
          res.end(await metrics.registry.metrics());
        } else if (req.url === '/status') {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(source.status(), null, 2));
        } else {
          res.statusCode = 404;
          res.end('not found: try /metrics or /status\n');
        }
      } catch (err) {
        res.statusCode = 500;
        res.end(String(err));
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
