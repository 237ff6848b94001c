import { InvalidLsnError } from '../common/errors.js';

declare const lsnBrand: unique symbol;

/**
 * A WAL position: a byte offset into the cluster's WAL stream, 0 to 2^64-1. Branded so that a
 * plain bigint (a segment number, a byte count) can't be passed where a position is meant.
 */
export type Lsn = bigint & { readonly [lsnBrand]: true };

/** PostgreSQL's InvalidXLogRecPtr: no valid record ever starts at 0/0. */
export const InvalidLsn = 0n as Lsn;
export const MAX_LSN = 0xffff_ffff_ffff_ffffn as Lsn;

// Each half is 1 to 8 hex digits, as pg_lsn_in accepts them; this also bounds the value to 64 bits.
const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

function rangeError(what: string, value: bigint | number, reason: string): InvalidLsnError {
  return new InvalidLsnError(`unable to use ${what} '${String(value)}': ${reason}`);
}

export function lsn(value: bigint | number): Lsn {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw rangeError('LSN', value, 'not an integer that a double represents exactly; pass a bigint');
  }
  const big = BigInt(value);
  if (big < 0n || big > MAX_LSN) throw rangeError('LSN', value, 'outside 0 to 2^64-1');
  return big as Lsn;
}

export function isLsn(value: unknown): value is Lsn {
  return typeof value === 'bigint' && value >= 0n && value <= MAX_LSN;
}

/** Parses PostgreSQL's text form `16/B374D848` (either case, halves padded or not). */
export function parseLsn(text: string): Lsn {
  const match = LSN_TEXT.exec(text);
  if (match === null) {
    throw new InvalidLsnError(
      `unable to parse LSN '${text}': expected two hexadecimal numbers of 1 to 8 digits separated by '/', like 16/B374D848`,
    );
  }
  return ((BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`)) as Lsn;
}

/** Formats like PostgreSQL's `%X/%X`: uppercase, no padding (`0/0`, `16/B374D848`). */
export function formatLsn(value: Lsn): string {
  const hi = value >> 32n;
  const lo = value & 0xffff_ffffn;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

export function compareLsn(a: Lsn, b: Lsn): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `base + delta` (delta may be negative); throws when the result leaves 0 to 2^64-1. */
export function addLsn(base: Lsn, delta: bigint | number): Lsn {
  if (typeof delta === 'number' && !Number.isSafeInteger(delta)) {
    throw rangeError('LSN offset', delta, 'not an integer that a double represents exactly; pass a bigint');
  }
  const sum = base + BigInt(delta);
  if (sum < 0n || sum > MAX_LSN) {
    throw new InvalidLsnError(`unable to add ${String(delta)} to LSN '${formatLsn(base)}': the result is outside 0/0 to FFFFFFFF/FFFFFFFF`);
  }
  return sum as Lsn;
}

/** Bytes of WAL from `b` to `a` (negative when `a` is before `b`), like pg_wal_lsn_diff(a, b). */
export function lsnDiff(a: Lsn, b: Lsn): bigint {
  return a - b;
}
