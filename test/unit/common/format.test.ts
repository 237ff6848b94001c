import { describe, expect, it } from 'vitest';
import { renderFields, renderProgressBar, renderTable } from '../../../src/cli/render/layout.js';
import { formatBytes, formatDuration, formatTime, shortSha } from '../../../src/common/format.js';

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.00 KiB'],
    [1536, '1.50 KiB'],
    [16 * 1024 * 1024, '16.0 MiB'],
    [123_456_789, '118 MiB'],
    [1.5 * 1024 ** 3, '1.50 GiB'],
    [-2048, '-2.00 KiB'],
  ])('%d -> %s', (n, text) => expect(formatBytes(n)).toBe(text));
  it('takes bigints', () => expect(formatBytes(4n * 1024n ** 4n)).toBe('4.00 TiB'));
});

describe('formatDuration', () => {
  it.each([
    [0, '0 s'],
    [42_400, '42 s'],
    [60_000, '1 min'],
    [184_000, '3 min 4 s'],
    [7_500_000, '2 h 5 min'],
    [7_200_000, '2 h'],
    [3 * 86_400_000 + 4 * 3_600_000, '3 d 4 h'],
  ])('%d ms -> %s', (ms, text) => expect(formatDuration(ms)).toBe(text));
});

describe('text layout', () => {
  it('prints times in UTC without milliseconds', () => {
    expect(formatTime(new Date('2024-05-01T03:04:05.678Z'))).toBe('2024-05-01 03:04:05Z');
  });

  it('shortens checksums to 12 digits', () => {
    expect(shortSha('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')).toBe('ba7816bf8f01');
  });

  it('aligns table columns, right-aligning numbers, without trailing blanks', () => {
    const text = renderTable(
      [{ title: 'NAME' }, { title: 'SIZE', align: 'right' }, { title: 'NOTE' }],
      [
        ['a', '1', 'x'],
        ['bbbbbb', '22222', ''],
      ],
    );
    expect(text.split('\n')).toEqual(['NAME     SIZE  NOTE', 'a           1  x', 'bbbbbb  22222']);
  });

  it('aligns field values', () => {
    expect(
      renderFields([
        ['a', '1'],
        ['long key', '2'],
      ]),
    ).toBe('a:        1\nlong key: 2');
  });

  it('draws a progress bar', () => {
    expect(renderProgressBar({ done: 1, total: 4, bytes: 2048, width: 8 })).toBe('[##......]  25%  1/4 objects  2.00 KiB');
    expect(renderProgressBar({ done: 0, total: 0, bytes: 0, width: 4 })).toBe('[####] 100%  0/0 objects  0 B');
  });
});
