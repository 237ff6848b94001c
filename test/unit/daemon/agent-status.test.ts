/**
 * The shared /status schema: what each agent serves, and what older agents served, reads the same.
 * The documents here are written out by hand, not produced by the code under test.
 */
import { describe, expect, it } from 'vitest';
import { parseAgentStatus } from '../../../src/daemon/agent-status.js';
import { daemonAgentStatus, daemonMetricsSource, newDaemonStats } from '../../../src/daemon/ahead-metrics.js';

describe('parseAgentStatus', () => {
  it.each([
    {
      label: 'a stream document of an older agent',
      doc: {
        connected: true,
        archivedLsn: '0/6000000',
        lagBytes: 512,
        pendingUploads: 2,
        lastArchivedSegment: '000000010000000000000005',
        lastArchivedAt: '2024-05-01T03:00:00.000Z',
        lastError: null,
      },
      want: {
        agent: 'stream',
        lastArchivedSegment: '000000010000000000000005',
        lastArchivedAt: '2024-05-01T03:00:00.000Z',
        archivedLsn: '0/6000000',
        lagBytes: 512,
        queue: 2,
        connected: true,
        lastError: null,
      },
    },
    {
      label: 'a daemon document of an older agent',
      doc: {
        lastArchived: '000000010000000000000007',
        lastArchivedAt: '2024-05-01T03:00:10.000Z',
        readyFiles: 3,
        lastError: 'storage down',
        errors: 4,
      },
      want: {
        agent: 'daemon',
        lastArchivedSegment: '000000010000000000000007',
        lastArchivedAt: '2024-05-01T03:00:10.000Z',
        archivedLsn: null,
        lagBytes: null,
        queue: 3,
        connected: null,
        lastError: 'storage down',
      },
    },
    {
      label: 'a document in the shared schema',
      doc: {
        agent: 'daemon',
        lastArchivedSegment: '000000010000000000000009',
        lastArchivedAt: null,
        archivedLsn: null,
        lagBytes: null,
        queue: 0,
        connected: null,
        lastError: null,
      },
      want: {
        agent: 'daemon',
        lastArchivedSegment: '000000010000000000000009',
        lastArchivedAt: null,
        archivedLsn: null,
        lagBytes: null,
        queue: 0,
        connected: null,
        lastError: null,
      },
    },
  ])('reads $label', ({ doc, want }) => {
    expect(parseAgentStatus(doc)).toEqual(want);
  });
});

describe('the daemon /status document', () => {
  it('carries the shared fields beside its counters', () => {
    const stats = newDaemonStats();
    stats.lastArchived = '00000001000000000000000A';
    stats.lastArchivedAt = '2024-05-01T03:00:20.000Z';
    stats.readyFiles = 5;
    stats.lastError = 'unable to write object: down';
    const doc = daemonMetricsSource(stats).status();
    expect(doc).toMatchObject({
      agent: 'daemon',
      lastArchivedSegment: '00000001000000000000000A',
      queue: 5,
      readyFiles: 5,
      lastArchived: '00000001000000000000000A',
    });
    expect(parseAgentStatus(doc)).toEqual(daemonAgentStatus(stats));
  });
});
