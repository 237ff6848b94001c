// Scenario 6: a full base backup of a pgbench database (scale BENCH_BACKUP_SCALE, 150 = ~2.3 GB)
// on its own PostgreSQL 15, archiving into both tools (archive_command = wal-push && pgbackrest
// archive-push), by three tools in turn:
//   - walvault backup-push (BASE_BACKUP over the replication protocol) into a posix archive,
//     zstd:3, 2 parallel uploads;
//   - pgbackrest backup --type=full (reads the data directory itself), zst level 3, process-max 2;
//   - pg_basebackup -Ft --compress=client-zstd:3 -X none (the PostgreSQL baseline).
// Each tool starts with a fast checkpoint and ends when its WAL is archived. Then each backup is
// restored into an empty directory (the file copy only; no server start): `walvault restore
// --target immediate` (restore-parallel 2) against `pgbackrest restore --type=immediate`
// (process-max 2). Measured with GNU time
// around the command: wall seconds, CPU seconds (user + system, the tool's own processes; the
// walsender's work is the server's and the same for walvault and pg_basebackup), peak RSS of the
// largest process, and MB/s of the database size.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
  // GNU time writes one line; an earlier "Command exited" line appears only on failure.
  const [wall, user, sys, maxKb] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
  B.log(`  ${label}: ${wall.toFixed(1)} s, ${(user + sys).toFixed(1)} CPU s, peak RSS ${((maxKb * 1024) / MiB).toFixed(0)} MiB`);
  return { wallS: wall, cpuS: user + sys, peakRss: maxKb * 1024, stdout: r.stdout };
}

