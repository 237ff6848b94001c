/**
 * Names for our temp files, and the sweep that removes the ones a killed process left behind.
 *
 * Every file we write atomically goes through `.<final name>.<pid>-<writer tag>.<random>.tmp` in the
 * target's directory. The writer tag is a hash of hostname, boot id and pid namespace: exactly the
 * scope in which `kill(pid, 0)` tells whether that pid is alive. So a later run can decide safely:
 *
 *   - same tag, pid alive (or our own pid): a live writer; never removed, however old;
 *   - same tag, pid gone: a leftover of a killed process; removed at once (pids are reused, but the
 *     file was made by the dead one: a new process with that pid makes a file with another random part);
 *   - another tag (another host sharing an NFS archive, another container, a boot before a crash)
 *     and names of earlier walvault versions (no tag): liveness cannot be checked, so only a file left
 *     unmodified for STALE_FOREIGN_MS is removed. A live writer rewrites nothing for that long only if
 *     it is stuck, and removing its temp then costs a failed, retried write, never data.
 *
 * Nothing else is ever touched: only names that match these patterns exactly, and only regular files.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync, lstatSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** How long a temp file whose writer cannot be checked must sit unmodified before it is removed. */
export const STALE_FOREIGN_MS = 60 * 60 * 1000;

let cachedTag: string | undefined;

/** Identifies this host, boot and pid namespace (10 hex digits). */
export function writerTag(): string {
  if (cachedTag === undefined) {
    const read = (f: () => string): string => {
      try {
        return f().trim();
      } catch {
        return '';
      }
    };
    const bootId = read(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));
    const pidNs = read(() => readlinkSync('/proc/self/ns/pid'));
    cachedTag = createHash('sha256').update(`${hostname()}\0${bootId}\0${pidNs}`).digest('hex').slice(0, 10);
  }
  return cachedTag;
}

/** The temp name for writing `finalName` (a base name) in this process. */
export function tempNameFor(finalName: string): string {
  return `.${finalName}.${process.pid}-${writerTag()}.${randomBytes(4).toString('hex')}.tmp`;
}

export interface ParsedTempName {
  readonly target: string;
  /** Writer pid and tag; undefined for names of earlier versions (no tag, cannot be checked). */
  readonly pid?: number;
  readonly tag?: string;
}

const CURRENT = /^\.(.+)\.(\d{1,10})-([0-9a-f]{10})\.[0-9a-f]{8}\.tmp$/;
/** Earlier versions: writeFileAtomic's `.<name>.<pid>.<8 hex>.tmp`, the posix driver's `.<name>.<12 hex>.tmp`. */
const LEGACY = [/^\.(.+)\.\d{1,10}\.[0-9a-f]{8}\.tmp$/, /^\.(.+)\.[0-9a-f]{12}\.tmp$/];

export function parseTempName(name: string): ParsedTempName | undefined {
  const m = CURRENT.exec(name);
  if (m) return { target: m[1]!, pid: Number(m[2]), tag: m[3]! };
  for (const re of LEGACY) {
    const l = re.exec(name);
    if (l) return { target: l[1]! };
  }
  return undefined;
}

/** True unless the pid certainly does not exist (EPERM: it exists, someone else's). */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export interface SweepOptions {
  /** Only temps of final names this accepts (e.g. WAL file names in pg_wal). */
  readonly target?: (finalName: string) => boolean;
  readonly now?: number;
}

/** Whether the temp file `name` (its mtime given) is a dead writer's leftover. */
export function isLeftover(name: string, mtimeMs: number, opts: SweepOptions = {}): boolean {
  const parsed = parseTempName(name);
  if (!parsed || (opts.target && !opts.target(parsed.target))) return false;
  if (parsed.tag === writerTag() && parsed.pid !== undefined) return !pidAlive(parsed.pid);
  return (opts.now ?? Date.now()) - mtimeMs >= STALE_FOREIGN_MS;
}

/**
 * Removes dead writers' temp files from `dir`; returns their names. Synchronous on purpose: it runs
 * once per directory and process (a readdir of a few thousand names at most), also from constructors.
 * Errors are swallowed: a sweep must never fail the write or start-up it precedes.
 */
export function sweepTempFiles(dir: string, opts: SweepOptions = {}): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.endsWith('.tmp') || !parseTempName(name)) continue;
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (!st.isFile() || !isLeftover(name, st.mtimeMs, opts)) continue;
      unlinkSync(path);
      removed.push(name);
    } catch {
      // Gone already (a concurrent sweep, or its writer renamed it into place): nothing to do.
    }
  }
  return removed;
}

const sweptDirs = new Set<string>();

/** sweepTempFiles, at most once per directory in this process (for write paths). */
export function sweepTempFilesOnce(dir: string, opts: SweepOptions = {}): string[] {
  if (sweptDirs.has(dir)) return [];
  sweptDirs.add(dir);
  return sweepTempFiles(dir, opts);
}
