import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ReadIntoSocket, replicationSocket } from '../../../../src/postgres/replication/read-socket.js';

const servers: net.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A loopback server that sends `payload` to the first client, then ends. */
async function serve(payload: Buffer, pieces = 1): Promise<number> {
  const server = net.createServer((c) => {
    const step = Math.ceil(payload.length / pieces);
    for (let i = 0; i < payload.length; i += step) c.write(payload.subarray(i, i + step));
    c.end();
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

describe('ReadIntoSocket', () => {
  it('emits copies as data when no reader is set (what node-postgres listens to)', async () => {
    const payload = pattern(1_000_000);
    const port = await serve(payload, 7);
    const s = new ReadIntoSocket();
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.connect(port, '127.0.0.1');
    await once(s, 'end');
    s.destroy();
    // Views of the one read buffer would have been overwritten by later reads: each is a copy.
    expect(got.length).toBeGreaterThan(1);
    expect(Buffer.concat(got).equals(payload)).toBe(true);
  });

  it('hands reads to a direct reader as views of one reused buffer, and emits nothing', async () => {
    const payload = pattern(2_000_000);
    const port = await serve(payload, 13);
    const s = new ReadIntoSocket();
    const copies: Buffer[] = [];
    const backing = new Set<ArrayBufferLike>();
    let emitted = 0;
    s.on('data', () => emitted++);
    s.setDirectReader((chunk) => {
      backing.add(chunk.buffer);
      copies.push(Buffer.from(chunk));
    });
    s.connect(port, '127.0.0.1');
    await once(s, 'end');
    s.destroy();
    expect(Buffer.concat(copies).equals(payload)).toBe(true);
    expect(emitted).toBe(0);
    expect(backing.size).toBe(1);
  });

  it('is used only without TLS', () => {
    expect(replicationSocket({})).toBeInstanceOf(ReadIntoSocket);
    const tls = replicationSocket({ ssl: { rejectUnauthorized: false } });
    expect(tls).toBeInstanceOf(net.Socket);
    expect(tls).not.toBeInstanceOf(ReadIntoSocket);
  });
});
