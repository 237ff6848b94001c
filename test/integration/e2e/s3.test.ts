/**
 * archive_command / restore_command against real S3 protocol servers (s3rver and Ceph RGW on
 * loopback): archiving under load, surviving a storage outage (PostgreSQL retries, nothing is lost),
 * byte-identical restores and a point-in-time recovery.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PgCluster, defaultMajor, useClusterPool } from '../../support/cluster.js';
import type { S3TestServer } from '../../support/s3bucket.js';
import { describeS3 } from '../../support/s3servers.js';
import { pgOwnedDir, runCli, waitForArchiveDone, walCommands, writeConfig } from '../../support/walvault.js';

describeS3('wal-push and wal-fetch with an S3 archive', (server) => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-s3e2e-'));
  let s3: S3TestServer;
  let primary: PgCluster;
  let configFile: string;
  let env: Record<string, string>;
  let commands: { archiveCommand: string; restoreCommand: string };

  beforeAll(async () => {
    s3 = await server.start({ bucket: 'wal' });
    configFile = writeConfig(join(root, 'walvault.conf'), {
      archive: `s3://${s3.bucket}/prod/db1`,
      's3-endpoint': s3.endpoint,
      's3-force-path-style': true,
      's3-checksums': 'when_required',
      's3-max-attempts': 2,
      compression: 'lz4',
    });
    env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1' };
    commands = walCommands({ configFile, stateDir: pgOwnedDir(join(root, 'state')), extraEnv: env });
    primary = pool.track(
      await PgCluster.create({
        major: defaultMajor(),
        walSegSizeMb: 1,
        config: { archive_mode: 'on', archive_command: commands.archiveCommand, wal_keep_size: '128MB' },
      }),
    );
    await primary.start();
    await primary.query('CREATE TABLE t (id int)');
  });

  afterAll(async () => {
    await pool.destroyAll();
    await s3?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('archives under load, survives an outage, and restores byte-identical segments', async () => {
    const backup = await primary.baseBackup({ waitForArchive: true });
    await primary.query('INSERT INTO t SELECT generate_series(1, 1000)');
    const target = (await primary.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;

    // Storage goes away while WAL keeps coming: archive_command fails, PostgreSQL keeps the files.
    await s3.suspend();
    await primary.generateWal({ bytes: 4 * 1024 * 1024 });
    await primary.query('INSERT INTO t SELECT generate_series(1001, 2000)');
    await primary.switchWal();
    // The look-ahead uploader's attempt fails first, then archive_command's own: allow for both.
    const deadline = Date.now() + 60_000;
    while (!/archive command failed/.test(await primary.logTail(200)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(await primary.logTail(200)).toMatch(/archive command failed/);
    await s3.resume();
    const done = await waitForArchiveDone(primary, 120_000);

    const out = join(root, 'restored');
    for (const name of done.filter((n) => /^[0-9A-F]{24}$/.test(n)).slice(-4)) {
      let original: Buffer;
      try {
        original = readFileSync(join(primary.walDir(), name));
      } catch {
        continue;
      }
      const res = await runCli('wal-fetch', [name, out], { env: { ...env, WALVAULT_CONFIG: configFile, WALVAULT_FETCH_PREFETCH: '0' } });
      expect(res.code, res.stderr).toBe(0);
      expect(readFileSync(out).equals(original)).toBe(true);
    }

    const restored = pool.track(
      await PgCluster.fromBackup(backup.dir, {
        recovery: { restoreCommand: commands.restoreCommand, targetLsn: target, targetAction: 'promote' },
        config: { archive_mode: 'off' },
      }),
    );
    await restored.start();
    await restored.waitForRecoveryEnd({ timeoutMs: 60_000 });
    expect((await restored.query<{ n: string }>('SELECT count(*)::text AS n FROM t'))[0]!.n).toBe('1000');
  });

  it('an unreachable archive is "not available" for a standby but stops a point-in-time recovery', async () => {
    await s3.suspend();
    try {
      const pgdata = primary.dataDir;
      const base = { ...env, WALVAULT_CONFIG: configFile, WALVAULT_FETCH_PREFETCH: '0' };
      // Outside recovery (no signal file) the default is to stop: never a silent "not found".
      const pitr = await runCli('wal-fetch', ['000000010000000000000003', join(root, 'x')], { env: base, cwd: pgdata });
      expect(pitr.code).toBe(128);
      expect(pitr.stderr).toMatch(/unable to .*s3:\/\/wal\/prod\/db1/);
      const standby = await runCli('wal-fetch', ['000000010000000000000003', join(root, 'x')], {
        env: { ...base, WALVAULT_FETCH_UNAVAILABLE: 'retry' },
        cwd: pgdata,
      });
      expect(standby.code).toBe(3);
    } finally {
      await s3.resume();
    }
  });

  it('bad credentials give one clear line and a failure code', async () => {
    const segment = (await waitForArchiveDone(primary)).filter((n) => /^[0-9A-F]{24}$/.test(n)).pop()!;
    const res = await runCli('wal-push', [join(primary.walDir(), segment)], {
      env: { ...env, AWS_ACCESS_KEY_ID: 'WRONG', WALVAULT_CONFIG: configFile, WALVAULT_NO_FASTPATH: '1' },
    });
    expect(res.code).toBe(3);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/access denied|InvalidAccessKeyId/i);
  });
});
