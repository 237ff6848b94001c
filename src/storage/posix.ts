/**
 * Posix driver: one file per object under a root directory.
 *
 * A put writes `.<name>.<pid>-<writer tag>.<random>.tmp` beside the target (key segments never start
 * with a dot, so the name cannot be a key and list() skips it; the pid and tag let a later put remove
 * a killed writer's leftover without touching a live writer's file, see common/temp-files.ts), fsyncs it, then renames it over the target, or, for
 * ifAbsent, hard-links it to the target (link never replaces; EEXIST means someone was first), and
 * fsyncs the directory. Directories are created 0700 and their parents fsynced, files are 0600,
 * whatever the umask (`posix-dir-mode`, `posix-file-mode`). Run as root (an operator's `walvault
 * check`), new files and directories are given the owner and group of the archive root, so that a
 * root-owned 0700 directory never locks the postgres user out later. A put that fails or is aborted
 * removes its temp file.
 *
 * The root must already exist: if an archive mount point is missing we refuse, instead of creating
 * an empty archive in its place; and a missing root never reads as "object not found" (for
 * restore_command that answer would end recovery early).
 */
import { promises as fs, statSync, type Dirent } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  AbortedError,
  ConfigError,
  NotFoundError,
  ObjectExistsError,
  StorageError,
  WalvaultError,
  describeCause,
} from '../common/errors.js';
// One directory fsync for every local file walvault creates; the alias keeps the call sites short.
import { fsyncDirectory as fsyncDir } from '../common/atomic-file.js';
import { sweepTempFilesOnce, tempNameFor } from '../common/temp-files.js';
import { bodyFailure, BodyError, chunksOf, guardedStream } from './body.js';
import { compareKeys, isValidKey, validateKey, validatePrefix } from './key.js';
import type { GetOptions, ListOptions, ObjectInfo, PutBody, PutOptions, Storage } from './types.js';

/** Files stat'ed per event-loop turn while listing. */
const STAT_BATCH = 128;

export interface PosixStorageOptions {
  /** Absolute path of an existing directory. */
  root: string;
  /** Mode of object files; default 0600. */
  fileMode?: number;
  /** Mode of directories the driver creates; default 0700. */
  dirMode?: number;
}

interface FsFailure {
  reason: string;
  retryable: boolean;
}

const FS_REASONS: Record<string, FsFailure> = {
  // Space is shared and comes back by itself (retention, PostgreSQL recycling WAL, other tenants), so
  // trying the same write again later can succeed without anyone changing walvault's setup.
  ENOSPC: { reason: 'no space left on device', retryable: true },
  EDQUOT: { reason: 'disk quota exceeded', retryable: true },
  EMFILE: { reason: 'too many open files', retryable: true },
  ENFILE: { reason: 'too many open files in the system', retryable: true },
  EAGAIN: { reason: 'resource temporarily unavailable', retryable: true },
  EBUSY: { reason: 'resource busy', retryable: true },
  EINTR: { reason: 'interrupted', retryable: true },
  ESTALE: { reason: 'stale NFS file handle', retryable: true },
  ETIMEDOUT: { reason: 'timed out', retryable: true },
  // These need someone to change permissions, mounts or paths first.
  EACCES: { reason: 'permission denied', retryable: false },
  EPERM: { reason: 'operation not permitted', retryable: false },
  EROFS: { reason: 'read-only file system', retryable: false },
  ENOTDIR: { reason: 'a parent of the key is an object, not a directory', retryable: false },
  EISDIR: { reason: 'a directory exists under that name', retryable: false },
  ENOTEMPTY: { reason: 'a directory exists under that name', retryable: false },
  ENAMETOOLONG: { reason: 'name too long', retryable: false },
  EIO: { reason: 'I/O error', retryable: false },
};

/** Reason and retryability of a file-system error, by its errno code. */
export function classifyFsError(err: unknown): FsFailure {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const known = code ? FS_REASONS[code] : undefined;
  if (known) return { reason: `${known.reason} (${code})`, retryable: known.retryable };
  return { reason: describeCause(err), retryable: false };
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * The owner to give new files and directories: the archive root's, when this process runs as root
 * and the root belongs to someone else; undefined = leave them ours (chown would fail anyway).
 */
export function ownerFor(
  rootUid: number,
  rootGid: number,
  euid: number | undefined = process.geteuid?.(),
): { uid: number; gid: number } | undefined {
  if (euid !== 0) return undefined;
  if (rootUid === 0 && rootGid === 0) return undefined;
  return { uid: rootUid, gid: rootGid };
}

function checkMode(name: string, mode: number): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new ConfigError(`unable to use posix storage option ${name}: '${String(mode)}' is not a file mode`);
  }
  return mode;
}

