import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/common/errors.js';
import {
  assertSegSize,
  DEFAULT_SEG_SIZE,
  formatSegSize,
  isValidSegSize,
  LEGAL_SEG_SIZES,
  MAX_SEG_SIZE,
  MIN_SEG_SIZE,
  parseSegSizeSetting,
  segmentsPerXLogId,
} from '../../../src/segment/segsize.js';

// [bytes, SHOW text, segments per xlog id]: 2^32 / size, by hand.
const SIZES: [number, string, number][] = [
  [1048576, '1MB', 4096],
  [2097152, '2MB', 2048],
  [4194304, '4MB', 1024],
  [8388608, '8MB', 512],
  [16777216, '16MB', 256],
  [33554432, '32MB', 128],
  [67108864, '64MB', 64],
  [134217728, '128MB', 32],
  [268435456, '256MB', 16],
  [536870912, '512MB', 8],
  [1073741824, '1GB', 4],
];

describe('segment sizes', () => {
  it('lists exactly the sizes initdb accepts', () => {
    expect(LEGAL_SEG_SIZES).toEqual(SIZES.map(([b]) => b));
    expect(MIN_SEG_SIZE).toBe(1048576);
    expect(MAX_SEG_SIZE).toBe(1073741824);
    expect(DEFAULT_SEG_SIZE).toBe(16777216);
    expect(Object.isFrozen(LEGAL_SEG_SIZES)).toBe(true);
  });

  it.each(SIZES)('%i bytes is legal, shows as %s, %i segments per xlog id', (bytes, text, perId) => {
    expect(isValidSegSize(bytes)).toBe(true);
    expect(assertSegSize(bytes)).toBe(bytes);
    expect(formatSegSize(bytes)).toBe(text);
    expect(parseSegSizeSetting(text)).toBe(bytes);
    expect(parseSegSizeSetting(String(bytes))).toBe(bytes);
    expect(segmentsPerXLogId(bytes)).toBe(perId);
  });

  it.each([0, -16777216, 524288, 2147483648, 3 * 1048576, 16777215, 16777217, 16777216.5, Number.NaN, Infinity])('rejects %d', (bytes) => {
    expect(isValidSegSize(bytes)).toBe(false);
    expect(() => assertSegSize(bytes)).toThrow(UsageError);
    expect(() => segmentsPerXLogId(bytes)).toThrow(UsageError);
    expect(() => formatSegSize(bytes)).toThrow(UsageError);
  });

  it('explains a bad size', () => {
    expect(() => assertSegSize(3000000)).toThrow("unable to use WAL segment size '3000000': must be a power of two from 1MB to 1GB");
  });
});

describe('parseSegSizeSetting', () => {
  it.each<[string, number]>([
    ['16MB', 16777216],
    ['1GB', 1073741824],
    ['1024kB', 1048576],
    ['16384kB', 16777216],
    ['16777216', 16777216],
    ['16777216B', 16777216],
    ['16 MB', 16777216],
    ['  64MB\n', 67108864],
    ['0001MB', 1048576],
  ])('%j is %i bytes', (text, bytes) => {
    expect(parseSegSizeSetting(text)).toBe(bytes);
  });

  it.each(['', 'MB', '16', '16mb', '16Mb', '16KB', '16 M', '16MiB', '-16MB', '1.5GB', '16MB16', '0x10MB', '2GB', '512kB', '1TB'])(
    'rejects %j',
    (text) => {
      expect(() => parseSegSizeSetting(text)).toThrow(UsageError);
    },
  );

  it('tells a syntax error from an illegal size', () => {
    expect(() => parseSegSizeSetting('16XB')).toThrow(
      "unable to parse WAL segment size '16XB': expected a number with an optional unit B, kB, MB, GB or TB, like 16MB",
    );
    expect(() => parseSegSizeSetting('2GB')).toThrow(
      "unable to parse WAL segment size '2GB': 2147483648 bytes is not a power of two from 1MB to 1GB",
    );
  });
});
