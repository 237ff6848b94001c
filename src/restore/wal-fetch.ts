/**
 * restore_command's work for one file: take it from the prefetch directory when the prefetcher got
 * it, else restore it from the archive (falling back to the streaming agent's `.partial` for the
 * newest segment when allowed), move the prefetch cursor, and have the detached prefetcher started
 * when none runs. That happens as soon as the archive is known to hold the file, before this call
 * downloads it: the first calls of a recovery would otherwise each pay a cold download while the
 * prefetcher is still booting.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NotFoundError, NotInArchiveError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { lockHolderAlive, tryLock } from '../common/pid-lock.js';
import type { Config } from '../config/load.js';
import { openArchive } from '../archive/open.js';
import { stateDirFor, stateDirForWalPath } from '../push/state-dir.js';
import { readIdentity } from '../archive/identity.js';
import { SegmentName, classifyWalFileName } from '../segment/names.js';
import { fetchFile, restoreFile } from './fetch.js';
import type { ArchiveContext } from '../archive/context.js';
import { dataDirOfWalPath, readSystemIdentifier } from '../postgres/pgdata.js';

/** The prefetcher exits after this long without a new request from wal-fetch. */
export const PREFETCH_IDLE_MS = 30_000;
/** How soon the prefetcher asks again for a segment the archive did not have yet. */
export const PREFETCH_MISSING_RETRY_MS = 2_000;
/** Downloads at once, at most (and never more than the prefetch depth). */
export const PREFETCH_MAX_CONCURRENCY = 4;

export interface StartPrefetcher {
  readonly pgdata: string;
  readonly stateDir: string;
}

export interface WalFetchResult {
  readonly how: 'prefetch' | 'archive' | 'partial';
}

export interface WalFetchHooks {
  /**
   * Starts the detached prefetcher (`wal-prefetch`); called when prefetching is on and none runs.
   * Returns its pid when known: the first window is then marked as being fetched by it.
   */
  readonly startPrefetcher?: (s: StartPrefetcher) => number | undefined;
}

export async function walFetch(
  config: Config,
  log: Logger,
  signal: AbortSignal,
  name: string,
  path: string,
  hooks: WalFetchHooks = {},
): Promise<WalFetchResult> {
  const pgdata = dataDirOfWalPath(path);
  const kind = classifyWalFileName(name).kind;
  const dest = resolve(path);
  const stateDir = pgdata === undefined ? undefined : stateDirForWalPath(path);
  const prefetching = stateDir !== undefined && kind === 'segment' && config['fetch-prefetch'] > 0;
  const { markFetching, prefetchDir, publishPrefetched, setCursor, takePrefetched } = await import('./prefetch-dir.js');
  if (prefetching && (await takePrefetched(stateDir, name, dest))) {
    log.info({ segment: name }, 'restored from prefetch');
    return { how: 'prefetch' };
  }
  const systemId = pgdata === undefined ? undefined : readSystemIdentifier(pgdata);
  const opts = systemId ? { expectedSystemId: systemId } : {};
  // Inside a data directory this is restore_command: PostgreSQL makes the file durable itself.
  const durable = pgdata === undefined;
  /** The segment after this one, when this call started the prefetcher (see bridgeBoot). */
  let bridge: string | undefined;
  // The cursor says "served": the prefetcher works from the segment after this one.
  const startPrefetching = async (): Promise<void> => {
    if (!prefetching || pgdata === undefined) return;
    try {
      await setCursor(stateDir, name);
      if (lockHolderAlive(prefetchLock(stateDir))) return;
      const pid = hooks.startPrefetcher?.({ pgdata, stateDir });
      // The next calls come while the prefetcher still boots (a Node start): marked now, they wait
      // for its downloads in the launcher instead of each starting Node. It adopts or drops the marks.
      archive.identity ??= await readIdentity(archive.storage);
      const segSize = archive.identity?.walSegSize;
      if (pid !== undefined && segSize !== undefined) {
        const served = SegmentName.parse(name, segSize);
        const next = Array.from(
          { length: config['fetch-prefetch'] },
          (_, i) => SegmentName.of(served.timeline, served.segno + BigInt(i + 1), segSize).name,
        );
        markFetching(prefetchDir(stateDir), next, pid);
        bridge = next[0];
      }
    } catch (err) {
      // Prefetching is a shortcut: a state directory this user cannot use (created by another user,
      // read-only, full) must not fail a restore_command whose file is in the archive.
      log.warn({ err, stateDir }, 'prefetch is off for this call: the state directory is not usable (see WALVAULT_STATE_DIR)');
    }
  };
  const archive = await openArchive(config, log, signal);
  try {
    try {
      await fetchFile(archive, name, dest, { ...opts, durable, onFound: startPrefetching });
    } catch (err) {
      if (!(err instanceof NotInArchiveError && kind === 'segment' && config['fetch-partial'])) throw err;
      // The newest WAL may exist only as the streaming agent's .partial (zero-padded to full size).
      await fetchFile(archive, `${name}.partial`, dest, { ...opts, durable });
      log.warn({ segment: name }, `served ${name}.partial: recovery ends inside this segment`);
      return { how: 'partial' };
    }
    if (bridge !== undefined && stateDir !== undefined) {
      await bridgeBoot(archive, prefetchDir(stateDir), bridge, opts, publishPrefetched, log);
    }
  } finally {
    await archive.storage.close();
  }
  return { how: 'archive' };
}

