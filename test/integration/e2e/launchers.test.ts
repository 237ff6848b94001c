/**
 * The sh launchers' fast paths, tested without Node behind them: WALVAULT_NODE points at a program
 * that fails, so exit 0 proves the launcher answered by itself, and a non-zero exit proves it handed
 * over to the full program. A marker must vouch for exactly the file it names.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentFileIdentity, writeMarker } from '../../../src/push/markers.js';
import { stateDirFor } from '../../../src/push/state-dir.js';
import { prefetchDir } from '../../../src/restore/prefetch.js';
import { bootId } from '../../../src/restore/prefetch-dir.js';
import { loadFixture } from '../../support/fixtures.js';
import { bin } from '../../support/walvault.js';

const SEG = '000000010000000000000008';

function run(launcher: string, args: string[], cwd: string, env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    execFile(launcher, args, { cwd, env: { PATH: process.env['PATH'] ?? '', ...env } }, (err) => {
      resolve(err ? (typeof err.code === 'number' ? err.code : 1) : 0);
    });
  });
}

describe('launcher fast paths', () => {
  const root = mkdtempSync(join(tmpdir(), 'walvault-launch-'));
  const pgdata = join(root, 'data');
  const state = join(root, 'state');
  mkdirSync(join(pgdata, 'global'), { recursive: true });
  mkdirSync(join(pgdata, 'pg_wal'), { recursive: true });
  writeFileSync(join(pgdata, 'PG_VERSION'), '15\n');
  // pg_control starts with the system identifier (u64, little-endian).
  const control = Buffer.alloc(8192);
  control.writeBigUInt64LE(7712183698484992009n, 0);
  writeFileSync(join(pgdata, 'global', 'pg_control'), control);
  const segPath = join(pgdata, 'pg_wal', SEG);
  writeFileSync(segPath, loadFixture(15, SEG));
  const noNode = { WALVAULT_NODE: '/bin/false', WALVAULT_STATE_DIR: state };

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('the state directory name the launchers compute matches the program (device, inode, system id)', () => {
    expect(stateDirFor(pgdata, { WALVAULT_STATE_DIR: state })).toMatch(new RegExp(`^${state}/\\d+-\\d+-7712183698484992009$`));
  });

  it('wal-push answers from a marker that names exactly this file, and consumes it', async () => {
    const dir = stateDirFor(pgdata, { WALVAULT_STATE_DIR: state });
    await writeMarker(dir, SEG, (await currentFileIdentity(segPath))!);
    expect(await run(bin('wal-push'), [`pg_wal/${SEG}`], pgdata, noNode)).toBe(0);
    expect(existsSync(join(dir, 'pushed', SEG))).toBe(false);
    // Consumed: the next call goes to the program.
    expect(await run(bin('wal-push'), [`pg_wal/${SEG}`], pgdata, noNode)).not.toBe(0);
  });

  it('wal-push ignores a marker for a file that was rewritten, renamed or replaced since', async () => {
    const dir = stateDirFor(pgdata, { WALVAULT_STATE_DIR: state });
    const seen = (await currentFileIdentity(segPath))!;
    // Rewritten with the same size (mtime and ctime change).
    await writeMarker(dir, SEG, seen);
    await new Promise((r) => setTimeout(r, 5));
    writeFileSync(segPath, readFileSync(segPath));
    expect(await run(bin('wal-push'), [`pg_wal/${SEG}`], pgdata, noNode)).not.toBe(0);
    // Only the times put back (ctime cannot be put back): still refused.
    await writeMarker(dir, SEG, seen);
    utimesSync(segPath, Number(seen.mtimeNs / 1_000_000n) / 1000, Number(seen.mtimeNs / 1_000_000n) / 1000);
    expect(await run(bin('wal-push'), [`pg_wal/${SEG}`], pgdata, noNode)).not.toBe(0);
    // Renamed away and another file put in its place (as PostgreSQL recycles segments).
    const now = (await currentFileIdentity(segPath))!;
    await writeMarker(dir, SEG, now);
    renameSync(segPath, `${segPath}.old`);
    writeFileSync(segPath, readFileSync(`${segPath}.old`));
    expect(await run(bin('wal-push'), [`pg_wal/${SEG}`], pgdata, noNode)).not.toBe(0);
  });

  it('wal-push with a marker of another cluster (other system id) does not take it', async () => {
    const other = join(state, stateDirFor(pgdata, { WALVAULT_STATE_DIR: state }).split('/').pop()!.replace(/-\d+$/, '-1'));
    await writeMarker(other, SEG, (await currentFileIdentity(segPath))!);
    expect(await run(bin('wal-push'), [`pg_wal/${SEG}`], pgdata, noNode)).not.toBe(0);
  });

  it('wal-fetch hands over a prefetched segment with one rename, and falls through when there is none', async () => {
    const dir = prefetchDir(stateDirFor(pgdata, { WALVAULT_STATE_DIR: state }));
    mkdirSync(dir, { recursive: true });
    const bytes = loadFixture(15, SEG);
    writeFileSync(join(dir, SEG), bytes);
    expect(await run(bin('wal-fetch'), [SEG, 'pg_wal/RECOVERYXLOG'], pgdata, noNode)).toBe(0);
    expect(readFileSync(join(pgdata, 'pg_wal', 'RECOVERYXLOG')).equals(bytes)).toBe(true);
    expect(existsSync(join(dir, SEG))).toBe(false);
    expect(await run(bin('wal-fetch'), [SEG, 'pg_wal/RECOVERYXLOG'], pgdata, noNode)).not.toBe(0);
    // History files and odd names are never served from the prefetch directory.
    writeFileSync(join(dir, '00000002.history'), '1\t0/3000000\tx\n');
    expect(await run(bin('wal-fetch'), ['00000002.history', 'pg_wal/RECOVERYHISTORY'], pgdata, noNode)).not.toBe(0);
  });

  it('wal-fetch never hands over a file prefetched before this boot (written without fsync)', async () => {
    const stateDir = stateDirFor(pgdata, { WALVAULT_STATE_DIR: state });
    const boot = bootId();
    expect(boot, 'this Linux machine has a boot id').not.toBeNull();
    // A torn file left by a crash: another boot's directory, and the plain one of older versions.
    const torn = Buffer.alloc(16 * 1024 * 1024);
    for (const old of [prefetchDir(stateDir, '00000000-0000-4000-8000-000000000000'), prefetchDir(stateDir, null)]) {
      mkdirSync(old, { recursive: true });
      writeFileSync(join(old, SEG), torn);
      expect(await run(bin('wal-fetch'), [SEG, 'pg_wal/RECOVERYXLOG'], pgdata, noNode)).not.toBe(0);
      expect(existsSync(join(old, SEG))).toBe(true);
      rmSync(old, { recursive: true, force: true });
    }
    expect(prefetchDir(stateDir)).toBe(prefetchDir(stateDir, boot));
  });
});

describe('wal-fetch launcher exit codes', () => {
  const root = mkdtempSync(join(tmpdir(), 'walvault-launch-rc-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it.each([
    ['node crashes (exit 1)', '/bin/false', 128],
    ['node is missing (127)', '/nonexistent/node', 128],
  ])('%s: PostgreSQL must stop, not take it for "not found"', async (_label, node, expected) => {
    const code = await run(bin('wal-fetch'), ['00000001000000000000000F', join(root, 'x')], root, { WALVAULT_NODE: node });
    expect(code).toBe(expected);
  });

  it('only the program\'s own "not in the archive" becomes 1', async () => {
    mkdirSync(join(root, 'archive'));
    const env = { WALVAULT_NODE: process.execPath, WALVAULT_ARCHIVE: `file://${join(root, 'archive')}` };
    // An empty directory is no archive: "not found" there would end a recovery on a wrong mount.
    expect(await run(bin('wal-fetch'), ['00000001000000000000000F', join(root, 'x')], root, env)).toBe(128);
    // One push gives the archive its identity record; from then on a missing file is a real answer.
    writeFileSync(join(root, SEG), loadFixture(15, SEG));
    expect(await run(bin('wal-push'), [join(root, SEG)], root, { ...env, WALVAULT_NO_FASTPATH: '1' })).toBe(0);
    expect(await run(bin('wal-fetch'), ['00000001000000000000000F', join(root, 'x')], root, env)).toBe(1);
  });
});
