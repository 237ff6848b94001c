/**
 * The body of the PostgreSQL 17 incremental chain round trip (issue 13), run by
 * incremental-restore.test.ts on a posix archive and by incremental-restore-s3.test.ts on S3.
 *
 * A full backup, an increment on it and one on that, each taken under an insert load, with between
 * them updates spread over a large table, a dropped table, a truncated table, a new database and a
 * table grown by many blocks. Each backup of the chain is restored to `immediate` and to a time
 * after it; the restored server holds exactly the databases, tables, rows and content checksums
 * (row count and md5 over every row, for every table of every database) of the primary at that
 * point. A flipped byte in any object of any backup of the chain (its backup.json, catalog,
 * PostgreSQL manifest, the pack holding a large file's chunks, its last pack) fails the restore of
 * the newest backup with exit 128 naming the object, leaving a directory that cannot start, and
 * fails backup-verify with exit 128 naming it. expire over chains keeps every kept backup restorable.
 */
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { catalogKey, packKey, recordKey } from '../../../src/backup/layout.js';
import { type PgCluster, useClusterPool } from '../../support/cluster.js';
import { pgUser } from '../../../tools/pgcluster/user.js';
import type { S3TestServer } from '../../support/s3bucket.js';
import { pgOwnedDir, runCli, waitForArchiveDone, walCommands, writeConfig } from '../../support/walvault.js';
import { archiveSetup, archivingCluster, backupPush, openArchiveCtx, readBackup, type ArchiveSetup } from './push-setup.js';
import { startRestored, stopRestored, tryStart } from './restore-support.js';

const NAME_OF = /^backup (\d{8}T\d{6}[FI]) complete: /m;

type Query = (db: string, sql: string) => Promise<Array<Record<string, unknown>>>;
/** `db.table` -> `rows:md5`, for every table of every database (`load` apart: it grows during backups). */
type Fingerprint = Record<string, string>;

async function clientQuery(port: number, db: string, sql: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: db });
  await client.connect();
  try {
    return (await client.query(sql)).rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
}

const tableSum = (t: string, where = ''): string =>
  `SELECT count(*)::text AS n, md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS h FROM ${t} x ${where}`;

