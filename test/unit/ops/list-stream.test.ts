/**
 * wal-list's streaming path: the same bytes as renderWalList and JSON.stringify of listWal, rows
 * handed over while the listing is still being read, and a listing out of key order still printed
 * in order. Over an archive of real PostgreSQL 15 WAL (see archive-ops.test.ts for the fixtures).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushFile } from '../../../src/archive/push.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { parseLsn } from '../../../src/segment/lsn.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import type { ListOptions, ObjectInfo, Storage } from '../../../src/storage/types.js';
import { renderWalList } from '../../../src/cli/render/list.js';
import { WalListPrinter } from '../../../src/cli/render/list-stream.js';
import { listWal, type WalListFilter, type WalListRow } from '../../../src/ops/list.js';
import { eachWalRow } from '../../../src/ops/list-stream.js';
import { fixtureManifest } from '../../support/fixtures.js';
import { makeCtx, removeTempDirs, tempDir, writeFixture } from '../archive/support.js';

const MAJOR = 15;
const manifest = fixtureManifest(MAJOR);
afterAll(removeTempDirs);

let storage: MemoryStorage;
beforeAll(async () => {
  storage = new MemoryStorage();
  const ctx = makeCtx(storage);
  const src = await tempDir('list-stream-src');
  for (const f of manifest.files) await pushFile(ctx, await writeFixture(src, MAJOR, f.name));
});

const ctxOver = (s: Storage): ArchiveContext => ({ ...makeCtx(s), identity: undefined }) as ArchiveContext;

async function printed(s: Storage, filter: WalListFilter, json: boolean): Promise<string> {
  let text = '';
  const out = (t: string): void => void (text += t.endsWith('\n') ? t : `${t}\n`);
  const printer = new WalListPrinter(json);
  try {
    const head = await eachWalRow(ctxOver(s), filter, printer);
    await printer.print(head, out);
  } finally {
    printer.dispose();
  }
  return text;
}

/** Wraps a real driver: counts objects listed, and can reverse the order of wal/ listings. */
function wrapped(inner: Storage, opts: { reverse?: boolean } = {}): { storage: Storage; listed: () => number } {
  let listed = 0;
  const storage = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== 'list') return Reflect.get(target, prop, receiver);
      return async function* (prefix: string, o?: ListOptions): AsyncIterable<ObjectInfo> {
        const all: ObjectInfo[] = [];
        for await (const x of target.list(prefix, o)) {
          if (!opts.reverse) {
            listed++;
            yield x;
          } else all.push(x);
        }
        for (const x of prefix.startsWith('wal/') ? all.reverse() : all) {
          listed++;
          yield x;
        }
      };
    },
  });
  return { storage, listed: () => listed };
}

describe('wal-list streaming', () => {
  const filters: WalListFilter[] = [{}, { timeline: 2 }, { timeline: 1, from: parseLsn('0/8000000') }, { to: parseLsn('0/1') }];
  for (const filter of filters) {
    it(`prints exactly what the in-memory list renders (${JSON.stringify(filter, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))})`, async () => {
      const list = await listWal(ctxOver(storage), filter);
      expect(await printed(storage, filter, false)).toBe(`${renderWalList(list)}\n`);
      expect(await printed(storage, filter, true)).toBe(`${JSON.stringify(list, null, 2)}\n`);
    });
  }

  it('hands rows over while the listing is still being read', async () => {
    const w = wrapped(storage);
    const seenAtRow: number[] = [];
    await eachWalRow(ctxOver(w.storage), {}, { row: () => void seenAtRow.push(w.listed()), restart: () => undefined });
    const total = w.listed();
    expect(seenAtRow.length).toBe(manifest.files.length);
    // The first row arrives when a few objects (identity, the history file, the first segment) were listed.
    expect(seenAtRow[0]!).toBeLessThan(total);
    expect(seenAtRow.filter((n) => n < total).length).toBeGreaterThan(1);
  });

  it('starts again from a sorted listing when storage lists out of key order', async () => {
    const w = wrapped(storage, { reverse: true });
    const rows: WalListRow[] = [];
    let restarts = 0;
    await eachWalRow(
      ctxOver(w.storage),
      {},
      {
        row: (r) => void rows.push(r),
        restart: () => {
          restarts++;
          rows.length = 0;
        },
      },
    );
    expect(restarts).toBe(1);
    expect(rows).toEqual((await listWal(ctxOver(storage))).rows);
    expect(await printed(w.storage, {}, false)).toBe(`${renderWalList(await listWal(ctxOver(storage)))}\n`);
  });
});
