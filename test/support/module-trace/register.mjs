// Preloaded with NODE_OPTIONS=--import=<this file> by test/integration/e2e/startup.test.ts: records
// the URL of every module the ESM loader loads into the file named by WALVAULT_TEST_MODULE_TRACE.
import { register } from 'node:module';

register(new URL('./hooks.mjs', import.meta.url));
