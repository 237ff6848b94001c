/** The catalog codec: format 1 still reads; format 2's references, chunk checksums and INCREMENTAL flag are checked. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CHUNK_BYTES,
  decodeCatalog,
  encodeCatalog,
  extentOwner,
  extentRef,
  packRef,
  type Catalog,
  type CatalogEntry,
} from '../../../src/backup/catalog.js';
import { IntegrityError } from '../../../src/common/errors.js';

const NAME = '20261202T050000I';
const PARENT = '20261201T050000F';
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

const file = (path: string, extents: CatalogEntry['extents'], size: number, extra: Partial<CatalogEntry> = {}): CatalogEntry => ({
  type: 'file',
  tablespace: null,
  path,
  mode: 0o600,
  mtime: 1_700_000_000,
  size,
  sha256: sha(path),
  target: null,
  extents,
  ...extra,
});

const packs = [{ sha256: sha('pack1'), size: 4096 }];

function roundTrip(catalog: Catalog): Catalog {
  return decodeCatalog(encodeCatalog(NAME, catalog), 'backups/x/catalog', NAME);
}

function lines(catalog: Catalog): string[] {
  return encodeCatalog(NAME, catalog).toString('utf8').trimEnd().split('\n');
}

function decodeLines(text: string[]): Catalog {
  return decodeCatalog(Buffer.from(`${text.join('\n')}\n`), 'backups/x/catalog', NAME);
}

describe('backup catalog, format 2', () => {
  it('round-trips references to an earlier backup, chunk checksums and INCREMENTAL files', () => {
    const size = CHUNK_BYTES + 10;
    const catalog: Catalog = {
      packs,
      depends: [PARENT],
      entries: [
        file(
          'base/5/16384',
          [
            [3, 0, CHUNK_BYTES, PARENT],
            [1, 0, 10],
          ],
          size,
          { chunks: [sha('a'), sha('b')] },
        ),
        file('base/5/INCREMENTAL.16385', [[1, 10, 100]], 100, { incremental: true }),
      ],
    };
    const back = roundTrip(catalog);
    expect(back.depends).toEqual([PARENT]);
    expect(back.entries).toEqual(catalog.entries);
    expect(extentOwner(NAME, back.entries[0]!.extents[0]!)).toBe(PARENT);
    expect(extentOwner(NAME, back.entries[0]!.extents[1]!)).toBe(NAME);
  });

  it('still reads format 1 (no depends, plain extents)', () => {
    const text = lines({ packs, entries: [file('PG_VERSION', [[1, 0, 3]], 3)] });
    const header = JSON.parse(text[0]!) as Record<string, unknown>;
    text[0] = JSON.stringify({ catalog: 1, backup: NAME, entries: 1, packs });
    expect(header['catalog']).toBe(3);
    expect(decodeLines(text).depends).toEqual([]);
  });

  it('refuses a reference to a backup the header does not list', () => {
    expect(() => roundTrip({ packs, entries: [file('f', [[1, 0, 5, PARENT]], 5)] })).toThrow(/does not list/);
  });

  it('refuses a format 1 catalog that depends on another backup, and a backup depending on itself', () => {
    const text = lines({ packs, entries: [] });
    text[0] = JSON.stringify({ catalog: 1, backup: NAME, entries: 0, packs, depends: [PARENT] });
    expect(() => decodeLines(text)).toThrow(/format 1/);
    text[0] = JSON.stringify({ catalog: 2, backup: NAME, entries: 0, packs, depends: [NAME] });
    expect(() => decodeLines(text)).toThrow(IntegrityError);
  });

  it('refuses chunk lists of the wrong length or content, and flags on the wrong entries', () => {
    const two = CHUNK_BYTES + 1;
    expect(() =>
      roundTrip({ packs: [{ sha256: sha('p'), size: two }], entries: [file('f', [[1, 0, two]], two, { chunks: [sha('a')] })] }),
    ).toThrow(/chunk checksums/);
    expect(() => roundTrip({ packs, entries: [file('f', [[1, 0, 5]], 5, { chunks: ['zz'] })] })).toThrow(/chunk checksums/);
    expect(() => roundTrip({ packs, entries: [file('base/5/16384', [[1, 0, 5]], 5, { incremental: true })] })).toThrow(/incremental flag/);
    const dir: CatalogEntry = { ...file('base', [], 0), type: 'dir', sha256: null, incremental: true };
    expect(() => roundTrip({ packs, entries: [dir] })).toThrow(/no content/);
  });

  it("resolves an extent to its owner's pack and refuses one outside it", () => {
    const parent: Catalog = { packs: [{ sha256: sha('parent-pack'), size: 100 }], entries: [] };
    const own: Catalog = { packs, entries: [] };
    const catalogs = new Map([
      [NAME, own],
      [PARENT, parent],
    ]);
    expect(extentRef(NAME, [1, 0, 100, PARENT], catalogs)).toEqual({
      key: `backups/${PARENT}/packs/000000001`,
      sha256: sha('parent-pack'),
      size: 100,
    });
    expect(extentRef(NAME, [1, 5, 10], catalogs).key).toBe(`backups/${NAME}/packs/000000001`);
    expect(() => extentRef(NAME, [1, 50, 51, PARENT], catalogs)).toThrow(/outside pack 1/);
    expect(() => extentRef(NAME, [2, 0, 1, PARENT], catalogs)).toThrow(IntegrityError);
    expect(() => extentRef(NAME, [1, 0, 1, '20261130T000000F'], catalogs)).toThrow(/not available/);
  });
});

describe('backup catalog, format 3', () => {
  const payloadPacks = [{ sha256: sha('compressed'), size: 4096, digest: 'payload' as const }];

  it("round-trips packs whose checksum covers the compressed payload, and hands the digest to the pack's reference", () => {
    const back = roundTrip({ packs: payloadPacks, entries: [file('PG_VERSION', [[1, 0, 3]], 3)] });
    expect(back.packs).toEqual(payloadPacks);
    expect(packRef(NAME, back, 1)).toEqual({
      key: `backups/${NAME}/packs/000000001`,
      sha256: sha('compressed'),
      size: 4096,
      digest: 'payload',
    });
    expect(packRef(NAME, { packs, entries: [] }, 1)).not.toHaveProperty('digest');
  });

  it('refuses a payload digest in an older format, and a digest it does not know', () => {
    const text = lines({ packs: payloadPacks, entries: [] });
    text[0] = JSON.stringify({ catalog: 2, backup: NAME, entries: 0, packs: payloadPacks, depends: [] });
    expect(() => decodeLines(text)).toThrow(/bad pack digest/);
    text[0] = JSON.stringify({ catalog: 3, backup: NAME, entries: 0, packs: [{ ...payloadPacks[0], digest: 'blake3' }], depends: [] });
    expect(() => decodeLines(text)).toThrow(/bad pack digest/);
  });

  it('is refused by name by a reader that only knows older formats (format 4 here)', () => {
    const text = lines({ packs, entries: [] });
    text[0] = JSON.stringify({ catalog: 4, backup: NAME, entries: 0, packs, depends: [] });
    expect(() => decodeLines(text)).toThrow(/unsupported catalog format 4/);
  });
});
