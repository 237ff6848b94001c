import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { encodeObjectHeader, type ObjectMeta } from '../../../src/archive/object-header.js';
import { IntegrityError } from '../../../src/common/errors.js';
import type { Storage } from '../../../src/storage/types.js';
import { readObjectHeader } from '../../../src/archive/header-read.js';

const meta: ObjectMeta = {
  name: '000000010000000000000007',
  kind: 'segment',
  sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  size: 1048576,
  payloadBytes: 1000,
  codec: 'zstd',
  level: 1,
  encryption: null,
  systemId: '7712183698484992009',
  timeline: 1,
  startLsn: '0/700000',
  validBytes: null,
  createdAt: '2024-05-01T00:00:00.000Z',
  writer: 'test',
};

/** A storage whose get() hands out `bytes` in `chunk`-byte pieces and records how far it was read. */
function chunkedStorage(bytes: Buffer, chunk: number): { storage: Storage; stats: { served: number; destroyed: boolean } } {
  const stats = { served: 0, destroyed: false };
  const storage = {
    async get(): Promise<Readable> {
      let offset = 0;
      const stream = new Readable({
        read() {
          if (offset >= bytes.length) return void this.push(null);
          const piece = bytes.subarray(offset, offset + chunk);
          offset += piece.length;
          stats.served = offset;
          this.push(piece);
        },
        destroy(err, cb) {
          stats.destroyed = true;
          cb(err);
        },
      });
      return stream;
    },
  } as unknown as Storage;
  return { storage, stats };
}

describe('readObjectHeader', () => {
  const header = encodeObjectHeader(meta);
  const object = Buffer.concat([header, Buffer.alloc(512 * 1024, 7)]);

  it('decodes the header from small pieces and stops reading right after it', async () => {
    const { storage, stats } = chunkedStorage(object, 7);
    const decoded = await readObjectHeader(storage, 'k');
    expect(decoded.meta).toEqual(meta);
    expect(decoded.payloadOffset).toBe(header.length);
    expect(stats.destroyed).toBe(true);
    expect(stats.served).toBeLessThan(header.length + 7 * 20);
  });

  it('refuses an object that ends inside its header', async () => {
    const { storage } = chunkedStorage(header.subarray(0, header.length - 5), 1000);
    await expect(readObjectHeader(storage, 'k')).rejects.toThrow(/ends inside its header/);
  });

  it('refuses what is not a walvault object after the first bytes', async () => {
    const { storage, stats } = chunkedStorage(Buffer.from('PGDMP not ours at all'), 4);
    await expect(readObjectHeader(storage, 'k')).rejects.toThrow(IntegrityError);
    expect(stats.destroyed).toBe(true);
  });
});
