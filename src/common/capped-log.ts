/**
 * The log file of detached helpers (look-ahead uploader, prefetcher): appended to by every helper a
 * data directory starts, so it is capped: once it passes `maxBytes` it becomes `<file>.1` (replacing
 * the older one) and a new file starts. At most about twice the cap stays on disk.
 */
import { closeSync, openSync, readSync, renameSync, statSync, fstatSync } from 'node:fs';

/** Keeps a year of a quiet helper's lines and an outage's worth of a busy one's. */
const BACKGROUND_LOG_MAX_BYTES = 4 * 1024 * 1024;

/** Opens `path` for appending, first rotating it when it is over `maxBytes`. Returns the fd. */
export function openCappedLog(path: string, maxBytes: number = BACKGROUND_LOG_MAX_BYTES): number {
  try {
    if (statSync(path).size > maxBytes) renameSync(path, `${path}.1`);
  } catch {
    // Missing (first helper), or another helper rotated it first: append to whatever is there now.
  }
  return openSync(path, 'a', 0o600);
}

export interface LogFileSummary {
  readonly path: string;
  readonly bytes: number;
  /** The last non-empty line (at most 4 KiB of the end is read), or null for an empty file. */
  readonly lastLine: string | null;
}

/** Size and last line of a log file; undefined when it does not exist. */
export function summarizeLogFile(path: string): LogFileSummary | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, 4096);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    const lines = buf
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim() !== '');
    return { path, bytes: size, lastLine: lines.at(-1) ?? null };
  } finally {
    closeSync(fd);
  }
}
