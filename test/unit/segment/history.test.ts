import { describe, expect, it } from 'vitest';
import { TimelineError, UsageError } from '../../../src/common/errors.js';
import { formatLsn, parseLsn, type Lsn } from '../../../src/segment/lsn.js';
import {
  formatTimelineHistory,
  historyIncludes,
  makeTimelineHistory,
  parseTimelineHistory,
  timelineOfLsn,
  timelineOfSegment,
  timelinesForSegment,
  timelineSpans,
  timelineSwitchPoint,
} from '../../../src/segment/history.js';
import { timeline } from '../../../src/segment/timeline.js';

const MB = 1024 * 1024;
const L = (text: string): Lsn => parseLsn(text);

// Byte for byte what PostgreSQL 15 wrote for two successive promotions (copied from a throwaway
// cluster): each child file is the parent's file plus "\n" plus the new line.
const TLI2_FILE = '1\t0/1B19090\tno recovery target specified\n';
const TLI3_FILE = '1\t0/1B19090\tno recovery target specified\n\n2\t0/1D17B58\tno recovery target specified\n';

describe('parseTimelineHistory', () => {
  it('parses what PostgreSQL writes', () => {
    const h = parseTimelineHistory(TLI3_FILE, 3);
    expect(h.timeline).toBe(3);
    expect(h.entries).toEqual([
      { parent: 1, switchpoint: 0x1b19090n, reason: 'no recovery target specified' },
      { parent: 2, switchpoint: 0x1d17b58n, reason: 'no recovery target specified' },
    ]);
    expect(parseTimelineHistory(TLI2_FILE, timeline(2)).entries).toHaveLength(1);
  });

  it('skips blank lines and comments, takes CRLF, spaces and a missing final newline', () => {
    const text = '# made by hand\r\n\r\n   # indented comment\n1 0/3000158 before 2020-01-01\r\n\t\n  2\t\t1/A0\tmanual\ttab\n3\t2/0';
    const h = parseTimelineHistory(text, 4);
    expect(h.entries).toEqual([
      { parent: 1, switchpoint: 0x3000158n, reason: 'before 2020-01-01' },
      { parent: 2, switchpoint: 0x1_0000_00a0n, reason: 'manual\ttab' },
      { parent: 3, switchpoint: 0x2_0000_0000n, reason: '' },
    ]);
  });

  it('accepts an empty file (no ancestors), lowercase and zero-padded LSNs, and FFFFFFFF', () => {
    expect(parseTimelineHistory('', 1).entries).toEqual([]);
    expect(parseTimelineHistory('# nothing\n', 5).entries).toEqual([]);
    const h = parseTimelineHistory('fffffffe\t00000001/0000abcd\tx\n'.replace('fffffffe', '4294967294'), 0xffffffff);
    expect(h.entries[0]).toEqual({ parent: 0xfffffffe, switchpoint: 0x1_0000_abcdn, reason: 'x' });
  });

  it.each([
    ['abc\t0/1\tx\n', 'line 1: syntax error in \'abc\t0/1\tx\': expected a numeric timeline ID'],
    ['1\n', "line 1: syntax error in '1': expected a write-ahead log switch point location like 0/2000000 after the timeline ID"],
    ['1\t0/1B19090x\treason\n', 'line 1: syntax error'],
    ['1\t0/1B19090\n\n2\t100000000/0\tx\n', 'line 3: syntax error'],
    ['1\t0x10/0\tx\n', 'line 1: syntax error'],
    ['1\t0-1\tx\n', "line 1: syntax error in '1\t0-1\tx': expected a write-ahead log switch point location"],
    ['-1\t0/1\tx\n', "line 1: syntax error in '-1\t0/1\tx': expected a numeric timeline ID"],
    ['0\t0/1\tx\n', 'line 1: 0 is not a valid timeline ID'],
    ['4294967296\t0/1\tx\n', 'line 1: 4294967296 is not a valid timeline ID'],
    ['1\t0/2\tx\n1\t0/3\tx\n', 'entry 2: timeline IDs must be in increasing sequence (1 after 1)'],
    ['2\t0/2\tx\n1\t0/3\tx\n', 'entry 2: timeline IDs must be in increasing sequence (1 after 2)'],
    ['1\t0/3000000\tx\n2\t0/2FFFFFF\tx\n', 'entry 2: switch point 0/2FFFFFF is before the previous one 0/3000000'],
    ['1\t0/3000000\tx\n3\t0/4000000\tx\n', "entry 2: ancestor timeline 3 is not less than the file's own timeline 3"],
  ])('rejects %j', (text, reason) => {
    expect(() => parseTimelineHistory(text, 3)).toThrow(TimelineError);
    expect(() => parseTimelineHistory(text, 3)).toThrow(`unable to parse timeline history '00000003.history': ${reason}`);
  });

  it('rejects any entry in the history of timeline 1', () => {
    expect(() => parseTimelineHistory(TLI2_FILE, 1)).toThrow("ancestor timeline 1 is not less than the file's own timeline 1");
  });

  it('rejects an invalid own timeline', () => {
    expect(() => parseTimelineHistory(TLI2_FILE, 0)).toThrow(UsageError);
  });
});

