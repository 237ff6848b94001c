/**
 * Archive URL → Storage. The S3 driver (and with it the AWS SDK, ~70 ms to load) is imported only
 * when an s3:// URL is used, so archive_command to a posix archive never pays for it.
 *
 * Configuration names (wired in src/config) map onto the options here:
 *   WALVAULT_ARCHIVE               → the url argument
 *   WALVAULT_S3_ENDPOINT           → endpoint
 *   WALVAULT_S3_REGION             → region (else AWS_REGION, else us-east-1)
 *   WALVAULT_S3_FORCE_PATH_STYLE   → forcePathStyle
 *   WALVAULT_S3_CHECKSUMS          → checksums ('default' | 'when_required')
 *   WALVAULT_S3_STORAGE_CLASS      → storageClass
 *   WALVAULT_S3_SSE, _SSE_KMS_KEY_ID → sse, kmsKeyId
 *   WALVAULT_S3_MAX_ATTEMPTS       → maxAttempts
 *   WALVAULT_S3_REQUEST_TIMEOUT    → requestTimeoutMs
 *   WALVAULT_S3_ACCESS_KEY_ID, _SECRET_ACCESS_KEY_FILE(_ACCESS) → credentials (s3-credentials.ts)
 *   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN / AWS_PROFILE: read by the SDK's
 *   own provider chain unless `credentials` is given.
 *   WALVAULT_POSIX_FILE_MODE, _DIR_MODE → fileMode, dirMode (octal text, see parseModeSetting)
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../common/errors.js';
import { BUCKET_NAME, isValidKey } from './key.js';
import { PosixStorage, type PosixStorageOptions } from './posix.js';
import type { S3StorageOptions } from './s3.js';
import { loadS3Credentials, type S3CredentialSettings } from './s3-credentials.js';
import type { Storage } from './types.js';

export type StorageLocation = { kind: 'posix'; root: string } | { kind: 's3'; bucket: string; prefix: string };

/** Everything of S3StorageOptions except where, which comes from the URL; credentials also from files. */
export type S3ConnectionOptions = Omit<S3StorageOptions, 'bucket' | 'prefix'> & S3CredentialSettings;

/** `posix-file-mode` / `posix-dir-mode`: octal text such as `0640` (or `640`). */
export function parseModeSetting(name: string, text: string): number {
  if (!/^0?[0-7]{3}$/.test(text.trim())) {
    throw new ConfigError(`unable to use ${name} '${text}': expected an octal mode such as 0640`);
  }
  return parseInt(text.trim(), 8);
}

export type PosixOptions = Omit<PosixStorageOptions, 'root'>;

function bad(url: string, why: string): never {
  throw new ConfigError(`unable to use archive location '${url}': ${why}`);
}

/**
 * Accepts `file:///absolute/dir`, a plain absolute path (what DBAs type), and `s3://bucket[/prefix]`.
 * Relative paths are refused: archive_command runs in PGDATA, so they would land inside the cluster.
 */
export function parseStorageUrl(url: string): StorageLocation {
  const location = parseLocation(url);
  // `file://` (no path) means the root: never an archive, and a wal-fetch reading it would find
  // "nothing there" and end a recovery early. Also what an unset variable in `file://$DIR` gives.
  if (location.kind === 'posix' && location.root === path.parse(location.root).root) {
    bad(url, 'the file system root is not an archive directory; write file:///absolute/dir');
  }
  return location;
}

function parseLocation(url: string): StorageLocation {
  if (typeof url !== 'string' || url.trim() === '') bad(String(url), 'empty');
  if (url !== url.trim()) bad(url, 'leading or trailing spaces');
  if (url.startsWith('/')) return { kind: 'posix', root: path.resolve(url) };
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'file') {
    // 'file:dir' would parse as '/dir': a relative path in disguise.
    if (!url.toLowerCase().startsWith('file://')) bad(url, 'write file:///absolute/dir');
    let root: string;
    try {
      root = fileURLToPath(url);
    } catch (err) {
      bad(url, `not a local file URL (${(err as Error).message}); write file:///absolute/dir`);
    }
    return { kind: 'posix', root: path.resolve(root) };
  }
  if (scheme === 's3') {
    const rest = url.slice('s3://'.length);
    if (!url.toLowerCase().startsWith('s3://')) bad(url, 'write s3://bucket/prefix');
    if (/[?#]/.test(rest)) bad(url, 'query strings are not supported; use the WALVAULT_S3_* settings');
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = (slash === -1 ? '' : rest.slice(slash + 1)).replace(/\/+$/, '');
    if (!BUCKET_NAME.test(bucket)) bad(url, `'${bucket}' is not a bucket name`);
    if (prefix !== '' && !isValidKey(prefix)) bad(url, `'${prefix}' is not a usable prefix (empty or dot segments, backslash, ...)`);
    return { kind: 's3', bucket, prefix };
  }
  if (scheme === undefined) {
    bad(url, 'relative paths are not allowed (archive_command runs in the data directory); use an absolute path');
  }
  bad(url, `unsupported scheme '${scheme}:'; use file:///absolute/dir or s3://bucket/prefix`);
}

/** `s3Options` are ignored for posix URLs and `posixOptions` for s3 ones, so callers can pass both. */
export async function createStorage(url: string, s3Options: S3ConnectionOptions = {}, posixOptions: PosixOptions = {}): Promise<Storage> {
  const location = parseStorageUrl(url);
  if (location.kind === 'posix') return new PosixStorage({ ...posixOptions, root: location.root });
  const { accessKeyId, secretAccessKeyFile, secretAccessKeyFileAccess, ...connection } = s3Options;
  const fromFile = await loadS3Credentials({ accessKeyId, secretAccessKeyFile, secretAccessKeyFileAccess });
  const { S3Storage } = await import('./s3.js');
  return new S3Storage({ ...connection, ...(fromFile ? { credentials: fromFile } : {}), bucket: location.bucket, prefix: location.prefix });
}
