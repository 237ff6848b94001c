import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../src/common/errors.js';
import { collectStatus } from '../../../src/ops/status.js';

/** Serves whatever `doc` holds at /status, on loopback. */
let doc: Record<string, unknown> = {};
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url !== '/status') {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(doc));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const NOW = new Date('2024-05-01T03:00:30Z');

describe('status from an agent', () => {
  it('reads walvault stream’s document', async () => {
    doc = {
      connected: true,
      lastArchivedSegment: '000000010000000000000005',
      lastArchivedAt: '2024-05-01T03:00:00.000Z',
      archivedLsn: '0/6000000',
      lagBytes: 4096,
      pendingUploads: 0,
      lastError: null,
    };
    const r = await collectStatus(undefined, { agentUrl: base, postgres: false, now: NOW });
    expect(r).toMatchObject({
      source: 'agent',
      state: 'ok',
      lastArchived: { segment: '000000010000000000000005', endLsn: '0/6000000', at: '2024-05-01T03:00:00.000Z' },
      lag: { bytes: 4096, seconds: 30 },
      queue: 0,
    });
  });

  it('reads walvault daemon’s document, also from a /status URL', async () => {
    doc = {
      lastArchived: '000000010000000000000007',
      lastArchivedAt: '2024-05-01T03:00:10.000Z',
      readyFiles: 3,
      lastError: 'storage down',
      errors: 4,
    };
    const r = await collectStatus(undefined, { agentUrl: `${base}/status`, postgres: false, now: NOW });
    expect(r).toMatchObject({
      state: 'failing',
      queue: 3,
      lastError: 'storage down',
      lastArchived: { segment: '000000010000000000000007', endLsn: '?' },
    });
  });

  it('does not call a stream agent ok while it is not connected: it cannot know the lag', async () => {
    doc = {
      connected: false,
      lastError: null,
      pendingUploads: 0,
      lagBytes: 0,
      archivedLsn: '0/6000000',
      lastArchivedSegment: '000000010000000000000005',
    };
    const r = await collectStatus(undefined, { agentUrl: base, postgres: false, now: NOW });
    expect(r).toMatchObject({ state: 'unknown', stateReason: expect.stringMatching(/not connected/) });
  });

  it('calls a stream agent that has not measured the lag yet unknown', async () => {
    doc = { connected: true, lastError: null, pendingUploads: 0, lagBytes: null, archivedLsn: null, lastArchivedSegment: null };
    const r = await collectStatus(undefined, { agentUrl: base, postgres: false, now: NOW });
    expect(r).toMatchObject({ state: 'unknown', lag: { bytes: null, seconds: null } });
  });

  it('calls an idle daemon with no .ready file ok, with zero lag', async () => {
    doc = {
      lastArchived: '000000010000000000000007',
      lastArchivedAt: '2024-05-01T03:00:10.000Z',
      readyFiles: 0,
      lastError: null,
      errors: 0,
    };
    const r = await collectStatus(undefined, { agentUrl: base, postgres: false, now: NOW });
    expect(r).toMatchObject({ state: 'ok', stateReason: null, lag: { bytes: 0, seconds: 0 }, queue: 0 });
  });

  it('calls a disconnected stream agent with an error failing', async () => {
    doc = { connected: false, lastError: 'connection refused', pendingUploads: 0 };
    expect((await collectStatus(undefined, { agentUrl: base, postgres: false, now: NOW })).state).toBe('failing');
  });

  it('fails when the agent does not answer and nothing else may be asked', async () => {
    await expect(collectStatus(undefined, { agentUrl: `${base}/nothing-here`, postgres: false })).rejects.toThrow(StorageError);
  });
});
