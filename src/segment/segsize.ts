import { UsageError } from '../common/errors.js';

export const MIN_SEG_SIZE = 1024 * 1024;
export const MAX_SEG_SIZE = 1024 * 1024 * 1024;
export const DEFAULT_SEG_SIZE = 16 * 1024 * 1024;

/** Every size initdb --wal-segsize accepts: powers of two from 1 MiB to 1 GiB. */
export const LEGAL_SEG_SIZES: readonly number[] = Object.freeze(Array.from({ length: 11 }, (_, i) => MIN_SEG_SIZE * 2 ** i));

export function isValidSegSize(bytes: number): boolean {
  return Number.isInteger(bytes) && bytes >= MIN_SEG_SIZE && bytes <= MAX_SEG_SIZE && (bytes & (bytes - 1)) === 0;
}

/** Returns `bytes` when it is a legal WAL segment size; throws UsageError otherwise. */
export function assertSegSize(bytes: number): number {
  if (!isValidSegSize(bytes)) {
    throw new UsageError(`unable to use WAL segment size '${String(bytes)}': must be a power of two from 1MB to 1GB`);
  }
  return bytes;
}

/** How many segments share one value of the middle name field (XLogSegmentsPerXLogId): 2^32 / segSize. */
export function segmentsPerXLogId(segSize: number): number {
  return 2 ** 32 / assertSegSize(segSize);
}

// PostgreSQL's memory units (case-sensitive in guc.c, so we are too).
const UNIT_BYTES = {
  B: 1,
  kB: 1024,
  MB: 1024 ** 2,
  GB: 1024 ** 3,
  TB: 1024 ** 4,
} as const;
const SETTING_TEXT = /^\s*(\d{1,16})\s*(B|kB|MB|GB|TB)?\s*$/;

/**
 * Parses `SHOW wal_segment_size` output (`16MB`, `1GB`, `1024kB`) or a plain byte count (as
 * pg_controldata prints it) into bytes, and checks that the result is a legal segment size.
 */
export function parseSegSizeSetting(text: string): number {
  const match = SETTING_TEXT.exec(text);
  if (match === null) {
    throw new UsageError(
      `unable to parse WAL segment size '${text}': expected a number with an optional unit B, kB, MB, GB or TB, like 16MB`,
    );
  }
  const [, digits, unit = 'B'] = match;
  const bytes = Number(digits) * UNIT_BYTES[unit as keyof typeof UNIT_BYTES];
  if (!isValidSegSize(bytes)) {
    throw new UsageError(`unable to parse WAL segment size '${text}': ${String(bytes)} bytes is not a power of two from 1MB to 1GB`);
  }
  return bytes;
}

/** Formats like PostgreSQL's SHOW: the largest unit that divides the size exactly (`16MB`, `1GB`). */
export function formatSegSize(bytes: number): string {
  assertSegSize(bytes);
  return bytes % 1024 ** 3 === 0 ? `${String(bytes / 1024 ** 3)}GB` : `${String(bytes / 1024 ** 2)}MB`;
}
