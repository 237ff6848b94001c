/**
 * The page walk of inspect.ts, fed chunk by chunk: wal-push checks a segment over the same chunks it
 * hashes and compresses, so the file is read once and never held whole in memory. inspectSegment and
 * validateSegmentForArchive feed one chunk (the whole buffer) through this same walk.
 *
 * Chunks may have any size, but every chunk except the last must end on a page boundary (a multiple of
 * the segment's block size, e.g. 1 MiB) and the first must hold the long page header.
 */
import { InvalidWalError } from '../common/errors.js';
import { formatLsn, type Lsn } from './lsn.js';
import { readLongHeader, readPageHeader, formatMagic, SHORT_PAGE_HEADER_SIZE, type LongPageHeader } from './pageheader.js';
import { type Timeline } from './timeline.js';
import { isAllZero, walError } from './internal.js';
import type { SegmentInspection, WalEnd } from './inspect.js';

/** Checks the header against the caller's expectations (identity, name, length) once it is read. */
export type HeaderCheck = (header: LongPageHeader) => void;

export class SegmentScanner {
  private header: LongPageHeader | undefined;
  private offset = 0;
  private validBytes = 0;
  private pages = 1;
  private lastTli: Timeline | undefined;
  private end: WalEnd | undefined;
  /** After a zero page: where the first non-zero byte follows (an archive refuses that). */
  private nonZeroAfterEnd: number | undefined;
  private lastChunkShort = false;

  constructor(
    private readonly label: string | undefined,
    private readonly checkHeader: HeaderCheck,
  ) {}

  update(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.lastChunkShort) throw new InvalidWalError(`unable to scan WAL file '${this.label ?? '?'}': a chunk followed a short one`);
    const base = this.offset;
    let first = 0;
    if (this.header === undefined) {
      this.header = readLongHeader(chunk, this.label);
      this.checkHeader(this.header);
      this.lastTli = this.header.timeline;
      this.validBytes = Math.min(this.header.blockSize, chunk.length);
      first = this.header.blockSize;
    }
    const { blockSize } = this.header;
    this.offset += chunk.length;
    if (chunk.length % blockSize !== 0) this.lastChunkShort = true;
    for (let rel = first; rel < chunk.length; rel += blockSize) {
      if (this.end !== undefined) {
        this.afterEnd(chunk, rel, base);
        return;
      }
      this.page(chunk, rel, base);
    }
  }

  /** What the walk found, once every chunk was fed; `length` is the number of bytes fed. */
  finish(): SegmentInspection & { readonly length: number; readonly nonZeroAfterEnd: number | undefined } {
    // Nothing fed: readLongHeader reports the missing header in its one wording for short files.
    const header = this.header ?? readLongHeader(new Uint8Array(0), this.label);
    const end = this.end ?? (this.validBytes === header.segSize ? 'full' : 'truncated');
    const length = this.offset;
    return {
      systemId: header.systemId,
      timeline: header.timeline,
      lastPageTimeline: this.lastTli ?? header.timeline,
      startLsn: header.pageAddr,
      segSize: header.segSize,
      blockSize: header.blockSize,
      pgMajor: header.pgMajor,
      magic: header.magic,
      validBytes: this.validBytes,
      pages: this.pages,
      end,
      complete: end === 'full' && length === header.segSize,
      truncated: length < header.segSize,
      length,
      nonZeroAfterEnd: this.nonZeroAfterEnd,
    };
  }

  private page(chunk: Uint8Array, rel: number, base: number): void {
    const header = this.header as LongPageHeader;
    const { blockSize, magic, segSize } = header;
    const start = header.pageAddr;
    const offset = base + rel;
    const at = (): string => `page at offset ${String(offset)} (${formatLsn((start + BigInt(offset)) as Lsn)})`;
    const pageEnd = Math.min(rel + blockSize, chunk.length);
    if (pageEnd - rel < SHORT_PAGE_HEADER_SIZE) {
      this.end = 'truncated';
      return;
    }
    if (isAllZero(chunk, rel, pageEnd)) {
      this.end = 'zeros';
      return;
    }
    const page = readPageHeader(chunk, rel);
    if (page.magic !== magic) {
      throw walError('read', this.label, `${at()} has magic ${formatMagic(page.magic)}, page 0 has ${formatMagic(magic)}`);
    }
    const expected = (start + BigInt(offset)) as Lsn;
    if (page.pageAddr !== expected) {
      if (page.pageAddr < start && page.pageAddr % BigInt(segSize) === BigInt(offset)) {
        this.end = 'recycled';
        return;
      }
      throw walError(
        'read',
        this.label,
        `${at()} has address ${formatLsn(page.pageAddr)}: ${addressProblem(page.pageAddr, start, expected, segSize)}`,
      );
    }
    const lastTli = this.lastTli as Timeline;
    if (page.timeline < lastTli) {
      throw walError(
        'read',
        this.label,
        `${at()} is on timeline ${String(page.timeline)}, after a page on timeline ${String(lastTli)} (out-of-sequence timeline ID)`,
      );
    }
    this.lastTli = page.timeline as Timeline;
    this.validBytes = base + pageEnd;
    this.pages++;
  }

  /** Past the end of valid WAL only the first non-zero byte after a zero page matters. */
  private afterEnd(chunk: Uint8Array, from: number, base: number): void {
    if (this.end !== 'zeros' || this.nonZeroAfterEnd !== undefined) return;
    for (let i = from; i < chunk.length; i++) {
      if (chunk[i] !== 0) {
        this.nonZeroAfterEnd = base + i;
        return;
      }
    }
  }
}

function addressProblem(addr: Lsn, start: Lsn, expected: Lsn, segSize: number): string {
  if (addr >= start + BigInt(segSize)) return 'it belongs to a later segment';
  if (addr > expected) return `ahead of the expected ${formatLsn(expected)}`;
  if (addr >= start) return `behind the expected ${formatLsn(expected)} within this segment`;
  return `from an earlier segment but not at this offset, expected ${formatLsn(expected)}`;
}
