/**
 * Downloads the packs a restore needs, in parallel (at most `parallel` at once and, beyond the
 * first, at most `bufferBytes` of decoded pack bytes held at once) and writes every extent at its
 * offset in its file. A file counts as restored only after its SHA-256 matched the catalog:
 * - a file held by one extent (small and medium files: nearly all of them) is hashed from the
 *   pack bytes before they are written, so a mismatch writes nothing;
 * - a file spread over several packs is re-read once its last extent is written (its extents
 *   arrive out of order, and holding them to hash in order would need unbounded memory).
 * Then it is fsynced and gets its mode and mtime. Packs themselves are checked by loadBackupObject
 * (size, codec, SHA-256, authenticated encryption) before any of their bytes are used. Damage does
 * not stop the other packs; it is reported together at the end, naming the files.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lchown, open, utimes, type FileHandle } from 'node:fs/promises';
import type { ArchiveContext } from '../../archive/context.js';
import { CryptoError, IntegrityError, describeCause } from '../../common/errors.js';
import { packRef, type Catalog, type CatalogEntry } from '../catalog.js';
import { loadBackupObject } from '../objects.js';
import type { Owner } from './target-dir.js';

export interface FileTask {
  readonly entry: CatalogEntry;
  /** Path relative to the data directory, as reported to the operator. */
  readonly rel: string;
  /** Where the bytes are written (global/pg_control goes to a temporary name first). */
  readonly abs: string;
}

export interface WriteOptions {
  readonly parallel: number;
  readonly bufferBytes: number;
  readonly owner?: Owner | undefined;
  readonly onFileDone?: (task: FileTask) => void;
}

interface Piece {
  readonly state: FileState;
  readonly packOffset: number;
  readonly fileOffset: number;
  readonly length: number;
}

interface FileState {
  readonly task: FileTask;
  remaining: number;
}

const SHA_EMPTY = createHash('sha256').digest('hex');

