import { describe, expect, it } from 'vitest';
import { ArchiveMismatchError, InvalidNameError, InvalidWalError, UsageError } from '../../../src/common/errors.js';
import { inspectSegment, validateSegmentForArchive } from '../../../src/segment/inspect.js';
import { buildSegment, DEFAULT_SYSID, MAGIC, MiB, writeShortHeader } from './walbuilder.js';

const SEG1B = 0x1b00000n; // 000000010000000000000001B at 1MB
const NAME1B = '00000001000000000000001B';
const identity = { systemId: '7712180886658229171', segSize: MiB };

describe('inspectSegment: whole segments', () => {
  it('a finished 1MB segment', () => {
    const r = inspectSegment(buildSegment({ start: SEG1B }), { expectedName: NAME1B });
    expect(r).toEqual({
      systemId: '7712180886658229171',
      timeline: 1,
      lastPageTimeline: 1,
      startLsn: 0x1b00000n,
      segSize: MiB,
      blockSize: 8192,
      pgMajor: 15,
      magic: 0xd110,
      validBytes: MiB,
      pages: 128,
      end: 'full',
      complete: true,
      truncated: false,
    });
  });

  it('a finished 16MB segment with 8kB pages, no options', () => {
    const r = inspectSegment(buildSegment({ start: 0x16b3000000n, segSize: 16 * MiB, magic: MAGIC.pg17 }));
    expect(r).toMatchObject({ pages: 2048, validBytes: 16 * MiB, complete: true, pgMajor: 17, startLsn: 0x16b3000000n });
  });

  it.each([1024, 2048, 4096, 16384, 32768, 65536])('%i-byte WAL blocks', (blockSize) => {
    const r = inspectSegment(buildSegment({ start: 0n, blockSize }));
    expect(r).toMatchObject({ blockSize, pages: MiB / blockSize, complete: true });
  });

  it('the last segment of the address space', () => {
    const r = inspectSegment(buildSegment({ start: 0xffffffff_fff00000n, tli: 0xffffffff }), {
      expectedName: 'FFFFFFFFFFFFFFFF00000FFF',
    });
    expect(r).toMatchObject({ complete: true, timeline: 0xffffffff, startLsn: 0xffffffff_fff00000n });
  });

  it('works on a view with a non-zero byte offset', () => {
    const seg = buildSegment({ start: SEG1B });
    const backing = new Uint8Array(seg.length + 8);
    backing.set(seg, 8);
    expect(inspectSegment(backing.subarray(8), { expectedName: NAME1B }).complete).toBe(true);
    expect(inspectSegment(Buffer.from(seg)).complete).toBe(true);
  });
});

describe('inspectSegment: where valid WAL ends', () => {
  it('at zeros after an early segment switch', () => {
    const r = inspectSegment(buildSegment({ start: SEG1B, validPages: 66 }));
    expect(r).toMatchObject({ validBytes: 66 * 8192, pages: 66, end: 'zeros', complete: false, truncated: false });
  });

  it('at zeros right after page 0', () => {
    expect(inspectSegment(buildSegment({ start: SEG1B, validPages: 1 }))).toMatchObject({ validBytes: 8192, pages: 1, end: 'zeros' });
  });

  it('at the recycled tail of an unfinished segment', () => {
    const r = inspectSegment(buildSegment({ start: SEG1B, validPages: 18, recycledFrom: 0x1800000n }));
    expect(r).toMatchObject({ validBytes: 18 * 8192, pages: 18, end: 'recycled', complete: false, truncated: false });
  });

  it('at a recycled tail from a far older segment', () => {
    const r = inspectSegment(buildSegment({ start: 0x5_00000000n, validPages: 3, recycledFrom: 0n }));
    expect(r).toMatchObject({ validBytes: 3 * 8192, end: 'recycled' });
  });

  it('at the end of a truncated buffer (reported, not thrown)', () => {
    const r = inspectSegment(buildSegment({ start: SEG1B, length: MiB / 2 }));
    expect(r).toMatchObject({ validBytes: MiB / 2, pages: 64, end: 'truncated', complete: false, truncated: true });
  });

  it('inside a page cut short by the end of the buffer', () => {
    const cut = inspectSegment(buildSegment({ start: SEG1B, length: 3 * 8192 + 100 }));
    expect(cut).toMatchObject({ validBytes: 3 * 8192 + 100, pages: 4, end: 'truncated', truncated: true });
    // Too little of the last page to hold a header: it is not counted.
    const sliver = inspectSegment(buildSegment({ start: SEG1B, length: 3 * 8192 + 10 }));
    expect(sliver).toMatchObject({ validBytes: 3 * 8192, pages: 3, end: 'truncated' });
  });

  it('inside page 0 (a short .partial)', () => {
    const r = inspectSegment(buildSegment({ start: SEG1B, length: 1960 }), { expectedName: `${NAME1B}.partial` });
    expect(r).toMatchObject({ validBytes: 1960, pages: 1, end: 'truncated', truncated: true, complete: false });
  });

  it('a truncated buffer whose data ended before the cut', () => {
    const r = inspectSegment(buildSegment({ start: SEG1B, validPages: 5, length: 10 * 8192 }));
    expect(r).toMatchObject({ validBytes: 5 * 8192, end: 'zeros', truncated: true, complete: false });
  });
});

