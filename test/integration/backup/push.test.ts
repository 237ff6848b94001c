/**
 * walvault backup-push against real PostgreSQL 13, 15 and 17 archiving with wal-push: a backup
 * taken under a concurrent write load completes, its record is right, and every file of
 * PostgreSQL's own backup_manifest is in the catalog with the same SHA-256 and reads back from the
 * packs. Failures leave no complete backup: a corrupted data page (data checksums) fails naming
 * the file, and WAL that never reaches the archive fails after --archive-timeout naming the segment.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isArchived } from '../../../src/backup/wal-wait.js';
import { failedKey } from '../../../src/backup/layout.js';
import { PgCluster, supportedMajors, useClusterPool } from '../../support/cluster.js';
import { createLoadTable, startLoad } from '../../support/load.js';
import { describeS3 } from '../../support/s3servers.js';
import { pgOwnedDir, waitForArchiveDone } from '../../support/walvault.js';
import {
  archiveSetup,
  archivingCluster,
  backupNames,
  backupPush,
  checkBackupContent,
  openArchiveCtx,
  readBackup,
  stopLookAhead,
  type ArchiveSetup,
} from './push-setup.js';

const MAJORS = [13, 15, 17].filter((m) => supportedMajors().includes(m));
const SUMMARY =
  /^backup (\d{8}T\d{6}F) complete: .+ raw, .+ stored in .+ \(.+ MB\/s\), \d+ files, WAL [0-9A-F]+\/[0-9A-F]+ to [0-9A-F]+\/[0-9A-F]+ \(timeline 1\)$/m;

describe.each(MAJORS)('backup-push on PostgreSQL %i (posix archive)', (major) => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync(`/tmp/walvault-bpush${major}-`));
  let a: ArchiveSetup;
  let c: PgCluster;
  let tsDir: string;

  beforeAll(async () => {
    a = archiveSetup(root);
    c = pool.track(await archivingCluster(major, a));
    await createLoadTable(c);
    await c.query('CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 60000) g');
    // A tablespace outside the data directory travels in the backup too.
    tsDir = c.makeDir('ts1');
    await c.query(`CREATE TABLESPACE ts1 LOCATION '${tsDir}'`);
    await c.query('CREATE TABLE in_ts (id int) TABLESPACE ts1');
    await c.query('INSERT INTO in_ts SELECT generate_series(1, 5000)');
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
  });
  afterAll(async () => {
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('completes under a write load with the manifest files in the catalog, byte for byte', async () => {
    const load = startLoad(c, { batch: 300, pauseMs: 20 });
    let res;
    try {
      res = await backupPush(c, a);
    } finally {
      await load.stop();
    }
    expect(res.code, res.stderr).toBe(0);
    const name = SUMMARY.exec(res.stdout)?.[1];
    expect(name, res.stdout).toBeDefined();
    expect(load.committed()).toBeGreaterThan(0);

    const ctx = await openArchiveCtx(a);
    try {
      const { record, catalog } = await readBackup(ctx, name!);
      expect(record.systemId).toBe(await c.systemIdentifier());
      expect(Math.floor(record.pgVersionNum / 10000)).toBe(major);
      expect(record.walSegSize).toBe(1024 * 1024);
      expect([record.type, record.parent, record.startTimeline, record.endTimeline]).toEqual(['full', null, 1, 1]);
      expect(record.label).toBe(`walvault ${name}`);
      expect(record.backupLabel).toContain(`START WAL LOCATION: ${record.startLsn} (file ${record.walFirst})`);
      expect(record.checkpointLsn).not.toBeNull();
      expect(record.tablespaces).toHaveLength(1);
      expect(record.tablespaces[0]!.location).toBe(tsDir);
      expect(record.tablespaces[0]!.bytes).toBeGreaterThan(0);
      expect(record.files).toBe(catalog.entries.filter((e) => e.type === 'file').length);
      expect(record.rawBytes).toBe(catalog.entries.reduce((n, e) => n + e.size, 0));
      expect(record.storedBytes).toBeGreaterThan(0);
      expect(Date.parse(record.stopTime)).toBeGreaterThanOrEqual(Date.parse(record.startTime));
      for (const seg of [record.walFirst, record.walLast]) expect(await isArchived(ctx, seg), seg).toBe(true);
      // Directories PostgreSQL needs are kept (emptied by the server), with their modes.
      const dirs = new Map(catalog.entries.filter((e) => e.type === 'dir').map((e) => [e.path, e.mode]));
      for (const d of ['pg_wal', 'pg_replslot', 'global', 'base']) expect(dirs.has(d), d).toBe(true);
      // Tablespaces come first (the data directory is the server's last archive), which starts with backup_label.
      const base = catalog.entries.filter((e) => e.tablespace === null);
      expect([base[0]!.path, base[base.length - 1]!.path]).toEqual(['backup_label', 'global/pg_control']);
      expect(catalog.entries.some((e) => e.tablespace !== null && e.type === 'file')).toBe(true);
      const { files } = await checkBackupContent(ctx, name!);
      expect(files).toBeGreaterThan(100);
      const names = await backupNames(ctx);
      expect(names.complete).toEqual([name]);
    } finally {
      await ctx.storage.close();
    }
  });

  if (major === 15) {
    it('fails after --archive-timeout naming the segment when WAL never reaches the archive', async () => {
      await c.query("ALTER SYSTEM SET archive_command = 'exit 1'");
      await c.query('SELECT pg_reload_conf()');
      await stopLookAhead(root);
      try {
        const res = await backupPush(c, a, ['--archive-timeout', '3']);
        expect(res.code, res.stderr).toBe(3);
        expect(res.stderr).toMatch(/unable to complete the backup: WAL file '[0-9A-F]{24}' did not reach the archive within 3 s/);
        const ctx = await openArchiveCtx(a);
        try {
          const names = await backupNames(ctx);
          expect(names.complete).toHaveLength(1);
          const failed = names.any.filter((n) => !names.complete.includes(n));
          expect(failed).toHaveLength(1);
          expect((await ctx.storage.getBuffer(failedKey(failed[0]!))).toString()).toContain('did not reach the archive');
        } finally {
          await ctx.storage.close();
        }
      } finally {
        await c.query('ALTER SYSTEM RESET archive_command');
        await c.query('SELECT pg_reload_conf()');
      }
    });

    it('refuses a server of another cluster with exit 4 and writes nothing', async () => {
      const other = pool.track(await PgCluster.create({ major }));
      await other.start();
      const ctx = await openArchiveCtx(a);
      try {
        const before = (await backupNames(ctx)).any.length;
        const res = await backupPush(other, a);
        expect(res.code, res.stderr).toBe(4);
        expect(res.stderr).toMatch(/unable to back up into this archive: the server is database system \d+, the archive belongs to \d+/);
        expect((await backupNames(ctx)).any.length).toBe(before);
      } finally {
        await ctx.storage.close();
        await other.destroy();
      }
    });
  }
});

describe('backup-push with data checksums and a corrupted page', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-bpush-corrupt-'));
  afterAll(async () => {
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('fails naming the file and records no complete backup', async () => {
    const a = archiveSetup(root);
    const c = pool.track(await archivingCluster(15, a, ['--data-checksums']));
    await c.query('CREATE TABLE victim AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g');
    await c.checkpoint();
    const rel = (await c.query<{ p: string }>("SELECT pg_relation_filepath('victim') AS p"))[0]!.p;
    const file = join(c.dataDir, rel);
    expect(existsSync(file)).toBe(true);
    // Garbage in the middle of block 1: the header (and its LSN) stay, the checksum no longer fits.
    const bytes = readFileSync(file);
    bytes.fill(0x5a, 8192 + 4000, 8192 + 4100);
    writeFileSync(file, bytes);
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
    const res = await backupPush(c, a);
    expect(res.code, res.stderr).not.toBe(0);
    expect(res.stderr).toContain(rel);
    const ctx = await openArchiveCtx(a);
    try {
      const names = await backupNames(ctx);
      expect(names.complete).toEqual([]);
      expect(names.any).toHaveLength(1);
      expect(await ctx.storage.head(failedKey(names.any[0]!))).toBeDefined();
    } finally {
      await ctx.storage.close();
    }
  });
});

describeS3('backup-push into an S3 archive', (server) => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-bpush-s3-'));
  afterAll(async () => {
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('completes with the manifest files in the catalog, byte for byte', async () => {
    const s3 = await server.start({ bucket: 'backups' });
    try {
      const a = archiveSetup(root, s3);
      const c = pool.track(await archivingCluster(15, a));
      await c.query('CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 4) AS pad FROM generate_series(1, 20000) g');
      await c.switchWal();
      await waitForArchiveDone(c, 60_000);
      const res = await backupPush(c, a, ['--backup-upload-parallel', '3']);
      expect(res.code, res.stderr).toBe(0);
      const name = SUMMARY.exec(res.stdout)![1]!;
      const ctx = await openArchiveCtx(a);
      try {
        await checkBackupContent(ctx, name);
        expect((await backupNames(ctx)).complete).toEqual([name]);
      } finally {
        await ctx.storage.close();
      }
      await c.stop();
    } finally {
      await s3.stop();
    }
  });
});
