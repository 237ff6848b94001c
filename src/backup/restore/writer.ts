/**
 * Downloads the packs a restore needs, in parallel (at most `parallel` at once and, beyond the
 * first, at most `bufferBytes` of decoded pack bytes held at once), decodes each into a reused
 * buffer (unit-slots.ts) and writes every piece at its offset in its file. The unit is a pack of
 * one backup (owner, number): an incremental chain's files read packs of several backups, each
 * downloaded once. A file counts as restored only after its check passed:
 * - a file held by one piece (small and medium files: nearly all of them) is hashed from the pack
 *   bytes before they are written, so a mismatch writes nothing;
 * - a file spread over several pieces in pack order (every large file of a full backup) is hashed
 *   from the pack bytes in file order as they are written (stream-hash.ts), and checked once its
 *   last piece is written;
 * - any other file spread over several pieces is re-read once its last piece is written (they
 *   arrive out of order, and holding them to hash in order would need unbounded memory);
 * - a file rebuilt from a PostgreSQL 17 INCREMENTAL file is checked against that file's SHA-256:
 *   its header (re-encoded from the parsed one) and the blocks it carries, read back from where
 *   they were written (every block of the newest increment lands in the rebuilt file);
 * - a literal (backup_label of an incremental backup, rewritten) was checked by the planner.
 * Then it is fsynced and gets its mode and mtime. Packs themselves are checked by
 * loadBackupObjectInto (size, codec, SHA-256, authenticated encryption) before any of their bytes
 * are used. Damage does not stop the other packs; it is reported together at the end, naming the
 * files. A pack buffer goes back to the pool only after every write reading from it has settled.
 */
import { createHash } from 'node:crypto';
import { chmod, lchown, open, utimes, type FileHandle } from 'node:fs/promises';
import type { ArchiveContext } from '../../archive/context.js';
import { CryptoError, IntegrityError, NotFoundError, describeCause } from '../../common/errors.js';
import { packRef, type Catalog, type CatalogEntry } from '../catalog.js';
import type { IncrementalHeader } from '../incremental/file-format.js';
import { loadBackupObjectInto } from '../objects.js';
import { PACK_SIZE } from '../packer.js';
import type { StoredRef } from '../record.js';
import { unitKey, type Piece } from './pieces.js';
import { StreamHash, hashFile, hashIncremental, streamable } from './stream-hash.js';
import type { Owner } from './target-dir.js';
import { UnitSlots } from './unit-slots.js';
import { Background } from './background.js';

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
  /** Set when the file is hashed from the pack bytes as they come (stream-hash.ts). */
  stream?: StreamHash;
}

const SHA_EMPTY = createHash('sha256').digest('hex');

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

/**
 * Runs `fn` over `items`, `width` at once, and settles only when every call has: a pack buffer is
 * reused after this returns, so no write may still be reading from it. The first error is thrown.
 */
async function inBatches<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let first: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        first ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  if (first) throw first.err;
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

