/**
 * Packs of catalog format 3 record the SHA-256 of their compressed payload (`digest: 'payload'`),
 * not of their original bytes: sealing hashes only the compressed bytes, and loading checks that
 * hash before it decodes, so damage to any stored byte is still an IntegrityError naming the key,
 * for every codec (including `none` and those without a checksum of their own).
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { decodeObjectHeader } from '../../../src/archive/object-header.js';
import { sealBackupObject } from '../../../src/backup/object-encode.js';
import { loadBackupObject, loadBackupObjectInto, storeEncodedObject } from '../../../src/backup/objects.js';
import { PackEncoder } from '../../../src/backup/pack-encoder.js';
import { getCodec } from '../../../src/codec/codec.js';
import { EncryptionKey } from '../../../src/codec/encryption.js';
import { IntegrityError } from '../../../src/common/errors.js';
import { codecCtx } from './codec-ctx.js';

const KEY = 'backups/20261202T010000F/packs/000000007';
const PACK = 256 * 1024;

/** Half random, half repetitive: compresses, but not to nothing. */
const content = (n: number): Buffer => Buffer.concat([randomBytes(n >> 1), Buffer.alloc(n - (n >> 1), 'pg_data ')]);

async function storePack(ctx: ArchiveContext, bytes: Buffer): Promise<Awaited<ReturnType<typeof storeEncodedObject>>> {
  const encoder = new PackEncoder(getCodec(ctx.compression.name, ctx.compression.level), 0, PACK);
  for (let off = 0; off < bytes.length; off += 40_000) await encoder.write(bytes.subarray(off, off + 40_000));
  const sealed = await encoder.seal();
  return storeEncodedObject(ctx, KEY, sealBackupObject(ctx, KEY, { size: sealed.size }, sealed.compressor, '7000000000000000001'));
}

async function flip(ctx: ArchiveContext, at: (objectLength: number, payloadOffset: number) => number): Promise<void> {
  const raw = await ctx.storage.getBuffer(KEY);
  const header = decodeObjectHeader(raw, KEY)!;
  raw[at(raw.length, header.payloadOffset)]! ^= 0x10;
  await ctx.storage.put(KEY, raw, { contentLength: raw.length });
}

describe('pack payload digests (catalog format 3)', () => {
  for (const name of ['zstd', 'lz4', 'gzip', 'brotli', 'none'] as const) {
    it(`${name}: records the compressed payload's SHA-256, reads the pack back, refuses a flipped payload byte`, async () => {
      const ctx = codecCtx(name);
      const bytes = content(PACK); // a full pack
      const { ref } = await storePack(ctx, bytes);
      const raw = await ctx.storage.getBuffer(KEY);
      const header = decodeObjectHeader(raw, KEY)!;
      expect(ref.digest).toBe('payload');
      expect(header.meta.digest).toBe('payload');
      expect(header.meta.size).toBe(bytes.length);
      expect(ref.sha256).toBe(createHash('sha256').update(raw.subarray(header.payloadOffset)).digest('hex'));
      expect(ref.sha256).toBe(header.meta.sha256);
      expect((await loadBackupObject(ctx, ref)).equals(bytes)).toBe(true);
      expect((await loadBackupObjectInto(ctx, ref, Buffer.alloc(PACK))).equals(bytes)).toBe(true);

      await flip(ctx, (len, off) => off + Math.floor((len - off) / 2));
      await expect(loadBackupObject(ctx, ref)).rejects.toThrow(IntegrityError);
      await expect(loadBackupObject(ctx, ref)).rejects.toThrow(new RegExp(`${KEY}.*compressed payload`));
      await expect(loadBackupObjectInto(ctx, ref, Buffer.alloc(PACK))).rejects.toThrow(/compressed payload/);
    });
  }

  it('a short last pack too, and an encrypted pack: a flipped byte fails authentication', async () => {
    const ctx = codecCtx('zstd', new EncryptionKey(Buffer.alloc(32, 9)));
    const bytes = content(100_001);
    const { ref } = await storePack(ctx, bytes);
    expect(ref.digest).toBe('payload');
    expect((await loadBackupObject(ctx, ref)).equals(bytes)).toBe(true);
    await flip(ctx, (len) => len - 5);
    await expect(loadBackupObject(ctx, ref)).rejects.toThrow(/authentication failed/);
  });

  it('refuses a pack whose header and the catalog disagree on what the checksum covers', async () => {
    const ctx = codecCtx('zstd');
    const bytes = content(5000);
    const { ref } = await storePack(ctx, bytes);
    const { digest: _digest, ...asOriginal } = ref;
    await expect(loadBackupObject(ctx, asOriginal)).rejects.toThrow(
      /covers the payload bytes, the backup recorded one of the original bytes/,
    );
    const original = createHash('sha256').update(bytes).digest('hex');
    await expect(loadBackupObject(ctx, { ...ref, sha256: original })).rejects.toThrow(/differs from the one the backup recorded/);
  });
});
