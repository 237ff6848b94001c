/**
 * The streaming agent's connection loop: one replication session after another until the agent
 * stops, waiting between them by the shared backoff policy (src/common/retry.ts). Only failures
 * known to pass (connection, server restart, storage outage) are retried; anything else stops the
 * agent with its own message.
 */
import type { Logger } from '../common/log.js';
import { LocalIoError, ReplicationError, WalvaultError, describeCause } from '../common/errors.js';
import { Backoff, sleep, type RetryPolicy } from '../common/retry.js';

/** Reconnects wait reconnectMinMs doubling to reconnectMaxMs, for as long as the agent runs. */
export function reconnectPolicy(opts: { readonly reconnectMinMs: number; readonly reconnectMaxMs: number }): RetryPolicy {
  return { maxAttempts: Infinity, baseDelayMs: opts.reconnectMinMs, maxDelayMs: opts.reconnectMaxMs, factor: 2, jitter: 'none' };
}

/** A session that streamed this long counts as a success: the next failure waits the shortest time. */
const HEALTHY_SESSION_MS = 30_000;

export interface Sessions {
  /** One session: connect, set up, stream. Resolves when the stream ended without a failure. */
  run(stop: AbortSignal): Promise<void>;
  /** After every session, whatever its outcome (close the connection). */
  cleanup(): Promise<void>;
  /** Whether the failed session had got as far as streaming (for the log line). */
  connected(): boolean;
  /** Every session failure, before it is judged. */
  failed(err: unknown, retried: boolean): void;
  /** Set when backpressure ended the session: settles once storage caught up. */
  paused(): Promise<void> | undefined;
}

export async function reconnectLoop(stop: AbortSignal, policy: RetryPolicy, log: Logger, sessions: Sessions): Promise<void> {
  const backoff = new Backoff(policy);
  while (!stop.aborted) {
    const started = Date.now();
    let failure: WalvaultError | undefined;
    let failedConnected = false;
    try {
      await sessions.run(stop);
    } catch (err) {
      const retried = !stop.aborted && err instanceof WalvaultError && err.retryable;
      sessions.failed(err, retried);
      if (stop.aborted) break;
      if (!retried) throw fatalStreamError(err);
      failure = err;
      failedConnected = sessions.connected();
    } finally {
      await sessions.cleanup();
    }
    if (stop.aborted) break;
    const paused = failure === undefined ? sessions.paused() : undefined;
    if (paused) {
      // Backpressure ended the stream: reconnect once storage has caught up.
      await paused;
      backoff.reset();
      continue;
    }
    if (Date.now() - started > HEALTHY_SESSION_MS) backoff.reset();
    const retryInMs = backoff.next();
    if (failure !== undefined) log.warn({ err: failure, retryInMs }, retryMessage(failure, failedConnected));
    // The server ended the stream without a next timeline (e.g. it is shutting down).
    else log.warn({ retryInMs }, 'the server ended the stream; reconnecting');
    await sleep(retryInMs, stop).catch(() => undefined);
  }
}

/** What a retried session failure is called: a connection never made is not a connection "lost". */
function retryMessage(err: WalvaultError, wasConnected: boolean): string {
  if (!(err instanceof ReplicationError)) return 'unable to stream; retrying';
  return wasConnected ? 'replication connection lost; reconnecting' : 'unable to connect to the server; retrying';
}

/** Errors without our type (raw file-system errors) still leave with one `unable to ...` line. */
export function fatalStreamError(err: unknown): WalvaultError {
  if (err instanceof WalvaultError) return err;
  return new LocalIoError(`unable to stream WAL: ${describeCause(err)}`, { cause: err });
}
