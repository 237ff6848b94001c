/**
 * Downloads the packs a restore needs, in parallel (at most `parallel` at once and, beyond the
 * first, at most `bufferBytes` of decoded pack bytes held at once) and writes every piece at its
 * offset in its file. The unit is a pack of one backup (owner, number): an incremental chain's
 * files read packs of several backups, each downloaded once. A file counts as restored only after
 * its check passed:
 * - a file held by one piece (small and medium files: nearly all of them) is hashed from the pack
 *   bytes before they are written, so a mismatch writes nothing;
 * - a file spread over several pieces is re-read once its last piece is written (they arrive out
 *   of order, and holding them to hash in order would need unbounded memory);
 * - a file rebuilt from a PostgreSQL 17 INCREMENTAL file is checked against that file's SHA-256:
 *   its header (re-encoded from the parsed one) and the blocks it carries, read back from where
 *   they were written (every block of the newest increment lands in the rebuilt file);
 * - a literal (backup_label of an incremental backup, rewritten) was checked by the planner.
 * Then it is fsynced and gets its mode and mtime. Packs themselves are checked by loadBackupObject
 * (size, codec, SHA-256, authenticated encryption) before any of their bytes are used. Damage does
 * not stop the other packs; it is reported together at the end, naming the files.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lchown, open, utimes, type FileHandle } from 'node:fs/promises';
import type { ArchiveContext } from '../../archive/context.js';
import { CryptoError, IntegrityError, NotFoundError, describeCause } from '../../common/errors.js';
import { packRef, type Catalog, type CatalogEntry } from '../catalog.js';
import { BLCKSZ, encodeIncrementalHeader, type IncrementalHeader } from '../incremental/file-format.js';
import { loadBackupObject } from '../objects.js';
import type { StoredRef } from '../record.js';
import { unitKey, type Piece } from './pieces.js';
import type { Owner } from './target-dir.js';

export type FileCheck =
  /** SHA-256 of the restored file's bytes. */
  | { readonly kind: 'sha256'; readonly sha256: string }
  /** Rebuilt from `source` (an INCREMENTAL file of the restored backup) whose SHA-256 is `sha256`. */
  | { readonly kind: 'incremental'; readonly sha256: string; readonly header: IncrementalHeader; readonly source: string }
  /** Bytes already read and checked; written as they are. */
  | { readonly kind: 'literal'; readonly content: Buffer };

export interface FileTask {
  /** Mode and mtime of the restored file. */
  readonly entry: CatalogEntry;
  /** Path relative to the data directory, as reported to the operator. */
  readonly rel: string;
  /** Where the bytes are written (global/pg_control goes to a temporary name first). */
  readonly abs: string;
  readonly size: number;
  /** Sorted by file offset; what they do not cover is zeros. */
  readonly pieces: readonly Piece[];
  readonly check: FileCheck;
}

export interface WriteOptions {
  readonly parallel: number;
  readonly bufferBytes: number;
  readonly owner?: Owner | undefined;
  readonly onFileDone?: (task: FileTask) => void;
}

interface Placed {
  readonly state: FileState;
  readonly piece: Piece;
}

interface FileState {
  readonly task: FileTask;
  /** Bytes of pieces not written yet. */
  remaining: number;
}

const SHA_EMPTY = createHash('sha256').digest('hex');