describe('inspectSegment: timelines', () => {
  it("accepts a parent's timeline on page 0 of a new timeline's first segment", () => {
    // PostgreSQL copies the parent's segment up to the switch point; later pages carry the new TLI.
    const seg = buildSegment({ start: SEG1B, tli: 1, pageTli: (p) => (p >= 12 ? 2 : 1) });
    const r = inspectSegment(seg, { expectedName: '00000002000000000000001B' });
    expect(r).toMatchObject({ timeline: 1, lastPageTimeline: 2, complete: true });
  });

  it("refuses a page-0 timeline later than the name's", () => {
    expect(() => inspectSegment(buildSegment({ start: SEG1B, tli: 3 }), { expectedName: '00000002000000000000001B' })).toThrow(
      "unable to read WAL file '00000002000000000000001B': page 0 is on timeline 3, later than timeline 2 in the name",
    );
  });

  it('refuses a timeline going backwards between pages', () => {
    const seg = buildSegment({ start: SEG1B, tli: 2, pageTli: (p) => (p === 7 ? 1 : 2) });
    expect(() => inspectSegment(seg)).toThrow(
      'unable to read WAL: page at offset 57344 (0/1B0E000) is on timeline 1, after a page on timeline 2 (out-of-sequence timeline ID)',
    );
  });
});

describe('inspectSegment: corruption', () => {
  function withPage(seg: Uint8Array, page: number, addr: bigint, magic = MAGIC.pg15): Uint8Array {
    writeShortHeader(seg, page * 8192, { magic, info: 0, tli: 1, pageAddr: addr });
    return seg;
  }

  it.each<[string, (s: Uint8Array) => Uint8Array, string]>([
    [
      'another magic',
      (s) => withPage(s, 5, SEG1B + 5n * 8192n, MAGIC.pg16),
      'page at offset 40960 (0/1B0A000) has magic 0xD113, page 0 has 0xD110',
    ],
    [
      'a zeroed header over data',
      (s) => {
        s.fill(0, 9 * 8192, 9 * 8192 + 24);
        return s;
      },
      'page at offset 73728 (0/1B12000) has magic 0x0000, page 0 has 0xD110',
    ],
    [
      'an address one page ahead',
      (s) => withPage(s, 5, SEG1B + 6n * 8192n),
      'page at offset 40960 (0/1B0A000) has address 0/1B0C000: ahead of the expected 0/1B0A000',
    ],
    [
      'an address from the next segment',
      (s) => withPage(s, 5, 0x1c00000n + 5n * 8192n),
      'page at offset 40960 (0/1B0A000) has address 0/1C0A000: it belongs to a later segment',
    ],
    [
      'an address far ahead',
      (s) => withPage(s, 5, 0xffffffff_00000000n),
      'page at offset 40960 (0/1B0A000) has address FFFFFFFF/0: it belongs to a later segment',
    ],
    [
      'an address behind, in this segment',
      (s) => withPage(s, 5, SEG1B + 4n * 8192n),
      'page at offset 40960 (0/1B0A000) has address 0/1B08000: behind the expected 0/1B0A000 within this segment',
    ],
    [
      'an address behind, in this segment, zero',
      (s) => withPage(s, 5, SEG1B),
      'page at offset 40960 (0/1B0A000) has address 0/1B00000: behind the expected',
    ],
    [
      'an old address at the wrong offset',
      (s) => withPage(s, 5, 0x1800000n + 4n * 8192n),
      'page at offset 40960 (0/1B0A000) has address 0/1808000: from an earlier segment but not at this offset, expected 0/1B0A000',
    ],
  ])('%s', (_what, corrupt, reason) => {
    const seg = corrupt(buildSegment({ start: SEG1B }));
    expect(() => inspectSegment(seg)).toThrow(InvalidWalError);
    expect(() => inspectSegment(seg)).toThrow(`unable to read WAL: ${reason}`);
    expect(() => inspectSegment(seg, { expectedName: NAME1B })).toThrow(`unable to read WAL file '${NAME1B}': ${reason}`);
  });

  it('a corrupt page after the end of valid data is not looked at', () => {
    const seg = buildSegment({ start: SEG1B, validPages: 4 });
    writeShortHeader(seg, 10 * 8192, { magic: 0x1234, info: 0, tli: 9, pageAddr: 0n });
    expect(inspectSegment(seg)).toMatchObject({ validBytes: 4 * 8192, end: 'zeros' });
  });

  it('stops at a page of zeros even when data follows it (validateSegmentForArchive catches that)', () => {
    const seg = buildSegment({ start: SEG1B });
    seg.fill(0, 20 * 8192, 21 * 8192);
    expect(inspectSegment(seg)).toMatchObject({ validBytes: 20 * 8192, end: 'zeros' });
  });
});

