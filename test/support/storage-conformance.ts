/**
 * One behaviour suite for every storage driver: `runStorageConformance(name, make)` registers a
 * describe block; `make` returns a fresh, empty storage for each test (a new temp dir, a new S3
 * prefix, ...). Expected values are written out by hand (key orders, sizes), never computed by the
 * code under test.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortedError, InvalidKeyError, NotFoundError, ObjectExistsError, WalvaultError } from '../../src/common/errors.js';
import type { ObjectInfo, Storage } from '../../src/storage/types.js';

export interface ConformanceTarget {
  storage: Storage;
  /** Removes whatever `make` created (temp dirs, ...); the suite closes the storage itself. */
  cleanup?: () => Promise<void>;
}

export interface ConformanceOptions {
  /**
   * Whether two create-only puts racing for one key have exactly one winner. Needs an atomic
   * create-only write on the server side: posix link(), memory, real S3's If-None-Match. s3rver
   * ignores If-None-Match, so for it only the sequential ifAbsent behaviour can be checked.
   */
  atomicIfAbsent?: boolean;
  /**
   * The same for bodies too large for one request (an S3 multipart upload, whose create-only guard
   * is If-None-Match on CompleteMultipartUpload). Defaults to atomicIfAbsent. Ceph RGW 16.2 honours
   * the header on PutObject but ignores it on CompleteMultipartUpload: every racer wins there.
   * Drivers with a part size must be configured with one below 11 MiB for this case to mean much.
   */
  atomicIfAbsentMultipart?: boolean;
  /**
   * Whether two overwrites racing for one key always leave one of the two bodies. s3rver writes
   * request bodies straight into the object file, so only the driver's side can be checked there.
   */
  atomicConcurrentOverwrite?: boolean;
  /**
   * Whether listings come in the UTF-8 byte order of the whole keys, as S3 and our drivers promise
   * (default true). s3rver walks its directory tree instead ('a/b' before 'a-c') and compares
   * startAfter as UTF-16; for it the suite checks which keys come back, not their order. Our own key
   * layout (fixed-width hex names at one depth) lists the same either way.
   */
  exactListOrder?: boolean;
}

const MiB = 1024 * 1024;

export async function listAll(storage: Storage, prefix = '', startAfter?: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of storage.list(prefix, startAfter === undefined ? {} : { startAfter })) out.push(info);
  return out;
}

export async function keys(storage: Storage, prefix = '', startAfter?: string): Promise<string[]> {
  return (await listAll(storage, prefix, startAfter)).map((i) => i.key);
}

