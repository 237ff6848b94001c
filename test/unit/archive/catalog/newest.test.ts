import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lastArchivedSegment, archivedTimelines } from '../../../../src/archive/catalog/newest.js';
import { objectKey } from '../../../../src/archive/keys.js';
import { PosixStorage } from '../../../../src/storage/posix.js';
import { MemoryStorage } from '../../../../src/storage/memory.js';
import type { ListOptions, ObjectInfo, Storage } from '../../../../src/storage/types.js';
import { removeTempDirs, tempDir } from '../support.js';

afterAll(removeTempDirs);

const MIB = 1024 * 1024;
const SHA = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const hex8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');

/** A segment name computed here by hand: timeline, log id, segment within the log id. */
const name = (tli: number, log: number, seg: number): string => `${hex8(tli)}${hex8(log)}${hex8(seg)}`;
const keyOf = (fileName: string): string => objectKey({ fileName, sha256: SHA, extension: 'zst', encrypted: false });

/** Counts list calls and the objects they yielded, around a real driver. */
class CountingStorage {
  lists = 0;
  yielded = 0;
  constructor(readonly inner: Storage) {}
  async *list(prefix: string, opts?: ListOptions): AsyncIterable<ObjectInfo> {
    this.lists++;
    for await (const o of this.inner.list(prefix, opts)) {
      this.yielded++;
      yield o;
    }
  }
  asStorage(): Storage {
    return new Proxy(this.inner, {
      get: (target, prop, receiver) => (prop === 'list' ? this.list.bind(this) : Reflect.get(target, prop, receiver)),
    });
  }
}

/** Writes object files straight into a posix archive (the driver lists what is on disk). */
function writeKeys(root: string, keys: readonly string[]): void {
  for (const key of keys) {
    const parts = key.split('/');
    mkdirSync(join(root, ...parts.slice(0, -1)), { recursive: true });
    writeFileSync(join(root, ...parts), 'x');
  }
}

describe('lastArchivedSegment without listing the archive', () => {
  it('finds the newest of 3 000 segments over 30 log ids by listing about one log id, on posix', async () => {
    const root = await tempDir('newest');
    const keys: string[] = [];
    for (let log = 0; log < 30; log++) for (let seg = 0; seg < 100; seg++) keys.push(keyOf(name(1, log, seg)));
    // A newer log id that holds only a partial and a backup label: not a full segment.
    keys.push(keyOf(`${name(1, 30, 0)}.partial`), keyOf(`${name(1, 30, 0)}.00000028.backup`));
    // An older timeline, entirely below.
    for (let seg = 0; seg < 50; seg++) keys.push(keyOf(name(2, 3, seg)));
    writeKeys(root, keys);
    const counting = new CountingStorage(new PosixStorage({ root }));
    const last = await lastArchivedSegment(counting.asStorage(), 16 * MIB);
    expect(last?.name).toBe(name(1, 29, 99));
    // Probes yield one object each; the two log ids listed in full hold 102 objects.
    expect(counting.yielded).toBeLessThan(250);
    expect(counting.yielded).toBeLessThan(keys.length / 10);
    expect(counting.lists).toBeLessThan(100);
  });

  it('skips keys that are not ours under wal/ and still answers', async () => {
    const root = await tempDir('newest-foreign');
    writeKeys(root, ['wal/README', 'wal/00000001/notes.txt', keyOf(name(1, 0, 5)), 'wal/00000001/0000000100000000/junk']);
    const storage = new PosixStorage({ root });
    expect((await lastArchivedSegment(storage, 16 * MIB))?.name).toBe(name(1, 0, 5));
    expect(await archivedTimelines(storage)).toEqual([1]);
  });
});

/** What a full listing says (the old implementation, by brute force over every key). */
function bruteForce(names: readonly string[], segSize: number): string | undefined {
  const perLog = 0x1_0000_0000 / segSize;
  let best: { segno: number; tli: number; name: string } | undefined;
  for (const n of names) {
    if (!/^[0-9A-F]{24}$/.test(n)) continue;
    const tli = Number.parseInt(n.slice(0, 8), 16);
    const segno = Number.parseInt(n.slice(8, 16), 16) * perLog + Number.parseInt(n.slice(16), 16);
    if (!best || segno > best.segno || (segno === best.segno && tli > best.tli)) best = { segno, tli, name: n };
  }
  return best?.name;
}

describe('lastArchivedSegment agrees with a full listing', () => {
  // A fixed linear congruential generator: the same layouts on every run.
  let state = 12345;
  const rand = (n: number): number => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  for (const segSize of [MIB, 16 * MIB]) {
    it(`on 60 random layouts (${segSize / MIB} MiB segments)`, async () => {
      const perLog = 0x1_0000_0000 / segSize;
      for (let round = 0; round < 60; round++) {
        const storage = new MemoryStorage();
        const names: string[] = [];
        const count = rand(40);
        for (let i = 0; i < count; i++) {
          const tli = 1 + rand(4);
          const log = rand(3) === 0 ? rand(0x10000) : rand(6);
          const seg = rand(perLog);
          const suffix = ['', '', '', '.partial', '.00000028.backup'][rand(5)]!;
          names.push(`${name(tli, log, seg)}${suffix}`);
        }
        for (const n of names) await storage.put(keyOf(n), Buffer.from('x'));
        expect((await lastArchivedSegment(storage, segSize))?.name, names.join(' ')).toBe(bruteForce(names, segSize));
      }
    });
  }
});
