// The benchmark corpus: real WAL from a real PostgreSQL 15 under pgbench and md5-text insert load,
// made the way research/peer-baseline.md made it, plus a low-level base backup taken just before
// the corpus starts (so that a real recovery can replay every corpus segment).
//
// Load round (as in the peer baseline): CHECKPOINT (the following writes carry full-page images),
// `pgbench -N -c 4 -t 7000`, then `pgbench -f` inserts of 500 md5-text rows, `-c 2 -t 400`, seed 1.
import { spawn } from 'node:child_process';
import { chownSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { segNo, segmentRange } from './wal-names.mjs';
import { track } from './proc.mjs';

const MD5_SCRIPT = 'INSERT INTO md5t (a, b) SELECT md5(random()::text), md5(random()::text) FROM generate_series(1, 500);\n';

/** Gives a path we created as root to the PostgreSQL OS user (a no-op when we are that user). */
export function chownToPg(path, user) {
  if (!user.isCurrent) chownSync(path, user.uid, user.gid);
}

export function pgIds(user) {
  return user.isCurrent ? {} : { uid: user.uid, gid: user.gid };
}

/** Runs a client binary of the cluster (pgbench, pg_receivewal, ...) as its OS user. */
export function runClient(cluster, bin, args, { capture = true, pgOptions } = {}) {
  return new Promise((resolve, reject) => {
    const env = {
      PATH: '/usr/bin:/bin',
      LC_ALL: 'C',
      PGHOST: '127.0.0.1',
      PGPORT: String(cluster.port),
      PGUSER: 'postgres',
      PGDATABASE: 'postgres',
    };
    if (pgOptions) env.PGOPTIONS = pgOptions;
    const child = spawn(join(cluster.binaries.binDir, bin), args, {
      cwd: '/',
      env,
      stdio: ['ignore', capture ? 'pipe' : 'ignore', 'pipe'],
      ...pgIds(cluster.osUser),
    });
    track(child);
    let out = '';
    let err = '';
    child.stdout?.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${bin} ${args.join(' ')} failed (exit ${code}): ${err.trim().split('\n').slice(-5).join('\n')}`));
    });
  });
}

export async function currentSegment(cluster) {
  const rows = await cluster.query('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f');
  return rows[0].f;
}

/** Prepares the md5 table and the pgbench script (in a directory the server's OS user can read). */
export async function prepareLoad(cluster) {
  await cluster.query('CREATE TABLE IF NOT EXISTS md5t (id bigserial PRIMARY KEY, a text NOT NULL, b text NOT NULL)');
  const dir = cluster.makeDir('bench-load');
  const script = join(dir, 'md5.sql');
  writeFileSync(script, MD5_SCRIPT);
  chownToPg(script, cluster.osUser);
  return { script };
}

/**
 * One load round. `scale` < 1 shrinks the transaction counts (finer steps for the streaming
 * scenario). Returns the first and current segment of each phase, for labelling by content.
 * `pgOptions` goes to the pgbench sessions (PGOPTIONS).
 */
export async function loadRound(cluster, load, { scale = 1, seed = 1, pgOptions } = {}) {
  const phases = {};
  const phase = async (label, args) => {
    const first = await currentSegment(cluster);
    await runClient(cluster, 'pgbench', args, { pgOptions });
    const last = await currentSegment(cluster);
    phases[label] = { first, last };
  };
  await cluster.checkpoint();
  const t1 = Math.max(1, Math.round(7000 * scale));
  const t2 = Math.max(1, Math.round(400 * scale));
  await phase('oltp', ['-n', '-N', '-c', '4', '-j', '2', '-t', String(t1), `--random-seed=${seed}`]);
  await phase('random', ['-n', '-f', load.script, '-c', '2', '-j', '2', '-t', String(t2), `--random-seed=${seed}`]);
  return phases;
}

/** A segment filled entirely by one phase (the middle one), or undefined. */
function pureSegment({ first, last }) {
  const a = segNo(first);
  const b = segNo(last);
  if (b - a < 2n) return undefined;
  const mid = a + (b - a) / 2n;
  return segmentRange(first, Number(mid - a) + 1).at(-1);
}

/**
 * Makes `count` corpus segments in `outDir`, starting with the base backup's first WAL file.
 * The cluster stays running (the caller stops it). Returns names, the backup, content labels.
 */
export async function makeCorpus(PgCluster, { baseDir, outDir, count, log }) {
  const t0 = performance.now();
  const cluster = await PgCluster.create({
    major: 15,
    baseDir,
    config: {
      fsync: false,
      full_page_writes: true,
      shared_buffers: '128MB',
      max_wal_size: '4GB',
      checkpoint_timeout: '1h',
      wal_keep_size: `${(count + 80) * 16}MB`,
      max_connections: 40,
      log_checkpoints: false,
    },
  });
  try {
    await cluster.start();
    const load = await prepareLoad(cluster);
    log(`cluster ${cluster.version} on port ${cluster.port}; pgbench -i -s 10`);
    const bulkFirst = await currentSegment(cluster);
    await runClient(cluster, 'pgbench', ['-i', '-s', '10', '-q']);
    const bulkLast = await currentSegment(cluster);
    mkdirSync(outDir, { recursive: true });
    chownToPg(outDir, cluster.osUser);
    const labels = {};
    const bulk = pureSegment({ first: bulkFirst, last: bulkLast });
    if (bulk) {
      // Before the backup, so outside the corpus: keep a copy for the codec scenario.
      const path = join(outDir, `bulk-${bulk}`);
      copyFileSync(join(cluster.walDir(), bulk), path);
      chownToPg(path, cluster.osUser);
      labels.bulk = path;
    }
    await cluster.checkpoint();
    const backup = await cluster.baseBackup({ label: 'walvault-bench', waitForArchive: false });
    const first = backup.startWalFile;
    const names = segmentRange(first, count);
    const end = segNo(names.at(-1));
    let rounds = 0;
    const allPhases = [];
    while (segNo(await currentSegment(cluster)) <= end) {
      rounds++;
      // Asynchronous commit only saves the corpus sessions' WAL flush waits; the records written
      // are the same. (The streaming scenario's load commits synchronously, as usual.)
      allPhases.push(await loadRound(cluster, load, { seed: rounds, pgOptions: '-c synchronous_commit=off' }));
      log(`load round ${rounds}: at ${await currentSegment(cluster)} (corpus ${first}..${names.at(-1)})`);
    }
    await cluster.switchWal();
    for (const name of names) {
      const path = join(outDir, name);
      copyFileSync(join(cluster.walDir(), name), path);
      chownToPg(path, cluster.osUser);
    }
    // One segment of each content type from a round in the middle of the corpus.
    for (const label of ['oltp', 'random']) {
      const candidates = allPhases.map((p) => pureSegment(p[label])).filter((n) => n && names.includes(n));
      const name = candidates[Math.floor(candidates.length / 2)];
      if (!name) continue;
      const path = join(outDir, `${label}-${name}`);
      copyFileSync(join(outDir, name), path);
      chownToPg(path, cluster.osUser);
      labels[label] = path;
    }
    // The stand-in data directories need this cluster's identity: pg_control and PG_VERSION.
    for (const f of ['global/pg_control', 'PG_VERSION']) {
      const path = join(outDir, f.replace('global/', ''));
      copyFileSync(join(cluster.dataDir, f), path);
      chownToPg(path, cluster.osUser);
    }
    // The corpus is copied out: let the server recycle its pg_wal again.
    await cluster.query("ALTER SYSTEM SET wal_keep_size = '256MB'");
    await cluster.query('SELECT pg_reload_conf()');
    await cluster.checkpoint();
    return { cluster, backup, names, labels, rounds, load, seconds: (performance.now() - t0) / 1000 };
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
}
