import type { Command } from 'commander';
import type { RunFn } from '../context.js';
import { registerConfig } from './config.js';
import { registerSegment } from './segment.js';
import { registerWalPush } from './wal-push.js';
import { registerWalFetch } from './wal-fetch.js';
import { registerStream } from './stream.js';
import { registerDemo } from './demo.js';

export function registerCommands(program: Command, run: RunFn): void {
  registerWalPush(program, run);
  registerWalFetch(program, run);
  registerStream(program, run);
  registerDemo(program, run);
  registerSegment(program, run);
  registerConfig(program, run);
}
