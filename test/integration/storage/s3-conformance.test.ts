import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { MIN_PART_SIZE, S3Storage } from '../../../src/storage/s3.js';
import type { S3TestServer } from '../../support/s3bucket.js';
import { describeS3 } from '../../support/s3servers.js';
import { runStorageConformance } from '../../support/storage-conformance.js';

describeS3('s3 storage', (kind) => {
  let server: S3TestServer;

  beforeAll(async () => {
    server = await kind.start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  runStorageConformance(
    `s3 (${kind.name})`,
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
        // The smallest part S3 allows, so the large cases go through multipart uploads.
        partSize: MIN_PART_SIZE,
      }),
    }),
    kind.conformance,
  );
});
