import type { ReceiverStats } from '../walstream/receiver.js';
import { formatLsn, lsnDiff, type Lsn } from '../segment/lsn.js';
import type { BoundGauge, Metrics, MetricsSource } from './metrics.js';

/** Exposes a WalReceiver's stats as /status and its positions as gauges, read at scrape time. */
export function receiverMetricsSource(stats: ReceiverStats): MetricsSource {
  let seenReconnects = 0;
  return {
    // /status is JSON read by `walvault status` and by people: positions in PostgreSQL's text form.
    status: () => ({
      ...stats,
      receivedLsn: text(stats.receivedLsn),
      flushedLsn: text(stats.flushedLsn),
      archivedLsn: text(stats.archivedLsn),
      serverLsn: text(stats.serverLsn),
      lagBytes: lag(stats),
    }),
    refresh(m: Metrics) {
      m.queueDepth.set(stats.pendingUploads);
      const r = m.replication;
      if (!r) return;
      r.connected.set(stats.connected ? 1 : 0);
      r.reconnects.inc(Math.max(0, stats.reconnects - seenReconnects));
      seenReconnects = stats.reconnects;
      setPosition(r.receivedLsn, stats.receivedLsn);
      setPosition(r.flushedLsn, stats.flushedLsn);
      setPosition(r.archivedLsn, stats.archivedLsn);
      setPosition(r.serverLsn, stats.serverLsn);
      const l = lag(stats);
      if (l !== null) r.lagBytes.set(l);
    },
  };
}

function text(value: Lsn | null): string | null {
  return value === null ? null : formatLsn(value);
}

/** An unknown position (null) leaves the gauge alone. */
function setPosition(gauge: BoundGauge, value: Lsn | null): void {
  if (value !== null) gauge.set(Number(value));
}

function lag(stats: ReceiverStats): number | null {
  if (!stats.serverLsn || !stats.archivedLsn) return null;
  const d = lsnDiff(stats.serverLsn, stats.archivedLsn);
  return d > 0n ? Number(d) : 0;
}
