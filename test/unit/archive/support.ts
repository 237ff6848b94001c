/**
 * Helpers shared by the archive unit tests: contexts over either storage driver, real fixture
 * files written to a temp directory, deterministic test keys, and whole-archive snapshots that let
 * a test prove "nothing was written".
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { CompressionSpec } from '../../../src/codec/codec.js';
import { EncryptionKey } from '../../../src/codec/encryption-key.js';
import { type WalvaultError } from '../../../src/common/errors.js';
import { silentLogger } from '../../../src/common/log.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { PosixStorage } from '../../../src/storage/posix.js';
import type { Storage } from '../../../src/storage/types.js';
import { fixtureEntry, fixtureManifest, loadFixture } from '../../support/fixtures.js';

export type DriverName = 'memory' | 'posix';
export const DRIVERS: readonly DriverName[] = ['memory', 'posix'];

/** Temp directories made by one test file; remove them with `removeTempDirs` in afterAll/afterEach. */
const tempDirs: string[] = [];

export async function tempDir(label: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `walvault-archive-${label}-`));
  tempDirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  const dirs = tempDirs.splice(0);
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}

export async function newStorage(driver: DriverName): Promise<Storage> {
  if (driver === 'memory') return new MemoryStorage();
  return new PosixStorage({ root: await tempDir('store') });
}

/** A fixed, test-only AES-256 key: 32 bytes of `fill`. Never produced by the code under test. */
export function testKey(fill: number): EncryptionKey {
  return new EncryptionKey(Buffer.alloc(32, fill));
}

export function makeCtx(
  storage: Storage,
  opts: { compression?: CompressionSpec; encryption?: EncryptionKey | undefined } = {},
): ArchiveContext {
  return {
    storage,
    compression: opts.compression ?? { name: 'zstd', level: 1 },
    ...(opts.encryption ? { encryption: opts.encryption } : {}),
    log: silentLogger(),
  };
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Writes `bytes` as `dir/name` and returns the path (what archive_command's %p would be). */
export async function writeInput(dir: string, name: string, bytes: Uint8Array): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, bytes);
  return p;
}

/** Writes the real fixture `name` of PostgreSQL `major` into `dir`; returns its path. */
export async function writeFixture(dir: string, major: number, name: string): Promise<string> {
  return writeInput(dir, name, loadFixture(major, name));
}

export function manifestSha(major: number, name: string): string {
  return fixtureEntry(major, name).sha256;
}

/** The identity pushes of `major`'s fixtures must create (facts PostgreSQL reported). */
export function observedOf(major: number): { systemId: string; pgMajor: number; walSegSize: number } {
  const m = fixtureManifest(major);
  return { systemId: m.systemId, pgMajor: m.major, walSegSize: m.walSegSize };
}

/** Every object with its SHA-256, so a test can prove an operation changed nothing at all. */
export async function snapshot(storage: Storage): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const obj of storage.list('')) out.set(obj.key, sha256(await storage.getBuffer(obj.key)));
  return out;
}

export async function keysUnder(storage: Storage, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const obj of storage.list(prefix)) keys.push(obj.key);
  return keys;
}

/** Everything in a directory (hidden temp files included). */
export async function dirEntries(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** Settles `p` and returns what it threw; fails the test if it resolved. */
export async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  let resolved = false;
  const err = await p.then(
    () => {
      resolved = true;
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(resolved, 'expected the promise to reject').toBe(false);
  return err;
}

/** What `fn` throws; fails the test if it returns. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  expect.fail('expected the call to throw');
}

export function expectWalvault<T extends WalvaultError>(err: unknown, type: abstract new (...args: never[]) => T, exitCode: number): T {
  expect(err).toBeInstanceOf(type);
  expect((err as WalvaultError).exitCode).toBe(exitCode);
  expect((err as Error).message).toMatch(/^unable to /);
  return err as T;
}

/** A copy of `bytes` with the byte at `pos` inverted. */
export function flipByte(bytes: Buffer, pos: number): Buffer {
  const out = Buffer.from(bytes);
  out[pos] = (out[pos] as number) ^ 0xff;
  return out;
}

/**
 * Replaces an object's bytes behind the driver's back, the way disk or bucket damage would: on posix
 * the file is rewritten in place (same inode, no temp file); in memory it is simply replaced.
 */
export async function overwrite(storage: Storage, key: string, bytes: Buffer): Promise<void> {
  if (storage instanceof PosixStorage) await writeFile(path.join(storage.root, ...key.split('/')), bytes);
  else await storage.put(key, bytes);
}
