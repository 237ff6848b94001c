/**
 * Keeping up with a backlog: PostgreSQL's archiver calls archive_command one file at a time. The
 * first wal-push starts the look-ahead uploader, which archives the waiting segments in parallel and
 * leaves markers; `walvault daemon` does the same continuously. Either way every segment ends up in
 * the archive exactly once and identical to pg_wal.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PgCluster, defaultMajor, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, REPO, runCli, waitForArchiveDone, walCommands, writeConfig } from '../../support/walvault.js';
import { pgUser } from '../../../tools/pgcluster/user.js';
import { stateDirFor } from '../../../src/push/state-dir.js';

function archivedSegments(archiveDir: string): string[] {
  const out: string[] = [];
  const walRoot = join(archiveDir, 'wal');
  for (const tli of readdirSync(walRoot)) {
    for (const log of readdirSync(join(walRoot, tli))) {
      for (const f of readdirSync(join(walRoot, tli, log))) out.push(f.slice(0, 24));
    }
  }
  return out.sort();
}

describe('archiving a backlog', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-backlog-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function setup(
    name: string,
  ): Promise<{ cluster: PgCluster; archiveDir: string; stateBase: string; configFile: string; archiveCommand: string }> {
    pgOwnedDir(join(root, name));
    const archiveDir = pgOwnedDir(join(root, name, 'archive'));
    const stateBase = pgOwnedDir(join(root, name, 'state'));
    const configFile = writeConfig(join(root, name, 'walvault.conf'), { archive: `file://${archiveDir}`, 'push-parallel': 2 });
    const { archiveCommand } = walCommands({ configFile, stateDir: stateBase });
    const cluster = pool.track(
      await PgCluster.create({
        major: defaultMajor(),
        walSegSizeMb: 1,
        // Archiving "fails" until the test switches archive_command on, so a backlog builds up.
        config: { archive_mode: 'on', archive_command: '/bin/false', wal_keep_size: '128MB' },
      }),
    );
    await cluster.start();
    return { cluster, archiveDir, stateBase, configFile, archiveCommand };
  }

  it('the look-ahead uploader drains a backlog of .ready segments and every one is archived once', async () => {
    const { cluster, archiveDir, stateBase, archiveCommand } = await setup('ahead');
    await cluster.generateWal({ bytes: 14 * 1024 * 1024 });
    await cluster.switchWal();
    const ready = readdirSync(join(cluster.walDir(), 'archive_status')).filter((f) => f.endsWith('.ready'));
    expect(ready.length).toBeGreaterThanOrEqual(12);

    await cluster.query(`ALTER SYSTEM SET archive_command = '${archiveCommand.replace(/'/g, "''")}'`);
    await cluster.query('SELECT pg_reload_conf()');
    const done = await waitForArchiveDone(cluster, 120_000);
    const segments = done.filter((n) => /^[0-9A-F]{24}$/.test(n));
    expect(archivedSegments(archiveDir)).toEqual(expect.arrayContaining(segments));
    expect(new Set(archivedSegments(archiveDir)).size).toBe(archivedSegments(archiveDir).length);

    const stateDir = stateDirFor(cluster.dataDir, { WALVAULT_STATE_DIR: stateBase });
    const log = readFileSync(join(stateDir, 'walvault.log'), 'utf8');
    const entries = log
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { command: string; msg: string; level: string });
    // The uploader, not archive_command, archived most of the backlog, and nothing failed.
    const byUploader = entries.filter((e) => e.command === 'walvault wal-push-ahead' && e.msg === 'archived');
    expect(byUploader.length).toBeGreaterThanOrEqual(segments.length / 2);
    expect(entries.filter((e) => e.level === 'warn' || e.level === 'error')).toEqual([]);
    // Every marker was used by archive_command (or swept once its file was gone).
    const leftovers = readdirSync(join(stateDir, 'pushed')).filter((f) => !f.startsWith('.'));
    for (const f of leftovers) expect(readdirSync(cluster.walDir())).toContain(f);
  });

  it('walvault daemon archives ahead continuously and reports it on /status', async () => {
    const { cluster, archiveDir, stateBase, configFile, archiveCommand } = await setup('daemon');
    const user = pgUser();
    const port = 20000 + Math.floor(Math.random() * 20000);
    const daemon = spawn(
      process.execPath,
      [join(REPO, 'dist', 'cli', 'walvault.js'), 'daemon', '--pgdata', cluster.dataDir, '--metrics-port', String(port)],
      {
        env: { ...process.env, WALVAULT_CONFIG: configFile, WALVAULT_STATE_DIR: stateBase },
        stdio: ['ignore', 'ignore', 'pipe'],
        cwd: '/',
        ...(user.isCurrent ? {} : { uid: user.uid, gid: user.gid }),
      },
    );
    let stderr = '';
    daemon.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await cluster.generateWal({ bytes: 8 * 1024 * 1024 });
      await cluster.switchWal();
      // The daemon archives while archive_command still fails; then archive_command finds markers.
      const deadline = Date.now() + 60_000;
      let status: { filesArchived: number } = { filesArchived: 0 };
      while (Date.now() < deadline && status.filesArchived < 8) {
        await new Promise((r) => setTimeout(r, 300));
        status = await fetch(`http://127.0.0.1:${port}/status`).then(
          (r) => r.json() as Promise<{ filesArchived: number }>,
          () => status,
        );
      }
      expect(status.filesArchived, stderr).toBeGreaterThanOrEqual(8);
      await cluster.query(`ALTER SYSTEM SET archive_command = '${archiveCommand.replace(/'/g, "''")}'`);
      await cluster.query('SELECT pg_reload_conf()');
      const done = await waitForArchiveDone(cluster, 60_000);
      expect(archivedSegments(archiveDir)).toEqual(expect.arrayContaining(done.filter((n) => /^[0-9A-F]{24}$/.test(n))));
      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(/^walvault_segments_archived_total\{archive="file:\/\/[^"]+"\} [1-9]\d*$/m);
      // One uploader per data directory: a second daemon refuses to start.
      const second = await runCli('walvault', ['daemon', '--pgdata', cluster.dataDir], {
        env: { WALVAULT_CONFIG: configFile, WALVAULT_STATE_DIR: stateBase },
      });
      expect(second.code).toBe(2);
      expect(second.stderr).toMatch(/another uploader holds/);
    } finally {
      const exit = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
      daemon.kill('SIGTERM');
      expect(await exit).toBe(0);
    }
  });
});
