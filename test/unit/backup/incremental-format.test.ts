import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../../src/common/errors.js';
import {
  checkIncrementalSize,
  incrementalHeaderBytes,
  incrementalHeaderLength,
  incrementalPathOf,
  parseIncrementalHeader,
  parseIncrementalName,
} from '../../../src/backup/incremental/file-format.js';

/** Builds a file the way the server lays it out, written out byte by byte (independent of the parser). */
function hexHeader(hex: string, padTo = 0): Buffer {
  const raw = Buffer.from(hex.replace(/\s+/g, ''), 'hex');
  return padTo > raw.length ? Buffer.concat([raw, Buffer.alloc(padTo - raw.length)]) : raw;
}

describe('INCREMENTAL file header', () => {
  it('parses a zero-block file: 12 bytes, no padding', () => {
    // magic 0xd3ae1f0d LE, 0 blocks, truncation length 3
    const buf = hexHeader('0d1faed3 00000000 03000000');
    expect(incrementalHeaderBytes(buf, 'f')).toBe(12);
    expect(parseIncrementalHeader(buf, 'f')).toEqual({
      blockCount: 0,
      truncationBlockLength: 3,
      blockNumbers: [],
      headerLength: 12,
      fileSize: 12,
    });
  });

  it('parses blocks 7 and 2 with the header padded to 8192 bytes', () => {
    const buf = hexHeader('0d1faed3 02000000 08000000 07000000 02000000', 8192);
    const h = parseIncrementalHeader(buf, 'f');
    expect(h.blockNumbers).toEqual([7, 2]);
    expect(h.truncationBlockLength).toBe(8);
    expect(h.headerLength).toBe(8192);
    expect(h.fileSize).toBe(8192 * 3);
    expect(() => checkIncrementalSize(h, 8192 * 3, 'f')).not.toThrow();
    expect(() => checkIncrementalSize(h, 8192 * 3 - 1, 'f')).toThrow(/need a file of 24576 bytes, it has 24575/);
  });

  it('needs 12 bytes first, then the whole padded header (streaming)', () => {
    const full = hexHeader('0d1faed3 01000000 01000000 00000000', 8192);
    expect(incrementalHeaderBytes(full.subarray(0, 5), 'f')).toBe(12);
    expect(incrementalHeaderBytes(full.subarray(0, 12), 'f')).toBe(8192);
    expect(() => parseIncrementalHeader(full.subarray(0, 100), 'f')).toThrow(/header needs 8192 bytes, got 100/);
  });

  it('spills the header into a second block past 2045 block numbers', () => {
    expect(incrementalHeaderLength(0)).toBe(12);
    expect(incrementalHeaderLength(1)).toBe(8192);
    expect(incrementalHeaderLength(2045)).toBe(8192); // 12 + 4*2045 = 8192
    expect(incrementalHeaderLength(2046)).toBe(16384);
  });

  it.each([
    ['bad magic', '0d1faed4 00000000 00000000', /bad magic 0xd4ae1f0d/],
    ['big-endian server', 'd3ae1f0d 00000000 00000000', /big-endian/],
    ['block count beyond a segment', '0d1faed3 01000200 00000000', /block count 131073 exceeds a segment/],
    ['truncation beyond a segment', '0d1faed3 00000000 01000200', /truncation block length 131073/],
  ])('refuses %s', (_what, hex, msg) => {
    const buf = hexHeader(hex);
    expect(() => parseIncrementalHeader(buf, 'base/5/INCREMENTAL.1')).toThrow(IntegrityError);
    expect(() => parseIncrementalHeader(buf, 'base/5/INCREMENTAL.1')).toThrow(msg);
  });

  it('refuses a block number beyond a segment, a repeated block and non-zero padding', () => {
    expect(() => parseIncrementalHeader(hexHeader('0d1faed3 01000000 00000000 00000200', 8192), 'f')).toThrow(/block number 131072/);
    expect(() => parseIncrementalHeader(hexHeader('0d1faed3 02000000 00000000 05000000 05000000', 8192), 'f')).toThrow(
      /block 5 is listed twice/,
    );
    const padded = hexHeader('0d1faed3 01000000 00000000 05000000', 8192);
    padded[8191] = 1;
    expect(() => parseIncrementalHeader(padded, 'f')).toThrow(/non-zero header padding at byte 8191/);
  });
});

describe('INCREMENTAL names', () => {
  it.each([
    ['base/5/INCREMENTAL.16384', { dir: 'base/5', relfile: '16384', target: 'base/5/16384' }],
    ['base/5/INCREMENTAL.16384.2', { dir: 'base/5', relfile: '16384.2', target: 'base/5/16384.2' }],
    ['global/INCREMENTAL.1260_vm', { dir: 'global', relfile: '1260_vm', target: 'global/1260_vm' }],
    ['PG_17_202406281/16385/INCREMENTAL.16386', { dir: 'PG_17_202406281/16385', relfile: '16386', target: 'PG_17_202406281/16385/16386' }],
  ])('%s', (path, want) => {
    expect(parseIncrementalName(path)).toEqual(want);
    expect(incrementalPathOf(want.target)).toBe(path);
  });

  it('ignores other names', () => {
    expect(parseIncrementalName('base/5/16384')).toBeUndefined();
    expect(parseIncrementalName('base/5/INCREMENTAL.')).toBeUndefined();
    expect(parseIncrementalName('backup_label')).toBeUndefined();
  });
});
