/**
 * The streaming agent's local spool: received WAL is written at its offset into
 * `<segment>.partial` (full-sized, like pg_wal files), fsynced, and renamed to `<segment>` when the
 * segment is complete, which makes it byte-identical to the server's file. Finished segments wait
 * here until they are durably archived; only then are they deleted.
 *
 * Received bytes are copied into a 1 MiB staging buffer that covers one 1 MiB-aligned window of the
 * segment; what is staged is written with one pwrite when the window fills, at a segment's end, and
 * before every fsync or status report: one system call per MiB rather than one per CopyData message
 * (walsenders send at most 128 kB per message, usually much less). Nothing staged was ever reported
 * as written or flushed. A full window is then handed, uncopied, to the open segment's encoder (hash,
 * page check, compression; see segment-encoder.ts), which gives the buffer back when done with it. Writes are synchronous on purpose: they happen inside the socket's data callback, so the
 * socket is not read while the disk is busy (natural backpressure) and the received chunk, a view
 * into node-postgres's reusable buffer, is consumed before anything else runs.
 */
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { LocalIoError, ReplicationError, describeCause } from '../common/errors.js';
import { fsyncDirectorySync } from '../common/atomic-file.js';
import { sweepTempFiles } from '../common/temp-files.js';
import { lsn, type Lsn } from '../segment/lsn.js';
import { SegmentName, tryClassifyWalFileName } from '../segment/names.js';
import type { CompressionSpec } from '../codec/codec.js';
import { SegmentEncoder, type SegmentEncoding } from './segment-encoder.js';

export interface FinishedFile {
  readonly name: string;
  readonly path: string;
  /** What the segment's encoder made of it while it was received (undefined: archive from the file). */
  readonly encoding?: Promise<SegmentEncoding | undefined>;
}

interface OpenSegment {
  readonly segment: SegmentName;
  readonly fd: number;
  readonly encoder: SegmentEncoder | undefined;
  /** Next byte expected, absolute (staged bytes included). */
  received: Lsn;
  /** Everything before this is written to the file. */
  written: Lsn;
  /** Everything before this is fsynced. */
  synced: Lsn;
}

/** A multiple of every WAL block size, and a divisor of every segment size: windows tile a segment. */
const STAGE_BYTES = 1 << 20;
/** Windows kept for reuse: the compressor may hold one or two while the next fills. */
const STAGE_POOL = 3;

/**
 * Creates the spool directory (if needed) and checks that it is writable. The agent calls it before
 * it first connects: a spool it cannot use is a configuration problem to report at once, not a
 * reason to retry the replication connection forever.
 */
export function prepareSpoolDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new LocalIoError(`unable to create spool directory '${dir}': ${describeCause(err)}`, { cause: err });
  }
}

export class Spool {
  private current: OpenSegment | undefined;
  private stage: Buffer = Buffer.allocUnsafe(STAGE_BYTES);
  /** Bytes of the window received, and of those the ones written to the file. */
  private staged = 0;
  private stagedWritten = 0;
  /** Windows the encoders gave back, for reuse (at most STAGE_POOL). */
  private readonly pool: Buffer[] = [];

  /** `encode`: encode each segment as it arrives for this compression (undefined: do not). */
  constructor(
    readonly dir: string,
    readonly segSize: number,
    private readonly encode?: CompressionSpec,
    /** zstd threads for the encoders (see segment-encoder.ts). */
    private readonly compressThreads = 0,
  ) {
    prepareSpoolDir(dir);
    // History files written by a killed agent (segments are resumed in place, never via temps).
    sweepTempFiles(dir);
  }

  /** End of the received data (staged bytes included). */
  get receivedEnd(): Lsn | undefined {
    return this.current?.received;
  }

  /** End of the data written to the file: what a status update may call written. */
  get writtenEnd(): Lsn | undefined {
    return this.current?.written;
  }

  /** End of the fsynced data in the open segment. */
  get syncedEnd(): Lsn | undefined {
    return this.current?.synced;
  }

  get openSegment(): SegmentName | undefined {
    return this.current?.segment;
  }

  /**
   * Writes WAL bytes that start at `start` on `timeline`. Returns the segments this completed
   * (fsynced and renamed). Data must be contiguous with what came before, except at a segment start.
   */
  write(timeline: number, start: Lsn, data: Uint8Array): FinishedFile[] {
    const finished: FinishedFile[] = [];
    let pos = start;
    let offset = 0;
    while (offset < data.length) {
      const seg = this.segmentFor(timeline, pos);
      const segEnd = seg.segment.startLsn + BigInt(this.segSize);
      const n = Math.min(data.length - offset, Number(segEnd - pos));
      for (let done = 0; done < n;) {
        const k = Math.min(n - done, STAGE_BYTES - this.staged);
        this.stage.set(data.subarray(offset + done, offset + done + k), this.staged);
        this.staged += k;
        done += k;
        if (this.staged === STAGE_BYTES) this.nextWindow();
      }
      offset += n;
      pos = lsn(pos + BigInt(n));
      seg.received = pos;
      if (pos === segEnd) finished.push(this.finishCurrent());
    }
    return finished;
  }

