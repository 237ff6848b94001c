import type { ReceiverStats } from '../walstream/receiver.js';
import { parseLsn } from '../segment/lsn.js';
import { setLsnGauge, type Metrics, type MetricsSource } from './metrics.js';

/** Exposes a WalReceiver's stats as metrics; counters advance by what changed since the last scrape. */
export function receiverMetricsSource(stats: ReceiverStats): MetricsSource {
  let seen = { segments: 0, bytes: 0, errors: 0 };
  return {
    status: () => ({ ...stats, lagBytes: lag(stats) }),
    refresh(m: Metrics) {
      m.segmentsArchived.inc(stats.segmentsArchived - seen.segments);
      m.bytesArchived.inc(stats.bytesArchived - seen.bytes);
      if (stats.uploadErrors > seen.errors) m.uploadErrors.inc({ kind: 'upload' }, stats.uploadErrors - seen.errors);
      seen = { segments: stats.segmentsArchived, bytes: stats.bytesArchived, errors: stats.uploadErrors };
      m.queueDepth.set(stats.pendingUploads);
      setLsnGauge(m.receivedLsn, stats.receivedLsn);
      setLsnGauge(m.flushedLsn, stats.flushedLsn);
      setLsnGauge(m.archivedLsn, stats.archivedLsn);
      setLsnGauge(m.serverLsn, stats.serverLsn);
      const l = lag(stats);
      if (l !== null) m.lagBytes.set(l);
    },
  };
}

function lag(stats: ReceiverStats): number | null {
  if (!stats.serverLsn || !stats.archivedLsn) return null;
  const d = parseLsn(stats.serverLsn) - parseLsn(stats.archivedLsn);
  return d > 0n ? Number(d) : 0;
}
