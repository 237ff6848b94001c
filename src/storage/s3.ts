/**
 * S3 driver (AWS and S3-compatible services), loaded only when an s3:// archive is used: importing
 * the SDK costs ~70 ms of start-up, which archive_command pays per segment.
 *
 * Retries live here and only here: the SDK's own retry is off (maxAttempts 1) and every request runs
 * inside withRetry, so one policy (data, configurable, logged) decides, a failure in the middle of a
 * response body is retried like any other, and no request is resent by two layers. A body is never
 * replayed from its source: put reads it one part (default 32 MiB) at a time into memory, and what
 * gets resent is that buffered part. So an object up to one part (every WAL segment, compressed or
 * not, with our header) is a single PutObject; larger ones become a multipart upload with each part
 * retried on its own, and memory stays at about (partConcurrency + 1) parts.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type ServerSideEncryption,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { AbortedError, ConfigError, NotFoundError, ObjectExistsError, StorageError, WalvaultError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { DEFAULT_RETRY_POLICY, validateRetryPolicy, withRetry, type RetryPolicy } from '../common/retry.js';
import { BodyError, bodyFailure, guardedStream, partsOf } from './body.js';
import { BUCKET_NAME, isValidKey, validateKey, validatePrefix } from './key.js';
import { classifyS3Error } from './s3-errors.js';
import type { GetOptions, ListOptions, ObjectInfo, PutBody, PutOptions, Storage } from './types.js';

const MiB = 1024 * 1024;
/** Larger than any WAL segment object (16 MiB + header), so a segment is always one PUT. */
const DEFAULT_PART_SIZE = 32 * MiB;
/** S3's minimum for every part but the last. */
export const MIN_PART_SIZE = 5 * MiB;
const MAX_PARTS = 10_000;
/** DeleteObjects accepts at most 1000 keys per call. */
const DELETE_BATCH = 1000;

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Option names follow the configuration (WALVAULT_S3_*); see src/storage/factory.ts. */
export interface S3StorageOptions {
  bucket: string;
  /** Key prefix inside the bucket ('' = bucket root); a trailing '/' is implied. */
  prefix?: string;
  /** Default: AWS_REGION, then us-east-1. */
  region?: string;
  /** Custom endpoint for S3-compatible services; unset = AWS. */
  endpoint?: string;
  forcePathStyle?: boolean;
  /**
   * Unset = the SDK's standard provider chain (env, profile, web identity, IMDS, ...). A provider
   * function keeps the secret out of this options object (see s3-credentials.ts).
   */
  credentials?: S3Credentials | (() => Promise<S3Credentials>);
  sse?: 'none' | 'AES256' | 'aws:kms';
  kmsKeyId?: string;
  storageClass?: string;
  /**
   * 'when_required' turns off the SDK's default request/response checksums (needed by services that
   * store the aws-chunked framing of streamed bodies, like s3rver); we then send Content-MD5 with
   * every PUT and part ourselves, so uploads are still verified by the server.
   */
  checksums?: 'default' | 'when_required';
  /** Bytes per PUT / per multipart part; default 32 MiB, at least 5 MiB. */
  partSize?: number;
  /** Parts uploaded at once for multipart uploads; default 2. */
  partConcurrency?: number;
  /** Per request: time until the response starts, and the longest silence while streaming. Default 60 s. */
  requestTimeoutMs?: number;
  /** Time allowed to establish a connection. Default 5 s. */
  connectTimeoutMs?: number;
  /** Attempts per request (shortcut for retry.maxAttempts). */
  maxAttempts?: number;
  retry?: Partial<RetryPolicy>;
  /** Keys per ListObjectsV2 page; default (and S3's maximum) 1000. */
  listPageSize?: number;
  /** Retries are logged here at warn; nothing else is logged. */
  log?: Logger;
}

type Op = 'write' | 'read' | 'stat' | 'list' | 'delete';

function positiveInt(name: string, value: number | undefined, fallback: number, min = 1): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min)
    throw new ConfigError(`unable to use S3 option ${name}: '${String(v)}' must be an integer >= ${min}`);
  return v;
}

/** The SDK's send options; under exactOptionalPropertyTypes an absent signal must be an absent key. */
function abortable(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal ? { abortSignal: signal } : {};
}

