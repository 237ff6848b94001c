/** The harness's pure helpers (no server needed). */
import { afterEach, describe, expect, it } from 'vitest';
import { majorOfVersion } from '../../../tools/pgcluster/binaries.js';
import { confLine, hbaContent } from '../../../tools/pgcluster/conf.js';
import { segmentRange } from '../../../tools/pgcluster/datadir.js';
import { supportedMajors } from '../../support/cluster.js';

describe('postgresql.conf lines', () => {
  it.each([
    ['fsync', false, 'fsync = off'],
    ['hot_standby', true, 'hot_standby = on'],
    ['max_wal_senders', 10, 'max_wal_senders = 10'],
    ['wal_keep_size', '64MB', "wal_keep_size = '64MB'"],
    ['archive_command', "test ! -f '/a/%f' && cp '%p' '/a/%f'", "archive_command = 'test ! -f ''/a/%f'' && cp ''%p'' ''/a/%f'''"],
    ['restore_command', 'copy C:\\x %p', "restore_command = 'copy C:\\\\x %p'"],
  ] as const)('%s', (name, value, line) => {
    expect(confLine(name, value)).toBe(line);
  });

  it('rejects setting names that could inject lines', () => {
    expect(() => confLine('port = 1\nfsync', 1)).toThrow(/invalid/);
  });
});

describe('pg_hba.conf', () => {
  it('puts extra lines before the trust lines (first match wins)', () => {
    const lines = hbaContent(['host all alice 127.0.0.1/32 scram-sha-256']).split('\n');
    const extra = lines.findIndex((l) => l.includes('alice'));
    const trust = lines.findIndex((l) => l.includes('127.0.0.1/32') && l.endsWith('trust'));
    expect(extra).toBeGreaterThan(0);
    expect(extra).toBeLessThan(trust);
    expect(lines.filter((l) => /^host\s/.test(l)).every((l) => l.includes('127.0.0.1/32'))).toBe(true);
  });
});

describe('segmentRange', () => {
  it('crosses a log boundary with 16 MiB segments (256 per log)', () => {
    expect(segmentRange('0000000100000000000000FE', '000000010000000100000001', 16 * 1024 * 1024)).toEqual([
      '0000000100000000000000FE',
      '0000000100000000000000FF',
      '000000010000000100000000',
      '000000010000000100000001',
    ]);
  });

  it('crosses a log boundary with 1 MiB segments (4096 per log)', () => {
    expect(segmentRange('000000020000000000000FFF', '000000020000000100000000', 1024 * 1024)).toEqual([
      '000000020000000000000FFF',
      '000000020000000100000000',
    ]);
  });
});

describe('version parsing', () => {
  it.each([
    ['15.18', 15],
    ['13.23', 13],
    ['18beta1', 18],
    ['17rc1', 17],
  ])('%s is major %i', (v, m) => {
    expect(majorOfVersion(v)).toBe(m);
  });
});

describe('supportedMajors', () => {
  const saved = process.env['WALVAULT_TEST_MAJORS'];
  afterEach(() => {
    if (saved === undefined) delete process.env['WALVAULT_TEST_MAJORS'];
    else process.env['WALVAULT_TEST_MAJORS'] = saved;
  });

  it('reads WALVAULT_TEST_MAJORS', () => {
    process.env['WALVAULT_TEST_MAJORS'] = '15, 17';
    expect(supportedMajors()).toEqual([15, 17]);
  });

  it('rejects nonsense instead of testing nothing', () => {
    process.env['WALVAULT_TEST_MAJORS'] = '15,abc';
    expect(() => supportedMajors()).toThrow(/invalid/);
  });

  it('defaults to every installed major', () => {
    delete process.env['WALVAULT_TEST_MAJORS'];
    expect(supportedMajors().length).toBeGreaterThan(0);
  });
});
