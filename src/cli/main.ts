import { Command, CommanderError } from 'commander';
import { ExitCode, UsageError, WalvaultError, describeCause, exitCodeOf } from '../common/errors.js';
import { createLogger, type LogFormat } from '../common/log.js';
import { printableLine } from '../common/quote.js';
import { loadConfig, sectionOfCommand } from '../config/load.js';
import { VERSION } from '../common/version.js';
import type { CliContext, CommandBody, RunOptions } from './context.js';
import { configFlags } from './options.js';
import { registerCommands } from './commands/index.js';
import { addHelpExtras } from './help.js';

/**
 * Runs one command body: loads settings, builds the logger, maps any error to its exit code and
 * prints it as a single line. This file is the only place that decides exit codes and exits.
 */
async function runBody(cmd: Command, body: CommandBody, opts: RunOptions = {}): Promise<void> {
  const name = commandPath(cmd);
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let code: number;
  try {
    const { config, sources } = loadConfig({ flags: configFlags(cmd.optsWithGlobals()), command: sectionOfCommand(name) });
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

function reportError(name: string, err: unknown): void {
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

function commandPath(cmd: Command): string {
  const parts: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) parts.unshift(c.name());
  return parts.join(' ');
}

function flushStdout(): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.writableLength === 0) resolve();
    else process.stdout.write('', () => resolve());
  });
}

/**
 * The program for `args` (the command line after the program name): the command they dispatch to
 * is loaded in full, the others are stubs that only show in help (see commands/index.ts). `all`
 * loads every command.
 */
export async function buildProgram(args: readonly string[], all = false, programName = 'walvault'): Promise<Command> {
  const program = new Command(programName)
    .description('PostgreSQL WAL archive agent')
    .version(VERSION)
    // One line, like every other error: PostgreSQL copies archive/restore_command output into its log.
    .configureOutput({ outputError: (text, write) => write(`${text.trim().replace(/\s*\n\s*/g, ' ')} (add --help for usage)\n`) })
    .exitOverride();
  await registerCommands(program, runBody, args, all);
  addHelpExtras(program);
  return program;
}

/** Entry point for bin/walvault, and for bin/wal-push / bin/wal-fetch via `prepend`. */
export async function main(argv: readonly string[], prepend: readonly string[] = []): Promise<void> {
  // archive_command output lands in the PostgreSQL log: keep the AWS SDK's Node-version notice out of it.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const args = [...prepend, ...argv.slice(2)];
  const program = await buildProgram(args);
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // restore_command must never answer a usage mistake with a code PostgreSQL reads as "no such file".
      if (args[0] === 'wal-fetch') {
        const { walFetchArgumentsExitCode } = await import('./commands/wal-fetch.js');
        process.exit(walFetchArgumentsExitCode(args.slice(1), err.exitCode));
      }
      // --help and --version end here with code 0; usage mistakes with 2.
      process.exit(err.exitCode === 0 ? 0 : ExitCode.usage);
    }
    reportError(programName(prepend), err instanceof Error ? err : new UsageError(String(err)));
    process.exit(exitCodeOf(err));
  }
}

function programName(prepend: readonly string[]): string {
  return prepend.length > 0 ? prepend.join(' ') : 'walvault';
}
