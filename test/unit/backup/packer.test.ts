import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { decodeCatalog, packRef, type Catalog, type Extent } from '../../../src/backup/catalog.js';
import type { EntryHeader } from '../../../src/backup/entry-sink.js';
import { catalogKey, manifestKey } from '../../../src/backup/layout.js';
import { loadBackupObject } from '../../../src/backup/objects.js';
import { decodeObjectHeader } from '../../../src/archive/object-header.js';
import { BackupPacker } from '../../../src/backup/packer.js';
import { silentLogger } from '../../../src/common/log.js';
import { StorageError } from '../../../src/common/errors.js';
import { parseLsn } from '../../../src/segment/lsn.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import type { PutBody, PutOptions } from '../../../src/storage/types.js';

const NAME = '20261202T010000F';

/** Real memory storage whose puts wait at a gate the test opens: uploads "behind". */
class GatedStorage extends MemoryStorage {
  running = 0;
  maxRunning = 0;
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;
  failKeys = new Set<string>();

  close_gate(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  open_gate(): void {
    this.open();
  }
  override async put(key: string, body: PutBody, opts?: PutOptions): Promise<void> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      await this.gate;
      if (this.failKeys.has(key)) throw new StorageError(`unable to write object '${key}' to memory: disk full`);
      await super.put(key, body, opts);
    } finally {
      this.running--;
    }
  }
}

function ctxOf(storage: MemoryStorage): ArchiveContext {
  return { storage, compression: { name: 'zstd', level: 1 }, log: silentLogger() };
}

interface Input {
  header: EntryHeader;
  content: Buffer;
}

function file(path: string, content: Buffer, extra: Partial<EntryHeader> = {}): Input {
  return {
    header: { type: 'file', tablespace: null, path, mode: 0o600, mtime: 1764637200, size: content.length, target: null, ...extra },
    content,
  };
}

/** Feeds entries as the BASE_BACKUP reader does: ≤32 KiB chunks, awaiting every call. */
async function feed(
  packer: BackupPacker,
  inputs: Input[],
  manifest: Buffer = Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}\n'),
): Promise<void> {
  await packer.begin({
    startLsn: parseLsn('0/2000028'),
    startTimeline: 1,
    tablespaces: [
      { oid: 16400, location: '/srv/ts1', sizeBytes: 1000 },
      { oid: null, location: null, sizeBytes: 2000 },
    ],
  });
  for (const { header, content } of inputs) {
    await packer.entry(header);
    if (header.type !== 'file') continue;
    for (let off = 0; off < content.length; off += 32768) await packer.data(content.subarray(off, off + 32768));
    await packer.entryEnd();
  }
  for (let off = 0; off < manifest.length; off += 7) await packer.manifest(manifest.subarray(off, off + 7));
  await packer.end({ endLsn: parseLsn('0/2000100'), endTimeline: 1 });
}

async function readBack(ctx: ArchiveContext, catalog: Catalog, extents: readonly Extent[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const [pack, off, len, owner] of extents) {
    expect(owner).toBeUndefined(); // a full backup reads only its own packs
    parts.push((await loadBackupObject(ctx, packRef(NAME, catalog, pack))).subarray(off, off + len));
  }
  return Buffer.concat(parts);
}

