import { MemoryStorage } from '../../../src/storage/memory.js';
import { runStorageConformance } from '../../support/storage-conformance.js';

runStorageConformance('memory', async () => ({ storage: new MemoryStorage('conformance') }), {
  atomicIfAbsent: true,
  atomicConcurrentOverwrite: true,
});
