import { describe, expect, it } from 'vitest';
import { InvalidNameError, InvalidTimelineError, UsageError } from '../../../src/common/errors.js';
import { formatLsn, parseLsn } from '../../../src/segment/lsn.js';
import {
  backupHistoryFileName,
  classifyWalFileName,
  historyFileName,
  maxSegno,
  parseWalFileName,
  segmentFileName,
  segmentFileNameForLsn,
  SegmentName,
  segmentStartLsn,
  segnoOfLsn,
  tryClassifyWalFileName,
} from '../../../src/segment/names.js';

const MB = 1024 * 1024;

/**
 * One row per legal segment size, all worked out by hand:
 * label, bytes, highest last field (2^32/size - 1), first out-of-range last field,
 * last byte of segment 0, first byte of segment 1, start of the last segment of the address space,
 * log2 of the number of segments in the address space (2^64 / size).
 */
const SIZES: [string, number, string, string, string, string, string, bigint][] = [
  ['1MB', 1 * MB, '00000FFF', '00001000', '0/FFFFF', '0/100000', 'FFFFFFFF/FFF00000', 44n],
  ['2MB', 2 * MB, '000007FF', '00000800', '0/1FFFFF', '0/200000', 'FFFFFFFF/FFE00000', 43n],
  ['4MB', 4 * MB, '000003FF', '00000400', '0/3FFFFF', '0/400000', 'FFFFFFFF/FFC00000', 42n],
  ['8MB', 8 * MB, '000001FF', '00000200', '0/7FFFFF', '0/800000', 'FFFFFFFF/FF800000', 41n],
  ['16MB', 16 * MB, '000000FF', '00000100', '0/FFFFFF', '0/1000000', 'FFFFFFFF/FF000000', 40n],
  ['32MB', 32 * MB, '0000007F', '00000080', '0/1FFFFFF', '0/2000000', 'FFFFFFFF/FE000000', 39n],
  ['64MB', 64 * MB, '0000003F', '00000040', '0/3FFFFFF', '0/4000000', 'FFFFFFFF/FC000000', 38n],
  ['128MB', 128 * MB, '0000001F', '00000020', '0/7FFFFFF', '0/8000000', 'FFFFFFFF/F8000000', 37n],
  ['256MB', 256 * MB, '0000000F', '00000010', '0/FFFFFFF', '0/10000000', 'FFFFFFFF/F0000000', 36n],
  ['512MB', 512 * MB, '00000007', '00000008', '0/1FFFFFFF', '0/20000000', 'FFFFFFFF/E0000000', 35n],
  ['1GB', 1024 * MB, '00000003', '00000004', '0/3FFFFFFF', '0/40000000', 'FFFFFFFF/C0000000', 34n],
];

