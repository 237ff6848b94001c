import { describe, expect, it } from 'vitest';
import { InvalidWalError } from '../../../src/common/errors.js';
import {
  formatMagic,
  LONG_PAGE_HEADER_SIZE,
  magicForPgMajor,
  pgMajorForMagic,
  readLongHeader,
  readPageHeader,
  SHORT_PAGE_HEADER_SIZE,
  WAL_PAGE_MAGIC_BY_MAJOR,
  XLP_BKP_REMOVABLE,
  XLP_FIRST_IS_CONTRECORD,
  XLP_FIRST_IS_OVERWRITE_CONTRECORD,
  XLP_LONG_HEADER,
} from '../../../src/segment/pageheader.js';
import { FLAG, MAGIC, MiB, writeLongHeader, writeShortHeader, type LongHeader } from './walbuilder.js';

function longHeaderBytes(overrides: Partial<LongHeader> = {}, length = LONG_PAGE_HEADER_SIZE): Uint8Array {
  const buf = new Uint8Array(length);
  writeLongHeader(buf, {
    magic: MAGIC.pg15,
    info: FLAG.longHeader,
    tli: 1,
    pageAddr: 0x1000000n,
    sysid: 7712180886658229171n,
    segSize: 16 * MiB,
    blockSize: 8192,
    ...overrides,
  });
  return buf;
}

describe('constants', () => {
  it('header sizes and flags match xlog_internal.h', () => {
    expect(SHORT_PAGE_HEADER_SIZE).toBe(24);
    expect(LONG_PAGE_HEADER_SIZE).toBe(40);
    expect([XLP_FIRST_IS_CONTRECORD, XLP_LONG_HEADER, XLP_BKP_REMOVABLE, XLP_FIRST_IS_OVERWRITE_CONTRECORD]).toEqual([1, 2, 4, 8]);
  });

  it.each([
    [12, 0xd101],
    [13, 0xd106],
    [14, 0xd10d],
    [15, 0xd110],
    [16, 0xd113],
    [17, 0xd116],
    [18, 0xd118],
  ])('PostgreSQL %i writes magic %i', (major, magic) => {
    expect(magicForPgMajor(major)).toBe(magic);
    expect(pgMajorForMagic(magic)).toBe(major);
    expect(WAL_PAGE_MAGIC_BY_MAJOR.get(major)).toBe(magic);
  });

  it('unknown versions and magics are unknown', () => {
    expect(pgMajorForMagic(0xd098)).toBeUndefined(); // PostgreSQL 11: unsupported
    expect(pgMajorForMagic(0xd119)).toBeUndefined();
    expect(magicForPgMajor(19)).toBeUndefined();
    expect(magicForPgMajor(11)).toBeUndefined();
    expect(formatMagic(0xd10d)).toBe('0xD10D');
    expect(formatMagic(0x0)).toBe('0x0000');
  });
});

describe('readPageHeader', () => {
  it('reads the fields as stored, little-endian, at any offset and in any view', () => {
    const backing = new Uint8Array(16 + 3 * 8192);
    const buf = backing.subarray(16);
    writeShortHeader(buf, 8192, { magic: 0xd116, info: 0xfff5, tli: 0xfffffffe, pageAddr: 0xfedcba98_76543210n, remLen: 0xffffffff });
    expect(readPageHeader(buf, 8192)).toEqual({
      magic: 0xd116,
      info: 0xfff5,
      timeline: 0xfffffffe,
      pageAddr: 0xfedcba98_76543210n,
      remLen: 0xffffffff,
    });
    // Byte order, independently of DataView: magic 0xD116 is stored as 16 D1.
    expect([...buf.subarray(8192, 8194)]).toEqual([0x16, 0xd1]);
    expect(readPageHeader(buf, 0)).toEqual({ magic: 0, info: 0, timeline: 0, pageAddr: 0n, remLen: 0 });
  });

  it('refuses to read past the buffer', () => {
    const buf = new Uint8Array(8192);
    expect(() => readPageHeader(buf, 8192 - 23)).toThrow(RangeError);
    expect(() => readPageHeader(buf, -1)).toThrow(RangeError);
    expect(() => readPageHeader(buf, 0.5)).toThrow(RangeError);
    expect(readPageHeader(buf, 8192 - 24).magic).toBe(0);
  });
});

