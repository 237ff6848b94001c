/**
 * The pack being filled, compressed while it fills. Its original bytes are copied into a reused
 * buffer and fed to the compressor every FEED_BYTES, so with zstd threads (`backup-compress-threads`)
 * the compression of a pack runs beside the main thread while the rest of the pack is received, and
 * sealing waits only for the last piece. The pack is not hashed here: its object records the
 * SHA-256 of the compressed payload (catalog format 3, object-encode.ts), a pass over a fraction of
 * the bytes, and each file's SHA-256 covers the original bytes.
 *
 * The pack's original bytes exist once, in the one buffer, reused from pack to pack: once a pack is
 * sealed the compressor holds what it needs (zstd with threads copies its input into its jobs).
 */
import type { ChunkCompressor } from '../codec/chunked.js';
import type { Codec } from '../codec/codec.js';

/** Bytes fed to the compressor at once: zstd's job size, so each feed can start a thread's job. */
export const FEED_BYTES = 1 << 20;

export interface SealedPack {
  /** Original bytes. */
  readonly size: number;
  /** Every original byte was fed and the compressor has ended: `parts` holds the payload. */
  readonly compressor: ChunkCompressor;
}

export class PackEncoder {
  /** Reused: a fresh 8 MiB buffer per pack costs page faults and GC pressure. */
  private readonly buffer: Buffer;
  private fill = 0;
  private fed = 0;
  private compressor: ChunkCompressor | undefined;

  constructor(
    private readonly codec: Codec,
    private readonly threads: number,
    private readonly packSize: number,
  ) {
    this.buffer = Buffer.allocUnsafe(packSize);
  }

  /** Original bytes in the pack so far. */
  get length(): number {
    return this.fill;
  }

  get full(): boolean {
    return this.fill === this.packSize;
  }

  /** Copies `chunk` (at most the room left) into the pack; returns the bytes taken. */
  async write(chunk: Buffer): Promise<number> {
    const take = Math.min(chunk.length, this.packSize - this.fill);
    chunk.copy(this.buffer, this.fill, 0, take);
    this.fill += take;
    if (this.fill - this.fed >= FEED_BYTES) await this.feed();
    return take;
  }

  /** Ends the pack's compression; the encoder then fills a new pack. */
  async seal(): Promise<SealedPack> {
    const size = this.fill;
    let compressor: ChunkCompressor;
    if (size === this.packSize) {
      await this.feed();
      compressor = this.compressor as ChunkCompressor;
    } else {
      // Full packs pledge packSize (the frame then records its content size, which restore's
      // single-allocation decode needs); a short one, the backup's last, is compressed again with
      // its own size. The abandoned context is freed by the GC.
      compressor = await this.codec.createCompressor(size, { threads: this.threads });
      await compressor.update(this.buffer.subarray(0, size));
    }
    await compressor.end();
    this.fill = 0;
    this.fed = 0;
    this.compressor = undefined;
    return { size, compressor };
  }

  private async feed(): Promise<void> {
    if (this.fed === this.fill) return;
    this.compressor ??= await this.codec.createCompressor(this.packSize, { threads: this.threads });
    await this.compressor.update(this.buffer.subarray(this.fed, this.fill));
    this.fed = this.fill;
  }
}