describe.each(SIZES)('segment names at %s', (_label, size, lowMax, lowTooBig, lastOf0, firstOf1, lastStart, log2Count) => {
  it('the last byte of segment 0 and the first byte of segment 1', () => {
    const zero = SegmentName.fromLsn(1, parseLsn(lastOf0), size);
    const one = SegmentName.fromLsn(1, parseLsn(firstOf1), size);
    expect(zero.name).toBe('000000010000000000000000');
    expect(zero.segno).toBe(0n);
    expect(formatLsn(zero.lastLsn)).toBe(lastOf0);
    expect(one.name).toBe('000000010000000000000001');
    expect(formatLsn(one.startLsn)).toBe(firstOf1);
    expect(zero.next().equals(one)).toBe(true);
    expect(one.previous().equals(zero)).toBe(true);
    expect(zero.contains(parseLsn(lastOf0))).toBe(true);
    expect(zero.contains(parseLsn(firstOf1))).toBe(false);
    expect(one.contains(parseLsn(lastOf0))).toBe(false);
    expect(zero.offsetOf(parseLsn(lastOf0))).toBe(size - 1);
    expect(one.offsetOf(parseLsn(firstOf1))).toBe(0);
  });

  it('the last segment of the address space on timeline FFFFFFFF', () => {
    const name = `FFFFFFFFFFFFFFFF${lowMax}`;
    const last = SegmentName.fromLsn(0xffffffff, parseLsn('FFFFFFFF/FFFFFFFF'), size);
    expect(last.name).toBe(name);
    expect(last.segno).toBe(2n ** log2Count - 1n);
    expect(maxSegno(size)).toBe(2n ** log2Count - 1n);
    expect(last.logId).toBe(0xffffffff);
    expect(last.segLow).toBe(Number.parseInt(lowMax, 16));
    expect(formatLsn(last.startLsn)).toBe(lastStart);
    expect(formatLsn(last.lastLsn)).toBe('FFFFFFFF/FFFFFFFF');
    const parsed = SegmentName.parse(name, size);
    expect(parsed.equals(last)).toBe(true);
    expect(parsed.timeline).toBe(0xffffffff);
    expect(() => last.next()).toThrow(UsageError);
    expect(() => SegmentName.of(1, 2n ** log2Count, size)).toThrow(UsageError);
    expect(segmentFileName(0xffffffff, 2n ** log2Count - 1n, size)).toBe(name);
  });

  it('carries from the last field into the middle one', () => {
    const before = SegmentName.fromLsn(1, parseLsn('0/FFFFFFFF'), size);
    expect(before.name).toBe(`0000000100000000${lowMax}`);
    expect(before.next().name).toBe('000000010000000100000000');
    expect(SegmentName.fromLsn(1, parseLsn('1/0'), size).name).toBe('000000010000000100000000');
    expect(SegmentName.parse('000000010000000100000000', size).previous().name).toBe(`0000000100000000${lowMax}`);
    expect(formatLsn(SegmentName.parse('000000010000000100000000', size).startLsn)).toBe('1/0');
  });

  it('rejects a last field out of range for this size', () => {
    const name = `0000000100000000${lowTooBig}`;
    expect(() => SegmentName.parse(name, size)).toThrow(InvalidNameError);
    expect(() => parseWalFileName(`${name}.partial`, size)).toThrow(
      `unable to parse WAL file name '${name}.partial': the last 8 digits ${lowTooBig} exceed ${lowMax}, the highest allowed with ${_label} segments`,
    );
    // Without a size the classifier cannot know, and does not pretend to.
    expect(classifyWalFileName(name)).toMatchObject({ kind: 'segment', segLow: Number.parseInt(lowTooBig, 16) });
  });
});

