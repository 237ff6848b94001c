import { describe, expect, it } from 'vitest';
import { parsePgManifest } from '../../../src/backup/pg-manifest.js';
import { IntegrityError } from '../../../src/common/errors.js';

// Hand-written in PostgreSQL's layout (one file per line, the checksum line last). The checksums
// were computed outside this code base: `sha256sum` of the lines before the last one.
const V1_BODY = [
  '{ "PostgreSQL-Backup-Manifest-Version": 1,',
  '"Files": [',
  '{ "Path": "backup_label", "Size": 3, "Last-Modified": "2026-12-02 00:53:13 GMT", "Checksum-Algorithm": "SHA256", "Checksum": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },',
  '{ "Encoded-Path": "6361666ec3a9", "Size": 0, "Last-Modified": "2026-12-02 00:53:11 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "00000000" },',
  '{ "Path": "pg_tblspc/16390/PG_15_202209061/5/16391", "Size": 8192, "Last-Modified": "2026-12-02 00:53:12 GMT" }',
  '],',
  '"WAL-Ranges": [',
  '{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }',
  '],',
];
const V1_SUM = 'dd6d85ae51a169e6a14dd9c7948c51ec8a6b82b0b7e733893a2984786ca3371e';

const V2_BODY = [
  '{ "PostgreSQL-Backup-Manifest-Version": 2,',
  '"System-Identifier": 7353445557223334912,',
  '"Files": [',
  '{ "Path": "global/pg_control", "Size": 8192, "Last-Modified": "2026-12-02 00:53:13 GMT", "Checksum-Algorithm": "SHA256", "Checksum": "C3933C93876D5C785D2943B647C7D28856F45D6751DCEA12C8CB2A260F1CDAE9" }',
  '],',
  '"WAL-Ranges": [',
  '{ "Timeline": 2, "Start-LSN": "0/5000000", "End-LSN": "1/2A" },',
  '{ "Timeline": 1, "Start-LSN": "0/4000028", "End-LSN": "0/5000000" }',
  '],',
];
const V2_SUM = 'd2e50b9b4d3bc01241a48da4e5589167b9b51045af4007ecafb51af4a99eb500';

const manifest = (body: string[], sum: string): Buffer => Buffer.from(`${body.join('\n')}\n"Manifest-Checksum": "${sum}"}\n`);

describe('PostgreSQL backup_manifest', () => {
  it('parses version 1 with Path, Encoded-Path, several algorithms and none', () => {
    const m = parsePgManifest(manifest(V1_BODY, V1_SUM), 'k');
    expect(m.version).toBe(1);
    expect(m.systemId).toBeNull();
    expect(m.manifestChecksum).toBe(V1_SUM);
    expect(m.files).toEqual([
      {
        path: 'backup_label',
        size: 3,
        lastModified: '2026-12-02 00:53:13 GMT',
        algorithm: 'SHA256',
        checksum: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      },
      { path: 'cafné', size: 0, lastModified: '2026-12-02 00:53:11 GMT', algorithm: 'CRC32C', checksum: '00000000' },
      {
        path: 'pg_tblspc/16390/PG_15_202209061/5/16391',
        size: 8192,
        lastModified: '2026-12-02 00:53:12 GMT',
        algorithm: 'NONE',
        checksum: null,
      },
    ]);
    expect(m.walRanges).toEqual([{ timeline: 1, startLsn: 0x2000028n, endLsn: 0x2000100n }]);
  });

  it('parses version 2: the 64-bit system identifier exactly, checksums lowercased, several WAL ranges', () => {
    const m = parsePgManifest(manifest(V2_BODY, V2_SUM.toUpperCase()), 'k');
    expect(m.version).toBe(2);
    expect(m.systemId).toBe('7353445557223334912');
    expect(m.files[0]!.checksum).toBe('c3933c93876d5c785d2943b647c7d28856f45d6751dcea12c8cb2a260f1cdae9');
    expect(m.walRanges).toEqual([
      { timeline: 2, startLsn: 0x5000000n, endLsn: 0x10000002an },
      { timeline: 1, startLsn: 0x4000028n, endLsn: 0x5000000n },
    ]);
  });

  it('rejects a manifest whose bytes do not match its checksum, naming the object', () => {
    const bad = manifest(V1_BODY, V1_SUM);
    bad[bad.indexOf('8192')] = 0x39; // Size 8192 -> 9192
    expect(() => parsePgManifest(bad, 'backups/20261201T100000F/backup_manifest')).toThrow(IntegrityError);
    expect(() => parsePgManifest(bad, 'backups/20261201T100000F/backup_manifest')).toThrow(
      `unable to read backup manifest 'backups/20261201T100000F/backup_manifest': manifest checksum mismatch: the manifest says ${V1_SUM}, its bytes hash to `,
    );
  });

  it.each([
    ['no final newline', Buffer.from(`${V1_BODY.join('\n')}\n"Manifest-Checksum": "${V1_SUM}"}`), 'last line not newline-terminated'],
    ['one line', Buffer.from(`{"Manifest-Checksum": "${V1_SUM}"}\n`), 'expected at least 2 lines'],
    ['no checksum line', Buffer.from(`${V1_BODY.join('\n')}\n"X": 1}\n`), 'the last line is not the Manifest-Checksum'],
    ['short checksum', manifest(V1_BODY, 'abcd'), 'invalid manifest checksum "abcd"'],
  ])('rejects %s', (_what, bytes, reason) => {
    expect(() => parsePgManifest(bytes, 'k')).toThrow(`unable to read backup manifest 'k': ${reason}`);
  });

  it.each([
    [
      'an unknown version',
      V1_BODY.map((l) => l.replace('Version": 1', 'Version": 3')),
      '0d01b240d2d07aa0f154335bd3b22ff48fa98a813359fc8303da42929956de1f',
      'unsupported manifest version 3',
    ],
    [
      'version 2 without a system identifier',
      V2_BODY.filter((l) => !l.includes('System-Identifier')),
      'dab7b8b6ce3318becac7fa0a1425f5b196f7595a21cb745a4fcb2e1229dda8ef',
      'version 2 manifest without a System-Identifier',
    ],
    [
      'a negative size',
      V1_BODY.map((l) => l.replace('"Size": 8192', '"Size": -1')),
      '3f6b497451872fe17d848bc6c17562a0479c14d17533bce9f76e39b9918aa802',
      "file 3: 'pg_tblspc/16390/PG_15_202209061/5/16391': bad Size",
    ],
  ])('rejects %s (its checksum intact)', (_what, body, sum, reason) => {
    expect(() => parsePgManifest(manifest(body, sum), 'k')).toThrow(`unable to read backup manifest 'k': ${reason}`);
  });
});
