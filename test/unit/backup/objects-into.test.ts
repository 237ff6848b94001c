import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeObject } from '../../../src/archive/push.js';
import { WRITER } from '../../../src/archive/context.js';
import { decodeBackupObjectInto, loadBackupObject, loadBackupObjectInto, storeBackupObject } from '../../../src/backup/objects.js';
import { getCodec } from '../../../src/codec/codec.js';
import { decompressInto } from '../../../src/codec/decompress-into.js';
import { EncryptionKey } from '../../../src/codec/encryption.js';
import { IntegrityError } from '../../../src/common/errors.js';
import { codecCtx } from './codec-ctx.js';

const KEY = 'backups/20261202T010000F/packs/000000001';

function content(): Buffer {
  return Buffer.concat([randomBytes(70_000), Buffer.alloc(130_000, 'pgdata')]);
}

describe('decoding backup objects into a reused buffer', () => {
  it('decodes packs of every codec into the same buffer, checked like loadBackupObject', async () => {
    const target = Buffer.alloc(256 * 1024);
    for (const name of ['zstd', 'lz4', 'gzip', 'brotli', 'none'] as const) {
      const ctx = codecCtx(name, name === 'zstd' ? new EncryptionKey(Buffer.alloc(32, 3)) : undefined);
      const bytes = content();
      const stored = await storeBackupObject(ctx, KEY, bytes, null);
      const out = await loadBackupObjectInto(ctx, stored.ref, target);
      expect(out.buffer).toBe(target.buffer);
      expect(out.byteOffset).toBe(target.byteOffset);
      expect(out.equals(bytes)).toBe(true);
      // A second object decodes over the first in the same memory.
      const again = await storeBackupObject(ctx, KEY, bytes.subarray(0, 1000), null);
      expect((await loadBackupObjectInto(ctx, again.ref, target)).equals(bytes.subarray(0, 1000))).toBe(true);
    }
  });

  it('reads objects written by the earlier one-buffer encoder (format unchanged)', async () => {
    const ctx = codecCtx('zstd');
    const bytes = content();
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const meta = {
      name: KEY,
      kind: 'backup' as const,
      sha256,
      size: bytes.length,
      codec: 'zstd',
      level: 1,
      encryption: null,
      systemId: null,
      timeline: null,
      startLsn: null,
      validBytes: null,
      createdAt: new Date().toISOString(),
      writer: WRITER,
    };
    await ctx.storage.put(KEY, await encodeObject(ctx, meta, bytes));
    const ref = { key: KEY, sha256, size: bytes.length };
    expect((await loadBackupObjectInto(ctx, ref, Buffer.alloc(bytes.length))).equals(bytes)).toBe(true);
    expect((await loadBackupObject(ctx, ref)).equals(bytes)).toBe(true);
  });

  it('allocates when the buffer is too small, and refuses damaged objects', async () => {
    const ctx = codecCtx('zstd');
    const bytes = content();
    const stored = await storeBackupObject(ctx, KEY, bytes, null);
    const small = Buffer.alloc(1000);
    const out = await loadBackupObjectInto(ctx, stored.ref, small);
    expect(out.buffer).not.toBe(small.buffer);
    expect(out.equals(bytes)).toBe(true);
    const raw = await ctx.storage.getBuffer(KEY);
    raw[raw.length - 3] = raw[raw.length - 3]! ^ 1;
    await expect(decodeBackupObjectInto(ctx, stored.ref, raw, Buffer.alloc(bytes.length))).rejects.toThrow(IntegrityError);
    await expect(decodeBackupObjectInto(ctx, { ...stored.ref, size: bytes.length - 1 }, raw, Buffer.alloc(bytes.length))).rejects.toThrow(
      /header says \d+ bytes, the backup recorded/,
    );
  });

  it('decompressInto caps the output at the buffer and reports the codec limit', async () => {
    const bytes = content();
    for (const name of ['zstd', 'gzip', 'none'] as const) {
      const codec = getCodec(name);
      const packed = await codec.compress(bytes);
      const out = Buffer.alloc(bytes.length);
      expect(await decompressInto(codec, packed, out, 'x')).toBe(bytes.length);
      expect(out.equals(bytes)).toBe(true);
      await expect(decompressInto(codec, packed, Buffer.alloc(bytes.length - 1), 'x')).rejects.toThrow(
        /unable to decompress object 'x': .*exceeds the limit/,
      );
    }
  });
});
