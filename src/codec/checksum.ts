import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { WalvaultError } from '../common/errors.js';

/** SHA-256 of `data` as 64 lowercase hex digits. */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface HashTapResult {
  sha256: string;
  bytes: number;
}

/**
 * A pass-through stage that hashes and counts what flows through it, so one pipeline can read a
 * file, checksum it and compress it without a second pass. The result exists once the stream has
 * ended (after 'finish'/'end', or once `pipeline()` resolved).
 */
export class HashTap extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private count = 0;
  private result: HashTapResult | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.count += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.result = { sha256: this.hash.digest('hex'), bytes: this.count };
    done();
  }

  /** Bytes seen so far; final once the stream has ended. */
  get bytes(): number {
    return this.count;
  }

  /** Throws if called before all input has passed through: a partial digest is never wanted. */
  digest(): HashTapResult {
    if (this.result === undefined) {
      throw new WalvaultError('unable to read checksum of stream: the stream has not ended');
    }
    return this.result;
  }
}

export function createHashTap(): HashTap {
  return new HashTap();
}
