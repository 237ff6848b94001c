import { describe, expect, it } from 'vitest';
import { AbortedError, ConfigError, StorageError } from '../../../src/common/errors.js';
import {
  backoffDelayMs,
  isRetryable,
  sleep,
  validateRetryPolicy,
  withRetry,
  type RetryInfo,
  type RetryPolicy,
} from '../../../src/common/retry.js';

const POLICY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000, factor: 2 };
const TINY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 2, factor: 2 };

const transient = (): StorageError => new StorageError('unable to write object: HTTP 503 SlowDown', { retryable: true });
const permanent = (): StorageError => new StorageError('unable to write object: access denied', { retryable: false });

describe('backoffDelayMs (full jitter)', () => {
  it.each([
    // attempt, random, expected: window = min(1000, 100 * 2^(attempt-1)); delay = floor(random * window)
    [1, 0.5, 50],
    [2, 0.5, 100],
    [3, 0.5, 200],
    [4, 0.5, 400],
    [5, 0.5, 500],
    [9, 0.5, 500],
    [3, 0, 0],
    [3, 0.999, 399],
  ])('attempt %i with random %f waits %i ms', (attempt, random, expected) => {
    expect(backoffDelayMs(attempt, POLICY, () => random)).toBe(expected);
  });
});

describe('withRetry', () => {
  it('retries retryable failures until one attempt succeeds', async () => {
    const seen: RetryInfo[] = [];
    let calls = 0;
    const result = await withRetry(
      async (attempt) => {
        calls++;
        expect(attempt).toBe(calls);
        if (attempt < 3) throw transient();
        return 'done';
      },
      POLICY,
      { onRetry: (info) => seen.push(info), random: () => 0.01 },
    );
    expect(result).toBe('done');
    expect(calls).toBe(3);
    expect(seen.map((s) => [s.attempt, s.delayMs])).toEqual([
      [1, 1],
      [2, 2],
    ]);
  });

  it('stops at once on a non-retryable failure', async () => {
    let calls = 0;
    const err = permanent();
    await expect(
      withRetry(async () => {
        calls++;
        throw err;
      }, TINY),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
  });

  it('gives up after maxAttempts and rethrows the last error unchanged', async () => {
    let calls = 0;
    const errors: Error[] = [];
    await expect(
      withRetry(async () => {
        calls++;
        const e = transient();
        errors.push(e);
        throw e;
      }, TINY),
    ).rejects.toSatisfy((e) => e === errors[3]);
    expect(calls).toBe(4);
  });

  it('maxAttempts 1 means no retry', async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw transient();
        },
        { ...TINY, maxAttempts: 1 },
      ),
    ).rejects.toThrow('SlowDown');
    expect(calls).toBe(1);
  });

  it('retries raw network errors by code, not other raw errors', async () => {
    let calls = 0;
    await withRetry(async () => {
      if (++calls === 1) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    }, TINY);
    expect(calls).toBe(2);
    calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw new TypeError('bug');
      }, TINY),
    ).rejects.toThrow(TypeError);
    expect(calls).toBe(1);
  });

  it('an abort during the backoff ends the wait at once', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 20);
    const err = await withRetry(
      async () => {
        throw transient();
      },
      { maxAttempts: 5, baseDelayMs: 10_000, maxDelayMs: 10_000, factor: 1 },
      { signal: controller.signal, random: () => 0.99 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('does not start when the signal has already fired', async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
        },
        TINY,
        { signal: AbortSignal.abort() },
      ),
    ).rejects.toBeInstanceOf(AbortedError);
    expect(calls).toBe(0);
  });

  it('does not retry a failure that happened because of the abort', async () => {
    const controller = new AbortController();
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          controller.abort();
          throw transient();
        },
        TINY,
        { signal: controller.signal },
      ),
    ).rejects.toThrow('SlowDown');
    expect(calls).toBe(1);
  });
});

describe('isRetryable', () => {
  it.each([
    [new StorageError('x', { retryable: true }), true],
    [new StorageError('x', { retryable: false }), false],
    [new StorageError('x'), false],
    [Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), true],
    [Object.assign(new Error('x'), { code: 'EPIPE' }), true],
    [Object.assign(new Error('x'), { code: 'ETIMEDOUT' }), true],
    [Object.assign(new Error('x'), { code: 'ENOENT' }), false],
    [new Error('socket hang up'), false],
    [null, false],
    ['ECONNRESET', false],
  ])('%s -> %s', (err, expected) => {
    expect(isRetryable(err)).toBe(expected);
  });
});

describe('validateRetryPolicy and sleep', () => {
  it.each([
    { ...POLICY, maxAttempts: 0 },
    { ...POLICY, maxAttempts: 1.5 },
    { ...POLICY, baseDelayMs: -1 },
    { ...POLICY, maxDelayMs: 50 },
    { ...POLICY, factor: 0.5 },
    { ...POLICY, factor: Number.NaN },
  ])('rejects %j', (policy) => {
    expect(() => validateRetryPolicy(policy)).toThrow(ConfigError);
  });

  it('accepts a sane policy unchanged', () => {
    expect(validateRetryPolicy(POLICY)).toBe(POLICY);
  });

  it('sleep resolves, and rejects with AbortedError when aborted', async () => {
    await sleep(1);
    await expect(sleep(10_000, AbortSignal.timeout(10))).rejects.toBeInstanceOf(AbortedError);
  });
});
