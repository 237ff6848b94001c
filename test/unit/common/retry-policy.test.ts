import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelayMs, validateRetryPolicy, withRetry, type RetryPolicy } from '../../../src/common/retry.js';
import { ArchiveDuplicateError, ConfigError, IdentityLostError, StorageError } from '../../../src/common/errors.js';
import { UPLOAD_RETRY, reconnectPolicy, uploadMayPass } from '../../../src/walstream/receiver.js';

describe('Backoff (the reconnect loop)', () => {
  it('doubles from the base to the cap without jitter, and starts over on reset', () => {
    const b = new Backoff(reconnectPolicy({ reconnectMinMs: 1000, reconnectMaxMs: 30_000 }));
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000,
    ]);
    b.reset();
    expect(b.next()).toBe(1000);
  });

  it('with full jitter draws within the window', () => {
    const policy: RetryPolicy = { maxAttempts: Infinity, baseDelayMs: 100, maxDelayMs: 1000, factor: 2 };
    const b = new Backoff(policy, () => 0.5);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([50, 100, 200, 400, 500]);
    expect(backoffDelayMs(3, { ...policy, jitter: 'none' })).toBe(400);
  });

  it('refuses a nonsense policy, accepts an endless one', () => {
    expect(() => new Backoff({ maxAttempts: Infinity, baseDelayMs: 10, maxDelayMs: 5, factor: 2 })).toThrow(ConfigError);
    expect(() => validateRetryPolicy({ maxAttempts: 0.5, baseDelayMs: 0, maxDelayMs: 0, factor: 1 })).toThrow(/maxAttempts/);
    expect(validateRetryPolicy(UPLOAD_RETRY)).toBe(UPLOAD_RETRY);
  });
});

describe('the upload policy', () => {
  it('is 1 s doubling to 30 s, without end', () => {
    expect(UPLOAD_RETRY).toMatchObject({ maxAttempts: Infinity, baseDelayMs: 1000, maxDelayMs: 30_000, factor: 2, jitter: 'none' });
  });

  it.each([
    [new StorageError('unable to put object: ECONNRESET', { retryable: true }), true],
    [Object.assign(new Error('raw'), { code: 'EIO' }), true],
    [new StorageError('unable to put object: access denied', { retryable: false }), false],
    [new ArchiveDuplicateError('unable to archive: different content'), false],
    [new IdentityLostError('unable to archive: identity lost'), false],
  ])('%s may pass: %s', (err, mayPass) => {
    expect(uploadMayPass(err)).toBe(mayPass);
  });

  it('retries what may pass until it succeeds, and gives a refusal back after one attempt', async () => {
    const fast = { ...UPLOAD_RETRY, baseDelayMs: 0, maxDelayMs: 0 };
    let calls = 0;
    const outage = new StorageError('unable to put object: ECONNRESET', { retryable: true });
    const retried: number[] = [];
    const value = await withRetry(
      async () => {
        calls++;
        if (calls < 7) throw outage;
        return 'ok';
      },
      fast,
      { retryable: uploadMayPass, onRetry: (i) => retried.push(i.attempt) },
    );
    expect(value).toBe('ok');
    expect(retried).toEqual([1, 2, 3, 4, 5, 6]);

    calls = 0;
    const refusal = new ArchiveDuplicateError('unable to archive: different content');
    await expect(
      withRetry(
        async () => {
          calls++;
          throw refusal;
        },
        fast,
        { retryable: uploadMayPass },
      ),
    ).rejects.toBe(refusal);
    expect(calls).toBe(1);
  });
});