/**
 * The call that starts the prefetcher also downloads the next segment into the prefetch directory
 * before it returns: the next restore_command comes a replayed segment later, while the prefetcher
 * (a Node start and an archive open) is still booting, and it then finds the file instead of waiting
 * most of a second for the prefetcher's first download. The prefetcher skips a file already there.
 * Best effort: any failure leaves the segment to the prefetcher or to the next call.
 */
async function bridgeBoot(
  archive: ArchiveContext,
  dir: string,
  name: string,
  opts: { expectedSystemId?: string },
  publish: (dir: string, name: string, bytes: Uint8Array) => Promise<void>,
  log: Logger,
): Promise<void> {
  try {
    const restored = await restoreFile(archive, name, opts);
    if (existsSync(join(dir, name))) return;
    await publish(dir, name, restored.bytes);
    log.info({ segment: name }, 'fetched the next segment ahead while the prefetcher starts');
  } catch (err) {
    if (!(err instanceof NotFoundError)) log.debug({ segment: name, err }, 'the next segment is left to the prefetcher');
  }
}

/** The detached prefetcher's whole run; returns at once when another one holds the lock. */
export async function runPrefetchHelper(config: Config, log: Logger, signal: AbortSignal, dataDir: string): Promise<void> {
  const pgdata = resolve(dataDir);
  const stateDir = stateDirFor(pgdata);
  const release = tryLock(prefetchLock(stateDir));
  if (!release) return;
  const { runPrefetcher } = await import('./prefetch.js');
  try {
    const archive = await openArchive(config, log, signal);
    try {
      const systemId = readSystemIdentifier(pgdata);
      const depth = config['fetch-prefetch'];
      await runPrefetcher(archive, {
        stateDir,
        depth,
        concurrency: Math.min(PREFETCH_MAX_CONCURRENCY, Math.max(1, depth)),
        idleMs: PREFETCH_IDLE_MS,
        missingRetryMs: PREFETCH_MISSING_RETRY_MS,
        // Lets the prefetcher stop as soon as recovery ends (no recovery.signal / standby.signal).
        pgdata,
        ...(systemId ? { expectedSystemId: systemId } : {}),
      });
    } finally {
      await archive.storage.close();
    }
  } finally {
    release();
  }
}

function prefetchLock(stateDir: string): string {
  return join(stateDir, 'prefetch.pid');
}