describe('formatTimelineHistory', () => {
  it('reproduces PostgreSQL files byte for byte', () => {
    expect(formatTimelineHistory(parseTimelineHistory(TLI3_FILE, 3))).toBe(TLI3_FILE);
    expect(formatTimelineHistory(parseTimelineHistory(TLI2_FILE, 2))).toBe(TLI2_FILE);
    expect(formatTimelineHistory(makeTimelineHistory(1))).toBe('');
  });

  it('formats LSNs as %X/%X and keeps the reason', () => {
    const h = makeTimelineHistory(9, [
      { parent: timeline(1), switchpoint: L('0/0000A0'), reason: '' },
      { parent: timeline(8), switchpoint: L('ab/cdef0123'), reason: 'before 2026-01-01 00:00:00+00' },
    ]);
    expect(formatTimelineHistory(h)).toBe('1\t0/A0\t\n\n8\tAB/CDEF0123\tbefore 2026-01-01 00:00:00+00\n');
  });

  it('refuses what it could not write back', () => {
    const bad = { timeline: timeline(2), entries: [{ parent: timeline(1), switchpoint: L('0/1'), reason: 'two\nlines' }] };
    expect(() => formatTimelineHistory(bad)).toThrow('entry 1: the reason must be a single line');
    const notAncestor = { timeline: timeline(2), entries: [{ parent: timeline(2), switchpoint: L('0/1'), reason: '' }] };
    expect(() => formatTimelineHistory(notAncestor)).toThrow(TimelineError);
    const zero = { timeline: timeline(2), entries: [{ parent: 0 as never, switchpoint: L('0/1'), reason: '' }] };
    expect(() => formatTimelineHistory(zero)).toThrow('entry 1: timeline 0 is not a valid timeline ID');
  });

  it('makeTimelineHistory copies and freezes its entries', () => {
    const entries = [{ parent: timeline(1), switchpoint: L('0/10'), reason: 'r' }];
    const h = makeTimelineHistory(2, entries);
    entries[0]!.reason = 'changed';
    expect(h.entries[0]!.reason).toBe('r');
    expect(Object.isFrozen(h.entries)).toBe(true);
    expect(Object.isFrozen(h.entries[0])).toBe(true);
  });
});

