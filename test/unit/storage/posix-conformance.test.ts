import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PosixStorage } from '../../../src/storage/posix.js';
import { runStorageConformance } from '../../support/storage-conformance.js';

runStorageConformance(
  'posix',
  async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'walvault-posix-'));
    return { storage: new PosixStorage({ root }), cleanup: () => rm(root, { recursive: true, force: true }) };
  },
  { atomicIfAbsent: true, atomicConcurrentOverwrite: true },
);
