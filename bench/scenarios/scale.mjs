// Scenario 6: scale. How the listing-based operations grow with the archive. A PostgreSQL 15
// cluster whose WAL position was moved past 200k segments (pg_resetwal -l) archives one real
// segment; 200k cheap objects with consistent headers fill the segments before it (see
// scale-archive.mjs). Measured on posix: the streaming agent's start (until pg_stat_replication
// says `streaming`), wal-list, wal-list --json, wal-show, wal-verify (headers) twice (the second run
// shows what a verified-objects record saves): wall, CPU, peak RSS. On s3rver (a smaller copy, see
// BENCH_SCALE_S3_OBJECTS) the same operations with their storage requests counted by a proxy.
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandEnv, procCpu, procPeakRss, sh, sleep, stopChild, timedSh, track } from '../support/proc.mjs';
import { startS3rver } from '../support/s3rver.mjs';
import { fakeObjects, realObject, segmentName, writePosixFakes, writeS3rverObject } from './scale-archive.mjs';
import { startCountingProxy } from './scale-proxy.mjs';

const OPS = [
  { id: 'wal-list', args: ['wal-list'] },
  { id: 'wal-list --json', args: ['wal-list', '--json'] },
  { id: 'wal-show', args: ['wal-show', '--width', '100'] },
  { id: 'wal-verify', args: ['wal-verify'] },
  { id: 'wal-verify (again)', args: ['wal-verify'] },
];

/** One CLI run under /usr/bin/time: wall s, CPU s, max RSS MiB, exit code. */
async function timedOp(B, conf, args, extraEnv = '') {
  const timeFile = join(B.runDir, `time-${++B.counter}.txt`);
  const cmd = `${extraEnv}WALVAULT_CONFIG=${conf} /usr/bin/time -o ${timeFile} -f '%e %U %S %M' ${B.bin('walvault')} ${args.join(' ')} >/dev/null 2>>${join(B.runDir, 'scale-ops.log')}`;
  const r = await timedSh(cmd, { cwd: '/', ids: B.ids, timeoutMs: 1_800_000 });
  const [wall, user, sys, kb] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
  return { wall, cpu: user + sys, rssMiB: kb / 1024, code: r.code };
}

/** Spawns `walvault stream`, returns seconds until the server reports it streaming, its CPU and RSS then. */
async function streamStart(B, cluster, conf, extraEnv = {}) {
  const spool = B.dir('scale-spool');
  const sampler = await cluster.connect();
  const t0 = performance.now();
  const child = spawn(
    B.bin('walvault'),
    ['stream', '--pg-conninfo', `host=127.0.0.1 port=${cluster.port} user=postgres application_name=scale`, '--spool-dir', spool],
    { cwd: '/', env: commandEnv({ WALVAULT_CONFIG: conf, ...extraEnv }), stdio: ['ignore', 'ignore', 'pipe'], ...B.ids },
  );
  track(child);
  child.stderr.pipe(createWriteStream(join(spool, '..', `scale-stream-${B.counter}.log`)));
  try {
    for (;;) {
      const r = await sampler.query("SELECT 1 FROM pg_stat_replication WHERE application_name = 'scale' AND state = 'streaming'");
      if (r.rowCount > 0) break;
      if (child.exitCode !== null) throw new Error(`walvault stream exited (${child.exitCode}) before streaming`);
      if (performance.now() - t0 > 900_000) throw new Error('walvault stream did not start streaming within 15 min');
      await sleep(20);
    }
    const seconds = (performance.now() - t0) / 1000;
    const c = procCpu(child.pid);
    return { wall: seconds, cpu: c.user + c.system, rssMiB: (procPeakRss(child.pid) ?? 0) / 2 ** 20 };
  } finally {
    await stopChild(child, 'SIGTERM', 30_000);
    await sampler.end();
  }
}

