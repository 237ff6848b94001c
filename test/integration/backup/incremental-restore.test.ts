/**
 * The PostgreSQL 17 incremental chain round trip (issue 13) on a posix archive: see
 * incremental-chain.ts for what it builds and checks.
 */
import { describe } from 'vitest';
import { supportedMajors } from '../../support/cluster.js';
import { POSIX, chainRoundTrip } from './incremental-chain.js';

describe.runIf(supportedMajors().includes(17))('incremental chain round trip on PostgreSQL 17 (posix archive)', () => {
  chainRoundTrip(POSIX);
});
