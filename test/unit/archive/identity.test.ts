import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ArchiveMismatchError, ExitCode, IntegrityError, StorageError } from '../../../src/common/errors.js';
import {
  STORAGE_FORMAT_VERSION,
  checkIdentity,
  decodeIdentity,
  encodeIdentity,
  ensureIdentity,
  readIdentity,
  type ArchiveIdentity,
} from '../../../src/archive/identity.js';
import { IDENTITY_COPY_KEY, IDENTITY_KEY } from '../../../src/archive/keys.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import type { Storage } from '../../../src/storage/types.js';
import {
  DRIVERS,
  expectWalvault,
  flipByte,
  newStorage,
  observedOf,
  overwrite,
  rejectionOf,
  removeTempDirs,
  snapshot,
  thrownBy,
} from './support.js';

afterAll(removeTempDirs);

const PG15 = observedOf(15);
const PG13 = observedOf(13);
const SEG = '000000010000000000000007';
const WRITER = 'identity-test';

/**
 * A stored identity record built by hand from the documented format: the identity fields in a fixed
 * order, and the SHA-256 of exactly that JSON text.
 */
function handMadeRecord(id: ArchiveIdentity): Buffer {
  const body = JSON.stringify({
    formatVersion: id.formatVersion,
    systemId: id.systemId,
    pgMajor: id.pgMajor,
    walSegSize: id.walSegSize,
    createdAt: id.createdAt,
    createdBy: id.createdBy,
  });
  const sha256 = createHash('sha256').update(body).digest('hex');
  return Buffer.from(JSON.stringify({ identity: JSON.parse(body) as unknown, sha256 }));
}

const ID15: ArchiveIdentity = {
  formatVersion: 1,
  systemId: PG15.systemId,
  pgMajor: 15,
  walSegSize: 1048576,
  createdAt: '2026-01-01T00:00:00.000Z',
  createdBy: 'walvault 0.1.0',
};

describe('encodeIdentity / decodeIdentity', () => {
  it('decodes a hand-made record and round trips its own encoding', () => {
    expect(decodeIdentity(handMadeRecord(ID15), 'k')).toEqual(ID15);
    expect(decodeIdentity(encodeIdentity(ID15), 'k')).toEqual(ID15);
    expect(STORAGE_FORMAT_VERSION).toBe(1);
  });

  it('the stored record is readable JSON with the identity and its checksum', () => {
    const parsed = JSON.parse(encodeIdentity(ID15).toString('utf8')) as { identity: unknown; sha256: string };
    expect(parsed.identity).toEqual(ID15);
    expect(parsed.sha256).toBe(JSON.parse(handMadeRecord(ID15).toString()).sha256);
  });

  it.each<[string, Buffer]>([
    ['not JSON', Buffer.from('{"identity":')],
    ['no identity', Buffer.from('{"sha256":"00"}')],
    ['null', Buffer.from('null')],
    ['systemId not decimal', handMadeRecord({ ...ID15, systemId: '0x1f' })],
    ['pgMajor not integer', handMadeRecord({ ...ID15, pgMajor: 15.5 })],
    ['walSegSize text', handMadeRecord({ ...ID15, walSegSize: '1048576' as unknown as number })],
    [
      'checksum of other content',
      Buffer.from(JSON.stringify({ identity: { ...ID15, pgMajor: 16 }, sha256: JSON.parse(handMadeRecord(ID15).toString()).sha256 })),
    ],
  ])('refuses %s with IntegrityError', (_label, bytes) => {
    const err = expectWalvault(
      thrownBy(() => decodeIdentity(bytes, IDENTITY_KEY)),
      IntegrityError,
      ExitCode.integrity,
    );
    expect(err.message).toContain(`'${IDENTITY_KEY}'`);
  });

  it('refuses a record with a newer format version even though its checksum is right', () => {
    expect(() => decodeIdentity(handMadeRecord({ ...ID15, formatVersion: 2 }), 'k')).toThrow(/newer than this walvault supports/);
  });
});

describe('checkIdentity', () => {
  it('accepts the same cluster and names every difference otherwise', () => {
    expect(() => checkIdentity(ID15, PG15, SEG)).not.toThrow();
    const err = thrownBy(() => checkIdentity(ID15, { systemId: '1', pgMajor: 16, walSegSize: 16 * 1048576 }, SEG));
    const e = expectWalvault(err, ArchiveMismatchError, ExitCode.integrity);
    expect(e.message).toContain(SEG);
    expect(e.message).toContain('database system 1');
    expect(e.message).toContain('segment size is 16777216');
    expect(e.message).toContain('PostgreSQL 16');
  });
});

