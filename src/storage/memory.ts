/**
 * In-memory driver: the reference semantics of the Storage contract and the fake for unit tests.
 * A put commits in one synchronous step after the whole body has arrived, so it is atomic, and the
 * create-only check happens in that same step, so concurrent ifAbsent puts have exactly one winner.
 */
import { Readable } from 'node:stream';
import { AbortedError, NotFoundError, ObjectExistsError, StorageError } from '../common/errors.js';
import { bodyFailure, readAll } from './body.js';
import { compareKeys, validateKey, validatePrefix } from './key.js';
import type { GetOptions, ListOptions, ObjectInfo, PutBody, PutOptions, Storage } from './types.js';

interface Entry {
  data: Buffer;
  mtime: Date;
}

export class MemoryStorage implements Storage {
  readonly kind = 'memory';
  readonly description: string;
  private readonly objects = new Map<string, Entry>();

  constructor(name = 'memory') {
    this.description = `memory:${name}`;
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<void> {
    validateKey(key);
    const where = `unable to write object '${key}' to ${this.description}`;
    const aborted = (): AbortedError => new AbortedError(`${where}: aborted`, { cause: opts.signal?.reason });
    if (opts.signal?.aborted) throw aborted();
    let data: Buffer;
    try {
      data = await readAll(body, opts.signal);
    } catch (err) {
      throw opts.signal?.aborted ? aborted() : bodyFailure(where, err);
    }
    if (opts.signal?.aborted) throw aborted();
    if (opts.contentLength !== undefined && data.length !== opts.contentLength) {
      throw new StorageError(`${where}: body has ${data.length} bytes, expected ${opts.contentLength}`);
    }
    if (opts.ifAbsent && this.objects.has(key)) throw new ObjectExistsError(`${where}: it already exists`);
    this.objects.set(key, { data, mtime: new Date() });
  }

  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    const data = await this.getBuffer(key, opts);
    return Readable.from([data], { objectMode: false });
  }

  async getBuffer(key: string, opts: GetOptions = {}): Promise<Buffer> {
    validateKey(key);
    if (opts.signal?.aborted) {
      throw new AbortedError(`unable to read object '${key}' from ${this.description}: aborted`, { cause: opts.signal.reason });
    }
    const entry = this.objects.get(key);
    if (!entry) throw new NotFoundError(`unable to read object '${key}' from ${this.description}: not found`);
    // A copy, so a caller that scribbles on the result cannot change the stored object.
    return Buffer.from(entry.data);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    validateKey(key);
    const entry = this.objects.get(key);
    return entry ? { key, size: entry.data.length, mtime: entry.mtime } : undefined;
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ObjectInfo> {
    validatePrefix(prefix);
    const { startAfter } = opts;
    const keys = [...this.objects.keys()]
      .filter((k) => k.startsWith(prefix) && (startAfter === undefined || compareKeys(k, startAfter) > 0))
      .sort(compareKeys);
    for (const key of keys) {
      const entry = this.objects.get(key);
      // Deleted while the caller was iterating: S3 listings are not snapshots either.
      if (entry) yield { key, size: entry.data.length, mtime: entry.mtime };
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) validateKey(key);
    for (const key of keys) this.objects.delete(key);
  }

  async close(): Promise<void> {}
}
