/**
 * The reuse sink over a real BackupPacker and MemoryStorage: a full backup records piece
 * checksums, an incremental on it stores unchanged pieces as references to the parent's packs and
 * the rest in its own, a second incremental resolves references to the backup that owns the bytes.
 * Every file is read back through its extents (extentRef, loadBackupObject) and compared.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { CHUNK_BYTES, decodeCatalog, extentRef, type Catalog, type CatalogEntry } from '../../../src/backup/catalog.js';
import type { EntryHeader } from '../../../src/backup/entry-sink.js';
import { loadBackupObject } from '../../../src/backup/objects.js';
import { BackupPacker, type PackedBackup } from '../../../src/backup/packer.js';
import { ReuseSink, reuseIndex, sliceExtents } from '../../../src/backup/reuse.js';
import { IntegrityError } from '../../../src/common/errors.js';
import { silentLogger } from '../../../src/common/log.js';
import { parseLsn } from '../../../src/segment/lsn.js';
import { MemoryStorage } from '../../../src/storage/memory.js';

const MiB = CHUNK_BYTES;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function header(path: string, size: number): EntryHeader {
  return { type: 'file', tablespace: null, path, mode: 0o600, mtime: 1764637200, size, target: null };
}

interface Stored {
  readonly packed: PackedBackup;
  readonly catalog: Catalog;
}

/** One backup of `files` through ReuseSink -> BackupPacker, fed in 7 777-byte pieces (crossing every boundary). */
async function backup(
  ctx: ArchiveContext,
  name: string,
  files: ReadonlyMap<string, Buffer>,
  parent: { name: string; catalog: Catalog } | null,
  markIncremental = false,
): Promise<Stored> {
  const packer = new BackupPacker(ctx, { name, systemId: '7000000000000000001', parallel: 2, packSize: 3 * MiB }, silentLogger());
  const sink = new ReuseSink(packer, { index: parent ? reuseIndex(parent.name, parent.catalog) : null, markIncremental });
  await sink.begin({ startLsn: parseLsn('0/2000028'), startTimeline: 1, tablespaces: [{ oid: null, location: null, sizeBytes: null }] });
  await sink.entry({ type: 'dir', tablespace: null, path: 'base', mode: 0o700, mtime: 1764637200, size: 0, target: null });
  for (const [path, content] of files) {
    await sink.entry(header(path, content.length));
    for (let off = 0; off < content.length; off += 7777) await sink.data(content.subarray(off, off + 7777));
    await sink.entryEnd();
  }
  await sink.manifest(Buffer.from('{}\n'));
  await sink.end({ endLsn: parseLsn('0/2000100'), endTimeline: 1 });
  const catalog = decodeCatalog(await loadBackupObject(ctx, packer.packed.catalog), packer.packed.catalog.key, name);
  return { packed: packer.packed, catalog };
}

async function readBack(ctx: ArchiveContext, name: string, e: CatalogEntry, catalogs: Map<string, Catalog>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const x of e.extents) {
    const bytes = await loadBackupObject(ctx, extentRef(name, x, catalogs));
    parts.push(bytes.subarray(x[1], x[1] + x[2]));
  }
  return Buffer.concat(parts);
}

const entryOf = (c: Catalog, path: string): CatalogEntry => c.entries.find((e) => e.path === path)!;
/** Bytes of a file's extents by owner ('own' for the backup's own packs). */
function bytesByOwner(e: CatalogEntry): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of e.extents) out[x[3] ?? 'own'] = (out[x[3] ?? 'own'] ?? 0) + x[2];
  return out;
}

