/**
 * Every archived object starts with a small self-describing header, in clear text even when the
 * payload is encrypted, so listing and verification tools can read what an object is without the
 * key, and so decoding never depends on today's configuration.
 *
 *   bytes 0..7   magic "WALVAULT"
 *   byte  8      object format version (1)
 *   bytes 9..12  header length N, u32 big-endian (at most 64 KiB)
 *   N bytes      UTF-8 JSON: ObjectMeta
 *   rest         payload (`payloadBytes` long): codec(original bytes), then encrypted when `encryption` is set; the whole
 *                header (all 13 + N bytes) is bound to every encrypted chunk as associated data.
 */
import { IntegrityError } from '../common/errors.js';
import { quoteExcerpt } from '../common/quote.js';

export const OBJECT_MAGIC = Buffer.from('WALVAULT', 'latin1');
export const OBJECT_FORMAT_VERSION = 1;
const FIXED_LEN = 13;
const MAX_HEADER_JSON = 64 * 1024;

export type ArchivedKind = 'segment' | 'partial' | 'history' | 'backup';

export interface ObjectMeta {
  /** WAL file name as PostgreSQL names it. */
  readonly name: string;
  readonly kind: ArchivedKind;
  /**
   * SHA-256 (hex) of the original bytes, or with `digest: 'payload'` of the compressed payload
   * before encryption.
   */
  readonly sha256: string;
  /**
   * 'payload' (backup packs of catalog format 3 only): `sha256` covers the compressed bytes, which
   * decompress deterministically to the original; absent: it covers the original bytes.
   */
  readonly digest?: 'payload';
  /** Size of the original bytes. */
  readonly size: number;
  /** Size of the payload after the header (compressed, then encrypted): extra or missing bytes are damage. */
  readonly payloadBytes: number;
  readonly codec: string;
  readonly level: number;
  /** Key id of the encryption key (never the key), or null for a plain object. */
  readonly encryption: { readonly alg: 'aes-256-gcm-chunked'; readonly keyId: string } | null;
  /** PostgreSQL system identifier (decimal) of the cluster that wrote the WAL, when known. */
  readonly systemId: string | null;
  readonly timeline: number | null;
  /** Start LSN (`X/X`) of a segment or partial segment. */
  readonly startLsn: string | null;
  /** Bytes of valid WAL in a `.partial` (the rest of the file is padding). */
  readonly validBytes: number | null;
  readonly createdAt: string;
  readonly writer: string;
}

export function encodeObjectHeader(meta: ObjectMeta): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const fixed = Buffer.alloc(FIXED_LEN);
  OBJECT_MAGIC.copy(fixed, 0);
  fixed.writeUInt8(OBJECT_FORMAT_VERSION, 8);
  fixed.writeUInt32BE(json.length, 9);
  return Buffer.concat([fixed, json]);
}

export interface DecodedHeader {
  readonly meta: ObjectMeta;
  /** The exact header bytes (authenticated as associated data when encrypted). */
  readonly headerBytes: Buffer;
  /** Offset of the payload in the object. */
  readonly payloadOffset: number;
}

/**
 * Parses the header from the first bytes of an object. Returns undefined while `bytes` is too short
 * to tell (streaming callers read more); throws IntegrityError for anything that is not our object.
 */
export function decodeObjectHeader(bytes: Buffer, objectName: string): DecodedHeader | undefined {
  const fail = (reason: string): never => {
    throw new IntegrityError(`unable to read archived object '${objectName}': ${reason}`);
  };
  const magicLen = Math.min(bytes.length, OBJECT_MAGIC.length);
  if (!bytes.subarray(0, magicLen).equals(OBJECT_MAGIC.subarray(0, magicLen))) fail('not a walvault object (bad magic)');
  if (bytes.length < FIXED_LEN) return undefined;
  const version = bytes.readUInt8(8);
  if (version !== OBJECT_FORMAT_VERSION) fail(`unsupported object format version ${version}`);
  const jsonLen = bytes.readUInt32BE(9);
  if (jsonLen === 0 || jsonLen > MAX_HEADER_JSON) fail(`implausible header length ${jsonLen}`);
  if (bytes.length < FIXED_LEN + jsonLen) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.subarray(FIXED_LEN, FIXED_LEN + jsonLen).toString('utf8'));
  } catch {
    fail('header is not valid JSON');
  }
  const meta = validateMeta(parsed, fail);
  return { meta, headerBytes: Buffer.from(bytes.subarray(0, FIXED_LEN + jsonLen)), payloadOffset: FIXED_LEN + jsonLen };
}

function validateMeta(v: unknown, fail: (reason: string) => never): ObjectMeta {
  if (typeof v !== 'object' || v === null) return fail('header is not an object');
  const o = v as Record<string, unknown>;
  const str = (k: string): string => (typeof o[k] === 'string' ? (o[k] as string) : fail(`header field '${k}' missing`));
  const int = (k: string): number =>
    typeof o[k] === 'number' && Number.isSafeInteger(o[k]) && (o[k] as number) >= 0
      ? (o[k] as number)
      : fail(`header field '${k}' invalid`);
  const nullable = <T>(k: string, f: (k: string) => T): T | null => (o[k] === null || o[k] === undefined ? null : f(k));
  const kind = str('kind');
  if (!['segment', 'partial', 'history', 'backup'].includes(kind)) fail(`unknown object kind ${quoteExcerpt(kind)}`);
  const sha256 = str('sha256');
  if (!/^[0-9a-f]{64}$/.test(sha256)) fail('header field sha256 invalid');
  let encryption: ObjectMeta['encryption'] = null;
  if (o['encryption'] !== null && o['encryption'] !== undefined) {
    const e = o['encryption'] as Record<string, unknown>;
    if (e['alg'] !== 'aes-256-gcm-chunked' || typeof e['keyId'] !== 'string') fail('unsupported encryption in header');
    encryption = { alg: 'aes-256-gcm-chunked', keyId: e['keyId'] as string };
  }
  const digest = o['digest'];
  if (digest !== undefined && (digest !== 'payload' || kind !== 'backup')) fail(`unsupported digest ${quoteExcerpt(String(digest))}`);
  // Segments always record their cluster: a header that lost it must not skip the identity check.
  if ((kind === 'segment' || kind === 'partial') && typeof o['systemId'] !== 'string') fail('header field systemId missing');
  return {
    name: str('name'),
    kind: kind as ArchivedKind,
    sha256,
    size: int('size'),
    payloadBytes: int('payloadBytes'),
    codec: str('codec'),
    level: typeof o['level'] === 'number' ? (o['level'] as number) : 0,
    encryption,
    systemId: nullable('systemId', str),
    timeline: nullable('timeline', int),
    startLsn: nullable('startLsn', str),
    validBytes: nullable('validBytes', int),
    createdAt: str('createdAt'),
    writer: str('writer'),
    ...(digest === 'payload' ? { digest } : {}),
  };
}
