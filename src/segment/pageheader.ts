/**
 * WAL page headers (XLogPageHeaderData / XLogLongPageHeaderData in access/xlog_internal.h),
 * little-endian as on every platform walvault supports (x86-64, arm64).
 */
import { hex16, isAllZero, walError } from './internal.js';
import { formatLsn, type Lsn } from './lsn.js';
import { isValidSegSize } from './segsize.js';
import { type Timeline } from './timeline.js';

/** SizeOfXLogShortPHD: 20 bytes of fields, MAXALIGNed to 24. */
export const SHORT_PAGE_HEADER_SIZE = 24;
/** SizeOfXLogLongPHD: the short header plus sysid, seg_size and xlog_blcksz. */
export const LONG_PAGE_HEADER_SIZE = 40;

export const XLP_FIRST_IS_CONTRECORD = 0x0001;
export const XLP_LONG_HEADER = 0x0002;
export const XLP_BKP_REMOVABLE = 0x0004;
export const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008;

export const MIN_WAL_BLOCK_SIZE = 1024;
export const MAX_WAL_BLOCK_SIZE = 65536;

/**
 * XLOG_PAGE_MAGIC of each PostgreSQL major version. The magic changes whenever the WAL format
 * does, so it identifies the major version that wrote a segment; an unknown one is never guessed.
 */
export const WAL_PAGE_MAGIC_BY_MAJOR: ReadonlyMap<number, number> = new Map([
  [12, 0xd101],
  [13, 0xd106],
  [14, 0xd10d],
  [15, 0xd110],
  [16, 0xd113],
  [17, 0xd116],
  [18, 0xd118],
]);

const MAJOR_BY_MAGIC: ReadonlyMap<number, number> = new Map([...WAL_PAGE_MAGIC_BY_MAJOR].map(([major, magic]) => [magic, major]));

export function pgMajorForMagic(magic: number): number | undefined {
  return MAJOR_BY_MAGIC.get(magic);
}

export function magicForPgMajor(major: number): number | undefined {
  return WAL_PAGE_MAGIC_BY_MAJOR.get(major);
}

/** The fields of a short page header exactly as stored; nothing is validated. */
export interface PageHeader {
  readonly magic: number;
  readonly info: number;
  /** xlp_tli as stored (0 in garbage). */
  readonly timeline: number;
  readonly pageAddr: Lsn;
  readonly remLen: number;
}

/** A validated long header (page 0 of a segment). */
export interface LongPageHeader extends PageHeader {
  readonly timeline: Timeline;
  readonly pgMajor: number;
  /** xlp_sysid in decimal, as pg_controldata prints it (a u64 does not fit a JS number). */
  readonly systemId: string;
  readonly segSize: number;
  readonly blockSize: number;
}

export function formatMagic(magic: number): string {
  return hex16(magic);
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reads the short header at `offset`; the caller makes sure 24 bytes are there. */
export function readPageHeader(bytes: Uint8Array, offset = 0): PageHeader {
  if (!Number.isInteger(offset) || offset < 0 || offset + SHORT_PAGE_HEADER_SIZE > bytes.length) {
    throw new RangeError(`no complete WAL page header at offset ${String(offset)} of ${String(bytes.length)} bytes`);
  }
  const dv = view(bytes);
  return {
    magic: dv.getUint16(offset, true),
    info: dv.getUint16(offset + 2, true),
    timeline: dv.getUint32(offset + 4, true),
    pageAddr: dv.getBigUint64(offset + 8, true) as Lsn,
    remLen: dv.getUint32(offset + 16, true),
  };
}

/** What common non-WAL contents look like, to make "unknown magic" errors actionable. */
function contentHint(bytes: Uint8Array): string {
  const starts = (...sig: number[]): boolean => sig.every((b, i) => bytes[i] === b);
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return ' (the data is zstd-compressed)';
  if (starts(0x1f, 0x8b)) return ' (the data is gzip-compressed)';
  if (starts(0x04, 0x22, 0x4d, 0x18)) return ' (the data is lz4-compressed)';
  return '';
}

/**
 * Reads and checks the long header at the start of a segment: enough to learn which cluster,
 * PostgreSQL version, timeline, position and segment size the file claims, from its first 40
 * bytes. `label` (a file name) only goes into error messages.
 */
export function readLongHeader(bytes: Uint8Array, label?: string): LongPageHeader {
  if (bytes.length === 0) throw walError('read', label, 'the file is empty');
  if (isAllZero(bytes)) throw walError('read', label, 'not WAL (all zeros)');
  if (bytes.length >= LONG_PAGE_HEADER_SIZE && isAllZero(bytes, 0, LONG_PAGE_HEADER_SIZE)) {
    throw walError('read', label, 'not WAL: page 0 starts with a zero-filled header');
  }
  const tooShort = `${String(bytes.length)} bytes is shorter than a WAL long page header (40 bytes)`;
  if (bytes.length < 2) throw walError('read', label, tooShort);
  const magic = view(bytes).getUint16(0, true);
  const pgMajor = pgMajorForMagic(magic);
  if (pgMajor === undefined) {
    const known = [...WAL_PAGE_MAGIC_BY_MAJOR].map(([major, m]) => `${String(major)}=${formatMagic(m)}`).join(', ');
    throw walError(
      'read',
      label,
      `unknown WAL page magic ${formatMagic(magic)} on page 0${contentHint(bytes)}: not WAL from a supported PostgreSQL version (known: ${known})`,
    );
  }
  if (bytes.length < LONG_PAGE_HEADER_SIZE) throw walError('read', label, tooShort);
  const short = readPageHeader(bytes, 0);
  const dv = view(bytes);
  const systemId = dv.getBigUint64(24, true).toString();
  const segSize = dv.getUint32(32, true);
  const blockSize = dv.getUint32(36, true);
  if ((short.info & XLP_LONG_HEADER) === 0) {
    throw walError('read', label, `page 0 lacks the long-header flag (xlp_info ${hex16(short.info)}); not the start of a WAL segment`);
  }
  if (short.timeline === 0) throw walError('read', label, 'page 0 has timeline 0');
  if (!isValidSegSize(segSize)) {
    throw walError('read', label, `the header's segment size ${String(segSize)} is not a power of two from 1MB to 1GB`);
  }
  if (blockSize < MIN_WAL_BLOCK_SIZE || blockSize > MAX_WAL_BLOCK_SIZE || (blockSize & (blockSize - 1)) !== 0) {
    throw walError('read', label, `the header's WAL block size ${String(blockSize)} is not a power of two from 1kB to 64kB`);
  }
  if (short.pageAddr % BigInt(segSize) !== 0n) {
    throw walError('read', label, `page 0 address ${formatLsn(short.pageAddr)} is not at a ${String(segSize)}-byte segment boundary`);
  }
  return { ...short, timeline: short.timeline as Timeline, pgMajor, systemId, segSize, blockSize };
}
