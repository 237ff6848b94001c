/**
 * Exhaustive single-byte damage: every byte of a stored object inverted in turn. Whatever the codec,
 * fetch must never hand back wrong bytes and never say "not found". Encrypted objects must refuse
 * every change. Plain objects are protected by the SHA-256 of their content, not by a MAC over the
 * header, so a change confined to a descriptive header field (creation time, writer, ...) may go
 * unnoticed; this test pins down exactly which fields those are.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArchiveMismatchError, CryptoError, ExitCode, IntegrityError, NotFoundError, WalvaultError } from '../../../src/common/errors.js';
import type { CodecName } from '../../../src/codec/codec.js';
import { restoreFile } from '../../../src/restore/fetch.js';
import { pushFile } from '../../../src/archive/push.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { flipByte, makeCtx, manifestSha, removeTempDirs, sha256, tempDir, testKey, writeFixture } from './support.js';

afterAll(removeTempDirs);

const MAJOR = 15;
const KEY = testKey(0x33);
const CODECS: CodecName[] = ['zstd', 'lz4', 'gzip', 'brotli', 'none'];
/** Header fields whose value only describes the object; fetch does not need them to be right. */
const DESCRIPTIVE = new Set(['level', 'timeline', 'startLsn', 'validBytes', 'createdAt', 'writer']);

type Outcome = 'intact' | 'wrong bytes' | string;

interface Scan {
  headerLength: number;
  /** Outcome per byte offset of the object. */
  outcomes: Outcome[];
  object: Buffer;
}

/**
 * Pushes `name` (after segment 7, so the archive has an identity) and inverts each byte of `part` of
 * its object in turn; outcomes of bytes outside `part` are left undefined.
 */
async function scan(codec: CodecName, encrypted: boolean, name: string, part: 'all' | 'header' | 'payload'): Promise<Scan> {
  const storage = new MemoryStorage();
  const encryption = encrypted ? KEY : undefined;
  const ctx = makeCtx(storage, { compression: { name: codec, level: codec === 'none' ? 0 : 1 }, encryption });
  const src = await tempDir('src');
  if (name !== '000000010000000000000007') await pushFile(ctx, await writeFixture(src, MAJOR, '000000010000000000000007'));
  const { key } = await pushFile(ctx, await writeFixture(src, MAJOR, name));
  const object = await storage.getBuffer(key);
  const headerLength = 13 + object.readUInt32BE(9);
  const start = part === 'payload' ? headerLength : 0;
  const end = part === 'header' ? headerLength : object.length;
  const outcomes: Outcome[] = [];
  for (let pos = start; pos < end; pos++) {
    await storage.put(key, flipByte(object, pos));
    try {
      const restored = await restoreFile(makeCtx(storage, { encryption }), name);
      outcomes[pos] = sha256(restored.bytes) === manifestSha(MAJOR, name) ? 'intact' : 'wrong bytes';
    } catch (err) {
      expect(err).toBeInstanceOf(WalvaultError);
      expect(err).not.toBeInstanceOf(NotFoundError);
      expect((err as WalvaultError).exitCode).toBe(ExitCode.integrity);
      outcomes[pos] = (err as Error).constructor.name;
    }
  }
  return { headerLength, outcomes, object };
}

/** The JSON field that covers header byte `pos`, and whether the byte is in its name or its value. */
function fieldAt(object: Buffer, headerLength: number, pos: number): { field: string; inName: boolean } {
  const json = object.subarray(13, headerLength).toString('latin1');
  const at = pos - 13;
  let found = { field: '(structure)', inName: false };
  for (const m of json.matchAll(/"([A-Za-z0-9]+)":/g)) {
    if (m.index <= at) found = { field: m[1]!, inName: at < m.index + m[0].length };
  }
  return found;
}

/**
 * A change that may go unnoticed in a plain object: anywhere in a descriptive field; in the name of a
 * field whose value is null (the field then reads as absent, which means null too); or in the name
 * of `systemId`. That last one is a real, if narrow, gap: the header then reads "system id unknown"
 * and restoreFile skips its cluster check. The restored bytes are still the archived ones (their
 * SHA-256 is checked), and push never archives another cluster's WAL, so no wrong WAL can result.
 */
