import { describe, expect, it } from 'vitest';
import { InvalidNameError } from '../../../src/common/errors.js';
import {
  ENCRYPTED_SUFFIX,
  ERRORS_PREFIX,
  HISTORY_PREFIX,
  IDENTITY_COPY_KEY,
  IDENTITY_KEY,
  WAL_PREFIX,
  directoryFor,
  errorKey,
  lookupPrefix,
  objectKey,
  parseObjectKey,
  timelinePrefix,
  type ObjectKeyParts,
} from '../../../src/archive/keys.js';
import { isValidKey } from '../../../src/storage/key.js';

// SHA-256 of the empty string and of "abc" (FIPS 180-2): fixed hex vectors, not computed here.
const SHA_EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const SHA_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

describe('layout constants', () => {
  it('are the documented names', () => {
    expect(IDENTITY_KEY).toBe('archive.info');
    expect(IDENTITY_COPY_KEY).toBe('archive.info.copy');
    expect(WAL_PREFIX).toBe('wal/');
    expect(HISTORY_PREFIX).toBe('history/');
    expect(ERRORS_PREFIX).toBe('errors/');
    expect(ENCRYPTED_SUFFIX).toBe('.enc');
  });
});

describe('objectKey', () => {
  const table: Array<[ObjectKeyParts, string]> = [
    [
      { fileName: '000000010000000000000007', sha256: SHA_ABC, extension: 'zst', encrypted: false },
      `wal/00000001/0000000100000000/000000010000000000000007-${SHA_ABC}.zst`,
    ],
    [
      { fileName: '000000010000000000000007', sha256: SHA_ABC, extension: 'zst', encrypted: true },
      `wal/00000001/0000000100000000/000000010000000000000007-${SHA_ABC}.zst.enc`,
    ],
    [
      { fileName: '00000001000000000000000B.partial', sha256: SHA_EMPTY, extension: 'lz4', encrypted: false },
      `wal/00000001/0000000100000000/00000001000000000000000B.partial-${SHA_EMPTY}.lz4`,
    ],
    [
      { fileName: '00000001000000000000000A.00000028.backup', sha256: SHA_EMPTY, extension: 'gz', encrypted: true },
      `wal/00000001/0000000100000000/00000001000000000000000A.00000028.backup-${SHA_EMPTY}.gz.enc`,
    ],
    [{ fileName: '00000002.history', sha256: SHA_ABC, extension: 'br', encrypted: false }, `history/00000002.history-${SHA_ABC}.br`],
    [
      { fileName: '0000000A00000012000000FF', sha256: SHA_ABC, extension: 'raw', encrypted: false },
      `wal/0000000A/0000000A00000012/0000000A00000012000000FF-${SHA_ABC}.raw`,
    ],
    [
      { fileName: 'FFFFFFFFFFFFFFFF00000FFF', sha256: SHA_EMPTY, extension: 'raw', encrypted: true },
      `wal/FFFFFFFF/FFFFFFFFFFFFFFFF/FFFFFFFFFFFFFFFF00000FFF-${SHA_EMPTY}.raw.enc`,
    ],
  ];

  it.each(table)('%o -> %s', (parts, key) => {
    expect(objectKey(parts)).toBe(key);
    expect(isValidKey(key)).toBe(true);
  });

  it.each(table)('parseObjectKey inverts objectKey (%o)', (parts, key) => {
    expect(parseObjectKey(key)).toEqual(parts);
    expect(objectKey(parseObjectKey(key)!)).toBe(key);
  });

  it('rejects a sha256 that is not 64 lowercase hex digits', () => {
    const base = { fileName: '000000010000000000000007', extension: 'zst', encrypted: false };
    for (const sha of ['', SHA_ABC.slice(1), `${SHA_ABC}0`, SHA_ABC.toUpperCase(), `${SHA_ABC.slice(0, 63)}g`, `../${SHA_ABC.slice(3)}`]) {
      expect(() => objectKey({ ...base, sha256: sha })).toThrow(InvalidNameError);
      expect(() => errorKey({ ...base, sha256: sha })).toThrow(InvalidNameError);
    }
  });

  it('rejects extensions that are empty, too long, upper case or hold separators', () => {
    const base = { fileName: '000000010000000000000007', sha256: SHA_ABC, encrypted: false };
    for (const ext of ['', 'ZST', 'zst.enc', 'a/b', '.zst', 'abcdefghi', 'z-t']) {
      expect(() => objectKey({ ...base, extension: ext })).toThrow(InvalidNameError);
    }
    expect(objectKey({ ...base, extension: 'abcdefgh' })).toMatch(/\.abcdefgh$/);
  });

  it('refuses file names that are not WAL file names', () => {
    for (const name of ['', 'archive.info', 'backup_label', '0000000100000000000007', 'x00000010000000000000007', '00000001.HISTORY']) {
      expect(() => objectKey({ fileName: name, sha256: SHA_ABC, extension: 'zst', encrypted: false })).toThrow(InvalidNameError);
    }
  });
});

describe('directoryFor', () => {
  it.each([
    ['000000010000000000000007', 'wal/00000001/0000000100000000/'],
    ['000000010000000000000007.partial', 'wal/00000001/0000000100000000/'],
    ['00000001000000000000000A.00000028.backup', 'wal/00000001/0000000100000000/'],
    ['0000000200000003000000FF', 'wal/00000002/0000000200000003/'],
    ['00000002.history', 'history/'],
    ['0000001F.history', 'history/'],
  ])('%s lives in %s', (name, dir) => {
    expect(directoryFor(name)).toBe(dir);
  });

  it('throws InvalidNameError for anything else', () => {
    for (const name of [
      '',
      'foo',
      '00000002.history.partial',
      '2.history',
      'archive.info',
      '000000010000000000000007'.toLowerCase().replace('7', 'a'),
    ]) {
      expect(() => directoryFor(name)).toThrow(InvalidNameError);
    }
  });
});