describe('BackupPacker', () => {
  it('stores thousands of small files and one large file with exact extents and checksums', async () => {
    const storage = new MemoryStorage();
    const ctx = ctxOf(storage);
    const inputs: Input[] = [
      file('backup_label', Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\n')),
    ];
    inputs.push({
      header: { type: 'dir', tablespace: null, path: 'base', mode: 0o700, mtime: 1764637201, size: 0, target: null },
      content: Buffer.alloc(0),
    });
    inputs.push({
      header: { type: 'dir', tablespace: null, path: 'pg_wal', mode: 0o700, mtime: 1764637202, size: 0, target: null },
      content: Buffer.alloc(0),
    });
    inputs.push({
      header: { type: 'link', tablespace: null, path: 'pg_tblspc/16400', mode: 0o777, mtime: 1764637203, size: 0, target: '/srv/ts1' },
      content: Buffer.alloc(0),
    });
    let seed = 1;
    for (let i = 0; i < 3000; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      inputs.push(file(`base/1/${10000 + i}`, randomBytes(seed % 3000)));
    }
    inputs.push(file('base/1/big', randomBytes(5 * 1024 * 1024 + 123), { mode: 0o640 }));
    inputs.push(file('PG_15_202209061/16401/1', randomBytes(4000), { tablespace: 16400 }));
    inputs.push(file('global/pg_control', randomBytes(8192)));
    const packer = new BackupPacker(
      ctx,
      { name: NAME, systemId: '7000000000000000001', parallel: 3, packSize: 256 * 1024 },
      silentLogger(),
    );
    await feed(packer, inputs);
    const packed = packer.packed;

    const catalog = decodeCatalog(await loadBackupObject(ctx, packed.catalog), catalogKey(NAME), NAME);
    expect(packed.catalog.key).toBe(catalogKey(NAME));
    expect(catalog.entries).toHaveLength(inputs.length);
    expect(packed.entries).toBe(inputs.length);
    expect(packed.files).toBe(inputs.length - 3);
    const raw = inputs.reduce((n, i) => n + i.content.length, 0);
    expect(packed.rawBytes).toBe(raw);
    expect(packed.packs).toBe(Math.ceil(raw / (256 * 1024)));
    expect(catalog.packs).toHaveLength(packed.packs);
    expect(packed.tablespaceBytes.get(16400)).toBe(4000);
    expect(packed.tablespaceBytes.get(null)).toBe(raw - 4000);
    expect(packed.backupLabel).toMatch(/^START WAL LOCATION: 0\/2000028/);
    for (let i = 0; i < inputs.length; i++) {
      const { header, content } = inputs[i]!;
      const e = catalog.entries[i]!;
      expect([e.type, e.tablespace, e.path, e.mode, e.mtime, e.target]).toEqual([
        header.type,
        header.tablespace,
        header.path,
        header.mode,
        header.mtime,
        header.target,
      ]);
      if (header.type !== 'file') {
        expect(e.extents).toEqual([]);
        continue;
      }
      expect(e.size).toBe(content.length);
      expect(e.sha256).toBe(createHash('sha256').update(content).digest('hex'));
      if (content.length === 0) expect(e.extents).toEqual([]);
      // Spot-check every 97th file and the big one by reading the packs back.
      if (i % 97 === 0 || header.path === 'base/1/big') expect((await readBack(ctx, catalog, e.extents)).equals(content)).toBe(true);
    }
    const big = catalog.entries.find((e) => e.path === 'base/1/big')!;
    expect(big.extents.length).toBeGreaterThan(20);
    const manifest = await loadBackupObject(ctx, packed.manifest!);
    expect(packed.manifest!.key).toBe(manifestKey(NAME));
    expect(manifest.toString()).toBe('{"PostgreSQL-Backup-Manifest-Version": 1}\n');
    // Stored bytes: every object of the backup, as the storage holds them.
    let stored = 0;
    for await (const o of storage.list(`backups/${NAME}/`)) stored += o.size;
    expect(packed.storedBytes).toBe(stored);
  });

  it('compresses packs on zstd threads while they fill: files read back, every frame records its size', async () => {
    const storage = new MemoryStorage();
    const ctx: ArchiveContext = { ...ctxOf(storage), compression: { name: 'zstd', level: 3 } };
    const packSize = 3 * 1024 * 1024 + 17;
    // Compressible pages with random holes, so frames are neither trivial nor incompressible.
    const big = Buffer.alloc(10 * 1024 * 1024 + 5000);
    for (let off = 0; off < big.length; off += 8192) {
      big.write(`page ${off} `.repeat(40), off);
      randomBytes(512).copy(big, off + 4096);
    }
    const inputs = [file('base/1/a', randomBytes(70_000)), file('base/1/big', big), file('base/1/b', randomBytes(1_500_000))];
    const packer = new BackupPacker(ctx, { name: NAME, systemId: '1', parallel: 2, packSize, compressThreads: 2 }, silentLogger());
    await feed(packer, inputs);
    const packed = packer.packed;
    const catalog = decodeCatalog(await loadBackupObject(ctx, packed.catalog), catalogKey(NAME), NAME);
    for (const [i, { content }] of inputs.entries()) {
      const e = catalog.entries[i]!;
      expect(e.sha256).toBe(createHash('sha256').update(content).digest('hex'));
      expect((await readBack(ctx, catalog, e.extents)).equals(content)).toBe(true);
    }
    const raw = inputs.reduce((n, x) => n + x.content.length, 0);
    expect(packed.packs).toBe(Math.ceil(raw / packSize));
    const zstd = (await import('zstd-napi/binding.js')).default;
    for (let pack = 1; pack <= packed.packs; pack++) {
      const ref = packRef(NAME, catalog, pack);
      const stored = await storage.getBuffer(ref.key);
      const header = decodeObjectHeader(stored, ref.key)!;
      // The last pack is shorter than packSize: its frame must still state its own size.
      expect(zstd.getFrameContentSize(stored.subarray(header.payloadOffset))).toBe(ref.size);
      expect(ref.size).toBe(pack < packed.packs ? packSize : raw - (packed.packs - 1) * packSize);
      expect((await loadBackupObject(ctx, ref)).length).toBe(ref.size);
    }
  });

  it('stops taking data while uploads are behind: bytes in flight stay bounded', async () => {
    const storage = new GatedStorage();
    const packSize = 64 * 1024;
    const maxInFlight = 3 * packSize;
    const packer = new BackupPacker(
      ctxOf(storage),
      { name: NAME, systemId: '1', parallel: 2, packSize, maxInFlightBytes: maxInFlight },
      silentLogger(),
    );
    await packer.begin({
      startLsn: parseLsn('0/2000028'),
      startTimeline: 1,
      tablespaces: [{ oid: null, location: null, sizeBytes: null }],
    });
    const size = 40 * packSize;
    await packer.entry(file('base/1/big', Buffer.alloc(size)).header);
    storage.close_gate();
    let accepted = 0;
    const chunk = Buffer.alloc(8192, 1);
    let blocked = false;
    while (accepted < size) {
      const p = packer.data(chunk);
      const settled = await Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 50))]);
      if (!settled) {
        blocked = true;
        break;
      }
      accepted += chunk.length;
    }
    expect(blocked).toBe(true);
    // Accepted: the sealed packs in flight plus the one being filled, never more.
    expect(accepted).toBeLessThanOrEqual(maxInFlight + packSize);
    expect(storage.maxRunning).toBeLessThanOrEqual(2);
    storage.open_gate();
  });

  it('never has more pack bytes in flight than its budget over a whole backup with slow uploads', async () => {
    const storage = new GatedStorage();
    const packSize = 32 * 1024;
    const packer = new BackupPacker(
      ctxOf(storage),
      { name: NAME, systemId: '1', parallel: 4, packSize, maxInFlightBytes: 2 * packSize },
      silentLogger(),
    );
    let inFlight = 0;
    let maxSeen = 0;
    const orig = storage.put.bind(storage);
    storage.put = async (key, body, opts) => {
      const n = key.includes('/packs/') ? 1 : 0;
      inFlight += n;
      maxSeen = Math.max(maxSeen, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      try {
        await orig(key, body, opts);
      } finally {
        inFlight -= n;
      }
    };
    const inputs = Array.from({ length: 50 }, (_, i) => file(`base/1/${i}`, randomBytes(20_000)));
    await feed(packer, inputs);
    expect(maxSeen).toBeLessThanOrEqual(2);
    expect(packer.maxInFlightSeen).toBeLessThanOrEqual(2 * packSize);
    expect(packer.packed.packs).toBe(Math.ceil((50 * 20_000) / packSize));
  });

  it('fails the backup at the next call when an upload fails, and stores no catalog', async () => {
    const storage = new GatedStorage();
    storage.failKeys.add(`backups/${NAME}/packs/000000001`);
    const packer = new BackupPacker(ctxOf(storage), { name: NAME, systemId: '1', parallel: 1, packSize: 16 * 1024 }, silentLogger());
    await expect(feed(packer, [file('a', randomBytes(100_000))])).rejects.toThrow(/disk full/);
    expect(await storage.head(catalogKey(NAME))).toBeUndefined();
  });

  it('refuses a stream that breaks the entry protocol', async () => {
    const packer = new BackupPacker(ctxOf(new MemoryStorage()), { name: NAME, systemId: '1', parallel: 1 }, silentLogger());
    await packer.begin({ startLsn: parseLsn('0/2000028'), startTimeline: 1, tablespaces: [] });
    await packer.entry(file('a', Buffer.alloc(4)).header);
    await expect(packer.data(Buffer.alloc(5))).rejects.toThrow(
      /unable to store base backup '20261202T010000F': file 'a' got more than its 4 bytes/,
    );
    await packer.data(Buffer.alloc(3));
    await expect(packer.entryEnd()).rejects.toThrow(/ended after 3 of 4 bytes/);
    await expect(packer.end({ endLsn: parseLsn('0/3000000'), endTimeline: 1 })).rejects.toThrow(/inside file 'a'/);
  });
});

