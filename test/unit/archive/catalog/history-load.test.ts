/**
 * loadHistories: intact history files are parsed; damaged ones become failures to report (sorted
 * by timeline, whatever order the downloads finish in), never a reason to stop or a smaller history.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadHistories } from '../../../../src/archive/catalog/inventory.js';
import { listCatalog, type CatalogEntry } from '../../../../src/archive/catalog/listing.js';
import { pushFile } from '../../../../src/archive/push.js';
import type { MemoryStorage } from '../../../../src/storage/memory.js';
import { makeCtx, newStorage, removeTempDirs, tempDir, writeFixture, writeInput } from '../support.js';

afterAll(removeTempDirs);

const SEG = 16 * 1024 * 1024;
const HISTORIES: Record<string, string> = {
  '00000002.history': '1\t0/A000000\tno recovery target specified\n',
  '00000003.history': '1\t0/A000000\tno recovery target specified\n2\t0/B000000\tno recovery target specified\n',
  '00000004.history':
    '1\t0/A000000\tno recovery target specified\n2\t0/B000000\tno recovery target specified\n3\t0/C000000\tat restore point "x"\n',
};

async function archiveWithHistories() {
  const storage = (await newStorage('memory')) as MemoryStorage;
  const ctx = makeCtx(storage);
  const dir = await tempDir('hist');
  await pushFile(ctx, await writeFixture(dir, 15, '000000010000000000000008'));
  for (const [name, text] of Object.entries(HISTORIES)) await pushFile(ctx, await writeInput(dir, name, Buffer.from(text)));
  const entries: CatalogEntry[] = [];
  for await (const e of listCatalog(storage, SEG, { only: 'history' })) entries.push(e);
  return { ctx, storage, entries };
}

describe('loadHistories', () => {
  it('parses every intact history file', async () => {
    const { ctx, entries } = await archiveWithHistories();
    const { histories, failures } = await loadHistories(ctx, entries);
    expect(failures).toEqual([]);
    expect([...histories.keys()].sort()).toEqual([2, 3, 4]);
    expect(histories.get(4)!.entries.map((h) => Number(h.parent))).toEqual([1, 2, 3]);
  });

  it('reports damaged ones as failures in timeline order and keeps the rest', async () => {
    const { ctx, storage, entries } = await archiveWithHistories();
    // Damage timelines 4 and 2 (in that order): flip the last byte of each stored object.
    for (const tli of [4, 2]) {
      const e = entries.find((x) => x.timeline === tli)!;
      const bytes = Buffer.from(await storage.getBuffer(e.key));
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
      await storage.put(e.key, bytes);
    }
    const { histories, failures } = await loadHistories(ctx, entries);
    expect(failures.map((f) => [f.timeline, f.fileName])).toEqual([
      [2, '00000002.history'],
      [4, '00000004.history'],
    ]);
    for (const f of failures) expect(f.message).not.toBe('');
    expect([...histories.keys()]).toEqual([3]);
  });
});