/** The row count and md5 of every row of every table in every database but `load`. */
async function fingerprint(q: Query): Promise<Fingerprint> {
  const out: Fingerprint = {};
  const dbs = (await q('postgres', 'SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1')).map((r) => String(r['datname']));
  for (const db of dbs) {
    const tables = await q(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    for (const t of tables.map((r) => String(r['tablename']))) {
      if (db === 'postgres' && t === 'load') continue;
      const r = await q(db, tableSum(t));
      out[`${db}.${t}`] = `${String(r[0]!['n'])}:${String(r[0]!['h'])}`;
    }
  }
  return out;
}

/** An S3 archive whose credentials are in its config file (restore_command, run by the restored server, reads them there). */
function s3ArchiveSetup(root: string, s3: S3TestServer): ArchiveSetup {
  const secretFile = join(root, 's3-secret');
  writeFileSync(secretFile, `${s3.secretAccessKey}\n`, { mode: 0o600 });
  const user = pgUser();
  if (!user.isCurrent) chownSync(secretFile, user.uid, user.gid);
  const configFile = writeConfig(join(root, 'walvault.conf'), {
    archive: `s3://${s3.bucket}/db`,
    compression: 'zstd:1',
    's3-endpoint': s3.endpoint,
    's3-region': 'us-east-1',
    's3-force-path-style': true,
    's3-checksums': 'when_required',
    's3-max-attempts': 2,
    's3-access-key-id': s3.accessKeyId,
    's3-secret-access-key-file': secretFile,
  });
  const { archiveCommand } = walCommands({ configFile, stateDir: pgOwnedDir(join(root, 'state')) });
  return { url: `s3://${s3.bucket}/db`, configFile, env: {}, archiveCommand, s3 };
}

export interface ChainStorage {
  readonly name: string;
  /** Starts the storage (an S3 server) and returns its archive setup; `stop` ends what it started. */
  setup(root: string): Promise<{ a: ArchiveSetup; stop: () => Promise<void> }>;
}

export const POSIX: ChainStorage = {
  name: 'posix',
  setup: (root) => Promise.resolve({ a: archiveSetup(root), stop: () => Promise.resolve() }),
};

export function s3Storage(start: () => Promise<S3TestServer>): ChainStorage {
  return {
    name: 's3',
    setup: async (root) => {
      const s3 = await start();
      return { a: s3ArchiveSetup(root, s3), stop: () => s3.stop() };
    },
  };
}

interface Point {
  readonly name: string;
  /** The quiet tables at the backup's end. */
  readonly want: Fingerprint;
  readonly loadMin: number;
  readonly loadMax: number;
  /** A time after the backup, with everything (load included) as it was then. */
  later?: { time: string; want: Fingerprint; load: number };
}

/** Registers the chain's beforeAll/afterAll and its tests in the calling describe block. */
export function chainRoundTrip(storage: ChainStorage): void {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync(`/tmp/walvault-incrrestore-${storage.name}-`));
  let a: ArchiveSetup;
  let stopStorage: () => Promise<void> = () => Promise.resolve();
  let c: PgCluster;
  let q: Query;
  let ctx: ArchiveContext;
  // The state directory restore_command uses must be the postgres user's (the default is shared).
  const env = (): Record<string, string> => ({ WALVAULT_CONFIG: a.configFile, WALVAULT_STATE_DIR: join(root, 'state'), ...a.env });
  const points: Point[] = [];
  const restored: string[] = [];
  let loaded = 0;
  let stillPath = '';

  async function loadCount(): Promise<number> {
    return Number((await q('postgres', 'SELECT count(*)::text AS n FROM load'))[0]!['n']);
  }

  /** backup-push under an insert load (rows numbered 1, 2, ... in commit order, 50 a transaction). */
  async function push(args: string[]): Promise<string> {
    const want = await fingerprint(q);
    const loadMin = await loadCount();
    let stop = false;
    const loader = (async () => {
      while (!stop) {
        await q('postgres', `INSERT INTO load SELECT g, repeat('x', 100) FROM generate_series(${loaded + 1}, ${loaded + 50}) g`);
        loaded += 50;
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
    points.push({ name: name!, want, loadMin, loadMax: await loadCount() });
    return name!;
  }

  /** A point in time after the newest backup: one committed row, its time, then everything as it is. */
  async function markLater(tag: string): Promise<void> {
    await q('postgres', `INSERT INTO upd VALUES (-${points.length}, '${tag}')`);
    const time = (await q('postgres', 'SELECT now()::text AS t'))[0]!['t'] as string;
    points.at(-1)!.later = { time, want: await fingerprint(q), load: await loadCount() };
    await new Promise((r) => setTimeout(r, 1100));
  }

  async function archived(): Promise<void> {
    await c.switchWal();
    await waitForArchiveDone(c, 120_000);
  }

  beforeAll(async () => {
    const s = await storage.setup(root);
    a = s.a;
    stopStorage = s.stop;
    c = pool.track(await archivingCluster(17, a));
    ctx = await openArchiveCtx(a);
    await c.query('ALTER SYSTEM SET summarize_wal = on');
    await c.query('SELECT pg_reload_conf()');
    q = (db, sql) => clientQuery(c.connectionInfo.port, db, sql);
    await c.query('CREATE TABLE upd (id int PRIMARY KEY, v text)');
    await c.query("INSERT INTO upd SELECT g, repeat('u', 200) FROM generate_series(1, 40000) g");
    await c.query("CREATE TABLE trunc AS SELECT g AS id, repeat('t', 200) AS v FROM generate_series(1, 5000) g");
    await c.query('CREATE TABLE gone AS SELECT g AS id FROM generate_series(1, 3000) g');
    await c.query("CREATE TABLE grow AS SELECT g AS id, repeat('g', 50) AS v FROM generate_series(1, 100) g");
    await c.query('CREATE TABLE load (x int, pad text)');
    // Never changed: the increments hold none of its blocks, every restore reads them from the full.
    await c.query('CREATE TABLE still AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 60000) g');
    stillPath = (await q('postgres', "SELECT pg_relation_filepath('still') AS p"))[0]!['p'] as string;
    await archived();

    await push([]);
    await markLater('after the full backup');
    // Between the full backup and the first increment.
    await c.query("UPDATE upd SET v = repeat('U', 200) WHERE id % 97 = 0");
    await c.query('DROP TABLE gone');
    await c.query('TRUNCATE trunc');
    await c.query("INSERT INTO trunc SELECT g, 'again' FROM generate_series(1, 10) g");
    await c.query('CREATE DATABASE newdb');
    await q('newdb', 'CREATE TABLE fresh AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g');
    await c.query("INSERT INTO grow SELECT g, repeat('G', 50) FROM generate_series(101, 60000) g");
    await archived();
    await push(['--incremental']);
    await markLater('after the first increment');

    // Between the increments.
    await c.query("UPDATE upd SET v = 'second' WHERE id % 31 = 0");
    await q('newdb', "INSERT INTO fresh SELECT g, 'more' FROM generate_series(2001, 4000) g");
    await c.query("INSERT INTO grow SELECT g, repeat('H', 50) FROM generate_series(60001, 90000) g");
    await c.query('TRUNCATE trunc');
    await archived();
    await push(['--incremental']);
    await markLater('after the second increment');
    // WAL past the last point, so every target is reachable.
    await q('postgres', "INSERT INTO upd VALUES (-100, 'after the chain')");
    await archived();
  }, 900_000);

  afterAll(async () => {
    for (const dir of restored) await stopRestored(c, dir).catch(() => undefined);
    await ctx?.storage.close();
    await pool.destroyAll();
    await stopStorage();
    rmSync(root, { recursive: true, force: true });
  });

  /** Restores `name`, starts it and returns its fingerprint and its `load` rows (checked to be 1..N exactly). */
  async function restoreAndRead(name: string, args: string[]): Promise<{ got: Fingerprint; load: number }> {
    const dir = pgOwnedDir(join(root, `r-${name}-${restored.length}`));
    const res = await runCli('walvault', ['restore', '--pgdata', dir, '--backup', name, ...args], { env: env(), timeoutMs: 240_000 });
    expect(res.code, res.stderr).toBe(0);
    restored.push(dir);
    const server = await startRestored(c, dir, root, { timeoutMs: 180_000 });
    try {
      const rq: Query = (db, sql) => clientQuery(server.port, db, sql);
      const got = await fingerprint(rq);
      const [l] = await rq(
        'postgres',
        'SELECT count(*)::text AS n, coalesce(max(x), 0)::text AS m, count(DISTINCT x)::text AS d FROM load',
      );
      const load = Number(l!['n']);
      // The loader committed rows 1..N in order: a restore holds a prefix of them, each once.
      expect([Number(l!['m']), Number(l!['d'])]).toEqual([load, load]);
      const [mine] = await rq('postgres', tableSum('load'));
      const [primary] = await q('postgres', tableSum('load', `WHERE x <= ${load}`));
      expect(mine).toEqual(primary);
      return { got, load };
    } finally {
      await stopRestored(c, dir);
    }
  }

  it('the chain is full -> increment -> increment, and backup-list and backup-verify see it', async () => {
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
    it(`restores backup ${i} of the chain to 'immediate' and to a later time with exactly the rows and checksums of then`, async () => {
      const p = points[i]!;
      const now = await restoreAndRead(p.name, ['--target', 'immediate']);
      expect(now.got).toEqual(p.want);
      // The load ran during the backup: what committed before it started is there, nothing after it ended.
      expect(now.load).toBeGreaterThanOrEqual(p.loadMin);
      expect(now.load).toBeLessThanOrEqual(p.loadMax);
      const later = await restoreAndRead(p.name, ['--target-time', p.later!.time]);
      expect(later).toEqual({ got: p.later!.want, load: p.later!.load });
    }, 600_000);
  }

  /** Every kind of object each backup of the chain stores, by key. */
  async function objectsToDamage(): Promise<Array<{ backup: string; key: string; what: string }>> {
    const out: Array<{ backup: string; key: string; what: string }> = [];
    for (const p of points.slice(0, 3)) {
      const { record, catalog } = await readBackup(ctx, p.name);
      // The pack holding the second 1 MiB chunk of a large file of its own: in the full backup the
      // table no increment changes (so the newest backup's restore reads it), else the largest.
      const own = catalog.entries.filter((e) => e.type === 'file' && e.chunks && e.extents.some((x) => x[3] === undefined));
      const large = own.find((e) => e.path === stillPath) ?? own.sort((x, y) => y.size - x.size)[0];
      expect(large, `a file with chunks stored in ${p.name}`).toBeDefined();
      let at = 0;
      const second = large!.extents.find((x) => (at += x[2]) > 1 << 20 && x[3] === undefined) ?? large!.extents[0]!;
      expect(record.manifest, `${p.name} has a backup_manifest`).not.toBeNull();
      out.push(
        { backup: p.name, key: recordKey(p.name), what: 'backup.json' },
        { backup: p.name, key: catalogKey(p.name), what: 'catalog' },
        { backup: p.name, key: record.manifest!.key, what: 'backup_manifest' },
        { backup: p.name, key: packKey(p.name, second[0]), what: `pack with a chunk of ${large!.path}` },
        { backup: p.name, key: packKey(p.name, record.packs), what: 'last pack' },
      );
    }
    return out;
  }

  it('a flipped byte in any object of any backup of the chain fails restore and backup-verify with exit 128 naming it', async () => {
    const newest = points[2]!.name;
    const targets = await objectsToDamage();
    const failures: string[] = [];
    for (const [n, t] of targets.entries()) {
      const original = await ctx.storage.getBuffer(t.key);
      const bad = Buffer.from(original);
      bad[Math.floor(bad.length / 2)]! ^= 0x01;
      await ctx.storage.put(t.key, bad);
      try {
        const dir = pgOwnedDir(join(root, `r-damaged-${n}`));
        const res = await runCli('walvault', ['restore', '--pgdata', dir, '--backup', newest, '--target', 'immediate'], {
          env: env(),
          timeoutMs: 240_000,
        });
        const verify = await runCli('walvault', ['backup-verify', newest], { env: env(), timeoutMs: 240_000 });
        const started = (await tryStart(c, dir, root)).code === 0;
        const seen = {
          restore: res.code,
          restoreNames: res.stderr.includes(t.key),
          started,
          verify: verify.code,
          verifyNames: (verify.stdout + verify.stderr).includes(t.key),
        };
        const want = { restore: 128, restoreNames: true, started: false, verify: 128, verifyNames: true };
        if (JSON.stringify(seen) !== JSON.stringify(want)) {
          failures.push(
            `${t.what} of ${t.backup} (${t.key}): ${JSON.stringify(seen)}\n  restore: ${res.stderr.trim()}\n  verify: ${verify.stdout.trim()} ${verify.stderr.trim()}`,
          );
        }
      } finally {
        await ctx.storage.put(t.key, original);
      }
    }
    expect(failures).toEqual([]);
    const verify = await runCli('walvault', ['backup-verify', newest], { env: env(), timeoutMs: 240_000 });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  }, 1_800_000);

  it('expire --retain-full 1 over two chains deletes the old chain children first and keeps the new one restorable', async () => {
    const f2 = await push([]);
    await c.query("UPDATE upd SET v = 'third' WHERE id % 13 = 0");
    await archived();
    const i3 = await push(['--incremental']);
    await archived();
    const res = await runCli('walvault', ['expire', '--retain-full', '1', '--json'], { env: env(), timeoutMs: 240_000 });
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { keep: Array<{ name: string }>; outcome: { backupsDeleted: string[] } };
    expect(out.keep.map((k) => k.name)).toEqual([f2, i3]);
    expect(out.outcome.backupsDeleted).toEqual([points[2]!.name, points[1]!.name, points[0]!.name]);
    for (const name of [f2, i3]) {
      const p = points.find((x) => x.name === name)!;
      const now = await restoreAndRead(name, ['--target', 'immediate']);
      expect(now.got).toEqual(p.want);
      expect(now.load).toBeGreaterThanOrEqual(p.loadMin);
      expect(now.load).toBeLessThanOrEqual(p.loadMax);
    }
  }, 900_000);
}
