/**
 * While `walvault daemon` runs, archive_command never starts Node: the wal-push launcher sees the
 * daemon's lock, waits in sh for the marker the daemon writes once it has archived the file, and
 * answers 0 from it. Node starts are counted through WALVAULT_NODE, a wrapper that logs each start.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PgCluster, defaultMajor, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, REPO, waitForArchiveDone, walCommands, writeConfig } from '../../support/walvault.js';
import { pgUser } from '../../../tools/pgcluster/user.js';

describe('archive_command while the daemon runs', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-handoff-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('hands every segment to the daemon: no Node process started by archive_command', async () => {
    const archiveDir = pgOwnedDir(join(root, 'archive'));
    const stateBase = pgOwnedDir(join(root, 'state'));
    const configFile = writeConfig(join(root, 'walvault.conf'), { archive: `file://${archiveDir}`, 'push-parallel': 2 });
    const starts = join(pgOwnedDir(join(root, 'log')), 'node-starts');
    const wrapper = join(root, 'node-wrapper');
    writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> '${starts}'\nexec '${process.execPath}' "$@"\n`);
    chmodSync(wrapper, 0o755);
    const { archiveCommand } = walCommands({ configFile, stateDir: stateBase, extraEnv: { WALVAULT_NODE: wrapper } });
    const cluster = pool.track(
      await PgCluster.create({ major: defaultMajor(), walSegSizeMb: 1, config: { archive_mode: 'on', archive_command: archiveCommand } }),
    );
    await cluster.start();
    const user = pgUser();
    const daemon = spawn(process.execPath, [join(REPO, 'dist', 'cli', 'walvault.js'), 'daemon', '--pgdata', cluster.dataDir], {
      env: { ...process.env, WALVAULT_CONFIG: configFile, WALVAULT_STATE_DIR: stateBase },
      stdio: ['ignore', 'ignore', 'pipe'],
      cwd: '/',
      ...(user.isCurrent ? {} : { uid: user.uid, gid: user.gid }),
    });
    let stderr = '';
    daemon.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      // The daemon holds its lock before the first segment is finished.
      const lockDeadline = Date.now() + 30_000;
      const stateDirs = (): string[] => readdirSync(stateBase).map((d) => join(stateBase, d));
      while (!stateDirs().some((d) => existsSync(join(d, 'ahead.pid')))) {
        if (Date.now() > lockDeadline) throw new Error(`the daemon did not take its lock: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await cluster.generateWal({ bytes: 40 * 1024 * 1024 });
      await cluster.switchWal();
      const done = (await waitForArchiveDone(cluster, 240_000)).filter((n) => /^[0-9A-F]{24}$/.test(n));
      expect(done.length).toBeGreaterThanOrEqual(30);
      const archived = readdirSync(join(archiveDir, 'wal'), { recursive: true }).map(String);
      for (const seg of done) expect(archived.some((k) => k.includes(`${seg}-`))).toBe(true);
      expect(existsSync(starts) ? readFileSync(starts, 'utf8') : '', stderr).toBe('');
    } finally {
      const exit = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
      daemon.kill('SIGTERM');
      expect(await exit).toBe(0);
    }
  });
});
