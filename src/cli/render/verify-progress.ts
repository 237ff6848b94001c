/**
 * wal-verify's progress: a bar redrawn at most every 100 ms on a terminal, else a log line every
 * 10 s (a verify of a large archive runs for minutes, and a cron job's log should show it moving).
 */
import type { Logger } from '../../common/log.js';
import type { VerifyProgress } from '../../ops/verify.js';
import { renderProgressBar } from './layout.js';

const LOG_EVERY_MS = 10_000;
const REDRAW_EVERY_MS = 100;

export interface VerifyProgressSink {
  readonly update: (p: VerifyProgress) => void;
  /** Ends the bar with a newline, before the report. */
  readonly finish: () => void;
  /** Clears a half-drawn bar (interrupted or failed mid-way), before the error line. */
  readonly clear: () => void;
}

export function verifyProgressReporter(opts: { tty: boolean; write: (s: string) => void; log: Logger }): VerifyProgressSink {
  let lastDraw = 0;
  let lastLog = Date.now();
  let drawn = false;
  return {
    update: (p) => {
      const now = Date.now();
      const finished = p.done === p.total;
      if (opts.tty) {
        if (!finished && now - lastDraw < REDRAW_EVERY_MS) return;
        lastDraw = now;
        drawn = true;
        opts.write(`\r${renderProgressBar({ ...p, width: 30 })}`);
      } else if (now - lastLog >= LOG_EVERY_MS) {
        lastLog = now;
        opts.log.info(
          { component: 'ops.verify', done: p.done, total: p.total, bytes: p.bytes },
          `verified ${p.done} of ${p.total} objects`,
        );
      }
    },
    finish: () => {
      if (drawn) opts.write('\n');
      drawn = false;
    },
    clear: () => {
      if (drawn) opts.write('\x1b[2K\r');
      drawn = false;
    },
  };
}