describe('readLongHeader', () => {
  it('reads identity fields from the first 40 bytes', () => {
    expect(readLongHeader(longHeaderBytes())).toEqual({
      magic: 0xd110,
      info: 2,
      timeline: 1,
      pageAddr: 0x1000000n,
      remLen: 0,
      pgMajor: 15,
      systemId: '7712180886658229171',
      segSize: 16 * MiB,
      blockSize: 8192,
    });
  });

  it('keeps the full 64-bit system identifier', () => {
    expect(readLongHeader(longHeaderBytes({ sysid: 18446744073709551615n })).systemId).toBe('18446744073709551615');
    expect(readLongHeader(longHeaderBytes({ sysid: 9007199254740993n })).systemId).toBe('9007199254740993');
    expect(readLongHeader(longHeaderBytes({ sysid: 0n })).systemId).toBe('0');
  });

  it.each([
    [MAGIC.pg13, 13],
    [MAGIC.pg14, 14],
    [MAGIC.pg16, 16],
    [MAGIC.pg17, 17],
    [MAGIC.pg18, 18],
    [MAGIC.pg12, 12],
  ])('knows magic %i as PostgreSQL %i', (magic, major) => {
    expect(readLongHeader(longHeaderBytes({ magic })).pgMajor).toBe(major);
  });

  it('tolerates unknown info bits and extreme legal values', () => {
    const h = readLongHeader(
      longHeaderBytes({ info: 0xfff2, tli: 0xffffffff, pageAddr: 0xffffffff_c0000000n, segSize: 1024 * MiB, blockSize: 65536 }),
    );
    expect(h).toMatchObject({ info: 0xfff2, timeline: 0xffffffff, pageAddr: 0xffffffff_c0000000n, segSize: 1024 * MiB, blockSize: 65536 });
    expect(readLongHeader(longHeaderBytes({ segSize: MiB, blockSize: 1024, pageAddr: 0n })).blockSize).toBe(1024);
  });

  it('reads only the first 40 bytes', () => {
    const big = longHeaderBytes({}, 8192);
    big.fill(0xee, 40);
    expect(readLongHeader(big).segSize).toBe(16 * MiB);
  });

  function bytesOf(text: string): Uint8Array {
    return new TextEncoder().encode(text);
  }

  it.each<[string, Uint8Array, string]>([
    ['empty', new Uint8Array(0), 'the file is empty'],
    ['one zero byte', new Uint8Array(1), 'not WAL (all zeros)'],
    ['one other byte', Uint8Array.of(0x10), '1 bytes is shorter than a WAL long page header (40 bytes)'],
    ['all zeros', new Uint8Array(MiB), 'not WAL (all zeros)'],
    [
      'zero header, data after it',
      (() => {
        const b = new Uint8Array(8192);
        b[100] = 1;
        return b;
      })(),
      'not WAL: page 0 starts with a zero-filled header',
    ],
    ['a valid magic in 39 bytes', longHeaderBytes().subarray(0, 39), '39 bytes is shorter than a WAL long page header (40 bytes)'],
    [
      'text',
      bytesOf('hello, this is not a WAL segment at all, really'),
      'unknown WAL page magic 0x6568 on page 0: not WAL from a supported PostgreSQL version (known: 12=0xD101, 13=0xD106, 14=0xD10D, 15=0xD110, 16=0xD113, 17=0xD116, 18=0xD118)',
    ],
    ['short text', bytesOf('hi'), 'unknown WAL page magic 0x6968'],
    ['zstd', Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0), 'unknown WAL page magic 0xB528 on page 0 (the data is zstd-compressed)'],
    ['gzip', Uint8Array.of(0x1f, 0x8b, 8, 0), 'unknown WAL page magic 0x8B1F on page 0 (the data is gzip-compressed)'],
    ['lz4', Uint8Array.of(0x04, 0x22, 0x4d, 0x18, 0x64), 'unknown WAL page magic 0x2204 on page 0 (the data is lz4-compressed)'],
    ['PostgreSQL 11 WAL', longHeaderBytes({ magic: 0xd098 }), 'unknown WAL page magic 0xD098 on page 0'],
    ['a future magic', longHeaderBytes({ magic: 0xd120 }), 'unknown WAL page magic 0xD120'],
    ['byte-swapped magic', longHeaderBytes({ magic: 0x10d1 }), 'unknown WAL page magic 0x10D1'],
    [
      'no long-header flag',
      longHeaderBytes({ info: FLAG.firstIsContrecord | FLAG.bkpRemovable }),
      'page 0 lacks the long-header flag (xlp_info 0x0005); not the start of a WAL segment',
    ],
    ['timeline 0', longHeaderBytes({ tli: 0 }), 'page 0 has timeline 0'],
    ['segment size 0', longHeaderBytes({ segSize: 0 }), "the header's segment size 0 is not a power of two from 1MB to 1GB"],
    ['segment size 512kB', longHeaderBytes({ segSize: 512 * 1024 }), "the header's segment size 524288 is not"],
    ['segment size 2GB', longHeaderBytes({ segSize: 2048 * MiB }), "the header's segment size 2147483648 is not"],
    ['segment size 3MB', longHeaderBytes({ segSize: 3 * MiB }), "the header's segment size 3145728 is not"],
    ['block size 512', longHeaderBytes({ blockSize: 512 }), "the header's WAL block size 512 is not a power of two from 1kB to 64kB"],
    ['block size 128k', longHeaderBytes({ blockSize: 131072 }), "the header's WAL block size 131072 is not"],
    ['block size 3000', longHeaderBytes({ blockSize: 3000 }), "the header's WAL block size 3000 is not"],
    ['block size 0', longHeaderBytes({ blockSize: 0 }), "the header's WAL block size 0 is not"],
    [
      'page 0 address inside a segment',
      longHeaderBytes({ pageAddr: 0x1002000n }),
      'page 0 address 0/1002000 is not at a 16777216-byte segment boundary',
    ],
  ])('rejects %s', (_what, bytes, reason) => {
    expect(() => readLongHeader(bytes)).toThrow(InvalidWalError);
    expect(() => readLongHeader(bytes)).toThrow(`unable to read WAL: ${reason}`);
    expect(() => readLongHeader(bytes, '000000010000000000000001')).toThrow(
      `unable to read WAL file '000000010000000000000001': ${reason}`,
    );
  });
});
