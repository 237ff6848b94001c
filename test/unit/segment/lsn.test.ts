import { describe, expect, it } from 'vitest';
import { InvalidLsnError } from '../../../src/common/errors.js';
import { addLsn, compareLsn, formatLsn, InvalidLsn, isLsn, lsn, lsnDiff, MAX_LSN, parseLsn, type Lsn } from '../../../src/segment/lsn.js';

describe('parseLsn / formatLsn', () => {
  // [text, value, canonical text]: values worked out by hand from hi * 2^32 + lo.
  const valid: [string, bigint, string][] = [
    ['0/0', 0n, '0/0'],
    ['00000000/00000000', 0n, '0/0'],
    ['0/1', 1n, '0/1'],
    ['16/B374D848', 0x16_b374_d848n, '16/B374D848'],
    ['16/b374d848', 0x16_b374_d848n, '16/B374D848'],
    ['00000016/B374D848', 0x16_b374_d848n, '16/B374D848'],
    ['0/1B19090', 28414096n, '0/1B19090'],
    ['1/0', 4294967296n, '1/0'],
    ['0/FFFFFFFF', 4294967295n, '0/FFFFFFFF'],
    ['FFFFFFFF/FFFFFFFF', 18446744073709551615n, 'FFFFFFFF/FFFFFFFF'],
    ['ffffffff/ffffffff', 18446744073709551615n, 'FFFFFFFF/FFFFFFFF'],
    ['aBc/dEf', 0xabc_0000_0defn, 'ABC/DEF'],
  ];
  it.each(valid)('parses %s', (text, value, canonical) => {
    const parsed = parseLsn(text);
    expect(parsed).toBe(value);
    expect(formatLsn(parsed)).toBe(canonical);
    expect(parseLsn(formatLsn(parsed))).toBe(value);
  });

  const invalid = [
    '',
    '/',
    '0/',
    '/0',
    '0',
    '16B374D848',
    ' 0/0',
    '0/0 ',
    '0 /0',
    '0/ 0',
    '0/0\n',
    '1/2/3',
    '100000000/0', // 2^64: the high half has 9 digits
    '0/100000000',
    '000000016/B374D848', // 9 digits, even though the value would fit
    '-1/0',
    '0/-1',
    '+1/0',
    '0x16/B374D848',
    'G/0',
    '0/0G',
    '１/0', // full-width digit
  ];
  it.each(invalid)('rejects %j', (text) => {
    expect(() => parseLsn(text)).toThrow(InvalidLsnError);
    expect(() => parseLsn(text)).toThrow(`unable to parse LSN '${text}': expected two hexadecimal numbers`);
  });

  it('formats without padding', () => {
    expect(formatLsn(lsn(0x0000_0001_0000_00abn))).toBe('1/AB');
    expect(formatLsn(InvalidLsn)).toBe('0/0');
    expect(formatLsn(MAX_LSN)).toBe('FFFFFFFF/FFFFFFFF');
  });
});

describe('lsn()', () => {
  it('accepts the whole 64-bit range from bigints and safe numbers', () => {
    expect(lsn(0n)).toBe(0n);
    expect(lsn(0)).toBe(0n);
    expect(lsn(2 ** 53 - 1)).toBe(9007199254740991n);
    expect(lsn(18446744073709551615n)).toBe(MAX_LSN);
  });
  it.each<[bigint | number]>([[-1n], [-1], [18446744073709551616n], [2 ** 64], [0.5], [Number.NaN], [2 ** 53]])('rejects %s', (value) => {
    expect(() => lsn(value)).toThrow(InvalidLsnError);
  });
  it('says why', () => {
    expect(() => lsn(-1n)).toThrow("unable to use LSN '-1': outside 0 to 2^64-1");
    expect(() => lsn(1.5)).toThrow("unable to use LSN '1.5': not an integer");
  });
  it('constants', () => {
    expect(InvalidLsn).toBe(0n);
    expect(MAX_LSN).toBe(2n ** 64n - 1n);
  });
  it('isLsn', () => {
    expect(isLsn(0n)).toBe(true);
    expect(isLsn(2n ** 64n - 1n)).toBe(true);
    expect(isLsn(2n ** 64n)).toBe(false);
    expect(isLsn(-1n)).toBe(false);
    expect(isLsn(5)).toBe(false);
    expect(isLsn('0/0')).toBe(false);
  });
});

describe('arithmetic', () => {
  const a = parseLsn('0/1B19090');
  const b = parseLsn('0/1D17B58');
  it('compareLsn', () => {
    expect(compareLsn(a, b)).toBe(-1);
    expect(compareLsn(b, a)).toBe(1);
    expect(compareLsn(a, parseLsn('0/01B19090'))).toBe(0);
    expect(compareLsn(parseLsn('1/0'), parseLsn('0/FFFFFFFF'))).toBe(1);
    expect([b, MAX_LSN, InvalidLsn, a].sort(compareLsn)).toEqual([0n, a, b, MAX_LSN]);
  });
  it('addLsn carries into the high half', () => {
    expect(formatLsn(addLsn(parseLsn('0/FFFFFFFF'), 1))).toBe('1/0');
    expect(formatLsn(addLsn(parseLsn('16/B374D848'), 0x2_0000_0000n))).toBe('18/B374D848');
    expect(formatLsn(addLsn(parseLsn('1/0'), -1))).toBe('0/FFFFFFFF');
    expect(addLsn(MAX_LSN, 0)).toBe(MAX_LSN);
    expect(addLsn(InvalidLsn, 0n)).toBe(0n);
  });
  it('addLsn refuses to leave the 64-bit range', () => {
    expect(() => addLsn(MAX_LSN, 1)).toThrow("unable to add 1 to LSN 'FFFFFFFF/FFFFFFFF': the result is outside 0/0 to FFFFFFFF/FFFFFFFF");
    expect(() => addLsn(InvalidLsn, -1n)).toThrow(InvalidLsnError);
    expect(() => addLsn(InvalidLsn, 0.5)).toThrow("unable to use LSN offset '0.5'");
  });
  it('lsnDiff is a signed bigint', () => {
    expect(lsnDiff(b, a)).toBe(0x1d17b58n - 0x1b19090n);
    expect(lsnDiff(a, b)).toBe(-(0x1d17b58n - 0x1b19090n));
    expect(lsnDiff(MAX_LSN, InvalidLsn)).toBe(18446744073709551615n);
  });
  it('Lsn is a bigint at run time', () => {
    const x: Lsn = parseLsn('0/10');
    expect(typeof x).toBe('bigint');
  });
});
