/** Typed values from the operator commands' own flags; a bad value is a UsageError (exit 2). */
import { UsageError, asUsageError } from '../common/errors.js';
import { parseLsn, type Lsn } from '../segment/lsn.js';
import { timeline, type Timeline } from '../segment/timeline.js';

/** `--timeline 2`, also in hex as file names write it (`0x1A`). */
export function timelineArg(text: string | undefined): Timeline | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  const n = /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t.slice(2), 16) : /^\d+$/.test(t) ? Number(t) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`unable to use --timeline '${text}': expected a timeline number like 2 (or 0x2)`);
  try {
    return timeline(n);
  } catch (err) {
    throw asUsageError(err);
  }
}

export function lsnArg(flag: string, text: string | undefined): Lsn | undefined {
  if (text === undefined) return undefined;
  try {
    return parseLsn(text.trim());
  } catch (err) {
    throw new UsageError(`unable to use ${flag} '${text}': ${(err as Error).message.replace(/^unable to parse LSN '[^']*': /, '')}`);
  }
}

export function intArg(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`unable to use ${flag} '${text}': expected a whole number from ${min} to ${max}`);
  }
  return n;
}

/** Commander's reducer for a repeatable flag: every value, in the order given. */
export function collectArg(value: string, previous: readonly string[]): string[] {
  return [...previous, value];
}
