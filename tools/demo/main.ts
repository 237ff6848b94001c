/**
 * Entry point of `npm run demo` (node build/tools/demo/main.js). The demo lives beside the harness
 * it drives, outside the product: the published package ships neither, so `walvault` has no demo
 * command that could only fail in an installed copy.
 */
import { Command, CommanderError } from 'commander';
import { ExitCode, WalvaultError, describeCause, exitCodeOf } from '../../src/common/errors.js';
import { runDemo } from './run.js';

const NAME = 'walvault demo';

function program(): Command {
  return new Command('demo')
    .description('Run the whole job on a throwaway local PostgreSQL: archive, stream, list, point-in-time restore')
    .option('--dir <dir>', 'where to put the demo archive', 'walvault-demo')
    .option('--keep', 'keep the archive afterwards', false)
    .addHelpText('after', '\nExample:\n  $ npm run demo -- --dir /tmp/walvault-demo --keep\n')
    .exitOverride();
}

async function main(argv: readonly string[]): Promise<number> {
  const cmd = program();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (err) {
    // --help ends here with 0; a usage mistake (commander already printed it) with 2.
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    throw err;
  }
  const o = cmd.opts<{ dir: string; keep: boolean }>();
  try {
    return await runDemo({ dir: o.dir, keep: o.keep, out: (line) => process.stdout.write(`${line}\n`) });
  } catch (err) {
    // One line, as the walvault CLI reports its errors (the harness's errors carry no code).
    const text = err instanceof WalvaultError ? `${err.message} [${err.code}]` : describeCause(err);
    process.stderr.write(`${NAME}: ${text.replace(/\s*\n\s*/g, ' ')}\n`);
    return exitCodeOf(err);
  }
}

const code = await main(process.argv.slice(2));
// Exit explicitly, as the walvault CLI does: a leftover handle must not keep a finished demo alive.
process.stdout.write('', () => process.exit(code));
