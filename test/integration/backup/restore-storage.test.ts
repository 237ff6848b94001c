/**
 * walvault restore through the CLI where no PostgreSQL is needed: from an S3 archive (s3rver),
 * with the effective S3 settings persisted for restore_command, and into a file system that fills
 * up (a 2 MiB tmpfs) with one line, exit 3 and the directory left not startable.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3TestServer } from '../../support/s3bucket.js';
import { describeS3 } from '../../support/s3servers.js';
import { writeFixtureBackup, type FixtureFile } from '../../support/backup-fixture.js';
import { runCli } from '../../support/walvault.js';
import { archiveContext } from './restore-support.js';

const NAME = '20261201T100000F';

function cluster(big: Buffer): FixtureFile[] {
  return [
    { path: 'backup_label', content: Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n') },
    { path: 'PG_VERSION', content: Buffer.from('17\n') },
    { path: 'base', type: 'dir' },
    { path: 'base/5', type: 'dir' },
    { path: 'base/5/16384', content: big },
    { path: 'global', type: 'dir' },
    { path: 'pg_wal', type: 'dir' },
    { path: 'global/pg_control', content: Buffer.alloc(8192, 3) },
  ];
}

describeS3('walvault restore from an S3 archive', (server) => {
  let s3: S3TestServer;
  let settings: Record<string, unknown>;
  let env: Record<string, string>;
  const root = mkdtempSync('/tmp/walvault-restore-s3-');
  const big = randomBytes(3 * 1024 * 1024 + 17);

  beforeAll(async () => {
    s3 = await server.start({ bucket: 'backups' });
    const secretFile = join(root, 's3-secret');
    writeFileSync(secretFile, `${s3.secretAccessKey}\n`, { mode: 0o600 });
    settings = {
      archive: `s3://${s3.bucket}/db1`,
      's3-endpoint': s3.endpoint,
      's3-region': 'us-east-1',
      's3-force-path-style': true,
      's3-checksums': 'when_required',
      's3-access-key-id': s3.accessKeyId,
      's3-secret-access-key-file': secretFile,
      compression: 'zstd',
    };
    // Given to the restore in the environment: restore_command will not have it, the file must.
    env = Object.fromEntries(Object.entries(settings).map(([k, v]) => [`WALVAULT_${k.toUpperCase().replace(/-/g, '_')}`, String(v)]));
    const ctx = await archiveContext(settings);
    try {
      await writeFixtureBackup(ctx, { name: NAME, packSize: 1024 * 1024, files: cluster(big) });
    } finally {
      await ctx.storage.close();
    }
  }, 120_000);
  afterAll(async () => {
    await s3?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('restores every file and persists the S3 settings it was given in the environment', async () => {
    const dir = join(root, 'data');
    const res = await runCli('walvault', ['restore', '--pgdata', dir, '--target', 'immediate'], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/restored backup 20261201T100000F .* into .*data\n\s+4 files, 3\.0 MiB written from 4 packs/);
    expect(readFileSync(join(dir, 'base/5/16384')).equals(big)).toBe(true);
    const conf = readFileSync(join(dir, 'walvault-restore.conf'), 'utf8');
    expect(conf).toContain(`archive = "s3://${s3.bucket}/db1"`);
    expect(conf).toContain(`s3-endpoint = "${s3.endpoint}"`);
    expect(conf).toContain('s3-force-path-style = "true"');
    expect(conf).toContain(`s3-secret-access-key-file = "${join(root, 's3-secret')}"`);
    expect(conf).not.toMatch(/^s3-secret-access-key =/m); // the secret stays in its file
    expect(readFileSync(join(dir, 'postgresql.auto.conf'), 'utf8')).toContain("recovery_target = 'immediate'");
  });
});

describe('walvault restore into a file system that fills up', () => {
  const root = mkdtempSync('/tmp/walvault-restore-full-');
  const archiveDir = join(root, 'archive');
  const small = join(root, 'small');
  let mounted = false;

  beforeAll(async () => {
    mkdirSync(archiveDir);
    mkdirSync(small);
    // Needs root (the test suite runs as root, see the brief); a failure here fails the test.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small]);
    mounted = true;
    const ctx = await archiveContext(archiveDir);
    try {
      await writeFixtureBackup(ctx, { name: NAME, packSize: 1024 * 1024, files: cluster(randomBytes(3 * 1024 * 1024)) });
    } finally {
      await ctx.storage.close();
    }
  });
  afterAll(() => {
    if (mounted) execFileSync('umount', [small]);
    rmSync(root, { recursive: true, force: true });
  });

  it('exits 3 with one line and leaves the marker, no pg_control and no recovery.signal', async () => {
    const dir = join(small, 'data');
    const res = await runCli('walvault', ['restore', '--pgdata', dir], {
      env: { WALVAULT_ARCHIVE: `file://${archiveDir}` },
    });
    expect(res.code).toBe(3);
    expect(res.stderr.trim().split('\n')).toEqual([
      `walvault restore: unable to restore backup '${NAME}' into '${dir}': no space left on device (disk full) [WV_ERR_LOCAL_IO]`,
    ]);
    expect(existsSync(join(dir, 'walvault-restore.incomplete'))).toBe(true);
    expect(existsSync(join(dir, 'global/pg_control'))).toBe(false);
    expect(existsSync(join(dir, 'recovery.signal'))).toBe(false);
  });
});
