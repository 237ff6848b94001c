#!/usr/bin/env node
// walvault against the tools DBAs use: pgBackRest (archive-push / archive-get) and pg_receivewal,
// on the same machine, in the same run, on the same real WAL. See bench/README.md.
//
//   npm run bench                      # all scenarios (builds first)
//   node bench/run.mjs --quick         # small sizes, a smoke test of the harness (~3 min)
//   node bench/run.mjs --scenarios push,codecs
//
// Prints a table and writes bench/results/latest.json plus a timestamped copy. Must run as root
// (PostgreSQL and both tools run as the `postgres` OS user, as on a database host) or as the
// PostgreSQL OS user itself. Installs pgbackrest with apt-get if it is missing.
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BenchContext } from './support/context.mjs';
import { chownToPg, makeCorpus, runClient } from './support/corpus.mjs';
import { ensurePgbackrest, STANZA } from './support/pgbackrest.mjs';
import { killTracked, pidsWithArg, sh } from './support/proc.mjs';
import { startS3rver } from './support/s3rver.mjs';
import { fmt } from './support/stats.mjs';
import { benchPush } from './scenarios/push.mjs';
import { benchBacklog } from './scenarios/backlog.mjs';
import { benchRestore } from './scenarios/restore.mjs';
import { benchStream } from './scenarios/stream.mjs';
import { benchCodecs } from './scenarios/codecs.mjs';
import { profilePush, profileStream } from './scenarios/profile.mjs';
import { benchScale } from './scenarios/scale.mjs';
import { benchBackup } from './scenarios/backup.mjs';
import { benchIncremental } from './scenarios/incremental.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ALL = ['push', 'backlog', 'restore', 'stream', 'codecs', 'profile', 'scale', 'backup', 'incremental'];

const USAGE = `usage: node bench/run.mjs [--quick] [--keep] [--scenarios=a,b,...]
  --quick          small sizes: a few-minute smoke test of the harness
  --keep           keep the run directory (corpus, repositories, logs)
  --scenarios=...  a subset of: ${ALL.join(', ')} (or BENCH_SCENARIOS)
Sizes and knobs are environment variables (BENCH_*), listed in bench/README.md.`;

