import { describe, expect, it } from 'vitest';
import { InvalidKeyError } from '../../../src/common/errors.js';
import { compareKeys, isValidKey, validateKey, validatePrefix } from '../../../src/storage/key.js';

describe('storage keys', () => {
  it.each([
    'archive.info',
    'wal/00000001/0000000100000000/000000010000000000000001-0123abcd.zst',
    'history/00000002.history-ff.raw',
    'a',
    'a.b/c..d/e-f_g~h',
    'é/日本/😀',
    'x'.repeat(255),
    `${'a'.repeat(255)}/${'b'.repeat(255)}/${'c'.repeat(255)}/${'d'.repeat(255)}`,
  ])('accepts %s', (key) => {
    expect(validateKey(key)).toBe(key);
    expect(isValidKey(key)).toBe(true);
  });

  it.each([
    ['', 'empty key'],
    ['/etc/passwd', 'absolute key'],
    ['a//b', 'empty path segment'],
    ['a/', 'empty path segment'],
    ['..', "'..' segment"],
    ['../x', "'..' segment"],
    ['a/../../b', "'..' segment"],
    ['.', "'.' segment"],
    ['a/./b', "'.' segment"],
    ['.hidden', 'segment starts with a dot'],
    ['a/.seg.1234.tmp', 'segment starts with a dot'],
    ['a\\b', 'backslash, control character or lone surrogate in key'],
    ['a\0b', 'backslash, control character or lone surrogate in key'],
    ['a\nb', 'backslash, control character or lone surrogate in key'],
    ['a\x7fb', 'backslash, control character or lone surrogate in key'],
    ['a\ud800b', 'backslash, control character or lone surrogate in key'],
    ['x'.repeat(256), 'segment longer than 255 bytes'],
    ['é'.repeat(128), 'segment longer than 255 bytes'],
    [`${'a'.repeat(200)}/`.repeat(5) + 'z'.repeat(30), 'longer than 1024 bytes'],
  ])('rejects %j (%s)', (key, reason) => {
    expect(isValidKey(key)).toBe(false);
    expect(() => validateKey(key)).toThrow(InvalidKeyError);
    expect(() => validateKey(key)).toThrow(`: ${reason}`);
  });

  it('prints unprintable keys escaped in the message', () => {
    expect(() => validateKey('a\0b')).toThrow("unable to use storage key 'a\\u0000b': backslash");
  });

  it.each(['', 'wal/', 'wal/0000', 'wal/00000001/', 'a', 'a.b', 'é'])('accepts prefix %j', (prefix) => {
    expect(validatePrefix(prefix)).toBe(prefix);
  });

  it.each(['/', '/a', 'a//', 'a//b', '../', 'a/../', './', '.', '.x', 'a/.', 'a\\', 'a\0'])('rejects prefix %j', (prefix) => {
    expect(() => validatePrefix(prefix)).toThrow(InvalidKeyError);
  });

  it('orders by UTF-8 bytes', () => {
    // Hand-sorted: '-' 2d < '.' 2e < '/' 2f < '0' 30 < 'A' 41 < 'a' 61 < é c3a9 < ﬀ efac80 < 😀 f09f9880.
    const sorted = ['a-', 'a.', 'a/', 'a0', 'aA', 'aa', 'aé', 'aﬀ', 'a😀'];
    const shuffled = ['a😀', 'aﬀ', 'a/', 'aa', 'a-', 'aé', 'aA', 'a0', 'a.'];
    expect([...shuffled].sort(compareKeys)).toEqual(sorted);
    expect(compareKeys('a', 'a')).toBe(0);
    expect(compareKeys('a', 'ab')).toBeLessThan(0);
  });
});
