/**
 * Object key layout of an archive (documented in docs/storage-format.md). Pure functions.
 *
 *   archive.info, archive.info.copy                         identity record, stored twice
 *   wal/<TLI>/<TLI><LOG>/<file>-<sha256>.<ext>[.enc]         segments, .partial and .backup files
 *   history/<TLI>.history-<sha256>.<ext>[.enc]               timeline history files
 *   claims/wal/<TLI>/<TLI><LOG>/<file>, claims/history/<TLI>.history
 *                                                            which content a name is promised to (claim.ts)
 *   errors/<file>-<sha256>.<ext>[.enc]                       refused duplicates, kept for the operator
 *   errors/<file>-<sha256>.<ext>[.enc].damaged-<time>        damaged objects a push replaced
 *   backups/<name>/...                                       base backups (src/backup/layout.ts)
 *
 * The SHA-256 of the original bytes is part of the key, so one prefix listing answers "absent",
 * "already archived with the same content" or "a different file holds this name" without a GET, and
 * a prefix listing of `wal/<TLI>/` walks that timeline in WAL order.
 */
import { InvalidNameError } from '../common/errors.js';
import { tryClassifyWalFileName } from '../segment/names.js';
import { formatTimelineHex, timeline as toTimeline, type Timeline } from '../segment/timeline.js';

export const IDENTITY_KEY = 'archive.info';
export const IDENTITY_COPY_KEY = 'archive.info.copy';
export const WAL_PREFIX = 'wal/';
export const HISTORY_PREFIX = 'history/';
export const ERRORS_PREFIX = 'errors/';
export const ENCRYPTED_SUFFIX = '.enc';
export const CLAIMS_PREFIX = 'claims/';
/** Base backups: src/backup/layout.ts owns what is below it. */
export const BACKUPS_PREFIX = 'backups/';

const SHA256_RE = /^[0-9a-f]{64}$/;
const EXT_RE = /^[a-z0-9]{1,8}$/;

export interface ObjectKeyParts {
  /** The WAL file name as PostgreSQL names it (segment, `.partial`, `.backup` or `.history`). */
  readonly fileName: string;
  readonly sha256: string;
  /** Codec file extension: `zst`, `lz4`, `gz`, `br`, or `raw` for no compression. */
  readonly extension: string;
  readonly encrypted: boolean;
}

/** Directory (with trailing slash) that holds a WAL file's objects. */
export function directoryFor(fileName: string): string {
  const c = tryClassifyWalFileName(fileName);
  if (c === undefined) throw new InvalidNameError(`unable to place WAL file '${fileName}' in the archive: not a WAL file name`);
  return c.kind === 'history' ? HISTORY_PREFIX : logDirectoryPrefix(c.timeline, c.logId);
}

/**
 * The directory of one timeline's log (the LSN's high 32 bits): `wal/<TLI>/<TLI><LOG>/`, which is
 * the first 16 characters of every segment name in it.
 */
export function logDirectoryPrefix(tli: Timeline, log: number): string {
  const t = formatTimelineHex(tli);
  return `${WAL_PREFIX}${t}/${t}${log.toString(16).toUpperCase().padStart(8, '0')}/`;
}

/** The timeline and log of a key under wal/, from its directories; undefined for any other key. */
export function parseLogDirectory(key: string): { readonly timeline: Timeline; readonly log: number } | undefined {
  const m = /^wal\/([0-9A-F]{8})\/([0-9A-F]{8})([0-9A-F]{8})\//.exec(key);
  if (!m || m[1] !== m[2]) return undefined;
  const tli = Number.parseInt(m[1]!, 16);
  return tli === 0 ? undefined : { timeline: tli as Timeline, log: Number.parseInt(m[3]!, 16) };
}

/** The timeline of a key under wal/, from its first directory; undefined for any other key. */
export function parseTimelineDirectory(key: string): Timeline | undefined {
  const m = /^wal\/([0-9A-F]{8})\//.exec(key);
  const tli = m ? Number.parseInt(m[1]!, 16) : 0;
  return tli === 0 ? undefined : (tli as Timeline);
}

/** Prefix that lists every stored object of one file name (any checksum, codec or encryption). */
export function lookupPrefix(fileName: string): string {
  return `${directoryFor(fileName)}${fileName}-`;
}

/** Prefix that lists one timeline's segments in WAL order. */
export function timelinePrefix(tli: Timeline | number): string {
  return `${WAL_PREFIX}${formatTimelineHex(toTimeline(tli))}/`;
}

export function objectKey(parts: ObjectKeyParts): string {
  return `${directoryFor(parts.fileName)}${leafName(parts)}`;
}

/** Where a refused duplicate goes: outside wal/ so fetch and listings never mistake it for WAL. */
export function errorKey(parts: ObjectKeyParts): string {
  return `${ERRORS_PREFIX}${leafName(parts)}`;
}

function leafName(parts: ObjectKeyParts): string {
  if (!SHA256_RE.test(parts.sha256)) throw new InvalidNameError(`unable to build object key: bad sha256 '${parts.sha256}'`);
  if (!EXT_RE.test(parts.extension)) throw new InvalidNameError(`unable to build object key: bad extension '${parts.extension}'`);
  return `${parts.fileName}-${parts.sha256}.${parts.extension}${parts.encrypted ? ENCRYPTED_SUFFIX : ''}`;
}

/** Parses the last path component of an object key; undefined for anything we did not write. */
export function parseObjectKey(key: string): ObjectKeyParts | undefined {
  const leaf = key.slice(key.lastIndexOf('/') + 1);
  const m = /^(.+)-([0-9a-f]{64})\.([a-z0-9]{1,8})(\.enc)?$/.exec(leaf);
  if (!m) return undefined;
  return { fileName: m[1]!, sha256: m[2]!, extension: m[3]!, encrypted: m[4] !== undefined };
}

/**
 * The claim of a file name: written create-only before the data object, so that of two pushes of
 * different contents exactly one wins the name. Outside wal/ and history/, so listings of WAL, and
 * versions of walvault that predate claims, never see one.
 */
export function claimKey(fileName: string): string {
  return `${CLAIMS_PREFIX}${directoryFor(fileName)}${fileName}`;
}

/** The file name a claim key is for; undefined for any other key. */
export function parseClaimKey(key: string): string | undefined {
  if (!key.startsWith(CLAIMS_PREFIX)) return undefined;
  const fileName = key.slice(key.lastIndexOf('/') + 1);
  try {
    return claimKey(fileName) === key ? fileName : undefined;
  } catch {
    return undefined;
  }
}

/** Where a damaged object goes before a push replaces it; the time keeps repeated damage apart. */
export function damagedKey(objectKeyOfDamaged: string, when: Date): string {
  const leaf = objectKeyOfDamaged.slice(objectKeyOfDamaged.lastIndexOf('/') + 1);
  const stamp = when.toISOString().replace(/[-:]/g, '').replace('.', '');
  return `${ERRORS_PREFIX}${leaf}.damaged-${stamp}`;
}
