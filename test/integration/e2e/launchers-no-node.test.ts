/**
 * The postmaster's PATH often lacks node (a package manager's or nvm's directory is only in a login
 * shell's PATH). The launchers then say so in one line naming the fix, and exit with a code that
 * keeps PostgreSQL's contract: wal-push one the archiver retries, wal-fetch the fetch-unavailable rule.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bin } from '../../support/walvault.js';

function run(launcher: string, args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(launcher, args, { cwd, env }, (err, _stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr });
    });
  });
}

describe('launchers without node in PATH', () => {
  const root = mkdtempSync(join(tmpdir(), 'walvault-nonode-'));
  // A PATH with the tools the launchers use, and no node.
  const path = join(root, 'bin');
  mkdirSync(path);
  for (const tool of ['readlink', 'od', 'stat', 'cat', 'rm', 'mv']) symlinkSync(`/usr/bin/${tool}`, join(path, tool));
  const pgdata = join(root, 'data');
  mkdirSync(join(pgdata, 'pg_wal'), { recursive: true });
  writeFileSync(join(pgdata, 'PG_VERSION'), '15\n');
  const env = { PATH: path, WALVAULT_STATE_DIR: join(root, 'state') };
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function expectOneLineNamingTheFix(stderr: string, command: string): void {
    const lines = stderr.trim().split('\n');
    expect(lines, stderr).toHaveLength(1);
    expect(lines[0]).toContain("unable to start node 'node'");
    expect(lines[0]).toContain(`${command} = 'WALVAULT_NODE=/path/to/node `);
    expect(stderr).not.toContain('exec: node');
  }

  it('wal-push names WALVAULT_NODE and exits 2, which the archiver retries (not 127)', async () => {
    writeFileSync(join(pgdata, 'pg_wal', '000000010000000000000001'), 'x');
    const res = await run(bin('wal-push'), ['pg_wal/000000010000000000000001'], pgdata, env);
    expect(res.code).toBe(2);
    expectOneLineNamingTheFix(res.stderr, 'archive_command');
  });

  it('wal-fetch names WALVAULT_NODE and stops a recovery (128), or lets a standby retry (3)', async () => {
    const args = ['000000010000000000000002', 'pg_wal/RECOVERYXLOG'];
    const recovery = await run(bin('wal-fetch'), args, pgdata, env);
    expect(recovery.code).toBe(128);
    expectOneLineNamingTheFix(recovery.stderr, 'restore_command');
    writeFileSync(join(pgdata, 'standby.signal'), '');
    try {
      const standby = await run(bin('wal-fetch'), args, pgdata, env);
      expect(standby.code).toBe(3);
      expectOneLineNamingTheFix(standby.stderr, 'restore_command');
      // fetch-unavailable = abort from the environment wins over standby.signal, as in the program.
      expect((await run(bin('wal-fetch'), args, pgdata, { ...env, WALVAULT_FETCH_UNAVAILABLE: 'abort' })).code).toBe(128);
    } finally {
      rmSync(join(pgdata, 'standby.signal'));
    }
  });
});
