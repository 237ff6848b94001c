/**
 * archive_command's work for one file: answer from a look-ahead marker when one vouches for the
 * file, else give a running uploader a moment to finish it, else upload it here. When other files
 * wait and no uploader runs, the detached look-ahead uploader is started first, before this call
 * uploads its own file: it boots while this upload runs, so the next calls find markers instead of
 * each paying a cold push.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from '../common/log.js';
import { lockHolderAlive, tryLock } from '../common/pid-lock.js';
import type { Config } from '../config/load.js';
import { openArchive } from '../archive/open.js';
import { pushFile } from '../archive/push.js';
import type { AheadSummary } from './ahead.js';
import { readyFiles } from './ready.js';
import { consumeMarker, waitForMarker } from './markers.js';
import { handoverFile, stateDirFor, stateDirForWalPath } from './state-dir.js';

/** The detached uploader stops after this long without new `.ready` files. */
export const DETACHED_AHEAD_IDLE_MS = 5000;

export interface StartAhead {
  readonly walDir: string;
  readonly pgdata: string;
  readonly stateDir: string;
  readonly waiting: number;
  /** The file this call uploads itself: the uploader leaves it alone. */
  readonly exclude: string;
}

export interface WalPushResult {
  readonly how: 'marker' | 'running-uploader' | 'uploaded';
}

export interface WalPushHooks {
  /** Starts the detached uploader (`wal-push-ahead`); called when other files wait and none runs. */
  readonly startAhead?: (s: StartAhead) => void;
}

export async function walPush(
  config: Config,
  log: Logger,
  signal: AbortSignal,
  path: string,
  hooks: WalPushHooks = {},
): Promise<WalPushResult> {
  const abs = resolve(path);
  const name = basename(abs);
  const walDir = dirname(abs);
  // Undefined when not inside a data directory (an operator pushing a loose file): no markers then.
  const stateDir = stateDirForWalPath(abs);
  if (stateDir && (await consumeMarker(stateDir, name, abs))) {
    log.info({ segment: name }, 'already archived by the look-ahead uploader');
    return { how: 'marker' };
  }
  // A running daemon (or detached uploader) usually has this file in flight: give it a moment to
  // finish rather than uploading the same bytes twice; upload ourselves if it does not.
  if (stateDir && lockHolderAlive(aheadLock(stateDir)) && (await waitForMarker(stateDir, name, abs))) {
    log.info({ segment: name }, 'archived by the running uploader');
    return { how: 'running-uploader' };
  }
  if (stateDir && config['push-lookahead'] > 0 && hooks.startAhead && !lockHolderAlive(aheadLock(stateDir))) {
    const waiting = (await readyFiles(walDir)).filter((n) => n !== name).length;
    if (waiting > 0) hooks.startAhead({ walDir, pgdata: dirname(walDir), stateDir, waiting, exclude: name });
  }
  const archive = await openArchive(config, log, signal);
  try {
    await pushFile(archive, abs, name);
  } finally {
    await archive.storage.close();
  }
  return { how: 'uploaded' };
}

/** One bounded look-ahead run (the detached helper); undefined when another uploader holds the lock. */
export async function runDetachedAhead(
  config: Config,
  log: Logger,
  signal: AbortSignal,
  walDir: string,
  exclude?: string,
): Promise<AheadSummary | undefined> {
  const stateDir = stateDirFor(dirname(resolve(walDir)));
  const release = tryLock(aheadLock(stateDir));
  if (!release) return undefined;
  try {
    const { runAhead } = await import('./ahead.js');
    const archive = await openArchive(config, log, signal);
    try {
      return await runAhead(archive, {
        walDir: resolve(walDir),
        stateDir,
        concurrency: config['push-parallel'],
        compressThreads: config['push-compress-threads'],
        // Runs until the queue has been empty for a while (not a fixed count: every new run costs a
        // Node start and a cold push), at most `push-lookahead` files ahead of the archiver, and
        // hands over to a daemon that asks for the lock.
        maxFiles: Number.POSITIVE_INFINITY,
        maxAhead: config['push-lookahead'],
        idleMs: DETACHED_AHEAD_IDLE_MS,
        stopRequested: () => existsSync(handoverFile(stateDir)),
        ...(exclude !== undefined ? { exclude } : {}),
      });
    } finally {
      await archive.storage.close();
    }
  } finally {
    release();
  }
}

/** The lock the daemon and the detached uploader share: while one runs, wal-push starts none. */
function aheadLock(stateDir: string): string {
  return join(stateDir, 'ahead.pid');
}
