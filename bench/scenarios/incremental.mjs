// Scenario 8 (issue 13): incremental base backups. A pgbench database (scale BENCH_INCR_SCALE,
// 150 = ~2.3 GB), full backups, then about 5 % of pgbench_accounts' heap blocks changed (every row
// of every 20th block updated, a spread sample; the new row versions land in new blocks, the
// primary key gets new entries), then incremental backups. Measured with GNU time around each
// command: wall seconds, CPU seconds of the tool's processes, bytes it added to its repository.
//   - PostgreSQL 15, archiving into both tools: walvault backup-push vs --incremental (chunk level:
//     the server sends every file whole, unchanged 1 MiB pieces are stored by reference), against
//     pgbackrest backup --type=full vs --type=incr, zst:3, process-max 2, into two repositories:
//     repo1 file level (the default), repo2 with repo-bundle and repo-block (pgBackRest's block
//     incremental, a beta feature in 2.45 that needs beta=y); pgBackRest 2.45 has no PostgreSQL 17
//     support, so the block-level comparison is walvault on 17 against pgBackRest on 15;
//   - PostgreSQL 17 with summarize_wal = on: walvault backup-push vs --incremental (block level:
//     UPLOAD_MANIFEST + BASE_BACKUP INCREMENTAL), then another 5 % (other blocks) and a second
//     increment; then `walvault restore --target immediate` of the chain of three (full, increment,
//     increment) against a restore of the full backup alone, RESTORE_RUNS times each, alternating.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runClient } from '../support/corpus.mjs';
import { STANZA, pushCommand } from '../support/pgbackrest.mjs';
import { sh, timedSh } from '../support/proc.mjs';
import { GiB, MiB } from '../support/stats.mjs';
import { treeBytes } from '../support/context.mjs';

async function timed(B, label, cmd) {
  const timeFile = join(B.dir(`time-${label.replace(/[^a-z0-9]+/gi, '-')}`), 'time');
  await B.settle();
  const r = await timedSh(`/usr/bin/time -o ${timeFile} -f '%e %U %S %M' ${cmd}`, { cwd: '/', ids: B.ids, timeoutMs: 3_600_000 });
  if (r.code !== 0) throw new Error(`${label} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join('\n')}`);
  const [wall, user, sys, maxKb] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
  B.log(`  ${label}: ${wall.toFixed(1)} s, ${(user + sys).toFixed(1)} CPU s, peak RSS ${((maxKb * 1024) / MiB).toFixed(0)} MiB`);
  return { wallS: wall, cpuS: user + sys, peakRss: maxKb * 1024, stdout: r.stdout };
}

/** Bytes of each backup directory under `dir` (walvault `backups/<name>`, pgBackRest `<label>`; not its backup.history). */
function perBackup(dir) {
  const out = {};
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory() && e.name !== 'backup.history') out[e.name] = treeBytes(join(dir, e.name)).bytes;
  }
  return out;
}

/** The bytes of the one backup directory that appeared since `before`. */
function added(dir, before) {
  const now = perBackup(dir);
  const fresh = Object.keys(now).filter((k) => !(k in before));
  if (fresh.length !== 1) throw new Error(`expected one new backup in ${dir}, found ${fresh.join(', ') || 'none'}`);
  return { name: fresh[0], bytes: now[fresh[0]] };
}

/** Restores of each kind, alternating (BENCH_INCR_RESTORE_RUNS, default 3): the median is reported. */
const RESTORE_RUNS = Math.max(1, Number(process.env['BENCH_INCR_RESTORE_RUNS'] ?? 3));

/** PostgreSQL 15's client tools (the embedded PostgreSQL 17 has no pgbench); they work against 17 too. */
const PG15_BIN = '/usr/lib/postgresql/15/bin';