describe('SegmentName', () => {
  it('matches pg_walfile_name on known positions', () => {
    // 16/B374D848 at 16MB: segno 0x16B3 -> xlog id 0x16, last field 0xB3, offset 0x74D848.
    const s = SegmentName.fromLsn(1, parseLsn('16/B374D848'), 16 * MB);
    expect(s.name).toBe('0000000100000016000000B3');
    expect(s.offsetOf(parseLsn('16/B374D848'))).toBe(0x74d848);
    // Observed on a PostgreSQL 15 cluster with 1MB segments.
    expect(segmentFileNameForLsn(1, parseLsn('0/6007E0'), MB)).toBe('000000010000000000000006');
    expect(segmentFileNameForLsn(1, parseLsn('0/18822A8'), MB)).toBe('000000010000000000000018');
    expect(segmentFileNameForLsn(2, parseLsn('0/1B19170'), MB)).toBe('00000002000000000000001B');
    // A fresh 16MB cluster starts in segment 1 at 0/1000000.
    expect(formatLsn(SegmentName.parse('000000010000000000000001', 16 * MB).startLsn)).toBe('0/1000000');
  });

  it('is the same segment number under different sizes only by name arithmetic', () => {
    // 00000001000000020000000A: 16MB -> segno 2*256+10 = 522; 1MB -> 2*4096+10 = 8202.
    expect(SegmentName.parse('00000001000000020000000A', 16 * MB).segno).toBe(522n);
    expect(SegmentName.parse('00000001000000020000000A', MB).segno).toBe(8202n);
    expect(formatLsn(SegmentName.parse('00000001000000020000000A', 16 * MB).startLsn)).toBe('2/A000000');
    expect(formatLsn(SegmentName.parse('00000001000000020000000A', MB).startLsn)).toBe('2/A00000');
  });

  it('of() validates its inputs', () => {
    expect(SegmentName.of(3, 0, 16 * MB).name).toBe('000000030000000000000000');
    expect(SegmentName.of(3, 257, 16 * MB).name).toBe('000000030000000100000001');
    expect(() => SegmentName.of(0, 1n, 16 * MB)).toThrow("unable to use timeline '0'");
    expect(() => SegmentName.of(1, -1n, 16 * MB)).toThrow(
      "unable to use segment number '-1': outside 0 to 1099511627775 for 16MB segments",
    );
    expect(() => SegmentName.of(1, 1.5, 16 * MB)).toThrow("unable to use segment number '1.5': not an integer");
    expect(() => SegmentName.of(1, 1n, 3 * MB)).toThrow(UsageError);
  });

  it('steps and compares', () => {
    const a = SegmentName.parse('0000000100000000000000FF', 16 * MB);
    expect(a.next().name).toBe('000000010000000100000000');
    expect(() => SegmentName.parse('000000010000000000000000', 16 * MB).previous()).toThrow(
      "unable to step back from segment '000000010000000000000000': it is the first segment",
    );
    const onTli2 = a.withTimeline(2);
    expect(onTli2.name).toBe('0000000200000000000000FF');
    expect(onTli2.segno).toBe(a.segno);
    expect(onTli2.equals(a)).toBe(false);
    expect(a.equals(SegmentName.parse('0000000100000000000000FF', MB))).toBe(false);
    const sorted = [onTli2, a.next(), a].sort(SegmentName.compare).map(String);
    expect(sorted).toEqual(['0000000100000000000000FF', '000000010000000100000000', '0000000200000000000000FF']);
    expect(SegmentName.compare(a, SegmentName.parse('0000000100000000000000FF', 16 * MB))).toBe(0);
    expect(SegmentName.compare(onTli2, a)).toBe(1);
    expect(SegmentName.compare(a, onTli2)).toBe(-1);
    expect(SegmentName.compare(a.next(), a)).toBe(1);
    expect(SegmentName.compare(a, a.next())).toBe(-1);
  });

  it('prints as its name', () => {
    const s = SegmentName.parse('00000001000000000000002A', 16 * MB);
    expect(String(s)).toBe('00000001000000000000002A');
    expect(`${s}`).toBe('00000001000000000000002A');
    expect(JSON.stringify({ segment: s })).toBe('{"segment":"00000001000000000000002A"}');
    expect(s.partialName).toBe('00000001000000000000002A.partial');
  });

  it('offsetOf refuses a position outside the segment', () => {
    const s = SegmentName.parse('000000010000000000000001', 16 * MB);
    expect(() => s.offsetOf(parseLsn('0/2000000'))).toThrow(
      "unable to locate LSN '0/2000000' in segment '000000010000000000000001': the segment holds 0/1000000 to 0/1FFFFFF",
    );
  });

  it('parse() takes plain segment names only', () => {
    expect(() => SegmentName.parse('000000010000000000000001.partial', 16 * MB)).toThrow(
      "unable to parse WAL file name '000000010000000000000001.partial': a partial file name, not a WAL segment name",
    );
    expect(() => SegmentName.parse('00000002.history', 16 * MB)).toThrow(InvalidNameError);
  });
});

