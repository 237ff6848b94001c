import { describe, expect, it } from 'vitest';
import type { ArchiveIdentity } from '../../../../src/archive/identity.js';
import { UsageError } from '../../../../src/common/errors.js';
import { intArg, lsnArg, timelineArg } from '../../../../src/cli/args.js';
import type { CheckReport } from '../../../../src/ops/check.js';
import type { DeletePlan } from '../../../../src/ops/delete.js';
import { archiverFailing } from '../../../../src/postgres/sql.js';
import { renderCheck, renderDeleteOutcome, renderDeletePlan, renderStatus, renderVerify } from '../../../../src/cli/render/reports.js';
import { parseBefore, type RetentionObject } from '../../../../src/archive/catalog/retention.js';
import type { StatusReport } from '../../../../src/ops/status.js';
import type { VerifyReport } from '../../../../src/ops/verify.js';

const identity: ArchiveIdentity = {
  formatVersion: 1,
  systemId: '7712183698484992009',
  pgMajor: 15,
  walSegSize: 1048576,
  createdAt: '2024-05-01T00:00:00.000Z',
  createdBy: 'test',
};

describe('renderVerify', () => {
  const base: VerifyReport = {
    archive: 's3://b/db1',
    identity,
    deep: false,
    timelines: [1, 2],
    range: { from: null, to: null },
    segments: 12,
    objects: 14,
    bytesRead: 2048,
    fromRecord: 0,
    problems: [],
    notes: [],
    durationMs: 1500,
  };

  it('says OK when nothing is wrong', () => {
    expect(renderVerify(base)).toBe(
      [
        'archive: s3://b/db1 (system 7712183698484992009, PostgreSQL 15, 1.00 MiB segments)',
        'checked: timelines 1, 2; 12 segments, 14 objects (headers; add --deep to download and verify every object), 2.00 KiB read in 2 s',
        'OK: no problems found',
      ].join('\n'),
    );
  });

  it('lists every problem on its own line', () => {
    const text = renderVerify({
      ...base,
      deep: true,
      timelines: [2],
      range: { from: '0/3000000', to: null },
      notes: ['timeline 3 has a history file but no segments yet'],
      problems: [
        {
          kind: 'gap',
          timeline: 1,
          subject: '000000010000000000000004',
          through: '000000010000000000000005',
          message: 'missing 000000010000000000000004 .. 000000010000000000000005 (2 segments)',
        },
        { kind: 'damaged', timeline: 2, subject: 'wal/x', message: 'unable to restore it' },
      ],
    });
    expect(text.split('\n').slice(1)).toEqual([
      'checked: timeline 2, LSN 0/3000000 .. end; 12 segments, 14 objects (downloaded and verified in full), 2.00 KiB read in 2 s',
      'note: timeline 3 has a history file but no segments yet',
      'PROBLEMS: 2',
      '  [gap] timeline 1 missing 000000010000000000000004 .. 000000010000000000000005 (2 segments)',
      '  [damaged] timeline 2 wal/x: unable to restore it',
    ]);
  });
});

describe('renderCheck', () => {
  it('prints one aligned line per item and the verdict', () => {
    const report: CheckReport = {
      archive: 'file:///a',
      ok: false,
      items: [
        { name: 'postgresql', status: 'ok', detail: 'PostgreSQL 15' },
        { name: 'archive_mode', status: 'fail', detail: 'off' },
        { name: 'slot', status: 'skip', detail: 'no slot' },
        { name: 'identity', status: 'warn', detail: 'none yet' },
      ],
    };
    expect(renderCheck(report)).toBe(
      [
        'archive: file:///a',
        'ok    postgresql    PostgreSQL 15',
        'FAIL  archive_mode  off',
        'skip  slot          no slot',
        'warn  identity      none yet',
        'check FAILED: archive_mode',
      ].join('\n'),
    );
  });
});