async function hashFile(abs: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(abs)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** SHA-256 of the INCREMENTAL file a rebuilt file came from: its header, then its blocks from where they landed. */
async function hashIncremental(abs: string, header: IncrementalHeader): Promise<string> {
  const hash = createHash('sha256').update(encodeIncrementalHeader(header));
  const handle = await open(abs, 'r');
  try {
    const buf = Buffer.alloc(BLCKSZ);
    for (const b of header.blockNumbers) {
      const { bytesRead } = await handle.read(buf, 0, BLCKSZ, b * BLCKSZ);
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

function mismatch(backup: string, task: FileTask, got: string): IntegrityError {
  const check = task.check;
  if (check.kind === 'incremental') {
    return new IntegrityError(
      `unable to restore file '${task.rel}' of backup '${backup}': SHA-256 mismatch of '${check.source}' (restored ${got}, catalog ${check.sha256})`,
    );
  }
  const want = check.kind === 'sha256' ? check.sha256 : '(literal)';
  return new IntegrityError(
    `unable to restore file '${task.rel}' of backup '${backup}': SHA-256 mismatch (restored ${got}, catalog ${want})`,
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
  const check = task.check;
  if (check.kind !== 'literal') {
    const sha = knownSha ?? (check.kind === 'incremental' ? await hashIncremental(task.abs, check.header) : await hashFile(task.abs));
    if (sha !== check.sha256) throw mismatch(backup, task, sha);
  }
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

/** A file written from one piece that is the whole file: hashed before it is written. */
function isWhole(task: FileTask): boolean {
  return task.check.kind === 'sha256' && task.pieces.length === 1 && task.pieces[0]!.length === task.size && task.size > 0;
}

/** Every pack the tasks read, with its reference; a pack no catalog lists, or a piece beyond its pack, is damage before any download. */
function unitRefs(backup: string, catalogs: ReadonlyMap<string, Catalog>, byUnit: ReadonlyMap<string, Placed[]>): Map<string, StoredRef> {
  const refs = new Map<string, StoredRef>();
  for (const [key, placed] of byUnit) {
    const { owner, pack } = placed[0]!.piece;
    const catalog = catalogs.get(owner);
    const file = placed[0]!.state.task.rel;
    if (!catalog) {
      throw new IntegrityError(
        `unable to restore file '${file}' of backup '${backup}': it needs backup '${owner}', which is not available`,
      );
    }
    const ref = packRef(owner, catalog, pack);
    for (const { piece, state } of placed) {
      if (piece.packOffset + piece.length > ref.size) {
        throw new IntegrityError(
          `unable to restore file '${state.task.rel}' of backup '${backup}': its bytes lie outside pack ${pack} of backup '${owner}'`,
        );
      }
    }
    refs.set(key, ref);
  }
  return refs;
}

/** Writes and verifies `tasks` (files of `backup`, reading packs of the backups in `catalogs`); the files' directories must exist. */
export async function writeFiles(
  ctx: ArchiveContext,
  backup: string,
  catalogs: ReadonlyMap<string, Catalog>,
  tasks: readonly FileTask[],
  opts: WriteOptions,
): Promise<{ bytes: number; packs: number }> {
  const byUnit = new Map<string, Placed[]>();
  const prepared: FileState[] = [];
  let bytes = 0;
  for (const task of tasks) {
    const state: FileState = { task, remaining: task.pieces.reduce((n, p) => n + p.length, 0) };
    bytes += task.size;
    for (const piece of task.pieces) {
      const key = unitKey(piece.owner, piece.pack);
      const list = byUnit.get(key) ?? [];
      list.push({ state, piece });
      byUnit.set(key, list);
    }
    if (!isWhole(task)) prepared.push(state);
  }
  const refs = unitRefs(backup, catalogs, byUnit);
  // Files written piecewise exist at their full size (zeros where no piece goes, mode 0600 until
  // finished) before any pack arrives; those no pack contributes to are finished here.
  await inBatches(prepared, 8, async (state) => {
    const { task } = state;
    const handle = await open(task.abs, 'w', 0o600);
    try {
      if (task.check.kind === 'literal') await writeAll(handle, task.check.content, 0);
      else if (task.size > 0) await handle.truncate(task.size);
    } finally {
      await handle.close();
    }
    if (state.remaining === 0) await finish(backup, state, opts, task.size === 0 && task.check.kind === 'sha256' ? SHA_EMPTY : undefined);
  });

  // Oldest backup's packs last is no rule of correctness; pack order within a backup keeps reads sequential.
  const units = [...byUnit.keys()].sort((a, b) => {
    const pa = byUnit.get(a)![0]!.piece;
    const pb = byUnit.get(b)![0]!.piece;
    return pa.owner !== pb.owner ? (pa.owner < pb.owner ? -1 : 1) : pa.pack - pb.pack;
  });
  const budget = new ByteBudget(opts.bufferBytes);
  let next = 0;
  let failure: unknown;
  // Damage (a pack or a file whose checksum fails) does not stop the other packs: the operator gets
  // every damaged file at once, and a --delta run afterwards has only those left to fetch.
  const damaged: IntegrityError[] = [];
  const handleUnit = async (key: string): Promise<void> => {
    const ref = refs.get(key)!;
    const placed = byUnit.get(key)!;
    let data: Buffer;
    try {
      data = await loadBackupObject(ctx, ref);
    } catch (err) {
      // A pack the catalog names but the archive lacks is damage to the backup, like a corrupt one.
      if (!(err instanceof IntegrityError || err instanceof CryptoError || err instanceof NotFoundError)) throw err;
      const files = [...new Set(placed.map((p) => p.state.task.rel))];
      const more = files.length > 1 ? ` (and ${files.length - 1} more file${files.length > 2 ? 's' : ''} in the same pack)` : '';
      const { owner, pack } = placed[0]!.piece;
      const where = owner === backup ? '' : ` (pack ${pack} of backup '${owner}', which it builds on)`;
      throw new IntegrityError(`unable to restore file '${files[0]}' of backup '${backup}'${more}${where}: ${describeCause(err)}`, {
        cause: err,
      });
    }
    await inBatches(placed, 8, async ({ piece, state }) => {
      const slice = data.subarray(piece.packOffset, piece.packOffset + piece.length);
      const { task } = state;
      if (isWhole(task)) {
        const sha = createHash('sha256').update(slice).digest('hex');
        if (task.check.kind === 'sha256' && sha !== task.check.sha256) throw mismatch(backup, task, sha);
        const handle = await open(task.abs, 'w', 0o600);
        try {
          await writeAll(handle, slice, 0);
          await handle.sync();
        } finally {
          await handle.close();
        }
        state.remaining = 0;
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
      state.remaining -= piece.length;
      if (state.remaining === 0) await finish(backup, state, opts);
    });
  };
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < units.length) {
      const key = units[next++]!;
      const size = refs.get(key)!.size;
      await budget.acquire(size);
      try {
        if (failure === undefined) await handleUnit(key);
      } catch (err) {
        if (err instanceof IntegrityError) damaged.push(err);
        else failure ??= err;
      } finally {
        budget.release(size);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.parallel, units.length)) }, worker));
  if (failure !== undefined) throw failure;
  if (damaged.length === 1) throw damaged[0]!;
  if (damaged.length > 1) {
    throw new IntegrityError(
      `${damaged[0]!.message}; ${damaged.length - 1} more damaged: ${damaged
        .slice(1)
        .map((e) => e.message)
        .join('; ')}`,
      { cause: damaged[0] },
    );
  }
  return { bytes, packs: units.length };
}
