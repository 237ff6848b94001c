import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/common/errors.js';
import { verifyRecordOption, walVerifyExitCode, walVerifyOptions } from '../../../src/cli/wal-verify-call.js';
import type { VerifyReport } from '../../../src/ops/verify.js';
import { parseLsn } from '../../../src/segment/lsn.js';

describe('walVerifyOptions', () => {
  it('is a header check of everything, 4 at a time, when no flag is given', () => {
    expect(walVerifyOptions({})).toEqual({ deep: false, recheck: false, parallel: 4 });
  });

  it('types every flag', () => {
    expect(walVerifyOptions({ timeline: '0x1A', from: '0/1000000', to: '1/0', deep: true, recheck: true, parallel: '16' })).toEqual({
      timeline: 26,
      from: parseLsn('0/1000000'),
      to: parseLsn('1/0'),
      deep: true,
      recheck: true,
      parallel: 16,
    });
  });

  const refused: ReadonlyArray<[string, Record<string, string>]> = [
    ['a timeline that is not a number', { timeline: 'two' }],
    ['an LSN without a slash', { from: '1000000' }],
    ['parallel 0', { parallel: '0' }],
    ['parallel above 256', { parallel: '257' }],
  ];
  it.each(refused)('refuses %s as a usage error', (_what, flags) => {
    expect(() => walVerifyOptions(flags)).toThrow(UsageError);
  });
});

describe('verifyRecordOption', () => {
  it('names no record when the setting is off', () => {
    expect(verifyRecordOption('off', 'file:///srv/wal')).toEqual({});
  });

  it('keys the record in a directory by the archive it describes', () => {
    const a = verifyRecordOption('/var/cache/wv', 'file:///srv/wal').recordPath;
    const b = verifyRecordOption('/var/cache/wv', 's3://bucket/wal').recordPath;
    expect(a?.startsWith(join('/var/cache/wv', 'verified-'))).toBe(true);
    expect(b?.startsWith(join('/var/cache/wv', 'verified-'))).toBe(true);
    expect(a).not.toBe(b);
  });
});

describe('walVerifyExitCode', () => {
  const report = (problems: number): VerifyReport =>
    ({ problems: Array.from({ length: problems }, () => ({})) }) as unknown as VerifyReport;
  it('is 0 without problems and 128 (integrity) with any', () => {
    expect(walVerifyExitCode(report(0))).toBe(0);
    expect(walVerifyExitCode(report(1))).toBe(128);
    expect(walVerifyExitCode(report(5))).toBe(128);
  });
});
