/**
 * Builds synthetic WAL segments for tests, writing page headers with DataView straight from the
 * layout in PostgreSQL's access/xlog_internal.h. Deliberately shares no code with src/segment.
 */

export const MAGIC = { pg12: 0xd101, pg13: 0xd106, pg14: 0xd10d, pg15: 0xd110, pg16: 0xd113, pg17: 0xd116, pg18: 0xd118 };
export const FLAG = { firstIsContrecord: 0x0001, longHeader: 0x0002, bkpRemovable: 0x0004, overwriteContrecord: 0x0008 };
export const MiB = 1024 * 1024;

export interface ShortHeader {
  magic: number;
  info: number;
  tli: number;
  pageAddr: bigint;
  remLen?: number;
}

export interface LongHeader extends ShortHeader {
  sysid: bigint;
  segSize: number;
  blockSize: number;
}

export function writeShortHeader(buf: Uint8Array, offset: number, h: ShortHeader): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  dv.setUint16(offset + 0, h.magic, true);
  dv.setUint16(offset + 2, h.info, true);
  dv.setUint32(offset + 4, h.tli, true);
  dv.setBigUint64(offset + 8, h.pageAddr, true);
  dv.setUint32(offset + 16, h.remLen ?? 0, true);
  dv.setUint32(offset + 20, 0, true); // MAXALIGN padding
}

export function writeLongHeader(buf: Uint8Array, h: LongHeader): void {
  writeShortHeader(buf, 0, h);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  dv.setBigUint64(24, h.sysid, true);
  dv.setUint32(32, h.segSize, true);
  dv.setUint32(36, h.blockSize, true);
}

export interface SegmentSpec {
  /** Address of page 0 (the segment's start LSN). */
  start: bigint;
  segSize?: number;
  blockSize?: number;
  magic?: number;
  tli?: number;
  sysid?: bigint;
  /** Pages written with valid chained headers, page 0 included; default: all of them. */
  validPages?: number;
  /** After the valid pages: zeros (default), or pages left over from the segment starting at `recycledFrom`. */
  recycledFrom?: bigint;
  /** Buffer length; default segSize. */
  length?: number;
  /** xlp_tli of page i (i >= 1); default `tli`. */
  pageTli?: (page: number) => number;
}

export const DEFAULT_SYSID = 7712180886658229171n;

/** Fills a page body with a non-zero pattern so it never looks like a zero page. */
function fillBody(buf: Uint8Array, from: number, to: number, seed: number): void {
  buf.fill((seed % 251) + 1, from, to);
}

export function buildSegment(spec: SegmentSpec): Uint8Array {
  const segSize = spec.segSize ?? MiB;
  const blockSize = spec.blockSize ?? 8192;
  const magic = spec.magic ?? MAGIC.pg15;
  const tli = spec.tli ?? 1;
  const pageCount = segSize / blockSize;
  const validPages = spec.validPages ?? pageCount;
  const full = new Uint8Array(segSize);
  for (let page = 0; page < pageCount; page++) {
    const offset = page * blockSize;
    if (page === 0) {
      writeLongHeader(full, {
        magic,
        info: FLAG.longHeader | FLAG.bkpRemovable,
        tli,
        pageAddr: spec.start,
        sysid: spec.sysid ?? DEFAULT_SYSID,
        segSize,
        blockSize,
      });
      fillBody(full, 40, blockSize, page);
    } else if (page < validPages) {
      writeShortHeader(full, offset, {
        magic,
        info: page % 3 === 0 ? FLAG.firstIsContrecord | FLAG.bkpRemovable : FLAG.bkpRemovable,
        tli: spec.pageTli?.(page) ?? tli,
        pageAddr: spec.start + BigInt(offset),
        remLen: page % 3 === 0 ? 84 : 0,
      });
      fillBody(full, offset + 24, offset + blockSize, page);
    } else if (spec.recycledFrom !== undefined) {
      writeShortHeader(full, offset, { magic, info: 5, tli: 1, pageAddr: spec.recycledFrom + BigInt(offset), remLen: 36 });
      fillBody(full, offset + 24, offset + blockSize, page + 7);
    }
  }
  const length = spec.length ?? segSize;
  if (length <= segSize) return full.subarray(0, length);
  const longer = new Uint8Array(length);
  longer.set(full);
  return longer;
}