function normalizeRoot(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  try {
    validateKey(trimmed);
  } catch (err) {
    throw new ConfigError(`unable to use S3 prefix '${prefix}': ${(err as Error).message.replace(/^.*?: /, '')}`, { cause: err });
  }
  return `${trimmed}/`;
}

/** The endpoint as shown in messages: without any user:password it might carry. */
function displayEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (err) {
    throw new ConfigError(`unable to use S3 endpoint '${endpoint}': not a URL`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`unable to use S3 endpoint '${endpoint}': must be http:// or https://`);
  }
  url.username = '';
  url.password = '';
  return url.href.replace(/\/$/, '');
}

async function collect(body: unknown): Promise<Buffer> {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (!(body instanceof Readable)) throw new TypeError('GetObject returned a body that is not a Node stream');
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export class S3Storage implements Storage {
  readonly kind = 's3';
  readonly description: string;
  readonly bucket: string;
  /** '' or a prefix ending in '/'. */
  readonly root: string;
  private readonly client: S3Client;
  private readonly policy: RetryPolicy;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private readonly listPageSize: number;
  private readonly contentMd5: boolean;
  private readonly checksumAlgorithm: 'CRC32' | undefined;
  private readonly sse: ServerSideEncryption | undefined;
  private readonly kmsKeyId: string | undefined;
  private readonly storageClass: StorageClass | undefined;
  private readonly log: Logger | undefined;
  /** Set once a request proved the bucket exists, so a 404 can be trusted to mean "no such object". */
  private bucketSeen = false;

  constructor(opts: S3StorageOptions) {
    if (!BUCKET_NAME.test(opts.bucket)) {
      throw new ConfigError(`unable to use S3 bucket '${opts.bucket}': not a bucket name`);
    }
    this.bucket = opts.bucket;
    this.root = normalizeRoot(opts.prefix);
    const endpoint = opts.endpoint ? displayEndpoint(opts.endpoint) : undefined;
    this.description = `s3://${this.bucket}/${this.root.replace(/\/$/, '')}${endpoint ? ` at ${endpoint}` : ''}`;
    this.policy = validateRetryPolicy({
      ...DEFAULT_RETRY_POLICY,
      ...opts.retry,
      ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
    });
    this.partSize = positiveInt('partSize', opts.partSize, DEFAULT_PART_SIZE, MIN_PART_SIZE);
    this.partConcurrency = positiveInt('partConcurrency', opts.partConcurrency, 2);
    this.listPageSize = positiveInt('listPageSize', opts.listPageSize, 1000);
    if (this.listPageSize > 1000) throw new ConfigError('unable to use S3 option listPageSize: at most 1000');
    const requestTimeout = positiveInt('requestTimeoutMs', opts.requestTimeoutMs, 60_000);
    const connectionTimeout = positiveInt('connectTimeoutMs', opts.connectTimeoutMs, 5_000);
    const whenRequired = (opts.checksums ?? 'default') === 'when_required';
    if (opts.checksums !== undefined && opts.checksums !== 'default' && opts.checksums !== 'when_required') {
      throw new ConfigError(`unable to use S3 option checksums: '${String(opts.checksums)}' is not default or when_required`);
    }
    this.contentMd5 = whenRequired;
    this.checksumAlgorithm = whenRequired ? undefined : 'CRC32';
    if (opts.sse === 'aws:kms') {
      this.sse = 'aws:kms';
      this.kmsKeyId = opts.kmsKeyId;
    } else if (opts.sse === 'AES256') {
      this.sse = 'AES256';
    } else if (opts.sse !== undefined && opts.sse !== 'none') {
      throw new ConfigError(`unable to use S3 option sse: '${String(opts.sse)}' is not none, AES256 or aws:kms`);
    }
    if (opts.kmsKeyId && this.sse !== 'aws:kms') throw new ConfigError('unable to use S3 option kmsKeyId: needs sse = aws:kms');
    this.storageClass = opts.storageClass ? (opts.storageClass as StorageClass) : undefined;
    this.log = opts.log?.child({ component: 'storage.s3' });
    this.client = new S3Client({
      region: opts.region ?? process.env.AWS_REGION ?? 'us-east-1',
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? false,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      maxAttempts: 1,
      requestChecksumCalculation: whenRequired ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
      responseChecksumValidation: whenRequired ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
      requestHandler: {
        connectionTimeout,
        requestTimeout,
        throwOnRequestTimeout: true,
        socketTimeout: requestTimeout,
      },
    });
  }

  // ---- error handling -------------------------------------------------------------------------

  private where(op: Op, key: string): string {
    switch (op) {
      case 'write':
        return `unable to write object '${key}' to ${this.description}`;
      case 'read':
        return `unable to read object '${key}' from ${this.description}`;
      case 'stat':
        return `unable to stat object '${key}' in ${this.description}`;
      case 'list':
        return `unable to list objects under '${key}' in ${this.description}`;
      case 'delete':
        return `unable to delete object '${key}' from ${this.description}`;
    }
  }

  /** One attempt's failure as our error; retryable ones go back to withRetry. */
  private toError(where: string, err: unknown, signal: AbortSignal | undefined): WalvaultError {
    if (signal?.aborted) return new AbortedError(`${where}: aborted`, { cause: err });
    if (err instanceof WalvaultError) return err;
    const failure = classifyS3Error(err);
    const message = `${where}: ${failure.reason}`;
    switch (failure.kind) {
      case 'not-found':
        return new NotFoundError(message, { cause: err });
      case 'exists':
        return new ObjectExistsError(message, { cause: err });
      case 'aborted':
        return new AbortedError(message, { cause: err });
      default:
        return new StorageError(message, { cause: err, retryable: failure.retryable });
    }
  }

  /**
   * Runs one request under the retry policy. The error that finally escapes says how long we tried,
   * so "S3 was down for 10 s" and "S3 refused us at once" read differently in the log.
   */
  private async run<T>(where: string, key: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    let attempts = 0;
    const started = Date.now();
    try {
      return await withRetry(
        async (attempt) => {
          attempts = attempt;
          try {
            return await fn();
          } catch (err) {
            throw this.toError(where, err, signal);
          }
        },
        this.policy,
        {
          signal,
          onRetry: ({ attempt, delayMs, error }) =>
            this.log?.warn({ key, attempt, delayMs, err: error }, 'storage request failed, retrying'),
        },
      );
    } catch (err) {
      if (signal?.aborted) throw new AbortedError(`${where}: aborted`, { cause: signal.reason });
      if (err instanceof StorageError && err.retryable) {
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        const tries = attempts === 1 ? '1 attempt' : `${attempts} attempts`;
        throw new StorageError(`${err.message}; gave up after ${tries} in ${seconds} s (retryable)`, {
          cause: err.cause,
          retryable: true,
        });
      }
      throw err;
    }
  }

  /**
   * A bare 404 cannot tell a missing object from a missing bucket (HEAD has no error body). Until a
   * request has shown the bucket exists, prove it before answering "absent": a wrong bucket name
   * must not look like an empty archive to restore_command.
   */
  private async confirmBucket(where: string, key: string, signal?: AbortSignal): Promise<void> {
    if (this.bucketSeen) return;
    await this.run(where, key, signal, () =>
      this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.root, MaxKeys: 1 }), abortable(signal)),
    );
    this.bucketSeen = true;
  }

  // ---- writes ---------------------------------------------------------------------------------

  private md5(data: Buffer): string | undefined {
    return this.contentMd5 ? createHash('md5').update(data).digest('base64') : undefined;
  }

  private writeParams(key: string): {
    Bucket: string;
    Key: string;
    ServerSideEncryption?: ServerSideEncryption;
    SSEKMSKeyId?: string;
    StorageClass?: StorageClass;
  } {
    return {
      Bucket: this.bucket,
      Key: this.root + key,
      ...(this.sse ? { ServerSideEncryption: this.sse } : {}),
      ...(this.kmsKeyId ? { SSEKMSKeyId: this.kmsKeyId } : {}),
      ...(this.storageClass ? { StorageClass: this.storageClass } : {}),
    };
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<void> {
    validateKey(key);
    const { signal } = opts;
    const where = this.where('write', key);
    if (signal?.aborted) throw new AbortedError(`${where}: aborted`, { cause: signal.reason });
    // IfNoneMatch alone is not enough: several S3-compatible services ignore it and overwrite.
    if (opts.ifAbsent && (await this.head(key, signal))) throw new ObjectExistsError(`${where}: it already exists`);

    const parts = partsOf(body, this.partSize, signal)[Symbol.asyncIterator]();
    const nextPart = async (): Promise<IteratorResult<Buffer>> => {
      try {
        return await parts.next();
      } catch (err) {
        if (signal?.aborted) throw new AbortedError(`${where}: aborted`, { cause: signal.reason });
        throw bodyFailure(where, err instanceof BodyError ? err : new BodyError(err));
      }
    };
    const first = await nextPart();
    const second = first.done ? first : await nextPart();
    if (signal?.aborted) throw new AbortedError(`${where}: aborted`, { cause: signal.reason });
    if (second.done) {
      const data = first.done ? Buffer.alloc(0) : first.value;
      this.checkLength(where, data.length, opts.contentLength);
      await this.run(where, key, signal, () =>
        this.client.send(
          new PutObjectCommand({
            ...this.writeParams(key),
            Body: data,
            ContentLength: data.length,
            ContentMD5: this.md5(data),
            IfNoneMatch: opts.ifAbsent ? '*' : undefined,
          }),
          abortable(signal),
        ),
      );
      this.bucketSeen = true;
      return;
    }
    await this.putMultipart(key, [first.value as Buffer, second.value], nextPart, opts);
  }

  private checkLength(where: string, actual: number, expected: number | undefined): void {
    if (expected !== undefined && actual !== expected) {
      throw new StorageError(`${where}: body has ${actual} bytes, expected ${expected}`);
    }
  }

  private async putMultipart(
    key: string,
    firstParts: Buffer[],
    nextPart: () => Promise<IteratorResult<Buffer>>,
    opts: PutOptions,
  ): Promise<void> {
    const { signal } = opts;
    const where = this.where('write', key);
    const created = await this.run(where, key, signal, () =>
      this.client.send(
        new CreateMultipartUploadCommand({ ...this.writeParams(key), ChecksumAlgorithm: this.checksumAlgorithm }),
        abortable(signal),
      ),
    );
    this.bucketSeen = true;
    const uploadId = created.UploadId;
    if (!uploadId) throw new StorageError(`${where}: CreateMultipartUpload returned no upload id`);

    const done: CompletedPart[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let total = 0;
    let partNumber = 0;
    const upload = (data: Buffer, n: number): Promise<void> =>
      this.run(where, key, signal, () =>
        this.client.send(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key: this.root + key,
            UploadId: uploadId,
            PartNumber: n,
            Body: data,
            ContentLength: data.length,
            ContentMD5: this.md5(data),
            ChecksumAlgorithm: this.checksumAlgorithm,
          }),
          abortable(signal),
        ),
      ).then((out) => {
        if (!out.ETag) throw new StorageError(`${where}: UploadPart ${n} returned no ETag`);
        done.push({ PartNumber: n, ETag: out.ETag, ...(out.ChecksumCRC32 ? { ChecksumCRC32: out.ChecksumCRC32 } : {}) });
      });

    try {
      for (let pending: Buffer[] = firstParts; ;) {
        const data = pending.shift() ?? (await nextPart()).value;
        if (data === undefined) break;
        if (++partNumber > MAX_PARTS) throw new StorageError(`${where}: more than ${MAX_PARTS} parts; raise partSize`);
        total += data.length;
        const task: Promise<void> = upload(data, partNumber)
          .catch((err: unknown) => {
            failure ??= err;
          })
          .finally(() => inFlight.delete(task));
        inFlight.add(task);
        while (inFlight.size >= this.partConcurrency) await Promise.race(inFlight);
        if (failure !== undefined) break;
      }
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure;
      this.checkLength(where, total, opts.contentLength);
      done.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      await this.run(where, key, signal, () =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: this.root + key,
            UploadId: uploadId,
            MultipartUpload: { Parts: done },
            IfNoneMatch: opts.ifAbsent ? '*' : undefined,
          }),
          abortable(signal),
        ),
      );
    } catch (err) {
      await Promise.allSettled(inFlight);
      // Not under the caller's signal: an aborted put must still release the parts it stored. If this
      // fails too, a bucket lifecycle rule (AbortIncompleteMultipartUpload) collects them.
      await this.run(where, key, undefined, () =>
        this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.root + key, UploadId: uploadId })),
      ).catch(() => undefined);
      if (signal?.aborted) throw new AbortedError(`${where}: aborted`, { cause: err });
      throw err;
    }
  }

  // ---- reads ----------------------------------------------------------------------------------

  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    validateKey(key);
    const { signal } = opts;
    const out = await this.getObject(key, signal);
    const body = out.Body ?? Readable.from([]);
    if (!(body instanceof Readable)) throw new StorageError(`${this.where('read', key)}: response body is not a Node stream`);
    return guardedStream(body, {
      expectedLength: out.ContentLength,
      signal,
      mapError: (err) => this.toError(this.where('read', key), err, signal),
      lengthError: (actual, expected) =>
        new StorageError(`${this.where('read', key)}: response ended after ${actual} of ${expected} bytes`, { retryable: true }),
    });
  }

  private async getObject(key: string, signal: AbortSignal | undefined) {
    try {
      const out = await this.run(this.where('read', key), key, signal, () =>
        this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.root + key }), abortable(signal)),
      );
      this.bucketSeen = true;
      return out;
    } catch (err) {
      if (err instanceof NotFoundError) await this.confirmBucket(this.where('read', key), key, signal);
      throw err;
    }
  }

  async getBuffer(key: string, opts: GetOptions = {}): Promise<Buffer> {
    validateKey(key);
    const { signal } = opts;
    try {
      const data = await this.run(this.where('read', key), key, signal, async () => {
        const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.root + key }), abortable(signal));
        const buf = await collect(out.Body);
        if (out.ContentLength !== undefined && buf.length !== out.ContentLength) {
          throw new StorageError(`${this.where('read', key)}: response ended after ${buf.length} of ${out.ContentLength} bytes`, {
            retryable: true,
          });
        }
        return buf;
      });
      this.bucketSeen = true;
      return data;
    } catch (err) {
      if (err instanceof NotFoundError) await this.confirmBucket(this.where('read', key), key, signal);
      throw err;
    }
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    validateKey(key);
    try {
      const out = await this.run(this.where('stat', key), key, signal, () =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.root + key }), abortable(signal)),
      );
      this.bucketSeen = true;
      return { key, size: out.ContentLength ?? 0, mtime: out.LastModified ?? new Date(0) };
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      await this.confirmBucket(this.where('stat', key), key, signal);
      return undefined;
    }
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ObjectInfo> {
    validatePrefix(prefix);
    let token: string | undefined;
    do {
      const page = await this.run(this.where('list', prefix), prefix, undefined, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.root + prefix,
            MaxKeys: this.listPageSize,
            ...(token ? { ContinuationToken: token } : {}),
            ...(!token && opts.startAfter !== undefined ? { StartAfter: this.root + opts.startAfter } : {}),
          }),
        ),
      );
      this.bucketSeen = true;
      for (const item of page.Contents ?? []) {
        if (!item.Key?.startsWith(this.root)) continue;
        const key = item.Key.slice(this.root.length);
        // Objects someone else put there under names our keys cannot have are not ours to list.
        if (!isValidKey(key)) continue;
        yield { key, size: item.Size ?? 0, mtime: item.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && !token) {
        throw new StorageError(`${this.where('list', prefix)}: truncated listing without a continuation token`, { retryable: true });
      }
    } while (token);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) validateKey(key);
    const unique = [...new Set(keys)];
    for (let i = 0; i < unique.length; i += DELETE_BATCH) {
      const batch = unique.slice(i, i + DELETE_BATCH);
      const where = `${this.where('delete', batch[0]!)}${batch.length > 1 ? ` (batch of ${batch.length})` : ''}`;
      await this.run(where, batch[0]!, undefined, async () => {
        const out = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((k) => ({ Key: this.root + k })), Quiet: true },
          }),
        );
        const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
        const first = failed[0];
        if (first) {
          // Per-key failures come in the body of a 200; classify them by their S3 error code.
          const failure = classifyS3Error({ name: first.Code ?? 'UnknownError' });
          const shown = first.Key?.startsWith(this.root) ? first.Key.slice(this.root.length) : first.Key;
          const others = failed.length > 1 ? ` (and ${failed.length - 1} more keys failed)` : '';
          throw new StorageError(`${this.where('delete', shown ?? batch[0]!)}: ${failure.reason}${others}`, {
            retryable: failure.retryable,
          });
        }
      });
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
