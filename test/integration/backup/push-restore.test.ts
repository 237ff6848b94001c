/**
 * The whole DBA path through the real commands on PostgreSQL 13, 15 and 17: `walvault backup-push`
 * under a concurrent write load (WAL archived by wal-push), `backup-verify`, then `walvault restore`
 * to an LSN, a restore point and the end of the archived WAL, each started with `pg_ctl start` and
 * checked for exact row counts, with a tablespace outside the data directory. restore.test.ts covers
 * every target kind and failure with backups written independently of backup-push; this one proves
 * that what backup-push stores is what restore needs.
 */
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster, supportedMajors, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, runCli, waitForArchiveDone, walCommands, writeConfig } from '../../support/walvault.js';
import { startRestored, stopRestored } from './restore-support.js';

const MAJORS = supportedMajors().filter((m) => [13, 15, 17].includes(m));

describe.each(MAJORS)('PostgreSQL %i: backup-push, then restore', (major) => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-push-restore-'));
  const tsDir = pgOwnedDir(join(root, 'ts'));
  const configFile = writeConfig(join(root, 'walvault.conf'), {
    archive: `file://${pgOwnedDir(join(root, 'archive'))}`,
    compression: 'zstd',
  });
  const stateDir = pgOwnedDir(join(root, 'state'));
  const { archiveCommand } = walCommands({ configFile, stateDir });
  const env = { WALVAULT_CONFIG: configFile, WALVAULT_STATE_DIR: stateDir };
  const running: string[] = [];
  let primary: PgCluster;
  let tsOid: number;
  let lsnTarget = '';
  let loadRows = 0;

  const batch = (n: number): Promise<unknown> => primary.query('INSERT INTO t SELECT g, $1 FROM generate_series(1, 1000) g', [n]);

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
    await primary.query('INSERT INTO tt SELECT generate_series(1, 700)');
    await primary.query('CREATE TABLE t (id int, batch int)');
    await primary.query('CREATE TABLE load (x int, pad text)');
    await primary.query("INSERT INTO load SELECT g, repeat('y', 500) FROM generate_series(1, 20000) g");

    let stop = false;
    const loader = (async () => {
      while (!stop) {
        await primary.query("INSERT INTO load SELECT g, repeat('x', 100) FROM generate_series(1, 50) g");
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const res = await runCli('walvault', ['backup-push', '--pg-conninfo', primary.conninfo(), '--backup-checkpoint', 'fast'], {
        env,
        timeoutMs: 240_000,
      });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout + res.stderr).toMatch(/backup \d{8}T\d{6}F complete/);
    } finally {
      stop = true;
      await loader;
    }
    loadRows = Number((await primary.query<{ n: string }>('SELECT count(*)::text AS n FROM load'))[0]!.n);
    await batch(1);
    lsnTarget = (await primary.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;
    await primary.generateWal({ bytes: 1024 * 1024 });
    await batch(2);
    await primary.query("SELECT pg_create_restore_point('after_batch_2')");
    await primary.generateWal({ bytes: 1024 * 1024 });
    await batch(3);
    await primary.switchWal();
    await waitForArchiveDone(primary, 180_000);
  }, 400_000);

  afterAll(async () => {
    for (const dir of running) await stopRestored(primary, dir).catch(() => undefined);
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('backup-verify reads the backup back and finds it whole', async () => {
    const res = await runCli('walvault', ['backup-verify', '--all'], { env, timeoutMs: 180_000 });
    expect(res.code, res.stdout + res.stderr).toBe(0);
  }, 200_000);

  it('a flipped byte in its backup_manifest or backup.json fails restore and backup-verify with 128 naming the object', async () => {
    const archiveDir = join(root, 'archive');
    const [name] = readdirSync(join(archiveDir, 'backups'));
    for (const leaf of ['backup_manifest', 'backup.json']) {
      const key = `backups/${name}/${leaf}`;
      const file = join(archiveDir, key);
      const original = readFileSync(file);
      const bad = Buffer.from(original);
      // backup.json is checksummed JSON (any byte); the manifest is a walvault object (a payload byte).
      bad[leaf === 'backup.json' ? bad.length >> 1 : bad.length - 5]! ^= 0x01;
      writeFileSync(file, bad);
      try {
        const dir = pgOwnedDir(join(root, `r-bad-${leaf}`));
        const res = await runCli('walvault', ['restore', '--pgdata', dir, '--backup', name!, '--tablespace-map', `${tsOid}=${dir}-ts`], {
          env,
          timeoutMs: 180_000,
        });
        expect([res.code, res.stderr.includes(`'${key}'`)], res.stderr).toEqual([128, true]);
        expect(readdirSync(dir)).toEqual([]);
        const verify = await runCli('walvault', ['backup-verify', name!], { env, timeoutMs: 180_000 });
        expect([verify.code, verify.stdout.includes(`'${key}'`)], verify.stdout + verify.stderr).toEqual([128, true]);
      } finally {
        writeFileSync(file, original);
      }
    }
  }, 400_000);

  it.each([
    ['an LSN', () => ['--target-lsn', lsnTarget], 1000],
    ['a restore point', () => ['--target-name', 'after_batch_2'], 2000],
    ['the end of the archived WAL', () => [], 3000],
  ] as const)(
    'restores to %s with exact row counts',
    async (label, args, expected) => {
      const dir = pgOwnedDir(join(root, `r-${label.replace(/\W+/g, '-')}`));
      const res = await runCli('walvault', ['restore', '--pgdata', dir, '--tablespace-map', `${tsOid}=${dir}-ts`, ...args()], {
        env,
        timeoutMs: 180_000,
      });
      expect(res.code, res.stderr).toBe(0);
      running.push(dir);
      const server = await startRestored(primary, dir, root);
      const count = async (table: string): Promise<number> =>
        Number((await server.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`))[0]!.n);
      expect(await count('t')).toBe(expected);
      expect(await count('tt')).toBe(700);
      // Every row committed before the first batch (the load ran during the backup) is there.
      expect(await count('load')).toBe(loadRows);
      expect(readlinkSync(join(dir, 'pg_tblspc', String(tsOid)))).toBe(`${dir}-ts`);
      await stopRestored(primary, dir);
    },
    240_000,
  );
});
