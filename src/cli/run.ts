import { ExitCode, WalvaultError, describeCause, exitCodeOf } from '../common/errors.js';
import { createLogger, type LogFormat } from '../common/log.js';
import { printableLine } from '../common/quote.js';
import { loadConfig, sectionOfCommand } from '../config/load.js';
import type { CliContext, CommandBody, RunOptions } from './context.js';

/**
 * Runs one command body: loads settings, builds the logger, maps any error to its exit code and
 * prints it as a single line. This module (with main.ts's parser errors) is the only place that
 * decides exit codes and exits. `name` is the command path (`walvault wal-push`), `flags` the
 * settings given on the command line. No command-line parser here: the archiver's hook calls this
 * directly (hooks.ts).
 */
export async function runCommand(name: string, flags: Record<string, unknown>, body: CommandBody, opts: RunOptions = {}): Promise<void> {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let code: number;
  try {
    const { config, sources } = loadConfig({ flags, command: sectionOfCommand(name) });
    const level = sources['log-level'] === 'default' && opts.defaultLogLevel ? opts.defaultLogLevel : config['log-level'];
    const log = createLogger({ level: level as 'info', sync: true, format: config['log-format'] as LogFormat }).child({ command: name });
    const ctx: CliContext = {
      config,
      sources,
      log,
      signal: controller.signal,
      out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    };
    code = (await body(ctx)) ?? ExitCode.ok;
  } catch (err) {
    code = opts.exitCodeFor ? opts.exitCodeFor(err, exitCodeOf(err)) : exitCodeOf(err);
    if (!opts.quietFor?.(err)) reportError(name, err);
  }
  await flushStdout();
  process.exit(code);
}

export function reportError(name: string, err: unknown): void {
  // Anything without our type (a raw system error from a path nobody wrapped) still gets the one
  // grammar and exit code 3, never a bare "ENOENT" that does not say what was being done.
  const text = err instanceof WalvaultError ? `${err.message} [${err.code}]` : `unable to finish the command: ${describeCause(err)}`;
  // One line, whatever the message contained: PostgreSQL copies it into the server log.
  // Messages quote input with quoteExcerpt; this is the backstop for anything that slipped through.
  process.stderr.write(`${name}: ${printableLine(text.replace(/\s*\n\s*/g, ' '))}\n`);
  if (!(err instanceof WalvaultError) && err instanceof Error && process.env['WALVAULT_TEST_STACKS']) {
    process.stderr.write(`${err.stack ?? ''}\n`);
  }
}

function flushStdout(): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.writableLength === 0) resolve();
    else process.stdout.write('', () => resolve());
  });
}
