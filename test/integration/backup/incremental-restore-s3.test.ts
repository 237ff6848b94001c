/**
 * The PostgreSQL 17 incremental chain round trip (issue 13) on an S3 archive (s3rver, and Ceph RGW
 * where installed): the body of incremental-restore.test.ts, see incremental-chain.ts.
 */
import { describe } from 'vitest';
import { supportedMajors } from '../../support/cluster.js';
import { describeS3 } from '../../support/s3servers.js';
import { chainRoundTrip, s3Storage } from './incremental-chain.js';

describe.runIf(supportedMajors().includes(17))('PostgreSQL 17', () => {
  describeS3('incremental chain round trip on PostgreSQL 17 (S3 archive)', (server) => {
    chainRoundTrip(s3Storage(() => server.start({ bucket: 'backups' })));
  });
});
