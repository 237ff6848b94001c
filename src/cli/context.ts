import type { Command } from 'commander';
import type { Logger } from '../common/log.js';
import type { Config } from '../config/load.js';

/** What every command body receives: settings and a logger; no singletons. */
export interface CliContext {
  readonly config: Config;
  readonly log: Logger;
  /** Aborted on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
  /** Command output (tables, JSON) goes to stdout; logs go to stderr. */
  readonly out: (text: string) => void;
}

/** A command body returns its exit code (0 unless it says otherwise) or throws a WalvaultError. */
export type CommandBody = (ctx: CliContext) => Promise<number | void>;

export type RunFn = (cmd: Command, body: CommandBody) => Promise<void>;
