/**
 * Values as an operator reads them (sizes, ages, times, errors), for the readable output and for
 * the sentences use cases put in their reports. Pure; every command also has `--json`, so nothing
 * here has to be parseable. Layout (tables, progress bars) is in cli/render/layout.ts.
 */
import { WalvaultError, describeCause } from './errors.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** `512 B`, `16.0 MiB`, `1.25 GiB`: binary units, three significant digits at most. */
export function formatBytes(bytes: number | bigint): string {
  let value = Number(bytes);
  if (!Number.isFinite(value)) return String(bytes);
  const negative = value < 0;
  value = Math.abs(value);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = unit === 0 ? String(value) : value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  return `${negative ? '-' : ''}${text} ${UNITS[unit]}`;
}

/** `0 s`, `42 s`, `3 min 4 s`, `2 h 5 min`, `3 d 4 h`: an age an operator reads at a glance. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m} min` : `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d} d` : `${d} d ${h % 24} h`;
}

/** The first 12 hex digits: enough to tell objects apart by eye, and to grep the full key. */
export function shortSha(sha256: string): string {
  return sha256.slice(0, 12);
}

/** `2024-05-01 03:04:05Z`: ISO 8601 in UTC without milliseconds, sortable and unambiguous. */
export function formatTime(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** An error as one readable line: our own messages as they are (describeCause would prefix their code). */
export function errorText(err: unknown): string {
  return err instanceof WalvaultError ? err.message : describeCause(err);
}

/** `1 segment`, `2 segments`; `plural` for words that do not just take an s. */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