export async function readStream(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A stream yielding `data` in uneven chunks, yielding the event loop between them like a real source. */
export function chunked(data: Buffer, sizes: number[] = [1, 7, 4093, 65_536, 100_003]): Readable {
  return Readable.from(
    (async function* () {
      let off = 0;
      for (let i = 0; off < data.length; i++) {
        const n = sizes[i % sizes.length]!;
        yield new Uint8Array(data.subarray(off, off + n));
        off += n;
        await tick();
      }
    })(),
    { objectMode: false },
  );
}

/** The suite's own reference order (UTF-8 bytes), independent of the drivers' compareKeys. */
function byteOrder(list: readonly string[]): string[] {
  return [...list].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
}

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function expectCode(p: Promise<unknown>, code: string): Promise<WalvaultError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected an error with code ${code}`).toBeInstanceOf(WalvaultError);
  expect((err as WalvaultError).code).toBe(code);
  return err as WalvaultError;
}

/** Keys whose byte order differs from naive orders: '-' < '.' < '/' < '0', 'B' < 'a', and UTF-8 vs UTF-16. */
const ORDER_KEYS = ['z', 'a/b', 'ﬀ', 'a0', 'B', 'a-c', 'b/x', 'a/c/d', '😀', 'é', 'a.b'];
const ORDER_SORTED = ['B', 'a-c', 'a.b', 'a/b', 'a/c/d', 'a0', 'b/x', 'z', 'é', 'ﬀ', '😀'];

const INVALID_KEYS = [
  '',
  '/abs',
  'a//b',
  'a/',
  '..',
  '../x',
  'a/../b',
  './a',
  'a/./b',
  '.hidden',
  'a/.b.tmp',
  'a\\b',
  'a\0b',
  'a\nb',
  '\ud800x',
];

export function runStorageConformance(name: string, make: () => Promise<ConformanceTarget>, options: ConformanceOptions = {}): void {
  describe(`storage conformance: ${name}`, () => {
    let target: ConformanceTarget;
    let s: Storage;
    const exactOrder = options.exactListOrder ?? true;
    /** Keys listed under (prefix, startAfter), compared in order, or as a set where order is server-defined. */
    const expectListed = async (prefix: string, startAfter: string | undefined, expected: string[]): Promise<void> => {
      const got = await keys(s, prefix, startAfter);
      const what = `list('${prefix}'${startAfter === undefined ? '' : `, after '${startAfter}'`})`;
      expect(exactOrder ? got : byteOrder(got), what).toEqual(expected);
    };

    beforeEach(async () => {
      target = await make();
      s = target.storage;
    });
    afterEach(async () => {
      await s.close();
      await target.cleanup?.();
    });

    it('round trips Buffer bodies through get and getBuffer', async () => {
      for (const size of [1, 1000, 65_537]) {
        const data = randomBytes(size);
        await s.put(`buf/${size}`, data);
        expect(sha(await s.getBuffer(`buf/${size}`))).toBe(sha(data));
        expect(sha(await readStream(await s.get(`buf/${size}`)))).toBe(sha(data));
      }
      // A Uint8Array that is a view into a larger buffer stores only its own bytes.
      const big = Buffer.from('xxhello worldxx');
      await s.put('view', new Uint8Array(big.buffer, big.byteOffset + 2, 11));
      expect((await s.getBuffer('view')).toString()).toBe('hello world');
    });

    it('round trips stream bodies delivered in uneven chunks', async () => {
      const data = randomBytes(300_000);
      await s.put('stream/a', chunked(data));
      expect(sha(await s.getBuffer('stream/a'))).toBe(sha(data));
      await s.put('stream/text', Readable.from(['héllo', ' ', 'wörld'], { objectMode: false }));
      expect((await s.getBuffer('stream/text')).toString('utf8')).toBe('héllo wörld');
    });

    it('stores empty objects from a Buffer and from an empty stream', async () => {
      await s.put('empty/buf', Buffer.alloc(0));
      await s.put('empty/stream', Readable.from([], { objectMode: false }));
      for (const key of ['empty/buf', 'empty/stream']) {
        expect((await s.getBuffer(key)).length).toBe(0);
        expect((await readStream(await s.get(key))).length).toBe(0);
        expect((await s.head(key))?.size).toBe(0);
      }
    });

    it('round trips a 17 MiB object from a Buffer and from a stream', async () => {
      const data = randomBytes(17 * MiB);
      await s.put('large/buffer', data);
      await s.put('large/stream', chunked(data, [1 * MiB + 3, 65_536]), { contentLength: data.length });
      for (const key of ['large/buffer', 'large/stream']) {
        expect((await s.head(key))?.size).toBe(17 * MiB);
        expect(sha(await readStream(await s.get(key)))).toBe(sha(data));
      }
      expect(sha(await s.getBuffer('large/stream'))).toBe(sha(data));
    });

    it('head reports size and mtime, and undefined for a missing key', async () => {
      const before = Date.now();
      await s.put('h/one', Buffer.from('12345'));
      const info = await s.head('h/one');
      expect(info?.key).toBe('h/one');
      expect(info?.size).toBe(5);
      expect(info?.mtime).toBeInstanceOf(Date);
      // Servers keep whole seconds; allow the clock a little slack.
      expect(info!.mtime.getTime()).toBeGreaterThan(before - 5_000);
      expect(info!.mtime.getTime()).toBeLessThan(Date.now() + 5_000);
      expect(await s.head('h/two')).toBeUndefined();
      expect(await s.head('h')).toBeUndefined();
    });

    it('get and getBuffer of a missing key reject with NotFoundError', async () => {
      await s.put('present/x', Buffer.from('x'));
      for (const key of ['missing', 'present/y', 'present']) {
        const e1 = await expectCode(s.get(key), 'WV_ERR_NOT_FOUND');
        expect(e1).toBeInstanceOf(NotFoundError);
        expect(e1.message).toContain(`'${key}'`);
        await expectCode(s.getBuffer(key), 'WV_ERR_NOT_FOUND');
      }
    });

    it('lists keys in UTF-8 byte order across directories, with sizes', async () => {
      for (const [i, key] of ORDER_KEYS.entries()) await s.put(key, Buffer.alloc(i + 1, 1));
      const all = await listAll(s, '');
      const listed = all.map((i) => i.key);
      expect(exactOrder ? listed : byteOrder(listed)).toEqual(ORDER_SORTED);
      expect(all.find((i) => i.key === 'a/c/d')?.size).toBe(ORDER_KEYS.indexOf('a/c/d') + 1);
      for (const info of all) expect(info.mtime).toBeInstanceOf(Date);
    });

    it('lists by prefix, whole segments or partial', async () => {
      for (const key of ORDER_KEYS) await s.put(key, Buffer.from(key));
      await expectListed('a/', undefined, ['a/b', 'a/c/d']);
      await expectListed('a', undefined, ['a-c', 'a.b', 'a/b', 'a/c/d', 'a0']);
      await expectListed('a/c', undefined, ['a/c/d']);
      await expectListed('a/c/d', undefined, ['a/c/d']);
      await expectListed('b/', undefined, ['b/x']);
      await expectListed('B', undefined, ['B']);
    });

    it('lists after startAfter, with or without a prefix', async () => {
      for (const key of ORDER_KEYS) await s.put(key, Buffer.from(key));
      await expectListed('', 'a.b', ['a/b', 'a/c/d', 'a0', 'b/x', 'z', 'é', 'ﬀ', '😀']);
      await expectListed('', 'a/', ['a/b', 'a/c/d', 'a0', 'b/x', 'z', 'é', 'ﬀ', '😀']);
      await expectListed('', 'a/c/d', ['a0', 'b/x', 'z', 'é', 'ﬀ', '😀']);
      await expectListed('', 'a/zzz', ['a0', 'b/x', 'z', 'é', 'ﬀ', '😀']);
      await expectListed('a/', 'a/b', ['a/c/d']);
      await expectListed('a', '', ['a-c', 'a.b', 'a/b', 'a/c/d', 'a0']);
      await expectListed('', 'é', ['ﬀ', '😀']);
      // U+1F600 sorts after U+FB00 in UTF-8 but before it in UTF-16.
      if (exactOrder) await expectListed('', '😀', []);
    });

    it('lists a missing prefix, and an empty store, as empty', async () => {
      expect(await keys(s, '')).toEqual([]);
      await s.put('dir/x', Buffer.from('x'));
      expect(await keys(s, 'nope/')).toEqual([]);
      expect(await keys(s, 'nope')).toEqual([]);
      expect(await keys(s, 'dir/x/')).toEqual([]);
      expect(await keys(s, 'dir/y')).toEqual([]);
    });

    it('lists and deletes more than 1000 keys (pagination, delete batches)', async () => {
      // One more than S3's page size: the smallest count that needs a second page and a second batch.
      const names = Array.from({ length: 1001 }, (_, i) => `many/k${String(i).padStart(4, '0')}`);
      for (let i = 0; i < names.length; i += 32) {
        await Promise.all(names.slice(i, i + 32).map((k) => s.put(k, Buffer.from('v'))));
      }
      const listed = await listAll(s, 'many/');
      expect(listed.length).toBe(1001);
      expect(listed[0]!.key).toBe('many/k0000');
      expect(listed[999]!.key).toBe('many/k0999');
      expect(listed[1000]!.key).toBe('many/k1000');
      expect(listed.every((i, n) => i.key === names[n] && i.size === 1)).toBe(true);
      expect(await keys(s, 'many/', 'many/k0998')).toEqual(['many/k0999', 'many/k1000']);
      await s.delete(names);
      expect(await keys(s, 'many/')).toEqual([]);
    });

    it('overwrites without ifAbsent, never with it', async () => {
      await s.put('ow/k', Buffer.from('one'));
      await s.put('ow/k', Buffer.from('second'));
      expect((await s.getBuffer('ow/k')).toString()).toBe('second');
      expect((await s.head('ow/k'))?.size).toBe(6);

      const err = await expectCode(s.put('ow/k', Buffer.from('third'), { ifAbsent: true }), 'WV_ERR_OBJECT_EXISTS');
      expect(err).toBeInstanceOf(ObjectExistsError);
      expect(err.message).toContain("'ow/k'");
      await expectCode(s.put('ow/k', chunked(Buffer.from('third')), { ifAbsent: true }), 'WV_ERR_OBJECT_EXISTS');
      expect((await s.getBuffer('ow/k')).toString()).toBe('second');

      await s.put('ow/new', Buffer.from('fresh'), { ifAbsent: true });
      expect((await s.getBuffer('ow/new')).toString()).toBe('fresh');
    });

    const unsupported = (what: string, supported: boolean | undefined): string =>
      supported ? what : `${what} (not checked: this server lacks it, see ConformanceOptions)`;

    const racingIfAbsent = unsupported('lets exactly one of several racing ifAbsent puts win', options.atomicIfAbsent);
    it.runIf(options.atomicIfAbsent)(racingIfAbsent, async () => {
      const bodies = [0, 1, 2, 3, 4, 5].map((i) => Buffer.alloc(100_000, 65 + i));
      const results = await Promise.allSettled(bodies.map((b) => s.put('race/once', chunked(b), { ifAbsent: true })));
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won.length).toBe(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ObjectExistsError);
      }
      const stored = await s.getBuffer('race/once');
      expect(bodies[results.findIndex((r) => r.status === 'fulfilled')]!.equals(stored)).toBe(true);
    });

    const atomicLarge = options.atomicIfAbsentMultipart ?? options.atomicIfAbsent;
    it.runIf(atomicLarge)(unsupported('lets exactly one of several racing large ifAbsent puts win', atomicLarge), async () => {
      const bodies = [0, 1, 2].map((i) => Buffer.alloc(11 * MiB, 65 + i));
      const results = await Promise.allSettled(bodies.map((b) => s.put('race/large', chunked(b, [MiB]), { ifAbsent: true })));
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won.length).toBe(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ObjectExistsError);
      }
      const stored = await s.getBuffer('race/large');
      expect(bodies[results.findIndex((r) => r.status === 'fulfilled')]!.equals(stored)).toBe(true);
    });

    it.runIf(options.atomicConcurrentOverwrite)(
      unsupported('leaves one whole body when puts to one key race', options.atomicConcurrentOverwrite),
      async () => {
        const bodies = [0, 1, 2, 3].map((i) => Buffer.alloc(512 * 1024, 97 + i));
        await Promise.all(bodies.map((b) => s.put('race/k', chunked(b, [16_384]))));
        const stored = await s.getBuffer('race/k');
        expect(bodies.some((b) => b.equals(stored))).toBe(true);
      },
    );

    it('deletes objects, ignores absent keys, and accepts an empty list', async () => {
      await s.put('del/a', Buffer.from('a'));
      await s.put('del/b', Buffer.from('b'));
      await s.put('del/sub/c', Buffer.from('c'));
      await s.delete([]);
      await s.delete(['del/a', 'del/missing', 'nowhere/x', 'del/a']);
      expect(await keys(s, 'del/')).toEqual(['del/b', 'del/sub/c']);
      await s.delete(['del/sub/c', 'del/b']);
      expect(await keys(s, '')).toEqual([]);
      await expectCode(s.getBuffer('del/a'), 'WV_ERR_NOT_FOUND');
    });

    it('rejects invalid keys in every operation', async () => {
      for (const key of INVALID_KEYS) {
        const label = JSON.stringify(key);
        for (const op of [
          () => s.put(key, Buffer.from('x')),
          () => s.get(key),
          () => s.getBuffer(key),
          () => s.head(key),
          () => s.delete(['ok', key]),
        ]) {
          const err = await op().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err, label).toBeInstanceOf(InvalidKeyError);
        }
      }
      for (const prefix of ['/', '../', 'a//', './x', 'a\\b', 'x\0']) {
        await expect(listAll(s, prefix), JSON.stringify(prefix)).rejects.toBeInstanceOf(InvalidKeyError);
      }
      expect(await keys(s, '')).toEqual([]);
    });

    it('an aborted put stores nothing', async () => {
      const controller = new AbortController();
      const body = Readable.from(
        (async function* () {
          yield Buffer.alloc(64 * 1024, 1);
          await new Promise((r) => setTimeout(r, 20));
          controller.abort(new Error('shutting down'));
          // A source that would go on forever: the put must stop on the abort, not on the data.
          for (;;) {
            yield Buffer.alloc(64 * 1024, 2);
            await new Promise((r) => setTimeout(r, 5));
          }
        })(),
        { objectMode: false },
      );
      const err = await expectCode(s.put('abort/k', body, { signal: controller.signal }), 'WV_ERR_ABORTED');
      expect(err).toBeInstanceOf(AbortedError);
      const already = new AbortController();
      already.abort();
      await expectCode(s.put('abort/k2', Buffer.from('x'), { signal: already.signal }), 'WV_ERR_ABORTED');
      expect(await s.head('abort/k')).toBeUndefined();
      expect(await s.head('abort/k2')).toBeUndefined();
      expect(await keys(s, '')).toEqual([]);
    });

    it('a put whose body fails midway stores nothing and keeps the old object', async () => {
      await s.put('fail/k', Buffer.from('old'));
      const body = Readable.from(
        (async function* () {
          yield Buffer.alloc(100_000, 7);
          await tick();
          throw new Error('disk read error while reading the segment');
        })(),
        { objectMode: false },
      );
      const err = await s.put('fail/k', body).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WalvaultError);
      expect((err as Error).message).toContain('disk read error');
      expect((err as WalvaultError).retryable).toBe(false);
      expect((await s.getBuffer('fail/k')).toString()).toBe('old');
      await expect(s.put('fail/new', chunked(Buffer.alloc(10)), { contentLength: 11 })).rejects.toThrow(/10 bytes, expected 11/);
      expect(await keys(s, '')).toEqual(['fail/k']);
    });

    it('a get stream can be abandoned early', async () => {
      await s.put('partial/read', randomBytes(2 * MiB));
      const stream = await s.get('partial/read');
      for await (const chunk of stream) {
        expect((chunk as Buffer).length).toBeGreaterThan(0);
        break;
      }
      expect(stream.destroyed).toBe(true);
      expect((await s.getBuffer('partial/read')).length).toBe(2 * MiB);
    });
  });
}
