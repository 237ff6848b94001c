/**
 * Key rules shared by every driver. Keys come from our own code, but the posix driver turns them into
 * paths, so anything that could escape the root or alias another key is refused (defense in depth):
 * '.'/'..' and every other segment starting with '.', which also keeps the posix driver's temp
 * files ('.<name>.<random>.tmp') out of the key space; absolute keys, empty segments ('a//b',
 * trailing '/'), backslashes, control characters including NUL, and lone UTF-16 surrogates (they
 * have no UTF-8 form, so two different keys could end up as the same name).
 */
import { InvalidKeyError } from '../common/errors.js';

/** S3's limit on a whole key. */
const MAX_KEY_BYTES = 1024;
/** NAME_MAX of common Linux file systems. */
const MAX_SEGMENT_BYTES = 255;

const FORBIDDEN_CHAR = /[\\\u0000-\u001f\u007f]|\p{Cs}/u;

function segmentProblem(segment: string): string | undefined {
  if (segment === '') return 'empty path segment';
  if (segment === '.' || segment === '..') return `'${segment}' segment`;
  if (segment.startsWith('.')) return 'segment starts with a dot';
  if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return `segment longer than ${MAX_SEGMENT_BYTES} bytes`;
  return undefined;
}

function keyProblem(key: string): string | undefined {
  if (key === '') return 'empty key';
  if (key.startsWith('/')) return 'absolute key';
  if (FORBIDDEN_CHAR.test(key)) return 'backslash, control character or lone surrogate in key';
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes`;
  for (const segment of key.split('/')) {
    const problem = segmentProblem(segment);
    if (problem) return problem;
  }
  return undefined;
}

function printable(key: string): string {
  return JSON.stringify(key).slice(1, -1);
}

export function isValidKey(key: string): boolean {
  return keyProblem(key) === undefined;
}

export function validateKey(key: string): string {
  if (typeof key !== 'string') throw new InvalidKeyError(`unable to use storage key '${String(key)}': not a string`);
  const problem = keyProblem(key);
  if (problem) throw new InvalidKeyError(`unable to use storage key '${printable(key)}': ${problem}`);
  return key;
}

/**
 * A list prefix is '' or the start of a valid key: every complete segment must be valid, and the
 * last one may be partial or empty (a trailing '/').
 */
export function validatePrefix(prefix: string): string {
  if (typeof prefix !== 'string') throw new InvalidKeyError(`unable to use storage prefix '${String(prefix)}': not a string`);
  if (prefix === '') return prefix;
  const slash = prefix.lastIndexOf('/');
  const partial = prefix.slice(slash + 1);
  const problem = (slash === -1 ? undefined : keyProblem(prefix.slice(0, slash))) ?? (partial === '' ? undefined : keyProblem(partial));
  if (problem) throw new InvalidKeyError(`unable to use storage prefix '${printable(prefix)}': ${problem}`);
  return prefix;
}

/**
 * Bucket names as S3-compatible services accept them: looser than AWS's rules (3-63 lower-case
 * characters) on purpose, since some services allow more; the server has the last word.
 */
export const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/** Byte order of the UTF-8 encodings: the order S3 lists in. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
