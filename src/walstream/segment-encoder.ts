/**
 * Encodes a segment while it is received: SHA-256, the page check that wal-push runs
 * (SegmentStreamCheck) and compression see each batch of bytes once, as the spool writes it. At the
 * segment's end the agent holds the digest, the verdict and the compressed bytes (about a quarter
 * of the segment for zstd on WAL; nothing for `none`), so archiving it reads nothing back and holds
 * no 16 MiB buffer. Anything that goes wrong here only loses the shortcut: the upload then falls
 * back to pushFile on the spool file, which checks everything again.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Transform } from 'node:stream';
import { getCodec, type CompressionSpec } from '../codec/codec.js';
import { SegmentStreamCheck } from '../segment/inspect-stream.js';
import type { SegmentInspection } from '../segment/inspect.js';

/** What a finished segment's encoding yields; `compressed` is absent for `compression none`. */
export interface SegmentEncoding {
  readonly sha256: string;
  readonly inspection: SegmentInspection;
  readonly compressed?: readonly Buffer[];
}

export class SegmentEncoder {
  private readonly hash: Hash = createHash('sha256');
  private readonly check: SegmentStreamCheck;
  private readonly compressor: Transform | undefined;
  private readonly output: Buffer[] = [];
  private failure: unknown;
  private readonly done: Promise<void>;

  constructor(name: string, compression: CompressionSpec) {
    this.check = new SegmentStreamCheck(name);
    if (compression.name === 'none') {
      this.done = Promise.resolve();
      return;
    }
    const compressor = getCodec(compression.name, compression.level).createCompressStream();
    this.compressor = compressor;
    compressor.on('data', (chunk: Buffer) => this.output.push(chunk));
    this.done = new Promise<void>((resolve) => {
      compressor.once('end', resolve);
      compressor.once('error', (err) => {
        this.failure ??= err;
        resolve();
      });
    });
  }

  /** The next bytes of the segment, in order; read before the call returns (the caller reuses them). */
  update(bytes: Uint8Array): void {
    if (this.failure !== undefined) return;
    try {
      this.hash.update(bytes);
      this.check.update(bytes);
      // The compressor may work later (zlib runs in the thread pool): it gets its own copy.
      this.compressor?.write(Buffer.from(bytes));
    } catch (err) {
      this.failure = err;
    }
  }

  /**
   * The encoding of everything fed, or undefined when encoding failed or the page check refused
   * the bytes: the caller then archives from the file with pushFile, which decides (and words the
   * refusal) exactly as for any other file.
   */
  async finish(): Promise<SegmentEncoding | undefined> {
    this.compressor?.end();
    await this.done;
    if (this.failure !== undefined) return undefined;
    let inspection: SegmentInspection;
    try {
      inspection = this.check.finish();
    } catch {
      return undefined;
    }
    const sha256 = this.hash.digest('hex');
    return this.compressor ? { sha256, inspection, compressed: this.output } : { sha256, inspection };
  }

  /** Drops what was produced (a segment abandoned before its end). */
  discard(): void {
    this.failure ??= new Error('discarded');
    this.compressor?.destroy();
    this.output.length = 0;
  }
}
