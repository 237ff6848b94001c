import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../../src/common/errors.js';
import { parseTimelineHistory, type TimelineHistory } from '../../../../src/segment/history.js';
import {
  describeBefore,
  neededHistories,
  parseBefore,
  planRetention,
  type RetentionObject,
} from '../../../../src/archive/catalog/retention.js';

const MIB = 1024 * 1024;
const NOW = new Date('2024-05-10T12:00:00Z');
const hex8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');

function obj(tli: number, segno: number, kind: RetentionObject['kind'] = 'segment', minutes = segno): RetentionObject {
  const base = `${hex8(tli)}00000000${hex8(segno)}`;
  const fileName = kind === 'partial' ? `${base}.partial` : kind === 'backup' ? `${base}.00000028.backup` : base;
  return {
    fileName,
    kind,
    timeline: tli,
    segno: BigInt(segno),
    storedBytes: 10,
    key: `wal/${hex8(tli)}/${base.slice(0, 16)}/${fileName}-x`,
    mtime: new Date(Date.UTC(2024, 4, 1, 0, minutes)),
  };
}
function history(tli: number): RetentionObject {
  return {
    fileName: `${hex8(tli)}.history`,
    kind: 'history',
    timeline: tli,
    storedBytes: 40,
    key: `history/${hex8(tli)}.history-x`,
    mtime: new Date(0),
  };
}
const range = (tli: number, a: number, b: number): RetentionObject[] => Array.from({ length: b - a + 1 }, (_, i) => obj(tli, a + i));
const names = (list: readonly RetentionObject[]): string[] => list.map((o) => o.fileName);
function hists(entries: Record<number, string>): Map<number, TimelineHistory> {
  return new Map(Object.entries(entries).map(([t, text]) => [Number(t), parseTimelineHistory(text, Number(t))]));
}

describe('parseBefore', () => {
  it.each([
    ['000000020000000000000017', { kind: 'segment', name: '000000020000000000000017', segno: 0x17n }],
    ['0/17FFFFF', { kind: 'lsn', lsn: 0x17fffffn }],
    ['7d', { kind: 'time', time: new Date('2024-05-03T12:00:00Z') }],
    ['36h', { kind: 'time', time: new Date('2024-05-09T00:00:00Z') }],
    ['90min', { kind: 'time', time: new Date('2024-05-10T10:30:00Z') }],
    ['2024-05-01', { kind: 'time', time: new Date('2024-05-01T00:00:00Z') }],
    ['2024-05-01T03:00:00Z', { kind: 'time', time: new Date('2024-05-01T03:00:00Z') }],
    ['2024-05-01 03:00+02:00', { kind: 'time', time: new Date('2024-05-01T01:00:00Z') }],
  ])('%s', (text, expected) => expect(parseBefore(text, MIB, NOW)).toEqual(expected));

  it.each([
    ['2024-05-01T03:00', /needs a zone/],
    ['yesterday', /expected a segment name, an LSN/],
    ['2024-13-45', /not a valid date/],
    ['0/XYZ', /unable to parse LSN/],
  ])('refuses %s', (text, why) => {
    expect(() => parseBefore(text, MIB, NOW)).toThrow(why);
    expect(() => parseBefore(text, MIB, NOW)).toThrow(UsageError);
  });

  it('describes the cut', () => {
    expect(describeBefore(parseBefore('0/3000000', MIB, NOW))).toBe('before LSN 0/3000000');
  });
});

