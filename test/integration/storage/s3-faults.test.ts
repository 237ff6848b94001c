/**
 * The S3 driver against s3rver through the fault proxy: throttling, 5xx, slow responses, connection
 * resets, outages, bad credentials and unreachable endpoints. Every fault is queued for a specific
 * request, so each test knows exactly which attempt fails.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AbortedError, ObjectExistsError, StorageError, WalvaultError } from '../../../src/common/errors.js';
import type { RetryPolicy } from '../../../src/common/retry.js';
import { S3Storage, type S3StorageOptions } from '../../../src/storage/s3.js';
import { FaultProxy } from '../../support/faultproxy.js';
import { startS3rver, type S3rverHandle } from '../../support/s3server.js';
import { chunked, readStream } from '../../support/storage-conformance.js';

const FAST: Partial<RetryPolicy> = { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 40, factor: 2 };
const MiB = 1024 * 1024;

let server: S3rverHandle;
let proxy: FaultProxy;
const opened: S3Storage[] = [];

beforeAll(async () => {
  server = await startS3rver();
  proxy = await FaultProxy.start(server.endpoint);
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  proxy.clear();
});
afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

function storage(overrides: Partial<S3StorageOptions> & { direct?: boolean } = {}): S3Storage {
  const { direct, ...rest } = overrides;
  const s = new S3Storage({
    bucket: server.bucket,
    prefix: 'faults',
    endpoint: direct ? server.endpoint : proxy.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    checksums: 'when_required',
    retry: FAST,
    requestTimeoutMs: 5_000,
    ...rest,
  });
  opened.push(s);
  return s;
}

function uniqueKey(name: string): string {
  return `${name}/${randomBytes(4).toString('hex')}`;
}

function methods(): string[] {
  return proxy.requests.map((r) => `${r.method}${r.fault ? ` (${r.fault})` : ''}`);
}

async function failure(p: Promise<unknown>): Promise<WalvaultError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WalvaultError);
  return err as WalvaultError;
}

describe('s3 driver under injected faults', () => {
  it('retries a PUT answered 500 and logs the retry', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const s = storage({ log: pino({ level: 'warn' }, sink) });
    const key = uniqueKey('p500');
    proxy.inject({ kind: 'status', status: 500 }, { match: { method: 'PUT' } });
    await s.put(key, Buffer.from('payload'));
    expect(methods()).toEqual(['PUT (status 500)', 'PUT']);
    expect((await storage({ direct: true }).getBuffer(key)).toString()).toBe('payload');
    expect(lines.length).toBe(1);
    const logged = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(logged).toMatchObject({ component: 'storage.s3', key, attempt: 1, level: 40, msg: 'storage request failed, retrying' });
    expect(JSON.stringify(logged)).not.toContain(server.secretAccessKey);
  });

  it('retries 503 SlowDown twice on GET, then reads the object', async () => {
    const s = storage();
    const key = uniqueKey('p503');
    await storage({ direct: true }).put(key, Buffer.from('slow down'));
    proxy.inject({ kind: 'status', status: 503 }, { times: 2, match: { method: 'GET' } });
    expect((await s.getBuffer(key)).toString()).toBe('slow down');
    expect(methods()).toEqual(['GET (status 503)', 'GET (status 503)', 'GET']);
  });

  it('abandons a response slower than the request timeout and retries', async () => {
    const s = storage({ requestTimeoutMs: 300 });
    const key = uniqueKey('slow');
    await storage({ direct: true }).put(key, Buffer.from('eventually'));
    // The delay is far above the timeout so that a loaded machine (slow retry) is never mistaken
    // for waiting out the slow response.
    proxy.inject({ kind: 'delay', ms: 8_000 }, { match: { method: 'GET' } });
    const started = Date.now();
    expect((await s.getBuffer(key)).toString()).toBe('eventually');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(7_500);
    expect(methods()).toEqual(['GET (delay 8000)', 'GET']);
  });

  it('retries connection resets before the request and in the middle of the response', async () => {
    const s = storage();
    const key = uniqueKey('reset');
    const data = randomBytes(256 * 1024);
    proxy.inject({ kind: 'reset', when: 'request' }, { match: { method: 'PUT' } });
    await s.put(key, data);
    proxy.inject({ kind: 'reset', when: 'response' }, { match: { method: 'GET' } });
    expect((await s.getBuffer(key)).equals(data)).toBe(true);
    proxy.inject({ kind: 'reset', when: 'response' }, { match: { method: 'HEAD' } });
    expect((await s.head(key))?.size).toBe(data.length);
    proxy.inject({ kind: 'reset', when: 'response' }, { match: { method: 'GET', path: /list-type=2/ } });
    const listed: string[] = [];
    for await (const info of s.list(key)) listed.push(info.key);
    expect(listed).toEqual([key]);
    expect(methods()).toEqual([
      'PUT (reset request)',
      'PUT',
      'GET (reset response)',
      'GET',
      'HEAD (reset response)',
      'HEAD',
      'GET (reset response)',
      'GET',
    ]);
  });

  it('a reset in the middle of a get() stream fails the stream with a clear retryable error', async () => {
    const s = storage();
    const key = uniqueKey('midbody');
    await storage({ direct: true }).put(key, randomBytes(512 * 1024));
    proxy.inject({ kind: 'reset', when: 'response' }, { match: { method: 'GET' } });
    const stream = await s.get(key);
    const err = await failure(readStream(stream));
    expect(err).toBeInstanceOf(StorageError);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`unable to read object '${key}' from s3://${server.bucket}/faults at ${proxy.endpoint}: `);
  });

  it('when retries run out: one clear line naming key and endpoint, retryable, nothing stored', async () => {
    const s = storage({ maxAttempts: 3 });
    const key = uniqueKey('gone');
    proxy.inject({ kind: 'status', status: 503 }, { times: 10, match: { method: 'PUT' } });
    const err = await failure(s.put(key, Buffer.from('never')));
    expect(err).toBeInstanceOf(StorageError);
    expect(err.retryable).toBe(true);
    expect(err.message).not.toContain('\n');
    expect(err.message).toMatch(
      new RegExp(
        `^unable to write object '${key}' to s3://${server.bucket}/faults at ${proxy.endpoint.replace(/\./g, '\\.')}: ` +
          `HTTP 503 SlowDown; gave up after 3 attempts in \\d+\\.\\d s \\(retryable\\)$`,
      ),
    );
    expect(methods()).toEqual(['PUT (status 503)', 'PUT (status 503)', 'PUT (status 503)']);
    expect(await storage({ direct: true }).head(key)).toBeUndefined();
  });

  it('does not retry a 4xx such as 403', async () => {
    const s = storage();
    const key = uniqueKey('forbidden');
    proxy.inject({ kind: 'status', status: 403 }, { match: { method: 'PUT' } });
    const err = await failure(s.put(key, Buffer.from('x')));
    expect(err.retryable).toBe(false);
    expect(err.message).toBe(`unable to write object '${key}' to ${s.description}: access denied (AccessDenied)`);
    expect(methods()).toEqual(['PUT (status 403)']);
  });

  it('ifAbsent checks with HEAD, sends If-None-Match: *, and maps 412 to ObjectExistsError', async () => {
    const s = storage();
    const key = uniqueKey('create-only');
    await s.put(key, Buffer.from('first'), { ifAbsent: true });
    const put = proxy.requests.find((r) => r.method === 'PUT');
    expect(put?.headers['if-none-match']).toBe('*');
    expect(methods()).toEqual(['HEAD', 'GET', 'PUT']);

    // What real S3 answers when another writer got there between our HEAD and our PUT.
    const raced = uniqueKey('create-only');
    proxy.inject({ kind: 'status', status: 412 }, { match: { method: 'PUT' } });
    const err = await failure(s.put(raced, Buffer.from('second'), { ifAbsent: true }));
    expect(err).toBeInstanceOf(ObjectExistsError);
    expect(err.message).toBe(`unable to write object '${raced}' to ${s.description}: it already exists (PreconditionFailed)`);
  });

  it('uploads a multipart object, retrying one failed part only', async () => {
    const s = storage({ partSize: 5 * MiB });
    const key = uniqueKey('multipart');
    const data = randomBytes(12 * MiB);
    proxy.inject({ kind: 'status', status: 500 }, { match: { method: 'PUT', path: /partNumber=2&/ } });
    await s.put(key, chunked(data, [MiB + 17]), { contentLength: data.length });
    expect((await storage({ direct: true }).getBuffer(key)).equals(data)).toBe(true);
    const calls = proxy.requests.map(
      (r) =>
        `${r.method} ${/partNumber=(\d+)/.exec(r.url)?.[1] ?? (r.url.includes('uploads') ? 'create' : 'complete')}${r.fault ? ' (500)' : ''}`,
    );
    expect(calls.slice().sort()).toEqual(['POST complete', 'POST create', 'PUT 1', 'PUT 2', 'PUT 2 (500)', 'PUT 3'].sort());
    expect(calls[0]).toBe('POST create');
    expect(calls.at(-1)).toBe('POST complete');
  });

  it('an aborted multipart upload stores nothing and aborts the upload on the server', async () => {
    const s = storage({ partSize: 5 * MiB });
    const key = uniqueKey('abort-mpu');
    const controller = new AbortController();
    const body = Readable.from(
      (async function* () {
        yield randomBytes(6 * MiB);
        yield randomBytes(5 * MiB);
        // Wait until part 1 is on the server, then pull the plug.
        while (!proxy.requests.some((r) => r.method === 'PUT' && r.url.includes('partNumber=1'))) {
          await new Promise((r) => setTimeout(r, 10));
        }
        await new Promise((r) => setTimeout(r, 50));
        controller.abort();
        yield randomBytes(5 * MiB);
      })(),
      { objectMode: false },
    );
    const err = await failure(s.put(key, body, { signal: controller.signal }));
    expect(err).toBeInstanceOf(AbortedError);
    expect(proxy.requests.some((r) => r.method === 'DELETE' && r.url.includes('uploadId='))).toBe(true);
    expect(await storage({ direct: true }).head(key)).toBeUndefined();
  });

  it('aborting a put while the server is slow rejects promptly', async () => {
    const s = storage();
    const key = uniqueKey('abort-slow');
    proxy.inject({ kind: 'delay', ms: 3_000 }, { match: { method: 'PUT' } });
    const started = Date.now();
    const err = await failure(s.put(key, Buffer.from('x'), { signal: AbortSignal.timeout(200) }));
    expect(err).toBeInstanceOf(AbortedError);
    expect(err.message).toBe(`unable to write object '${key}' to ${s.description}: aborted`);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('bad credentials fail at once with a clear, non-retryable error', async () => {
    const key = uniqueKey('creds');
    const wrongId = storage({ credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'S3RVER' } });
    const err = await failure(wrongId.getBuffer(key));
    expect(err).toBeInstanceOf(StorageError);
    expect(err.retryable).toBe(false);
    expect(err.message).toBe(
      `unable to read object '${key}' from s3://${server.bucket}/faults at ${proxy.endpoint}: access denied (InvalidAccessKeyId)`,
    );
    // s3rver checks only the key id, not SigV4 signatures: what real S3 answers to a wrong secret
    // comes from the proxy here.
    proxy.inject({ kind: 'status', status: 403, code: 'SignatureDoesNotMatch' }, { match: { method: 'PUT' } });
    const err2 = await failure(storage().put(key, Buffer.from('x')));
    expect(err2.retryable).toBe(false);
    expect(err2.message).toBe(`unable to write object '${key}' to ${wrongId.description}: access denied (SignatureDoesNotMatch)`);
    expect(methods()).toEqual(['GET', 'PUT (status 403)']);
  });

  it('an unreachable endpoint fails within a bounded time, retryable, naming the endpoint', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const s = storage({ endpoint: `http://127.0.0.1:${port}`, maxAttempts: 3 });
    const started = Date.now();
    const err = await failure(s.put('k', Buffer.from('x')));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(
      new RegExp(
        `^unable to write object 'k' to s3://${server.bucket}/faults at http://127\\.0\\.0\\.1:${port}: ` +
          `connection refused \\(ECONNREFUSED\\); gave up after 3 attempts in \\d+\\.\\d s \\(retryable\\)$`,
      ),
    );
  });

  it('fails retryable while every connection is reset, and recovers when they are not', async () => {
    const s = storage({ maxAttempts: 2 });
    const key = uniqueKey('refused');
    proxy.refuse(true);
    const err = await failure(s.put(key, Buffer.from('x')));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/connection reset \(ECONNRESET\)|socket hang up|ECONNRESET/);
    expect(proxy.requests.filter((r) => r.fault === 'refused').length).toBe(2);
    proxy.refuse(false);
    await s.put(key, Buffer.from('x'));
    expect((await s.getBuffer(key)).toString()).toBe('x');
  });

  it('rides out a server outage that ends before the retries do', async () => {
    const s = storage({ endpoint: server.endpoint, retry: { maxAttempts: 120, baseDelayMs: 50, maxDelayMs: 250, factor: 2 } });
    // ~30 s of retries: restarting s3rver on a loaded machine can take several seconds.
    const key = uniqueKey('outage');
    await s.put(`${key}-before`, Buffer.from('before'));
    await server.suspend();
    const put = s.put(key, Buffer.from('during'));
    await new Promise((r) => setTimeout(r, 300));
    await server.resume();
    await put;
    expect((await s.getBuffer(key)).toString()).toBe('during');
    expect((await s.getBuffer(`${key}-before`)).toString()).toBe('before');
  });

  it('a missing bucket is an error, never "object absent"', async () => {
    const s = storage({ bucket: 'no-such-bucket', endpoint: server.endpoint });
    const listing = async (): Promise<void> => {
      for await (const _ of s.list('')) void _;
    };
    for (const attempt of [() => s.head('k'), () => s.getBuffer('k'), () => s.get('k'), listing, () => s.put('k', Buffer.from('x'))]) {
      const err = await failure(attempt());
      expect(err).toBeInstanceOf(StorageError);
      expect(err.retryable).toBe(false);
      expect(err.message).toContain('bucket does not exist (NoSuchBucket)');
    }
  });

  it("works with the SDK's default checksums too, because bodies are sent as buffers", async () => {
    const s = storage({ checksums: 'default', partSize: 5 * MiB });
    const small = randomBytes(100_000);
    const large = randomBytes(11 * MiB);
    await s.put('checksums/small', chunked(small));
    await s.put('checksums/large', chunked(large, [MiB]));
    const direct = storage({ direct: true });
    expect((await direct.getBuffer('checksums/small')).equals(small)).toBe(true);
    expect((await direct.getBuffer('checksums/large')).equals(large)).toBe(true);
    expect((await s.getBuffer('checksums/large')).equals(large)).toBe(true);
    expect(proxy.requests.find((r) => r.method === 'PUT')?.headers['x-amz-checksum-crc32']).toBeDefined();
  });
});
