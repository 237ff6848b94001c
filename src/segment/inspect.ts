/**
 * Checks that bytes are a WAL segment (or the leading part of one) and says what it holds: which
 * cluster, version, timeline and position, and how many leading bytes are valid, chained pages.
 *
 * Where valid WAL ends, a segment holds one of:
 * - zeros: a new (zero-filled) file not written that far, or the rest of a segment that
 *   pg_switch_wal/archive_timeout ended early (PostgreSQL 13 to 18 write that rest as zeros);
 * - recycled pages: PostgreSQL renames old segment files for reuse, so an unfinished segment may
 *   end in pages of an older segment. Both end the data; neither is corruption.
 * Anything else that breaks the chain (another magic, an address ahead or in a later segment, a
 * timeline going backwards) is corruption and throws InvalidWalError naming the page.
 */
import { ArchiveMismatchError, InvalidNameError, UsageError } from '../common/errors.js';
import { formatLsn, type Lsn } from './lsn.js';
import { parseWalFileName } from './names.js';
import { readLongHeader, readPageHeader, formatMagic, SHORT_PAGE_HEADER_SIZE, type LongPageHeader } from './pageheader.js';
import { assertSegSize, formatSegSize } from './segsize.js';
import { type Timeline } from './timeline.js';
import { isAllZero, walError, walMessage } from './internal.js';

export interface InspectOptions {
  /** The file's name (segment or `.partial`): its timeline and start must fit the header. */
  readonly expectedName?: string;
  /** The cluster's system identifier (decimal string or bigint). */
  readonly expectedSystemId?: string | bigint;
  readonly expectedSegSize?: number;
}

/**
 * Why the valid region ends where it does:
 * `full` the whole segment is valid; `zeros` an all-zero page follows; `recycled` a page left over
 * from an earlier segment follows; `truncated` the buffer ends before the segment does.
 */
export type WalEnd = 'full' | 'zeros' | 'recycled' | 'truncated';

export interface SegmentInspection {
  /** xlp_sysid in decimal, as pg_controldata prints it. */
  readonly systemId: string;
  /** xlp_tli of page 0; may be the parent's on a new timeline's first segment. */
  readonly timeline: Timeline;
  /** xlp_tli of the last valid page (later than `timeline` when the segment holds a switch). */
  readonly lastPageTimeline: Timeline;
  readonly startLsn: Lsn;
  readonly segSize: number;
  readonly blockSize: number;
  readonly pgMajor: number;
  readonly magic: number;
  /** Leading bytes covered by valid, chained pages (the last one may be cut short by the buffer's end). */
  readonly validBytes: number;
  /** Number of valid pages, page 0 included. */
  readonly pages: number;
  readonly end: WalEnd;
  /** The buffer is exactly one segment long and every page of it is valid. */
  readonly complete: boolean;
  /** The buffer is shorter than the segment size the header declares. */
  readonly truncated: boolean;
}

/**
 * The cluster a segment must come from: what validateSegmentForArchive checks a header against.
 * Not the archive's identity record (archive/identity.ts ArchiveIdentity), which holds more.
 */
export interface SegmentIdentity {
  readonly systemId: string | bigint;
  readonly segSize: number;
}

function normalizeSystemId(value: string | bigint): string {
  const big = typeof value === 'bigint' ? value : /^\d{1,20}$/.test(value) ? BigInt(value) : -1n;
  if (big < 0n || big > 0xffff_ffff_ffff_ffffn) {
    throw new UsageError(`unable to use system identifier '${String(value)}': expected an unsigned 64-bit decimal number`);
  }
  return big.toString();
}

/** The header against the caller's expectations and the file name; `length` is the file's size. */
export function checkExpectations(length: number, header: LongPageHeader, opts: InspectOptions): void {
  const label = opts.expectedName;
  if (opts.expectedSystemId !== undefined) {
    const expected = normalizeSystemId(opts.expectedSystemId);
    if (header.systemId !== expected) {
      throw new ArchiveMismatchError(walMessage('verify', label, `it belongs to database system ${header.systemId}, expected ${expected}`));
    }
  }
  if (opts.expectedSegSize !== undefined && header.segSize !== assertSegSize(opts.expectedSegSize)) {
    throw new ArchiveMismatchError(
      walMessage('verify', label, `its segment size is ${formatSegSize(header.segSize)}, expected ${formatSegSize(opts.expectedSegSize)}`),
    );
  }
  if (length > header.segSize) {
    throw walError('read', label, `${String(length)} bytes is longer than the ${formatSegSize(header.segSize)} segment size in its header`);
  }
  if (label === undefined) return;
  const parsed = parseWalFileName(label, header.segSize);
  if (parsed.kind !== 'segment' && parsed.kind !== 'partial') {
    throw new InvalidNameError(`unable to inspect WAL file '${label}': a ${parsed.kind} file is not a WAL segment`);
  }
  if (parsed.segment.startLsn !== header.pageAddr) {
    throw walError(
      'read',
      label,
      `page 0 is at ${formatLsn(header.pageAddr)}, but the name says the segment starts at ${formatLsn(parsed.segment.startLsn)}`,
    );
  }
  // A new timeline's first segment starts as a copy of the parent's, so a lower xlp_tli is fine.
  if (header.timeline > parsed.timeline) {
    throw walError(
      'read',
      label,
      `page 0 is on timeline ${String(header.timeline)}, later than timeline ${String(parsed.timeline)} in the name`,
    );
  }
}

