/**
 * validateSegmentForArchive for bytes that arrive in pieces: the streaming agent checks a segment
 * while it receives it, so archiving it needs no second read of the file. Fed the same bytes, it
 * reaches the same verdict (the same result, or the same error) as
 * `validateSegmentForArchive(bytes, name, <the segment's own header identity>)`, which is what
 * wal-push checks before it consults the archive identity; test/unit/segment/inspect-stream.test.ts
 * holds it to that. Memory: one WAL page, for a page split across two pieces.
 */
import { formatLsn, type Lsn } from './lsn.js';
import { parseWalFileName } from './names.js';
import {
  LONG_PAGE_HEADER_SIZE,
  SHORT_PAGE_HEADER_SIZE,
  formatMagic,
  readLongHeader,
  readPageHeader,
  type LongPageHeader,
} from './pageheader.js';
import { type Timeline } from './timeline.js';
import { isAllZero, walError } from './internal.js';
import { InvalidNameError } from '../common/errors.js';
import { addressProblem, checkExpectations, type SegmentInspection, type WalEnd } from './inspect.js';

export class SegmentStreamCheck {
  private readonly head = Buffer.alloc(LONG_PAGE_HEADER_SIZE);
  private header: LongPageHeader | undefined;
  /** The first error in the byte stream; finish() throws it (after the checks that come first). */
  private failure: unknown;
  private length = 0;
  private zeroHeader = false;
  private anyNonZero = false;
  private carry: Buffer | undefined;
  private carryLen = 0;
  private validBytes = 0;
  private pages = 1;
  private lastTli: Timeline | undefined;
  private end: WalEnd | undefined;
  private firstNonZero: number | undefined;

  constructor(private readonly name: string) {}

  /** Feeds the next bytes of the file (in order); they are read before the call returns. */
  update(chunk: Uint8Array): void {
    const pos = this.length;
    this.length += chunk.length;
    if (this.failure !== undefined || chunk.length === 0) return;
    if (this.header === undefined && !this.zeroHeader) {
      const take = Math.min(chunk.length, LONG_PAGE_HEADER_SIZE - pos);
      if (take > 0) this.head.set(chunk.subarray(0, take), pos);
      if (this.length < LONG_PAGE_HEADER_SIZE) return;
      if (isAllZero(this.head)) this.zeroHeader = true;
      else if (!this.parseHeader()) return;
    }
    if (this.zeroHeader) {
      if (!this.anyNonZero && !isAllZero(chunk)) this.anyNonZero = true;
      return;
    }
    this.walk(chunk, pos);
  }

  private parseHeader(): boolean {
    try {
      this.header = readLongHeader(this.head, this.name);
      checkExpectations(0, this.header, { expectedName: this.name });
    } catch (err) {
      this.failure = err;
      return false;
    }
    this.validBytes = this.header.blockSize;
    this.lastTli = this.header.timeline;
    return true;
  }

  private walk(chunk: Uint8Array, pos: number): void {
    const bs = this.header!.blockSize;
    const chunkEnd = pos + chunk.length;
    let c = Math.max(pos, bs);
    while (c < chunkEnd && this.failure === undefined) {
      if (this.end === 'zeros') {
        if (this.firstNonZero === undefined) {
          for (let i = c - pos; i < chunk.length; i++) {
            if (chunk[i] !== 0) {
              this.firstNonZero = pos + i;
              break;
            }
          }
        }
        return;
      }
      if (this.end !== undefined) return;
      const pageStart = c - (c % bs);
      const pageEnd = pageStart + bs;
      if (this.carryLen === 0 && c === pageStart && chunkEnd >= pageEnd) {
        this.page(chunk, pageStart - pos, pageStart, bs);
      } else {
        this.carry ??= Buffer.allocUnsafe(bs);
        const n = Math.min(pageEnd, chunkEnd) - c;
        this.carry.set(chunk.subarray(c - pos, c - pos + n), this.carryLen);
        this.carryLen += n;
        if (this.carryLen === bs) {
          this.carryLen = 0;
          this.page(this.carry, 0, pageStart, bs);
        }
      }
      c = Math.min(pageEnd, chunkEnd);
    }
  }

