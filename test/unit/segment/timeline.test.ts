import { describe, expect, it } from 'vitest';
import { InvalidTimelineError } from '../../../src/common/errors.js';
import { formatTimelineHex, isTimeline, MAX_TIMELINE, timeline } from '../../../src/segment/timeline.js';

describe('timeline', () => {
  it.each<[number | bigint, number, string]>([
    [1, 1, '00000001'],
    [2n, 2, '00000002'],
    [0x1a, 26, '0000001A'],
    [0xffffffff, 4294967295, 'FFFFFFFF'],
    [4294967295n, 4294967295, 'FFFFFFFF'],
  ])('%s', (input, value, hex) => {
    expect(timeline(input)).toBe(value);
    expect(formatTimelineHex(timeline(input))).toBe(hex);
    expect(isTimeline(value)).toBe(true);
  });

  it.each<[number | bigint]>([[0], [0n], [-1], [-1n], [4294967296], [4294967296n], [1.5], [Number.NaN]])('rejects %s', (input) => {
    expect(() => timeline(input)).toThrow(InvalidTimelineError);
  });

  it('explains', () => {
    expect(() => timeline(0)).toThrow("unable to use timeline '0': timeline IDs are integers from 1 to 4294967295");
    expect(MAX_TIMELINE).toBe(4294967295);
    expect(isTimeline('1')).toBe(false);
  });
});
