import type { ReceiverStats } from '../walstream/receiver.js';
import { parseLsn } from '../segment/lsn.js';
import { setLsnGauge, type Metrics, type MetricsSource } from './metrics.js';

/** Exposes a WalReceiver's stats as /status and its positions as gauges, read at scrape time. */
export function receiverMetricsSource(stats: ReceiverStats): MetricsSource {
  let seenReconnects = 0;
  return {
    status: () => ({ ...stats, lagBytes: lag(stats) }),
    refresh(m: Metrics) {
      m.queueDepth.set(stats.pendingUploads);
      const r = m.replication;
      if (!r) return;
      r.connected.set(stats.connected ? 1 : 0);
      r.reconnects.inc(Math.max(0, stats.reconnects - seenReconnects));
      seenReconnects = stats.reconnects;
      setLsnGauge(r.receivedLsn, stats.receivedLsn);
      setLsnGauge(r.flushedLsn, stats.flushedLsn);
      setLsnGauge(r.archivedLsn, stats.archivedLsn);
      setLsnGauge(r.serverLsn, stats.serverLsn);
      const l = lag(stats);
      if (l !== null) r.lagBytes.set(l);
    },
  };
}

function lag(stats: ReceiverStats): number | null {
  if (!stats.serverLsn || !stats.archivedLsn) return null;
  const d = parseLsn(stats.serverLsn) - parseLsn(stats.archivedLsn);
  return d > 0n ? Number(d) : 0;
}
