import { spawn } from 'node:child_process';
import { closeSync, mkdirSync } from 'node:fs';
import { openCappedLog } from '../common/capped-log.js';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigSource } from '../config/load.js';
import { OPTIONS, type OptionDef } from '../config/options.js';

const ENTRY = fileURLToPath(new URL('./walvault.js', import.meta.url));

/**
 * Starts a walvault subcommand in the background, detached from PostgreSQL's process group so that
 * the archiver or startup process never waits for it. Settings given as flags travel as WALVAULT_*
 * environment variables (the child gets no flags); file and environment settings it reads itself.
 * Returns the child's pid (undefined when it could not be started).
 */
export function spawnDetached(
  args: readonly string[],
  opts: {
    cwd: string;
    config: Record<string, unknown>;
    sources: Readonly<Record<string, ConfigSource>>;
    /** The child's stderr (its log). Not PostgreSQL's stderr: whoever waits for that pipe to close would wait for the child. */
    logFile: string;
  },
): number | undefined {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['WALVAULT_FASTPATH_COMMAND'];
  for (const def of OPTIONS as readonly OptionDef[]) {
    const value = opts.config[def.name];
    if (opts.sources[def.name] === 'flag' && value !== undefined) env[def.env] = String(value);
  }
  mkdirSync(dirname(opts.logFile), { recursive: true, mode: 0o700 });
  const logFd = openCappedLog(opts.logFile);
  try {
    const child = spawn(process.execPath, [ENTRY, ...args], {
      cwd: opts.cwd,
      env,
      detached: true,
      stdio: ['ignore', 'ignore', logFd],
    });
    child.on('error', () => undefined);
    child.unref();
    return child.pid;
  } finally {
    closeSync(logFd);
  }
}
