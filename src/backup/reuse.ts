/**
 * Chunk reuse (issue 13): the sink layer in front of BackupPacker that stores by reference what
 * the parent backup already holds. A file whose (tablespace, path) is in the parent with piece
 * checksums (`chunks`, or for a file of at most CHUNK_BYTES its size and SHA-256) is compared piece
 * by piece as it arrives: at most one CHUNK_BYTES piece is held back and hashed; when it equals the
 * parent's piece at the same offset, the parent's extents for that range (resolved to the backup
 * that owns the bytes, never chained) are recorded instead of the bytes. Every other piece goes to
 * the packs as usual. On PostgreSQL 13-16, whose servers send every file whole, this is the whole
 * incremental; on 17 it also catches the files the server sends whole.
 *
 * Every backup goes through this layer, full ones with no parent, so each file over CHUNK_BYTES
 * gets its `chunks` and the next incremental can compare against it.
 */
import { createHash, type Hash } from 'node:crypto';
import { IntegrityError } from '../common/errors.js';
import { CHUNK_BYTES, extentOwner, type Catalog, type Extent } from './catalog.js';
import type { BackupEnd, BackupEntrySink, BackupStart, EntryHeader } from './entry-sink.js';
import type { EntryExtras } from './packer.js';

/** An extent that names the backup whose packs hold it. */
export type OwnedExtent = readonly [pack: number, offset: number, length: number, owner: string];

/** What the reuse layer knows of one file of the parent. */
export interface ParentFile {
  readonly size: number;
  /** SHA-256 of each CHUNK_BYTES piece (one piece, the whole file, for a file up to CHUNK_BYTES). */
  readonly pieces: readonly string[];
  readonly extents: readonly OwnedExtent[];
}

export interface ReuseIndex {
  readonly parent: string;
  readonly files: ReadonlyMap<string, ParentFile>;
}

/** What the reuse layer needs of the packer behind it. */
export interface PackingSink extends BackupEntrySink {
  reference(chunk: Buffer, extents: readonly Extent[]): Promise<void>;
  entryEnd(extras?: EntryExtras): Promise<void>;
}

const fileKey = (tablespace: number | null, path: string): string => `${tablespace ?? ''}\0${path}`;

/** The parent catalog's files that can be compared piece by piece, extents resolved to their owners. */
export function reuseIndex(parent: string, catalog: Catalog): ReuseIndex {
  const files = new Map<string, ParentFile>();
  for (const e of catalog.entries) {
    if (e.type !== 'file' || e.size === 0 || e.sha256 === null) continue;
    const pieces = e.chunks ?? (e.size <= CHUNK_BYTES ? [e.sha256] : undefined);
    if (!pieces) continue; // a format 1 file over CHUNK_BYTES: nothing to compare with
    const extents = e.extents.map((x): OwnedExtent => [x[0], x[1], x[2], extentOwner(parent, x)]);
    files.set(fileKey(e.tablespace, e.path), { size: e.size, pieces, extents });
  }
  return { parent, files };
}

/** The extents covering bytes [from, from + length) of a file stored as `extents`. */
export function sliceExtents(extents: readonly OwnedExtent[], from: number, length: number, what: string): OwnedExtent[] {
  const out: OwnedExtent[] = [];
  const end = from + length;
  let pos = 0;
  for (const [pack, offset, len, owner] of extents) {
    const a = Math.max(from, pos);
    const b = Math.min(end, pos + len);
    if (a < b) out.push([pack, offset + (a - pos), b - a, owner]);
    pos += len;
    if (pos >= end) break;
  }
  const covered = out.reduce((n, x) => n + x[2], 0);
  if (covered !== length) {
    throw new IntegrityError(`unable to reuse '${what}' from the parent backup: its extents end after ${pos} bytes, ${end} needed`);
  }
  return out;
}

interface OpenFile {
  readonly header: EntryHeader;
  readonly parent: ParentFile | undefined;
  /** Piece checksums of this file (kept for files over CHUNK_BYTES only). */
  readonly chunks: string[] | undefined;
  /** Streaming mode (no parent to compare with): the hash of the piece being received. */
  hash: Hash | undefined;
  /** Bytes of the current piece received so far. */
  fill: number;
  piece: number;
}

