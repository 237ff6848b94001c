import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { PostgresError, ReplicationError } from '../../../src/common/errors.js';
import { connectServer } from '../../../src/postgres/sql.js';

/** A loopback port nothing listens on: bind one, then let it go. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('connectServer', () => {
  it('reports a refused plain SQL connection as a PostgresError, not a replication protocol error', async () => {
    const port = await closedPort();
    const err = await connectServer(`host=127.0.0.1 port=${port} user=walvault dbname=postgres`, 'walvault-test').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PostgresError);
    expect(err).not.toBeInstanceOf(ReplicationError);
    expect((err as PostgresError).code).toBe('WV_ERR_POSTGRES');
    expect((err as PostgresError).retryable).toBe(true);
    expect((err as PostgresError).message).toMatch(new RegExp(`^unable to connect to PostgreSQL '127\\.0\\.0\\.1:${port}[^']*': `));
  });
});
