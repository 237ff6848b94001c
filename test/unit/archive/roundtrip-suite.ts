/**
 * pushFile -> storage -> fetchFile on the real PostgreSQL 15 fixtures, for every codec, plain and
 * encrypted, on one storage driver (roundtrip-memory.test.ts and roundtrip-posix.test.ts run it, so
 * the two drivers run in parallel workers); then every kind of damage to a stored object must end
 * in an exit-128 error (never "not found", never wrong bytes) with nothing written to the
 * destination directory.
 */
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ArchiveMismatchError,
  CryptoError,
  ExitCode,
  IntegrityError,
  NotFoundError,
  type WalvaultError,
} from '../../../src/common/errors.js';
import type { CompressionSpec } from '../../../src/codec/codec.js';
import type { EncryptionKey } from '../../../src/codec/encryption-key.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { fetchFile, restoreFile } from '../../../src/restore/fetch.js';
import { findVersions } from '../../../src/archive/versions.js';
import { objectKey } from '../../../src/archive/keys.js';
import { pushFile, type PushResult } from '../../../src/archive/push.js';
import type { Storage } from '../../../src/storage/types.js';
import { fixtureManifest } from '../../support/fixtures.js';
import {
  dirEntries,
  expectWalvault,
  flipByte,
  makeCtx,
  manifestSha,
  newStorage,
  overwrite,
  rejectionOf,
  removeTempDirs,
  sha256,
  tempDir,
  testKey,
  writeFixture,
  type DriverName,
} from './support.js';

const MAJOR = 15;
const FILES = fixtureManifest(MAJOR).files.map((f) => f.name);
/** Filled end to end with records: the biggest compressed payload, so "middle" is deep inside it. */
const TARGET = '000000010000000000000008';
/** Expected key extension per codec (the layout in src/archive/keys.ts; `raw` for none). */
const CODECS: Array<[CompressionSpec, string]> = [
  [{ name: 'zstd', level: 1 }, 'zst'],
  [{ name: 'lz4', level: 1 }, 'lz4'],
  [{ name: 'gzip', level: 1 }, 'gz'],
  [{ name: 'brotli', level: 1 }, 'br'],
  [{ name: 'none', level: 0 }, 'raw'],
];
const KEY = testKey(0x5a);
const OTHER_KEY = testKey(0xa5);

type Combo = [string, CompressionSpec, string, boolean];
const COMBOS: Combo[] = CODECS.flatMap(([spec, ext]) =>
  [false, true].map((enc): Combo => [`${spec.name}, ${enc ? 'encrypted' : 'plain'}`, spec, ext, enc]),
);

/** The stored object's header length (13 fixed bytes + JSON), read from the documented layout. */
function headerLength(obj: Buffer): number {
  return 13 + obj.readUInt32BE(9);
}

/** Runs fetchFile into a fresh directory and returns what it threw and what the directory holds. */
async function failedFetch(ctx: ArchiveContext, name: string): Promise<{ err: unknown; left: string[] }> {
  const dest = await tempDir('dest');
  const err = await rejectionOf(fetchFile(ctx, name, path.join(dest, 'RECOVERYXLOG')));
  return { err, left: await dirEntries(dest) };
}

/** Exit 128 and an integrity verdict; never NotFoundError (that would end recovery early). */
function expectIntegrity(err: unknown, what: string): void {
  expect(err, what).toBeInstanceOf(IntegrityError);
  expect(err, what).not.toBeInstanceOf(NotFoundError);
  expect((err as WalvaultError).exitCode, what).toBe(ExitCode.integrity);
}

