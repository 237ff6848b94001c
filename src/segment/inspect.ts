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
import { type LongPageHeader } from './pageheader.js';
import { SegmentScanner } from './scan.js';
import { assertSegSize, formatSegSize } from './segsize.js';
import { type Timeline } from './timeline.js';
import { walError, walMessage } from './internal.js';

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

function checkExpectations(length: number, header: LongPageHeader, opts: InspectOptions): void {
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
  const scanner = segmentScanner(bytes.length, opts);
  scanner.update(bytes);
  const { length: _length, nonZeroAfterEnd: _rest, ...inspection } = scanner.finish();
  return inspection;
}

/**
 * The walk of inspectSegment, fed chunk by chunk (see scan.ts): `length` is the file's size, checked
 * against the header's segment size before anything else, as inspectSegment does with its buffer.
 */
export function segmentScanner(length: number, opts: InspectOptions = {}): SegmentScanner {
  return new SegmentScanner(opts.expectedName, (header) => checkExpectations(length, header, opts));
}

/**
 * The strict check before archiving `name` (a segment or `.partial`): the header must match the
 * archive's identity and the name, and a segment must be a finished one: exactly one segment
 * long, its pages valid up to the end or up to an all-zero rest (what an early segment switch
 * leaves). A `.partial` may end anywhere: it is by definition unfinished.
 */
export function validateSegmentForArchive(bytes: Uint8Array, name: string, identity: SegmentIdentity): SegmentInspection {
  const scanner = archiveScanner(bytes.length, name, identity);
  scanner.update(bytes);
  return finishArchiveScan(scanner, name);
}

/** validateSegmentForArchive fed chunk by chunk: feed the file, then call finishArchiveScan. */
export function archiveScanner(length: number, name: string, identity: SegmentIdentity): SegmentScanner {
  const parsed = parseWalFileName(name, identity.segSize);
  if (parsed.kind !== 'segment' && parsed.kind !== 'partial') {
    throw new InvalidNameError(`unable to validate WAL file '${name}': a ${parsed.kind} file is not a WAL segment`);
  }
  return segmentScanner(length, { expectedName: name, expectedSystemId: identity.systemId, expectedSegSize: identity.segSize });
}

/** The strict end rules of validateSegmentForArchive over what `scanner` was fed. */
export function finishArchiveScan(scanner: SegmentScanner, name: string): SegmentInspection {
  const { length, nonZeroAfterEnd, ...result } = scanner.finish();
  if (parseWalFileName(name, result.segSize).kind === 'partial') return result;
  if (result.truncated) {
    throw walError(
      'archive',
      name,
      `truncated: ${String(length)} of ${String(result.segSize)} bytes (a finished segment is exactly wal_segment_size long)`,
    );
  }
  if (result.end === 'recycled') {
    throw walError(
      'archive',
      name,
      `the segment is unfinished: the page at offset ${String(result.validBytes)} is left over from an earlier segment`,
    );
  }
  if (result.end === 'zeros' && nonZeroAfterEnd !== undefined) {
    throw walError(
      'archive',
      name,
      `valid WAL ends at offset ${String(result.validBytes)} with a zero page, but non-zero bytes follow at offset ${String(nonZeroAfterEnd)}`,
    );
  }
  return result;
}
