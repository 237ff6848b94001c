import { createRequire } from 'node:module';
import { isatty } from 'node:tty';
import type { DestinationStream, Logger, LevelWithSilent, pino as Pino } from 'pino';
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

/**
 * The logger of a command. pino (with its dozen modules) is loaded only when a record at an enabled
 * level is first written: a wal-push or wal-fetch that succeeds quietly (level warn) never loads it,
 * which is about a fifth of its start-up. Records, redaction and format are pino's, unchanged.
 */
export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? 'info';
  return lazyLogger(level, () => realLogger({ ...opts, level }));
}

function realLogger(opts: LogOptions): Logger {
  const { pino } = loadPino();
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
  return lazyLogger('silent', () => loadPino().pino({ level: 'silent' }));
}

type PinoModule = { pino: typeof Pino };

/** pino is CommonJS: require() loads it synchronously at the first record, where logging is synchronous. */
function loadPino(): PinoModule {
  return createRequire(import.meta.url)('pino') as PinoModule;
}

const LEVEL_VALUES: Readonly<Record<string, number>> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };
const METHODS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/**
 * What the code base uses of a pino Logger (the level methods, child, level, isLevelEnabled), with
 * the real logger made on first need: the root once, each child from its parent's real logger.
 */
function lazyLogger(level: string, makeRoot: () => Logger): Logger {
  const threshold = LEVEL_VALUES[level] ?? LEVEL_VALUES['info']!;
  const node = (real: () => Logger): Record<string, unknown> => {
    let made: Logger | undefined;
    const get = (): Logger => (made ??= real());
    const logger: Record<string, unknown> = {
      level,
      isLevelEnabled: (l: string) => (LEVEL_VALUES[l] ?? 0) >= threshold,
      child: (bindings: Record<string, unknown>, options?: Record<string, unknown>) => node(() => get().child(bindings, options)),
    };
    for (const m of METHODS) {
      const value = LEVEL_VALUES[m]!;
      logger[m] = (...args: unknown[]): void => {
        if (value < threshold) return;
        (get()[m] as (...a: unknown[]) => void)(...args);
      };
    }
    return logger;
  };
  // A structural subset of pino's Logger: every member the code base calls is implemented above
  // (checked by test/unit/common/log-lazy.test.ts); the cast is what lets it flow where a Logger goes.
  return node(makeRoot) as unknown as Logger;
}