async function writeFully(handle: FileHandle, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await handle.write(data, off, data.length - off);
    off += bytesWritten;
  }
}

/**
 * The sticky bit on a directory inside the archive means "its entry may not be durable yet" (see
 * ensureDir); it has no other use in an archive, where one OS user owns everything.
 */
const PENDING_DIR_BIT = 0o1000;

export class PosixStorage implements Storage {
  readonly kind = 'posix';
  readonly description: string;
  readonly root: string;
  private readonly fileMode: number;
  private readonly dirMode: number;
  /** Directories whose entry chain up to the root this process has fsynced (or created and fsynced). */
  private readonly durableDirs = new Set<string>();
  /** Owner and group for what we create: the root's, when we run as root and it is someone else's. */
  private owner: { uid: number; gid: number } | undefined;

  constructor(opts: PosixStorageOptions) {
    if (!path.isAbsolute(opts.root)) {
      throw new ConfigError(`unable to use archive directory '${opts.root}': not an absolute path`);
    }
    this.root = path.resolve(opts.root);
    this.description = `file://${this.root}`;
    this.fileMode = checkMode('fileMode', opts.fileMode ?? 0o600);
    this.dirMode = checkMode('dirMode', opts.dirMode ?? 0o700);
    this.durableDirs.add(this.root);
  }

  private pathOf(key: string): string {
    return path.join(this.root, ...key.split('/'));
  }

  private failure(where: string, err: unknown): WalvaultError {
    if (err instanceof WalvaultError) return err;
    const { reason, retryable } = classifyFsError(err);
    return new StorageError(`${where}: ${reason}`, { cause: err, retryable });
  }

