/**
 * Bounded retries with exponential backoff and full jitter. The policy is plain data so it can come
 * from configuration and be printed. Retries happen in exactly one layer: storage drivers that talk
 * to a network wrap each request in `withRetry`; callers above them must not wrap again (attempts
 * would multiply).
 */
import { AbortedError, ConfigError, WalvaultError } from './errors.js';

export interface RetryPolicy {
  /**
   * Total attempts including the first one; 1 means no retry. Infinity only where something else
   * bounds the cost (the streaming agent: the replication slot keeps the WAL while it retries).
   */
  readonly maxAttempts: number;
  /** Cap of the first backoff window. */
  readonly baseDelayMs: number;
  /** No backoff window grows beyond this. */
  readonly maxDelayMs: number;
  /** Growth of the window per failed attempt. */
  readonly factor: number;
  /**
   * 'full' (the default): uniform in [0, window), for many clients failing together. 'none': the
   * window itself, for one agent reconnecting to one server, where a predictable delay is easier
   * to read in the logs.
   */
  readonly jitter?: 'full' | 'none';
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  factor: 2,
});

export interface RetryInfo {
  /** The attempt that just failed (1-based). */
  attempt: number;
  /** How long we wait before the next attempt. */
  delayMs: number;
  error: unknown;
}

export interface RetryOptions {
  signal?: AbortSignal | undefined;
  /** Called before each backoff sleep, e.g. to log a warning. */
  onRetry?: (info: RetryInfo) => void;
  /** Which failures are worth another attempt; defaults to `isRetryable`. */
  retryable?: (err: unknown) => boolean;
  /** Source of randomness in [0, 1); tests pass a fixed one. */
  random?: () => number;
}

/** Node/undici error codes of network failures that a new connection may not hit again. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
]);

/** Whether a failure may go away by itself: ours say so explicitly; raw Node errors by their code. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof WalvaultError) return err.retryable;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && TRANSIENT_CODES.has(code);
}

export function isTransientNetworkCode(code: unknown): boolean {
  return typeof code === 'string' && TRANSIENT_CODES.has(code);
}

/** Rejects nonsense early, with the offending field named. */
export function validateRetryPolicy(policy: RetryPolicy): RetryPolicy {
  const bad = (field: string, why: string): never => {
    throw new ConfigError(`unable to use retry policy: ${field} ${why}`);
  };
  if (!(Number.isInteger(policy.maxAttempts) || policy.maxAttempts === Infinity) || policy.maxAttempts < 1) {
    bad('maxAttempts', 'must be an integer >= 1 (or Infinity)');
  }
  if (!(policy.baseDelayMs >= 0)) bad('baseDelayMs', 'must be >= 0');
  if (!(policy.maxDelayMs >= policy.baseDelayMs)) bad('maxDelayMs', 'must be >= baseDelayMs');
  if (!(policy.factor >= 1)) bad('factor', 'must be >= 1');
  return policy;
}

/**
 * Full jitter (uniform in [0, window)): spreads out clients that failed together, which matters for
 * throttling (503 SlowDown) more than a short mean delay does.
 */
export function backoffDelayMs(failedAttempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const window = Math.min(policy.maxDelayMs, policy.baseDelayMs * policy.factor ** Math.max(0, failedAttempt - 1));
  return policy.jitter === 'none' ? window : Math.floor(random() * window);
}

/**
 * The delays of a loop that never gives up by itself (reconnecting): each `next()` is the wait
 * after one more failure; `reset()` starts over, e.g. after a session that went well for a while.
 */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly policy: RetryPolicy,
    private readonly random: () => number = Math.random,
  ) {
    validateRetryPolicy(policy);
  }

  /** The wait before the next attempt; counts one more failure. */
  next(): number {
    this.failures++;
    return backoffDelayMs(this.failures, this.policy, this.random);
  }

  reset(): void {
    this.failures = 0;
  }
}

/** Resolves after `ms`, or rejects with AbortedError as soon as the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortedWhileWaiting(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortedWhileWaiting(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortedWhileWaiting(signal: AbortSignal): AbortedError {
  return new AbortedError('unable to wait before the next attempt: aborted', { cause: signal.reason });
}

/**
 * Runs `fn` until it succeeds, fails with a non-retryable error, or `policy.maxAttempts` attempts
 * have failed; then rethrows the last error unchanged (callers word the final message).
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy, opts: RetryOptions = {}): Promise<T> {
  const retryable = opts.retryable ?? isRetryable;
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) throw new AbortedError('unable to start the next attempt: aborted', { cause: opts.signal.reason });
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.maxAttempts || opts.signal?.aborted || !retryable(err)) throw err;
      const delayMs = backoffDelayMs(attempt, policy, opts.random);
      opts.onRetry?.({ attempt, delayMs, error: err });
      await sleep(delayMs, opts.signal);
    }
  }
}
