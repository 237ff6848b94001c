import type { Command } from 'commander';
import type { Logger } from '../common/log.js';
import type { Config, ConfigSource } from '../config/load.js';

/** What every command body receives: settings and a logger; no singletons. */
export interface CliContext {
  readonly config: Config;
  /** Where each setting came from (flag, env, file, default). */
  readonly sources: Readonly<Record<string, ConfigSource>>;
  readonly log: Logger;
  /** Aborted on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
  /** Command output (tables, JSON) goes to stdout; logs go to stderr. */
  readonly out: (text: string) => void;
}

/** A command body returns its exit code (0 unless it says otherwise) or throws a WalvaultError. */
export type CommandBody = (ctx: CliContext) => Promise<number | void>;

export interface RunOptions {
  /** Overrides the exit code of a failure (e.g. wal-push keeps codes PostgreSQL's archiver tolerates). */
  readonly exitCodeFor?: (err: unknown, defaultCode: number) => number;
  /** Failures that are an answer, not an error (wal-fetch's "not in the archive"): no error line. */
  readonly quietFor?: (err: unknown) => boolean;
  /** Log level when nothing sets one (short commands run by PostgreSQL stay quiet on success). */
  readonly defaultLogLevel?: string;
}

export type RunFn = (cmd: Command, body: CommandBody, opts?: RunOptions) => Promise<void>;
