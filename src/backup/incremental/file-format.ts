/**
 * PostgreSQL 17's INCREMENTAL.<relfile>[.<segno>] files (pure; facts from basebackup_incremental.c
 * and pg_combinebackup/reconstruct.c, see ../shared/research/basebackup.md §1.6). An incremental
 * backup sends a changed relation segment as a header and only the blocks that changed since the
 * parent backup:
 *
 *   uint32 magic 0xd3ae1f0d
 *   uint32 block count n (<= RELSEG_SIZE)
 *   uint32 truncation_block_length (<= RELSEG_SIZE): the segment's length in blocks below which
 *          older backups still supply the blocks not listed here
 *   uint32 block numbers[n], relative to the segment's first block
 *   zero padding to a multiple of BLCKSZ, only when n > 0 (so blocks are aligned)
 *   n blocks of BLCKSZ bytes, in the order of the numbers
 *
 * The integers are in the server's host byte order. Every platform PostgreSQL 17 ships on in
 * practice is little-endian; a big-endian server shows up as a byte-swapped magic and is refused
 * by name rather than misread. The parser works on the first bytes of a stream: ask
 * `incrementalHeaderBytes` how much it needs, then `parseIncrementalHeader`; the blocks follow at
 * `header.headerLength`, block i at `headerLength + i * BLCKSZ`.
 */
import { IntegrityError } from '../../common/errors.js';

export const INCREMENTAL_MAGIC = 0xd3ae1f0d;
/** PostgreSQL's default block size; the only one walvault's backups are tested with. */
export const BLCKSZ = 8192;
/** Blocks per relation segment (1 GiB / BLCKSZ), the bound the server and pg_combinebackup enforce. */
export const RELSEG_SIZE = 131072;
export const INCREMENTAL_PREFIX = 'INCREMENTAL.';
/** Magic, block count, truncation length. */
const FIXED_BYTES = 12;
const SWAPPED_MAGIC = 0x0d1faed3;

export interface IncrementalHeader {
  readonly blockCount: number;
  readonly truncationBlockLength: number;
  /** Segment-relative block numbers, in file order. */
  readonly blockNumbers: readonly number[];
  /** Offset of the first block (header + padding). */
  readonly headerLength: number;
  /** The size the whole file must have. */
  readonly fileSize: number;
}

/** Header length (with padding) of a file carrying `blockCount` blocks. */
export function incrementalHeaderLength(blockCount: number): number {
  const raw = FIXED_BYTES + 4 * blockCount;
  if (blockCount === 0) return raw;
  return Math.ceil(raw / BLCKSZ) * BLCKSZ;
}

/**
 * The header length of an INCREMENTAL file of `size` bytes, from the size alone: the size is
 * headerLength(n) + n * BLCKSZ, which grows with n, so at most one block count fits. Lets a reader
 * fetch exactly the header without reading the file's first bytes twice; a size no block count
 * gives is damage.
 */
export function incrementalHeaderLengthForSize(size: number, name: string): number {
  if (size === FIXED_BYTES) return FIXED_BYTES;
  if (size % BLCKSZ === 0) {
    const blocks = size / BLCKSZ;
    // The header takes 1 to 65 blocks (4 bytes per block number, RELSEG_SIZE numbers at most).
    for (let headerBlocks = 1; headerBlocks <= 65 && headerBlocks < blocks; headerBlocks++) {
      const n = blocks - headerBlocks;
      if (n <= RELSEG_SIZE && incrementalHeaderLength(n) === headerBlocks * BLCKSZ) return headerBlocks * BLCKSZ;
    }
  }
  throw bad(name, `no block count gives a file of ${size} bytes`);
}

/**
 * How many leading bytes `parseIncrementalHeader` needs: 12 until the block count is known, then
 * the whole padded header. `first` may be shorter than the answer; call again with more.
 */
export function incrementalHeaderBytes(first: Buffer, name: string): number {
  if (first.length < FIXED_BYTES) return FIXED_BYTES;
  checkMagic(first, name);
  return incrementalHeaderLength(checkedCount(first.readUInt32LE(4), 'block count', name));
}