/**
 * Reads a segment's long header and walks its page chain. Throws InvalidWalError for bytes that
 * are not WAL or are corrupt, ArchiveMismatchError when an expected identity differs; a short
 * buffer is reported (`truncated`), not thrown: use validateSegmentForArchive to be strict.
 */
export function inspectSegment(bytes: Uint8Array, opts: InspectOptions = {}): SegmentInspection {
  const label = opts.expectedName;
  const header = readLongHeader(bytes, label);
  checkExpectations(bytes.length, header, opts);
  const { segSize, blockSize, magic } = header;
  const start = header.pageAddr;
  const at = (offset: number): string => `page at offset ${String(offset)} (${formatLsn((start + BigInt(offset)) as Lsn)})`;

  let validBytes = Math.min(blockSize, bytes.length);
  let pages = 1;
  let lastTli = header.timeline;
  let end: WalEnd | undefined;
  for (let offset = blockSize; offset < bytes.length; offset += blockSize) {
    const pageEnd = Math.min(offset + blockSize, bytes.length);
    if (pageEnd - offset < SHORT_PAGE_HEADER_SIZE) {
      end = 'truncated';
      break;
    }
    if (isAllZero(bytes, offset, pageEnd)) {
      end = 'zeros';
      break;
    }
    const page = readPageHeader(bytes, offset);
    if (page.magic !== magic) {
      throw walError('read', label, `${at(offset)} has magic ${formatMagic(page.magic)}, page 0 has ${formatMagic(magic)}`);
    }
    const expected = (start + BigInt(offset)) as Lsn;
    if (page.pageAddr !== expected) {
      if (page.pageAddr < start && page.pageAddr % BigInt(segSize) === BigInt(offset)) {
        end = 'recycled';
        break;
      }
      const problem = addressProblem(page.pageAddr, start, expected, segSize);
      throw walError('read', label, `${at(offset)} has address ${formatLsn(page.pageAddr)}: ${problem}`);
    }
    if (page.timeline < lastTli) {
      throw walError(
        'read',
        label,
        `${at(offset)} is on timeline ${String(page.timeline)}, after a page on timeline ${String(lastTli)} (out-of-sequence timeline ID)`,
      );
    }
    lastTli = page.timeline as Timeline;
    validBytes = pageEnd;
    pages++;
  }
  end ??= validBytes === segSize ? 'full' : 'truncated';
  return {
    systemId: header.systemId,
    timeline: header.timeline,
    lastPageTimeline: lastTli,
    startLsn: start,
    segSize,
    blockSize,
    pgMajor: header.pgMajor,
    magic,
    validBytes,
    pages,
    end,
    complete: end === 'full' && bytes.length === segSize,
    truncated: bytes.length < segSize,
  };
}

export function addressProblem(addr: Lsn, start: Lsn, expected: Lsn, segSize: number): string {
  if (addr >= start + BigInt(segSize)) return 'it belongs to a later segment';
  if (addr > expected) return `ahead of the expected ${formatLsn(expected)}`;
  if (addr >= start) return `behind the expected ${formatLsn(expected)} within this segment`;
  return `from an earlier segment but not at this offset, expected ${formatLsn(expected)}`;
}

/**
 * The strict check before archiving `name` (a segment or `.partial`): the header must match the
 * archive's identity and the name, and a segment must be a finished one: exactly one segment
 * long, its pages valid up to the end or up to an all-zero rest (what an early segment switch
 * leaves). A `.partial` may end anywhere: it is by definition unfinished.
 */
export function validateSegmentForArchive(bytes: Uint8Array, name: string, identity: SegmentIdentity): SegmentInspection {
  const parsed = parseWalFileName(name, identity.segSize);
  if (parsed.kind !== 'segment' && parsed.kind !== 'partial') {
    throw new InvalidNameError(`unable to validate WAL file '${name}': a ${parsed.kind} file is not a WAL segment`);
  }
  const result = inspectSegment(bytes, {
    expectedName: name,
    expectedSystemId: identity.systemId,
    expectedSegSize: identity.segSize,
  });
  if (parsed.kind === 'partial') return result;
  if (result.truncated) {
    throw walError(
      'archive',
      name,
      `truncated: ${String(bytes.length)} of ${String(result.segSize)} bytes (a finished segment is exactly wal_segment_size long)`,
    );
  }
  if (result.end === 'recycled') {
    throw walError(
      'archive',
      name,
      `the segment is unfinished: the page at offset ${String(result.validBytes)} is left over from an earlier segment`,
    );
  }
  if (result.end === 'zeros') {
    const firstNonZero = firstNonZeroFrom(bytes, result.validBytes);
    if (firstNonZero !== undefined) {
      throw walError(
        'archive',
        name,
        `valid WAL ends at offset ${String(result.validBytes)} with a zero page, but non-zero bytes follow at offset ${String(firstNonZero)}`,
      );
    }
  }
  return result;
}

function firstNonZeroFrom(bytes: Uint8Array, from: number): number | undefined {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return i;
  return undefined;
}
