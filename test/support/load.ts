/**
 * A real write load for fault tests: batches of rows committed one after another into
 * `t (id int PRIMARY KEY, payload text)`, ids 1..n without holes, each commit recorded with the
 * insert position right after it, so a test knows which rows a recovery must (and may) bring back.
 */
import { expect } from 'vitest';
import type { PgCluster } from '../../tools/pgcluster/index.js';
import { lsnBytes } from '../integration/stream/agent.js';

export interface Batch {
  lastId: number;
  /** Insert position right after the commit returned: the commit record ends at or before it. */
  lsnAfter: bigint;
}

export interface Load {
  readonly batches: Batch[];
  /** The highest id committed so far (0 before the first batch). */
  committed(): number;
  /** Stops after the batch in flight; a failure of the load surfaces here. */
  stop(): Promise<void>;
}

export async function createLoadTable(c: PgCluster): Promise<void> {
  await c.query('CREATE TABLE t (id int PRIMARY KEY, payload text)');
}

/** Commits `batch` rows (~250 bytes of WAL each) every `pauseMs` until stop(). */
export function startLoad(c: PgCluster, opts: { batch?: number; pauseMs?: number } = {}): Load {
  const size = opts.batch ?? 400;
  const pauseMs = opts.pauseMs ?? 150;
  const batches: Batch[] = [];
  let stopping = false;
  const done = (async () => {
    const client = await c.connect();
    try {
      let next = (batches[batches.length - 1]?.lastId ?? 0) + 1;
      while (!stopping) {
        const r = await client.query<{ n: string }>(
          `WITH ins AS (INSERT INTO t SELECT g, md5(g::text) || md5(random()::text) FROM generate_series($1::int, $2::int) g RETURNING 1)
           SELECT (SELECT count(*) FROM ins)::text AS n`,
          [next, next + size - 1],
        );
        expect(r.rows[0]!.n).toBe(String(size));
        const l = await client.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l');
        batches.push({ lastId: next + size - 1, lsnAfter: lsnBytes(l.rows[0]!.l) });
        next += size;
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    } finally {
      await client.end();
    }
  })();
  // A failure surfaces from stop(); until then it must not count as an unhandled rejection.
  done.catch(() => undefined);
  return {
    batches,
    committed: () => batches[batches.length - 1]?.lastId ?? 0,
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

/** max(id), checking that rows 1..max(id) are all there. */
export async function maxId(c: PgCluster): Promise<number> {
  const rows = await c.query<{ m: number | null; n: string }>('SELECT max(id) AS m, count(*)::text AS n FROM t');
  const m = rows[0]!.m ?? 0;
  expect(Number(rows[0]!.n), 'rows 1..max(id) without holes').toBe(m);
  return m;
}