describe('inspectSegment: not WAL, or not this WAL', () => {
  it('zero-filled', () => {
    expect(() => inspectSegment(new Uint8Array(MiB))).toThrow('unable to read WAL: not WAL (all zeros)');
    expect(() => inspectSegment(new Uint8Array(MiB), { expectedName: NAME1B })).toThrow(
      `unable to read WAL file '${NAME1B}': not WAL (all zeros)`,
    );
  });

  it('empty or text', () => {
    expect(() => inspectSegment(new Uint8Array(0))).toThrow('the file is empty');
    expect(() => inspectSegment(new TextEncoder().encode('#!/bin/sh\nexit 0\n'.repeat(100)))).toThrow(
      'unknown WAL page magic 0x2123 on page 0',
    );
  });

  it('longer than the segment size in its header', () => {
    expect(() => inspectSegment(buildSegment({ start: SEG1B, length: MiB + 1 }))).toThrow(
      'unable to read WAL: 1048577 bytes is longer than the 1MB segment size in its header',
    );
  });

  it('a name that does not match the header', () => {
    expect(() => inspectSegment(buildSegment({ start: SEG1B }), { expectedName: '00000001000000000000001C' })).toThrow(
      "unable to read WAL file '00000001000000000000001C': page 0 is at 0/1B00000, but the name says the segment starts at 0/1C00000",
    );
    // The name is read with the header's segment size: at 1MB the last field stops at FFF.
    expect(() => inspectSegment(buildSegment({ start: SEG1B }), { expectedName: '000000010000000000001000' })).toThrow(InvalidNameError);
    expect(() => inspectSegment(buildSegment({ start: SEG1B }), { expectedName: '00000001.history' })).toThrow(
      "unable to inspect WAL file '00000001.history': a history file is not a WAL segment",
    );
    expect(() => inspectSegment(buildSegment({ start: SEG1B }), { expectedName: 'junk' })).toThrow(InvalidNameError);
  });

  it('another cluster', () => {
    const seg = buildSegment({ start: SEG1B });
    expect(() => inspectSegment(seg, { expectedSystemId: '7712180886658229172' })).toThrow(ArchiveMismatchError);
    expect(() => inspectSegment(seg, { expectedName: NAME1B, expectedSystemId: 1n })).toThrow(
      `unable to verify WAL file '${NAME1B}': it belongs to database system 7712180886658229171, expected 1`,
    );
    expect(inspectSegment(seg, { expectedSystemId: DEFAULT_SYSID }).systemId).toBe('7712180886658229171');
    expect(inspectSegment(seg, { expectedSystemId: '07712180886658229171' }).complete).toBe(true);
    const max = buildSegment({ start: SEG1B, sysid: 18446744073709551615n });
    expect(inspectSegment(max, { expectedSystemId: '18446744073709551615' }).systemId).toBe('18446744073709551615');
  });

  it.each<[string | bigint]>([[''], ['abc'], ['-1'], ['1e5'], [' 1'], ['18446744073709551616'], [-1n], [2n ** 64n]])(
    'an unusable expected system id %s',
    (systemId) => {
      expect(() => inspectSegment(buildSegment({ start: SEG1B }), { expectedSystemId: systemId })).toThrow(UsageError);
    },
  );

  it('another segment size', () => {
    const seg = buildSegment({ start: SEG1B });
    expect(() => inspectSegment(seg, { expectedSegSize: 16 * MiB })).toThrow(ArchiveMismatchError);
    expect(() => inspectSegment(seg, { expectedSegSize: 16 * MiB })).toThrow(
      'unable to verify WAL: its segment size is 1MB, expected 16MB',
    );
    expect(() => inspectSegment(seg, { expectedSegSize: 1000 })).toThrow(UsageError);
    expect(inspectSegment(seg, { expectedSegSize: MiB }).segSize).toBe(MiB);
  });
});

