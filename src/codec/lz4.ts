import { Transform, type TransformCallback } from 'node:stream';
import type { Codec } from './codec.js';
import { compressorFromStream } from './chunked.js';
import { asCompressError, asDecompressError, checkMaxOutput } from './guard.js';
import { ByteQueue } from './byte-queue.js';
import { Lz4FrameDecoder, WRITE_BLOCK_SIZE, encodeBlock, endMark, frameHeader, type Lz4Blocks } from './lz4-frame.js';

let loading: Promise<Lz4Blocks> | undefined;

/** Native module loaded on first use, like zstd. */
function loadLz4(): Promise<Lz4Blocks> {
  loading ??= import('lz4-napi').then((m) => {
    const mod = ((m as { default?: Lz4Blocks }).default ?? m) as Lz4Blocks;
    return { compress: mod.compress, uncompress: mod.uncompress };
  });
  return loading;
}

/** Standard LZ4 frames; see lz4-frame.ts for the exact subset written and read. */
export function createLz4Codec(level: number): Codec {
  return {
    name: 'lz4',
    level,
    extension: 'lz4',
    async compress(input) {
      try {
        const lz4 = await loadLz4();
        const parts = [frameHeader()];
        for (let pos = 0; pos < input.length; pos += WRITE_BLOCK_SIZE) {
          parts.push(...(await encodeBlock(lz4, input.subarray(pos, pos + WRITE_BLOCK_SIZE))));
        }
        parts.push(endMark());
        return Buffer.concat(parts);
      } catch (err) {
        throw asCompressError('lz4', err);
      }
    },
    async decompress(input, maxOutput, objectName) {
      checkMaxOutput(maxOutput);
      try {
        const decoder = new Lz4FrameDecoder(await loadLz4(), maxOutput, objectName);
        const blocks: Buffer[] = [];
        await decoder.write(input, (block) => blocks.push(block));
        decoder.finish();
        return Buffer.concat(blocks);
      } catch (err) {
        throw asDecompressError(objectName, 'lz4', err);
      }
    },
    createCompressStream() {
      return new Lz4CompressStream();
    },
    createCompressor() {
      return Promise.resolve(compressorFromStream(new Lz4CompressStream()));
    },
    createDecompressStream(maxOutput, objectName) {
      checkMaxOutput(maxOutput);
      return new Lz4DecompressStream(maxOutput, objectName);
    },
  };
}

/**
 * Cuts the input into WRITE_BLOCK_SIZE blocks exactly like compress() does, so both produce the
 * same bytes for the same input however it is chunked.
 */
class Lz4CompressStream extends Transform {
  private readonly pending = new ByteQueue();
  private started = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.drain(false).then(
      () => done(),
      (err: unknown) => done(asCompressError('lz4', err)),
    );
  }

  override _flush(done: TransformCallback): void {
    this.drain(true).then(
      () => {
        this.push(endMark());
        done();
      },
      (err: unknown) => done(asCompressError('lz4', err)),
    );
  }

  private async drain(final: boolean): Promise<void> {
    const lz4 = await loadLz4();
    if (!this.started) {
      this.push(frameHeader());
      this.started = true;
    }
    while (this.pending.length >= WRITE_BLOCK_SIZE || (final && this.pending.length > 0)) {
      const block = this.pending.take(Math.min(WRITE_BLOCK_SIZE, this.pending.length));
      for (const part of await encodeBlock(lz4, block)) this.push(part);
    }
  }
}

class Lz4DecompressStream extends Transform {
  private decoder: Lz4FrameDecoder | undefined;

  constructor(
    private readonly maxOutput: number,
    private readonly objectName: string | undefined,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.getDecoder()
      .then((decoder) => decoder.write(chunk, (block) => this.push(block)))
      .then(
        () => done(),
        (err: unknown) => done(asDecompressError(this.objectName, 'lz4', err)),
      );
  }

  override _flush(done: TransformCallback): void {
    this.getDecoder().then(
      (decoder) => {
        try {
          decoder.finish();
        } catch (err) {
          done(asDecompressError(this.objectName, 'lz4', err));
          return;
        }
        done();
      },
      (err: unknown) => done(asDecompressError(this.objectName, 'lz4', err)),
    );
  }

  private async getDecoder(): Promise<Lz4FrameDecoder> {
    this.decoder ??= new Lz4FrameDecoder(await loadLz4(), this.maxOutput, this.objectName);
    return this.decoder;
  }
}
