import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listCatalog, lastArchivedSegment, type CatalogEntry } from '../../../../src/archive/catalog/listing.js';
import { objectKey } from '../../../../src/archive/keys.js';
import { pushFile } from '../../../../src/archive/push.js';
import { MemoryStorage } from '../../../../src/storage/memory.js';
import type { Storage } from '../../../../src/storage/types.js';
import { fixtureManifest } from '../../../support/fixtures.js';
import { DRIVERS, makeCtx, manifestSha, newStorage, removeTempDirs, tempDir, testKey, writeFixture } from '../support.js';

afterAll(removeTempDirs);

const MAJOR = 15;
const MIB = 1024 * 1024;
const SHA = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

async function collect(storage: Storage, segSize: number, opts: { timeline?: number } = {}): Promise<CatalogEntry[]> {
  const out: CatalogEntry[] = [];
  for await (const e of listCatalog(storage, segSize, opts)) out.push(e);
  return out;
}

/** An object that only needs a key: the catalog reads listings, never contents. */
async function putKeyOnly(storage: Storage, fileName: string, sha = SHA): Promise<void> {
  await storage.put(objectKey({ fileName, sha256: sha, extension: 'zst', encrypted: false }), Buffer.from('x'));
}

describe.each(DRIVERS)('over the pushed PostgreSQL 15 fixtures (%s storage)', (driver) => {
  let storage: Storage;
  const stored = new Map<string, number>();

  beforeAll(async () => {
    storage = await newStorage(driver);
    const ctx = makeCtx(storage, { compression: { name: 'lz4', level: 1 }, encryption: testKey(2) });
    const src = await tempDir('src');
    for (const f of fixtureManifest(MAJOR).files) {
      const r = await pushFile(ctx, await writeFixture(src, MAJOR, f.name));
      stored.set(f.name, r.storedBytes);
    }
    // Things that are not WAL objects: the catalog must skip them.
    await storage.put('wal/00000001/README.txt', Buffer.from('hello'));
    await storage.put(`wal/00000001/0000000100000000/notes-${SHA}.zst`, Buffer.from('x'));
    await storage.put(`errors/000000010000000000000009-${SHA}.zst`, Buffer.from('x'));
  });

  it('lists every WAL file once, in key order, with kind, timeline and segment number', async () => {
    const entries = await collect(storage, MIB);
    expect(entries.map((e) => [e.fileName, e.kind, e.timeline, e.segno])).toEqual([
      ['000000010000000000000007', 'segment', 1, 7n],
      ['000000010000000000000008', 'segment', 1, 8n],
      ['00000001000000000000000A', 'segment', 1, 10n],
      ['00000001000000000000000A.00000028.backup', 'backup', 1, 10n],
      ['00000001000000000000000B.partial', 'partial', 1, 11n],
      ['00000002000000000000000B', 'segment', 2, 11n],
      ['00000002.history', 'history', 2, undefined],
    ]);
    for (const e of entries) {
      expect(e.key).toBe(objectKey({ fileName: e.fileName, sha256: manifestSha(MAJOR, e.fileName), extension: 'lz4', encrypted: true }));
      expect(e).toMatchObject({ sha256: manifestSha(MAJOR, e.fileName), extension: 'lz4', encrypted: true });
      expect(e.storedBytes).toBe(stored.get(e.fileName));
      expect(e.mtime).toBeInstanceOf(Date);
      expect('segno' in e).toBe(e.kind !== 'history');
    }
  });

  it('timeline 1: its WAL files and no other timeline history', async () => {
    const entries = await collect(storage, MIB, { timeline: 1 });
    expect(entries.map((e) => e.fileName)).toEqual([
      '000000010000000000000007',
      '000000010000000000000008',
      '00000001000000000000000A',
      '00000001000000000000000A.00000028.backup',
      '00000001000000000000000B.partial',
    ]);
  });

  it('timeline 2: its segment and its own history file', async () => {
    const entries = await collect(storage, MIB, { timeline: 2 });
    expect(entries.map((e) => e.fileName)).toEqual(['00000002000000000000000B', '00000002.history']);
  });

  it('a timeline with nothing archived is empty', async () => {
    expect(await collect(storage, MIB, { timeline: 3 })).toEqual([]);
  });

  it('lastArchivedSegment: the full segment that reaches furthest (partials do not count)', async () => {
    const last = await lastArchivedSegment(storage, MIB);
    expect(last?.name).toBe('00000002000000000000000B');
    expect(last?.segno).toBe(11n);
    expect(last?.timeline).toBe(2);
  });
});

describe('lastArchivedSegment on hand-made listings', () => {
  it('an empty archive, or one holding only partials, history and backup labels, has none', async () => {
    const storage = new MemoryStorage();
    expect(await lastArchivedSegment(storage, MIB)).toBeUndefined();
    await putKeyOnly(storage, '000000010000000000000009.partial');
    await putKeyOnly(storage, '00000002.history');
    await putKeyOnly(storage, '00000001000000000000000A.00000028.backup');
    expect(await lastArchivedSegment(storage, MIB)).toBeUndefined();
  });

  it('the highest segment number wins whatever its timeline; the highest timeline breaks ties', async () => {
    const storage = new MemoryStorage();
    for (const name of ['000000010000000000000010', '000000030000000000000010', '000000020000000000000010', '00000001000000000000000F']) {
      await putKeyOnly(storage, name);
    }
    expect((await lastArchivedSegment(storage, MIB))?.name).toBe('000000030000000000000010');
    await putKeyOnly(storage, '000000010000000000000011');
    expect((await lastArchivedSegment(storage, MIB))?.name).toBe('000000010000000000000011');
  });

  it('counts across log ids by segment size (1 MiB: 4096 segments per id; 16 MiB: 256)', async () => {
    const small = new MemoryStorage();
    await putKeyOnly(small, '000000010000000000000FFF');
    await putKeyOnly(small, '000000010000000100000000');
    const last = await lastArchivedSegment(small, MIB);
    expect(last?.name).toBe('000000010000000100000000');
    expect(last?.segno).toBe(4096n);

    const big = new MemoryStorage();
    await putKeyOnly(big, '0000000100000000000000FF');
    await putKeyOnly(big, '000000010000000100000000');
    expect((await lastArchivedSegment(big, 16 * MIB))?.segno).toBe(256n);
  });

  it('ignores refused copies under errors/ and the identity record', async () => {
    const storage = new MemoryStorage();
    await putKeyOnly(storage, '000000010000000000000001');
    await storage.put(`errors/000000010000000000000099-${SHA}.zst`, Buffer.from('x'));
    await storage.put('archive.info', Buffer.from('{}'));
    expect((await lastArchivedSegment(storage, MIB))?.name).toBe('000000010000000000000001');
    expect((await collect(storage, MIB)).map((e) => e.fileName)).toEqual(['000000010000000000000001']);
  });
});
