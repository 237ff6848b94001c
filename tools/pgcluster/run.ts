/** Runs a PostgreSQL binary to completion as the PostgreSQL OS user and captures its output. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describeCause } from '../../src/common/errors.js';
import { ClusterError } from './errors.js';
import { spawnIdentity, type PgUser } from './user.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Environment for PostgreSQL children: ours minus libpq variables (a PGPORT or PGDATA of the
 * caller's must not redirect our tools), with the C locale so messages and initdb are predictable.
 */
export function pgEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PG') && !k.startsWith('LC_') && k !== 'LANG' && k !== 'LANGUAGE') env[k] = v;
  }
  env['LC_ALL'] = 'C';
  env['LANG'] = 'C';
  return env;
}

export async function runBinary(
  binDir: string,
  name: string,
  args: string[],
  user: PgUser,
  opts: { timeoutMs?: number } = {},
): Promise<RunResult> {
  const file = path.join(binDir, name);
  return new Promise<RunResult>((resolve, reject) => {
    // cwd '/' because the PostgreSQL user may not be allowed into our own working directory.
    const child = spawn(file, args, {
      cwd: '/',
      env: pgEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...spawnIdentity(user),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new ClusterError(`unable to run PostgreSQL binary '${file}': ${describeCause(e)}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Like runBinary, but a non-zero exit is an error carrying the tool's own words. */
export async function runBinaryOk(
  binDir: string,
  name: string,
  args: string[],
  user: PgUser,
  what: string,
  opts: { timeoutMs?: number } = {},
): Promise<RunResult> {
  const r = await runBinary(binDir, name, args, user, opts);
  if (r.code !== 0) {
    const output = `${r.stderr}\n${r.stdout}`.trim().split('\n').slice(-20).join('\n');
    const how = r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
    throw new ClusterError(`unable to ${what}: ${name} failed (${how}):\n${output}`);
  }
  return r;
}