  /** One page of the chain (the loop body of inspectSegment); `length` is short only at the end. */
  private page(buf: Uint8Array, at: number, offset: number, length: number): void {
    const h = this.header!;
    if (length < SHORT_PAGE_HEADER_SIZE) {
      this.end = 'truncated';
      return;
    }
    if (isAllZero(buf, at, at + length)) {
      this.end = 'zeros';
      return;
    }
    const start = h.pageAddr;
    const where = (): string => `page at offset ${String(offset)} (${formatLsn((start + BigInt(offset)) as Lsn)})`;
    const page = readPageHeader(buf, at);
    try {
      if (page.magic !== h.magic) {
        throw walError('read', this.name, `${where()} has magic ${formatMagic(page.magic)}, page 0 has ${formatMagic(h.magic)}`);
      }
      const expected = (start + BigInt(offset)) as Lsn;
      if (page.pageAddr !== expected) {
        if (page.pageAddr < start && page.pageAddr % BigInt(h.segSize) === BigInt(offset)) {
          this.end = 'recycled';
          return;
        }
        const problem = addressProblem(page.pageAddr, start, expected, h.segSize);
        throw walError('read', this.name, `${where()} has address ${formatLsn(page.pageAddr)}: ${problem}`);
      }
      if (page.timeline < this.lastTli!) {
        throw walError(
          'read',
          this.name,
          `${where()} is on timeline ${String(page.timeline)}, after a page on timeline ${String(this.lastTli)} (out-of-sequence timeline ID)`,
        );
      }
    } catch (err) {
      this.failure = err;
      return;
    }
    this.lastTli = page.timeline as Timeline;
    this.validBytes = offset + length;
    this.pages++;
  }

  /** The verdict on all bytes fed: what validateSegmentForArchive returns, or its error. */
  finish(): SegmentInspection {
    const parsed = parseWalFileName(this.name, this.header?.segSize ?? 16 * 1024 * 1024);
    if (parsed.kind !== 'segment') {
      throw new InvalidNameError(`unable to validate WAL file '${this.name}': only finished segments are checked in pieces`);
    }
    if (this.length < LONG_PAGE_HEADER_SIZE || this.zeroHeader) {
      // Too short for a header or a zero header: the whole-buffer reader words these cases.
      if (this.zeroHeader)
        throw walError('read', this.name, this.anyNonZero ? 'not WAL: page 0 starts with a zero-filled header' : 'not WAL (all zeros)');
      readLongHeader(this.head.subarray(0, this.length), this.name);
    }
    if (this.header === undefined) throw this.failure;
    const h = this.header;
    checkExpectations(this.length, h, { expectedName: this.name });
    if (this.failure !== undefined) throw this.failure;
    if (this.end === undefined && this.carryLen > 0) {
      const offset = this.length - this.carryLen;
      const length = this.carryLen;
      this.carryLen = 0;
      this.page(this.carry!, 0, offset, length);
      if (this.failure !== undefined) throw this.failure;
    }
    const end = this.end ?? (this.validBytes === h.segSize ? 'full' : 'truncated');
    const validBytes = Math.min(this.validBytes, this.length);
    if (this.length < h.segSize) {
      throw walError(
        'archive',
        this.name,
        `truncated: ${String(this.length)} of ${String(h.segSize)} bytes (a finished segment is exactly wal_segment_size long)`,
      );
    }
    if (end === 'recycled') {
      throw walError(
        'archive',
        this.name,
        `the segment is unfinished: the page at offset ${String(validBytes)} is left over from an earlier segment`,
      );
    }
    if (end === 'zeros' && this.firstNonZero !== undefined) {
      throw walError(
        'archive',
        this.name,
        `valid WAL ends at offset ${String(validBytes)} with a zero page, but non-zero bytes follow at offset ${String(this.firstNonZero)}`,
      );
    }
    return {
      systemId: h.systemId,
      timeline: h.timeline,
      lastPageTimeline: this.lastTli!,
      startLsn: h.pageAddr,
      segSize: h.segSize,
      blockSize: h.blockSize,
      pgMajor: h.pgMajor,
      magic: h.magic,
      validBytes,
      pages: this.pages,
      end,
      complete: end === 'full' && this.length === h.segSize,
      truncated: false,
    };
  }
}