async function hashFile(abs: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(abs)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function mismatch(backup: string, task: FileTask, got: string): IntegrityError {
  return new IntegrityError(
    `unable to restore file '${task.rel}' of backup '${backup}': SHA-256 mismatch (restored ${got}, catalog ${task.entry.sha256})`,
  );
}

/** Mode, mtime and owner as backed up; explicit chmod because open() modes pass through the umask. */
export async function applyMeta(abs: string, entry: CatalogEntry, owner: Owner | undefined): Promise<void> {
  await chmod(abs, entry.mode);
  await utimes(abs, entry.mtime, entry.mtime);
  if (owner) await lchown(abs, owner.uid, owner.gid);
}

async function finish(backup: string, state: FileState, opts: WriteOptions, knownSha?: string): Promise<void> {
  const { task } = state;
  const sha = knownSha ?? (await hashFile(task.abs));
  if (sha !== task.entry.sha256) throw mismatch(backup, task, sha);
  const handle = await open(task.abs, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await applyMeta(task.abs, task.entry, opts.owner);
  opts.onFileDone?.(task);
}

/**
 * Writes all of `data` at `position`. A write can be short (a file system that is filling up
 * returns what fitted before it reports ENOSPC); counting it as done would leave a hole that only
 * the checksum would catch, as "damage" instead of "disk full".
 */
async function writeAll(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    done += bytesWritten;
  }
}

/** A small counting semaphore over bytes: one pack always fits, so a pack larger than the budget still runs alone. */
class ByteBudget {
  private used = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(private readonly cap: number) {}
  async acquire(n: number): Promise<void> {
    while (this.used > 0 && this.used + n > this.cap) await new Promise<void>((r) => this.waiters.push(r));
    this.used += n;
  }
  release(n: number): void {
    this.used -= n;
    for (const w of this.waiters.splice(0)) w();
  }
}

async function inBatches<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

/** Writes and verifies `tasks` (files of `catalog`); the files' directories must exist. */
export async function writeFiles(
  ctx: ArchiveContext,
  backup: string,
  catalog: Catalog,
  tasks: readonly FileTask[],
  opts: WriteOptions,
): Promise<{ bytes: number; packs: number }> {
  const byPack = new Map<number, Piece[]>();
  const multi: FileState[] = [];
  let bytes = 0;
  for (const task of tasks) {
    const state: FileState = { task, remaining: task.entry.size };
    bytes += task.entry.size;
    let fileOffset = 0;
    for (const [pack, packOffset, length] of task.entry.extents) {
      const list = byPack.get(pack) ?? [];
      list.push({ state, packOffset, fileOffset, length });
      byPack.set(pack, list);
      fileOffset += length;
    }
    if (task.entry.extents.length !== 1) multi.push(state);
  }
  // Empty files and files written piecewise exist (empty, mode 0600 until finished) before any pack arrives.
  await inBatches(multi, 8, async (state) => {
    const handle = await open(state.task.abs, 'w', 0o600);
    await handle.close();
    if (state.task.entry.size === 0) await finish(backup, state, opts, SHA_EMPTY);
  });

  const packs = [...byPack.keys()].sort((a, b) => a - b);
  const budget = new ByteBudget(opts.bufferBytes);
  let next = 0;
  let failure: unknown;
  // Damage (a pack or a file whose checksum fails) does not stop the other packs: the operator gets
  // every damaged file at once, and a --delta run afterwards has only those left to fetch.
  const damaged: IntegrityError[] = [];
  const handlePack = async (pack: number): Promise<void> => {
    const ref = packRef(backup, catalog, pack);
    const pieces = byPack.get(pack)!;
    let data: Buffer;
    try {
      data = await loadBackupObject(ctx, ref);
    } catch (err) {
      if (!(err instanceof IntegrityError || err instanceof CryptoError)) throw err;
      const files = [...new Set(pieces.map((p) => p.state.task.rel))];
      const more = files.length > 1 ? ` (and ${files.length - 1} more file${files.length > 2 ? 's' : ''} in the same pack)` : '';
      throw new IntegrityError(`unable to restore file '${files[0]}' of backup '${backup}'${more}: ${describeCause(err)}`, { cause: err });
    }
    await inBatches(pieces, 8, async (piece) => {
      const slice = data.subarray(piece.packOffset, piece.packOffset + piece.length);
      const { task } = piece.state;
      if (task.entry.extents.length === 1) {
        const sha = createHash('sha256').update(slice).digest('hex');
        if (sha !== task.entry.sha256) throw mismatch(backup, task, sha);
        const handle = await open(task.abs, 'w', 0o600);
        try {
          await writeAll(handle, slice, 0);
          await handle.sync();
        } finally {
          await handle.close();
        }
        piece.state.remaining = 0;
        await applyMeta(task.abs, task.entry, opts.owner);
        opts.onFileDone?.(task);
        return;
      }
      const handle = await open(task.abs, 'r+');
      try {
        await writeAll(handle, slice, piece.fileOffset);
      } finally {
        await handle.close();
      }
      piece.state.remaining -= piece.length;
      if (piece.state.remaining === 0) await finish(backup, piece.state, opts);
    });
  };
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < packs.length) {
      const pack = packs[next++]!;
      const size = catalog.packs[pack - 1]?.size ?? 0;
      await budget.acquire(size);
      try {
        if (failure === undefined) await handlePack(pack);
      } catch (err) {
        if (err instanceof IntegrityError) damaged.push(err);
        else failure ??= err;
      } finally {
        budget.release(size);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.parallel, packs.length)) }, worker));
  if (failure !== undefined) throw failure;
  if (damaged.length === 1) throw damaged[0]!;
  if (damaged.length > 1) {
    throw new IntegrityError(
      `${damaged[0]!.message}; ${damaged.length - 1} more damaged: ${damaged
        .slice(1)
        .map((e) => e.message)
        .join('; ')}`,
      {
        cause: damaged[0],
      },
    );
  }
  return { bytes, packs: packs.length };
}
