import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  fetchOutcomeOf,
  parseFetchUnavailable,
  restoreExitCode,
  type FetchOutcome,
  type FetchUnavailable,
} from '../../../src/cli/fetch-exit.js';
import {
  ArchiveMismatchError,
  ConfigError,
  CryptoError,
  IntegrityError,
  InvalidNameError,
  InvalidWalError,
  LocalIoError,
  NotFoundError,
  NotInArchiveError,
  StorageError,
  TimelineError,
  UsageError,
} from '../../../src/common/errors.js';

// PostgreSQL reads 1..125 as "no such file" (a point-in-time recovery ends and promotes) and >125 as
// fatal. Every cell written out by hand: outcome x standby.signal x fetch-unavailable.
const TABLE: ReadonlyArray<[FetchOutcome, boolean, FetchUnavailable, number]> = [
  ['restored', false, 'auto', 0],
  ['restored', false, 'abort', 0],
  ['restored', false, 'retry', 0],
  ['restored', true, 'auto', 0],
  ['restored', true, 'abort', 0],
  ['restored', true, 'retry', 0],
  ['not-in-archive', false, 'auto', 1],
  ['not-in-archive', false, 'abort', 1],
  ['not-in-archive', false, 'retry', 1],
  ['not-in-archive', true, 'auto', 1],
  ['not-in-archive', true, 'abort', 1],
  ['not-in-archive', true, 'retry', 1],
  ['integrity', false, 'auto', 128],
  ['integrity', false, 'abort', 128],
  ['integrity', false, 'retry', 128],
  ['integrity', true, 'auto', 128],
  ['integrity', true, 'abort', 128],
  ['integrity', true, 'retry', 128],
  ['unavailable', false, 'auto', 128],
  ['unavailable', false, 'abort', 128],
  ['unavailable', false, 'retry', 3],
  ['unavailable', true, 'auto', 3],
  ['unavailable', true, 'abort', 128],
  ['unavailable', true, 'retry', 3],
  ['misconfigured', false, 'auto', 128],
  ['misconfigured', false, 'abort', 128],
  ['misconfigured', false, 'retry', 3],
  ['misconfigured', true, 'auto', 3],
  ['misconfigured', true, 'abort', 128],
  ['misconfigured', true, 'retry', 3],
];

describe('restoreExitCode', () => {
  it('covers every combination exactly once', () => {
    const keys = new Set(TABLE.map(([o, s, u]) => `${o}/${s}/${u}`));
    expect(keys.size).toBe(5 * 2 * 3);
  });

  it.each(TABLE)('%s, standby %s, fetch-unavailable %s -> %i', (outcome, standby, setting, code) => {
    expect(restoreExitCode(outcome, standby, setting)).toBe(code);
  });

  it('never answers a code PostgreSQL reads as "no such file" unless the file is proven absent', () => {
    for (const [outcome, standby, setting] of TABLE) {
      const code = restoreExitCode(outcome, standby, setting);
      if (outcome !== 'not-in-archive' && code >= 1 && code <= 125 && !(standby || setting === 'retry')) {
        throw new Error(`${outcome}/${String(standby)}/${setting} gave ${code}`);
      }
    }
  });

  it('spells "not in the archive" as the launcher asks (81), nothing else', () => {
    expect(restoreExitCode('not-in-archive', false, 'auto', 81)).toBe(81);
    expect(restoreExitCode('unavailable', true, 'auto', 81)).toBe(3);
  });
});

describe('fetchOutcomeOf', () => {
  it.each([
    ['NotInArchiveError', new NotInArchiveError('x'), 'not-in-archive'],
    // A NotFoundError that is not the archive's answer (an object gone mid-read) proves nothing.
    ['NotFoundError', new NotFoundError('x'), 'unavailable'],
    ['IntegrityError', new IntegrityError('x'), 'integrity'],
    ['ArchiveMismatchError', new ArchiveMismatchError('x'), 'integrity'],
    ['CryptoError', new CryptoError('x'), 'integrity'],
    ['InvalidWalError', new InvalidWalError('x'), 'integrity'],
    ['TimelineError', new TimelineError('x'), 'integrity'],
    ['UsageError', new UsageError('x'), 'misconfigured'],
    ['ConfigError', new ConfigError('x'), 'misconfigured'],
    ['InvalidNameError', new InvalidNameError('x'), 'misconfigured'],
    ['CommanderError', new CommanderError(1, 'commander.excessArguments', 'x'), 'misconfigured'],
    ['StorageError', new StorageError('x'), 'unavailable'],
    ['LocalIoError', new LocalIoError('x'), 'unavailable'],
    ['TypeError', new TypeError('x'), 'unavailable'],
    ['a string', 'boom', 'unavailable'],
  ] as const)('%s -> %s', (_label, err, outcome) => {
    expect(fetchOutcomeOf(err)).toBe(outcome);
  });
});

describe('parseFetchUnavailable', () => {
  it.each([
    ['auto', 'auto'],
    [' retry ', 'retry'],
    ['abort', 'abort'],
    ['Retry', undefined],
    ['', undefined],
    [undefined, undefined],
    [3, undefined],
  ])('%j -> %j', (raw, expected) => {
    expect(parseFetchUnavailable(raw)).toBe(expected);
  });
});
