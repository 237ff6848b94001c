/**
 * Prometheus metrics and a JSON status endpoint for the long-running processes (`stream`, `daemon`).
 * Upload outcomes are recorded as they happen (the duration histogram needs each one); positions
 * and queue depths are read from the process's stats object at scrape time, so /status and
 * /metrics share one source of truth.
 *
 * Names: prom-client's standard process and Node metrics (`process_cpu_seconds_total`,
 * `nodejs_heap_size_used_bytes`, ...) unprefixed, as stock dashboards expect; ours start with
 * `walvault_` and carry an `archive` label (and `slot` for the stream agent's replication gauges).
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LocalIoError, describeCause } from '../common/errors.js';
import { VERSION } from '../common/version.js';
import type { PushResult } from '../archive/push.js';

export interface MetricsSource {
  /** Current status, also served as JSON at /status. */
  status(): Record<string, unknown>;
  /** Brings the gauges up to date just before a scrape. */
  refresh(metrics: Metrics): void;
}

export type AgentKind = 'stream' | 'daemon';

export interface MetricLabels {
  readonly archive: string;
  /** Stream agent only: the replication slot ('' when it streams without one). */
  readonly slot?: string;
}

/** Told about every upload as it ends: the metrics and the stats behind /status both listen. */
export interface UploadObserver {
  archived(name: string, result: Pick<PushResult, 'status' | 'size' | 'durationMs'>): void;
  failed(name: string, err: unknown): void;
}

/** A metric with its labels filled in. */
export type BoundGauge = ReturnType<Gauge<string>['labels']>;
type BoundCounter = ReturnType<Counter<string>['labels']>;

/** The stream agent's view of the replication connection; absent in the daemon. */
export interface ReplicationMetrics {
  readonly connected: BoundGauge;
  readonly reconnects: BoundCounter;
  readonly receivedLsn: BoundGauge;
  readonly flushedLsn: BoundGauge;
  readonly archivedLsn: BoundGauge;
  readonly serverLsn: BoundGauge;
  readonly lagBytes: BoundGauge;
}

export interface Metrics {
  readonly registry: Registry;
  readonly uploads: UploadObserver;
  readonly queueDepth: BoundGauge;
  readonly replication: ReplicationMetrics | undefined;
}

export function createMetrics(kind: AgentKind, labels: MetricLabels): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const archive = { archive: labels.archive };
  const registers = [registry];

  new Gauge({
    name: 'walvault_build_info',
    help: 'Always 1; the labels say which walvault and Node.js are running',
    labelNames: ['version', 'node', 'agent'],
    registers,
  })
    .labels({ version: VERSION, node: process.version, agent: kind })
    .set(1);

  const counter = (name: string, help: string): BoundCounter => {
    const c = new Counter({ name, help, labelNames: ['archive'], registers }).labels(archive);
    c.inc(0); // exported from the start, so rate() and increase() work from the first scrape
    return c;
  };
  const gauge = (name: string, help: string, names: string[] = ['archive'], values: Record<string, string> = archive): BoundGauge =>
    new Gauge({ name, help, labelNames: names, registers }).labels(values);

  const filesArchived = counter('walvault_segments_archived_total', 'WAL files uploaded to the archive');
  const bytesArchived = counter(
    'walvault_bytes_archived_total',
    'Original bytes of the WAL files uploaded (deduplicated ones not included)',
  );
  const alreadyArchived = counter(
    'walvault_already_archived_total',
    'WAL files not uploaded because the archive already held the same content (dedupe)',
  );
  const uploadErrors = counter('walvault_upload_errors_total', 'Failed archive attempts (each retry counts)');
  const uploadSeconds = new Histogram({
    name: 'walvault_upload_duration_seconds',
    help: 'Time to archive one WAL file (read, compress, encrypt, upload, verify), deduplicated ones included',
    labelNames: ['archive'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  }).labels(archive);
  // Only set once something was archived: a fresh agent has no "last archive" to be old.
  const lastArchived = gauge(
    'walvault_last_archived_timestamp_seconds',
    'Unix time of the last WAL file archived (uploaded or found already archived); age = time() - this',
  );

  const queueDepth = gauge(
    'walvault_queue_depth',
    kind === 'stream' ? 'Finished WAL files in the spool waiting for upload' : '.ready WAL files in pg_wal/archive_status not archived yet',
  );
  queueDepth.set(0);

  let replication: ReplicationMetrics | undefined;
  if (kind === 'stream') {
    const names = ['archive', 'slot'];
    const values = { archive: labels.archive, slot: labels.slot ?? '' };
    const g = (name: string, help: string): BoundGauge => gauge(name, help, names, values);
    const reconnects = new Counter({
      name: 'walvault_reconnects_total',
      help: 'Replication sessions that failed and were retried',
      labelNames: names,
      registers,
    }).labels(values);
    reconnects.inc(0);
    replication = {
      connected: g('walvault_connected', '1 while the replication connection to PostgreSQL is up, else 0'),
      reconnects,
      receivedLsn: g('walvault_received_lsn_bytes', 'End of WAL received'),
      flushedLsn: g('walvault_flushed_lsn_bytes', 'End of WAL fsynced in the spool'),
      archivedLsn: g('walvault_archived_lsn_bytes', 'End of WAL durably archived'),
      serverLsn: g('walvault_server_lsn_bytes', "Server's WAL end as last reported by it"),
      lagBytes: g('walvault_archive_lag_bytes', 'Server WAL end minus archived position'),
    };
    replication.connected.set(0);
  }

  return {
    registry,
    queueDepth,
    replication,
    uploads: {
      archived(_name, r) {
        uploadSeconds.observe(r.durationMs / 1000);
        lastArchived.set(Date.now() / 1000);
        if (r.status === 'uploaded') {
          filesArchived.inc();
          bytesArchived.inc(r.size);
        } else {
          alreadyArchived.inc();
        }
      },
      failed() {
        uploadErrors.inc();
      },
    },
  };
}

/** Calls every observer: the stats behind /status and the metrics hear of the same uploads. */
export function fanOut(...observers: (UploadObserver | undefined)[]): UploadObserver {
  const list = observers.filter((o): o is UploadObserver => o !== undefined);
  return {
    archived: (name, r) => list.forEach((o) => o.archived(name, r)),
    failed: (name, err) => list.forEach((o) => o.failed(name, err)),
  };
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
    server.once('error', (err) =>
      reject(new LocalIoError(`unable to serve metrics on '${host}:${port}': ${describeCause(err)}`, { cause: err })),
    );
    server.listen(port, host, () => resolve());
  });
  return server;
}

/** `http://host:port` of a listening metrics server, for the start-up line. */
export function metricsAddress(server: Server): string {
  const a = server.address();
  if (a === null || typeof a === 'string') return String(a);
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`;
}
