/**
 * Does a segment continue the one before it? Used by wal-resolve to choose between two versions
 * of one segment name. Pure.
 *
 * WAL is one stream of records cut into pages and segments. Where segment N ends inside a record,
 * segment N+1's first page says so: XLP_FIRST_IS_CONTRECORD and xlp_rem_len = the bytes of that
 * record still to come. And the first record that starts in N+1 has xl_prev = the LSN of the last
 * record that started in N. So walking N's records gives two facts N+1 must agree with; a version
 * written by another server (split brain, a restored copy archiving to the same place) fails them.
 */
import { formatLsn, type Lsn } from '../../segment/lsn.js';
import { LONG_PAGE_HEADER_SIZE, SHORT_PAGE_HEADER_SIZE, XLP_FIRST_IS_CONTRECORD, readLongHeader } from '../../segment/pageheader.js';
import { isAllZero } from '../../segment/internal.js';

/** sizeof(XLogRecord): xl_tot_len u32, xl_xid u32, xl_prev u64, xl_info u8, xl_rmid u8, 2 pad, xl_crc u32. */
const RECORD_HEADER = 24;
const RM_XLOG_ID = 0;
const XLOG_SWITCH = 0x40;

export interface SegmentEdges {
  readonly startLsn: Lsn;
  /** Bytes of a record from the previous segment that this one starts with (0: none). */
  readonly incoming: number;
  /** xl_prev of the first record that starts in this segment, if one does. */
  readonly firstPrev?: bigint;
  /** LSN of the last record that starts in this segment, if one does. */
  readonly lastStart?: bigint;
  /** Bytes of this segment's last record that the next segment must start with (0: none). */
  readonly outgoing: number;
}

const align8 = (n: number): number => (n + 7) & ~7;

export function segmentEdges(bytes: Buffer): SegmentEdges {
  const h = readLongHeader(bytes);
  const bs = h.blockSize;
  const end = Math.min(bytes.length, h.segSize);
  /** Advances `n` record bytes from `off`, stepping over page headers; `left` > 0 when the segment ended first. */
  const skip = (from: number, n: number): { off: number; left: number } => {
    let off = from;
    let left = n;
    while (left > 0) {
      if (off >= end) return { off, left };
      if (off % bs === 0) off += SHORT_PAGE_HEADER_SIZE;
      const take = Math.min(bs - (off % bs), left);
      off += take;
      left -= take;
    }
    return { off, left: 0 };
  };
  /** `n` record bytes from `off` (a record header may be split across pages). */
  const gather = (from: number, n: number): Buffer | undefined => {
    const parts: Buffer[] = [];
    let off = from;
    let left = n;
    while (left > 0) {
      if (off >= end) return undefined;
      if (off % bs === 0) off += SHORT_PAGE_HEADER_SIZE;
      const take = Math.min(bs - (off % bs), left);
      parts.push(bytes.subarray(off, off + take));
      off += take;
      left -= take;
    }
    return Buffer.concat(parts);
  };

  const incoming = (h.info & XLP_FIRST_IS_CONTRECORD) !== 0 ? h.remLen : 0;
  const cont = skip(LONG_PAGE_HEADER_SIZE, incoming);
  if (cont.left > 0) return { startLsn: h.pageAddr, incoming, outgoing: cont.left };
  let off = align8(cont.off);
  let firstPrev: bigint | undefined;
  let lastStart: bigint | undefined;
  let outgoing = 0;
  for (;;) {
    if (off >= end) break;
    if (off % bs === 0) {
      if (isAllZero(bytes, off, Math.min(off + bs, end))) break;
      off += SHORT_PAGE_HEADER_SIZE;
    }
    const totLen = bytes.readUInt32LE(off);
    // Zeros where a record would start: the end of the WAL written into this segment.
    if (totLen === 0) break;
    const header = gather(off, RECORD_HEADER);
    if (!header || totLen < RECORD_HEADER) break;
    firstPrev ??= header.readBigUInt64LE(8);
    lastStart = h.pageAddr + BigInt(off);
    const after = skip(off, totLen);
    if (after.left > 0) {
      outgoing = after.left;
      break;
    }
    // After a WAL switch the rest of the segment is unused: the next segment starts afresh.
    if (header[17] === RM_XLOG_ID && ((header[16] as number) & 0xf0) === XLOG_SWITCH) break;
    off = align8(after.off);
  }
  return {
    startLsn: h.pageAddr,
    incoming,
    ...(firstPrev !== undefined ? { firstPrev } : {}),
    ...(lastStart !== undefined ? { lastStart } : {}),
    outgoing,
  };
}

/** Why `next` does not continue `prev`, or undefined when it does. */
export function chainBreak(prev: SegmentEdges, next: SegmentEdges): string | undefined {
  if (next.incoming !== prev.outgoing) {
    return `it starts with ${next.incoming} bytes of a record from the segment before, which ends with ${prev.outgoing}`;
  }
  if (next.firstPrev !== undefined && prev.lastStart !== undefined && next.firstPrev !== prev.lastStart) {
    return `its first record points back to ${formatLsn(next.firstPrev as Lsn)}, the segment before ends with a record at ${formatLsn(prev.lastStart as Lsn)}`;
  }
  return undefined;
}
