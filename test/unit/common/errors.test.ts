import { describe, expect, it } from 'vitest';
import {
  type DomainError,
  ExitCode,
  InvalidLsnError,
  InvalidTimelineError,
  ReplicationError,
  UsageError,
  asUsageError,
  exitCodeOf,
  isPgRefusal,
  sqlStateOf,
} from '../../../src/common/errors.js';
import { addLsn, MAX_LSN, parseLsn } from '../../../src/segment/lsn.js';
import { timeline } from '../../../src/segment/timeline.js';
import { lsnArg, timelineArg } from '../../../src/cli/args.js';

describe('domain errors of the pure core', () => {
  it('a bad LSN or timeline from anywhere but the operator is a failure, not a usage error', () => {
    const cases: Array<[() => unknown, new (...a: never[]) => DomainError]> = [
      [() => parseLsn('garbage'), InvalidLsnError],
      [() => addLsn(MAX_LSN, 1), InvalidLsnError],
      [() => timeline(0), InvalidTimelineError],
    ];
    for (const [fn, cls] of cases) {
      let thrown: unknown;
      try {
        fn();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(cls);
      expect(thrown).not.toBeInstanceOf(UsageError);
      expect(exitCodeOf(thrown)).toBe(ExitCode.failure);
    }
  });

  it("the operator's own arguments map to UsageError (exit 2), keeping the message and the cause", () => {
    const original = new InvalidTimelineError('unable to use timeline 0: nope');
    const mapped = asUsageError(original) as UsageError;
    expect(mapped).toBeInstanceOf(UsageError);
    expect(mapped.message).toBe(original.message);
    expect(mapped.cause).toBe(original);
    const other = new ReplicationError('unable to stream: x');
    expect(asUsageError(other)).toBe(other);

    expect(() => timelineArg('0')).toThrow(UsageError);
    expect(exitCodeOf(catching(() => timelineArg('0')))).toBe(ExitCode.usage);
    expect(exitCodeOf(catching(() => lsnArg('--from', '1/XYZ')))).toBe(ExitCode.usage);
  });
});

describe('SQLSTATE classification', () => {
  it('finds the code node-postgres puts on a server error, also through causes', () => {
    const pgError = Object.assign(new Error('replication slot "s" existiert bereits'), { code: '42710' });
    expect(sqlStateOf(pgError)).toBe('42710');
    expect(sqlStateOf(new ReplicationError('unable to run replication command', { cause: pgError }))).toBe('42710');
    // Node's own five-letter codes are not SQLSTATEs.
    expect(sqlStateOf(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).toBeUndefined();
    expect(sqlStateOf(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBeUndefined();
    expect(sqlStateOf(new Error('Connection terminated unexpectedly'))).toBeUndefined();
    expect(sqlStateOf('text')).toBeUndefined();
  });

  it.each([
    ['28000', true],
    ['28P01', true],
    ['42501', true],
    ['53300', false],
    ['57P01', false],
    ['57P03', false],
    ['08006', false],
    ['42710', false],
    [undefined, false],
  ])('%s is a refusal no retry fixes: %s', (code, refusal) => {
    expect(isPgRefusal(code)).toBe(refusal);
  });
});

function catching(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}
