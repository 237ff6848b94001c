/**
 * The BackupEntrySink that stores a base backup as it arrives: file contents are appended back to
 * back into packs of PACK_SIZE original bytes (small files share a pack, a large file spans
 * several), each full pack is stored and verified with storeBackupObject by a bounded upload queue,
 * and the catalog records every entry with its extents. Nothing is kept on local disk.
 *
 * Memory is bounded whatever the database size: one pack being filled plus at most
 * `maxInFlightBytes` of sealed packs being encoded and uploaded. When that budget is used up,
 * `data()` does not return until an upload finishes, so the source stops reading from the server
 * (the BackupEntrySink contract) and TCP pushes back on the walsender.
 */
import { createHash, type Hash } from 'node:crypto';
import PQueue from 'p-queue';
import type { ArchiveContext } from '../archive/context.js';
import { getCodec } from '../codec/codec.js';
import { ReplicationError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { encodeCatalog, restoredPath, type CatalogEntry, type Extent, type PackInfo } from './catalog.js';
import { parsePgManifest, type ManifestFile } from './pg-manifest.js';
import type { BackupEnd, BackupEntrySink, BackupStart, EntryHeader } from './entry-sink.js';
import { catalogKey, manifestKey, packKey } from './layout.js';
import { sealBackupObject } from './object-encode.js';
import { storeBackupObject, storeEncodedObject } from './objects.js';
import { PackEncoder } from './pack-encoder.js';
import type { StoredRef } from './record.js';

/**
 * 8 MiB of original bytes per pack: large enough that object-store requests stay few (about 128
 * per GiB, and S3 PUT latency is amortised), small enough that a pack being filled, two or three in
 * upload and their encoded copies stay far below the 100 MiB RSS target.
 */
export const PACK_SIZE = 8 * 1024 * 1024;
/** Cap on sealed pack bytes in flight, whatever the upload parallelism (4 packs of 8 MiB). */
export const MAX_IN_FLIGHT_BYTES = 32 * 1024 * 1024;

export interface PackerOptions {
  readonly name: string;
  readonly systemId: string;
  /** Concurrent pack uploads (setting `backup-upload-parallel`). */
  readonly parallel: number;
  readonly packSize?: number;
  /** Sealed pack bytes allowed in flight; default min(parallel * packSize, MAX_IN_FLIGHT_BYTES). */
  readonly maxInFlightBytes?: number;
  /** zstd threads per pack being compressed (setting `backup-compress-threads`); 0 = the main thread. */
  readonly compressThreads?: number;
  /** Called with the bytes done so far (server progress or bytes received, whichever is larger). */
  readonly onProgress?: (doneBytes: number) => void;
  /**
   * Where each file's `sha256` comes from. 'computed' (the default): hashed here as the bytes
   * arrive. 'manifest': taken from PostgreSQL's backup_manifest (MANIFEST_CHECKSUMS 'SHA256', the
   * server's SHA-256 of the bytes it sent, verified by the manifest's own checksum) when the stream
   * ends, so no pass over the file bytes is spent on it here; a file the manifest does not give a
   * SHA-256 of the same size for fails the backup. Restore and backup-verify check every restored
   * file against it, so the check runs from the server's read to the restored file.
   */
  readonly fileChecksums?: 'computed' | 'manifest';
}

/** What the packer stored, for backup.json. */
export interface PackedBackup {
  readonly start: BackupStart;
  readonly end: BackupEnd;
  readonly entries: number;
  readonly files: number;
  readonly rawBytes: number;
  readonly storedBytes: number;
  readonly packs: number;
  readonly catalog: StoredRef;
  readonly manifest: StoredRef | null;
  /** Content of the data directory's backup_label (the server synthesises it; sent first). */
  readonly backupLabel: string;
  /** Raw file bytes per tablespace oid (null = data directory). */
  readonly tablespaceBytes: ReadonlyMap<number | null, number>;
  /** File bytes recorded by reference to earlier backups' packs (reference()), and those backups, sorted. */
  readonly reusedBytes: number;
  readonly depends: readonly string[];
}

/** Catalog fields of format 2 that the layer in front of the packer (reuse.ts) knows at a file's end. */
export interface EntryExtras {
  readonly chunks?: readonly string[];
  readonly incremental?: true;
}

interface OpenFile {
  readonly header: EntryHeader;
  /** Unset when the checksum comes from PostgreSQL's manifest. */
  readonly hash: Hash | undefined;
  readonly extents: Extent[];
  received: number;
  /** Kept for backup_label only (a few hundred bytes). */
  readonly keep: Buffer[] | undefined;
}

export class BackupPacker implements BackupEntrySink {
  private readonly packSize: number;
  private readonly maxInFlight: number;
  private readonly queue: PQueue;
  private readonly entries: CatalogEntry[] = [];
  private readonly packs: PackInfo[] = [];
  private readonly tablespaceBytes = new Map<number | null, number>();
  private readonly manifestChunks: Buffer[] = [];
  /** The pack being filled (and compressed as it fills). */
  private readonly filling: PackEncoder;
  private packNo = 1;
  private open: OpenFile | undefined;
  private start: BackupStart | undefined;
  private backupLabel = '';
  private files = 0;
  private rawBytes = 0;
  private storedBytes = 0;
  private receivedBytes = 0;
  private serverProgress = 0;
  private inFlight = 0;
  private reusedBytes = 0;
  private readonly depends = new Set<string>();
  private failure: unknown;
  private waiters: (() => void)[] = [];
  private result: PackedBackup | undefined;
  /** Largest sealed-pack bytes in flight seen (tests check the bound). */
  maxInFlightSeen = 0;

  constructor(
    private readonly ctx: ArchiveContext,
    private readonly opts: PackerOptions,
    private readonly log: Logger,
  ) {
    this.packSize = opts.packSize ?? PACK_SIZE;
    this.maxInFlight = Math.max(this.packSize, opts.maxInFlightBytes ?? Math.min(opts.parallel * this.packSize, MAX_IN_FLIGHT_BYTES));
    this.queue = new PQueue({ concurrency: Math.max(1, opts.parallel) });
    const codec = getCodec(ctx.compression.name, ctx.compression.level);
    this.filling = new PackEncoder(codec, opts.compressThreads ?? 0, this.packSize);
  }

  /** The stored backup, once end() resolved. */
  get packed(): PackedBackup {
    if (!this.result) throw new Error('BackupPacker.packed read before end()');
    return this.result;
  }

  async begin(start: BackupStart): Promise<void> {
    this.start = start;
  }

  async entry(header: EntryHeader): Promise<void> {
    this.check();
    if (this.open) throw this.protocol(`entry '${header.path}' began before '${this.open.header.path}' ended`);
    if (header.type !== 'file') {
      this.entries.push({ ...header, size: 0, sha256: null, extents: [] });
      return;
    }
    const isLabel = header.tablespace === null && header.path === 'backup_label';
    const hash = this.opts.fileChecksums === 'manifest' ? undefined : createHash('sha256');
    this.open = { header, hash, extents: [], received: 0, keep: isLabel ? [] : undefined };
  }

  async data(chunk: Buffer): Promise<void> {
    this.check();
    const f = this.open;
    if (!f) throw this.protocol('file data outside a file');
    if (f.received + chunk.length > f.header.size) {
      throw this.protocol(`file '${f.header.path}' got more than its ${f.header.size} bytes`);
    }
    f.hash?.update(chunk);
    f.keep?.push(Buffer.from(chunk));
    f.received += chunk.length;
    this.receivedBytes += chunk.length;
    this.reportProgress();
    let off = 0;
    while (off < chunk.length) {
      if (this.filling.full) await this.seal();
      const at = this.filling.length;
      const take = await this.filling.write(off === 0 ? chunk : chunk.subarray(off));
      const last = f.extents[f.extents.length - 1];
      // Consecutive bytes in the same pack extend the file's last extent (never a reference's).
      if (last && last[3] === undefined && last[0] === this.packNo && last[1] + last[2] === at) {
        f.extents[f.extents.length - 1] = [last[0], last[1], last[2] + take];
      } else {
        f.extents.push([this.packNo, at, take]);
      }
      off += take;
    }
  }

  /**
   * The next bytes of the current file, already stored in earlier backups' packs: hashed like
   * data(), recorded as the given owner extents (which must cover exactly `chunk.length` bytes)
   * instead of being packed again.
   */
  async reference(chunk: Buffer, extents: readonly Extent[]): Promise<void> {
    this.check();
    const f = this.open;
    if (!f) throw this.protocol('file data outside a file');
    if (f.received + chunk.length > f.header.size) {
      throw this.protocol(`file '${f.header.path}' got more than its ${f.header.size} bytes`);
    }
    let covered = 0;
    for (const x of extents) {
      const owner = x[3];
      if (owner === undefined || owner === this.opts.name) throw this.protocol(`a reference of '${f.header.path}' names no earlier backup`);
      covered += x[2];
      const last = f.extents[f.extents.length - 1];
      if (last && last[3] === owner && last[0] === x[0] && last[1] + last[2] === x[1]) {
        f.extents[f.extents.length - 1] = [last[0], last[1], last[2] + x[2], owner];
      } else {
        f.extents.push([x[0], x[1], x[2], owner]);
      }
      this.depends.add(owner);
    }
    if (covered !== chunk.length) throw this.protocol(`a reference of '${f.header.path}' covers ${covered} of ${chunk.length} bytes`);
    f.hash?.update(chunk);
    f.received += chunk.length;
    this.receivedBytes += chunk.length;
    this.reusedBytes += chunk.length;
    this.reportProgress();
  }

  async entryEnd(extras: EntryExtras = {}): Promise<void> {
    this.check();
    const f = this.open;
    if (!f) throw this.protocol('end of a file that never began');
    if (f.received !== f.header.size) throw this.protocol(`file '${f.header.path}' ended after ${f.received} of ${f.header.size} bytes`);
    this.open = undefined;
    if (f.keep) this.backupLabel = Buffer.concat(f.keep).toString('utf8');
    // With checksums from the manifest, end() fills sha256 in (the manifest comes after every archive).
    this.entries.push({ ...f.header, sha256: f.hash ? f.hash.digest('hex') : '', extents: f.extents, ...extras });
    this.files++;
    this.rawBytes += f.header.size;
    this.tablespaceBytes.set(f.header.tablespace, (this.tablespaceBytes.get(f.header.tablespace) ?? 0) + f.header.size);
  }

  async manifest(chunk: Buffer): Promise<void> {
    this.check();
    this.manifestChunks.push(Buffer.from(chunk));
  }

  progress(doneBytes: number): void {
    this.serverProgress = doneBytes;
    this.reportProgress();
  }

  async end(end: BackupEnd): Promise<void> {
    this.check();
    if (!this.start) throw this.protocol('end without begin');
    if (this.open) throw this.protocol(`the stream ended inside file '${this.open.header.path}'`);
    if (this.filling.length > 0) await this.seal();
    await this.queue.onIdle();
    this.check();
    const name = this.opts.name;
    const manifestBytes = this.manifestChunks.length > 0 ? Buffer.concat(this.manifestChunks) : undefined;
    if (this.opts.fileChecksums === 'manifest') this.checksumsFromManifest(manifestBytes);
    // Packs are all verified in storage before the catalog that points into them is written.
    const catalog = await storeBackupObject(this.ctx, catalogKey(name), encodeCatalog(name, this.catalogSnapshot()), this.opts.systemId);
    this.storedBytes += catalog.storedBytes;
    let manifest: StoredRef | null = null;
    if (manifestBytes) {
      const stored = await storeBackupObject(this.ctx, manifestKey(name), manifestBytes, this.opts.systemId);
      this.storedBytes += stored.storedBytes;
      manifest = stored.ref;
    }
    this.result = {
      start: this.start,
      end,
      entries: this.entries.length,
      files: this.files,
      rawBytes: this.rawBytes,
      storedBytes: this.storedBytes,
      packs: this.packs.length,
      catalog: catalog.ref,
      manifest,
      backupLabel: this.backupLabel,
      tablespaceBytes: this.tablespaceBytes,
      reusedBytes: this.reusedBytes,
      depends: [...this.depends].sort(),
    };
  }

  /** Bytes of file content received and bytes stored so far (progress, heartbeat). */
  get stats(): { receivedBytes: number; storedBytes: number; packs: number } {
    return { receivedBytes: this.receivedBytes, storedBytes: this.storedBytes, packs: this.packs.length };
  }

  /** Waits for uploads already started (after a failure, before leftovers are reported). */
  async settle(): Promise<void> {
    this.queue.clear();
    await this.queue.onIdle();
  }

  /** Fills every file entry's sha256 with PostgreSQL's (fileChecksums 'manifest'). */
  private checksumsFromManifest(bytes: Buffer | undefined): void {
    if (!bytes) throw this.protocol('the server sent no backup_manifest to take the file checksums from');
    const byPath = new Map<string, ManifestFile>();
    for (const m of parsePgManifest(bytes, manifestKey(this.opts.name)).files) byPath.set(m.path, m);
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.type !== 'file') continue;
      const path = restoredPath(e);
      const m = byPath.get(path);
      if (!m || m.algorithm !== 'SHA256' || m.checksum === null || !/^[0-9a-f]{64}$/.test(m.checksum)) {
        throw this.protocol(`PostgreSQL's backup_manifest gives no SHA-256 of '${path}'`);
      }
      if (m.size !== e.size) throw this.protocol(`'${path}' has ${e.size} bytes, PostgreSQL's backup_manifest says ${m.size}`);
      this.entries[i] = { ...e, sha256: m.checksum };
    }
  }

  private catalogSnapshot(): { packs: PackInfo[]; entries: CatalogEntry[]; depends: string[] } {
    return { packs: this.packs, entries: this.entries, depends: [...this.depends] };
  }

  /**
   * Ends the pack being filled and hands it to the upload queue; waits first while the in-flight
   * budget is used up. Sealed packs hold only their compressed bytes; the budget still counts their
   * original size, so it bounds memory whatever the data's compressibility.
   */
  private async seal(): Promise<void> {
    const size = this.filling.length;
    while (this.inFlight + size > this.maxInFlight) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      this.check();
    }
    const pack = this.packNo;
    // The slot is reserved now so the pack list stays in pack order whatever order uploads finish in.
    const index = this.packs.length;
    this.packs.push({ sha256: '', size });
    this.inFlight += size;
    this.maxInFlightSeen = Math.max(this.maxInFlightSeen, this.inFlight);
    this.packNo++;
    const release = (): void => {
      this.inFlight -= size;
      const waiting = this.waiters;
      this.waiters = [];
      for (const w of waiting) w();
    };
    let sealed: Awaited<ReturnType<PackEncoder['seal']>>;
    try {
      sealed = await this.filling.seal();
    } catch (err) {
      release();
      throw err;
    }
    const key = packKey(this.opts.name, pack);
    void this.queue
      .add(async () => {
        const encoded = sealBackupObject(this.ctx, key, { size }, sealed.compressor, this.opts.systemId);
        const stored = await storeEncodedObject(this.ctx, key, encoded);
        this.packs[index] = {
          sha256: stored.ref.sha256,
          size: stored.ref.size,
          ...(stored.ref.digest ? { digest: stored.ref.digest } : {}),
        };
        this.storedBytes += stored.storedBytes;
        this.log.debug({ key, bytes: size, stored: stored.storedBytes }, 'pack stored');
      })
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(release);
  }

  private reportProgress(): void {
    this.opts.onProgress?.(Math.max(this.serverProgress, this.receivedBytes));
  }

  /** A failed upload fails the backup at the next call, so the source stops reading. */
  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private protocol(reason: string): ReplicationError {
    return new ReplicationError(`unable to store base backup '${this.opts.name}': ${reason}`);
  }
}
