/**
 * vitest conveniences over tools/pgcluster: a cluster per describe block, and the list of majors a
 * run covers. A missing PostgreSQL fails the run; nothing here skips.
 */
import { afterAll, beforeAll } from 'vitest';
import { availableMajors, PgCluster, type ClusterOptions } from '../../tools/pgcluster/index.js';

export { PgCluster } from '../../tools/pgcluster/index.js';
export type { BaseBackup, ClusterOptions, FromBackupOptions, RecoveryOptions } from '../../tools/pgcluster/index.js';

/**
 * Majors to test: WALVAULT_TEST_MAJORS (comma list, e.g. `15,17`) or every installed one. Listing
 * a major that is not installed makes the cluster creation fail, on purpose.
 */
export function supportedMajors(): number[] {
  const env = process.env['WALVAULT_TEST_MAJORS']?.trim();
  if (env) {
    const majors = env.split(',').map((s) => Number(s.trim()));
    const bad = majors.filter((m) => !Number.isInteger(m) || m < 13);
    if (bad.length > 0) throw new Error(`WALVAULT_TEST_MAJORS has invalid entries: '${env}'`);
    return majors;
  }
  const installed = availableMajors();
  if (installed.length === 0) throw new Error('no PostgreSQL installed: set PG_BIN or install PostgreSQL (see README)');
  return installed;
}

/** The major for tests that need just one server: 15 when listed (full client tools), else the first. */
export function defaultMajor(): number {
  const majors = supportedMajors();
  return majors.includes(15) ? 15 : (majors[0] as number);
}

export interface ClusterHandle {
  /** The started cluster; throws if read before beforeAll ran or after creation failed. */
  readonly cluster: PgCluster;
}

/**
 * Creates and starts a cluster in beforeAll and destroys it in afterAll (also when creation or a
 * test failed). Read `handle.cluster` inside tests and hooks, not at collection time.
 */
export function useCluster(opts: ClusterOptions & { start?: boolean } = {}): ClusterHandle {
  let current: PgCluster | undefined;
  beforeAll(async () => {
    const { start = true, ...rest } = opts;
    current = await PgCluster.create(rest);
    if (start) await current.start();
  });
  afterAll(async () => {
    await current?.destroy();
  });
  return {
    get cluster(): PgCluster {
      if (!current) throw new Error('useCluster: cluster not created (beforeAll not run yet, or creation failed)');
      return current;
    },
  };
}

/**
 * Tracks clusters a test creates by itself (restores, standbys) and destroys them all in
 * afterAll, so no test has to remember its own cleanup.
 */
export function useClusterPool(): { track(c: PgCluster): PgCluster; destroyAll(): Promise<void> } {
  const clusters: PgCluster[] = [];
  const destroyAll = async (): Promise<void> => {
    const all = clusters.splice(0);
    await Promise.all(all.map((c) => c.destroy()));
  };
  afterAll(destroyAll);
  return {
    track(c: PgCluster): PgCluster {
      clusters.push(c);
      return c;
    },
    destroyAll,
  };
}
