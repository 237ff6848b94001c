/**
 * A real s3rver for integration tests, in a child process on 127.0.0.1 (see s3rver-main.mjs for why
 * a child). `suspend()`/`resume()` simulate an outage: the process dies abruptly (clients see resets
 * and refused connections) and comes back on the same port with the same data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBucket, type S3TestServer } from './s3bucket.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 's3rver-main.mjs');
const START_TIMEOUT_MS = 15_000;

export interface S3rverHandle extends S3TestServer {
  readonly kind: 's3rver';
  readonly accessKeyId: 'S3RVER';
  readonly secretAccessKey: 'S3RVER';
}

function launch(directory: string, port: number, bucket: string): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--openssl-legacy-provider', MAIN, directory, String(port), bucket], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`s3rver did not start: ${why}${stderr ? `\n${stderr}` : ''}`));
    };
    const timer = setTimeout(() => fail(`no answer within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n') && line) {
        clearTimeout(timer);
        try {
          resolve({ child, port: (JSON.parse(line) as { port: number }).port });
        } catch {
          fail(`unexpected output '${line}'`);
        }
      }
    });
    child.once('exit', (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
    child.once('error', (err) => fail(err.message));
  });
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startS3rver(opts: { bucket?: string } = {}): Promise<S3rverHandle> {
  const bucket = opts.bucket ?? 'walvault-test';
  const directory = await mkdtemp(path.join(tmpdir(), 'walvault-s3rver-'));
  let current: ChildProcess | undefined;
  let port: number;
  try {
    const started = await launch(directory, 0, bucket);
    current = started.child;
    port = started.port;
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  current.removeAllListeners('exit');

  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    const child = current;
    current = undefined;
    if (!child) return;
    const exited = waitExit(child);
    child.kill(signal);
    // A server stuck in close() must not hang the test run.
    const escalate = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(escalate);
  };

  const endpoint = `http://127.0.0.1:${port}`;
  return {
    kind: 's3rver',
    endpoint,
    port,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    directory,
    createBucket: (name: string) => createBucket({ endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, name),
    suspend: () => kill('SIGKILL'),
    async resume() {
      if (current) return;
      await dropTornObjects(directory);
      const started = await launch(directory, port, bucket);
      started.child.removeAllListeners('exit');
      current = started.child;
    },
    async stop() {
      await kill('SIGTERM');
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * s3rver writes an object's content and then its metadata file in place, not atomically: killed in
 * between, it keeps a key whose metadata is torn and answers HTTP 500 for it forever. A real S3
 * server never keeps a PUT it did not acknowledge, so before a restart the objects with unreadable
 * metadata are removed, as an atomic PUT that never completed would have left them.
 */
async function dropTornObjects(dir: string): Promise<void> {
  const { readdir, readFile, rm: remove } = await import('node:fs/promises');
  const suffix = '._S3rver_metadata.json';
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith(suffix)) continue;
    const meta = path.join(e.parentPath, e.name);
    try {
      JSON.parse(await readFile(meta, 'utf8'));
    } catch {
      await remove(meta, { force: true });
      await remove(meta.slice(0, -suffix.length) + '._S3rver_object', { force: true });
    }
  }
}