describe('lookupPrefix', () => {
  const sha = SHA_ABC;
  const keyOf = (fileName: string, encrypted = false, extension = 'zst'): string =>
    objectKey({ fileName, sha256: sha, extension, encrypted });

  // Names that share the most characters with each other in one directory.
  const neighbours = [
    '000000010000000000000007',
    '000000010000000000000007.partial',
    '000000010000000000000007.00000028.backup',
    '000000010000000000000007.00000100.backup',
    '000000010000000000000070',
    '000000010000000000000017',
  ];

  it.each(neighbours)('the prefix of %s matches its own objects and no neighbour', (name) => {
    const prefix = lookupPrefix(name);
    for (const other of neighbours) {
      for (const encrypted of [false, true]) {
        expect(keyOf(other, encrypted).startsWith(prefix), `${prefix} vs ${other}`).toBe(other === name);
      }
    }
  });

  it('matches every codec and encryption of the same file', () => {
    const prefix = lookupPrefix('000000010000000000000007');
    expect(prefix).toBe('wal/00000001/0000000100000000/000000010000000000000007-');
    for (const ext of ['zst', 'lz4', 'gz', 'br', 'raw']) {
      expect(keyOf('000000010000000000000007', false, ext).startsWith(prefix)).toBe(true);
      expect(keyOf('000000010000000000000007', true, ext).startsWith(prefix)).toBe(true);
    }
  });

  it('history: timeline 2 does not match timeline 20 or 2 with a suffix', () => {
    const prefix = lookupPrefix('00000002.history');
    expect(prefix).toBe('history/00000002.history-');
    expect(keyOf('00000002.history').startsWith(prefix)).toBe(true);
    expect(keyOf('00000020.history').startsWith(prefix)).toBe(false);
    expect(keyOf('00000012.history').startsWith(prefix)).toBe(false);
  });

  it('a segment prefix never matches the error copies of the same name', () => {
    const err = errorKey({ fileName: '000000010000000000000007', sha256: sha, extension: 'zst', encrypted: false });
    expect(err.startsWith(lookupPrefix('000000010000000000000007'))).toBe(false);
  });
});

describe('timelinePrefix', () => {
  it.each([
    [1, 'wal/00000001/'],
    [2, 'wal/00000002/'],
    [10, 'wal/0000000A/'],
    [0x1f, 'wal/0000001F/'],
    [0xffffffff, 'wal/FFFFFFFF/'],
  ])('timeline %d -> %s', (tli, prefix) => {
    expect(timelinePrefix(tli)).toBe(prefix);
  });

  it('holds exactly the segments of its timeline (1 vs 0x10, 0x11, 0x100)', () => {
    const names = ['000000010000000000000007', '000000100000000000000007', '000000110000000000000007', '000001000000000000000007'];
    const keys = names.map((fileName) => objectKey({ fileName, sha256: SHA_ABC, extension: 'zst', encrypted: false }));
    expect(keys.filter((k) => k.startsWith(timelinePrefix(1)))).toEqual([keys[0]]);
    expect(keys.filter((k) => k.startsWith(timelinePrefix(0x10)))).toEqual([keys[1]]);
  });
});

describe('errorKey', () => {
  it('puts refused copies under errors/ with the same leaf name', () => {
    expect(errorKey({ fileName: '000000010000000000000007', sha256: SHA_ABC, extension: 'zst', encrypted: true })).toBe(
      `errors/000000010000000000000007-${SHA_ABC}.zst.enc`,
    );
    expect(errorKey({ fileName: '00000002.history', sha256: SHA_EMPTY, extension: 'raw', encrypted: false })).toBe(
      `errors/00000002.history-${SHA_EMPTY}.raw`,
    );
  });

  it('parses back to the same parts', () => {
    const parts = { fileName: '00000001000000000000000B.partial', sha256: SHA_EMPTY, extension: 'br', encrypted: false };
    expect(parseObjectKey(errorKey(parts))).toEqual(parts);
  });
});

describe('parseObjectKey', () => {
  it('returns undefined for keys we did not write', () => {
    for (const key of [
      IDENTITY_KEY,
      IDENTITY_COPY_KEY,
      'wal/',
      'wal/00000001/0000000100000000/000000010000000000000007',
      `wal/00000001/0000000100000000/000000010000000000000007-${SHA_ABC}`,
      `wal/00000001/0000000100000000/000000010000000000000007-${SHA_ABC.toUpperCase()}.zst`,
      `wal/00000001/0000000100000000/000000010000000000000007-${SHA_ABC.slice(1)}.zst`,
      `wal/00000001/0000000100000000/000000010000000000000007_${SHA_ABC}.zst`,
      `wal/00000001/0000000100000000/000000010000000000000007-${SHA_ABC}.zst.enc.tmp`,
      `wal/00000001/0000000100000000/000000010000000000000007-${SHA_ABC}.abcdefghi`,
      `wal/00000001/0000000100000000/-${SHA_ABC}.zst`,
    ]) {
      expect(parseObjectKey(key), key).toBeUndefined();
    }
  });

  it('only looks at the last path component', () => {
    expect(parseObjectKey(`anything/at/all/000000010000000000000007-${SHA_ABC}.gz`)).toEqual({
      fileName: '000000010000000000000007',
      sha256: SHA_ABC,
      extension: 'gz',
      encrypted: false,
    });
  });
});
