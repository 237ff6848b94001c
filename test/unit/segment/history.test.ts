import { describe, expect, it } from 'vitest';
import { InvalidTimelineError, TimelineError, UsageError } from '../../../src/common/errors.js';
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
  timelineAfterEnd,
  timelineToStreamFrom,
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
    ['abc\t0/1\tx\n', "line 1: syntax error in 'abc\t0/1\tx': expected a numeric timeline ID"],
    ['1\n', "line 1: syntax error in '1': expected a write-ahead log switch point location like 0/2000000 after the timeline ID"],
    [
      '1\t0/1B19090\n\n2\t100000000/0\tx\n',
      "line 3: syntax error in '2\t100000000/0\tx': each half of the switch point must fit in 32 bits",
    ],
    ['1\t0/100000000\tx\n', "line 1: syntax error in '1\t0/100000000\tx': each half"],
    ['1\t/100\tx\n', "line 1: syntax error in '1\t/100\tx': expected a write-ahead log switch point location"],
    ['1\t0 /100\tx\n', 'line 1: syntax error'],
    ['10/100\tx\n', "line 1: syntax error in '10/100\tx': expected a write-ahead log switch point location"],
    ['1\t0/\tx\n', 'line 1: syntax error'],
    ['-2\t0/1\tx\n', "line 1: syntax error in '-2\t0/1\tx': expected a numeric timeline ID"],
    ['\t\x00\n\xff\n', 'line 2: syntax error'],
    ['1\t0-1\tx\n', "line 1: syntax error in '1\t0-1\tx': expected a write-ahead log switch point location"],
    ['-1\t0/1\tx\n', "line 1: syntax error in '-1\t0/1\tx': expected a numeric timeline ID"],
    ['0\t0/1\tx\n', 'line 1: 0 is not a valid timeline ID'],
    ['4294967296\t0/1\tx\n', 'line 1: 4294967296 is not a valid timeline ID'],
    ['1\t0/2\tx\n1\t0/3\tx\n', 'entry 2: timeline IDs must be in increasing sequence (1 after 1)'],
    ['2\t0/2\tx\n1\t0/3\tx\n', 'entry 2: timeline IDs must be in increasing sequence (1 after 2)'],
    ['1\t0/3000000\tx\n3\t0/4000000\tx\n', "entry 2: ancestor timeline 3 is not less than the file's own timeline 3"],
  ])('rejects %j', (text, reason) => {
    expect(() => parseTimelineHistory(text, 3)).toThrow(TimelineError);
    expect(() => parseTimelineHistory(text, 3)).toThrow(`unable to parse timeline history '00000003.history': ${reason}`);
  });

  // Each of these is read by PostgreSQL's recovery (fgets + sscanf("%u\t%X/%X"), rest of the line
  // ignored), so the archive must take it too.
  it.each<[string, string, Array<[number, bigint, string]>]>([
    ['junk glued to the LSN', '1\t0/1B19090x\treason\n', [[1, 0x1b19090n, 'x\treason']]],
    ['a 0x prefix (%X takes one)', '1\t0x10/0x2A\tx\n', [[1, 0x10_0000_002an, 'x']]],
    ['whitespace after the slash (%X skips it)', '1 0/ 100 r\n', [[1, 0x100n, 'r']]],
    ['plus signs', '+1\t+0/+A0\tr\n', [[1, 0xa0n, 'r']]],
    ['vertical tab and form feed as separators', '1\v0/A0\f r\n', [[1, 0xa0n, 'r']]],
    ['no separator before the reason', '1\t0/A0reason\n', [[1, 0xa0n, 'reason']]],
    ['a carriage return inside the reason', '1\t0/A0\ta\rb\r\n', [[1, 0xa0n, 'a\rb']]],
    ['a NUL ends the line as C sees it', '1\t0/A0\tr\x00garbage 99\n', [[1, 0xa0n, 'r']]],
    ['a line that starts with NUL is blank', '\x00junk\n1\t0/A0\tr\n', [[1, 0xa0n, 'r']]],
    [
      'switch points that do not increase',
      '1\t0/3018CB0\tafter LSN 0/3018C80\n\n2\t0/3018C48\tat restore point "rp"\n',
      [
        [1, 0x3018cb0n, 'after LSN 0/3018C80'],
        [2, 0x3018c48n, 'at restore point "rp"'],
      ],
    ],
    [
      'switch points at 0/0',
      '1\t0/0\tx\n2\t0/0\ty\n',
      [
        [1, 0n, 'x'],
        [2, 0n, 'y'],
      ],
    ],
  ])('accepts %s', (_label, text, expected) => {
    const h = parseTimelineHistory(text, 3);
    expect(h.entries.map((e) => [e.parent, e.switchpoint, e.reason])).toEqual(expected);
    expect(parseTimelineHistory(Buffer.from(text, 'latin1'), 3).entries.map((e) => [e.parent, e.switchpoint])).toEqual(
      expected.map(([p, sp]) => [p, sp]),
    );
  });

  it('reads a line longer than 1023 bytes as PostgreSQL does: the rest as a line of its own', () => {
    const first = '1\t0/A0\t';
    const padding = 'a'.repeat(1023 - first.length);
    // fgets(1024) stops after 1023 bytes; what follows is scanned like any line.
    const h = parseTimelineHistory(`${first}${padding}2\t0/B0\tcontinued\n`, 3);
    expect(h.entries.map((e) => [e.parent, e.switchpoint, e.reason])).toEqual([
      [1, 0xa0n, padding],
      [2, 0xb0n, 'continued'],
    ]);
    expect(() => parseTimelineHistory(`${first}${padding}more reason\n`, 3)).toThrow(
      "line 1: syntax error in 'more reason': expected a numeric timeline ID",
    );
    // Exactly 1023 bytes before the newline: the newline alone is the second read, a blank line.
    expect(parseTimelineHistory(`${first}${padding}\n2\t0/B0\tx\n`, 3).entries).toHaveLength(2);
    // Bytes count, not characters: 508 two-byte characters fill the 1023 bytes.
    const wide = 'é'.repeat((1023 - first.length) / 2);
    expect(() => parseTimelineHistory(`${first}${wide}x2\t0/B0\tx\n`, 3)).toThrow("line 1: syntax error in 'x2\t0/B0\tx'");
  });

  it('rejects any entry in the history of timeline 1', () => {
    expect(() => parseTimelineHistory(TLI2_FILE, 1)).toThrow("ancestor timeline 1 is not less than the file's own timeline 1");
  });

  it('rejects an invalid own timeline', () => {
    expect(() => parseTimelineHistory(TLI2_FILE, 0)).toThrow(InvalidTimelineError);
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
    expect(() => timelineSwitchPoint(h3, 4)).toThrow("unable to find timeline '4' in the history of timeline 3: it is not an ancestor");
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

// The history PostgreSQL writes for timeline 3 after a recovery along timeline 2 stopped at a
// restore point (0/3018C48) that lies before timeline 2's fork (0/3018CB0), in the same segment.
const NON_INCREASING = '1\t0/3018CB0\tafter LSN 0/3018C80\n\n2\t0/3018C48\tat restore point "rp"\n';

describe('histories whose switch points do not increase', () => {
  const h = parseTimelineHistory(NON_INCREASING, 3);

  // tliOfPointInHistory walks [3: 0/3018C48..], [2: 0/3018CB0..0/3018C48), [1: ..0/3018CB0) and
  // answers the first range holding the LSN: timeline 2's range is empty, 3 begins at 0/3018C48.
  it.each([
    ['0/0', 1],
    ['0/3000000', 1],
    ['0/3018C47', 1],
    ['0/3018C48', 3],
    ['0/3018C49', 3],
    ['0/3018C80', 3],
    ['0/3018CAF', 3],
    ['0/3018CB0', 3],
    ['0/3018CB1', 3],
    ['0/3100000', 3],
    ['FFFFFFFF/FFFFFFFF', 3],
  ])('%s is on timeline %i, as PostgreSQL answers', (position, tli) => {
    expect(timelineOfLsn(h, L(position))).toBe(tli);
  });

  it('tliSwitchPoint still answers each entry as written', () => {
    expect(timelineSwitchPoint(h, 1)).toBe(0x3018cb0n);
    expect(timelineSwitchPoint(h, 2)).toBe(0x3018c48n);
    expect(timelineSwitchPoint(h, 3)).toBeNull();
  });

  it('spans: timeline 2 holds nothing, the rest stay contiguous', () => {
    expect(timelineSpans(h)).toEqual([
      { timeline: 1, begin: 0n, end: 0x3018c48n },
      { timeline: 2, begin: 0x3018c48n, end: 0x3018c48n },
      { timeline: 3, begin: 0x3018c48n, end: null },
    ]);
    expect(historyIncludes(h, 2)).toBe(true);
  });

  it('segments: 3 is read from timeline 3, which holds timeline 1 WAL before 0/3018C48', () => {
    const seg = 16 * MB;
    expect(timelinesForSegment(h, 2n, seg)).toEqual([1]);
    expect(timelinesForSegment(h, 3n, seg)).toEqual([3, 1]);
    expect(timelinesForSegment(h, 4n, seg)).toEqual([3]);
    expect(timelineOfSegment(h, 2n, seg)).toBe(1);
    expect(timelineOfSegment(h, 3n, seg)).toBe(3);
    // 1MB segments: both switch points are in segment 0x30.
    expect(timelinesForSegment(h, 0x30n, MB)).toEqual([3, 1]);
    expect(timelinesForSegment(h, 0x2fn, MB)).toEqual([1]);
  });

  it('round-trips byte for byte', () => {
    expect(formatTimelineHistory(h)).toBe(NON_INCREASING);
  });

  it('a later, smaller switch point hides several older ranges', () => {
    // [5: 0/900..], [4: 0/100..0/900), [3: 0/200..0/100), [2: 0/1000..0/200), [1: ..0/1000)
    const h5 = parseTimelineHistory('1\t0/1000\ta\n2\t0/200\tb\n3\t0/100\tc\n4\t0/900\td\n', 5);
    const answers: Array<[string, number]> = [
      ['0/0', 1],
      ['0/FF', 1],
      ['0/100', 4],
      ['0/1FF', 4],
      ['0/200', 4],
      ['0/8FF', 4],
      ['0/900', 5],
      ['0/FFF', 5],
      ['0/1000', 5],
    ];
    for (const [position, tli] of answers) expect(timelineOfLsn(h5, L(position)), position).toBe(tli);
    expect(timelineSpans(h5).map((s) => [s.timeline, s.begin, s.end])).toEqual([
      [1, 0n, 0x100n],
      [2, 0x100n, 0x100n],
      [3, 0x100n, 0x100n],
      [4, 0x100n, 0x900n],
      [5, 0x900n, null],
    ]);
    expect(timelineSwitchPoint(h5, 2)).toBe(0x200n);
  });

  it('a switch point of 0/0 (InvalidXLogRecPtr) opens the next range from 0/0', () => {
    // PostgreSQL reads begin = 0/0 and end = 0/0 as "unbounded".
    const h4 = parseTimelineHistory('1\t0/5000000\ta\n2\t0/0\tb\n3\t0/7000000\tc\n', 4);
    expect(timelineOfLsn(h4, L('0/0'))).toBe(3);
    expect(timelineOfLsn(h4, L('0/5000000'))).toBe(3);
    expect(timelineOfLsn(h4, L('0/6FFFFFF'))).toBe(3);
    expect(timelineOfLsn(h4, L('0/7000000'))).toBe(4);
    const tip = parseTimelineHistory('1\t0/5000000\ta\n2\t0/0\tb\n', 3);
    expect(timelineOfLsn(tip, L('0/0'))).toBe(3);
    expect(timelineOfLsn(tip, L('0/4FFFFFF'))).toBe(3);
    expect(timelineOfLsn(parseTimelineHistory('1\t0/0\tx\n', 2), L('0/0'))).toBe(2);
  });
});

/**
 * A line-for-line transliteration of PostgreSQL's readTimeLineHistory list (newest first, begin =
 * previous switch point, 0 = InvalidXLogRecPtr) and tliOfPointInHistory, written independently of
 * the code under test, to compare against on many small histories.
 */
function postgresTliOfPoint(entries: ReadonlyArray<[number, bigint]>, target: number, ptr: bigint): number {
  const list: Array<{ tli: number; begin: bigint; end: bigint }> = [];
  let prevend = 0n;
  for (const [tli, sp] of entries) {
    list.unshift({ tli, begin: prevend, end: sp });
    prevend = sp;
  }
  list.unshift({ tli: target, begin: prevend, end: 0n });
  for (const tle of list) {
    if ((tle.begin === 0n || tle.begin <= ptr) && (tle.end === 0n || ptr < tle.end)) return tle.tli;
  }
  throw new Error('timeline history was not contiguous');
}

describe('timelineOfLsn against a transliteration of tliOfPointInHistory', () => {
  // Every history of up to 3 ancestors with switch points from {0, 0x10, 0x20, 0x30}, every LSN
  // from 0 to 0x40: 4 + 16 + 64 + 256 histories x 65 LSNs, small enough to run everywhere.
  const points = [0n, 0x10n, 0x20n, 0x30n];
  const histories: bigint[][] = [[]];
  for (let n = 1; n <= 3; n++) {
    for (const prefix of histories.filter((x) => x.length === n - 1)) for (const p of points) histories.push([...prefix, p]);
  }
  it('agrees everywhere', () => {
    let compared = 0;
    for (const sps of histories) {
      const entries = sps.map((sp, i): [number, bigint] => [i + 1, sp]);
      const target = entries.length + 1;
      const h = makeTimelineHistory(
        target,
        entries.map(([parent, sp]) => ({ parent: timeline(parent), switchpoint: sp as Lsn, reason: '' })),
      );
      for (let ptr = 0n; ptr <= 0x40n; ptr++) {
        expect(timelineOfLsn(h, ptr as Lsn), `${JSON.stringify(sps.map(String))} at ${String(ptr)}`).toBe(
          postgresTliOfPoint(entries, target, ptr),
        );
        compared++;
      }
      // Spans partition the LSNs in order, each holding exactly what tliOfPointInHistory says.
      const spans = timelineSpans(h);
      spans.forEach((s, i) => {
        if (i > 0) expect(s.begin).toBe(spans[i - 1]!.end);
      });
    }
    expect(compared).toBe(histories.length * 65);
  });
});

describe('timelineAfterEnd: where a stream goes when the server ends a historic timeline', () => {
  it('is the next timeline from the switch point in an ordinary history', () => {
    const h3 = parseTimelineHistory(TLI3_FILE, 3);
    expect(timelineAfterEnd(h3, L('0/1B19090'))).toEqual({ timeline: 2, begin: 0x1b19090n, end: 0x1d17b58n });
    expect(timelineAfterEnd(h3, L('0/1D17B58'))).toEqual({ timeline: 3, begin: 0x1d17b58n, end: null });
  });

  it('skips a timeline that holds nothing and starts where the holder begins', () => {
    // The server ends timeline 1 at its tliSwitchPoint 0/3018CB0 and names timeline 2, whose
    // tliSwitchPoint 0/3018C48 is before that: timeline 3 holds 0/3018CB0, from 0/3018C48 on.
    const h = parseTimelineHistory(NON_INCREASING, 3);
    expect(timelineAfterEnd(h, L('0/3018CB0'))).toEqual({ timeline: 3, begin: 0x3018c48n, end: null });
    // Across a segment boundary: 3 begins in the segment before the one where 1 ended.
    const cross = parseTimelineHistory('1\t0/4000100\tx\n\n2\t0/3FFFF00\ty\n', 3);
    expect(timelineAfterEnd(cross, L('0/4000100'))).toEqual({ timeline: 3, begin: 0x3ffff00n, end: null });
  });
});

describe('timelineToStreamFrom: the timeline a stream starts a segment on', () => {
  it('is the holder of the segment start in an ordinary history', () => {
    const h3 = parseTimelineHistory(TLI3_FILE, 3);
    expect(timelineToStreamFrom(h3, L('0/1B00000'), MB)).toBe(1);
    expect(timelineToStreamFrom(h3, L('0/1C00000'), MB)).toBe(2);
    expect(timelineToStreamFrom(h3, L('0/1D00000'), MB)).toBe(2);
    expect(timelineToStreamFrom(h3, L('0/1E00000'), MB)).toBe(3);
  });

  it('avoids an ancestor the server cannot stream to its tliSwitchPoint', () => {
    // Timeline 1 holds 0/3000000 along 3's history, but a walsender would stream it to 0/3018CB0
    // and read that segment from timeline 2's file; timeline 3's file holds 1's WAL up to 0/3018C48.
    const h = parseTimelineHistory(NON_INCREASING, 3);
    expect(timelineOfLsn(h, L('0/3000000'))).toBe(1);
    expect(timelineToStreamFrom(h, L('0/3000000'), 16 * MB)).toBe(3);
    expect(timelineToStreamFrom(h, L('0/3000000'), MB)).toBe(3); // 1MB: segment 0x30 holds both points
    expect(timelineToStreamFrom(h, L('0/2F00000'), MB)).toBe(1);
    expect(timelineToStreamFrom(h, L('0/2000000'), 16 * MB)).toBe(1);
    expect(timelineToStreamFrom(h, L('0/4000000'), 16 * MB)).toBe(3);
  });
});
