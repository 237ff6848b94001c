/**
 * Encodes a segment while it is received: SHA-256, the page walk that wal-push runs
 * (segmentScanner + finishArchiveScan) and the archive's one-pass compressor see each 1 MiB of the
 * segment once, in the same 1 MiB chunks pushFile reads (the spool's staging windows, not copied).
 * At the segment's end the agent holds the digest, the verdict and the compressed bytes (a fraction of the segment; nothing for `none`), so archiving
 * it reads nothing back and holds no 16 MiB buffer. Anything that goes wrong here only loses the
 * shortcut: the upload then falls back to pushFile on the spool file, which checks everything again
 * and words any refusal exactly as for any other file.
 */
import { createHash, type Hash } from 'node:crypto';
import { getCodec, type CompressionSpec } from '../codec/codec.js';
import type { ChunkCompressor } from '../codec/chunked.js';
import { finishArchiveScan, segmentScanner, type SegmentInspection } from '../segment/inspect.js';
import type { SegmentScanner } from '../segment/scan.js';

/** What a finished segment's encoding yields; `compressed` is absent for `compression none`. */
export interface SegmentEncoding {
  readonly sha256: string;
  readonly scan: SegmentInspection;
  readonly compressed?: ChunkCompressor;
}

export class SegmentEncoder {
  private readonly hash: Hash = createHash('sha256');
  private readonly scanner: SegmentScanner;
  /** The compressor, with every chunk handed to it so far queued in order. */
  private compressing: Promise<ChunkCompressor> | undefined;
  private failed = false;

  constructor(
    private readonly name: string,
    segSize: number,
    compression: CompressionSpec,
    /** zstd's own threads: the segment compresses there while the agent keeps receiving. */
    threads = 0,
  ) {
    this.scanner = segmentScanner(segSize, { expectedName: name });
    if (compression.name !== 'none') {
      this.compressing = getCodec(compression.name, compression.level).createCompressor(segSize, { threads });
    }
    // A failure surfaces in finish(); this only keeps an early one from being unhandled.
    this.compressing?.catch(() => undefined);
  }

  /**
   * The next 1 MiB of the segment, in order (the spool's full staging window). The encoder owns
   * `chunk` until it calls `release`, then the caller may reuse it: at once without compression,
   * else once the compressor has consumed it.
   */
  take(chunk: Buffer, release: () => void): void {
    if (this.failed) return release();
    try {
      this.hash.update(chunk);
      this.scanner.update(chunk);
    } catch {
      this.failed = true;
      return release();
    }
    if (!this.compressing) return release();
    this.compressing = this.compressing.then(async (c) => {
      try {
        await c.update(chunk);
      } finally {
        release();
      }
      return c;
    });
    this.compressing.catch(() => undefined);
  }

  /** The encoding of everything fed, or undefined when encoding failed or the page walk refused it. */
  async finish(): Promise<SegmentEncoding | undefined> {
    if (this.failed) return undefined;
    try {
      const scan = finishArchiveScan(this.scanner, this.name);
      const sha256 = this.hash.digest('hex');
      if (!this.compressing) return { sha256, scan };
      const compressed = await this.compressing;
      await compressed.end();
      return { sha256, scan, compressed };
    } catch {
      return undefined;
    }
  }

  /** Drops what was produced (a segment abandoned before its end). */
  discard(): void {
    this.failed = true;
    this.compressing = undefined;
  }
}
