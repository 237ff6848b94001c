// s3rver in a child process, started the way test/support/s3server.ts starts it (see
// test/support/s3rver-main.mjs for why a child and why the legacy OpenSSL provider).
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stopChild, track } from './proc.mjs';

export async function startS3rver(root, directory, bucket) {
  mkdirSync(directory, { recursive: true });
  const main = join(root, 'test', 'support', 's3rver-main.mjs');
  const child = spawn(process.execPath, ['--openssl-legacy-provider', main, directory, '0', bucket], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  track(child);
  let onEarlyExit;
  const port = await new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within 15 s: ${err}`)), 15_000);
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.slice(0, nl)).port);
      } catch {
        reject(new Error(`s3rver printed '${out.slice(0, nl)}'`));
      }
    });
    onEarlyExit = (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited (${code}): ${err}`));
    };
    child.once('exit', onEarlyExit);
  }).catch(async (e) => {
    await stopChild(child, 'SIGKILL');
    throw e;
  });
  child.removeListener('exit', onEarlyExit);
  return {
    pid: child.pid,
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    stop: () => stopChild(child, 'SIGTERM', 5_000),
  };
}