describe('planRetention', () => {
  // Timeline 1: segments 0x14..0x1A, a backup label at 0x16 and the .partial at 0x1B; timeline 2 from 0x1B.
  const h = hists({ 2: '1\t0/1B19090\tx\n' });
  const archive = [...range(1, 0x14, 0x1a), obj(1, 0x16, 'backup'), obj(1, 0x1b, 'partial'), ...range(2, 0x1b, 0x1d), history(2)];

  it('deletes every WAL file before the cut, oldest first, and keeps the rest', () => {
    const plan = planRetention(archive, h, parseBefore('0/1600000', MIB, NOW), MIB);
    expect(plan.cutoff).toBe(0x16n);
    expect(names(plan.delete)).toEqual(['000000010000000000000014', '000000010000000000000015']);
    expect(plan.kept).toEqual([]);
  });

  it('refuses to delete WAL that the newest base backup needs, unless forced', () => {
    expect(() => planRetention(archive, h, parseBefore('0/1800000', MIB, NOW), MIB)).toThrow(
      /the newest base backup \(000000010000000000000016\.00000028\.backup\) needs WAL from 000000010000000000000016 on/,
    );
    const plan = planRetention(archive, h, parseBefore('0/1800000', MIB, NOW), MIB, { force: true });
    expect(names(plan.delete)).toEqual([
      '000000010000000000000014',
      '000000010000000000000015',
      '000000010000000000000016',
      '000000010000000000000016.00000028.backup',
      '000000010000000000000017',
    ]);
  });

  it('never deletes the newest segment of the newest timeline, nor the history file it needs', () => {
    const plan = planRetention(archive, h, parseBefore('000000020000000000000FFF', MIB, NOW), MIB, { force: true });
    expect(names(plan.delete)).not.toContain('00000002000000000000001D');
    expect(names(plan.delete)).not.toContain('00000002.history');
    expect(plan.delete).toHaveLength(archive.length - 2);
    expect(names(plan.delete).slice(-3)).toEqual([
      '00000001000000000000001B.partial',
      '00000002000000000000001B',
      '00000002000000000000001C',
    ]);
    expect(plan.kept).toEqual([{ fileName: '00000002000000000000001D', reason: 'the newest segment of the newest timeline' }]);
  });

  it('turns a time into a cut at the oldest segment uploaded since, so an early upload cannot leave a hole', () => {
    // 0x19 was uploaded early (minute 10, before 0x18 at minute 24): by time alone it would go and leave a hole.
    const skewed = archive.map((o) => (o.fileName === '000000010000000000000019' ? obj(1, 0x19, 'segment', 10) : o));
    const plan = planRetention(skewed, h, parseBefore('2024-05-01T00:23:30Z', MIB, NOW), MIB, { force: true });
    expect(plan.cutoff).toBe(0x18n);
    expect(names(plan.delete)).toEqual([
      '000000010000000000000014',
      '000000010000000000000015',
      '000000010000000000000016',
      '000000010000000000000016.00000028.backup',
      '000000010000000000000017',
    ]);
  });

  it('restricts itself to one timeline', () => {
    const plan = planRetention(archive, h, parseBefore('0/1C00000', MIB, NOW), MIB, { timeline: 2, force: true });
    expect(names(plan.delete)).toEqual(['00000002000000000000001B']);
  });

  it('deletes the history file of a dead branch once its WAL is gone, and keeps what probing needs', () => {
    // 1 -> 2 at segment 5 (abandoned), 1 -> 3 at segment 8.
    const branchy = hists({ 2: '1\t0/500000\tx\n', 3: '1\t0/800000\tx\n' });
    const objs = [...range(1, 1, 10), ...range(2, 5, 6), ...range(3, 8, 12), history(2), history(3)];
    const early = planRetention(objs, branchy, parseBefore('0/900000', MIB, NOW), MIB);
    expect(names(early.delete).filter((n) => n.endsWith('.history'))).toEqual([]);
    const late = planRetention(objs, branchy, parseBefore('0/B00000', MIB, NOW), MIB);
    expect(names(late.delete).slice(-1)).toEqual(['00000002.history']);
    expect(late.delete.filter((o) => o.timeline === 1)).toHaveLength(10);
  });

  it('deletes the history files of several dead branches in timeline order, whatever the listing order', () => {
    // 1 -> 2 at segment 4 and 1 -> 3 at segment 5 (both abandoned), 1 -> 4 at segment 8.
    const branchy = hists({ 2: '1\t0/400000\tx\n', 3: '1\t0/500000\tx\n', 4: '1\t0/800000\tx\n' });
    const objs = [...range(1, 1, 10), ...range(2, 4, 5), ...range(3, 5, 6), ...range(4, 8, 12), history(4), history(3), history(2)];
    const plan = planRetention(objs, branchy, parseBefore('0/B00000', MIB, NOW), MIB);
    expect(names(plan.delete).filter((n) => n.endsWith('.history'))).toEqual(['00000002.history', '00000003.history']);
  });

  it('a time after every upload cuts after the newest segment, which still stays', () => {
    const objs = range(1, 1, 5);
    const plan = planRetention(objs, new Map(), parseBefore('2024-05-02T00:00:00Z', MIB, NOW), MIB, { force: true });
    expect(plan.cutoff).toBe(6n);
    expect(names(plan.delete)).toEqual(names(range(1, 1, 4)));
    expect(plan.kept.map((k) => k.fileName)).toEqual(['000000010000000000000005']);
  });

  it('keeps every history file when the ancestry of what remains is unknown', () => {
    const objs = [...range(1, 1, 4), ...range(3, 5, 6), history(2)];
    const plan = planRetention(objs, hists({ 2: '1\t0/500000\tx\n' }), parseBefore('0/600000', MIB, NOW), MIB);
    expect(names(plan.delete)).toEqual(
      range(1, 1, 4)
        .map((o) => o.fileName)
        .concat('000000030000000000000005'),
    );
    expect(plan.kept.map((k) => k.fileName)).toEqual(['00000002.history']);
  });

  it('deletes nothing for a cut before the archive', () => {
    const plan = planRetention(archive, h, parseBefore('0/100000', MIB, NOW), MIB);
    expect(plan.delete).toEqual([]);
  });
});

describe('neededHistories', () => {
  it('keeps ancestors of remaining timelines and everything a latest-probe walks', () => {
    const h = hists({ 2: '1\t0/500000\tx\n', 3: '1\t0/800000\tx\n', 4: '1\t0/800000\tx\n\n3\t0/900000\tx\n' });
    const needed = neededHistories([obj(4, 12)], h, [1, 2, 3, 4]);
    expect([...needed.keys()].sort()).toEqual([1, 3, 4]);
    expect(needed.get(3)).toBe('an ancestor of timeline 4, which still has WAL');
  });
});
