import { InvalidTimelineError } from '../common/errors.js';

declare const timelineBrand: unique symbol;

/** A timeline ID, 1 to 0xFFFFFFFF. 0 is PostgreSQL's "no timeline" and never names WAL. */
export type Timeline = number & { readonly [timelineBrand]: true };

export const MAX_TIMELINE = 0xffff_ffff as Timeline;

export function isTimeline(value: unknown): value is Timeline {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_TIMELINE;
}

export function timeline(value: number | bigint): Timeline {
  const n = typeof value === 'bigint' && value >= 0n && value <= BigInt(MAX_TIMELINE) ? Number(value) : value;
  if (!isTimeline(n)) {
    throw new InvalidTimelineError(`unable to use timeline '${String(value)}': timeline IDs are integers from 1 to 4294967295`);
  }
  return n;
}

/** The 8 uppercase hex digits PostgreSQL uses for a timeline in file names. */
export function formatTimelineHex(tli: Timeline): string {
  return tli.toString(16).toUpperCase().padStart(8, '0');
}