/** The damage report for a pack that could not be read: the files it holds, and whose pack it is. */
function packDamage(backup: string, placed: readonly Placed[], err: unknown): IntegrityError {
  const files = [...new Set(placed.map((p) => p.state.task.rel))];
  const more = files.length > 1 ? ` (and ${files.length - 1} more file${files.length > 2 ? 's' : ''} in the same pack)` : '';
  const { owner, pack } = placed[0]!.piece;
  const where = owner === backup ? '' : ` (pack ${pack} of backup '${owner}', which it builds on)`;
  return new IntegrityError(`unable to restore file '${files[0]}' of backup '${backup}'${more}${where}: ${describeCause(err)}`, {
    cause: err,
  });
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
  // Oldest backup's packs last is no rule of correctness; pack order within a backup keeps reads sequential.
  const units = [...byUnit.keys()].sort((a, b) => {
    const pa = byUnit.get(a)![0]!.piece;
    const pb = byUnit.get(b)![0]!.piece;
    return pa.owner !== pb.owner ? (pa.owner < pb.owner ? -1 : 1) : pa.pack - pb.pack;
  });
  const order = new Map(units.map((k, i) => [k, i]));
  const streams: StreamHash[] = [];
  for (const state of prepared) {
    const { task } = state;
    if (task.check.kind !== 'sha256' || task.pieces.length < 2) continue;
    if (!streamable(task.pieces, task.size, (p) => order.get(unitKey(p.owner, p.pack))!)) continue;
    state.stream = new StreamHash(task.size);
    streams.push(state.stream);
  }
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

  const sizes = units.map((k) => refs.get(k)!.size);
  const width = Math.max(1, Math.min(opts.parallel, units.length));
  const slots = new UnitSlots(
    sizes,
    width,
    Math.min(
      PACK_SIZE,
      sizes.reduce((m, n) => Math.max(m, n), 0),
    ),
    opts.bufferBytes,
  );
  let failure: unknown;
  // Damage (a pack or a file whose checksum fails) does not stop the other packs: the operator gets
  // every damaged file at once, and a --delta run afterwards has only those left to fetch.
  const damaged: IntegrityError[] = [];
  const later = new Background(2);
  const handleUnit = async (key: string, buffer: Buffer): Promise<void> => {
    const placed = byUnit.get(key)!;
    let data: Buffer;
    try {
      data = await loadBackupObjectInto(ctx, refs.get(key)!, buffer);
    } catch (err) {
      for (const { state } of placed) state.stream?.giveUp();
      // A pack the catalog names but the archive lacks is damage to the backup, like a corrupt one.
      if (!(err instanceof IntegrityError || err instanceof CryptoError || err instanceof NotFoundError)) throw err;
      throw packDamage(backup, placed, err);
    }
    // Hashing first, in piece order (a file's stream hash needs its bytes in file order), then the writes.
    const writes: Placed[] = [];
    const bad: IntegrityError[] = [];
    for (const p of placed) {
      const { piece, state } = p;
      const slice = data.subarray(piece.packOffset, piece.packOffset + piece.length);
      if (isWhole(state.task)) {
        const sha = createHash('sha256').update(slice).digest('hex');
        if (state.task.check.kind === 'sha256' && sha !== state.task.check.sha256) {
          bad.push(mismatch(backup, state.task, sha));
          continue;
        }
      } else if (state.stream && !(await state.stream.add(piece.fileOffset, slice))) continue;
      writes.push(p);
    }
    await inBatches(writes, 8, async ({ piece, state }) => {
      const slice = data.subarray(piece.packOffset, piece.packOffset + piece.length);
      const { task } = state;
      const whole = isWhole(task);
      const handle = await open(task.abs, whole ? 'w' : 'r+', 0o600);
      try {
        await writeAll(handle, slice, piece.fileOffset);
      } finally {
        await handle.close();
      }
      state.remaining -= piece.length;
      // A whole file's bytes were hashed above; a streamed file's digest is complete with its last piece.
      const known = whole && task.check.kind === 'sha256' ? task.check.sha256 : state.stream?.digest;
      if (state.remaining === 0) later.push(() => finish(backup, state, opts, known));
    });
    if (bad.length > 0) throw bad[0]!;
  };
  const worker = async (): Promise<void> => {
    while (failure === undefined) {
      const slot = await slots.next();
      if (!slot) return;
      try {
        if (failure === undefined) await handleUnit(units[slot.index]!, slot.buffer);
      } catch (err) {
        if (err instanceof IntegrityError) damaged.push(err);
        else {
          failure ??= err;
          // Packs waiting for this one's bytes of a file would wait for ever.
          for (const s of streams) s.giveUp();
        }
      } finally {
        slot.release();
      }
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  await later.drain();
  for (const err of later.errors) {
    if (err instanceof IntegrityError) damaged.push(err);
    else failure ??= err;
  }
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
