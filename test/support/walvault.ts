/**
 * Driving the built walvault from tests the way PostgreSQL and operators do: the real launchers in
 * bin/ (compiled JS in dist/, so `npm test` builds first), config files, archive directories owned by
 * the server's OS user.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PgCluster } from '../../tools/pgcluster/index.js';
import { pgUser } from '../../tools/pgcluster/user.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(REPO, 'bin');

export function bin(name: 'walvault' | 'wal-push' | 'wal-fetch'): string {
  const p = path.join(BIN, name);
  if (!existsSync(path.join(REPO, 'dist', 'cli', 'walvault.js'))) {
    throw new Error('dist/ is missing: run `npm run build` (npm test does it)');
  }
  return p;
}

/** Writes a walvault config file readable by the PostgreSQL OS user. */
export function writeConfig(file: string, settings: Record<string, string | number | boolean>): string {
  const text = Object.entries(settings)
    .map(([k, v]) => `${k} = ${String(v)}`)
    .join('\n');
  writeFileSync(file, `${text}\n`, { mode: 0o644 });
  return file;
}

/** A directory owned by the PostgreSQL OS user (archive, state, config). Its parent must exist. */
export function pgOwnedDir(dir: string): string {
  // Not recursive: intermediate directories would be root's and closed to the PostgreSQL user.
  if (!existsSync(dir)) mkdirSync(dir, { mode: 0o700 });
  const user = pgUser();
  if (!user.isCurrent) chownSync(dir, user.uid, user.gid);
  return dir;
}

/**
 * archive_command / restore_command lines. The node binary is pinned to the one running the tests
 * (so a Node 24 run tests Node 24), settings come from a config file, state from `stateDir`.
 */
export function walCommands(opts: { configFile: string; stateDir: string; extraEnv?: Record<string, string> }): {
  archiveCommand: string;
  restoreCommand: string;
} {
  const env = {
    WALVAULT_NODE: process.execPath,
    WALVAULT_CONFIG: opts.configFile,
    WALVAULT_STATE_DIR: opts.stateDir,
    ...(opts.extraEnv ?? {}),
  };
  const prefix = Object.entries(env)
    .map(([k, v]) => `${k}='${v}'`)
    .join(' ');
  return {
    archiveCommand: `${prefix} ${bin('wal-push')} %p`,
    restoreCommand: `${prefix} ${bin('wal-fetch')} %f %p`,
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a launcher (as root, like an operator) and returns its exit code and output. */
export function runCli(
  name: 'walvault' | 'wal-push' | 'wal-fetch',
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      bin(name),
      args,
      {
        cwd: opts.cwd ?? REPO,
        env: { ...process.env, WALVAULT_NODE: process.execPath, ...(opts.env ?? {}) },
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Waits until the server has no `.ready` file left (everything handed to archive_command succeeded). */
export async function waitForArchiveDone(cluster: PgCluster, timeoutMs = 60_000): Promise<string[]> {
  const statusDir = path.join(cluster.walDir(), 'archive_status');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const entries = readdirSync(statusDir);
    const ready = entries.filter((e) => e.endsWith('.ready'));
    if (ready.length === 0) return entries.filter((e) => e.endsWith('.done')).map((e) => e.slice(0, -5));
    if (Date.now() > deadline) {
      throw new Error(`archiving did not finish: still .ready: ${ready.join(', ')}\n${await cluster.logTail(30)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
