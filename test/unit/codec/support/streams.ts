import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Splits `input` into pieces: a fixed size, or sizes cycled from a list (exercises parsers on
 * input split at awkward points).
 */
export function split(input: Buffer, sizes: number | readonly number[]): Buffer[] {
  const list = typeof sizes === 'number' ? [sizes] : sizes;
  const pieces: Buffer[] = [];
  let pos = 0;
  for (let i = 0; pos < input.length; i++) {
    const size = Math.max(1, list[i % list.length] as number);
    pieces.push(input.subarray(pos, pos + size));
    pos += size;
  }
  return pieces;
}

export interface StreamOutcome {
  /** Everything the transform emitted, also before a failure. */
  output: Buffer;
  error: unknown;
}

/** Runs `input` (whole, or split into pieces) through `transform`; never throws. */
export async function runStream(
  transform: Transform,
  input: Buffer,
  sizes: number | readonly number[] = 64 * 1024,
): Promise<StreamOutcome> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.push(Buffer.from(chunk));
      done();
    },
  });
  let error: unknown;
  try {
    await pipeline(Readable.from(split(input, sizes), { objectMode: false }), transform, sink);
  } catch (err) {
    error = err;
  }
  return { output: Buffer.concat(out), error };
}

/** Like runStream, but rejects on failure and resolves to the output. */
export async function streamThrough(transform: Transform, input: Buffer, sizes: number | readonly number[] = 64 * 1024): Promise<Buffer> {
  const { output, error } = await runStream(transform, input, sizes);
  if (error !== undefined) throw error;
  return output;
}
