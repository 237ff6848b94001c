// Makes real WAL segments with a throwaway PostgreSQL 15 cluster (Debian's binaries), for
// benchmarks. Cleans up after itself on success and failure. Plain JS: bench/ is not compiled.
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PG_BIN = process.env.WALVAULT_PG15_BIN ?? '/usr/lib/postgresql/15/bin';
const SEGMENT = /^[0-9A-F]{24}$/;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** PostgreSQL refuses root: run its binaries as the `postgres` OS user when we are root. */
function runAs() {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

/**
 * Starts a cluster, runs the given workloads, and copies one finished 16 MiB segment per
 * workload into `outDir`. Returns [{ label, path }].
 */
export async function generateWal(outDir, { log = () => {} } = {}) {
  if (!existsSync(join(PG_BIN, 'initdb'))) throw new Error(`PostgreSQL 15 not found in ${PG_BIN}`);
  const ids = runAs();
  const base = mkdtempSync(join(tmpdir(), 'walvault-bench-pg-'));
  const data = join(base, 'data');
  if (ids.uid !== undefined) chownSync(base, ids.uid, ids.gid);
  const env = { ...process.env, LC_ALL: 'C', PGHOST: '127.0.0.1', PGUSER: 'postgres', PGDATABASE: 'postgres' };
  const run = (bin, args, opts = {}) => {
    const r = spawnSync(join(PG_BIN, bin), args, { cwd: base, env, ...ids, encoding: 'utf8', ...opts });
    if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  let started = false;
  const port = await freePort();
  env.PGPORT = String(port);
  const sql = (q) => run('psql', ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-c', q]).trim();
  const finishedSegments = () =>
    readdirSync(join(data, 'pg_wal'))
      .filter((f) => SEGMENT.test(f))
      .sort();
  try {
    log(`initdb in ${data}`);
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-N', '-E', 'UTF8']);
    run('pg_ctl', [
      '-D',
      data,
      '-w',
      '-l',
      join(base, 'server.log'),
      'start',
      '-o',
      `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${base} -c fsync=off ` +
        '-c full_page_writes=on -c max_wal_size=4GB -c checkpoint_timeout=1h -c wal_keep_size=4GB',
    ]);
    started = true;
    mkdirSync(outDir, { recursive: true });
    const out = [];
    const currentSegment = () => sql('select pg_walfile_name(pg_current_wal_lsn())');
    // Runs a workload and keeps the middle one of the segments it filled: the first may hold the
    // tail of the previous workload, the last its end-of-run housekeeping (VACUUM, index builds).
    const capture = (label, workload) => {
      log(label);
      const first = currentSegment();
      workload();
      const last = currentSegment();
      sql('select pg_switch_wal()');
      const filled = finishedSegments().filter((f) => f > first && f < last);
      if (filled.length === 0) throw new Error(`${label} did not fill a whole segment`);
      const name = filled[Math.floor(filled.length / 2)];
      const path = join(outDir, `${label}-${name}`);
      copyFileSync(join(data, 'pg_wal', name), path);
      out.push({ label, path });
      log(`  ${name} (middle of ${filled.length} segments)`);
    };

    capture('bulk', () => run('pgbench', ['-i', '-s', '10', '-q']));
    sql('checkpoint');
    capture('oltp', () => run('pgbench', ['-N', '-c', '4', '-j', '2', '-T', '15', '-n']));
    capture('random', () =>
      sql(
        'create table rnd (id int, a text, b text); ' +
          'insert into rnd select i, md5(random()::text), md5(random()::text) from generate_series(1, 400000) i',
      ),
    );
    return out;
  } finally {
    if (started) spawnSync(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop'], { cwd: base, env, ...ids });
    rmSync(base, { recursive: true, force: true });
  }
}
