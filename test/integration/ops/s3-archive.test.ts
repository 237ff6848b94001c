/**
 * wal-list, wal-show and wal-verify on an S3 archive (s3rver and Ceph RGW on loopback) that real
 * PostgreSQL filled through archive_command = wal-push: listings that the service does not return in
 * byte order, a segment deleted from the bucket, and an object damaged in place (found by --deep only).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createStorage } from '../../../src/storage/factory.js';
import type { Storage } from '../../../src/storage/types.js';
import { PgCluster, defaultMajor, useClusterPool } from '../../support/cluster.js';
import type { S3TestServer } from '../../support/s3bucket.js';
import { describeS3 } from '../../support/s3servers.js';
import { pgOwnedDir, runCli, waitForArchiveDone, walCommands, writeConfig, type CliResult } from '../../support/walvault.js';

interface Row {
  name: string;
  kind: string;
  timeline: number;
  key: string;
}

describeS3('operator commands on an S3 archive', (server) => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-ops-s3-'));
  let s3: S3TestServer;
  let storage: Storage;
  let env: Record<string, string>;
  let primary: PgCluster;
  let done: string[];
  const vv = (...args: string[]): Promise<CliResult> => runCli('walvault', args, { env });

  beforeAll(async () => {
    s3 = await server.start({ bucket: 'ops' });
    const settings = {
      archive: `s3://${s3.bucket}/db1`,
      's3-endpoint': s3.endpoint,
      's3-force-path-style': true,
      's3-checksums': 'when_required',
      's3-max-attempts': 2,
      compression: 'lz4',
      'push-lookahead': 0,
    } as const;
    const configFile = writeConfig(join(root, 'walvault.conf'), settings);
    const creds = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1' };
    env = { ...creds, WALVAULT_CONFIG: configFile };
    const { archiveCommand } = walCommands({ configFile, stateDir: pgOwnedDir(join(root, 'state')), extraEnv: creds });
    primary = pool.track(
      await PgCluster.create({ major: defaultMajor(), walSegSizeMb: 1, config: { archive_mode: 'on', archive_command: archiveCommand } }),
    );
    await primary.start();
    await primary.generateWal({ bytes: 4 * 1024 * 1024 });
    await primary.switchWal();
    done = (await waitForArchiveDone(primary)).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    storage = await createStorage(settings.archive, {
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      checksums: 'when_required',
      maxAttempts: 2,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
  });

  afterAll(async () => {
    await storage?.close();
    await pool.destroyAll();
    await s3?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  async function list(): Promise<Row[]> {
    const res = await vv('wal-list', '--json');
    expect(res.code, res.stderr).toBe(0);
    return (JSON.parse(res.stdout) as { rows: Row[] }).rows;
  }

  it('wal-list lists every archived segment in WAL order', async () => {
    const rows = await list();
    expect(rows.map((r) => r.name)).toEqual(done);
    expect(rows.every((r) => r.kind === 'segment' && r.timeline === 1)).toBe(true);
  });

  it('wal-verify passes, then finds a deleted segment and, with --deep, a damaged object', async () => {
    expect((await vv('wal-verify', '--deep')).code).toBe(0);
    const rows = await list();
    const gone = rows[Math.floor(rows.length / 2)]!;
    const kept = await storage.getBuffer(gone.key);
    await storage.delete([gone.key]);
    try {
      const res = await vv('wal-verify');
      expect(res.code).toBe(128);
      expect(res.stdout).toContain(`[gap] timeline 1 missing ${gone.name}`);
      const show = JSON.parse((await vv('wal-show', '--json')).stdout) as { timelines: Array<{ gaps: unknown[] }> };
      expect(show.timelines[0]!.gaps).toEqual([{ first: gone.name, last: gone.name, segments: 1 }]);
    } finally {
      await storage.put(gone.key, kept);
    }

    const victim = rows[rows.length - 1]!;
    const original = await storage.getBuffer(victim.key);
    const damaged = Buffer.from(original);
    damaged[damaged.length - 32]! ^= 0x01;
    await storage.put(victim.key, damaged);
    try {
      expect((await vv('wal-verify')).code).toBe(0);
      const deep = await vv('wal-verify', '--deep', '--json');
      expect(deep.code).toBe(128);
      expect((JSON.parse(deep.stdout) as { problems: Array<{ kind: string; subject: string }> }).problems).toEqual([
        expect.objectContaining({ kind: 'damaged', subject: victim.key }),
      ]);
    } finally {
      await storage.put(victim.key, original);
    }
  });
});
