/**
 * Incremental chains end to end on PostgreSQL 17 through the real commands (issue 13): a full
 * backup, an increment on it and one on that, each taken under a write load, with between them
 * updates spread over a large table, a dropped table, a truncated table, a new database and a
 * table grown by many blocks. Restoring each backup of the chain (to `immediate`, and the first
 * increment to a later time) gives exactly the rows and content checksums of the primary at that
 * point; a flipped byte in a pack of the parent makes the child's restore fail naming it; expire
 * over chains keeps every kept backup restorable.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgCluster, supportedMajors, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, runCli, waitForArchiveDone } from '../../support/walvault.js';
import { archiveSetup, archivingCluster, backupPush, type ArchiveSetup } from './push-setup.js';
import { startRestored, stopRestored } from './restore-support.js';

const NAME_OF = /^backup (\d{8}T\d{6}[FI]) complete: /m;
/** Tables that stay still while a backup runs: their content at its end is known exactly. */
const QUIET: Record<string, string[]> = { postgres: ['upd', 'trunc', 'grow'], newdb: ['fresh'] };

type Query = (db: string, sql: string) => Promise<Array<Record<string, unknown>>>;

async function clientQuery(port: number, host: string, db: string, sql: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ host, port, user: 'postgres', database: db });
  await client.connect();
  try {
    return (await client.query(sql)).rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
}

/** Row count and md5 over every row (ordered) of each quiet table that exists, by database. */
async function fingerprint(q: Query, dbs: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const db of dbs) {
    for (const t of QUIET[db]!) {
      const exists = await q(db, `SELECT to_regclass('${t}') IS NOT NULL AS e`);
      if (!exists[0]!['e']) continue;
      const r = await q(db, `SELECT count(*)::text AS n, md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS h FROM ${t} x`);
      out[`${db}.${t}`] = `${String(r[0]!['n'])}:${String(r[0]!['h'])}`;
    }
  }
  return out;
}

