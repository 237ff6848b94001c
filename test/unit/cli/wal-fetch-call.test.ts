import { afterEach, describe, expect, it, vi } from 'vitest';
import { IntegrityError, NotFoundError, NotInArchiveError, StorageError, UsageError } from '../../../src/common/errors.js';
import { walFetchArgumentsExitCode, walFetchCall, walFetchExitCode, type WalFetchFailure } from '../../../src/cli/wal-fetch-call.js';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('walFetchCall', () => {
  it('is restore_command with a name and a path', () => {
    expect(walFetchCall('000000010000000000000003', 'pg_wal/RECOVERYXLOG', {})).toEqual({
      kind: 'restore',
      name: '000000010000000000000003',
      path: 'pg_wal/RECOVERYXLOG',
    });
  });

  it('is the operator fetch with --lsn, the name being the destination (made absolute)', () => {
    expect(walFetchCall('/tmp/seg', undefined, { lsn: '0/800010', timeline: '2' })).toEqual({
      kind: 'lsn',
      lsn: '0/800010',
      timeline: '2',
      dest: '/tmp/seg',
    });
  });

  const refused: ReadonlyArray<[string, string | undefined, { lsn?: string; timeline?: string }, RegExp]> = [
    ['/tmp/seg', 'extra', { lsn: '0/1' }, /give only the destination/],
    ['000000010000000000000003', 'p', { timeline: '2' }, /--timeline goes with --lsn/],
    ['000000010000000000000003', undefined, {}, /missing <path>/],
  ];
  it.each(refused)('refuses %s %s %o as a usage error', (name, path, flags, message) => {
    expect(() => walFetchCall(name, path, flags)).toThrow(UsageError);
    expect(() => walFetchCall(name, path, flags)).toThrow(message);
  });
});

describe('walFetchExitCode', () => {
  // The test runs outside a data directory, so no standby.signal is found: `auto` means abort (128).
  const restore = (setting: WalFetchFailure['setting'], flags: Record<string, unknown> = {}): WalFetchFailure => ({
    operatorCommand: false,
    walPath: undefined,
    setting,
    flags,
  });
  const operator: WalFetchFailure = { operatorCommand: true, walPath: undefined, setting: 'auto', flags: {} };

  const table: ReadonlyArray<[string, unknown, WalFetchFailure, number]> = [
    ['not in the archive', new NotInArchiveError('x'), restore('auto'), 1],
    ['integrity', new IntegrityError('x'), restore('retry'), 128],
    ['unreachable, auto, no standby', new StorageError('x'), restore('auto'), 128],
    ['unreachable, retry: 3, which PostgreSQL reads as "not yet"', new StorageError('x'), restore('retry'), 3],
    ['settings not loaded: the flag decides', new StorageError('x'), restore(undefined, { fetchUnavailable: 'retry' }), 3],
    ['operator: not found is 1', new NotFoundError('x'), operator, 1],
    ['operator: any other failure keeps its code', new StorageError('x'), operator, 2],
  ];
  it.each(table)('%s', (_what, err, failure, code) => {
    expect(walFetchExitCode(err, 2, failure)).toBe(code);
  });

  it('spells "not found" as the launcher asks (WALVAULT_NOT_FOUND_EXIT), within 1..125 only', () => {
    vi.stubEnv('WALVAULT_NOT_FOUND_EXIT', '81');
    expect(walFetchExitCode(new NotInArchiveError('x'), 3, restore('auto'))).toBe(81);
    vi.stubEnv('WALVAULT_NOT_FOUND_EXIT', '200');
    expect(walFetchExitCode(new NotInArchiveError('x'), 3, restore('auto'))).toBe(1);
  });

  it('takes fetch-unavailable from the environment when neither the settings nor the flag give it', () => {
    vi.stubEnv('WALVAULT_FETCH_UNAVAILABLE', 'retry');
    expect(walFetchExitCode(new StorageError('x'), 2, restore(undefined))).toBe(3);
  });
});

describe('walFetchArgumentsExitCode', () => {
  const table: ReadonlyArray<[readonly string[], number, number]> = [
    [['--help'], 0, 0],
    [['--help', '000000010000000000000003'], 0, 128],
    [['000000010000000000000003'], 1, 128],
    [['--fetch-unavailable', 'retry', 'a', 'b', 'c'], 1, 3],
    [['--fetch-unavailable=retry', 'a', 'b', 'c'], 1, 3],
    [['--fetch-unavailable=bogus', 'a', 'b', 'c'], 1, 128],
  ];
  it.each(table)('%o (parser exit %i) -> %i', (args, parserCode, code) => {
    vi.stubEnv('WALVAULT_FETCH_UNAVAILABLE', '');
    expect(walFetchArgumentsExitCode(args, parserCode)).toBe(code);
  });
});
