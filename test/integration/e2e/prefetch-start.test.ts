/**
 * The first wal-fetch of a recovery starts the prefetcher before it downloads its own file (issue
 * 14): otherwise the first calls each pay a cold download while the prefetcher boots. Shown by a
 * call whose own download fails its checks: the prefetcher it started still brings the next segment.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockHolderAlive } from '../../../src/common/pid-lock.js';
import { stateDirFor } from '../../../src/push/state-dir.js';
import { prefetchDir } from '../../../src/restore/prefetch.js';
import { fixtureManifest, loadFixture } from '../../support/fixtures.js';
import { runCli } from '../../support/walvault.js';

const SEG7 = '000000010000000000000007';
const SEG8 = '000000010000000000000008';

async function until(what: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return what();
}

/**
 * A stand-in data directory in archive recovery: what wal-fetch reads of one (PG_VERSION, the
 * system identifier in pg_control, recovery.signal).
 */
function recoveringDataDir(pgdata: string): void {
  mkdirSync(join(pgdata, 'global'), { recursive: true });
  mkdirSync(join(pgdata, 'pg_wal'));
  writeFileSync(join(pgdata, 'PG_VERSION'), '15\n');
  const control = Buffer.alloc(8192);
  control.writeBigUInt64LE(BigInt(fixtureManifest(15).systemId), 0);
  writeFileSync(join(pgdata, 'global', 'pg_control'), control);
  writeFileSync(join(pgdata, 'recovery.signal'), '');
}

/** Archives the two fixture segments the tests fetch. */
async function pushFixtures(root: string, env: Record<string, string>): Promise<void> {
  for (const seg of [SEG7, SEG8]) {
    writeFileSync(join(root, seg), loadFixture(15, seg));
    const res = await runCli('wal-push', [join(root, seg)], { env: { ...env, WALVAULT_NO_FASTPATH: '1' } });
    expect(res.code, res.stderr).toBe(0);
  }
}

/**
 * A temp root with an archive, a state base and a data directory, removed after the block once the
 * prefetcher whose lock `watchLock` named has stopped: recovery "ends" (recovery.signal goes), and
 * the prefetcher stops on its own and deletes what it downloaded.
 */
function recoveryScene(prefix: string, extraEnv: Record<string, string> = {}) {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const archive = join(root, 'archive');
  const stateBase = join(root, 'state');
  const pgdata = join(root, 'pgdata');
  const env = {
    WALVAULT_CONFIG: '/dev/null',
    WALVAULT_ARCHIVE: `file://${archive}`,
    WALVAULT_STATE_DIR: stateBase,
    WALVAULT_FETCH_PREFETCH: '4',
    ...extraEnv,
  };
  let lock: string | undefined;
  afterAll(async () => {
    rmSync(join(pgdata, 'recovery.signal'), { force: true });
    if (lock) await until(() => !lockHolderAlive(lock!), 20_000);
    rmSync(root, { recursive: true, force: true });
  });
  return { root, archive, stateBase, pgdata, env, watchLock: (path: string) => void (lock = path) };
}

describe('wal-fetch starts the prefetcher first', () => {
  const { root, archive, stateBase, pgdata, env, watchLock } = recoveryScene('walvault-prefetch-start-');

  it('brings the next segment although the first call fails to restore its own', async () => {
    mkdirSync(archive);
    await pushFixtures(root, env);
    // Damage segment 7's object: found in the archive, but its download cannot be verified.
    const dir7 = join(archive, 'wal', '00000001', '0000000100000000');
    const obj7 = readdirSync(dir7).find((n) => n.startsWith(`${SEG7}-`))!;
    const bytes = readFileSync(join(dir7, obj7));
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    writeFileSync(join(dir7, obj7), bytes);

    recoveringDataDir(pgdata);
    const state = stateDirFor(pgdata, { WALVAULT_STATE_DIR: stateBase });
    watchLock(join(state, 'prefetch.pid'));

    const res = await runCli('wal-fetch', [SEG7, 'pg_wal/RECOVERYXLOG'], { env, cwd: pgdata });
    // An integrity failure stops recovery (above 125), and nothing was written to %p.
    expect(res.code, res.stderr).toBe(128);
    expect(existsSync(join(pgdata, 'pg_wal', 'RECOVERYXLOG'))).toBe(false);
    const next = join(prefetchDir(state), SEG8);
    expect(await until(() => existsSync(next), 30_000), `no ${SEG8} in ${prefetchDir(state)}`).toBe(true);
    expect(readFileSync(next).equals(loadFixture(15, SEG8))).toBe(true);
  });

  it('restores from the archive when the state directory cannot be used', async () => {
    // A state base under a regular file: mkdir fails for every user, root included (as a base
    // another user created 0700 fails for the postgres user).
    const blocker = join(root, 'not-a-directory');
    writeFileSync(blocker, '');
    const res = await runCli('wal-fetch', [SEG8, 'pg_wal/RECOVERYXLOG'], {
      env: { ...env, WALVAULT_STATE_DIR: join(blocker, 'state') },
      cwd: pgdata,
    });
    expect(res.code, res.stderr).toBe(0);
    expect(readFileSync(join(pgdata, 'pg_wal', 'RECOVERYXLOG')).equals(loadFixture(15, SEG8))).toBe(true);
    rmSync(join(pgdata, 'pg_wal', 'RECOVERYXLOG'));
  });
});

describe('the call that starts the prefetcher', () => {
  const { root, archive, stateBase, pgdata, env, watchLock } = recoveryScene('walvault-prefetch-bridge-', { WALVAULT_LOG_LEVEL: 'info' });

  it('leaves the next segment in the prefetch directory before it returns', async () => {
    mkdirSync(archive);
    await pushFixtures(root, env);
    recoveringDataDir(pgdata);
    const state = stateDirFor(pgdata, { WALVAULT_STATE_DIR: stateBase });
    watchLock(join(state, 'prefetch.pid'));

    const res = await runCli('wal-fetch', [SEG7, 'pg_wal/RECOVERYXLOG'], { env, cwd: pgdata });
    expect(res.code, res.stderr).toBe(0);
    expect(readFileSync(join(pgdata, 'pg_wal', 'RECOVERYXLOG')).equals(loadFixture(15, SEG7))).toBe(true);
    // Already there when the call returns, verified: the next call needs no prefetcher.
    const next = join(prefetchDir(state), SEG8);
    expect(existsSync(next), res.stderr).toBe(true);
    expect(readFileSync(next).equals(loadFixture(15, SEG8))).toBe(true);
    expect(res.stderr).toContain('fetched the next segment ahead while the prefetcher starts');
  });
});
