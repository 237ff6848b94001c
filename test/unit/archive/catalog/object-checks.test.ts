import { describe, expect, it } from 'vitest';
import type { ArchiveIdentity } from '../../../../src/archive/identity.js';
import type { ObjectMeta } from '../../../../src/archive/object-header.js';
import { checkObjectMeta } from '../../../../src/archive/catalog/object-checks.js';
import { redactCommand } from '../../../../src/ops/check.js';

const SHA = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const identity: ArchiveIdentity = {
  formatVersion: 1,
  systemId: '7712183698484992009',
  pgMajor: 15,
  walSegSize: 1048576,
  createdAt: '2024-05-01T00:00:00.000Z',
  createdBy: 'test',
};
const entry = {
  fileName: '00000002000000000000000B',
  kind: 'segment' as const,
  timeline: 2,
  segno: 11n,
  sha256: SHA,
  extension: 'zst',
  encrypted: false,
  storedBytes: 1300,
};
const meta: ObjectMeta = {
  name: '00000002000000000000000B',
  kind: 'segment',
  sha256: SHA,
  size: 1048576,
  payloadBytes: 1000,
  codec: 'zstd',
  level: 1,
  encryption: null,
  systemId: '7712183698484992009',
  timeline: 2,
  startLsn: '0/B00000',
  validBytes: null,
  createdAt: '2024-05-01T00:00:00.000Z',
  writer: 'test',
};

describe('checkObjectMeta', () => {
  it('accepts a header that agrees with its key and the archive', () => {
    expect(checkObjectMeta(entry, meta, identity)).toEqual([]);
  });

  it('names every disagreement', () => {
    const bad: ObjectMeta = {
      ...meta,
      name: '00000002000000000000000C',
      sha256: SHA.replace('b', 'c'),
      codec: 'lz4',
      encryption: { alg: 'aes-256-gcm-chunked', keyId: 'k1' },
      size: 16777216,
      timeline: 1,
      startLsn: '0/C00000',
    };
    expect(checkObjectMeta(entry, bad, identity).map((p) => p.message)).toEqual([
      "the header names '00000002000000000000000C'",
      'the checksum in the header differs from the one in the key',
      'the encryption flag in the header differs from the key',
      "the header says codec 'lz4', the key says 'zstd'",
      "it is 16777216 bytes, the archive's segments are 1048576",
      'the header says timeline 1, the name says 2',
      'the header says it starts at 0/C00000, the name says 0/B00000',
    ]);
  });

  it('tells WAL of another cluster apart from other damage', () => {
    expect(checkObjectMeta(entry, { ...meta, systemId: '1' }, identity)).toEqual([
      { kind: 'wrong-cluster', message: 'it is from database system 1, the archive belongs to 7712183698484992009' },
    ]);
    expect(checkObjectMeta(entry, { ...meta, systemId: null }, identity)[0]!.message).toMatch(/records no database system/);
  });

  it('proves the payload length from the listed size alone', () => {
    expect(checkObjectMeta(entry, meta, identity, 300)).toEqual([]);
    expect(checkObjectMeta({ ...entry, storedBytes: 1299 }, meta, identity, 300)).toEqual([
      { kind: 'damaged', message: 'the object is 1299 bytes, its header says 1300 (truncated or extended)' },
    ]);
  });

  it('does not ask history files for segment facts', () => {
    const { segno: _segno, ...rest } = entry;
    const h = { ...rest, fileName: '00000002.history', kind: 'history' as const, extension: 'raw' };
    expect(
      checkObjectMeta(h, { ...meta, name: '00000002.history', kind: 'history', size: 40, codec: 'none', startLsn: null }, identity),
    ).toEqual([]);
  });
});

describe('redactCommand', () => {
  it('hides credentials in environment assignments and keeps the rest', () => {
    expect(redactCommand("AWS_SECRET_ACCESS_KEY='abc def' WALVAULT_CONFIG=/etc/w.conf PGPASSWORD=x wal-push %p")).toBe(
      'AWS_SECRET_ACCESS_KEY=[redacted] WALVAULT_CONFIG=/etc/w.conf PGPASSWORD=[redacted] wal-push %p',
    );
  });
});