describe('segment arithmetic', () => {
  it('segnoOfLsn / segmentStartLsn', () => {
    expect(segnoOfLsn(parseLsn('0/FFFFFF'), 16 * MB)).toBe(0n);
    expect(segnoOfLsn(parseLsn('0/1000000'), 16 * MB)).toBe(1n);
    expect(segnoOfLsn(parseLsn('FFFFFFFF/FFFFFFFF'), 1024 * MB)).toBe(2n ** 34n - 1n);
    expect(formatLsn(segmentStartLsn(0x16b3n, 16 * MB))).toBe('16/B3000000');
    expect(() => segmentStartLsn(2n ** 40n, 16 * MB)).toThrow(UsageError);
    expect(() => segnoOfLsn(parseLsn('0/0'), 1000)).toThrow(UsageError);
  });
});

describe('other file names', () => {
  it('history file names', () => {
    expect(historyFileName(1)).toBe('00000001.history');
    expect(historyFileName(0x1a)).toBe('0000001A.history');
    expect(historyFileName(0xffffffff)).toBe('FFFFFFFF.history');
    expect(() => historyFileName(0)).toThrow(InvalidTimelineError);
  });

  it('backup history file names (observed: pg_basebackup on timeline 2 with 1MB segments)', () => {
    expect(backupHistoryFileName(2, parseLsn('0/1C00028'), MB)).toBe('00000002000000000000001C.00000028.backup');
    expect(backupHistoryFileName(1, parseLsn('16/B374D848'), 16 * MB)).toBe('0000000100000016000000B3.0074D848.backup');
  });
});

describe('classifyWalFileName', () => {
  it.each([
    ['000000010000000000000001', { kind: 'segment', timeline: 1, logId: 0, segLow: 1 }],
    ['0000000A00000016000000B3', { kind: 'segment', timeline: 10, logId: 0x16, segLow: 0xb3 }],
    ['FFFFFFFFFFFFFFFFFFFFFFFF', { kind: 'segment', timeline: 0xffffffff, logId: 0xffffffff, segLow: 0xffffffff }],
    ['00000001000000000000001B.partial', { kind: 'partial', timeline: 1, logId: 0, segLow: 0x1b }],
    ['00000002.history', { kind: 'history', timeline: 2 }],
    ['00000001.history', { kind: 'history', timeline: 1 }],
    ['FFFFFFFF.history', { kind: 'history', timeline: 0xffffffff }],
    ['00000002000000000000001C.00000028.backup', { kind: 'backup', timeline: 2, logId: 0, segLow: 0x1c, offset: 0x28 }],
    ['000000010000000000000002.FFFFFFFF.backup', { kind: 'backup', timeline: 1, logId: 0, segLow: 2, offset: 0xffffffff }],
  ])('%s', (name, expected) => {
    expect(classifyWalFileName(name)).toEqual({ name, ...expected });
    expect(tryClassifyWalFileName(name)).toEqual({ name, ...expected });
  });

  it.each([
    ['', 'the name is empty'],
    ['pg_wal/000000010000000000000001', 'a path, not a file name (pass %f, not %p)'],
    ['C:\\000000010000000000000001', 'a path, not a file name'],
    ['00000001000000000000000a', 'a segment name must use uppercase hexadecimal digits, as PostgreSQL writes WAL file names'],
    ['0000000100000000000000ab.partial', 'must use uppercase hexadecimal digits'],
    [
      '0000000a.history',
      "a history file name must use uppercase hexadecimal digits, as PostgreSQL writes WAL file names before '.history'",
    ],
    ['00000001000000000000001', 'a segment name must be 24 hexadecimal digits, found 23 characters'],
    ['0000000100000000000000011', 'a segment name must be 24 hexadecimal digits, found 25 characters'],
    ['00000001000000000000000G', "a segment name must be 24 hexadecimal digits, found 'G' at position 24"],
    ['0000000-1000000000000001', "found '-' at position 8"],
    [' 00000001000000000000001', "found ' ' at position 1"],
    ['000000010000000000000001 ', 'found 25 characters'],
    ['000000000000000000000001', 'timeline 0 does not exist (timelines start at 1)'],
    ['000000000000000000000001.partial', 'timeline 0 does not exist'],
    ['00000000.history', 'timeline 0 does not exist'],
    ['0000001.history', "a history file name must be 8 hexadecimal digits, found 7 characters before '.history'"],
    ['000000010.history', 'found 9 characters'],
    ['000000010000000000000001.history', "found 24 characters before '.history'"],
    ['000000010000000000000001.gz', "unknown suffix '.gz' (expected none, '.partial', '.history' or '.<8 hex digits>.backup')"],
    ['000000010000000000000001.partial.gz', "unknown suffix '.partial.gz'"],
    ['000000010000000000000001.zst', "unknown suffix '.zst'"],
    ['000000010000000000000001.ready', "unknown suffix '.ready'"],
    ['000000010000000000000001.', "unknown suffix '.'"],
    ['000000010000000000000001.PARTIAL', "unknown suffix '.PARTIAL'"],
    ['000000010000000000000001.00000028.backupx', "unknown suffix '.00000028.backupx'"],
    ['000000010000000000000001.00000028.backup.gz', "unknown suffix '.00000028.backup.gz'"],
    ['000000010000000000000001.0000002.backup', 'the backup start offset must be 8 hexadecimal digits, found 7 characters'],
    ['000000010000000000000001.0000002a.backup', 'the backup start offset must use uppercase'],
    ['000000010000000000000001.0000002Z.backup', "the backup start offset must be 8 hexadecimal digits, found 'Z' at position 8"],
    ['000000010000000000000001..backup', 'the backup start offset must be 8 hexadecimal digits, found 0 characters'],
    ['000000000000000000000001.00000028.backup', 'timeline 0 does not exist'],
    ['.history', 'found 0 characters'],
    ['history', 'a segment name must be 24 hexadecimal digits, found 7 characters'],
    ['archive_status', 'found 14 characters'],
  ])('rejects %j: %s', (name, reason) => {
    expect(() => classifyWalFileName(name)).toThrow(InvalidNameError);
    expect(() => classifyWalFileName(name)).toThrow(`unable to parse WAL file name '${name}': `);
    expect(() => classifyWalFileName(name)).toThrow(reason);
    expect(tryClassifyWalFileName(name)).toBeUndefined();
  });
});