describe('BackupPacker, file checksums from PostgreSQL manifest', () => {
  /** SHA-256 test vectors (FIPS 180-2): "abc" and the empty string. */
  const SHA_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
  const SHA_EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

  function pgManifest(files: Array<{ path: string; size: number; alg?: string; checksum?: string }>): Buffer {
    const rows = files.map((f) => {
      const sum = f.alg === 'NONE' ? '' : `, "Checksum-Algorithm": "${f.alg ?? 'SHA256'}", "Checksum": "${f.checksum}"`;
      return `{ "Path": ${JSON.stringify(f.path)}, "Size": ${f.size}, "Last-Modified": "2026-12-01 10:00:00 GMT"${sum} }`;
    });
    const body = `{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n${rows.join(',\n')}\n],\n"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n],\n`;
    return Buffer.from(`${body}"Manifest-Checksum": "${createHash('sha256').update(body).digest('hex')}"}\n`);
  }

  const packerOf = (ctx: ArchiveContext): BackupPacker =>
    new BackupPacker(ctx, { name: NAME, systemId: '7000000000000000001', parallel: 2, fileChecksums: 'manifest' }, silentLogger());

  it("records the manifest's SHA-256 of each file (tablespace files under pg_tblspc/<oid>), not one of its own", async () => {
    const ctx = ctxOf(new MemoryStorage());
    const packer = packerOf(ctx);
    // The manifest says "abc" for a file that holds "abd": the catalog shows where the value came from.
    const manifest = pgManifest([
      { path: 'base/1/1', size: 3, checksum: SHA_ABC.toUpperCase() },
      { path: 'pg_tblspc/16400/PG_15_202209061/16401/1', size: 0, checksum: SHA_EMPTY },
    ]);
    await feed(
      packer,
      [file('base/1/1', Buffer.from('abd')), file('PG_15_202209061/16401/1', Buffer.alloc(0), { tablespace: 16400 })],
      manifest,
    );
    const catalog = decodeCatalog(await loadBackupObject(ctx, packer.packed.catalog), catalogKey(NAME), NAME);
    expect(catalog.entries.map((e) => [e.path, e.sha256])).toEqual([
      ['base/1/1', SHA_ABC],
      ['PG_15_202209061/16401/1', SHA_EMPTY],
    ]);
    expect(await readBack(ctx, catalog, catalog.entries[0]!.extents)).toEqual(Buffer.from('abd'));
  });

  it('fails the backup when the manifest has no SHA-256 of a file, or another size', async () => {
    const cases: Array<[Parameters<typeof pgManifest>[0], RegExp]> = [
      [[], /backup_manifest gives no SHA-256 of 'base\/1\/1'/],
      [[{ path: 'base/1/1', size: 3, alg: 'CRC32C', checksum: '01020304' }], /gives no SHA-256 of 'base\/1\/1'/],
      [[{ path: 'base/1/1', size: 3, alg: 'NONE' }], /gives no SHA-256 of 'base\/1\/1'/],
      [[{ path: 'base/1/1', size: 4, checksum: SHA_ABC }], /'base\/1\/1' has 3 bytes, PostgreSQL's backup_manifest says 4/],
    ];
    for (const [files, message] of cases) {
      const packer = packerOf(ctxOf(new MemoryStorage()));
      await expect(feed(packer, [file('base/1/1', Buffer.from('abc'))], pgManifest(files))).rejects.toThrow(message);
    }
    const damaged = Buffer.from(
      pgManifest([{ path: 'base/1/1', size: 3, checksum: SHA_ABC }])
        .toString()
        .replace('"Size": 3', '"Size":  3'),
    );
    await expect(feed(packerOf(ctxOf(new MemoryStorage())), [file('base/1/1', Buffer.from('abc'))], damaged)).rejects.toThrow(
      /manifest checksum mismatch/,
    );
  });
});