export interface ReuseOptions {
  /** The parent's comparable files; null for a full backup (chunks are still recorded). */
  readonly index: ReuseIndex | null;
  /** A PostgreSQL 17 incremental backup: mark `INCREMENTAL.<name>` files as such in the catalog. */
  readonly markIncremental: boolean;
}

export class ReuseSink implements BackupEntrySink {
  private open: OpenFile | undefined;
  /** The held-back piece (only for files the parent has); reused from file to file. */
  private held: Buffer | undefined;

  constructor(
    private readonly packer: PackingSink,
    private readonly opts: ReuseOptions,
  ) {}

  begin(start: BackupStart): Promise<void> {
    return this.packer.begin(start);
  }

  async entry(header: EntryHeader): Promise<void> {
    await this.packer.entry(header);
    if (header.type !== 'file') return;
    const parent = this.opts.index?.files.get(fileKey(header.tablespace, header.path));
    this.open = {
      header,
      parent,
      chunks: header.size > CHUNK_BYTES ? [] : undefined,
      hash: undefined,
      fill: 0,
      piece: 0,
    };
  }

  async data(chunk: Buffer): Promise<void> {
    const f = this.open;
    // The packer reports data outside a file; hand it on so the error is its usual one.
    if (!f) return this.packer.data(chunk);
    if (f.parent) return this.holdBack(f, chunk);
    if (f.chunks) {
      for (let off = 0; off < chunk.length;) {
        const take = Math.min(chunk.length - off, CHUNK_BYTES - f.fill);
        (f.hash ??= createHash('sha256')).update(chunk.subarray(off, off + take));
        f.fill += take;
        off += take;
        if (f.fill === CHUNK_BYTES) this.endStreamedPiece(f);
      }
    }
    return this.packer.data(chunk);
  }

  async entryEnd(): Promise<void> {
    const f = this.open;
    if (f && f.fill > 0) {
      if (f.parent) await this.flushHeld(f);
      else this.endStreamedPiece(f);
    }
    this.open = undefined;
    const extras: { chunks?: readonly string[]; incremental?: true } = {};
    if (f?.chunks) extras.chunks = f.chunks;
    if (f && this.opts.markIncremental && isIncrementalName(f.header.path)) extras.incremental = true;
    return this.packer.entryEnd(extras);
  }

  manifest(chunk: Buffer): Promise<void> {
    return this.packer.manifest(chunk);
  }

  progress(doneBytes: number): void {
    this.packer.progress(doneBytes);
  }

  end(end: BackupEnd): Promise<void> {
    return this.packer.end(end);
  }

  private endStreamedPiece(f: OpenFile): void {
    f.chunks?.push((f.hash ?? createHash('sha256')).digest('hex'));
    f.hash = undefined;
    f.fill = 0;
    f.piece++;
  }

  private async holdBack(f: OpenFile, chunk: Buffer): Promise<void> {
    const held = (this.held ??= Buffer.allocUnsafe(CHUNK_BYTES));
    for (let off = 0; off < chunk.length;) {
      const take = Math.min(chunk.length - off, CHUNK_BYTES - f.fill);
      chunk.copy(held, f.fill, off, off + take);
      f.fill += take;
      off += take;
      if (f.fill === CHUNK_BYTES) await this.flushHeld(f);
    }
  }

  /** Stores the held piece by reference when the parent has the same bytes at that offset, else in packs. */
  private async flushHeld(f: OpenFile): Promise<void> {
    const bytes = this.held!.subarray(0, f.fill);
    const digest = createHash('sha256').update(bytes).digest('hex');
    f.chunks?.push(digest);
    const parent = f.parent!;
    if (parent.pieces[f.piece] === digest) {
      const from = f.piece * CHUNK_BYTES;
      await this.packer.reference(bytes, sliceExtents(parent.extents, from, bytes.length, f.header.path));
    } else {
      await this.packer.data(bytes);
    }
    f.fill = 0;
    f.piece++;
  }
}

/** `INCREMENTAL.<name>` as the last path element (catalog.ts accepts the flag only there). */
function isIncrementalName(path: string): boolean {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return base.startsWith('INCREMENTAL.') && base.length > 'INCREMENTAL.'.length;
}