describe('renderStatus', () => {
  it('answers lag, queue and the last failure at a glance', () => {
    const report: StatusReport = {
      source: 'postgresql',
      state: 'failing',
      stateReason: null,
      archive: { description: 'file:///a', systemId: '1', pgMajor: 15, walSegSize: 16777216 },
      server: { description: 'db1:5432 as walvault', version: '15.18', inRecovery: false, timeline: 1, currentLsn: '0/5000060' },
      lastArchived: { segment: '000000010000000000000003', endLsn: '0/4000000', at: '2024-05-01T03:00:00.000Z' },
      lag: { bytes: 16777312, seconds: 125 },
      queue: 1,
      archiver: {
        archivedCount: 3,
        failedCount: 2,
        lastArchivedWal: '000000010000000000000003',
        lastArchivedTime: '2024-05-01T03:00:00.000Z',
        lastFailedWal: '000000010000000000000004',
        lastFailedTime: '2024-05-01T03:01:00.000Z',
      },
      lastError: 'archive_command failed for 000000010000000000000004',
      agent: null,
      unavailable: [],
    };
    expect(renderStatus(report, new Date('2024-05-01T03:02:05Z'))).toBe(
      [
        'state:         FAILING',
        'source:        postgresql',
        'archive:       file:///a (system 1, PostgreSQL 15, 16.0 MiB segments)',
        'server:        db1:5432 as walvault, PostgreSQL 15.18, primary, timeline 1, at 0/5000060',
        'last archived: 000000010000000000000003 (up to 0/4000000), 2024-05-01 03:00:00Z (2 min 5 s ago)',
        'archive lag:   16.0 MiB, 2 min 5 s',
        'queue:         1 WAL file waiting',
        'archiver:      3 archived, 2 failed; last failure 000000010000000000000004 at 2024-05-01 03:01:00Z',
        'last error:    archive_command failed for 000000010000000000000004',
      ].join('\n'),
    );
  });

  it('says UNKNOWN and why, and never prints a bare ? for what it could not measure', () => {
    const report: StatusReport = {
      source: 'archive',
      state: 'unknown',
      stateReason: 'the lag cannot be measured without PostgreSQL or the agent (postgresql: connection refused)',
      archive: { description: 'file:///a', systemId: '1', pgMajor: 15, walSegSize: 16777216 },
      server: null,
      lastArchived: { segment: '000000010000000000000003', endLsn: '0/4000000', at: '2024-05-01T03:00:00.000Z' },
      lag: { bytes: null, seconds: null },
      queue: null,
      archiver: null,
      lastError: null,
      agent: null,
      unavailable: ['postgresql: connection refused'],
    };
    const text = renderStatus(report, new Date('2024-05-01T03:02:05Z'));
    expect(text).toBe(
      [
        'state:         UNKNOWN: the lag cannot be measured without PostgreSQL or the agent (postgresql: connection refused)',
        'source:        archive',
        'archive:       file:///a (system 1, PostgreSQL 15, 16.0 MiB segments)',
        'last archived: 000000010000000000000003 (up to 0/4000000), 2024-05-01 03:00:00Z (2 min 5 s ago)',
        'archive lag:   unknown bytes, unknown time',
        'queue:         unknown',
        'last error:    none',
        'unavailable:   postgresql: connection refused',
      ].join('\n'),
    );
    expect(text).not.toMatch(/\?/);
  });
});

describe('renderDeletePlan', () => {
  const obj = (fileName: string, segno: number | undefined, kind: RetentionObject['kind']): RetentionObject => ({
    fileName,
    kind,
    timeline: Number.parseInt(fileName.slice(0, 8), 16),
    ...(segno !== undefined ? { segno: BigInt(segno) } : {}),
    storedBytes: 1024,
    key: `k/${fileName}`,
    mtime: new Date(0),
  });

  it('summarises the cut per timeline and says what stays', () => {
    const plan: DeletePlan = {
      archive: 'file:///a',
      identity,
      before: parseBefore('0/600000', 1048576, new Date()),
      objects: 9,
      historyFailures: [],
      plan: {
        cutoff: 6n,
        delete: [
          obj('000000010000000000000004', 4, 'segment'),
          obj('000000010000000000000005', 5, 'segment'),
          obj('00000002.history', undefined, 'history'),
        ],
        kept: [{ fileName: '000000030000000000000009', reason: 'the newest segment of the newest timeline' }],
      },
    };
    expect(renderDeletePlan(plan)).toBe(
      [
        'archive: file:///a',
        'cut: before LSN 0/600000: WAL files of segments before 0/600000',
        'to delete: 3 of 9 objects, 3.00 KiB stored: 2 segments, 0 partials, 0 backup labels, 1 history file',
        '  timeline 1: 000000010000000000000004 .. 000000010000000000000005 (2 files)',
        '  00000002.history',
        'kept: 000000030000000000000009: the newest segment of the newest timeline',
      ].join('\n'),
    );
    expect(renderDeleteOutcome({ deleted: 3, storedBytes: 3072, batches: 1, interrupted: false }, 3)).toBe(
      'deleted 3 objects (3.00 KiB) in 1 batch',
    );
    expect(renderDeleteOutcome({ deleted: 2, storedBytes: 2048, batches: 1, interrupted: true }, 3)).toMatch(
      /^interrupted: deleted 2 of 3 objects/,
    );
  });
});

describe('archiverFailing', () => {
  const at = (s: string | null): Date | null => (s === null ? null : new Date(s));
  it.each([
    [null, null, false],
    ['2024-05-01T03:00:00Z', null, false],
    ['2024-05-01T03:00:00Z', '2024-05-01T02:00:00Z', false],
    ['2024-05-01T03:00:00Z', '2024-05-01T03:00:01Z', true],
    [null, '2024-05-01T03:00:01Z', true],
  ])('last success %s, last failure %s: failing %s', (ok, failed, expected) => {
    expect(
      archiverFailing({
        archivedCount: 1,
        lastArchivedWal: 'x',
        lastArchivedTime: at(ok),
        failedCount: 1,
        lastFailedWal: 'y',
        lastFailedTime: at(failed),
      }),
    ).toBe(expected);
  });
});

describe('command arguments', () => {
  it('reads timelines in decimal or hex', () => {
    expect(timelineArg('2')).toBe(2);
    expect(timelineArg('0x1A')).toBe(26);
    expect(timelineArg(undefined)).toBeUndefined();
    expect(() => timelineArg('two')).toThrow(UsageError);
    expect(() => timelineArg('0')).toThrow(/timeline IDs are integers from 1/);
  });

  it('reads LSNs and bounded integers', () => {
    expect(lsnArg('--from', '16/B374D848')).toBe(0x16b374d848n);
    expect(() => lsnArg('--from', '16-B3')).toThrow(/unable to use --from '16-B3': expected two hexadecimal numbers/);
    expect(intArg('--parallel', '8', 1, 256)).toBe(8);
    expect(() => intArg('--parallel', '0', 1, 256)).toThrow(/from 1 to 256/);
  });
});