describe.each(DRIVERS)('ensureIdentity / readIdentity on %s storage', (driver) => {
  async function fresh(): Promise<Storage> {
    return newStorage(driver);
  }

  it('a new archive has no identity', async () => {
    expect(await readIdentity(await fresh())).toBeUndefined();
  });

  it('is created on first use, stored twice with identical bytes', async () => {
    const storage = await fresh();
    const before = Date.now();
    const id = await ensureIdentity(storage, PG15, SEG, WRITER);
    expect(id).toMatchObject({ formatVersion: 1, ...PG15, createdBy: WRITER });
    expect(Date.parse(id.createdAt)).toBeGreaterThanOrEqual(before - 1000);
    const a = await storage.getBuffer(IDENTITY_KEY);
    const b = await storage.getBuffer(IDENTITY_COPY_KEY);
    expect(a.equals(b)).toBe(true);
    // Readable by an independent decoder: checksum over the documented canonical JSON.
    expect(a.equals(Buffer.from(`${JSON.stringify(JSON.parse(a.toString()), null, 2)}\n`))).toBe(true);
    const parsed = JSON.parse(a.toString()) as { sha256: string };
    expect(parsed.sha256).toBe(JSON.parse(handMadeRecord(id).toString()).sha256);
    expect(await readIdentity(storage)).toEqual(id);
  });

  it('a second call for the same cluster returns the same record and writes nothing', async () => {
    const storage = await fresh();
    const first = await ensureIdentity(storage, PG15, SEG, WRITER);
    const snap = await snapshot(storage);
    const second = await ensureIdentity(storage, PG15, '000000010000000000000008', 'someone else');
    expect(second).toEqual(first);
    expect(await snapshot(storage)).toEqual(snap);
  });

  it.each([
    ['another system id', { ...PG15, systemId: PG13.systemId }],
    ['another segment size', { ...PG15, walSegSize: 16 * 1048576 }],
    ['another major', { ...PG15, pgMajor: 16 }],
    ['WAL of the pg13 fixture cluster', PG13],
  ])('%s: ArchiveMismatchError and nothing written', async (_label, observed) => {
    const storage = await fresh();
    await ensureIdentity(storage, PG15, SEG, WRITER);
    const snap = await snapshot(storage);
    const err = await rejectionOf(ensureIdentity(storage, observed, SEG, WRITER));
    const e = expectWalvault(err, ArchiveMismatchError, ExitCode.integrity);
    expect(e.message).toContain(`'${SEG}'`);
    expect(await snapshot(storage)).toEqual(snap);
  });

  it.each([IDENTITY_KEY, IDENTITY_COPY_KEY])('%s deleted: still readable, healed by the next ensure', async (lost) => {
    const storage = await fresh();
    const id = await ensureIdentity(storage, PG15, SEG, WRITER);
    const original = await storage.getBuffer(IDENTITY_KEY);
    await storage.delete([lost]);
    expect(await readIdentity(storage)).toEqual(id);
    expect(await storage.head(lost)).toBeUndefined(); // reading alone does not write
    expect(await ensureIdentity(storage, PG15, SEG, WRITER)).toEqual(id);
    expect((await storage.getBuffer(IDENTITY_KEY)).equals(original)).toBe(true);
    expect((await storage.getBuffer(IDENTITY_COPY_KEY)).equals(original)).toBe(true);
  });

  it.each([IDENTITY_KEY, IDENTITY_COPY_KEY])('%s corrupted: readable from the other copy, healed by ensure', async (damaged) => {
    const storage = await fresh();
    const id = await ensureIdentity(storage, PG15, SEG, WRITER);
    const original = await storage.getBuffer(IDENTITY_KEY);
    // Every position: a flipped byte anywhere must be caught (JSON syntax, field or checksum).
    for (let pos = 0; pos < original.length; pos += 7) {
      await overwrite(storage, damaged, flipByte(original, pos));
      expect(await readIdentity(storage), `byte ${pos}`).toEqual(id);
    }
    await storage.put(damaged, flipByte(original, 40));
    expect(await ensureIdentity(storage, PG15, SEG, WRITER)).toEqual(id);
    expect((await storage.getBuffer(damaged)).equals(original)).toBe(true);
  });

  it('a one-byte change that keeps the JSON valid is caught by the checksum', async () => {
    const storage = await fresh();
    await ensureIdentity(storage, PG15, SEG, WRITER);
    const text = (await storage.getBuffer(IDENTITY_KEY)).toString();
    const altered = text.replace('"pgMajor": 15', '"pgMajor": 16');
    expect(altered).not.toBe(text);
    await storage.put(IDENTITY_KEY, Buffer.from(altered));
    await storage.put(IDENTITY_COPY_KEY, Buffer.from(altered));
    const err = await rejectionOf(readIdentity(storage));
    expect(expectWalvault(err, IntegrityError, ExitCode.integrity).message).toContain('checksum mismatch');
  });

  it('both copies corrupted: IntegrityError, never "no identity" (which would re-create it)', async () => {
    const storage = await fresh();
    await ensureIdentity(storage, PG15, SEG, WRITER);
    const original = await storage.getBuffer(IDENTITY_KEY);
    await storage.put(IDENTITY_KEY, flipByte(original, 30));
    await storage.put(IDENTITY_COPY_KEY, original.subarray(0, 50));
    const snap = await snapshot(storage);
    expectWalvault(await rejectionOf(readIdentity(storage)), IntegrityError, ExitCode.integrity);
    expectWalvault(await rejectionOf(ensureIdentity(storage, PG15, SEG, WRITER)), IntegrityError, ExitCode.integrity);
    expect(await snapshot(storage)).toEqual(snap);
  });

  it('one copy corrupted and the other missing: IntegrityError, nothing written', async () => {
    const storage = await fresh();
    await ensureIdentity(storage, PG15, SEG, WRITER);
    await storage.put(IDENTITY_KEY, flipByte(await storage.getBuffer(IDENTITY_KEY), 3));
    await storage.delete([IDENTITY_COPY_KEY]);
    const snap = await snapshot(storage);
    expectWalvault(await rejectionOf(ensureIdentity(storage, PG15, SEG, WRITER)), IntegrityError, ExitCode.integrity);
    expect(await snapshot(storage)).toEqual(snap);
  });

  // What a reader sees on a store whose writes are not atomic (s3rver) while the first push is still
  // writing archive.info: a torn record and no copy. The write finishing within the wait is read.
  it('a torn archive.info that another push finishes writing a moment later is read, not refused', async () => {
    const storage = await fresh();
    await ensureIdentity(storage, PG15, SEG, WRITER);
    const whole = await storage.getBuffer(IDENTITY_KEY);
    await storage.put(IDENTITY_KEY, whole.subarray(0, 40));
    await storage.delete([IDENTITY_COPY_KEY]);
    const finishing = new Promise<void>((resolve) => setTimeout(() => void storage.put(IDENTITY_KEY, whole).then(resolve), 120));
    const identity = await ensureIdentity(storage, PG15, SEG, WRITER);
    await finishing;
    expect(identity.systemId).toBe(PG15.systemId);
    expect((await storage.getBuffer(IDENTITY_COPY_KEY)).equals(whole)).toBe(true);
  });

  it('two intact copies that disagree: IntegrityError from read and ensure, nothing written', async () => {
    const storage = await fresh();
    await storage.put(IDENTITY_KEY, handMadeRecord(ID15));
    await storage.put(IDENTITY_COPY_KEY, handMadeRecord({ ...ID15, systemId: PG13.systemId }));
    const snap = await snapshot(storage);
    const err = expectWalvault(await rejectionOf(readIdentity(storage)), IntegrityError, ExitCode.integrity);
    expect(err.message).toContain('disagree');
    expectWalvault(await rejectionOf(ensureIdentity(storage, PG15, SEG, WRITER)), IntegrityError, ExitCode.integrity);
    expect(await snapshot(storage)).toEqual(snap);
  });

  // What two first pushes racing on a store without create-only writes (s3rver) leave: each wrote its
  // own copy. Same cluster, so not a mixed archive: the primary wins and the copy is repaired from it.
  it('copies that differ only in their creation time and writer: the primary is read, ensure repairs the copy byte for byte', async () => {
    const storage = await fresh();
    const primary = handMadeRecord(ID15);
    await storage.put(IDENTITY_KEY, primary);
    await storage.put(IDENTITY_COPY_KEY, handMadeRecord({ ...ID15, createdAt: '2026-01-01T00:00:00.001Z', createdBy: 'walvault other' }));
    expect(await readIdentity(storage)).toEqual(ID15);
    expect(await ensureIdentity(storage, PG15, SEG, WRITER)).toEqual(ID15);
    expect((await storage.getBuffer(IDENTITY_COPY_KEY)).equals(primary)).toBe(true);
    expect((await storage.getBuffer(IDENTITY_KEY)).equals(primary)).toBe(true);
  });

  it.each([
    ['system id', { systemId: PG13.systemId }],
    ['major', { pgMajor: 13 }],
    ['segment size', { walSegSize: 16 * 1024 * 1024 }],
  ])('copies that differ in their %s still disagree', async (_what, change) => {
    const storage = await fresh();
    await storage.put(IDENTITY_KEY, handMadeRecord(ID15));
    await storage.put(IDENTITY_COPY_KEY, handMadeRecord({ ...ID15, ...change }));
    const snap = await snapshot(storage);
    expectWalvault(await rejectionOf(readIdentity(storage)), IntegrityError, ExitCode.integrity);
    expectWalvault(await rejectionOf(ensureIdentity(storage, PG15, SEG, WRITER)), IntegrityError, ExitCode.integrity);
    expect(await snapshot(storage)).toEqual(snap);
  });

  it('a hand-made record (other JSON formatting) is accepted and not rewritten', async () => {
    const storage = await fresh();
    await storage.put(IDENTITY_KEY, handMadeRecord(ID15));
    await storage.put(IDENTITY_COPY_KEY, handMadeRecord(ID15));
    const snap = await snapshot(storage);
    expect(await ensureIdentity(storage, PG15, SEG, WRITER)).toEqual(ID15);
    expect(await snapshot(storage)).toEqual(snap);
  });

  it('a record with a newer format version is refused, and not overwritten', async () => {
    const storage = await fresh();
    const newer = handMadeRecord({ ...ID15, formatVersion: STORAGE_FORMAT_VERSION + 1 });
    await storage.put(IDENTITY_KEY, newer);
    await storage.put(IDENTITY_COPY_KEY, newer);
    const snap = await snapshot(storage);
    const err = await rejectionOf(ensureIdentity(storage, PG15, SEG, WRITER));
    expect(expectWalvault(err, ArchiveMismatchError, ExitCode.integrity).message).toContain('newer');
    expectWalvault(await rejectionOf(readIdentity(storage)), ArchiveMismatchError, ExitCode.integrity);
    expect(await snapshot(storage)).toEqual(snap);
  });

  // A newer walvault's record is not damage: never "heal" it with an older one.
  it('one copy of a newer format version: refused, the newer copy not downgraded', async () => {
    const storage = await fresh();
    const newer = handMadeRecord({ ...ID15, formatVersion: STORAGE_FORMAT_VERSION + 1 });
    await storage.put(IDENTITY_KEY, newer);
    await storage.put(IDENTITY_COPY_KEY, handMadeRecord(ID15));
    const snap = await snapshot(storage);
    const err = await ensureIdentity(storage, PG15, SEG, WRITER).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(await snapshot(storage)).toEqual(snap);
    expect(err).toBeInstanceOf(ArchiveMismatchError);
  });

  it('two first pushes racing with different clusters: exactly one wins, both copies agree', async () => {
    const storage = await fresh();
    const results = await Promise.allSettled([ensureIdentity(storage, PG15, SEG, 'a'), ensureIdentity(storage, PG13, SEG, 'b')]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(ArchiveMismatchError);
    const a = await storage.getBuffer(IDENTITY_KEY);
    expect(a.equals(await storage.getBuffer(IDENTITY_COPY_KEY))).toBe(true);
    expect((await readIdentity(storage))?.systemId).toBe((won[0] as PromiseFulfilledResult<ArchiveIdentity>).value.systemId);
  });

  it('two first pushes racing for the same cluster both succeed with one record', async () => {
    const storage = await fresh();
    const [a, b] = await Promise.all([ensureIdentity(storage, PG15, SEG, 'a'), ensureIdentity(storage, PG15, SEG, 'b')]);
    expect(a).toEqual(b);
    expect((await storage.getBuffer(IDENTITY_KEY)).equals(await storage.getBuffer(IDENTITY_COPY_KEY))).toBe(true);
  });
});

describe('storage failures are not integrity verdicts', () => {
  it('a storage error while reading passes through unchanged', async () => {
    const storage = new MemoryStorage();
    const failing: Storage = Object.assign(Object.create(storage) as Storage, {
      getBuffer: async () => {
        throw new StorageError('unable to read object: connection reset', { retryable: true });
      },
    });
    const err = await rejectionOf(readIdentity(failing));
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).retryable).toBe(true);
  });
});
