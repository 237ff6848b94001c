import { Command, CommanderError } from 'commander';
import { ExitCode, UsageError, exitCodeOf } from '../common/errors.js';
import { VERSION } from '../common/version.js';
import type { CommandBody, RunOptions } from './context.js';
import { reportError, runCommand } from './run.js';
import { configFlags } from './options.js';
import { registerCommands } from './commands/index.js';
import { addHelpExtras } from './help.js';

/** Runs a command body parsed by commander: see run.ts. */
function runBody(cmd: Command, body: CommandBody, opts: RunOptions = {}): Promise<void> {
  return runCommand(commandPath(cmd), configFlags(cmd.optsWithGlobals()), body, opts);
}

function commandPath(cmd: Command): string {
  const parts: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) parts.unshift(c.name());
  return parts.join(' ');
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