function usageError(message) {
  process.stderr.write(`bench: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const known = (a) => a === '--quick' || a === '--keep' || a.startsWith('--scenarios=');
  const unknown = argv.find((a) => !known(a));
  if (unknown !== undefined) usageError(`unknown argument '${unknown}'`);
  const quick = argv.includes('--quick');
  const keep = argv.includes('--keep');
  const sel = argv.find((a) => a.startsWith('--scenarios='))?.slice('--scenarios='.length) ?? process.env.BENCH_SCENARIOS;
  const num = (env, full, small) => Number(process.env[env] ?? (quick ? small : full));
  const scenarios = sel ? sel.split(',').map((s) => s.trim()) : ALL;
  for (const s of scenarios) if (!ALL.includes(s)) usageError(`unknown scenario '${s}' (have ${ALL.join(', ')})`);
  return {
    quick,
    keep,
    scenarios,
    segments: num('BENCH_SEGMENTS', 200, 24),
    pushSegments: num('BENCH_PUSH_SEGMENTS', 40, 8),
    backlogRuns: num('BENCH_BACKLOG_RUNS', 2, 1),
    restoreRuns: num('BENCH_RESTORE_RUNS', 2, 1),
    restoreFloor: (process.env.BENCH_RESTORE_FLOOR ?? '1') !== '0',
    streamMb: num('BENCH_STREAM_MB', 384, 96),
    streamCompressions: (process.env.BENCH_STREAM_COMPRESSIONS ?? 'zstd:1,none').split(','),
    streamReps: num('BENCH_STREAM_REPS', 3, 1),
    streamAb: process.env.BENCH_STREAM_AB,
    codecReps: num('BENCH_CODEC_REPS', 5, 2),
    profileStreamMb: num('BENCH_PROFILE_STREAM_MB', 128, 64),
    profileStreamCompression: process.env.BENCH_PROFILE_STREAM_COMPRESSION ?? 'zstd',
    settleMs: num('BENCH_SETTLE_MS', 3000, 500),
    backlogCompression: process.env.BENCH_BACKLOG_COMPRESSION ?? 'zstd:3',
    scaleObjects: num('BENCH_SCALE_OBJECTS', 200_000, 5_000),
    scaleS3Objects: num('BENCH_SCALE_S3_OBJECTS', 20_000, 2_000),
    backupScale: num('BENCH_BACKUP_SCALE', 150, 10),
    incrScale: num('BENCH_INCR_SCALE', 150, 10),
  };
}

function machine(pgVersion, pgbrVersion) {
  const osRelease = existsSync('/etc/os-release')
    ? /^PRETTY_NAME="?([^"\n]*)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1]
    : undefined;
  return {
    os: osRelease,
    kernel: release(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    postgres: pgVersion,
    pgbackrest: pgbrVersion,
  };
}

const ratioText = (r) => {
  if (r.ours === undefined || r.theirs === undefined || !r.theirs) return '-';
  return `${fmt(r.ours / r.theirs)}x`;
};

function winner(r) {
  if (r.ours === undefined || r.theirs === undefined) return '';
  if (r.ours === r.theirs) return 'tie';
  const oursBetter = r.better === 'lower' ? r.ours < r.theirs : r.ours > r.theirs;
  return oursBetter ? 'walvault' : 'peer';
}

export function renderTable(rows) {
  const lines = ['| scenario | metric | walvault | peer | walvault/peer | better |', '|---|---|---:|---:|---:|---|'];
  for (const r of rows) {
    const v = (x) => (x === undefined ? '-' : `${fmt(x)} ${r.unit}`);
    lines.push(`| ${r.scenario} | ${r.metric} | ${v(r.ours)} | ${v(r.theirs)} | ${ratioText(r)} | ${winner(r)} |`);
  }
  return lines.join('\n');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const log = (m) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`);
  if (!existsSync(join(root, 'dist', 'cli', 'walvault.js'))) {
    console.error('dist/ is missing: run `npm run bench` (it builds first) or `npm run build`');
    process.exit(2);
  }
  const { PgCluster, pgUser, cleanupAllSync } = await import(pathToFileURL(join(root, 'build', 'tools', 'pgcluster', 'index.js')).href);
  const started = new Date();
  const loadBefore = loadavg();
  const pgbrVersion = ensurePgbackrest(log);
  const user = pgUser(log);
  const runDir = mkdtempSync(join(process.env.BENCH_TMP ?? tmpdir(), 'walvault-bench-'));
  chownToPg(runDir, user);

  let cluster;
  let s3;
  const cleanup = () => {
    killTracked();
    // Helpers our commands started (detached uploaders, prefetchers, pgBackRest async workers):
    // every one of them has a path under the run directory in its arguments.
    for (const pid of pidsWithArg(runDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    cleanupAllSync();
    if (!opts.keep) rmSync(runDir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      log(`${sig}: cleaning up`);
      cleanup();
      process.exit(130);
    });
  }

  const B = new BenchContext({ root, runDir, user, settleMs: opts.settleMs, log });
  const results = { started: started.toISOString(), options: opts, loadavgBefore: loadBefore };
  try {
    log(`run directory ${runDir}; ${pgbrVersion}; scenarios ${opts.scenarios.join(', ')}`);
    // The scale and incremental scenarios build their own clusters and archives; they need no corpus.
    if (opts.scenarios.some((name) => name !== 'scale' && name !== 'incremental')) {
      B.begin('corpus', { segments: opts.segments });
      const corpusDir = B.dir('corpus');
      const corpus = await makeCorpus(PgCluster, {
        baseDir: B.dir('primary'),
        outDir: corpusDir,
        count: opts.segments,
        log: (m) => log(`  ${m}`),
      });
      cluster = corpus.cluster;
      B.corpus = { dir: corpusDir, names: corpus.names, labels: corpus.labels, backup: corpus.backup };
      B.streamLoad = corpus.load;
      B.end({
        first: corpus.names[0],
        last: corpus.names.at(-1),
        rounds: corpus.rounds,
        generationSeconds: corpus.seconds,
        labels: corpus.labels,
      });
      log(`corpus: ${corpus.names.length} segments ${corpus.names[0]}..${corpus.names.at(-1)} in ${corpus.seconds.toFixed(1)} s`);

      // One stanza-create against the running cluster; every repository is a copy of this one.
      const tdir = B.dir('pgbr-template');
      const template = join(tdir, 'repo');
      const tconf = B.pgbrConfig(tdir, { repo: template, pgPath: cluster.dataDir, pgPort: cluster.port, pgSocket: cluster.socketDir });
      await sh(`pgbackrest --config=${tconf} --stanza=${STANZA} stanza-create`, { cwd: '/', ids: B.ids });
      B.pgbr = { template, version: pgbrVersion };

      results.machine = machine(cluster.version, pgbrVersion);
      const pgVersionText = (await runClient(cluster, 'pg_receivewal', ['--version'])).trim();
      results.machine.pgReceivewal = pgVersionText;

      let backlog;
      if (opts.scenarios.includes('push')) {
        s3 = await startS3rver(root, join(runDir, 's3rver'), 'walvault-bench');
        B.begin('1 push', { segments: opts.pushSegments, s3: s3.endpoint });
        results.push = await benchPush(B, { count: opts.pushSegments, s3 });
        B.end();
        await s3.stop();
        s3 = undefined;
      }
      if (opts.scenarios.includes('backlog') || opts.scenarios.includes('restore')) {
        B.begin('2 backlog', { segments: opts.segments, runs: opts.backlogRuns, compression: opts.backlogCompression });
        backlog = await benchBacklog(B, {
          runs: opts.scenarios.includes('backlog') ? opts.backlogRuns : 1,
          compression: opts.backlogCompression,
        });
        results.backlog = backlog;
        B.end();
      }
      if (opts.scenarios.includes('restore')) {
        B.begin('3 restore', { segments: opts.segments, runs: opts.restoreRuns, floor: opts.restoreFloor });
        results.restore = await benchRestore(B, PgCluster, { runs: opts.restoreRuns, repos: backlog.repos, floor: opts.restoreFloor });
        B.end();
      }
      if (opts.scenarios.includes('stream')) {
        B.begin('4 stream', { mb: opts.streamMb, compressions: opts.streamCompressions });
        results.stream = await benchStream(B, cluster, {
          mb: opts.streamMb,
          compressions: opts.streamCompressions,
          reps: opts.streamReps,
          abRoot: opts.streamAb,
        });
        B.end();
      }
      if (opts.scenarios.includes('profile')) {
        // Profiles of the two places where walvault is furthest behind its peers (see README).
        B.begin('profile', { push: 'zstd:3', stream: { mb: opts.profileStreamMb, compression: opts.profileStreamCompression } });
        const segs = Object.entries(B.corpus.labels)
          .filter(([label]) => label !== 'bulk')
          .map(([label, path]) => [label, path.slice(-24)]);
        results.profile = await profilePush(B, { segments: segs, compression: 'zstd:3' });
        results.profile.push(await profileStream(B, cluster, { mb: opts.profileStreamMb, compression: opts.profileStreamCompression }));
        B.end();
      }
      await cluster.destroy();
      cluster = undefined;
      if (opts.scenarios.includes('codecs')) {
        B.begin('5 codecs', { reps: opts.codecReps });
        results.codecs = await benchCodecs(B, { reps: opts.codecReps });
        B.end();
      }
    }
    if (opts.scenarios.includes('scale')) {
      B.begin('6 scale', { objects: opts.scaleObjects, s3Objects: opts.scaleS3Objects });
      results.scale = await benchScale(B, PgCluster, { objects: opts.scaleObjects, s3Objects: opts.scaleS3Objects });
      B.end();
    }
    if (opts.scenarios.includes('backup')) {
      B.begin('7 backup', { scale: opts.backupScale });
      results.backup = await benchBackup(B, PgCluster, { scale: opts.backupScale });
      B.end();
    }
    if (opts.scenarios.includes('incremental')) {
      B.begin('8 incremental', { scale: opts.incrScale });
      results.incremental = await benchIncremental(B, PgCluster, { scale: opts.incrScale });
      B.end();
    }
  } catch (err) {
    log(`FAILED: ${err?.stack ?? err}`);
    process.exitCode = 1;
  } finally {
    if (s3) await s3.stop();
    if (cluster) await cluster.destroy().catch(() => undefined);
  }

  results.finished = new Date().toISOString();
  results.totalSeconds = (Date.now() - started.getTime()) / 1000;
  results.loadavgAfter = loadavg();
  results.scenarios = B.scenarios;
  results.rows = B.rows;
  const table = renderTable(B.rows);
  const outDir = process.env.BENCH_RESULTS_DIR ?? join(root, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  if (results.profile) {
    for (const p of results.profile) {
      const name = `profile-${p.what.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`;
      copyFileSync(p.profile, join(outDir, name));
      chmodSync(join(outDir, name), 0o644);
      p.profile = join(outDir, name);
    }
  }
  cleanup();

  const m = results.machine ?? {};
  const header = [
    `walvault bench ${results.started} (${results.totalSeconds.toFixed(0)} s${opts.quick ? ', --quick' : ''})`,
    `machine: ${m.os ?? '?'}, kernel ${m.kernel ?? release()}, ${m.cpus ?? cpus().length} x ${m.cpuModel ?? '?'}, ${m.memGiB ?? '?'} GiB; node ${process.version}; ` +
      `${m.postgres ? `PostgreSQL ${m.postgres}` : ''}; ${m.pgbackrest ?? ''}`,
    `load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${results.loadavgAfter.map((x) => x.toFixed(2)).join(' ')} (other people's jobs share this machine)`,
  ];
  const perScenario = Object.entries(B.scenarios).map(
    ([name, s]) =>
      `- ${name}: ${s.seconds?.toFixed(0) ?? '?'} s, load average ${s.loadavgStart.map((x) => x.toFixed(2)).join(' ')} -> ${s.loadavgEnd?.map((x) => x.toFixed(2)).join(' ') ?? '?'}` +
      (s.notes.length ? `; ${s.notes.join('; ')}` : ''),
  );
  const text = [...header, '', table, '', ...perScenario];
  if (results.codecs) text.push('', 'Codecs (scenario 5):', results.codecs.table);
  if (results.profile) {
    for (const p of results.profile) {
      if (p.label === 'stream') {
        const r = p.round;
        text.push(
          '',
          `Profile: walvault stream --compression ${p.compression} over ${(r.walBytes / 2 ** 20).toFixed(0)} MiB of WAL ` +
            `(beside pg_receivewal): ${r.walvault.cpu.toFixed(2)} CPU s (${r.walvault.user.toFixed(2)} user, ${r.walvault.system.toFixed(2)} system) ` +
            `vs pg_receivewal ${r.pg_receivewal.cpu.toFixed(2)}; V8 profile ${p.totalMs.toFixed(0)} ms wall, (idle) included`,
        );
      } else {
        const ph = p.phases;
        const inc = Object.entries(p.inclusive.functions)
          .map(([k, v]) => `${k} ${v.toFixed(0)}`)
          .join(', ');
        text.push(
          '',
          `Profile: one cold wal-push (${p.compression}, posix) of the ${p.label} segment ${p.segment}: ` +
            `wall ${p.plainMs.map((x) => x.toFixed(0)).join('/')} ms, profiled ${p.profiledMs.toFixed(0)} ms, V8 profile ${p.totalMs.toFixed(0)} ms. ` +
            `Until pushFile starts (modules, CLI, config, archive): ${ph.before.ms.toFixed(0)} ms (idle ${ph.before.idleMs.toFixed(0)}); ` +
            `from pushFile on: ${ph.after.ms.toFixed(0)} ms (idle ${ph.after.idleMs.toFixed(0)}, GC ${ph.after.gcMs.toFixed(0)}). ` +
            `Inclusive ms: ${inc}.`,
        );
      }
      text.push('| self ms | % | frame |', '|---:|---:|---|');
      for (const f of p.topFrames) text.push(`| ${f.ms.toFixed(1)} | ${f.pct.toFixed(1)} | \`${f.frame}\` |`);
      text.push('', '| self ms | % | file |', '|---:|---:|---|');
      for (const f of p.topFiles.slice(0, 10)) text.push(`| ${f.ms.toFixed(1)} | ${f.pct.toFixed(1)} | \`${f.frame}\` |`);
    }
  }
  const report = text.join('\n');
  console.log(report);
  const stamp = results.started.replace(/[:.]/g, '-');
  const json = `${JSON.stringify(results, null, 2)}\n`;
  writeFileSync(join(outDir, 'latest.json'), json);
  writeFileSync(join(outDir, `${stamp}.json`), json);
  writeFileSync(join(outDir, 'latest.md'), `${report}\n`);
  log(`wrote ${join(outDir, 'latest.json')}, ${stamp}.json and latest.md there`);
}

await main();
// Nothing of ours is left running; exit now rather than wait for idle sockets or timers.
process.exit(process.exitCode ?? 0);
