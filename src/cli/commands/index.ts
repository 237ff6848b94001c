import type { Command } from 'commander';
import type { RunFn } from '../context.js';
import { registerConfig } from './config.js';
import { registerSegment } from './segment.js';
import { registerWalPush } from './wal-push.js';
import { registerWalFetch } from './wal-fetch.js';
import { registerStream } from './stream.js';
import { registerWalList } from './wal-list.js';
import { registerWalShow } from './wal-show.js';
import { registerWalVerify } from './wal-verify.js';
import { registerWalDelete } from './wal-delete.js';
import { registerWalResolve } from './wal-resolve.js';
import { registerCheck } from './check.js';
import { registerStatus } from './status.js';
import { registerDaemon } from './daemon.js';
import { registerIdentityRebuild } from './identity-rebuild.js';
import { registerRestore } from './restore.js';

export function registerCommands(program: Command, run: RunFn): void {
  registerWalPush(program, run);
  registerWalFetch(program, run);
  registerStream(program, run);
  registerDaemon(program, run);
  registerSegment(program, run);
  registerConfig(program, run);
  registerWalList(program, run);
  registerWalShow(program, run);
  registerWalVerify(program, run);
  registerWalDelete(program, run);
  registerWalResolve(program, run);
  registerCheck(program, run);
  registerStatus(program, run);
  registerIdentityRebuild(program, run);
  registerRestore(program, run);
}
