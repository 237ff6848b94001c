import { describe, expect, it } from 'vitest';
import { receiverMetricsSource } from '../../../src/daemon/stream-metrics.js';
import { createMetrics } from '../../../src/daemon/metrics.js';
import { parseLsn } from '../../../src/segment/lsn.js';
import type { ReceiverStats } from '../../../src/walstream/receiver.js';

function stats(): ReceiverStats {
  return {
    connected: true,
    timeline: 2,
    receivedLsn: parseLsn('16/B3000000'),
    flushedLsn: parseLsn('16/B3000000'),
    archivedLsn: parseLsn('16/B2000000'),
    serverLsn: parseLsn('16/B3000100'),
    bytesReceived: 1,
    segmentsArchived: 1,
    bytesArchived: 1,
    alreadyArchived: 0,
    uploadErrors: 0,
    pendingUploads: 1,
    lastError: null,
    lastArchivedSegment: null,
    lastArchivedAt: null,
    reconnects: 0,
  };
}

describe('receiver metrics source', () => {
  it('keeps positions as LSN values and shows them in PostgreSQL text form on /status', () => {
    const status = receiverMetricsSource(stats()).status() as Record<string, unknown>;
    expect(status).toMatchObject({
      receivedLsn: '16/B3000000',
      flushedLsn: '16/B3000000',
      archivedLsn: '16/B2000000',
      serverLsn: '16/B3000100',
      lagBytes: 0x1000100,
    });
    // /status is served as JSON: a bigint left in it would make JSON.stringify throw.
    expect(() => JSON.stringify(status)).not.toThrow();
  });

  it('reports no lag while a position is unknown, and 0 when the archive is ahead', () => {
    expect(receiverMetricsSource({ ...stats(), archivedLsn: null }).status()).toMatchObject({ archivedLsn: null, lagBytes: null });
    expect(receiverMetricsSource({ ...stats(), archivedLsn: parseLsn('17/0') }).status()).toMatchObject({ lagBytes: 0 });
  });

  it('sets the position gauges from the values', async () => {
    const m = createMetrics('stream', { archive: 'file:///x', slot: 's' });
    receiverMetricsSource(stats()).refresh!(m);
    const text = await m.registry.metrics();
    expect(text).toMatch(new RegExp(`^walvault_server_lsn_bytes\\{[^}]*\\} ${Number(parseLsn('16/B3000100'))}$`, 'm'));
    expect(text).toMatch(new RegExp(`^walvault_archived_lsn_bytes\\{[^}]*\\} ${Number(parseLsn('16/B2000000'))}$`, 'm'));
  });
});