describe('parseWalFileName', () => {
  it('resolves segment, partial and backup names against a size', () => {
    const seg = parseWalFileName('00000003000000000000001D', MB);
    expect(seg.kind).toBe('segment');
    expect(seg.kind === 'segment' && formatLsn(seg.segment.startLsn)).toBe('0/1D00000');

    const partial = parseWalFileName('00000002000000000000001D.partial', MB);
    expect(partial).toMatchObject({ kind: 'partial', name: '00000002000000000000001D.partial', timeline: 2 });
    expect(partial.kind === 'partial' && partial.segment.name).toBe('00000002000000000000001D');

    const backup = parseWalFileName('00000002000000000000001C.00000028.backup', MB);
    expect(backup.kind).toBe('backup');
    if (backup.kind !== 'backup') return;
    expect(backup.offset).toBe(0x28);
    expect(formatLsn(backup.backupStart)).toBe('0/1C00028');
    expect(backup.segment.name).toBe('00000002000000000000001C');

    expect(parseWalFileName('00000005.history', MB)).toEqual({ kind: 'history', name: '00000005.history', timeline: 5 });
  });

  it('rejects a backup offset beyond the segment', () => {
    expect(parseWalFileName('000000010000000000000001.000FFFF8.backup', MB).kind).toBe('backup');
    expect(() => parseWalFileName('000000010000000000000001.00100000.backup', MB)).toThrow(
      "unable to parse WAL file name '000000010000000000000001.00100000.backup': the backup start offset 00100000 lies beyond the end of a 1MB segment",
    );
    expect(parseWalFileName('000000010000000000000001.00100000.backup', 16 * MB).kind).toBe('backup');
  });

  it('rejects an illegal size', () => {
    expect(() => parseWalFileName('000000010000000000000001', 12345)).toThrow(UsageError);
  });
});