  /** Throws unless the root is an existing directory; a missing root is a setup problem, not "absent". */
  private async checkRoot(where: string): Promise<void> {
    let isDir: boolean;
    try {
      const st = await fs.stat(this.root);
      isDir = st.isDirectory();
      this.owner = ownerFor(st.uid, st.gid);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') {
        throw new StorageError(`${where}: archive directory '${this.root}' does not exist (create it, or mount it)`, {
          cause: err,
        });
      }
      throw this.failure(where, err);
    }
    if (!isDir) throw new StorageError(`${where}: archive path '${this.root}' is not a directory`);
  }

  /**
   * Creates missing directories between the root and `dir` so that their entries are durable when
   * this returns. A directory is created with the sticky bit set, which is cleared only after its
   * parent was fsynced: a directory without it has a durable entry, and so do all its ancestors
   * (its creator made sure of them first). A push into an existing directory therefore costs one
   * stat here, no fsync. A directory found with the bit still set (its creator is mid-way or was
   * killed) gets its parent fsynced here, and the bit cleared. When `dirMode` itself has the
   * sticky bit, existing directories cannot be told apart and every level's parent is fsynced once
   * per process, as before.
   */
  private async ensureDir(dir: string): Promise<void> {
    if (this.durableDirs.has(dir)) return;
    if (await this.publishedDir(dir)) {
      this.durableDirs.add(dir);
      return;
    }
    let parent = this.root;
    for (const segment of path.relative(this.root, dir).split(path.sep)) {
      const current = path.join(parent, segment);
      if (!this.durableDirs.has(current)) {
        let created = false;
        try {
          await fs.mkdir(current, this.dirMode | PENDING_DIR_BIT);
          created = true;
        } catch (err) {
          if (errnoOf(err) !== 'EEXIST') throw err;
        }
        if (created) {
          if (this.owner) await fs.chown(current, this.owner.uid, this.owner.gid);
          await fs.chmod(current, this.dirMode | PENDING_DIR_BIT);
        }
        if (created || !(await this.publishedDir(current))) {
          await fsyncDir(parent);
          await this.publish(current, created);
        }
        this.durableDirs.add(current);
      }
      parent = current;
    }
  }

  /** Whether `dir` exists with its entry (and its ancestors') known durable: no pending bit. */
  private async publishedDir(dir: string): Promise<boolean> {
    if (this.dirMode & PENDING_DIR_BIT) return false;
    try {
      const st = await fs.stat(dir);
      return st.isDirectory() && (st.mode & PENDING_DIR_BIT) === 0;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return false;
      throw err;
    }
  }

  /** Clears the pending bit once the entry is durable; someone else's directory may refuse (EPERM). */
  private async publish(dir: string, created: boolean): Promise<void> {
    if (this.dirMode & PENDING_DIR_BIT) return;
    try {
      if (created) await fs.chmod(dir, this.dirMode);
      else {
        const st = await fs.stat(dir);
        if (st.mode & PENDING_DIR_BIT) await fs.chmod(dir, st.mode & 0o7777 & ~PENDING_DIR_BIT);
      }
    } catch (err) {
      if (created) throw err;
      // Not ours to change: the next process fsyncs this parent again, which is only slower.
    }
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<void> {
    validateKey(key);
    const where = `unable to write object '${key}' to ${this.description}`;
    const { signal } = opts;
    const aborted = (): AbortedError => new AbortedError(`${where}: aborted`, { cause: signal?.reason });
    if (signal?.aborted) throw aborted();
    await this.checkRoot(where);
    const target = this.pathOf(key);
    const dir = path.dirname(target);
    const temp = path.join(dir, tempNameFor(path.basename(target)));
    let handle: FileHandle | undefined;
    let tempExists = false;
    try {
      await this.ensureDir(dir);
      // The first put into a directory in this process clears what killed writers left there.
      sweepTempFilesOnce(dir);
      handle = await fs.open(temp, 'wx', this.fileMode);
      tempExists = true;
      // open()'s mode is filtered by the umask; the archive's modes must not depend on who started us.
      // Owner first: chown clears set-id bits, and the object must appear (rename) with both right.
      if (this.owner) await handle.chown(this.owner.uid, this.owner.gid);
      await handle.chmod(this.fileMode);
      let written = 0;
      for await (const chunk of chunksOf(body, signal)) {
        await writeFully(handle, chunk);
        written += chunk.length;
      }
      if (signal?.aborted) throw aborted();
      if (opts.contentLength !== undefined && written !== opts.contentLength) {
        throw new StorageError(`${where}: body has ${written} bytes, expected ${opts.contentLength}`);
      }
      await handle.sync();
      await handle.close();
      handle = undefined;
      if (signal?.aborted) throw aborted();
      if (opts.ifAbsent) {
        try {
          await fs.link(temp, target);
        } catch (err) {
          if (errnoOf(err) === 'EEXIST') throw new ObjectExistsError(`${where}: it already exists`, { cause: err });
          throw err;
        }
      } else {
        await fs.rename(temp, target);
        tempExists = false;
      }
      await fsyncDir(dir);
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      if (err instanceof BodyError) throw signal?.aborted ? aborted() : bodyFailure(where, err);
      throw this.failure(where, err);
    } finally {
      if (handle) await handle.close().catch(() => undefined);
      if (tempExists) await fs.rm(temp, { force: true }).catch(() => undefined);
    }
  }

  private async openObject(key: string, where: string): Promise<{ handle: FileHandle; size: number }> {
    let handle: FileHandle;
    try {
      handle = await fs.open(this.pathOf(key), 'r');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') {
        await this.checkRoot(where);
        throw new NotFoundError(`${where}: not found`, { cause: err });
      }
      throw this.failure(where, err);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new NotFoundError(`${where}: not found (a directory has that name)`);
      return { handle, size: st.size };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw this.failure(where, err);
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    validateKey(key);
    const where = `unable to read object '${key}' from ${this.description}`;
    const { signal } = opts;
    if (signal?.aborted) throw new AbortedError(`${where}: aborted`, { cause: signal.reason });
    const { handle, size } = await this.openObject(key, where);
    return guardedStream(handle.createReadStream(), {
      expectedLength: size,
      signal,
      mapError: (err) => (signal?.aborted ? new AbortedError(`${where}: aborted`, { cause: signal.reason }) : this.failure(where, err)),
      lengthError: (actual, expected) =>
        new StorageError(`${where}: file changed while reading (${actual} of ${expected} bytes)`, { retryable: true }),
    });
  }

  async getBuffer(key: string, opts: GetOptions = {}): Promise<Buffer> {
    validateKey(key);
    const where = `unable to read object '${key}' from ${this.description}`;
    if (opts.signal?.aborted) throw new AbortedError(`${where}: aborted`, { cause: opts.signal.reason });
    const { handle } = await this.openObject(key, where);
    try {
      return await handle.readFile(opts.signal ? { signal: opts.signal } : {});
    } catch (err) {
      if (opts.signal?.aborted) throw new AbortedError(`${where}: aborted`, { cause: opts.signal.reason });
      throw this.failure(where, err);
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    validateKey(key);
    const where = `unable to stat object '${key}' in ${this.description}`;
    try {
      const st = await fs.stat(this.pathOf(key));
      return st.isFile() ? { key, size: st.size, mtime: st.mtime } : undefined;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') {
        await this.checkRoot(where);
        return undefined;
      }
      throw this.failure(where, err);
    }
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ObjectInfo> {
    validatePrefix(prefix);
    const where = `unable to list objects under '${prefix}' in ${this.description}`;
    await this.checkRoot(where);
    const slash = prefix.lastIndexOf('/');
    yield* this.walk(slash === -1 ? '' : prefix.slice(0, slash), prefix.slice(slash + 1), opts.startAfter, where);
  }

  /**
   * Depth-first, with each directory's entries sorted as if directories were named "<name>/": that
   * is exactly where their keys fall in the global byte order ('a-c' < 'a/b' because '-' < '/').
   */
  private async *walk(dirKey: string, namePrefix: string, startAfter: string | undefined, where: string): AsyncGenerator<ObjectInfo> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dirKey === '' ? this.root : this.pathOf(dirKey), { withFileTypes: true });
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return;
      throw this.failure(where, err);
    }
    const items = entries
      .filter((e) => !e.name.startsWith('.') && e.name.startsWith(namePrefix) && (e.isFile() || e.isDirectory()))
      .map((e) => ({ name: e.name, isDir: e.isDirectory(), sortName: e.isDirectory() ? `${e.name}/` : e.name }))
      .sort((a, b) => compareKeys(a.sortName, b.sortName));
    let files: string[] = [];
    for (const item of items) {
      const key = dirKey === '' ? item.name : `${dirKey}/${item.name}`;
      if (item.isDir) {
        yield* this.statFiles(files, where);
        files = [];
        const dirPrefix = `${key}/`;
        // Every key below sorts before startAfter: skip the whole subtree.
        if (startAfter !== undefined && !startAfter.startsWith(dirPrefix) && compareKeys(dirPrefix, startAfter) < 0) continue;
        yield* this.walk(key, '', startAfter, where);
        continue;
      }
      if (startAfter !== undefined && compareKeys(key, startAfter) <= 0) continue;
      // Names our keys can never produce (someone else's files) are not objects of this archive.
      if (!isValidKey(key)) continue;
      files.push(key);
    }
    yield* this.statFiles(files, where);
  }

  /**
   * Size and mtime of listed files, in order. statSync in batches: an awaited fs.stat per entry
   * cost ~60 µs of CPU each (a listing of 200k objects spent 12 s in it, against 2.5 s this way);
   * the event loop gets a turn between batches.
   */
  private async *statFiles(keys: readonly string[], where: string): AsyncGenerator<ObjectInfo> {
    for (let i = 0; i < keys.length; i += STAT_BATCH) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      const batch: ObjectInfo[] = [];
      for (const key of keys.slice(i, i + STAT_BATCH)) {
        try {
          const st = statSync(this.pathOf(key));
          batch.push({ key, size: st.size, mtime: st.mtime });
        } catch (err) {
          if (errnoOf(err) === 'ENOENT') continue; // deleted since readdir
          throw this.failure(where, err);
        }
      }
      yield* batch;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) validateKey(key);
    const dirs = new Set<string>();
    for (const key of keys) {
      const file = this.pathOf(key);
      try {
        await fs.unlink(file);
        dirs.add(path.dirname(file));
      } catch (err) {
        const code = errnoOf(err);
        // Absent, or only a directory of that name: no object to delete.
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') continue;
        throw this.failure(`unable to delete object '${key}' from ${this.description}`, err);
      }
    }
    for (const dir of dirs) {
      try {
        await fsyncDir(dir);
      } catch (err) {
        throw this.failure(`unable to delete objects from ${this.description}`, err);
      }
    }
  }

  async close(): Promise<void> {}
}