describe('validateSegmentForArchive', () => {
  it('accepts a finished segment', () => {
    expect(validateSegmentForArchive(buildSegment({ start: SEG1B }), NAME1B, identity).complete).toBe(true);
  });

  it('accepts a segment that an early switch ended (valid pages, then only zeros)', () => {
    const r = validateSegmentForArchive(buildSegment({ start: SEG1B, validPages: 66 }), NAME1B, identity);
    expect(r).toMatchObject({ end: 'zeros', validBytes: 66 * 8192 });
  });

  it('accepts the identity as a bigint', () => {
    expect(validateSegmentForArchive(buildSegment({ start: SEG1B }), NAME1B, { systemId: DEFAULT_SYSID, segSize: MiB }).complete).toBe(
      true,
    );
  });

  it('refuses a truncated segment', () => {
    expect(() => validateSegmentForArchive(buildSegment({ start: SEG1B, length: MiB - 8192 }), NAME1B, identity)).toThrow(
      `unable to archive WAL file '${NAME1B}': truncated: 1040384 of 1048576 bytes (a finished segment is exactly wal_segment_size long)`,
    );
    expect(() => validateSegmentForArchive(buildSegment({ start: SEG1B, length: 40 }), NAME1B, identity)).toThrow(InvalidWalError);
  });

  it('refuses a segment with a recycled tail', () => {
    const seg = buildSegment({ start: SEG1B, validPages: 18, recycledFrom: 0x1800000n });
    expect(() => validateSegmentForArchive(seg, NAME1B, identity)).toThrow(
      `unable to archive WAL file '${NAME1B}': the segment is unfinished: the page at offset 147456 is left over from an earlier segment`,
    );
  });

  it('refuses data after the zeros', () => {
    const seg = buildSegment({ start: SEG1B, validPages: 66 });
    seg[MiB - 1] = 1;
    expect(() => validateSegmentForArchive(seg, NAME1B, identity)).toThrow(
      `unable to archive WAL file '${NAME1B}': valid WAL ends at offset 540672 with a zero page, but non-zero bytes follow at offset 1048575`,
    );
  });

  it('accepts any .partial that is valid as far as it goes', () => {
    const partial = `${NAME1B}.partial`;
    expect(validateSegmentForArchive(buildSegment({ start: SEG1B, validPages: 18, recycledFrom: 0x1800000n }), partial, identity).end).toBe(
      'recycled',
    );
    expect(validateSegmentForArchive(buildSegment({ start: SEG1B, length: 1960 }), partial, identity).validBytes).toBe(1960);
    expect(validateSegmentForArchive(buildSegment({ start: SEG1B, validPages: 3 }), partial, identity).end).toBe('zeros');
  });

  it('still refuses a corrupt .partial', () => {
    const seg = buildSegment({ start: SEG1B });
    writeShortHeader(seg, 8192, { magic: MAGIC.pg15, info: 0, tli: 1, pageAddr: 0x1c02000n });
    expect(() => validateSegmentForArchive(seg, `${NAME1B}.partial`, identity)).toThrow(InvalidWalError);
  });

  it('refuses another cluster, another size, another name', () => {
    const seg = buildSegment({ start: SEG1B });
    expect(() => validateSegmentForArchive(seg, NAME1B, { systemId: '1', segSize: MiB })).toThrow(ArchiveMismatchError);
    expect(() => validateSegmentForArchive(seg, NAME1B, { systemId: DEFAULT_SYSID, segSize: 16 * MiB })).toThrow(ArchiveMismatchError);
    expect(() => validateSegmentForArchive(seg, '00000001000000000000001A', identity)).toThrow(InvalidWalError);
  });

  it('refuses names that are not segments', () => {
    const seg = buildSegment({ start: SEG1B });
    expect(() => validateSegmentForArchive(seg, '00000002.history', identity)).toThrow(
      "unable to validate WAL file '00000002.history': a history file is not a WAL segment",
    );
    expect(() => validateSegmentForArchive(seg, `${NAME1B}.00000028.backup`, identity)).toThrow(InvalidNameError);
    expect(() => validateSegmentForArchive(seg, '00000001000000000000001b', identity)).toThrow(InvalidNameError);
    expect(() => validateSegmentForArchive(seg, '000000010000000000001000', identity)).toThrow(InvalidNameError);
  });
});