describe.runIf(supportedMajors().includes(17))('incremental chain round trip on PostgreSQL 17', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-incrrestore-'));
  let a: ArchiveSetup;
  let c: PgCluster;
  let q: Query;
  // The state directory restore_command uses must be the postgres user's (the default is shared).
  const env = (): Record<string, string> => ({ WALVAULT_CONFIG: a.configFile, WALVAULT_STATE_DIR: join(root, 'state'), ...a.env });
  const points: Array<{ name: string; want: Record<string, string>; dbs: string[]; loadMin: number; loadMax: number }> = [];
  let later: { time: string; want: Record<string, string> } | undefined;
  const restored: string[] = [];

  async function loadCount(): Promise<number> {
    return Number((await q('postgres', 'SELECT count(*)::text AS n FROM load'))[0]!['n']);
  }

  /** backup-push under an insert load; the quiet tables' fingerprint is what a restore to its end holds. */
  async function push(args: string[], dbs: string[]): Promise<string> {
    const want = await fingerprint(q, dbs);
    const loadMin = await loadCount();
    let stop = false;
    const loader = (async () => {
      while (!stop) {
        await q('postgres', "INSERT INTO load SELECT g, repeat('x', 100) FROM generate_series(1, 50) g");
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    let out: string;
    try {
      const res = await backupPush(c, a, args);
      expect(res.code, res.stderr).toBe(0);
      out = res.stdout;
    } finally {
      stop = true;
      await loader;
    }
    const name = NAME_OF.exec(out)?.[1];
    expect(name, out).toBeDefined();
    points.push({ name: name!, want, dbs, loadMin, loadMax: await loadCount() });
    return name!;
  }

  beforeAll(async () => {
    a = archiveSetup(root);
    c = pool.track(await archivingCluster(17, a));
    await c.query('ALTER SYSTEM SET summarize_wal = on');
    await c.query('SELECT pg_reload_conf()');
    q = (db, sql) => clientQuery(c.connectionInfo.port, '127.0.0.1', db, sql);
    await c.query('CREATE TABLE upd (id int PRIMARY KEY, v text)');
    await c.query("INSERT INTO upd SELECT g, repeat('u', 200) FROM generate_series(1, 40000) g");
    await c.query("CREATE TABLE trunc AS SELECT g AS id, repeat('t', 200) AS v FROM generate_series(1, 5000) g");
    await c.query('CREATE TABLE gone AS SELECT g AS id FROM generate_series(1, 3000) g');
    await c.query("CREATE TABLE grow AS SELECT g AS id, repeat('g', 50) AS v FROM generate_series(1, 100) g");
    await c.query('CREATE TABLE load (x int, pad text)');
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);

    await push([], ['postgres']);
    // Between the full backup and the first increment.
    await c.query("UPDATE upd SET v = repeat('U', 200) WHERE id % 97 = 0");
    await c.query('DROP TABLE gone');
    await c.query('TRUNCATE trunc');
    await c.query("INSERT INTO trunc SELECT g, 'again' FROM generate_series(1, 10) g");
    await c.query('CREATE DATABASE newdb');
    await q('newdb', 'CREATE TABLE fresh AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g');
    await c.query("INSERT INTO grow SELECT g, repeat('G', 50) FROM generate_series(101, 60000) g");
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
    await push(['--incremental'], ['postgres', 'newdb']);

    // A point after the first increment, for a restore to a time.
    await q('postgres', "INSERT INTO upd VALUES (-1, 'after the first increment')");
    later = { time: (await q('postgres', 'SELECT now()::text AS t'))[0]!['t'] as string, want: {} };
    later.want = await fingerprint(q, ['postgres', 'newdb']);
    await new Promise((r) => setTimeout(r, 1100));

    // Between the increments.
    await c.query("UPDATE upd SET v = 'second' WHERE id % 31 = 0");
    await q('newdb', "INSERT INTO fresh SELECT g, 'more' FROM generate_series(2001, 4000) g");
    await c.query("INSERT INTO grow SELECT g, repeat('H', 50) FROM generate_series(60001, 90000) g");
    await c.query('TRUNCATE trunc');
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
    await push(['--incremental'], ['postgres', 'newdb']);
    // WAL past the last backup, so every target is reachable.
    await q('postgres', "INSERT INTO upd VALUES (-2, 'after the chain')");
    await c.switchWal();
    await waitForArchiveDone(c, 120_000);
  }, 900_000);

  afterAll(async () => {
    for (const dir of restored) await stopRestored(c, dir).catch(() => undefined);
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  async function restoreAndCheck(name: string, args: string[], want: Record<string, string>, dbs: string[]): Promise<number> {
    const dir = pgOwnedDir(join(root, `r-${name}-${restored.length}`));
    const res = await runCli('walvault', ['restore', '--pgdata', dir, '--backup', name, ...args], { env: env(), timeoutMs: 240_000 });
    expect(res.code, res.stderr).toBe(0);
    restored.push(dir);
    const server = await startRestored(c, dir, root, { timeoutMs: 180_000 });
    const rq: Query = (db, sql) => clientQuery(server.port, '127.0.0.1', db, sql);
    expect(await fingerprint(rq, dbs)).toEqual(want);
    const load = Number((await rq('postgres', 'SELECT count(*)::text AS n FROM load'))[0]!['n']);
    const databases = (await rq('postgres', 'SELECT datname FROM pg_database ORDER BY 1')).map((r) => r['datname']);
    expect(databases.includes('newdb')).toBe(dbs.includes('newdb'));
    expect(await rq('postgres', "SELECT to_regclass('gone') IS NULL AS dropped")).toEqual([{ dropped: name !== points[0]!.name }]);
    await stopRestored(c, dir);
    return load;
  }

  it('the chain is full -> increment -> increment, and each increment stores INCREMENTAL files', async () => {
    expect(points.map((p) => p.name.slice(-1))).toEqual(['F', 'I', 'I']);
    const list = JSON.parse((await runCli('walvault', ['backup-list', '--json'], { env: env() })).stdout) as {
      backups: Array<{ name: string; chain: { parent: string | null; depth: number; totalBytes: number; ownBytes: number } }>;
    };
    const chain = points.map((p) => list.backups.find((b) => b.name === p.name)!.chain);
    expect(chain.map((x) => [x.parent, x.depth])).toEqual([
      [null, 0],
      [points[0]!.name, 1],
      [points[1]!.name, 2],
    ]);
    expect(chain[2]!.totalBytes).toBe(chain[0]!.ownBytes + chain[1]!.ownBytes + chain[2]!.ownBytes);
    const verify = await runCli('walvault', ['backup-verify', points[2]!.name], { env: env(), timeoutMs: 240_000 });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`${points[0]!.name}: `);
  }, 300_000);

  for (const i of [0, 1, 2]) {
    it(`restores backup ${i} of the chain to 'immediate' with exactly its rows and checksums`, async () => {
      const p = points[i]!;
      const load = await restoreAndCheck(p.name, ['--target', 'immediate'], p.want, p.dbs);
      // The load ran during the backup: what committed before it started is there, nothing after it ended.
      expect(load).toBeGreaterThanOrEqual(p.loadMin);
      expect(load).toBeLessThanOrEqual(p.loadMax);
    }, 400_000);
  }

  it('restores the first increment to a later time', async () => {
    await restoreAndCheck(points[1]!.name, ['--target-time', later!.time], later!.want, ['postgres', 'newdb']);
  }, 400_000);

  it("a flipped byte in a pack of the parent fails the child's restore naming it, leaving the directory not startable", async () => {
    const archive = a.url.slice('file://'.length);
    const parent = points[1]!.name;
    const pack = join(archive, 'backups', parent, 'packs', '000000001');
    const original = readFileSync(pack);
    const bad = Buffer.from(original);
    bad[bad.length - 10]! ^= 0x01;
    writeFileSync(pack, bad);
    try {
      const dir = pgOwnedDir(join(root, 'r-damaged'));
      const res = await runCli('walvault', ['restore', '--pgdata', dir, '--backup', points[2]!.name, '--target', 'immediate'], {
        env: env(),
        timeoutMs: 240_000,
      });
      expect(res.code).toBe(128);
      expect(res.stderr).toMatch(new RegExp(`backup '${points[2]!.name}'.*backups/${parent}/packs/000000001`));
      expect(readFileSync(join(dir, 'walvault-restore.incomplete'), 'utf8')).toMatch(/failed at/);
      expect(() => readFileSync(join(dir, 'global/pg_control'))).toThrow();
    } finally {
      writeFileSync(pack, original);
    }
  }, 300_000);

  it('expire --retain-full 1 over two chains deletes the old chain children first and keeps the new one restorable', async () => {
    const f2 = await push([], ['postgres', 'newdb']);
    await c.query("UPDATE upd SET v = 'third' WHERE id % 13 = 0");
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
    const i3 = await push(['--incremental'], ['postgres', 'newdb']);
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
    const res = await runCli('walvault', ['expire', '--retain-full', '1', '--json'], { env: env(), timeoutMs: 240_000 });
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { keep: Array<{ name: string }>; outcome: { backupsDeleted: string[] } };
    expect(out.keep.map((k) => k.name)).toEqual([f2, i3]);
    expect(out.outcome.backupsDeleted).toEqual([points[2]!.name, points[1]!.name, points[0]!.name]);
    const p = points.find((x) => x.name === i3)!;
    await restoreAndCheck(i3, ['--target', 'immediate'], p.want, p.dbs);
  }, 900_000);
});
