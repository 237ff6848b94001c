import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError, WalvaultError, describeCause } from '../common/errors.js';

/** Used in messages when the caller did not say which object the bytes belong to. */
export const UNNAMED = '(unnamed)';

/** Corrupt, truncated or oversized compressed input: always an integrity failure. */
export function decompressError(objectName: string | undefined, reason: string, cause?: unknown): IntegrityError {
  return new IntegrityError(`unable to decompress object '${objectName ?? UNNAMED}': ${reason}`, cause === undefined ? {} : { cause });
}

/** Maps whatever a decoder threw; our own typed errors pass through unchanged. */
export function asDecompressError(objectName: string | undefined, codec: string, err: unknown): WalvaultError {
  if (err instanceof WalvaultError) return err;
  return decompressError(objectName, `corrupt ${codec} data: ${describeCause(err)}`, err);
}

export function outputLimitError(objectName: string | undefined, codec: string, maxOutput: number): IntegrityError {
  return decompressError(objectName, `${codec} output exceeds the limit of ${maxOutput} bytes (corrupt data or decompression bomb)`);
}

/** Compression only fails on resource exhaustion or a bug; not retryable, not an integrity issue. */
export function asCompressError(codec: string, err: unknown): WalvaultError {
  if (err instanceof WalvaultError) return err;
  return new WalvaultError(`unable to compress data with '${codec}': ${describeCause(err)}`, { cause: err });
}

export function checkMaxOutput(maxOutput: number): void {
  if (!Number.isSafeInteger(maxOutput) || maxOutput < 0) {
    throw new RangeError(`maxOutput must be a non-negative safe integer, got ${maxOutput}`);
  }
}

export interface GuardOptions {
  /** Bytes the wrapper lets out before failing with `limitError()`; unlimited if absent. */
  limit?: { maxOutput: number; error: () => Error };
  mapError: (err: unknown) => Error;
}

/**
 * Wraps a third-party Transform (node:zlib) so that its output is capped and every error it emits
 * comes out typed. zlib's `maxOutputLength` only applies to its one-shot functions, not to streams,
 * hence the byte count here. Backpressure passes through: the inner stream is paused while our
 * readable side is full, which in turn holds back the callbacks of our writes.
 */
export class GuardedTransform extends Transform {
  private produced = 0;
  private failed = false;

  constructor(
    private readonly inner: Transform,
    private readonly opts: GuardOptions,
  ) {
    super();
    inner.on('data', (chunk: Buffer) => this.forward(chunk));
    inner.on('error', (err) => this.fail(opts.mapError(err)));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.inner.write(chunk, (err) => {
      if (err) this.fail(this.opts.mapError(err));
      else if (!this.failed) done();
    });
  }

  override _flush(done: TransformCallback): void {
    this.inner.once('end', () => {
      if (!this.failed) done();
    });
    this.inner.end();
  }

  override _read(size: number): void {
    this.inner.resume();
    super._read(size);
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    this.failed = true;
    this.inner.destroy();
    done(err);
  }

  private forward(chunk: Buffer): void {
    if (this.failed) return;
    this.produced += chunk.length;
    const limit = this.opts.limit;
    if (limit !== undefined && this.produced > limit.maxOutput) {
      this.fail(limit.error());
      return;
    }
    if (!this.push(chunk)) this.inner.pause();
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.destroy(err);
  }
}
