/**
 * `walvault daemon` and wal-push's detached look-ahead uploader share one lock per data directory.
 * The detached uploader is bounded (push-lookahead files, then a short idle), so a daemon started
 * while it runs (at boot, or right after a crash) waits for it and then takes over; another daemon
 * holding the lock is refused at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/common/log.js';
import { loadConfig } from '../../../src/config/load.js';
import { runDaemon } from '../../../src/daemon/agent.js';
import { stateDirFor } from '../../../src/push/state-dir.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(): { pgdata: string; lockFile: string; config: ReturnType<typeof loadConfig>['config'] } {
  const root = mkdtempSync(join(tmpdir(), 'walvault-daemon-lock-'));
  dirs.push(root);
  const pgdata = join(root, 'data');
  mkdirSync(join(pgdata, 'pg_wal', 'archive_status'), { recursive: true });
  mkdirSync(join(root, 'archive'));
  const env = { WALVAULT_STATE_DIR: join(root, 'state') };
  process.env['WALVAULT_STATE_DIR'] = env.WALVAULT_STATE_DIR;
  const { config } = loadConfig({
    flags: { archive: `file://${join(root, 'archive')}`, pgdata },
    env,
    defaultConfigFile: join(root, 'none.conf'),
  });
  const stateDir = stateDirFor(pgdata, env);
  mkdirSync(stateDir, { recursive: true });
  return { pgdata, lockFile: join(stateDir, 'ahead.pid'), config };
}

/** A live process holding the lock, with `args` on its command line. */
function holder(lockFile: string, args: string[]): ChildProcess {
  const child = spawn('sh', ['-c', 'sleep "$0"', ...args], { stdio: 'ignore' });
  children.push(child);
  writeFileSync(lockFile, String(child.pid));
  return child;
}

describe('the daemon and the detached uploader share one lock', () => {
  it('a daemon started while the detached uploader runs waits for it, then takes the lock', async () => {
    const { lockFile, config } = setup();
    const uploader = holder(lockFile, ['1.5', 'wal-push-ahead']);
    const controller = new AbortController();
    const started = Date.now();
    const running = runDaemon(config, silentLogger(), controller.signal);
    await new Promise((r) => uploader.once('exit', r));
    const deadline = Date.now() + 10_000;
    while (readFileSync(lockFile, 'utf8') !== String(process.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(lockFile, 'utf8')).toBe(String(process.pid));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    controller.abort();
    await running;
  }, 30_000);

  it('another daemon holding the lock is refused at once (exit 2)', async () => {
    const { lockFile, config } = setup();
    holder(lockFile, ['30', 'daemon']);
    await expect(runDaemon(config, silentLogger(), new AbortController().signal)).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/another uploader holds/),
    });
  }, 30_000);
});
