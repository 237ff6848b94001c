import { describe, expect, it } from 'vitest';
import { ExitCode, IntegrityError } from '../../../src/common/errors.js';
import {
  OBJECT_FORMAT_VERSION,
  OBJECT_MAGIC,
  decodeObjectHeader,
  encodeObjectHeader,
  type ObjectMeta,
} from '../../../src/archive/object-header.js';
import { thrownBy } from './support.js';

const SHA_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

const META: ObjectMeta = {
  name: '000000010000000000000007',
  kind: 'segment',
  sha256: SHA_ABC,
  size: 1048576,
  payloadBytes: 65536,
  codec: 'zstd',
  level: 1,
  encryption: { alg: 'aes-256-gcm-chunked', keyId: '0123456789abcdef' },
  systemId: '7712183698484992009',
  timeline: 1,
  startLsn: '0/7000000',
  validBytes: 1048576,
  createdAt: '2026-01-02T03:04:05.678Z',
  writer: 'walvault test',
};

/** Builds an object header by hand from the documented layout (independent of encodeObjectHeader). */
function handMade(json: string | Buffer, opts: { magic?: string; version?: number; length?: number } = {}): Buffer {
  const body = typeof json === 'string' ? Buffer.from(json, 'utf8') : json;
  const fixed = Buffer.alloc(13);
  fixed.write(opts.magic ?? 'WALVAULT', 0, 'latin1');
  fixed[8] = opts.version ?? 1;
  fixed.writeUInt32BE(opts.length ?? body.length, 9);
  return Buffer.concat([fixed, body]);
}

function integrityFrom(fn: () => unknown, objectName: string): IntegrityError {
  const caught = thrownBy(fn);
  expect(caught).toBeInstanceOf(IntegrityError);
  const err = caught as IntegrityError;
  expect(err.exitCode).toBe(ExitCode.integrity);
  expect(err.message.startsWith(`unable to read archived object '${objectName}': `)).toBe(true);
  return err;
}

describe('encodeObjectHeader', () => {
  it('writes magic, version 1, a big-endian length and the JSON', () => {
    const bytes = encodeObjectHeader(META);
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('WALVAULT');
    expect(OBJECT_MAGIC.toString('latin1')).toBe('WALVAULT');
    expect(bytes[8]).toBe(1);
    expect(OBJECT_FORMAT_VERSION).toBe(1);
    const len = bytes.readUInt32BE(9);
    expect(bytes.length).toBe(13 + len);
    expect(JSON.parse(bytes.subarray(13).toString('utf8'))).toEqual(META);
  });

  it('round trips through decodeObjectHeader, with and without a payload after it', () => {
    const header = encodeObjectHeader(META);
    const decoded = decodeObjectHeader(header, 'obj')!;
    expect(decoded.meta).toEqual(META);
    expect(decoded.payloadOffset).toBe(header.length);
    expect(decoded.headerBytes.equals(header)).toBe(true);

    const withPayload = Buffer.concat([header, Buffer.from('payload bytes')]);
    const again = decodeObjectHeader(withPayload, 'obj')!;
    expect(again.meta).toEqual(META);
    expect(withPayload.subarray(again.payloadOffset).toString()).toBe('payload bytes');
    expect(again.headerBytes.equals(header)).toBe(true);
  });

  it('round trips a plain history object with null fields and non-ASCII text', () => {
    const meta: ObjectMeta = {
      ...META,
      name: '00000002.history',
      kind: 'history',
      encryption: null,
      systemId: null,
      timeline: 2,
      startLsn: null,
      validBytes: null,
      writer: 'walvault ✓ тест',
    };
    expect(decodeObjectHeader(encodeObjectHeader(meta), 'h')!.meta).toEqual(meta);
  });

  it('headerBytes is a copy: scribbling on the input afterwards does not change it', () => {
    const input = encodeObjectHeader(META);
    const decoded = decodeObjectHeader(input, 'obj')!;
    input.fill(0);
    expect(decoded.headerBytes.subarray(0, 8).toString('latin1')).toBe('WALVAULT');
  });
});