export function defineRoundTripSuite(driver: DriverName): void {
  afterAll(removeTempDirs);

  describe.each(COMBOS)(`${driver} storage, %s`, (_label, spec, ext, encrypted) => {
    let storage: Storage;
    let ctx: ArchiveContext;
    const pushed = new Map<string, PushResult>();
    /** Checks that do not depend on the codec run once per driver and mode: with zstd. */
    const codecIndependent = spec.name === 'zstd';

    beforeAll(async () => {
      storage = await newStorage(driver);
      ctx = makeCtx(storage, { compression: spec, encryption: encrypted ? KEY : undefined });
      const src = await tempDir('src');
      for (const name of FILES) pushed.set(name, await pushFile(ctx, await writeFixture(src, MAJOR, name)));
    });

    /** A fresh context (no cached identity), as a separate wal-fetch process would have. */
    function reader(encryption: EncryptionKey | null = encrypted ? KEY : null): ArchiveContext {
      return makeCtx(storage, { compression: { name: 'zstd', level: 1 }, encryption: encryption ?? undefined });
    }

    it('uploads every fixture under the documented key', () => {
      for (const name of FILES) {
        const r = pushed.get(name)!;
        expect(r.status).toBe('uploaded');
        expect(r.sha256).toBe(manifestSha(MAJOR, name));
        expect(r.key).toBe(objectKey({ fileName: name, sha256: manifestSha(MAJOR, name), extension: ext, encrypted }));
      }
    });

    it('stores a clear-text WALVAULT header naming the file, codec and key id', async () => {
      for (const name of FILES) {
        const obj = await storage.getBuffer(pushed.get(name)!.key);
        expect(obj.length).toBe(pushed.get(name)!.storedBytes);
        expect(obj.subarray(0, 8).toString('latin1')).toBe('WALVAULT');
        const meta = JSON.parse(obj.subarray(13, headerLength(obj)).toString('utf8')) as Record<string, unknown>;
        expect(meta).toMatchObject({ name, sha256: manifestSha(MAJOR, name), codec: spec.name });
        expect(meta['encryption']).toEqual(encrypted ? { alg: 'aes-256-gcm-chunked', keyId: KEY.keyId } : null);
        const payload = obj.subarray(headerLength(obj));
        if (encrypted) expect(payload.subarray(0, 6).toString('latin1')).toBe('WVENC1');
      }
    });

    it('restores every fixture bit-exact with a fresh reader', async () => {
      for (const name of FILES) {
        const restored = await restoreFile(reader(), name, { expectedSystemId: fixtureManifest(MAJOR).systemId });
        expect(sha256(restored.bytes), name).toBe(manifestSha(MAJOR, name));
        expect(restored.key).toBe(pushed.get(name)!.key);
        expect(restored.storedBytes).toBe(pushed.get(name)!.storedBytes);
      }
    });

    it.each([TARGET, '00000002.history'])('fetchFile writes %s whole, leaving only the destination file', async (name) => {
      const dest = await tempDir('dest');
      const target = path.join(dest, 'RECOVERYXLOG');
      const result = await fetchFile(reader(), name, target);
      expect(result).toMatchObject({ name, sha256: manifestSha(MAJOR, name), key: pushed.get(name)!.key });
      expect(sha256(await readFile(target))).toBe(manifestSha(MAJOR, name));
      expect(await dirEntries(dest)).toEqual(['RECOVERYXLOG']);
    });

    if (codecIndependent) {
      it('fetchFile replaces an existing destination file whole', async () => {
        const dest = await tempDir('dest');
        const target = path.join(dest, 'RECOVERYXLOG');
        await rename(await writeFixture(dest, MAJOR, '000000010000000000000007'), target);
        await fetchFile(reader(), TARGET, target);
        expect(sha256(await readFile(target))).toBe(manifestSha(MAJOR, TARGET));
        expect(await dirEntries(dest)).toEqual(['RECOVERYXLOG']);
      });
    }

    if (codecIndependent) {
      it('restoring into another cluster (expectedSystemId) is ArchiveMismatchError (exit 128), nothing written', async () => {
        const dest = await tempDir('dest');
        const err = await rejectionOf(
          fetchFile(reader(), TARGET, path.join(dest, 'RECOVERYXLOG'), { expectedSystemId: fixtureManifest(13).systemId }),
        );
        expect(expectWalvault(err, ArchiveMismatchError, ExitCode.integrity).message).toContain(fixtureManifest(13).systemId);
        expect(await dirEntries(dest)).toEqual([]);
      });
    }

    it('a file that was never archived is NotFoundError (exit 1) and writes nothing', async () => {
      const { err, left } = await failedFetch(reader(), '000000010000000000000009');
      expectWalvault(err, NotFoundError, ExitCode.notFound);
      expect(left).toEqual([]);
    });

    describe('damage to the stored object', () => {
      let key: string;
      let original: Buffer;

      beforeAll(async () => {
        key = pushed.get(TARGET)!.key;
        original = await storage.getBuffer(key);
      });

      /** Damages the object in place, checks fetch refuses it, then puts the original back. */
      async function expectRefused(bad: Buffer, what: string): Promise<void> {
        await overwrite(storage, key, bad);
        try {
          const { err, left } = await failedFetch(reader(), TARGET);
          expectIntegrity(err, what);
          expect(left, what).toEqual([]);
        } finally {
          await overwrite(storage, key, original);
        }
      }

      // The object header is the same for every codec: its finer cases run once (zstd), and
      // damage-scan.test.ts inverts every header byte.
      const headerOnly: Array<[string, (o: Buffer) => number]> = [
        ['format version', () => 8],
        ['header length', () => 12],
        ['first JSON byte', () => 13],
        ['last JSON byte', (o: Buffer) => headerLength(o) - 1],
        ['name in the header', (o: Buffer) => o.indexOf('"name":"') + 30],
      ];
      it.each([
        ['magic', () => 0],
        ['sha256 in the header', (o: Buffer) => o.indexOf('"sha256":"') + 12],
        ...(codecIndependent ? headerOnly : []),
        ['payload start', (o: Buffer) => headerLength(o)],
        ['payload middle', (o: Buffer) => Math.floor((headerLength(o) + o.length) / 2)],
        ['last byte', (o: Buffer) => o.length - 1],
      ] as Array<[string, (o: Buffer) => number]>)('one byte flipped at the %s', async (what, at) => {
        const pos = at(original);
        expect(pos).toBeGreaterThanOrEqual(0);
        expect(pos).toBeLessThan(original.length);
        await expectRefused(flipByte(original, pos), `${what} (offset ${pos})`);
      });

      it.each([
        ['the last byte', (o: Buffer) => o.length - 1],
        ['half the payload', (o: Buffer) => Math.floor((headerLength(o) + o.length) / 2)],
        ['all the payload', (o: Buffer) => headerLength(o)],
        ['half the header', (o: Buffer) => Math.floor(headerLength(o) / 2)],
        ['all but 5 bytes', () => 5],
      ] as Array<[string, (o: Buffer) => number]>)('truncated by %s', async (what, keep) => {
        await expectRefused(original.subarray(0, keep(original)), `truncated: ${what}`);
      });

      if (codecIndependent) {
        it('an empty object', async () => {
          await expectRefused(Buffer.alloc(0), 'empty');
        });
      }

      const appended: Array<[string, Buffer | ((o: Buffer) => Buffer)]> = [
        ['one zero byte', Buffer.alloc(1)],
        ['512 zero bytes', Buffer.alloc(512)],
        ['text', Buffer.from('trailing junk\n')],
        ['a second header', Buffer.from('WALVAULT\x01\x00\x00\x00\x02{}', 'latin1')],
        ['the payload again', (o: Buffer) => o.subarray(headerLength(o))],
      ];
      for (const [what, tail] of appended) {
        const extraOf = (o: Buffer): Buffer => (typeof tail === 'function' ? tail(o) : tail);
        // The gap needs the bytes to decide; the payload-again tail is never all zeros.
        it(`bytes appended: ${what}`, async () => {
          await expectRefused(Buffer.concat([original, extraOf(original)]), `appended ${what}`);
        });
      }

      it('renamed to another segment: NotFound for the old name, integrity failure for the new one', async () => {
        const other = '000000010000000000000009';
        const movedKey = objectKey({ fileName: other, sha256: manifestSha(MAJOR, TARGET), extension: ext, encrypted });
        await storage.put(movedKey, original);
        await storage.delete([key]);
        try {
          const moved = await failedFetch(reader(), other);
          expectIntegrity(moved.err, 'moved object');
          expect(moved.left).toEqual([]);
          expectWalvault((await failedFetch(reader(), TARGET)).err, NotFoundError, ExitCode.notFound);
        } finally {
          await storage.delete([movedKey]);
          await storage.put(key, original);
        }
      });

      // Key tampering is decided before any codec runs.
      if (codecIndependent) {
        it('renamed over another archived segment (its key and checksum): integrity failure', async () => {
          const victim = '000000010000000000000007';
          const victimKey = pushed.get(victim)!.key;
          const victimBytes = await storage.getBuffer(victimKey);
          await overwrite(storage, victimKey, original);
          try {
            const { err, left } = await failedFetch(reader(), victim);
            expectIntegrity(err, 'object of segment 8 under the key of segment 7');
            expect(left).toEqual([]);
          } finally {
            await overwrite(storage, victimKey, victimBytes);
          }
        });

        it('the key claims another checksum: integrity failure', async () => {
          const forgedKey = objectKey({
            fileName: TARGET,
            sha256: manifestSha(MAJOR, '000000010000000000000007'),
            extension: ext,
            encrypted,
          });
          await storage.put(forgedKey, original);
          await storage.delete([key]);
          try {
            expectIntegrity((await failedFetch(reader(), TARGET)).err, 'forged checksum in key');
          } finally {
            await storage.delete([forgedKey]);
            await storage.put(key, original);
          }
        });

        it('a second, different version of a finished segment: integrity failure, not a choice', async () => {
          const extraKey = objectKey({ fileName: TARGET, sha256: 'f'.repeat(64), extension: ext, encrypted });
          await storage.put(extraKey, original);
          try {
            const { err, left } = await failedFetch(reader(), TARGET);
            expectIntegrity(err, 'two versions');
            expect(left).toEqual([]);
          } finally {
            await storage.delete([extraKey]);
          }
        });

        it('the key lost or gained the .enc suffix: integrity failure', async () => {
          const flippedKey = objectKey({ fileName: TARGET, sha256: manifestSha(MAJOR, TARGET), extension: ext, encrypted: !encrypted });
          await storage.put(flippedKey, original);
          await storage.delete([key]);
          try {
            // The header is checked before any key is needed, so this holds with or without one.
            expectIntegrity((await failedFetch(reader(KEY), TARGET)).err, 'encryption flag');
          } finally {
            await storage.delete([flippedKey]);
            await storage.put(key, original);
          }
        });
      }

      it('the object is intact again after the damage tests', async () => {
        expect((await storage.getBuffer(key)).equals(original)).toBe(true);
        expect(sha256((await restoreFile(reader(), TARGET)).bytes)).toBe(manifestSha(MAJOR, TARGET));
        expect(await findVersions(reader(), TARGET)).toHaveLength(1);
      });
    });

    if (encrypted) {
      it('without a key: CryptoError (exit 128), nothing written', async () => {
        const { err, left } = await failedFetch(reader(null), TARGET);
        const e = expectWalvault(err, CryptoError, ExitCode.integrity);
        expect(e.message).toContain(KEY.keyId);
        expect(left).toEqual([]);
      });

      it('with another key: CryptoError naming both key ids (exit 128), nothing written', async () => {
        const { err, left } = await failedFetch(reader(OTHER_KEY), TARGET);
        const e = expectWalvault(err, CryptoError, ExitCode.integrity);
        expect(e.message).toContain(KEY.keyId);
        expect(e.message).toContain(OTHER_KEY.keyId);
        expect(left).toEqual([]);
      });
    } else {
      it('plain objects stay readable when a key is configured', async () => {
        const restored = await restoreFile(reader(OTHER_KEY), TARGET);
        expect(sha256(restored.bytes)).toBe(manifestSha(MAJOR, TARGET));
      });
    }
  });
}