describe('ReuseSink', () => {
  it('stores unchanged pieces by reference, resolved to their owner, and every file reads back exactly', async () => {
    const ctx: ArchiveContext = { storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() };
    const big = randomBytes(3 * MiB + 12345);
    const grown = randomBytes(2 * MiB);
    const truncated = randomBytes(3 * MiB);
    const small = randomBytes(10_000);
    const smallChanged = randomBytes(20_000);
    const full = new Map<string, Buffer>([
      ['base/1/big', big],
      ['base/1/onepiece', Buffer.from(big)],
      ['base/1/grown', grown],
      ['base/1/truncated', truncated],
      ['base/1/small', small],
      ['base/1/small-changed', smallChanged],
      ['base/1/empty', Buffer.alloc(0)],
    ]);
    const A = '20261202T010000F';
    const a = await backup(ctx, A, full, null);
    // A full backup is self-contained and records the piece checksums of every file over 1 MiB.
    expect(a.packed.reusedBytes).toBe(0);
    expect(a.packed.depends).toEqual([]);
    expect(entryOf(a.catalog, 'base/1/big').chunks).toEqual([0, 1, 2, 3].map((i) => sha(big.subarray(i * MiB, (i + 1) * MiB))));
    expect(entryOf(a.catalog, 'base/1/small').chunks).toBeUndefined();
    for (const e of a.catalog.entries) expect(e.extents.every((x) => x[3] === undefined)).toBe(true);

    const onepiece = Buffer.from(big);
    onepiece[MiB + 100] = onepiece[MiB + 100]! ^ 0xff;
    const changedSmall = Buffer.from(smallChanged);
    changedSmall[5] = changedSmall[5]! ^ 1;
    const second = new Map<string, Buffer>([
      ['base/1/big', big],
      ['base/1/onepiece', onepiece],
      ['base/1/grown', Buffer.concat([grown, randomBytes(MiB + MiB / 2)])],
      ['base/1/truncated', truncated.subarray(0, MiB + MiB / 2)],
      ['base/1/small', small],
      ['base/1/small-changed', changedSmall],
      ['base/1/empty', Buffer.alloc(0)],
      ['base/1/new', randomBytes(2 * MiB + 1)],
    ]);
    const B = '20261202T020000I';
    const b = await backup(ctx, B, second, { name: A, catalog: a.catalog });
    const cb = b.catalog;
    expect(bytesByOwner(entryOf(cb, 'base/1/big'))).toEqual({ [A]: big.length });
    expect(bytesByOwner(entryOf(cb, 'base/1/onepiece'))).toEqual({ [A]: big.length - MiB, own: MiB });
    expect(bytesByOwner(entryOf(cb, 'base/1/grown'))).toEqual({ [A]: 2 * MiB, own: MiB + MiB / 2 });
    // Piece 1 of the truncated file is half a piece now: not the parent's piece 1.
    expect(bytesByOwner(entryOf(cb, 'base/1/truncated'))).toEqual({ [A]: MiB, own: MiB / 2 });
    expect(bytesByOwner(entryOf(cb, 'base/1/small'))).toEqual({ [A]: small.length });
    expect(bytesByOwner(entryOf(cb, 'base/1/small-changed'))).toEqual({ own: changedSmall.length });
    expect(bytesByOwner(entryOf(cb, 'base/1/new'))).toEqual({ own: 2 * MiB + 1 });
    expect(entryOf(cb, 'base/1/empty').extents).toEqual([]);
    expect(b.packed.depends).toEqual([A]);
    expect(b.packed.reusedBytes).toBe(big.length + (big.length - MiB) + 2 * MiB + MiB + small.length);
    expect(entryOf(cb, 'base/1/grown').chunks).toHaveLength(4);

    // A third backup on B: bytes B only referenced are owned by A, never by B.
    const C = '20261202T030000I';
    const c = await backup(ctx, C, second, { name: B, catalog: cb });
    expect(bytesByOwner(entryOf(c.catalog, 'base/1/big'))).toEqual({ [A]: big.length });
    expect(bytesByOwner(entryOf(c.catalog, 'base/1/onepiece'))).toEqual({ [A]: big.length - MiB, [B]: MiB });
    expect(bytesByOwner(entryOf(c.catalog, 'base/1/new'))).toEqual({ [B]: 2 * MiB + 1 });
    expect(c.packed.depends).toEqual([A, B]);
    expect(c.packed.reusedBytes).toBe([...second.values()].reduce((n, f) => n + f.length, 0));
    expect(c.packed.packs).toBe(0);

    const catalogs = new Map([
      [A, a.catalog],
      [B, b.catalog],
      [C, c.catalog],
    ]);
    for (const [name, files, cat] of [
      [A, full, a.catalog],
      [B, second, b.catalog],
      [C, second, c.catalog],
    ] as const) {
      for (const [path, content] of files) {
        const e = entryOf(cat, path);
        expect(e.sha256, `${name} ${path}`).toBe(sha(content));
        expect((await readBack(ctx, name, e, catalogs)).equals(content), `${name} ${path} reads back`).toBe(true);
      }
    }
  });

  it('marks INCREMENTAL files of a block-level incremental and only those', async () => {
    const ctx: ArchiveContext = { storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() };
    const files = new Map([
      ['base/5/INCREMENTAL.16384', randomBytes(3000)],
      ['base/5/16385', randomBytes(100)],
    ]);
    const { catalog } = await backup(ctx, '20261202T010000I', files, null, true);
    expect(entryOf(catalog, 'base/5/INCREMENTAL.16384').incremental).toBe(true);
    expect(entryOf(catalog, 'base/5/16385').incremental).toBeUndefined();
  });

  it('slices owner extents exactly and refuses a range the parent does not cover', () => {
    const extents = [
      [1, 100, 10, 'A'],
      [2, 0, 20, 'B'],
    ] as const;
    expect(sliceExtents(extents, 5, 10, 'f')).toEqual([
      [1, 105, 5, 'A'],
      [2, 0, 5, 'B'],
    ]);
    expect(sliceExtents(extents, 10, 20, 'f')).toEqual([[2, 0, 20, 'B']]);
    expect(() => sliceExtents(extents, 25, 10, 'f')).toThrow(IntegrityError);
  });
});