describe('decodeObjectHeader on a hand-built header', () => {
  const json = JSON.stringify({ ...META, encryption: null });

  it('decodes the documented layout', () => {
    const decoded = decodeObjectHeader(handMade(json), 'x')!;
    expect(decoded.meta.name).toBe('000000010000000000000007');
    expect(decoded.meta.encryption).toBeNull();
    expect(decoded.payloadOffset).toBe(13 + Buffer.byteLength(json));
  });

  it('returns undefined for every prefix too short to decide (streaming readers read more)', () => {
    const full = handMade(json);
    for (let n = 0; n < full.length; n++) {
      expect(decodeObjectHeader(full.subarray(0, n), 'x'), `prefix of ${n} bytes`).toBeUndefined();
    }
    expect(decodeObjectHeader(full, 'x')).toBeDefined();
  });

  it('a short prefix that already shows a bad magic throws at once', () => {
    integrityFrom(() => decodeObjectHeader(Buffer.from('WALX'), 'x'), 'x');
    integrityFrom(() => decodeObjectHeader(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), 'x'), 'x'); // a bare zstd frame
    integrityFrom(() => decodeObjectHeader(Buffer.from('w'), 'x'), 'x');
  });

  it('bad magic', () => {
    const err = integrityFrom(() => decodeObjectHeader(handMade(json, { magic: 'WALVAULU' }), 'wal/k'), 'wal/k');
    expect(err.message).toContain('bad magic');
    integrityFrom(() => decodeObjectHeader(handMade(json, { magic: 'walvault' }), 'wal/k'), 'wal/k');
  });

  it('bad version', () => {
    for (const version of [0, 2, 255]) {
      const err = integrityFrom(() => decodeObjectHeader(handMade(json, { version }), 'k'), 'k');
      expect(err.message).toContain(`version ${version}`);
    }
    // Known from the fixed part alone, before the JSON has arrived.
    integrityFrom(() => decodeObjectHeader(handMade(json, { version: 2 }).subarray(0, 13), 'k'), 'k');
  });

  it('zero or huge header length', () => {
    for (const length of [0, 64 * 1024 + 1, 0xffffffff]) {
      const err = integrityFrom(() => decodeObjectHeader(handMade(json, { length }).subarray(0, 13), 'k'), 'k');
      expect(err.message).toContain('header length');
    }
    // The limit itself is accepted (and then needs that many bytes).
    expect(decodeObjectHeader(handMade(json, { length: 64 * 1024 }), 'k')).toBeUndefined();
  });

  it('invalid JSON', () => {
    for (const bad of ['{', 'not json', '{"name":"x",}', Buffer.from([0x7b, 0xff, 0xfe])]) {
      integrityFrom(() => decodeObjectHeader(handMade(bad), 'k'), 'k');
    }
  });

  it('JSON that is not an object', () => {
    for (const bad of ['null', '42', '"WALVAULT"', 'true']) {
      integrityFrom(() => decodeObjectHeader(handMade(bad), 'k'), 'k');
    }
  });

  it.each(['name', 'kind', 'sha256', 'size', 'codec', 'createdAt', 'writer'])('missing required field %s', (field) => {
    const o: Record<string, unknown> = { ...META };
    delete o[field];
    integrityFrom(() => decodeObjectHeader(handMade(JSON.stringify(o)), 'k'), 'k');
  });

  it.each([
    ['sha256 upper case', { sha256: SHA_ABC.toUpperCase() }],
    ['sha256 short', { sha256: SHA_ABC.slice(2) }],
    ['sha256 not hex', { sha256: `${SHA_ABC.slice(0, 63)}z` }],
    ['sha256 a number', { sha256: 42 }],
    ['unknown kind', { kind: 'tarball' }],
    ['negative size', { size: -1 }],
    ['fractional size', { size: 1.5 }],
    ['size as text', { size: '1048576' }],
    ['unsafe size', { size: 2 ** 60 }],
    ['timeline as text', { timeline: '1' }],
    ['validBytes negative', { validBytes: -8192 }],
    // eslint-disable-next-line no-loss-of-precision -- the imprecise number is the point: ids must be strings
    ['systemId a number', { systemId: 7712183698484992009 }],
    ['unknown encryption', { encryption: { alg: 'rot13', keyId: 'x' } }],
    ['encryption without key id', { encryption: { alg: 'aes-256-gcm-chunked' } }],
    ['encryption as text', { encryption: 'aes' }],
    ['name a number', { name: 7 }],
  ])('invalid field: %s', (_label, patch) => {
    integrityFrom(() => decodeObjectHeader(handMade(JSON.stringify({ ...META, ...patch })), 'k'), 'k');
  });

  it('optional fields may be absent: they read as null (level as 0)', () => {
    const o: Record<string, unknown> = { ...META, kind: 'history', name: '00000002.history' };
    for (const k of ['level', 'encryption', 'systemId', 'timeline', 'startLsn', 'validBytes']) delete o[k];
    const meta = decodeObjectHeader(handMade(JSON.stringify(o)), 'k')!.meta;
    expect(meta).toMatchObject({ level: 0, encryption: null, systemId: null, timeline: null, startLsn: null, validBytes: null });
  });

  it('a segment header without its system identifier is refused (it would skip the identity check)', () => {
    const o: Record<string, unknown> = { ...META };
    delete o['systemId'];
    expect(() => decodeObjectHeader(handMade(JSON.stringify(o)), 'k')).toThrow(IntegrityError);
  });

  it('unknown extra fields are dropped, not passed through', () => {
    const meta = decodeObjectHeader(handMade(JSON.stringify({ ...META, surprise: 'x' })), 'k')!.meta;
    expect(meta).not.toHaveProperty('surprise');
  });
});