export async function benchScale(B, PgCluster, { objects, s3Objects }) {
  const first = 16; // fakes: segments first .. first+objects-1; the real one right after
  const real = first + objects;
  const realName = segmentName(1, real);
  const cluster = await PgCluster.create({ major: 15, baseDir: B.dir('scale-pg'), config: { fsync: false, max_wal_senders: 4 } });
  let s3;
  let proxy;
  try {
    await sh(`${join(cluster.binaries.binDir, 'pg_resetwal')} -l ${realName} -D ${cluster.dataDir}`, { cwd: '/', ids: B.ids });
    await cluster.start();
    const admin = await cluster.connect();
    await admin.query('CREATE TABLE t AS SELECT 1 AS x');
    await admin.end();
    const switched = await cluster.switchWal();
    B.log(`  scale: server WAL moved to ${realName} (switch returned ${switched})`);
    const archive = B.dir('scale-archive');
    const conf = B.walvaultConfig(B.dir('scale-conf'), { archive: `file://${archive}`, 'log-level': 'warn' });
    await sh(`WALVAULT_CONFIG=${conf} ${B.bin('walvault')} wal-push pg_wal/${realName}`, { cwd: cluster.dataDir, ids: B.ids });
    const { meta, key: realKey } = await realObject(B.root, archive, realName);
    // fakeObjects replaces name, checksum, start LSN and payload size; the rest is the real header's.
    const template = meta;
    const g0 = performance.now();
    const n = await writePosixFakes(B.root, archive, template, first, objects, B.ids);
    const genSeconds = (performance.now() - g0) / 1000;
    B.log(`  scale: ${n} objects written in ${genSeconds.toFixed(0)} s`);
    B.note(`${n + 1} objects (posix), generated in ${genSeconds.toFixed(0)} s`);
    await B.settle();

    const results = { objects: n + 1, generationSeconds: genSeconds, posix: {}, s3: {} };
    const row = (where, id, m) => {
      B.log(
        `  scale ${where} ${id}: ${m.wall.toFixed(2)} s wall, ${m.cpu.toFixed(2)} s CPU, ${m.rssMiB.toFixed(0)} MiB${m.requests ? `, ${JSON.stringify(m.requests)}` : ''}`,
      );
      B.row(`${where} ${id} wall`, { ours: m.wall, unit: 's', better: 'lower' });
      B.row(`${where} ${id} CPU`, { ours: m.cpu, unit: 's', better: 'lower' });
      B.row(`${where} ${id} peak RSS`, { ours: m.rssMiB, unit: 'MiB', better: 'lower' });
      if (m.requests)
        for (const [k, v] of Object.entries(m.requests)) B.row(`${where} ${id} ${k} requests`, { ours: v, unit: '', better: 'lower' });
    };
    for (const [i, label] of ['stream start', 'stream start (again)'].entries()) {
      const m = await streamStart(B, cluster, conf);
      results.posix[label] = m;
      row('posix', label, m);
      if (i === 0) await B.settle();
    }
    for (const op of OPS) {
      const m = await timedOp(B, conf, op.args);
      results.posix[op.id] = m;
      row('posix', op.id, m);
    }

    // S3: the newest s3Objects of the same archive, requests counted per operation.
    const s3Dir = B.dir('scale-s3rver');
    s3 = await startS3rver(B.root, s3Dir, 'walvault-scale');
    proxy = await startCountingProxy(s3.endpoint);
    const prefix = 'scale';
    for (const k of ['archive.info', 'archive.info.copy', realKey]) {
      writeS3rverObject(s3Dir, s3.bucket, `${prefix}/${k}`, readFileSync(join(archive, ...k.split('/'))));
    }
    let m3 = 0;
    for await (const { key, bytes } of fakeObjects(B.root, template, real - s3Objects, s3Objects)) {
      writeS3rverObject(s3Dir, s3.bucket, `${prefix}/${key}`, bytes);
      m3++;
    }
    B.note(`${m3 + 1} objects on s3rver`);
    const s3conf = B.walvaultConfig(B.dir('scale-s3-conf'), {
      archive: `s3://${s3.bucket}/${prefix}`,
      's3-endpoint': proxy.endpoint,
      's3-region': 'us-east-1',
      's3-force-path-style': true,
      's3-checksums': 'when_required',
      'log-level': 'warn',
    });
    const creds = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
    results.s3.objects = m3 + 1;
    proxy.take();
    {
      const m = await streamStart(B, cluster, s3conf, creds);
      // Requests until streaming and during the graceful stop (a .partial upload): both reported.
      m.requests = proxy.take();
      results.s3['stream start'] = m;
      row('s3', 'stream start', m);
    }
    for (const op of OPS.filter((o) => o.id !== 'wal-list --json')) {
      const m = await timedOp(B, s3conf, op.args, 'AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER ');
      m.requests = proxy.take();
      results.s3[op.id] = m;
      row('s3', op.id, m);
    }
    return results;
  } finally {
    if (proxy) await proxy.stop();
    if (s3) await s3.stop();
    await cluster.destroy().catch(() => undefined);
  }
}
