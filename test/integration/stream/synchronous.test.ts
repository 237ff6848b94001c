/**
 * `walvault stream --synchronous` named in synchronous_standby_names: commits wait for the agent's
 * fsync (without it, a commit with synchronous_commit = on does not return), and after kill -9 of
 * the primary every commit that returned is in the agent's spool/archive. Proved by replaying a
 * base backup from the archive plus the `.partial` the agent archives at SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster, supportedMajors, useClusterPool } from '../../support/cluster.js';
import type { BaseBackup } from '../../../tools/pgcluster/index.js';
import {
  gaps,
  lsnBytes,
  openArchiveReader,
  replayArchive,
  replicationRows,
  startAgent,
  streamMajors,
  sleep,
  useWorkDir,
  waitFor,
  Agent,
  type ArchiveReader,
} from './agent.js';

const SEG = 1024 * 1024;

/** The newest committed id; ids 1 and 2 are single rows, every later commit adds id and -id. */
async function maxId(c: PgCluster): Promise<number> {
  const rows = await c.query<{ m: number | null; n: string }>('SELECT max(id) AS m, count(*)::text AS n FROM t');
  const m = rows[0]!.m ?? 0;
  expect(Number(rows[0]!.n), 'every commit whole, none missing').toBe(m <= 2 ? m : 2 + 2 * (m - 2));
  return m;
}

describe.each(streamMajors(supportedMajors()))('PostgreSQL %i: walvault stream as a synchronous standby', (major) => {
  const pool = useClusterPool();
  const w = useWorkDir('walvault-stream-sync-');
  let primary: PgCluster;
  let agent: Agent | undefined;
  let reader: ArchiveReader;

  const start = (): Agent =>
    startAgent({
      cluster: primary,
      archive: w.archiveUrl,
      spoolDir: w.spoolDir,
      slot: 'walvault',
      createSlot: true,
      synchronous: true,
      conninfoExtra: 'application_name=walvault',
    });

  beforeAll(async () => {
    primary = pool.track(
      await PgCluster.create({
        major,
        walSegSizeMb: 1,
        config: { synchronous_standby_names: 'walvault', synchronous_commit: 'on' },
      }),
    );
    await primary.start();
    reader = await openArchiveReader(w.archiveUrl, SEG);
  });

  afterAll(async () => {
    await agent?.kill9();
    await reader?.close();
    await pool.destroyAll();
  });

  /**
   * One INSERT in its own session. If it has not returned after `waitMs`, records what the backend
   * waits for and cancels the wait (statement_timeout cannot: PostgreSQL disables it before the
   * commit, so a commit waiting for its synchronous standby ignores it).
   */
  async function commitOne(id: number, waitMs: number): Promise<{ returned: boolean; waitEvent: string | null; warnings: string[] }> {
    const client = await primary.connect();
    const warnings: string[] = [];
    client.on('notice', (n) => warnings.push(n.message ?? ''));
    try {
      const pid = (await client.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
      let settled = false;
      const insert = client.query('INSERT INTO t VALUES ($1)', [id]).finally(() => (settled = true));
      const deadline = Date.now() + waitMs;
      while (!settled && Date.now() < deadline) await sleep(20);
      if (settled) {
        await insert;
        return { returned: true, waitEvent: null, warnings };
      }
      const [act] = await primary.query<{ w: string | null }>('SELECT wait_event AS w FROM pg_stat_activity WHERE pid = $1', [pid]);
      await primary.query('SELECT pg_cancel_backend($1)', [pid]);
      await insert;
      return { returned: false, waitEvent: act?.w ?? null, warnings };
    } finally {
      await client.end();
    }
  }

  it('makes commits wait for the agent, and loses no committed row when the primary dies', async () => {
    // Created before any synchronous standby exists (it would wait otherwise).
    await primary.query("SET synchronous_commit = 'local'");
    await primary.query('CREATE TABLE t (id int PRIMARY KEY)');
    await primary.query('RESET synchronous_commit');

    // Without the agent, a commit does not come back: it waits for the synchronous standby until
    // cancelled (then the row is committed locally and PostgreSQL warns it may not be replicated).
    const blocked = await commitOne(1, 1000);
    expect(blocked.returned).toBe(false);
    expect(blocked.waitEvent).toBe('SyncRep');
    expect(blocked.warnings.join('\n')).toMatch(/canceling wait for synchronous replication/);

    agent = start();
    await agent.waitForLog((l) => l.msg === 'streaming', 20_000, "'streaming'");
    await waitFor(
      async () => (await replicationRows(primary)).find((r) => r.application_name === 'walvault' && r.sync_state === 'sync'),
      20_000,
      'the agent to be the synchronous standby',
    );
    const quick = await commitOne(2, 10_000);
    expect(quick.returned).toBe(true);
    expect(quick.warnings).toEqual([]);

    // The backup's WAL is all after the agent's start point.
    const backup: BaseBackup = await primary.baseBackup({ waitForArchive: false });

    // Full segments first, then single-row commits, each acknowledged only after the agent's fsync;
    // then the primary dies at once.
    await primary.generateWal({ bytes: 1.5 * SEG });
    let committed = 2;
    const client = await primary.connect();
    try {
      const t0 = Date.now();
      for (let id = 3; Date.now() - t0 < 2_500; id++) {
        await client.query('INSERT INTO t SELECT $1::int UNION ALL SELECT -$1::int', [id]);
        committed = id;
      }
    } finally {
      await client.end().catch(() => undefined);
    }
    const endLsn = await primary.currentLsn();
    await primary.kill9();

    // The agent keeps retrying the dead server; SIGTERM archives what it holds as .partial.
    await agent.waitForLog(Agent.lostServer, 20_000, 'the lost connection');
    expect(await agent.stop()).toBe(0);
    expect(agent.errors()).toEqual([]);

    const entries = await reader.catalog();
    expect(gaps(entries)).toEqual([]);
    const partials = entries.filter((e) => e.kind === 'partial');
    expect(partials.length).toBeGreaterThanOrEqual(1);
    const newest = partials.reduce((a, b) => (b.segno! > a.segno! ? b : a));
    const tailSegment = newest.fileName.slice(0, 24);
    expect(newest.segno, 'the newest WAL is in the .partial').toBe(lsnBytes(endLsn) / BigInt(SEG));

    const { fromArchive, withPartial } = await replayArchive({
      backup,
      restoreCommand: w.restoreCommand,
      configFile: w.configFile,
      workDir: w.root,
      tailSegment,
      count: maxId,
      expectAll: committed,
      track: (c) => pool.track(c),
    });
    console.log(
      `[stream sync PG${major}] committed ${committed} synchronous transactions; the archive alone recovers up to id ${fromArchive}, ` +
        `with the .partial ${withPartial}`,
    );
    expect(withPartial).toBe(committed);
  });
});
