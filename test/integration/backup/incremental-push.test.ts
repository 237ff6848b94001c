/**
 * backup-push --incremental against real servers (issue 13), through the bin/walvault launcher:
 *
 * PostgreSQL 17: with summarize_wal off, `--incremental` stops with exit 3 and the reason and
 * `--incremental=auto` takes a full backup saying why; with the summaries since the parent gone,
 * the server's own refusal does the same and leaves no half-claimed backup; with summaries on and
 * a few rows of a large table changed, the incremental stores INCREMENTAL files, reuses the
 * parent's bytes and stores far less than the full backup.
 *
 * PostgreSQL 15: `--incremental` is chunk-level: a table not touched since the parent costs no new
 * bytes, its files are stored by reference to the parent's packs.
 *
 * Every file of every incremental reads back, through its extents (own and referenced packs), with
 * the SHA-256 of PostgreSQL's own backup_manifest.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { decodeCatalog, extentRef, restoredPath, type Catalog } from '../../../src/backup/catalog.js';
import { loadBackupObject } from '../../../src/backup/objects.js';
import { writeFixtureBackup } from '../../support/backup-fixture.js';
import { type PgCluster, supportedMajors, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, waitForArchiveDone } from '../../support/walvault.js';
import { archiveSetup, archivingCluster, backupNames, backupPush, openArchiveCtx, readBackup, type ArchiveSetup } from './push-setup.js';

const NAME_OF = /^backup (\d{8}T\d{6}[FI]) complete: /m;

function nameOf(stdout: string): string {
  const name = NAME_OF.exec(stdout)?.[1];
  expect(name, stdout).toBeDefined();
  return name!;
}

/** Every file of `name` reads back through its extents with the manifest's size and SHA-256. */
async function checkReadsBack(ctx: ArchiveContext, name: string): Promise<void> {
  const { record, catalog, manifest } = await readBackup(ctx, name);
  const catalogs = new Map<string, Catalog>([[name, catalog]]);
  for (const owner of record.depends ?? []) {
    const { record: r } = await readBackup(ctx, owner);
    catalogs.set(owner, decodeCatalog(await loadBackupObject(ctx, r.catalog), r.catalog.key, owner));
  }
  const packs = new Map<string, Buffer>();
  const byPath = new Map(catalog.entries.filter((e) => e.type === 'file').map((e) => [restoredPath(e), e]));
  for (const f of manifest.Files) {
    const path = f.Path ?? Buffer.from(f['Encoded-Path']!, 'hex').toString('utf8');
    const e = byPath.get(path);
    expect(e, `manifest file ${path} in the catalog`).toBeDefined();
    const h = createHash('sha256');
    for (const x of e!.extents) {
      const ref = extentRef(name, x, catalogs);
      let bytes = packs.get(ref.key);
      if (!bytes) packs.set(ref.key, (bytes = await loadBackupObject(ctx, ref)));
      h.update(bytes.subarray(x[1], x[1] + x[2]));
    }
    expect([path, e!.size, h.digest('hex')]).toEqual([path, f.Size, f.Checksum]);
  }
}

