import { readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClusterError } from '../../../tools/pgcluster/errors.js';
import { findBinaries, liveClusterCount } from '../../../tools/pgcluster/index.js';
import { PgCluster, supportedMajors, useCluster } from '../../support/cluster.js';

/** XLOG_PAGE_MAGIC from each major's src/include/access/xlog_internal.h. */
const PAGE_MAGIC: Record<number, number> = { 13: 0xd106, 14: 0xd10d, 15: 0xd110, 16: 0xd113, 17: 0xd116, 18: 0xd118 };

const majors = supportedMajors();

describe.each(majors)('PostgreSQL %i harness cluster', (major) => {
  const h = useCluster({ major, walSegSizeMb: 1 });

  it('runs the requested major and answers SQL', async () => {
    const c = h.cluster;
    expect(c.major).toBe(major);
    const [row] = await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    expect(Math.floor(Number(row?.v) / 10_000)).toBe(major);
    const [sum] = await c.query<{ s: number }>('SELECT $1::int + $2::int AS s', [40, 2]);
    expect(sum?.s).toBe(42);
    expect(c.connectionInfo).toEqual({ host: '127.0.0.1', port: c.port, user: 'postgres', database: 'postgres' });
    expect(await c.walSegmentSize()).toBe(1024 * 1024);
  });

  it('switchWal leaves a finished segment of the configured size in pg_wal', async () => {
    const c = h.cluster;
    await c.generateWal({ rows: 200 });
    const before = await c.currentLsn();
    const name = await c.switchWal();
    expect(name).toMatch(/^00000001[0-9A-F]{16}$/);
    expect(await c.walFileName(before)).toBe(name);
    const file = path.join(c.walDir(), name);
    expect(statSync(file).size).toBe(1024 * 1024);
    // First page: long header with this major's magic, the cluster's system id and segment size.
    const head = readFileSync(file).subarray(0, 40);
    expect(head.readUInt16LE(0)).toBe(PAGE_MAGIC[major]);
    expect(head.readBigUInt64LE(24).toString()).toBe(await c.systemIdentifier());
    expect(head.readUInt32LE(32)).toBe(1024 * 1024);
    // The next switch must finish a later segment.
    const next = await c.switchWal();
    expect(next > name).toBe(true);
  });

  it('generateWal writes at least the bytes asked for', async () => {
    const r = await h.cluster.generateWal({ bytes: 300_000 });
    expect(r.bytes).toBeGreaterThanOrEqual(300_000);
    expect(r.bytes).toBeLessThan(3_000_000);
  });

  it('opens physical replication sessions', async () => {
    const c = h.cluster;
    const repl = await c.connect({ replication: true });
    try {
      const res = await repl.query('IDENTIFY_SYSTEM');
      expect(String(res.rows[0]?.systemid)).toBe(await c.systemIdentifier());
      expect(Number(res.rows[0]?.timeline)).toBe(1);
    } finally {
      await repl.end();
    }
  });

  it('stops and starts again', async () => {
    const c = h.cluster;
    await c.query('CREATE TABLE kept (v int)');
    await c.query('INSERT INTO kept VALUES (1), (2)');
    await c.stop({ mode: 'fast' });
    expect(c.running).toBe(false);
    await c.start();
    expect((await c.query<{ n: string }>('SELECT count(*)::text AS n FROM kept'))[0]?.n).toBe('2');
  });

  it('recovers committed data after kill -9 of the postmaster', async () => {
    const c = h.cluster;
    await c.query('CREATE TABLE crash (v int)');
    await c.query('INSERT INTO crash SELECT generate_series(1, 1000)');
    const pid = c.pid;
    await c.kill9();
    expect(c.running).toBe(false);
    expect(() => process.kill(pid as number, 0)).toThrow();
    await c.start();
    expect((await c.query<{ n: string }>('SELECT count(*)::text AS n FROM crash'))[0]?.n).toBe('1000');
    expect(await c.logTail(200)).toMatch(/database system was interrupted|not properly shut down/);
  });
});

describe.runIf(majors.includes(15))('PostgreSQL 15 with client tools', () => {
  const h = useCluster({ major: 15 });

  it('reports the same system identifier through SQL and pg_controldata', async () => {
    const fromSql = await h.cluster.systemIdentifier();
    expect(fromSql).toMatch(/^\d{10,20}$/);
    expect(await h.cluster.controlDataSystemId()).toBe(fromSql);
  });

  it('keeps the default 16 MiB segments when not told otherwise', async () => {
    expect(await h.cluster.walSegmentSize()).toBe(16 * 1024 * 1024);
  });
});

describe('harness failure handling', () => {
  const created: PgCluster[] = [];
  afterAll(async () => {
    await Promise.all(created.map((c) => c.destroy()));
  });

  it('fails clearly for a major that is not installed', () => {
    expect(() => findBinaries(12)).toThrow(ClusterError);
    expect(() => findBinaries(12)).toThrow(/not installed/);
  });

  it('includes the server log when start fails', async () => {
    const c = await PgCluster.create({ major: majors[0]!, config: { shared_buffers: 'lots' } });
    created.push(c);
    await expect(c.start()).rejects.toThrow(/server log:[\s\S]*shared_buffers/);
    expect(c.running).toBe(false);
  });

  it('moves to another port when the chosen one is taken', async () => {
    const c = await PgCluster.create({ major: majors[0]! });
    created.push(c);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(c.port, '127.0.0.1', resolve));
    const taken = c.port;
    try {
      await c.start();
      expect(c.port).not.toBe(taken);
      expect((await c.query<{ one: number }>('SELECT 1 AS one'))[0]?.one).toBe(1);
    } finally {
      blocker.close();
    }
  });

  it('destroy is idempotent and unregisters the cluster', async () => {
    const c = await PgCluster.create({ major: majors[0]! });
    const before = liveClusterCount();
    await c.start();
    await c.destroy();
    await c.destroy();
    expect(liveClusterCount()).toBe(before - 1);
    expect(() => statSync(c.baseDir)).toThrow();
    await expect(c.start()).rejects.toThrow(ClusterError);
  });
});
