/**
 * The prefetch directory as wal-fetch uses it: take a prefetched file, move the cursor. Its own
 * module so that a cold wal-fetch does not load the prefetcher itself (and its queue library).
 */
import { readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import { tryClassifyWalFileName } from '../segment/names.js';

const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';
let cachedBootId: string | null | undefined;

/** The kernel's id of this boot (Linux), or null where there is none. */
export function bootId(): string | null {
  if (cachedBootId === undefined) {
    let id: string | null = null;
    try {
      const s = readFileSync(BOOT_ID_FILE, 'utf8').trim();
      if (/^[0-9a-f-]+$/.test(s)) id = s;
    } catch {
      // Not Linux, or no /proc: the directory is not bound to a boot.
    }
    cachedBootId = id;
  }
  return cachedBootId;
}

/**
 * `prefetch-<boot id>`: prefetched files are written without fsync (half of a prefetch's time on
 * a busy disk), which is safe only because no later boot looks in this directory. Without a crash
 * of the machine, the page cache shows every reader the whole renamed file; after one, the files
 * may be torn, and the next boot (new id, the launcher computes the same name) never hands them
 * to PostgreSQL. Where there is no boot id the directory is plain `prefetch` and files are fsynced.
 * PostgreSQL itself fsyncs a restored segment before it keeps it in pg_wal (durable_rename).
 */
export function prefetchDir(stateDir: string, boot: string | null = bootId()): string {
  return join(stateDir, boot === null ? 'prefetch' : `prefetch-${boot}`);
}

/** Prefetched files need an fsync before they are published: there is no boot id to bind them to. */
export function prefetchNeedsFsync(boot: string | null = bootId()): boolean {
  return boot === null;
}

/** Publishes a verified segment for the launcher: whole, by rename; fsynced only without a boot id. */
export async function publishPrefetched(dir: string, name: string, bytes: Uint8Array): Promise<void> {
  await writeFileAtomic(join(dir, name), bytes, 0o600, { durable: prefetchNeedsFsync() });
}

/** Prefetch directories of earlier boots (and a plain `prefetch` of older versions) in `stateDir`. */
export function otherBootsPrefetchDirs(stateDir: string, boot: string | null = bootId()): string[] {
  const mine = prefetchDir(stateDir, boot);
  let names: string[];
  try {
    names = readdirSync(stateDir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n === 'prefetch' || /^prefetch-[0-9a-f-]+$/.test(n))
    .map((n) => join(stateDir, n))
    .filter((d) => d !== mine);
}

export const CURSOR = '.cursor';

const FETCHING = '.fetching';

/**
 * `.<segment>.fetching` holds the pid of the prefetcher that has this segment queued or downloading.
 * The wal-fetch launcher waits in sh (no Node start) while the mark exists and that pid lives, for
 * the segment to be published by rename; once the mark is gone without a file (a failed or dropped
 * download), it runs the full program, which fetches the file itself and reports any failure.
 */
export function fetchingMark(dir: string, name: string): string {
  return join(dir, `.${name}${FETCHING}`);
}

/**
 * Marks `names` as being fetched by `pid`. Written whole by rename: the launcher never reads a
 * half-written pid. Marks are hints, not data: no fsync (after a crash the pid is dead, and the
 * launcher ignores a mark whose process is gone).
 */
export function markFetching(dir: string, names: readonly string[], pid: number): void {
  for (const name of names) {
    const mark = fetchingMark(dir, name);
    const tmp = `${mark}.${pid}`;
    writeFileSync(tmp, `${pid}\n`, { mode: 0o600 });
    renameSync(tmp, mark);
  }
}

/** Removes the mark of `name` (after its file was published, or its download failed or was dropped). */
export function clearFetching(dir: string, name: string): void {
  try {
    unlinkSync(fetchingMark(dir, name));
  } catch {
    // Already gone.
  }
}

/** Segment names that carry a fetching mark. */
export function fetchingNames(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith('.') && n.endsWith(FETCHING)).map((n) => n.slice(1, -FETCHING.length));
}

/** Records the name wal-fetch just served, and drops prefetched files it makes useless. */
export async function setCursor(stateDir: string, served: string): Promise<void> {
  const dir = prefetchDir(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(dir, CURSOR), Buffer.from(served), 0o600, { durable: prefetchNeedsFsync() });
  await dropStale(dir, served);
}

/** Moves a prefetched file into place; false when there is none. */
export async function takePrefetched(stateDir: string, fileName: string, dest: string): Promise<boolean> {
  try {
    await rename(join(prefetchDir(stateDir), fileName), dest);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    const code = (err as NodeJS.ErrnoException).code;
    // Another file system, or a prefetch directory this user may not change (left by a run as
    // another user, e.g. root): the prefetched copy is only a shortcut, so fetch from the archive.
    if (code === 'EXDEV' || code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR') return false;
    throw err;
  }
}

/** Removes temp files, files of other timelines, files at or before the cursor, and anything foreign. */
async function dropStale(dir: string, cursor: string): Promise<void> {
  const c = tryClassifyWalFileName(cursor);
  if (!c || c.kind !== 'segment') return;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    // Dot files are the cursor and the prefetcher's in-flight temp files (renamed into place when whole).
    if (name.startsWith('.')) continue;
    const k = tryClassifyWalFileName(name);
    const keep = k?.kind === 'segment' && k.timeline === c.timeline && name > cursor;
    if (!keep) await unlink(join(dir, name)).catch(() => undefined);
  }
}
