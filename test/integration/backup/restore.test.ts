/**
 * walvault restore against real PostgreSQL 13, 15 and 17: a base backup taken under a concurrent
 * write load (stored in the backup format by the directory fixture writer, independent of
 * backup-push) with WAL archived by wal-push, restored with `walvault restore` and started with
 * `pg_ctl start` alone; exact row counts at every kind of target, a tablespace outside the data
 * directory (mapped and in place), a damaged pack, --delta, and the refusals.
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupName } from '../../../src/backup/names.js';
import { PgCluster, supportedMajors, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, runCli, waitForArchiveDone, walCommands, writeConfig } from '../../support/walvault.js';
import { pgUser } from '../../../tools/pgcluster/user.js';
import { archiveContext, liveBackup, startRestored, stopRestored, tryStart } from './restore-support.js';

const MAJORS = supportedMajors().filter((m) => [13, 15, 17].includes(m));

async function batch(c: PgCluster, n: number): Promise<void> {
  await c.query('INSERT INTO t SELECT g, $1 FROM generate_series(1, 1000) g', [n]);
}

/** Type, mode, owner and content hash of every entry under `dir` (links not followed). */
function tree(dir: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel === '' ? name : `${rel}/${name}`;
    const st = lstatSync(join(dir, r));
    const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}`;
    if (st.isSymbolicLink()) out[r] = `link ${meta}`;
    else if (st.isDirectory()) {
      out[r] = `dir ${meta}`;
      Object.assign(out, tree(dir, r));
    } else
      out[r] = `file ${meta} ${Math.floor(st.mtimeMs / 1000)} ${createHash('sha256')
        .update(readFileSync(join(dir, r)))
        .digest('hex')}`;
  }
  return out;
}

describe.each(MAJORS)('PostgreSQL %i: walvault restore', (major) => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-restore-'));
  const archiveDir = pgOwnedDir(join(root, 'archive'));
  const stateDir = pgOwnedDir(join(root, 'state'));
  const tsDir = pgOwnedDir(join(root, 'ts'));
  const configFile = writeConfig(join(root, 'walvault.conf'), { archive: `file://${archiveDir}`, compression: 'zstd' });
  const { archiveCommand } = walCommands({ configFile, stateDir });
  const env = { WALVAULT_CONFIG: configFile, WALVAULT_STATE_DIR: stateDir };
  const user = pgUser();
  let primary: PgCluster;
  let name: string;
  let tsOid: number;
  let loadRows: number;
  const targets = { lsn: '', xid: '', time: '' };
  const running: string[] = [];

  const restore = (dir: string, ...args: string[]): ReturnType<typeof runCli> =>
    runCli('walvault', ['restore', '--pgdata', dir, ...args], { env, timeoutMs: 180_000 });
  const mapped = (dir: string): string[] => ['--tablespace-map', `${tsOid}=${dir}-ts`];

  async function restoreAndStart(label: string, args: string[]): Promise<{ t: number; tt: number; load: number; dir: string }> {
    const dir = pgOwnedDir(join(root, label));
    const res = await restore(dir, ...args);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`next: pg_ctl start -D '${dir}'`);
    // Owner kept (root restored into the postgres user's directory) and PostgreSQL's modes.
    expect(statSync(dir).uid).toBe(user.uid);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'global/pg_control')).uid).toBe(user.uid);
    running.push(dir);
    const server = await startRestored(primary, dir, root);
    const n = async (table: string): Promise<number> =>
      Number((await server.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`))[0]!.n);
    const counts = { t: await n('t'), tt: await n('tt'), load: await n('load'), dir };
    await stopRestored(primary, dir);
    return counts;
  }

  beforeAll(async () => {
    primary = pool.track(
      await PgCluster.create({
        major,
        walSegSizeMb: 1,
        config: { archive_mode: 'on', archive_command: archiveCommand, wal_keep_size: '256MB' },
      }),
    );
    await primary.start();
    await primary.query(`CREATE TABLESPACE ts1 LOCATION '${tsDir}'`);
    tsOid = Number((await primary.query<{ oid: string }>("SELECT oid::text FROM pg_tablespace WHERE spcname = 'ts1'"))[0]!.oid);
    await primary.query('CREATE TABLE tt (id int) TABLESPACE ts1');
    await primary.query('INSERT INTO tt SELECT generate_series(1, 500)');
    await primary.query('CREATE TABLE t (id int, batch int)');
    await primary.query('CREATE TABLE load (x int, pad text)');
    await primary.query('CHECKPOINT');

    // A write load for the whole backup.
    let stop = false;
    const loader = (async () => {
      while (!stop) {
        await primary.query("INSERT INTO load SELECT g, repeat('x', 100) FROM generate_series(1, 50) g");
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    name = backupName(new Date(), 'full');
    const ctx = await archiveContext(archiveDir);
    try {
      await liveBackup(primary, ctx, name, { walSegSize: 1024 * 1024, packSize: 256 * 1024 });
    } finally {
      stop = true;
      await loader;
      await ctx.storage.close();
    }
    loadRows = Number((await primary.query<{ n: string }>('SELECT count(*)::text AS n FROM load'))[0]!.n);

    await batch(primary, 1);
    targets.lsn = (await primary.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;
    await primary.generateWal({ bytes: 1024 * 1024 });
    await batch(primary, 2);
    await primary.query("SELECT pg_create_restore_point('after_batch_2')");
    await primary.generateWal({ bytes: 1024 * 1024 });
    const client = await primary.connect();
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO t SELECT g, 3 FROM generate_series(1, 1000) g');
      targets.xid = (await client.query<{ x: string }>('SELECT txid_current()::text AS x')).rows[0]!.x;
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    await primary.generateWal({ bytes: 1024 * 1024 });
    await batch(primary, 4);
    targets.time = (await primary.query<{ t: string }>('SELECT clock_timestamp()::text AS t'))[0]!.t;
    await new Promise((r) => setTimeout(r, 1200));
    await batch(primary, 5);
    await primary.switchWal();
    await waitForArchiveDone(primary, 180_000);
  }, 400_000);

  afterAll(async () => {
    for (const dir of running) await stopRestored(primary, dir).catch(() => undefined);
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it.each([
    ['the end of the backup', ['--target', 'immediate'], 0],
    ['an LSN', () => ['--target-lsn', targets.lsn], 1000],
    ['a restore point', ['--target-name', 'after_batch_2'], 2000],
    ['an xid', () => ['--target-xid', targets.xid], 3000],
    ['a time', () => ['--target-time', targets.time], 4000],
  ] as const)(
    'restores to %s with exact row counts',
    async (label, args, expected) => {
      const dirName = `r-${label.replace(/\W+/g, '-')}`;
      const list = typeof args === 'function' ? args() : [...args];
      const c = await restoreAndStart(dirName, [...list, ...mapped(join(root, dirName))]);
      expect(c.t).toBe(expected);
      expect(c.tt).toBe(500);
      expect(c.load).toBeGreaterThanOrEqual(0);
      expect(readlinkSync(join(c.dir, 'pg_tblspc', String(tsOid)))).toBe(`${c.dir}-ts`);
    },
    240_000,
  );

  it('refuses a non-empty directory, a running server, an unknown backup and a target before the backup end', async () => {
    const dir = pgOwnedDir(join(root, 'refusals'));
    writeFileSync(join(dir, 'stray'), 'x');
    const nonEmpty = await restore(dir);
    expect(nonEmpty.code).toBe(4);
    expect(nonEmpty.stderr).toMatch(/unable to restore into data directory '.*refusals': it is not empty/);
    const running = await restore(primary.dataDir, '--delta');
    expect(running.code).toBe(4);
    expect(running.stderr).toMatch(/a server is running there \(postmaster.pid names live process \d+\)/);
    const unknown = await restore(join(root, 'nothing'), '--backup', '20200101T000000F');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unable to restore backup '20200101T000000F': no complete backup of that name");
    const early = await restore(join(root, 'nothing'), '--backup', name, '--target-time', '2020-01-01T00:00:00Z');
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/target time 2020-01-01T00:00:00.000Z is not after the backup's end/);
    const beyond = await restore(join(root, 'nothing'), '--target-lsn', 'FF/0');
    expect(beyond.code).toBe(2);
    expect(beyond.stderr).toMatch(/after the newest archived WAL/);
    // The tablespace's original location is the primary's live tablespace: refused, not overwritten.
    const inUse = await restore(join(root, 'nothing'));
    expect(inUse.code).toBe(4);
    expect(inUse.stderr).toMatch(new RegExp(`tablespace ${tsOid} location '${tsDir}': it is not empty`));
    expect(existsSync(join(root, 'nothing'))).toBe(false);
    expect(readFileSync(join(dir, 'stray'), 'utf8')).toBe('x');
  });

  it('fails on a flipped byte in a stored pack, naming the file, and leaves a directory PostgreSQL will not start', async () => {
    // A pack in the middle (files of base/): every other file, postgresql.conf included, is written,
    // so the refusal below is PostgreSQL's own about the missing pg_control.
    const packs = join(archiveDir, 'backups', name, 'packs');
    const pack = join(packs, readdirSync(packs).sort()[1]!);
    const original = readFileSync(pack);
    const damaged = Buffer.from(original);
    damaged[Math.floor(damaged.length / 2)]! ^= 0x10;
    writeFileSync(pack, damaged);
    try {
      const dir = pgOwnedDir(join(root, 'r-damaged'));
      const res = await restore(dir, ...mapped(dir));
      expect(res.code).toBe(128);
      expect(res.stderr).toMatch(new RegExp(`unable to restore file 'base/[^']+' of backup '${name}'.*packs/000000002`));
      expect(existsSync(join(dir, 'postgresql.conf'))).toBe(true);
      expect(existsSync(join(dir, 'global/pg_control'))).toBe(false);
      expect(existsSync(join(dir, 'recovery.signal'))).toBe(false);
      expect(readFileSync(join(dir, 'walvault-restore.incomplete'), 'utf8')).toMatch(/failed at/);
      const start = await tryStart(primary, dir, root);
      expect(start.code).not.toBe(0);
      expect(start.output).toMatch(/could not open file ".*\/global\/pg_control": No such file or directory/);
    } finally {
      writeFileSync(pack, original);
    }
  }, 120_000);

  it('--delta over a used directory with changed and extra files gives the same files as a fresh restore', async () => {
    const fresh = join(root, 'r-delta-fresh');
    pgOwnedDir(fresh);
    expect((await restore(fresh, '--target-xid', targets.xid, '--tablespace-map', `${tsOid}=${join(root, 'delta-ts')}`)).code).toBe(0);
    // A directory that ran as a server (promoted at the LSN target), then was changed by hand.
    const used = (await restoreAndStart('r-delta-used', ['--target-lsn', targets.lsn, ...mapped(join(root, 'r-delta-used'))])).dir;
    writeFileSync(join(used, 'extra-file'), 'extra');
    writeFileSync(join(used, 'base', 'stray'), 'stray');
    const res = await restore(used, '--delta', '--target-xid', targets.xid, '--tablespace-map', `${tsOid}=${join(root, 'delta-ts-used')}`);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/delta: [1-9]\d* files kept/);
    const a = tree(fresh);
    const b = tree(used);
    for (const t of [a, b]) {
      // Written by the restore itself: paths of their own directory, mapped locations, fresh signal.
      for (const k of ['postgresql.auto.conf', 'walvault-restore.conf', 'tablespace_map', 'recovery.signal']) delete t[k];
    }
    expect(b).toEqual(a);
    expect(readFileSync(join(used, 'tablespace_map'), 'utf8')).toBe(`${tsOid} ${join(root, 'delta-ts-used')}\n`);
    expect(tree(join(root, 'delta-ts-used'))).toEqual(tree(join(root, 'delta-ts')));
    const server = await startRestored(primary, used, root);
    try {
      expect(Number((await server.query<{ n: string }>('SELECT count(*)::text AS n FROM t'))[0]!.n)).toBe(3000);
    } finally {
      await stopRestored(primary, used);
    }
  }, 300_000);

  it('latest with no target reaches the last archived WAL, tablespace in its original place', async () => {
    const expectedLoad = loadRows;
    await primary.stop({ mode: 'fast' });
    // The primary is gone for good: its tablespace location is free for the restore to reuse.
    for (const entry of readdirSync(tsDir)) rmSync(join(tsDir, entry), { recursive: true, force: true });
    const c = await restoreAndStart('r-latest', []);
    expect(c.t).toBe(5000);
    expect(c.tt).toBe(500);
    expect(c.load).toBe(expectedLoad);
    expect(readlinkSync(join(c.dir, 'pg_tblspc', String(tsOid)))).toBe(tsDir);
  }, 240_000);
});
