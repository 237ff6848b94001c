import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { S3Storage } from '../../../src/storage/s3.js';
import { startS3rver, type S3rverHandle } from '../../support/s3server.js';
import { runStorageConformance } from '../../support/storage-conformance.js';

let server: S3rverHandle;

beforeAll(async () => {
  server = await startS3rver();
});
afterAll(async () => {
  await server?.stop();
});

runStorageConformance(
  's3 (s3rver)',
  async () => ({
    // A fresh prefix per test keeps tests apart inside one bucket.
    storage: new S3Storage({
      bucket: server.bucket,
      prefix: `conformance/${randomBytes(4).toString('hex')}`,
      endpoint: server.endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      checksums: 'when_required',
    }),
  }),
  // s3rver ignores If-None-Match, writes request bodies in place and lists in its own order
  // (see ConformanceOptions).
  { atomicIfAbsent: false, atomicConcurrentOverwrite: false, exactListOrder: false },
);
