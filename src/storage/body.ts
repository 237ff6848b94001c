/** Body plumbing shared by the drivers: reading put bodies, and guarding the streams get returns. */
import { Readable, addAbortSignal, finished } from 'node:stream';
import { StorageError, WalvaultError, describeCause } from '../common/errors.js';
import type { PutBody } from './types.js';

/** Thrown (internally) when the body stream itself fails, so drivers can tell it from their own I/O. */
export class BodyError extends Error {
  constructor(readonly original: unknown) {
    super('body stream failed', { cause: original });
  }
}

/**
 * The error a put reports when its body failed: the source's own error if it is already one of ours
 * (e.g. a LocalIoError from reading %p), otherwise a StorageError naming the object. Not retryable:
 * the body was consumed and the driver cannot get it again.
 */
export function bodyFailure(where: string, err: unknown): Error {
  const cause = err instanceof BodyError ? err.original : err;
  if (cause instanceof WalvaultError) return cause;
  return new StorageError(`${where}: reading the body failed: ${describeCause(cause)}`, { cause });
}

function chunkToBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new TypeError(`body stream yielded a ${typeof chunk}, not bytes`);
}

function isBytes(body: PutBody): body is Uint8Array {
  return body instanceof Uint8Array;
}

/**
 * Iterates a put body as Buffers. A Readable is destroyed when the signal fires, so a stalled source
 * cannot hold an aborted put forever. Failures of the source come out as BodyError.
 */
export async function* chunksOf(body: PutBody, signal?: AbortSignal): AsyncGenerator<Buffer> {
  if (isBytes(body)) {
    yield chunkToBuffer(body);
    return;
  }
  if (signal) addAbortSignal(signal, body);
  try {
    for await (const chunk of body) yield chunkToBuffer(chunk);
  } catch (err) {
    throw new BodyError(err);
  }
}

export async function readAll(body: PutBody, signal?: AbortSignal): Promise<Buffer> {
  if (isBytes(body)) return Buffer.from(body);
  const chunks: Buffer[] = [];
  for await (const chunk of chunksOf(body, signal)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * Splits a body into parts of exactly `partSize` bytes (the last may be shorter; an empty body is one
 * empty part). Only one part is held in memory at a time, which is what lets a non-replayable stream
 * be retried part by part.
 */
export async function* partsOf(body: PutBody, partSize: number, signal?: AbortSignal): AsyncGenerator<Buffer> {
  if (isBytes(body)) {
    const all = chunkToBuffer(body);
    if (all.length === 0) yield all;
    for (let off = 0; off < all.length; off += partSize) yield all.subarray(off, off + partSize);
    return;
  }
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let yielded = false;
  for await (let chunk of chunksOf(body, signal)) {
    while (pendingBytes + chunk.length >= partSize) {
      const take = partSize - pendingBytes;
      pending.push(chunk.subarray(0, take));
      chunk = chunk.subarray(take);
      yield Buffer.concat(pending, partSize);
      yielded = true;
      pending = [];
      pendingBytes = 0;
    }
    if (chunk.length > 0) {
      pending.push(chunk);
      pendingBytes += chunk.length;
    }
  }
  if (pendingBytes > 0 || !yielded) yield Buffer.concat(pending, pendingBytes);
}

export interface GuardOptions {
  /** When known, a stream that ends early or runs long fails instead of ending quietly. */
  expectedLength?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Turns a failure of the source (or the signal's reason, on abort) into the error the consumer sees. */
  mapError: (err: unknown) => Error;
  lengthError: (actual: number, expected: number) => Error;
}

/**
 * The stream `get` hands out: errors are ours (with the key and the place named), a short body is an
 * error rather than a quiet end, and destroying it (or aborting) releases the source (socket or file
 * descriptor) at once, even while the source is stalled.
 */
export function guardedStream(source: Readable, opts: GuardOptions): Readable {
  const { signal, expectedLength } = opts;
  let seen = 0;
  const onAbort = (): void => fail(opts.mapError(signal?.reason));
  const out = new Readable({
    read() {
      source.resume();
    },
    destroy(err, callback) {
      stopWatching();
      signal?.removeEventListener('abort', onAbort);
      source.destroy();
      callback(err);
    },
  });
  const fail = (err: Error): void => {
    if (!out.destroyed) out.destroy(err);
  };
  source.on('data', (chunk: unknown) => {
    let buf: Buffer;
    try {
      buf = chunkToBuffer(chunk);
    } catch (err) {
      fail(opts.mapError(err));
      return;
    }
    seen += buf.length;
    if (!out.push(buf)) source.pause();
  });
  source.once('end', () => {
    if (expectedLength !== undefined && seen !== expectedLength) fail(opts.lengthError(seen, expectedLength));
    else out.push(null);
  });
  // Also catches a source that closes without 'end' or 'error' (premature close).
  const stopWatching = finished(source, (err) => {
    if (err) fail(opts.mapError(err));
  });
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return out;
}
