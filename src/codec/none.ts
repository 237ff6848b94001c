import { PassThrough } from 'node:stream';
import type { Codec } from './codec.js';
import type { ChunkCompressor } from './chunked.js';
import { GuardedTransform, asDecompressError, checkMaxOutput, outputLimitError } from './guard.js';

/**
 * Identity. It detects nothing: stored bytes are the object, and only the caller's SHA-256 and
 * size checks can tell whether they changed. The output cap still applies.
 */
export function createNoneCodec(level: number): Codec {
  return {
    name: 'none',
    level,
    extension: '',
    async compress(input) {
      return input;
    },
    async decompress(input, maxOutput, objectName) {
      checkMaxOutput(maxOutput);
      if (input.length > maxOutput) throw outputLimitError(objectName, 'none', maxOutput);
      return input;
    },
    createCompressStream() {
      return new PassThrough();
    },
    createCompressor() {
      return Promise.resolve(copyingCompressor());
    },
    createDecompressStream(maxOutput, objectName) {
      checkMaxOutput(maxOutput);
      return new GuardedTransform(new PassThrough(), {
        limit: { maxOutput, error: () => outputLimitError(objectName, 'none', maxOutput) },
        mapError: (err) => asDecompressError(objectName, 'none', err),
      });
    },
  };
}

/** Stored as read: each chunk is copied, as the caller reuses its buffer. */
function copyingCompressor(): ChunkCompressor {
  const parts: Buffer[] = [];
  let length = 0;
  return {
    parts,
    get length() {
      return length;
    },
    update(chunk) {
      parts.push(Buffer.from(chunk));
      length += chunk.length;
      return Promise.resolve();
    },
    end() {
      return Promise.resolve();
    },
  };
}