export async function benchBackup(B, PgCluster, { scale }) {
  const archiveDir = B.dir('bk-archive');
  const confDir = B.dir('bk-conf');
  const pgbrDir = B.dir('bk-pgbr');
  const wvConf = B.walvaultConfig(confDir, {
    archive: `file://${archiveDir}`,
    compression: 'zstd:3',
    'backup-upload-parallel': 2,
    'backup-checkpoint': 'fast',
    'log-level': 'warn',
  });
  const cluster = await PgCluster.create({
    major: 15,
    baseDir: B.dir('bk-cluster'),
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
      extra: { 'process-max': 2, 'archive-timeout': 120 },
    });
    const walPush = `WALVAULT_NODE=${process.execPath} WALVAULT_CONFIG=${wvConf} WALVAULT_STATE_DIR=${B.dir('bk-state')} ${B.bin('wal-push')} %p`;
    await cluster.query(`ALTER SYSTEM SET archive_command = '${walPush} && ${pushCommand(pgbrConf, '%p')}'`);
    await cluster.query('SELECT pg_reload_conf()');
    await sh(`pgbackrest --config=${pgbrConf} --stanza=${STANZA} stanza-create`, { cwd: '/', ids: B.ids });

    const t0 = performance.now();
    await runClient(cluster, 'pgbench', ['-i', '-q', '-s', String(scale)]);
    await cluster.query('CHECKPOINT');
    const dbBytes = Number((await cluster.query('SELECT sum(pg_database_size(oid))::text AS b FROM pg_database'))[0].b);
    B.log(`  pgbench -i -s ${scale}: ${(dbBytes / GiB).toFixed(2)} GiB of databases in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    B.note(`pgbench scale ${scale}, ${(dbBytes / GiB).toFixed(2)} GiB of databases`);

    const conninfo = `host=127.0.0.1 port=${cluster.port} user=postgres dbname=postgres`;
    const ours = await timed(B, 'walvault backup-push', `${B.bin('walvault')} backup-push --config ${wvConf} --pg-conninfo '${conninfo}'`);
    const summary = /^backup \S+ complete: .*$/m.exec(ours.stdout)?.[0];
    if (!summary) throw new Error(`backup-push printed no summary: ${ours.stdout}`);
    B.note(summary);
    const pgbr = await timed(B, 'pgbackrest backup', `pgbackrest --config=${pgbrConf} --stanza=${STANZA} --type=full backup`);
    const pgbbDir = join(B.dir('bk-pgbasebackup'), 'out');
    const pgbb = await timed(
      B,
      'pg_basebackup',
      `${join(cluster.binaries.binDir, 'pg_basebackup')} -h 127.0.0.1 -p ${cluster.port} -U postgres -D ${pgbbDir} -Ft -X none --checkpoint=fast --compress=client-zstd:3`,
    );

    const backupName = /^backup (\S+) complete/.exec(summary)?.[1];
    const oursRestore = await timed(
      B,
      'walvault restore',
      `${B.bin('walvault')} restore --config ${wvConf} --restore-parallel 2 --pgdata ${B.dir('rs-walvault')} --backup ${backupName} --target immediate`,
    );
    const pgbrRestore = await timed(
      B,
      'pgbackrest restore',
      `pgbackrest --config=${pgbrConf} --stanza=${STANZA} --pg1-path=${B.dir('rs-pgbackrest')} --process-max=2 --type=immediate restore`,
    );

    const stored = {
      walvault: treeBytes(join(archiveDir, 'backups')).bytes,
      pgbackrest: treeBytes(join(pgbrDir, 'repo', 'backup')).bytes,
      pg_basebackup: treeBytes(pgbbDir).bytes,
    };
    const rate = (m) => dbBytes / 1e6 / m.wallS;
    const cpuPerGb = (m) => m.cpuS / (dbBytes / 1e9);
    for (const [peer, theirs] of [
      ['pgBackRest', pgbr],
      ['pg_basebackup', pgbb],
    ]) {
      const labels = { oursLabel: 'walvault backup-push', theirsLabel: peer };
      B.row(`vs ${peer}: wall time`, { ours: ours.wallS, theirs: theirs.wallS, unit: 's', better: 'lower', ...labels });
      B.row(`vs ${peer}: throughput`, { ours: rate(ours), theirs: rate(theirs), unit: 'MB/s', better: 'higher', ...labels });
      B.row(`vs ${peer}: CPU per GB`, { ours: cpuPerGb(ours), theirs: cpuPerGb(theirs), unit: 'CPU s/GB', better: 'lower', ...labels });
      B.row(`vs ${peer}: peak RSS`, { ours: ours.peakRss / MiB, theirs: theirs.peakRss / MiB, unit: 'MiB', better: 'lower', ...labels });
    }
    const restoreLabels = { oursLabel: 'walvault restore', theirsLabel: 'pgbackrest restore' };
    B.row('restore vs pgBackRest: wall time', {
      ours: oursRestore.wallS,
      theirs: pgbrRestore.wallS,
      unit: 's',
      better: 'lower',
      ...restoreLabels,
    });
    B.row('restore vs pgBackRest: throughput', {
      ours: rate(oursRestore),
      theirs: rate(pgbrRestore),
      unit: 'MB/s',
      better: 'higher',
      ...restoreLabels,
    });
    B.row('restore vs pgBackRest: CPU per GB', {
      ours: cpuPerGb(oursRestore),
      theirs: cpuPerGb(pgbrRestore),
      unit: 'CPU s/GB',
      better: 'lower',
      ...restoreLabels,
    });
    B.row('restore vs pgBackRest: peak RSS', {
      ours: oursRestore.peakRss / MiB,
      theirs: pgbrRestore.peakRss / MiB,
      unit: 'MiB',
      better: 'lower',
      ...restoreLabels,
    });
    B.row('vs pgBackRest: stored size', {
      ours: stored.walvault / MiB,
      theirs: stored.pgbackrest / MiB,
      unit: 'MiB',
      better: 'lower',
    });
    execFileSync('sync');
    const plain = (m) => ({ wallS: m.wallS, cpuS: m.cpuS, peakRss: m.peakRss });
    return {
      scale,
      dbBytes,
      walvault: plain(ours),
      pgbackrest: plain(pgbr),
      pgBasebackup: plain(pgbb),
      restore: { walvault: plain(oursRestore), pgbackrest: plain(pgbrRestore) },
      stored,
      summary,
    };
  } finally {
    await cluster.destroy();
  }
}