async function pgbench(B, cluster, scale) {
  const t0 = performance.now();
  const client = { port: cluster.port, osUser: cluster.osUser, binaries: { binDir: PG15_BIN } };
  await runClient(client, 'pgbench', ['-i', '-q', '-s', String(scale)]);
  await cluster.query('CHECKPOINT');
  const dbBytes = Number((await cluster.query('SELECT sum(pg_database_size(oid))::text AS b FROM pg_database'))[0].b);
  B.log(`  pgbench -i -s ${scale}: ${(dbBytes / GiB).toFixed(2)} GiB in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return dbBytes;
}

/**
 * Every row of every 20th heap block of pgbench_accounts (those with block number % 20 = `phase`):
 * 5 % of its blocks, spread over the table.
 */
async function changeFivePercent(B, cluster, phase = 0) {
  const [{ n }] = await cluster.query(
    `WITH u AS (UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE ((ctid::text::point)[0])::bigint % 20 = ${phase} RETURNING 1) SELECT count(*)::text AS n FROM u`,
  );
  await cluster.query('CHECKPOINT');
  B.log(`  changed ${n} rows (every row of every 20th block of pgbench_accounts, phase ${phase})`);
  return Number(n);
}

/** Medians of wall and CPU seconds (and the largest peak RSS) of repeated runs. */
function median(runs) {
  const mid = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  return {
    wallS: mid(runs.map((r) => r.wallS)),
    cpuS: mid(runs.map((r) => r.cpuS)),
    peakRss: Math.max(...runs.map((r) => r.peakRss)),
    runs,
  };
}

function summaryOf(stdout) {
  const s = /^backup \S+ complete: .*$/m.exec(stdout)?.[0];
  if (!s) throw new Error(`backup-push printed no summary: ${stdout}`);
  return s;
}

/** backup-push of `cluster` (`extra` flags), with the bytes its backup added to the archive. */
async function walvaultBackup(B, cluster, wvConf, archiveDir, label, extra = '') {
  const conninfo = `host=127.0.0.1 port=${cluster.port} user=postgres dbname=postgres`;
  const backups = join(archiveDir, 'backups');
  const before = existsSync(backups) ? perBackup(backups) : {};
  const m = await timed(B, label, `${B.bin('walvault')} backup-push --config ${wvConf} --pg-conninfo '${conninfo}' ${extra}`);
  B.note(summaryOf(m.stdout));
  return { ...plain(m), stored: added(backups, before).bytes };
}

async function pgbrBackup(B, pgbrConf, backups, label, type, repo = 1) {
  const before = existsSync(backups) ? perBackup(backups) : {};
  const m = await timed(B, label, `pgbackrest --config=${pgbrConf} --stanza=${STANZA} --repo=${repo} --type=${type} backup`);
  return { ...plain(m), stored: added(backups, before).bytes };
}

const plain = (m) => ({ wallS: m.wallS, cpuS: m.cpuS, peakRss: m.peakRss });

function rows(B, what, ours, theirs, labels) {
  B.row(`${what}: wall time`, { ours: ours.wallS, theirs: theirs.wallS, unit: 's', better: 'lower', ...labels });
  B.row(`${what}: CPU`, { ours: ours.cpuS, theirs: theirs.cpuS, unit: 'CPU s', better: 'lower', ...labels });
  B.row(`${what}: stored`, { ours: ours.stored / MiB, theirs: theirs.stored / MiB, unit: 'MiB', better: 'lower', ...labels });
}

export async function benchIncremental(B, PgCluster, { scale }) {
  const result = { scale };
  // PostgreSQL 15: walvault chunk level against pgBackRest file level.
  {
    const archiveDir = B.dir('inc15-archive');
    const pgbrDir = B.dir('inc15-pgbr');
    const wvConf = B.walvaultConfig(B.dir('inc15-conf'), {
      archive: `file://${archiveDir}`,
      compression: 'zstd:3',
      'backup-upload-parallel': 2,
      'backup-checkpoint': 'fast',
      'log-level': 'warn',
    });
    const cluster = await PgCluster.create({
      major: 15,
      baseDir: B.dir('inc15-cluster'),
      startTimeoutMs: 300_000,
      config: { archive_mode: 'on', archive_command: '/bin/true', max_wal_senders: '10', wal_keep_size: '2GB', max_wal_size: '4GB' },
    });
    try {
      await cluster.start();
      const pgbrConf = B.pgbrConfig(pgbrDir, {
        repo: join(pgbrDir, 'repo'),
        pgPath: cluster.dataDir,
        pgPort: cluster.port,
        pgSocket: cluster.socketDir,
        extra: {
          'process-max': 2,
          'archive-timeout': 120,
          beta: 'y',
          'repo2-path': join(pgbrDir, 'repo-block'),
          'repo2-type': 'posix',
          'repo2-bundle': 'y',
          'repo2-block': 'y',
        },
      });
      const walPush = `WALVAULT_NODE=${process.execPath} WALVAULT_CONFIG=${wvConf} WALVAULT_STATE_DIR=${B.dir('inc15-state')} ${B.bin('wal-push')} %p`;
      await cluster.query(`ALTER SYSTEM SET archive_command = '${walPush} && ${pushCommand(pgbrConf, '%p')}'`);
      await cluster.query('SELECT pg_reload_conf()');
      await sh(`pgbackrest --config=${pgbrConf} --stanza=${STANZA} stanza-create`, { cwd: '/', ids: B.ids });
      result.dbBytes15 = await pgbench(B, cluster, scale);
      B.note(`PostgreSQL 15: pgbench scale ${scale}, ${(result.dbBytes15 / GiB).toFixed(2)} GiB of databases`);
      // Both full backups, one change, both incrementals: each incremental sees the same blocks changed.
      const pgbrBackups = join(pgbrDir, 'repo', 'backup', STANZA);
      const wFull = await walvaultBackup(B, cluster, wvConf, archiveDir, 'PG15 walvault full');
      const blockBackups = join(pgbrDir, 'repo-block', 'backup', STANZA);
      const pFull = await pgbrBackup(B, pgbrConf, pgbrBackups, 'PG15 pgbackrest full', 'full');
      const bFull = await pgbrBackup(B, pgbrConf, blockBackups, 'PG15 pgbackrest full (block, bundle)', 'full', 2);
      result.changedRows15 = await changeFivePercent(B, cluster);
      const wIncr = await walvaultBackup(B, cluster, wvConf, archiveDir, 'PG15 walvault incremental', '--incremental');
      const pIncr = await pgbrBackup(B, pgbrConf, pgbrBackups, 'PG15 pgbackrest incr', 'incr');
      const bIncr = await pgbrBackup(B, pgbrConf, blockBackups, 'PG15 pgbackrest incr (block, bundle)', 'incr', 2);
      result.walvault15 = { full: wFull, incr: wIncr };
      result.pgbackrest15 = { full: pFull, incr: pIncr, blockFull: bFull, blockIncr: bIncr };
      const labels = { oursLabel: 'walvault --incremental (chunk)', theirsLabel: 'pgbackrest --type=incr' };
      rows(B, 'PG15 incremental vs pgBackRest incr', wIncr, pIncr, labels);
      rows(B, 'PG15 incremental vs pgBackRest block incr', wIncr, bIncr, {
        oursLabel: 'walvault --incremental (chunk)',
        theirsLabel: 'pgbackrest --type=incr, repo-block',
      });
      rows(B, 'pgBackRest block incr vs its block full', bIncr, bFull, {
        oursLabel: 'pgbackrest incr (block)',
        theirsLabel: 'pgbackrest full (block)',
      });
      rows(B, 'PG15 full vs pgBackRest full', wFull, pFull, { oursLabel: 'walvault backup-push', theirsLabel: 'pgbackrest --type=full' });
      rows(B, 'PG15 walvault incremental vs its full', wIncr, wFull, {
        oursLabel: 'walvault --incremental',
        theirsLabel: 'walvault full',
      });
    } finally {
      await cluster.destroy();
    }
  }
  // PostgreSQL 17: walvault block level alone.
  {
    const archiveDir = B.dir('inc17-archive');
    const wvConf = B.walvaultConfig(B.dir('inc17-conf'), {
      archive: `file://${archiveDir}`,
      compression: 'zstd:3',
      'backup-upload-parallel': 2,
      'backup-checkpoint': 'fast',
      'log-level': 'warn',
    });
    const cluster = await PgCluster.create({
      major: 17,
      baseDir: B.dir('inc17-cluster'),
      startTimeoutMs: 300_000,
      config: {
        archive_mode: 'on',
        archive_command: '/bin/true',
        max_wal_senders: '10',
        wal_keep_size: '2GB',
        max_wal_size: '4GB',
        summarize_wal: 'on',
      },
    });
    try {
      await cluster.start();
      const walPush = `WALVAULT_NODE=${process.execPath} WALVAULT_CONFIG=${wvConf} WALVAULT_STATE_DIR=${B.dir('inc17-state')} ${B.bin('wal-push')} %p`;
      await cluster.query(`ALTER SYSTEM SET archive_command = '${walPush}'`);
      await cluster.query('SELECT pg_reload_conf()');
      result.dbBytes17 = await pgbench(B, cluster, scale);
      B.note(`PostgreSQL 17: pgbench scale ${scale}, ${(result.dbBytes17 / GiB).toFixed(2)} GiB of databases`);
      const full = await walvaultBackup(B, cluster, wvConf, archiveDir, 'PG17 walvault full');
      result.changedRows17 = await changeFivePercent(B, cluster);
      const incr = await walvaultBackup(B, cluster, wvConf, archiveDir, 'PG17 walvault incremental', '--incremental');
      result.walvault17 = { full, incr };
      rows(B, 'PG17 walvault incremental (block) vs its full', incr, full, {
        oursLabel: 'walvault --incremental (block)',
        theirsLabel: 'walvault full',
      });
      if (result.pgbackrest15) {
        rows(B, 'PG17 walvault incremental (block) vs pgBackRest block incr on PG15', incr, result.pgbackrest15.blockIncr, {
          oursLabel: 'walvault --incremental (block, PG17)',
          theirsLabel: 'pgbackrest --type=incr, repo-block (PG15)',
        });
      }
      // A chain of three: another 5 %, in other blocks, and an increment on the increment.
      result.changedRows17b = await changeFivePercent(B, cluster, 10);
      const incr2 = await walvaultBackup(B, cluster, wvConf, archiveDir, 'PG17 walvault second incremental', '--incremental');
      result.walvault17.incr2 = incr2;
      const names = Object.keys(perBackup(join(archiveDir, 'backups'))).sort();
      const fullName = names.find((n) => n.endsWith('F'));
      const chainName = names.at(-1);
      if (!fullName || !chainName?.endsWith('I') || names.length !== 3) throw new Error(`unexpected PG17 backups: ${names.join(', ')}`);
      const restore = async (label, name, i) => {
        const dir = B.dir(`rs17-${label}-${i}`);
        try {
          return await timed(
            B,
            `PG17 walvault restore ${label} #${i + 1}`,
            `${B.bin('walvault')} restore --config ${wvConf} --restore-parallel 2 --pgdata ${dir} --backup ${name} --target immediate`,
          );
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      };
      const fullRuns = [];
      const chainRuns = [];
      for (let i = 0; i < RESTORE_RUNS; i++) {
        fullRuns.push(plain(await restore('full', fullName, i)));
        chainRuns.push(plain(await restore('chain', chainName, i)));
      }
      result.restore17 = { full: median(fullRuns), chain: median(chainRuns), fullName, chainName };
      const rl = { oursLabel: 'restore of full+incr+incr', theirsLabel: 'restore of the full' };
      const rs = result.restore17;
      B.row('PG17 restore chain of three vs full: wall time', {
        ours: rs.chain.wallS,
        theirs: rs.full.wallS,
        unit: 's',
        better: 'lower',
        ...rl,
      });
      B.row('PG17 restore chain of three vs full: CPU', {
        ours: rs.chain.cpuS,
        theirs: rs.full.cpuS,
        unit: 'CPU s',
        better: 'lower',
        ...rl,
      });
      B.row('PG17 restore chain of three vs full: peak RSS', {
        ours: rs.chain.peakRss / MiB,
        theirs: rs.full.peakRss / MiB,
        unit: 'MiB',
        better: 'lower',
        ...rl,
      });
    } finally {
      await cluster.destroy();
    }
  }
  execFileSync('sync');
  return result;
}