describe('which timeline holds an LSN', () => {
  const h3 = parseTimelineHistory(TLI3_FILE, 3);

  it('spans, oldest first, switch point inclusive on the newer side', () => {
    expect(timelineSpans(h3)).toEqual([
      { timeline: 1, begin: 0n, end: 0x1b19090n },
      { timeline: 2, begin: 0x1b19090n, end: 0x1d17b58n },
      { timeline: 3, begin: 0x1d17b58n, end: null },
    ]);
    expect(timelineSpans(makeTimelineHistory(1))).toEqual([{ timeline: 1, begin: 0n, end: null }]);
  });

  it.each([
    ['0/0', 1],
    ['0/1B1908F', 1],
    ['0/1B19090', 2],
    ['0/1B19091', 2],
    ['0/1D17B57', 2],
    ['0/1D17B58', 3],
    ['1/0', 3],
    ['FFFFFFFF/FFFFFFFF', 3],
  ])('%s is on timeline %i', (position, tli) => {
    expect(timelineOfLsn(h3, L(position))).toBe(tli);
  });

  it('everything is on the timeline itself without ancestors', () => {
    expect(timelineOfLsn(makeTimelineHistory(1), L('0/0'))).toBe(1);
    expect(timelineOfLsn(makeTimelineHistory(1), L('FFFFFFFF/FFFFFFFF'))).toBe(1);
  });

  it('skips timelines that are not ancestors (abandoned branches)', () => {
    const h7 = parseTimelineHistory('1\t0/5000000\ta\n\n4\t0/9000000\tb\n', 7);
    expect(timelineOfLsn(h7, L('0/4FFFFFF'))).toBe(1);
    expect(timelineOfLsn(h7, L('0/5000000'))).toBe(4);
    expect(timelineOfLsn(h7, L('0/8FFFFFF'))).toBe(4);
    expect(timelineOfLsn(h7, L('0/9000000'))).toBe(7);
    expect(historyIncludes(h7, 4)).toBe(true);
    expect(historyIncludes(h7, 7)).toBe(true);
    expect(historyIncludes(h7, 2)).toBe(false);
    expect(historyIncludes(h7, 8)).toBe(false);
  });

  it('a timeline that ended where it began holds nothing', () => {
    const h = parseTimelineHistory('1\t0/3000000\ta\n2\t0/3000000\tb\n', 3);
    expect(timelineOfLsn(h, L('0/2FFFFFF'))).toBe(1);
    expect(timelineOfLsn(h, L('0/3000000'))).toBe(3);
    expect(timelinesForSegment(h, 3n, 16 * MB)).toEqual([3]);
    expect(timelinesForSegment(h, 2n, 16 * MB)).toEqual([1]);
  });
});

describe('timelineSwitchPoint', () => {
  const h3 = parseTimelineHistory(TLI3_FILE, 3);
  it('is the end of each ancestor', () => {
    expect(formatLsn(timelineSwitchPoint(h3, 1)!)).toBe('0/1B19090');
    expect(formatLsn(timelineSwitchPoint(h3, 2)!)).toBe('0/1D17B58');
    expect(timelineSwitchPoint(h3, 3)).toBeNull();
  });
  it('refuses a timeline that is not an ancestor', () => {
    expect(() => timelineSwitchPoint(h3, 4)).toThrow(
      "unable to find timeline '4' in the history of timeline 3: it is not an ancestor",
    );
    expect(() => timelineSwitchPoint(makeTimelineHistory(1), 2)).toThrow(TimelineError);
  });
});

describe('which timeline holds a segment', () => {
  const h3 = parseTimelineHistory(TLI3_FILE, 3);

  // 1MB segments: switch points 0/1B19090 (in segment 0x1B) and 0/1D17B58 (in segment 0x1D).
  it.each<[bigint, number[]]>([
    [0x00n, [1]],
    [0x1an, [1]],
    [0x1bn, [2, 1]],
    [0x1cn, [2]],
    [0x1dn, [3, 2]],
    [0x1en, [3]],
    [2n ** 44n - 1n, [3]],
  ])('1MB segment %i: candidates %j, newest first', (segno, tlis) => {
    expect(timelinesForSegment(h3, segno, MB)).toEqual(tlis);
    expect(timelineOfSegment(h3, segno, MB)).toBe(tlis[0]);
  });

  // 16MB segments: both switch points fall in segment 1.
  it.each<[bigint, number[]]>([
    [0n, [1]],
    [1n, [3, 2, 1]],
    [2n, [3]],
  ])('16MB segment %i: candidates %j', (segno, tlis) => {
    expect(timelinesForSegment(h3, segno, 16 * MB)).toEqual(tlis);
    expect(timelineOfSegment(h3, segno, 16 * MB)).toBe(tlis[0]);
  });

  it('a switch exactly at a segment boundary leaves the previous segment wholly on the parent', () => {
    const h2 = parseTimelineHistory('1\t0/3000000\tx\n', 2);
    expect(timelinesForSegment(h2, 2n, 16 * MB)).toEqual([1]);
    expect(timelineOfSegment(h2, 2n, 16 * MB)).toBe(1);
    expect(timelinesForSegment(h2, 3n, 16 * MB)).toEqual([2]);
    expect(timelineOfSegment(h2, 3n, 16 * MB)).toBe(2);
  });

  it('checks its inputs', () => {
    expect(() => timelinesForSegment(h3, -1n, MB)).toThrow(UsageError);
    expect(() => timelineOfSegment(h3, 2n ** 44n, MB)).toThrow(UsageError);
    expect(() => timelinesForSegment(h3, 0n, 1000)).toThrow(UsageError);
  });
});
