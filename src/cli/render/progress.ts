/**
 * backup-push's progress: a one-line bar on a terminal (bytes done of the server's size estimate,
 * rate, ETA), periodic log lines otherwise, and the one summary line at the end. The text is pure;
 * `progressReporter` decides where it goes and how often.
 */
import type { PushProgress, PushResult } from '../../backup/push.js';
import { formatBytes, formatDuration } from '../../common/format.js';
import type { Logger } from '../../common/log.js';

const PHASE_TEXT: Record<PushProgress['phase'], string> = {
  checkpoint: 'waiting for the checkpoint',
  copy: 'copying',
  'wal-wait': 'waiting for WAL',
  finish: 'finishing',
};

/** `MB/s` in decimal megabytes, as pg_basebackup and pgBackRest report rates. */
export function formatRate(bytes: number, ms: number): string {
  return ms <= 0 ? '- MB/s' : `${(((bytes / ms) * 1000) / 1e6).toFixed(1)} MB/s`;
}

/**
 * `[##########..........]  50%  1.00 GiB of 2.00 GiB  85.3 MB/s  ETA 12 s`. The server's estimate
 * can be exceeded (files grow while they are copied): the bar then stays full and the ETA says `-`.
 */
export function renderBackupProgress(p: PushProgress, elapsedMs: number, width = 24): string {
  if (p.phase !== 'copy') return `${PHASE_TEXT[p.phase]}  ${formatBytes(p.doneBytes)}`;
  const rate = formatRate(p.doneBytes, elapsedMs);
  if (p.totalBytes === null || p.totalBytes <= 0) return `${PHASE_TEXT.copy}  ${formatBytes(p.doneBytes)}  ${rate}`;
  const fraction = Math.min(1, p.doneBytes / p.totalBytes);
  const filled = Math.round(fraction * width);
  const left = p.totalBytes - p.doneBytes;
  const eta = p.doneBytes > 0 && left > 0 ? formatDuration((left * elapsedMs) / p.doneBytes) : '-';
  return (
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${`${Math.floor(fraction * 100)}%`.padStart(4)}  ` +
    `${formatBytes(p.doneBytes)} of ${formatBytes(p.totalBytes)}  ${rate}  ETA ${eta}`
  );
}

/** `backup 20261202T010203F complete: 2.10 GiB raw, 310 MiB stored in 25 s (88.1 MB/s), WAL 0/5000028 to 0/7A3F2B8 (timeline 1)` */
export function renderBackupSummary(r: PushResult): string {
  const rec = r.record;
  const kind = rec.parent
    ? `incremental on ${rec.parent}, reused ${formatBytes(rec.reusedBytes ?? 0)} of ${formatBytes(rec.rawBytes)}, `
    : '';
  const line =
    `backup ${rec.name} complete: ${kind}${formatBytes(rec.rawBytes)} raw, ${formatBytes(rec.storedBytes)} stored ` +
    `in ${formatDuration(r.durationMs)} (${formatRate(rec.rawBytes, r.durationMs)}), ` +
    `${rec.files} files, WAL ${rec.startLsn} to ${rec.endLsn} (timeline ${rec.endTimeline})`;
  // --incremental=auto fell back: the operator asked for an incremental and must see why it is not one.
  return r.fallback ? `${line}\nfull backup instead of incremental: ${r.fallback}` : line;
}

export interface ProgressSink {
  readonly update: (p: PushProgress) => void;
  /** Clears the bar before the summary or an error line. */
  readonly done: () => void;
}

/** A bar redrawn at most 4 times a second on a TTY; else a log line every `logEveryMs`. */
export function progressReporter(opts: { tty: boolean; write: (s: string) => void; log: Logger; logEveryMs?: number }): ProgressSink {
  const started = Date.now();
  let copyStarted: number | undefined;
  let last = 0;
  let lastPhase: PushProgress['phase'] | undefined;
  let drawn = false;
  const every = opts.tty ? 250 : (opts.logEveryMs ?? 10_000);
  return {
    update: (p) => {
      const now = Date.now();
      if (p.phase === 'copy') copyStarted ??= now;
      const phaseChanged = p.phase !== lastPhase;
      if (!phaseChanged && now - last < every) return;
      last = now;
      lastPhase = p.phase;
      const line = renderBackupProgress(p, now - (copyStarted ?? started));
      if (opts.tty) {
        opts.write(`\r\x1b[K${line}`);
        drawn = true;
      } else {
        opts.log.info({ phase: p.phase, bytes: p.doneBytes, totalBytes: p.totalBytes }, line);
      }
    },
    done: () => {
      if (drawn) opts.write('\r\x1b[K');
      drawn = false;
    },
  };
}
