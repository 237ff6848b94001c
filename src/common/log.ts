import { pino, type Logger, type LevelWithSilent } from 'pino';

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
}

export function createLogger(opts: LogOptions = {}): Logger {
  const destination = pino.destination({ fd: opts.fd ?? 2, sync: opts.sync ?? true });
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
