/**
 * The storage contract every driver implements (posix, s3, memory) and that
 * test/support/storage-conformance.ts checks. Objects are opaque bytes: the archive layer keeps its
 * own header inside them, so drivers store no user metadata.
 *
 * Keys are '/'-separated relative paths (see key.ts for the rules). Listing order is the byte order
 * of the keys' UTF-8 encoding, which is what S3 returns.
 *
 * Failures: `NotFoundError` only when the key is definitely absent, `ObjectExistsError` for a
 * create-only put that found the key, `InvalidKeyError` for a bad key, `AbortedError` when the
 * signal fired, `StorageError` for everything else. Drivers that talk to a network retry transient
 * failures themselves (see src/common/retry.ts); an error that escapes has used up that policy, and
 * its `retryable` flag says whether repeating the whole operation later may help. Callers must not
 * add a second retry loop around driver calls.
 */
import type { Readable } from 'node:stream';

export type StorageKind = 'posix' | 's3' | 'memory';

export interface ObjectInfo {
  key: string;
  size: number;
  mtime: Date;
}

export interface PutOptions {
  signal?: AbortSignal;
  /**
   * Fail with ObjectExistsError if the key already exists; the existing object is never replaced.
   * On S3 a retried request can also meet our own earlier attempt that landed before its response
   * was lost, so a caller that sees ObjectExistsError compares contents before calling it a conflict.
   */
  ifAbsent?: boolean;
  /** Expected body length: a body of any other length fails the put and stores nothing. */
  contentLength?: number;
}

export interface GetOptions {
  signal?: AbortSignal;
}

export interface ListOptions {
  /** Only keys that sort strictly after this one. */
  startAfter?: string;
}

/**
 * A Readable body must yield Buffers/Uint8Arrays (or strings, taken as UTF-8). It is consumed at most
 * once: drivers that retry keep what they need to resend (the S3 driver buffers one part at a time).
 */
export type PutBody = Uint8Array | Readable;

export interface Storage {
  readonly kind: StorageKind;
  /** Where the objects live, for log lines and messages; never contains secrets. */
  readonly description: string;
  /** Atomic: readers see the old object or the whole new one, never a part; a failed put stores nothing. */
  put(key: string, body: PutBody, opts?: PutOptions): Promise<void>;
  /** NotFoundError when absent. A failure in the middle of the body surfaces as a stream error. */
  get(key: string, opts?: GetOptions): Promise<Readable>;
  getBuffer(key: string, opts?: GetOptions): Promise<Buffer>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every key starting with `prefix` (a plain string prefix, not only whole segments), in order, all pages. */
  list(prefix: string, opts?: ListOptions): AsyncIterable<ObjectInfo>;
  /** Absent keys are not an error. */
  delete(keys: readonly string[]): Promise<void>;
  close(): Promise<void>;
}
