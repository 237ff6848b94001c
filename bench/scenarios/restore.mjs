// Scenario 3: a real recovery. The base backup taken just before the corpus (low-level API) is
// copied into a fresh data directory with recovery.signal, and PostgreSQL 15 replays every corpus
// segment through restore_command until the archive runs out, then promotes. Both tools get the
// same backup and the same WAL (each from the repository scenario 2 filled). Wall time = server
// start to end of recovery; runs alternate. A `cp` restore_command from a plain directory of the
// uncompressed segments gives the floor: the replay itself, with no tool in the way.
//
// Every restore_command goes through the same tiny timing wrapper (two `date` calls around the
// command), for the per-call latencies; it costs both tools and the floor the same few ms a call.
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getCommand } from '../support/pgbackrest.mjs';
import { waitHelpersGone } from '../support/proc.mjs';
import { median, percentile } from '../support/stats.mjs';

const TIMECALL = `#!/bin/sh
# timecall LOG NAME command...: runs the command, appends "NAME start_ns end_ns exit" to LOG.
log=$1; name=$2; shift 2
s=$(date +%s%N)
"$@"
rc=$?
echo "$name $s $(date +%s%N) $rc" >> "$log"
exit $rc
`;

function callStats(logPath) {
  if (!existsSync(logPath)) return undefined;
  const calls = readFileSync(logPath, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .map(([name, s, e, rc]) => ({ name, ms: Number(BigInt(e) - BigInt(s)) / 1e6, rc: Number(rc) }));
  const served = calls.filter((c) => c.rc === 0 && /^[0-9A-F]{24}$/.test(c.name)).map((c) => c.ms);
  return {
    calls: calls.length,
    segmentsServed: served.length,
    firstMs: served[0],
    medianMs: median(served),
    p95Ms: percentile(served, 95),
    maxMs: Math.max(...served),
    over100ms: served.filter((ms) => ms > 100).length,
    totalInCommandS: calls.reduce((a, c) => a + c.ms, 0) / 1000,
    // Every call in order (segments, history files, the final "not found"), for the record.
    callsMs: calls.map((c) => [c.name, Math.round(c.ms * 10) / 10, c.rc]),
  };
}

async function recover(B, PgCluster, commandFor, { tag }) {
  const tc = B.file(join(B.dir('timecall'), 'timecall'), TIMECALL);
  chmodSync(tc, 0o755);
  const callLog = join(B.dir(`calls-${tag}`), 'calls.log');
  const cluster = await PgCluster.fromBackup(B.corpus.backup.dir, {
    baseDir: B.dir(`restore-${tag}`),
    startTimeoutMs: 900_000,
    config: { hot_standby: true, log_min_messages: 'info' },
  });
  try {
    const restoreCommand = `${tc} ${callLog} %f ${commandFor(cluster.dataDir)}`;
    await cluster.writeRecoverySetup({ recovery: { restoreCommand, targetAction: 'promote' } });
    await B.settle();
    const t0 = performance.now();
    await cluster.start();
    await cluster.waitForRecoveryEnd({ timeoutMs: 900_000 });
    const seconds = (performance.now() - t0) / 1000;
    const log = readFileSync(cluster.logFile, 'utf8');
    const restored = new Set([...log.matchAll(/restored log file "([0-9A-F]{24})" from archive/g)].map((m) => m[1]));
    const redoDone = /redo done at ([0-9A-F]+\/[0-9A-F]+)/.exec(log)?.[1];
    // The backup's pg_wal is empty: every corpus segment must have come through restore_command.
    const missing = B.corpus.names.filter((n) => !restored.has(n));
    if (missing.length > 0) {
      throw new Error(
        `${tag}: recovery did not restore every corpus segment (missing ${missing.slice(0, 5).join(', ')}...); log:\n${await cluster.logTail(20)}`,
      );
    }
    return { seconds, restored: restored.size, redoDone, calls: callStats(callLog) };
  } finally {
    await cluster.destroy();
    // Prefetchers and async workers of this run (their arguments name its data directory or config).
    await waitHelpersGone(cluster.baseDir, { graceMs: 0 });
  }
}

export async function benchRestore(B, PgCluster, { runs, repos, floor }) {
  const n = B.corpus.names.length;
  const results = { walvault: [], pgbackrest: [], floor: [] };

  const ours = async () => {
    const dir = B.dir('walvault-restore');
    const state = B.dir('state-restore');
    const conf = B.walvaultConfig(dir, { archive: `file://${repos.walvault.archive}` });
    return recover(B, PgCluster, () => `env WALVAULT_CONFIG=${conf} WALVAULT_STATE_DIR=${state} ${B.bin('wal-fetch')} %f %p`, {
      tag: 'walvault',
    });
  };
  const theirs = async () => {
    const dir = B.dir('pgbr-restore');
    const conf = B.pgbrConfig(dir, {
      repo: join(repos.pgbackrest.dir, 'repo'),
      pgPath: '/nonexistent',
      async: true,
      spool: join(dir, 'spool'),
    });
    try {
      return await recover(B, PgCluster, (dataDir) => getCommand(conf, dataDir), { tag: 'pgbackrest' });
    } finally {
      await waitHelpersGone(conf, { graceMs: 0 });
    }
  };

  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? ['walvault', 'pgbackrest'] : ['pgbackrest', 'walvault'];
    for (const tool of order) {
      const r = tool === 'walvault' ? await ours() : await theirs();
      results[tool].push(r);
      const c = r.calls;
      B.log(
        `  run ${i + 1} ${tool}: recovery ${r.seconds.toFixed(2)} s (${r.restored} restored, redo done at ${r.redoDone}); ` +
          `calls: first ${c.firstMs.toFixed(0)} ms, median ${c.medianMs.toFixed(1)} ms, p95 ${c.p95Ms.toFixed(0)} ms, ${c.over100ms} over 100 ms, ` +
          `${c.totalInCommandS.toFixed(1)} s inside restore_command`,
      );
    }
  }
  if (floor) {
    const r = await recover(B, PgCluster, () => `cp ${B.corpus.dir}/%f %p`, { tag: 'floor' });
    results.floor.push(r);
    B.log(`  floor (cp from uncompressed segments): recovery ${r.seconds.toFixed(2)} s`);
  }

  const sum = (list) => {
    const s = median(list.map((r) => r.seconds));
    return { seconds: s, runs: list.map((r) => r.seconds), segPerS: n / s, calls: list.map((r) => r.calls) };
  };
  const o = sum(results.walvault);
  const t = sum(results.pgbackrest);
  const f = results.floor.length ? sum(results.floor) : undefined;
  const labels = {
    oursLabel: 'walvault wal-fetch, prefetch 8 (default)',
    theirsLabel: 'pgbackrest archive-get, archive-async, process-max 2',
  };
  B.row(`recovery of ${n} segments: wall time`, { ours: o.seconds, theirs: t.seconds, unit: 's', better: 'lower', ...labels });
  B.row(`recovery of ${n} segments: segments per second`, {
    ours: o.segPerS,
    theirs: t.segPerS,
    unit: 'seg/s',
    better: 'higher',
    ...labels,
  });
  const callMedian = (x, k) => median(x.calls.map((c) => c[k]));
  B.row('recovery: median restore_command call', {
    ours: callMedian(o, 'medianMs'),
    theirs: callMedian(t, 'medianMs'),
    unit: 'ms',
    better: 'lower',
    ...labels,
  });
  B.row('recovery: p95 restore_command call', {
    ours: callMedian(o, 'p95Ms'),
    theirs: callMedian(t, 'p95Ms'),
    unit: 'ms',
    better: 'lower',
    ...labels,
  });
  B.row('recovery: time inside restore_command', {
    ours: callMedian(o, 'totalInCommandS'),
    theirs: callMedian(t, 'totalInCommandS'),
    unit: 's',
    better: 'lower',
    ...labels,
  });
  if (f) {
    B.row('recovery: time above the cp floor', {
      ours: o.seconds - f.seconds,
      theirs: t.seconds - f.seconds,
      unit: 's',
      better: 'lower',
      ...labels,
    });
    B.note(`cp floor (replay with restore_command = cp of uncompressed segments): ${f.seconds.toFixed(2)} s`);
  }
  return { segments: n, walvault: o, pgbackrest: t, floor: f };
}