/** Waits until the summaries written reach past `lsn` (the summarizer sleeps up to a minute when idle). */
async function summarizedPast(c: PgCluster, lsn: string): Promise<void> {
  let state = '';
  for (let i = 0; i < 1200; i++) {
    const [row] = await c.query<{ ok: boolean; s: string }>(
      `SELECT summarized_lsn > '${lsn}'::pg_lsn AS ok, summarized_lsn::text AS s FROM pg_get_wal_summarizer_state()`,
    );
    if (row?.ok) return;
    state = row?.s ?? '';
    if (i % 50 === 49) await c.query('CHECKPOINT');
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the WAL summarizer did not pass ${lsn} (summarized up to ${state})`);
}

describe.runIf(supportedMajors().includes(17))('backup-push --incremental on PostgreSQL 17', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-incpush17-'));
  let a: ArchiveSetup;
  let c: PgCluster;
  let ctx: ArchiveContext;

  beforeAll(async () => {
    a = archiveSetup(root);
    c = pool.track(await archivingCluster(17, a));
    await c.query('CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 60000) g');
    await c.query('CREATE TABLE quiet AS SELECT g AS id FROM generate_series(1, 20000) g');
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
    ctx = await openArchiveCtx(a);
  });
  afterAll(async () => {
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('without a parent or with summarize_wal off: exit 3 with the reason; auto takes a full backup saying why', async () => {
    const none = await backupPush(c, a, ['--incremental']);
    expect(none.code, none.stderr).toBe(3);
    expect(none.stderr).toMatch(
      /unable to take incremental backup into archive '.+': the archive holds no complete backup of this cluster/,
    );
    const full = await backupPush(c, a);
    expect(full.code, full.stderr).toBe(0);
    const off = await backupPush(c, a, ['--incremental']);
    expect(off.code, off.stderr).toBe(3);
    expect(off.stderr).toMatch(/unable to take incremental backup into archive '.+': summarize_wal is off on the server/);
    expect(off.stderr).toContain('WV_ERR_INCREMENTAL_UNAVAILABLE');
    const auto = await backupPush(c, a, ['--incremental=auto']);
    expect(auto.code, auto.stderr).toBe(0);
    expect(nameOf(auto.stdout)).toMatch(/F$/);
    expect(auto.stdout).toMatch(/^full backup instead of incremental: .*summarize_wal is off on the server/m);
    expect((await backupNames(ctx)).any.filter((n) => n.endsWith('I'))).toEqual([]);
  });

  it('when the server refuses (summaries gone) the attempt leaves nothing, and auto falls back to a full backup', async () => {
    await c.query('ALTER SYSTEM SET summarize_wal = on');
    await c.query('SELECT pg_reload_conf()');
    const parent = await backupPush(c, a);
    expect(parent.code, parent.stderr).toBe(0);
    await c.query('INSERT INTO quiet SELECT generate_series(1, 100)');
    await c.switchWal();
    await c.query('CHECKPOINT');
    // Summaries must exist past the parent's start, so that removing them leaves a gap the
    // summarizer (which goes on from where it is) never fills.
    await summarizedPast(c, (await readBackup(ctx, nameOf(parent.stdout))).record.startLsn);
    // What wal_summary_keep_time does to a parent that is too old.
    const dir = join(c.dataDir, 'pg_wal', 'summaries');
    for (const f of await readdir(dir)) if (/^[0-9A-F]{40}\.summary$/.test(f)) await rm(join(dir, f), { force: true });
    const refused = await backupPush(c, a, ['--incremental']);
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toMatch(/the WAL summaries do not cover the time since the parent backup/);
    expect((await backupNames(ctx)).any.filter((n) => n.endsWith('I'))).toEqual([]);
    const auto = await backupPush(c, a, ['--incremental=auto']);
    expect(auto.code, auto.stderr).toBe(0);
    expect(nameOf(auto.stdout)).toMatch(/F$/);
    expect(auto.stdout).toMatch(/^full backup instead of incremental: .*the WAL summaries do not cover/m);
    expect((await backupNames(ctx)).any.filter((n) => n.endsWith('I'))).toEqual([]);
  });

  it('stores INCREMENTAL files and reuses the parent, far smaller than the full backup', async () => {
    const { complete } = await backupNames(ctx);
    const fullName = complete.sort().at(-1)!;
    await c.query('UPDATE big SET pad = upper(pad) WHERE id % 5000 = 0');
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
    const res = await backupPush(c, a, ['--incremental']);
    expect(res.code, res.stderr).toBe(0);
    const name = nameOf(res.stdout);
    expect(name).toMatch(/I$/);
    expect(res.stdout).toMatch(new RegExp(`complete: incremental on ${fullName}, reused .+ of .+, `));
    const full = await readBackup(ctx, fullName);
    const inc = await readBackup(ctx, name);
    expect([inc.record.type, inc.record.parent]).toEqual(['incremental', fullName]);
    const incrementalFiles = inc.catalog.entries.filter((e) => e.incremental === true);
    expect(incrementalFiles.length).toBeGreaterThan(0);
    expect(incrementalFiles.every((e) => /\/INCREMENTAL\.\d+/.test(`/${e.path}`))).toBe(true);
    expect(inc.record.reusedBytes).toBeGreaterThan(0);
    expect(inc.record.depends).toEqual([fullName]);
    expect(inc.record.storedBytes).toBeLessThan(full.record.storedBytes / 3);
    // Every file over 1 MiB of the full backup carries its piece checksums for the next one.
    for (const e of full.catalog.entries) if (e.size > 1024 * 1024) expect(e.chunks, e.path).toBeDefined();
    await checkReadsBack(ctx, name);
  });

  it('a parent from PostgreSQL 15: exit 3 with the documented reason; auto takes a full backup saying why', async () => {
    // A PostgreSQL 15 backup of this cluster (same system identifier) as the archive stores one:
    // chunk-level backups of 15 carry no block-level manifest to build an increment on.
    const [row] = await c.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
    const id = row?.id;
    if (id === undefined) throw new Error('pg_control_system() returned no row');
    const old = '20200101T000000F';
    await writeFixtureBackup(ctx, {
      name: old,
      files: [{ path: 'PG_VERSION', content: Buffer.from('15\n') }],
      manifest: null,
      record: { systemId: id!, pgVersionNum: 150004 },
    });
    const refused = await backupPush(c, a, ['--incremental', '--parent', old]);
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toMatch(
      /unable to take incremental backup into archive '.+': the parent backup is from PostgreSQL older than 17 \(backup '20200101T000000F' is from PostgreSQL 15\)/,
    );
    expect(refused.stderr).toContain('WV_ERR_INCREMENTAL_UNAVAILABLE');
    const before = (await backupNames(ctx)).any.filter((n) => n.endsWith('I'));
    const auto = await backupPush(c, a, ['--incremental=auto', '--parent', old]);
    expect(auto.code, auto.stderr).toBe(0);
    expect(nameOf(auto.stdout)).toMatch(/F$/);
    expect(auto.stdout).toMatch(/^full backup instead of incremental: .*the parent backup is from PostgreSQL older than 17/m);
    expect((await backupNames(ctx)).any.filter((n) => n.endsWith('I'))).toEqual(before);
  });
});

describe.runIf(supportedMajors().includes(15))('backup-push --incremental on PostgreSQL 15 (chunk level)', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-incpush15-'));
  let a: ArchiveSetup;
  let c: PgCluster;

  beforeAll(async () => {
    a = archiveSetup(root);
    c = pool.track(await archivingCluster(15, a));
    await c.query('CREATE TABLE untouched AS SELECT g AS id, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 40000) g');
    await c.query('CREATE TABLE busy (id int, v text)');
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
  });
  afterAll(async () => {
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('stores a table not touched since the parent by reference only', async () => {
    const full = await backupPush(c, a);
    expect(full.code, full.stderr).toBe(0);
    const fullName = nameOf(full.stdout);
    await c.query("INSERT INTO busy SELECT g, 'x' FROM generate_series(1, 5000) g");
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
    const res = await backupPush(c, a, ['--incremental', '--parent', fullName]);
    expect(res.code, res.stderr).toBe(0);
    const name = nameOf(res.stdout);
    expect(name).toMatch(/I$/);
    const ctx = await openArchiveCtx(a);
    const inc = await readBackup(ctx, name);
    const [{ path }] = (await c.query<{ path: string }>("SELECT pg_relation_filepath('untouched') AS path")) as [{ path: string }];
    const untouched = inc.catalog.entries.find((e) => e.path === path)!;
    expect(untouched.size).toBeGreaterThan(5 * 1024 * 1024);
    expect(untouched.extents.every((x) => x[3] === fullName)).toBe(true);
    expect(inc.catalog.entries.some((e) => e.incremental === true)).toBe(false);
    expect([inc.record.type, inc.record.parent, inc.record.depends]).toEqual(['incremental', fullName, [fullName]]);
    expect(inc.record.reusedBytes).toBeGreaterThanOrEqual(untouched.size);
    const fullRecord = (await readBackup(ctx, fullName)).record;
    expect(inc.record.storedBytes).toBeLessThan(fullRecord.storedBytes / 2);
    await checkReadsBack(ctx, name);
  });
});
