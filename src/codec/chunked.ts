/**
 * One-pass compression: a file is fed in chunks (e.g. 1 MiB read into one reused buffer) and the
 * compressed bytes are kept as produced, so no caller ever holds the whole input. wal-push and the
 * uploaders compress through this; the compressed output (a fraction of a segment) is what is held.
 */
import { finished } from 'node:stream/promises';
import type { Transform } from 'node:stream';

export interface CompressorOptions {
  /**
   * Threads of the codec's own (native, not V8) to compress on, besides the caller's: 0 compresses on
   * the calling thread. Only zstd has them (its multi-threaded mode, same frame format); the other
   * codecs ignore it.
   */
  readonly threads?: number;
}

export interface ChunkCompressor {
  /** Compresses `chunk`. Once the returned promise settles, the caller may overwrite `chunk`. */
  update(chunk: Buffer): Promise<void>;
  /** Ends the compressed stream; `parts` then holds all of it. */
  end(): Promise<void>;
  /** The compressed bytes so far, in order (never aliasing a caller's chunk). */
  readonly parts: Buffer[];
  /** Total length of `parts`. */
  readonly length: number;
}

/**
 * A ChunkCompressor over a codec's compress stream (gzip, brotli, lz4). Streams may keep a reference
 * to a written chunk after its callback (lz4 queues input up to a block), so each chunk is copied.
 */
export function compressorFromStream(stream: Transform): ChunkCompressor {
  const parts: Buffer[] = [];
  let length = 0;
  stream.on('data', (b: Buffer) => {
    parts.push(b);
    length += b.length;
  });
  const done = finished(stream);
  // The error surfaces from update/end; this only keeps an early one from being unhandled.
  done.catch(() => undefined);
  return {
    parts,
    get length() {
      return length;
    },
    update(chunk) {
      return new Promise((resolve, reject) => {
        stream.write(Buffer.from(chunk), (err) => (err ? reject(err) : resolve()));
      });
    },
    async end() {
      stream.end();
      await done;
    },
  };
}

/** Compresses `input` in one piece through `compressor`, returning one buffer (for small inputs). */
export async function compressWhole(compressor: ChunkCompressor, input: Buffer): Promise<Buffer> {
  await compressor.update(input);
  await compressor.end();
  return compressor.parts.length === 1 ? (compressor.parts[0] as Buffer) : Buffer.concat(compressor.parts, compressor.length);
}