  /** Writes the staged bytes not written yet to the open segment's file. */
  writeOut(): void {
    const cur = this.current;
    if (!cur || this.staged === this.stagedWritten) return;
    const from = this.stagedWritten;
    const n = this.staged - from;
    const fileOffset = Number(cur.written - cur.segment.startLsn);
    try {
      let done = 0;
      while (done < n) done += writeSync(cur.fd, this.stage, from + done, n - done, fileOffset + done);
    } catch (err) {
      throw new LocalIoError(`unable to write WAL to '${cur.segment.partialName}' in ${this.dir}: ${describeCause(err)}`, { cause: err });
    }
    this.stagedWritten = this.staged;
    cur.written = lsn(cur.written + BigInt(n));
  }

  /** The window is full: write what is left of it, hand it to the encoder, start the next one. */
  private nextWindow(): void {
    this.writeOut();
    const encoder = this.current?.encoder;
    if (encoder) {
      const full = this.stage;
      this.stage = this.pool.pop() ?? Buffer.allocUnsafe(STAGE_BYTES);
      encoder.take(full, () => {
        if (this.pool.length < STAGE_POOL) this.pool.push(full);
      });
    }
    this.staged = 0;
    this.stagedWritten = 0;
  }

  /** Drops the staged window (its segment is closed without finishing). */
  private dropWindow(): void {
    this.staged = 0;
    this.stagedWritten = 0;
  }

  private segmentFor(timeline: number, pos: Lsn): OpenSegment {
    const cur = this.current;
    if (cur && cur.segment.timeline === timeline && cur.segment.contains(pos)) {
      if (pos !== cur.received) {
        throw new ReplicationError(
          `unable to write WAL at ${pos.toString(16)}: expected continuation at ${cur.received.toString(16)} in ${cur.segment.name}`,
        );
      }
      return cur;
    }
    if (cur) this.closeAsPartial();
    const segment = SegmentName.fromLsn(timeline, pos, this.segSize);
    if (pos !== segment.startLsn) {
      throw new ReplicationError(
        `unable to start segment ${segment.name} at ${pos.toString(16)}: streaming must start at a segment boundary`,
      );
    }
    const path = join(this.dir, segment.partialName);
    let fd: number;
    try {
      // Restarting a segment from its beginning: what an earlier run (or connection) left is
      // rewritten in place with the same bytes, never truncated first. The server may already have
      // been told that data is flushed (it moved the slot, a synchronous commit returned), so it
      // must stay on disk until it is received again.
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
      ftruncateSync(fd, this.segSize);
    } catch (err) {
      throw new LocalIoError(`unable to create '${path}': ${describeCause(err)}`, { cause: err });
    }
    const encoder = this.encode ? new SegmentEncoder(segment.name, this.segSize, this.encode, this.compressThreads) : undefined;
    this.current = { segment, fd, encoder, received: pos, written: pos, synced: pos };
    return this.current;
  }

  /** fsyncs the open segment; returns the durable end position. */
  flush(): Lsn | undefined {
    const cur = this.current;
    if (!cur) return undefined;
    this.writeOut();
    if (cur.synced !== cur.written) {
      try {
        fsyncSync(cur.fd);
      } catch (err) {
        throw new LocalIoError(`unable to fsync '${cur.segment.partialName}': ${describeCause(err)}`, { cause: err });
      }
      cur.synced = cur.written;
    }
    return cur.synced;
  }

  private finishCurrent(): FinishedFile {
    // Segment sizes are multiples of the window: the last window filled and went out in write().
    this.writeOut();
    const cur = this.current!;
    this.current = undefined;
    const partial = join(this.dir, cur.segment.partialName);
    const final = join(this.dir, cur.segment.name);
    try {
      fsyncSync(cur.fd);
      closeSync(cur.fd);
      renameSync(partial, final);
      fsyncDirectorySync(this.dir);
    } catch (err) {
      throw new LocalIoError(`unable to finish segment '${cur.segment.name}': ${describeCause(err)}`, { cause: err });
    }
    const encoding = cur.encoder?.finish();
    return encoding ? { name: cur.segment.name, path: final, encoding } : { name: cur.segment.name, path: final };
  }

  /**
   * Closes the open segment without renaming it (end of a timeline, shutdown): it stays
   * `<segment>.partial`. Returns it with the end of its valid data.
   */
  closeAsPartial(): { name: string; path: string; end: Lsn } | undefined {
    const cur = this.current;
    if (!cur) return undefined;
    this.writeOut();
    this.dropWindow();
    this.current = undefined;
    cur.encoder?.discard();
    try {
      fsyncSync(cur.fd);
      closeSync(cur.fd);
    } catch (err) {
      throw new LocalIoError(`unable to close '${cur.segment.partialName}': ${describeCause(err)}`, { cause: err });
    }
    return { name: cur.segment.partialName, path: join(this.dir, cur.segment.partialName), end: cur.written };
  }

  /** Finished segments and history files waiting for upload, in WAL order. */
  pendingFiles(): FinishedFile[] {
    return readdirSync(this.dir)
      .filter((n) => {
        const k = tryClassifyWalFileName(n);
        return k?.kind === 'segment' || k?.kind === 'history';
      })
      .sort()
      .map((name) => ({ name, path: join(this.dir, name) }));
  }

  /** `.partial` files left by an earlier run (crash or shutdown), newest last. */
  partialFiles(): string[] {
    return readdirSync(this.dir)
      .filter((n) => tryClassifyWalFileName(n)?.kind === 'partial')
      .sort();
  }

  remove(name: string): void {
    const path = join(this.dir, name);
    if (!existsSync(path)) return;
    unlinkSync(path);
    fsyncDirectorySync(this.dir);
  }
}