function harmless(object: Buffer, headerLength: number, pos: number): boolean {
  const { field, inName } = fieldAt(object, headerLength, pos);
  if (DESCRIPTIVE.has(field)) return true;
  const meta = JSON.parse(object.subarray(13, headerLength).toString('utf8')) as Record<string, unknown>;
  return inName && (meta[field] === null || field === 'systemId');
}

function positions(outcomes: Outcome[], what: Outcome): number[] {
  return outcomes.flatMap((o, i) => (o === what ? [i] : []));
}

// The object header does not depend on the codec: scanned in full for zstd, the payload for all.
describe.each(CODECS)('%s: every byte of a stored history file inverted', (codec) => {
  const part = codec === 'zstd' ? 'all' : 'payload';

  it('encrypted: every change is refused', async () => {
    const { outcomes, headerLength } = await scan(codec, true, '00000002.history', part);
    expect(positions(outcomes, 'intact')).toEqual([]);
    expect(positions(outcomes, 'wrong bytes')).toEqual([]);
    // Only the key id inside the encryption header reads as "another key" rather than damage.
    const crypto = positions(outcomes, CryptoError.name).map((p) => p - headerLength);
    expect(crypto).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    expect(outcomes.filter((o) => o !== IntegrityError.name && o !== CryptoError.name)).toEqual([]);
    expect(Object.keys(outcomes).length).toBe(part === 'all' ? outcomes.length : outcomes.length - headerLength);
  });

  it('plain: no wrong bytes; unnoticed changes only in descriptive header fields', async () => {
    const { outcomes, headerLength, object } = await scan(codec, false, '00000002.history', part);
    expect(positions(outcomes, 'wrong bytes')).toEqual([]);
    const unnoticed = positions(outcomes, 'intact');
    const inHeader = unnoticed.filter((p) => p < headerLength);
    const inPayload = unnoticed.filter((p) => p >= headerLength).map((p) => p - headerLength);
    for (const p of inHeader) {
      expect(harmless(object, headerLength, p), `unnoticed change in '${fieldAt(object, headerLength, p).field}'`).toBe(true);
    }
    // gzip's member header holds MTIME, XFL and OS (RFC 1952 offsets 4..9), which decoders ignore.
    expect(inPayload).toEqual(codec === 'gzip' ? [4, 5, 6, 7, 8, 9] : []);
    // A changed system id is reported as belonging to another cluster (exit 128 as well).
    for (const p of positions(outcomes, ArchiveMismatchError.name)) expect(fieldAt(object, headerLength, p).field).toBe('systemId');
  });
});

describe('every header byte of a stored 1 MiB segment inverted', () => {
  let plain: Scan;
  let sealed: Scan;

  beforeAll(async () => {
    plain = await scan('zstd', false, '000000010000000000000008', 'header');
    sealed = await scan('zstd', true, '000000010000000000000008', 'header');
  });

  it('encrypted: every change is an integrity failure (the header is authenticated data)', () => {
    expect(sealed.outcomes).toHaveLength(sealed.headerLength);
    expect(sealed.outcomes.filter((o) => o !== IntegrityError.name)).toEqual([]);
  });

  it('plain: refused, or restored intact when the change is in a descriptive field', () => {
    expect(positions(plain.outcomes, 'wrong bytes')).toEqual([]);
    for (const p of positions(plain.outcomes, 'intact')) {
      expect(harmless(plain.object, plain.headerLength, p), `offset ${p}`).toBe(true);
    }
    // The fields fetch relies on are all covered.
    for (const field of ['name', 'kind', 'sha256', 'size', 'codec', 'encryption']) {
      const covered = plain.outcomes.filter((_o, p) => p >= 13 && fieldAt(plain.object, plain.headerLength, p).field === field);
      expect(covered.length, field).toBeGreaterThan(0);
      // encryption is null here, so a damaged *name* of it reads as "absent = null": harmless.
      const values = covered.filter((_o, i) => field !== 'encryption' || i >= '"encryption":'.length);
      expect(
        values.every((o) => o !== 'intact'),
        field,
      ).toBe(true);
    }
  });
});