/** Parses the header from the first bytes of the file (at least `incrementalHeaderBytes`). */
export function parseIncrementalHeader(first: Buffer, name: string): IncrementalHeader {
  const need = incrementalHeaderBytes(first, name);
  if (first.length < need) throw bad(name, `header needs ${need} bytes, got ${first.length}`);
  const blockCount = first.readUInt32LE(4);
  const truncationBlockLength = checkedCount(first.readUInt32LE(8), 'truncation block length', name);
  const blockNumbers: number[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < blockCount; i++) {
    const b = first.readUInt32LE(FIXED_BYTES + 4 * i);
    if (b >= RELSEG_SIZE) throw bad(name, `block number ${b} is beyond a segment (${RELSEG_SIZE} blocks)`);
    // A repeated number would make the newest copy of that block ambiguous.
    if (seen.has(b)) throw bad(name, `block ${b} is listed twice`);
    seen.add(b);
    blockNumbers.push(b);
  }
  for (let off = FIXED_BYTES + 4 * blockCount; off < need; off++) {
    if (first[off] !== 0) throw bad(name, `non-zero header padding at byte ${off}`);
  }
  return { blockCount, truncationBlockLength, blockNumbers, headerLength: need, fileSize: need + blockCount * BLCKSZ };
}

/**
 * The header bytes `header` was parsed from (the parser refuses non-zero padding, so they are
 * determined by its fields): what restore hashes, with the blocks, to check an INCREMENTAL file it
 * never holds whole. Also what tests build INCREMENTAL files with.
 */
export function encodeIncrementalHeader(header: Pick<IncrementalHeader, 'truncationBlockLength' | 'blockNumbers'>): Buffer {
  const n = header.blockNumbers.length;
  const out = Buffer.alloc(incrementalHeaderLength(n));
  out.writeUInt32LE(INCREMENTAL_MAGIC, 0);
  out.writeUInt32LE(n, 4);
  out.writeUInt32LE(header.truncationBlockLength, 8);
  header.blockNumbers.forEach((b, i) => out.writeUInt32LE(b, FIXED_BYTES + 4 * i));
  return out;
}

/** Checks the size of the whole file against its header (a short or long file is damaged). */
export function checkIncrementalSize(header: IncrementalHeader, size: number, name: string): void {
  if (size !== header.fileSize) {
    throw bad(name, `${header.blockCount} blocks need a file of ${header.fileSize} bytes, it has ${size}`);
  }
}

export interface IncrementalName {
  /** Directory part, '' at the top. */
  readonly dir: string;
  /** The relation file the increment is for, e.g. '16384', '16384_vm.2'. */
  readonly relfile: string;
  /** The path of the reconstructed file. */
  readonly target: string;
}

/** 'base/5/INCREMENTAL.16384.1' -> {dir 'base/5', relfile '16384.1', target 'base/5/16384.1'}; else undefined. */
export function parseIncrementalName(path: string): IncrementalName | undefined {
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? '' : path.slice(0, slash);
  const base = path.slice(slash + 1);
  if (!base.startsWith(INCREMENTAL_PREFIX) || base.length === INCREMENTAL_PREFIX.length) return undefined;
  const relfile = base.slice(INCREMENTAL_PREFIX.length);
  return { dir, relfile, target: dir === '' ? relfile : `${dir}/${relfile}` };
}

/** The INCREMENTAL.* name a backup uses for `target` when it sends it incrementally. */
export function incrementalPathOf(target: string): string {
  const slash = target.lastIndexOf('/');
  return `${target.slice(0, slash + 1)}${INCREMENTAL_PREFIX}${target.slice(slash + 1)}`;
}

function checkMagic(buf: Buffer, name: string): void {
  const magic = buf.readUInt32LE(0);
  if (magic === INCREMENTAL_MAGIC) return;
  if (magic === SWAPPED_MAGIC) throw bad(name, 'written by a big-endian server, which walvault does not support');
  throw bad(name, `bad magic 0x${magic.toString(16).padStart(8, '0')} (expected 0x${INCREMENTAL_MAGIC.toString(16)})`);
}

function checkedCount(value: number, what: string, name: string): number {
  if (value > RELSEG_SIZE) throw bad(name, `${what} ${value} exceeds a segment (${RELSEG_SIZE} blocks)`);
  return value;
}

function bad(name: string, reason: string): IntegrityError {
  return new IntegrityError(`unable to read incremental file '${name}': ${reason}`);
}
