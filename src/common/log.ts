import { isatty } from 'node:tty';
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { formatLogRecord } from './log-text.js';

export type { Logger };

/** Paths pino blanks out wherever they appear in a log record: secrets never reach a log line. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'secretAccessKey',
  '*.secretAccessKey',
  'sessionToken',
  '*.sessionToken',
  'encryptionKey',
  '*.encryptionKey',
  'connectionString',
  '*.connectionString',
  'cfg.encryptionKey',
  'cfg.s3SecretAccessKey',
];

export interface LogOptions {
  level?: LevelWithSilent;
  /**
   * Short-lived commands (wal-push, wal-fetch) log synchronously so the last line before exit is
   * never lost; the long-running agent may log asynchronously.
   */
  sync?: boolean;
  /** Where to write; defaults to stderr (fd 2). stdout is reserved for command output. */
  fd?: number;
  /** `auto`: readable lines when `fd` is a terminal, JSON lines otherwise (files, journald, pipes). */
  format?: LogFormat;
}

export type LogFormat = 'auto' | 'text' | 'json';

/** Whether `format` renders as text on `fd`: `auto` asks whether a person is watching. */
export function usesTextFormat(format: LogFormat, fd: number): boolean {
  return format === 'text' || (format === 'auto' && isatty(fd));
}

export function createLogger(opts: LogOptions = {}): Logger {
  const fd = opts.fd ?? 2;
  const json = pino.destination({ fd, sync: opts.sync ?? true });
  // Text is rendered from pino's own serialized record, after redaction, so both formats hide the
  // same secrets; the write goes through the same (synchronous when asked) destination.
  const destination: DestinationStream = usesTextFormat(opts.format ?? 'json', fd)
    ? { write: (line: string) => void json.write(formatLogRecord(line)) }
    : json;
  return pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** A logger that discards everything: for library calls made from tests and tools that don't log. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
