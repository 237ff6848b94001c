/**
 * The S3 servers the S3 tests run against, so one test body covers each: s3rver (small, always
 * there) and Ceph RGW (a production S3 service; the one that honours conditional writes).
 *
 *   describeS3('wal-push to S3', (server) => {
 *     let s3: S3TestServer;
 *     beforeAll(async () => { s3 = await server.start({ bucket: 'wal' }); });
 *     afterAll(async () => { await s3?.stop(); });
 *     ...
 *   });
 *
 * WALVAULT_TEST_S3 (comma-separated, default "s3rver,rgw") picks the servers. Missing Ceph binaries
 * skip the RGW cases with a message naming the install command, except under CI=true, where the
 * RGW cases run and fail: CI must never pass without them.
 */
import { describe } from 'vitest';
import { RGW_INSTALL, rgwMissing, startRgw } from './rgw.js';
import type { S3TestServer } from './s3bucket.js';
import { startS3rver } from './s3server.js';
import type { ConformanceOptions } from './storage-conformance.js';

export interface S3ServerKind {
  readonly name: 's3rver' | 'rgw';
  start(opts?: { bucket?: string }): Promise<S3TestServer>;
  /** What the storage conformance suite can check on this server. */
  readonly conformance: ConformanceOptions;
  /** Why this server's tests are skipped here, or undefined. */
  readonly skip: string | undefined;
}

const ALL: Record<S3ServerKind['name'], () => S3ServerKind> = {
  s3rver: () => ({
    name: 's3rver',
    start: startS3rver,
    // s3rver ignores If-None-Match, writes request bodies in place and lists in its own order
    // (see ConformanceOptions).
    conformance: { atomicIfAbsent: false, atomicConcurrentOverwrite: false, exactListOrder: false },
    skip: undefined,
  }),
  rgw: () => {
    const missing = rgwMissing();
    return {
      name: 'rgw',
      start: startRgw,
      // RGW 16.2 ignores If-None-Match on CompleteMultipartUpload (see ConformanceOptions).
      conformance: { atomicIfAbsent: true, atomicIfAbsentMultipart: false, atomicConcurrentOverwrite: true, exactListOrder: true },
      skip: missing.length > 0 && process.env['CI'] !== 'true' ? `${missing.join(', ')} not installed; run: ${RGW_INSTALL}` : undefined,
    };
  },
};

/** The servers WALVAULT_TEST_S3 selects (all by default). */
export function s3Servers(): S3ServerKind[] {
  const wanted = (process.env['WALVAULT_TEST_S3'] ?? 's3rver,rgw')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return wanted.map((name) => {
    const make = ALL[name as S3ServerKind['name']];
    if (!make) throw new Error(`WALVAULT_TEST_S3: unknown S3 server '${name}' (known: ${Object.keys(ALL).join(', ')})`);
    return make();
  });
}

/** One describe block per selected server, titled `${title} (${server})`; skipped ones say why. */
export function describeS3(title: string, body: (server: S3ServerKind) => void): void {
  for (const server of s3Servers()) {
    const name = server.skip ? `${title} (${server.name}, skipped: ${server.skip})` : `${title} (${server.name})`;
    // Skipped tests show only as a count in the default reporter: say why where it is seen.
    if (server.skip) console.warn(`skipping '${title}' on ${server.name}: ${server.skip}`);
    describe.skipIf(server.skip !== undefined)(name, () => body(server));
  }
}
