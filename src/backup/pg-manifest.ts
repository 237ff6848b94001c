/**
 * PostgreSQL's own `backup_manifest` (the JSON the server sends after the archives, kept byte for
 * byte with every backup): parsed here so backup-verify can hold walvault's catalog against what
 * PostgreSQL itself says it sent. Pure.
 *
 * Format (PostgreSQL's backup_manifest.c, read by pg_verifybackup's parse_manifest.c): one object,
 * `PostgreSQL-Backup-Manifest-Version` 1 (PostgreSQL 13-16) or 2 (17+, adds `System-Identifier`),
 * `Files` (`Path`, or `Encoded-Path` in hex when the name is not valid UTF-8; `Size`,
 * `Last-Modified`, and `Checksum-Algorithm` + `Checksum` unless the algorithm is NONE),
 * `WAL-Ranges` (`Timeline`, `Start-LSN`, `End-LSN`), and `Manifest-Checksum`: the SHA-256 (hex) of
 * every byte up to and including the newline that ends the line before the checksum's own line.
 */
import { createHash } from 'node:crypto';
import { IntegrityError } from '../common/errors.js';
import { parseLsn, type Lsn } from '../segment/lsn.js';

export type ManifestChecksumAlgorithm = 'NONE' | 'CRC32C' | 'SHA224' | 'SHA256' | 'SHA384' | 'SHA512';
const ALGORITHMS: ReadonlySet<string> = new Set(['NONE', 'CRC32C', 'SHA224', 'SHA256', 'SHA384', 'SHA512']);

export interface ManifestFile {
  /** Relative to the data directory; tablespace files as `pg_tblspc/<oid>/...`. */
  readonly path: string;
  readonly size: number;
  readonly lastModified: string | null;
  readonly algorithm: ManifestChecksumAlgorithm;
  /** Lowercase hex; null with NONE. */
  readonly checksum: string | null;
}

export interface ManifestWalRange {
  readonly timeline: number;
  readonly startLsn: Lsn;
  readonly endLsn: Lsn;
}

export interface PgManifest {
  readonly version: 1 | 2;
  /** Decimal text (a uint64 does not fit a JSON number); version 2 only. */
  readonly systemId: string | null;
  readonly files: readonly ManifestFile[];
  readonly walRanges: readonly ManifestWalRange[];
  readonly manifestChecksum: string;
}

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/** Parses a backup_manifest and verifies its Manifest-Checksum; IntegrityError naming `key` otherwise. */
export function parsePgManifest(bytes: Buffer, key: string): PgManifest {
  const fail = (reason: string): never => {
    throw new IntegrityError(`unable to read backup manifest '${key}': ${reason}`);
  };
  verifyManifestChecksum(bytes, fail);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    return fail('not valid JSON');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) fail('not a JSON object');
  const version = doc['PostgreSQL-Backup-Manifest-Version'];
  if (version !== 1 && version !== 2) fail(`unsupported manifest version ${JSON.stringify(version)}`);
  let systemId: string | null = null;
  if (version === 2) {
    // JSON.parse would round a 64-bit identifier: take its digits from the text.
    const m = /"System-Identifier"\s*:\s*(\d+)\s*[,}]/.exec(bytes.toString('utf8'));
    if (!m) fail('version 2 manifest without a System-Identifier');
    systemId = m![1]!;
  }
  const rawFiles = doc['Files'];
  if (!Array.isArray(rawFiles)) return fail('no Files array');
  const files = rawFiles.map((f: unknown, i) => parseFile(f, (reason) => fail(`file ${i + 1}: ${reason}`)));
  const rawRanges = doc['WAL-Ranges'];
  if (!Array.isArray(rawRanges) || rawRanges.length === 0) return fail('no WAL-Ranges');
  const walRanges = rawRanges.map((r: unknown, i) => parseRange(r, (reason) => fail(`WAL range ${i + 1}: ${reason}`)));
  const manifestChecksum = String(doc['Manifest-Checksum']).toLowerCase();
  return { version: version as 1 | 2, systemId, files, walRanges, manifestChecksum };
}

function verifyManifestChecksum(bytes: Buffer, fail: (reason: string) => never): void {
  const last = bytes.length - 1;
  if (last < 0 || bytes[last] !== 0x0a) fail('last line not newline-terminated');
  const penultimate = bytes.lastIndexOf(0x0a, last - 1);
  if (penultimate < 0) fail('expected at least 2 lines');
  const lastLine = bytes.subarray(penultimate + 1, last).toString('utf8');
  const m = /^"Manifest-Checksum"\s*:\s*"([^"]*)"\s*}\s*$/.exec(lastLine);
  if (!m) fail('the last line is not the Manifest-Checksum');
  const expected = m![1]!;
  if (!/^[0-9a-fA-F]{64}$/.test(expected)) fail(`invalid manifest checksum "${expected}"`);
  const actual = createHash('sha256')
    .update(bytes.subarray(0, penultimate + 1))
    .digest('hex');
  if (actual !== expected.toLowerCase())
    fail(`manifest checksum mismatch: the manifest says ${expected.toLowerCase()}, its bytes hash to ${actual}`);
}

function parseFile(raw: unknown, fail: (reason: string) => never): ManifestFile {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return fail('not an object');
  const f = raw as Record<string, unknown>;
  let path: string;
  if (typeof f['Path'] === 'string') {
    if ('Encoded-Path' in f) fail('both Path and Encoded-Path');
    path = f['Path'];
  } else if (typeof f['Encoded-Path'] === 'string') {
    const hex = f['Encoded-Path'];
    if (!HEX_RE.test(hex)) fail('Encoded-Path is not hexadecimal');
    path = Buffer.from(hex, 'hex').toString('utf8');
  } else {
    return fail('no Path or Encoded-Path');
  }
  if (path === '') fail('empty path');
  const size = f['Size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) fail(`'${path}': bad Size`);
  const lastModified = typeof f['Last-Modified'] === 'string' ? f['Last-Modified'] : null;
  const alg = f['Checksum-Algorithm'] ?? 'NONE';
  if (typeof alg !== 'string' || !ALGORITHMS.has(alg.toUpperCase())) fail(`'${path}': unknown Checksum-Algorithm ${JSON.stringify(alg)}`);
  const algorithm = (alg as string).toUpperCase() as ManifestChecksumAlgorithm;
  let checksum: string | null = null;
  if (algorithm !== 'NONE') {
    const c = f['Checksum'];
    if (typeof c !== 'string' || c === '' || !HEX_RE.test(c)) fail(`'${path}': bad Checksum`);
    checksum = (c as string).toLowerCase();
  }
  return { path, size: size as number, lastModified, algorithm, checksum };
}

function parseRange(raw: unknown, fail: (reason: string) => never): ManifestWalRange {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return fail('not an object');
  const r = raw as Record<string, unknown>;
  const timeline = r['Timeline'];
  if (typeof timeline !== 'number' || !Number.isInteger(timeline) || timeline < 1 || timeline > 0xffffffff) fail('bad Timeline');
  const lsnOf = (field: string): Lsn => {
    const v = r[field];
    if (typeof v !== 'string') return fail(`bad ${field}`);
    try {
      return parseLsn(v);
    } catch {
      return fail(`bad ${field} ${JSON.stringify(v)}`);
    }
  };
  const startLsn = lsnOf('Start-LSN');
  const endLsn = lsnOf('End-LSN');
  if (endLsn < startLsn) fail('End-LSN before Start-LSN');
  return { timeline: timeline as number, startLsn, endLsn };
}
