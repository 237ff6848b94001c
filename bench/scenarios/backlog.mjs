// Scenario 2: archive throughput under a backlog. All corpus segments are `.ready`; archive_command
// is called for each in order, as PostgreSQL's archiver does, and `.ready` becomes `.done` after
// each success. Total = first call's start to last call's end (every call returned 0, so every
// segment is archived then). walvault runs with its default look-ahead (the first call uploads
// its own segment and starts the detached uploader; later calls hit the sh fast path through the
// markers); pgBackRest runs archive-push with archive-async=y, process-max=2. Runs alternate.
import { join } from 'node:path';
import { freshRepo, pushCommand } from '../support/pgbackrest.mjs';
import { commandEnv, sleep, timedSh, waitHelpersGone } from '../support/proc.mjs';
import { countSegments, treeBytes } from '../support/context.mjs';
import { MiB, median, percentile } from '../support/stats.mjs';

async function drain(B, standin, names, cmdFor) {
  B.markReady(standin, names);
  await B.settle();
  const calls = [];
  let failures = 0;
  const t0 = performance.now();
  for (const seg of names) {
    for (let attempt = 1; ; attempt++) {
      const r = await timedSh(cmdFor(seg), { cwd: standin, env: commandEnv(), ids: B.ids });
      calls.push(r.ms);
      if (r.code === 0) break;
      failures++;
      // PostgreSQL's archiver retries a failed file after a pause; three strikes and it waits longer.
      if (attempt >= 3) throw new Error(`archive_command for ${seg} failed ${attempt} times: ${r.stderr.trim()}`);
      await sleep(1000);
    }
    B.markDone(standin, seg);
  }
  const totalMs = performance.now() - t0;
  return { totalMs, calls, failures };
}

export async function benchBacklog(B, { runs, compression }) {
  const names = B.corpus.names;
  const standin = B.standin('backlog', names);
  // Each tool's default compression as a second pair of variants (walvault zstd:1, pgBackRest's own
  // default); BENCH_BACKLOG_DEFAULTS=0 skips it.
  const withDefaults = (process.env.BENCH_BACKLOG_DEFAULTS ?? '1') !== '0';
  const variants = [
    { key: 'same', ours: compression, theirs: { type: 'zst', level: 3 } },
    ...(withDefaults ? [{ key: 'default', ours: undefined, theirs: null }] : []),
  ];
  const results = Object.fromEntries(variants.map((v) => [v.key, { walvault: [], pgbackrest: [] }]));
  let last = {};

  const runOurs = async (v) => {
    const archive = B.dir('archive-backlog');
    const dir = B.dir('walvault-backlog');
    const conf = B.walvaultConfig(dir, { archive: `file://${archive}`, ...(v.ours ? { compression: v.ours } : {}) });
    const state = B.dir('state-backlog');
    const r = await drain(
      B,
      standin,
      names,
      (seg) => `WALVAULT_CONFIG=${conf} WALVAULT_STATE_DIR=${state} ${B.bin('wal-push')} pg_wal/${seg}`,
    );
    // The detached uploader exits by itself once idle; it is ours, so wait for it (kill if stuck).
    r.leftoverKilled = await waitHelpersGone(standin);
    r.objects = countSegments(archive);
    r.stored = treeBytes(archive).bytes;
    // The restore scenario reads the archive of the matched-compression runs.
    if (v.key === 'same') last.walvault = { archive, conf };
    return r;
  };
  const runTheirs = async (v) => {
    const dir = B.dir('pgbr-backlog');
    const repo = freshRepo(B.pgbr.template, join(dir, 'repo'));
    const conf = B.pgbrConfig(dir, { repo, pgPath: standin, async: true, spool: join(dir, 'spool'), compress: v.theirs });
    const r = await drain(B, standin, names, (seg) => pushCommand(conf, `pg_wal/${seg}`));
    r.leftoverKilled = await waitHelpersGone(conf);
    r.objects = countSegments(repo);
    r.stored = treeBytes(repo).bytes;
    if (v.key === 'same') last.pgbackrest = { repo, dir };
    return r;
  };

  for (let i = 0; i < runs; i++) {
    for (const v of variants) {
      const order = i % 2 === 0 ? ['walvault', 'pgbackrest'] : ['pgbackrest', 'walvault'];
      for (const tool of order) {
        const r = tool === 'walvault' ? await runOurs(v) : await runTheirs(v);
        if (r.objects !== names.length)
          throw new Error(`${tool}: ${r.objects} of ${names.length} segments in the repository after the backlog run`);
        results[v.key][tool].push(r);
        B.log(
          `  run ${i + 1} ${v.key} ${tool}: ${(r.totalMs / 1000).toFixed(2)} s, first call ${r.calls[0].toFixed(0)} ms, ` +
            `median call ${median(r.calls).toFixed(1)} ms, failures ${r.failures}`,
        );
      }
    }
  }

  const summary = (list) => {
    const totals = list.map((r) => r.totalMs / 1000);
    const total = median(totals);
    return {
      totalS: total,
      totals,
      segPerS: names.length / total,
      mibPerS: (names.length * 16) / total,
      firstCallMs: median(list.map((r) => r.calls[0])),
      medianCallMs: median(list.flatMap((r) => r.calls.slice(1))),
      p95CallMs: percentile(
        list.flatMap((r) => r.calls.slice(1)),
        95,
      ),
      failures: list.reduce((a, r) => a + r.failures, 0),
      ratio: (names.length * 16 * MiB) / list.at(-1).stored,
      calls: list.map((r) => r.calls.map((ms) => Math.round(ms * 10) / 10)),
    };
  };
  const ours = summary(results.same.walvault);
  const theirs = summary(results.same.pgbackrest);
  const labels = {
    oursLabel: `walvault look-ahead (${compression}, push-parallel 2)`,
    theirsLabel: 'pgbackrest archive-async, process-max 2 (zst:3)',
  };
  B.row(`backlog of ${names.length}: time until all archived`, {
    ours: ours.totalS,
    theirs: theirs.totalS,
    unit: 's',
    better: 'lower',
    ...labels,
  });
  B.row(`backlog of ${names.length}: segments per second`, {
    ours: ours.segPerS,
    theirs: theirs.segPerS,
    unit: 'seg/s',
    better: 'higher',
    ...labels,
  });
  B.row('backlog: first call', { ours: ours.firstCallMs, theirs: theirs.firstCallMs, unit: 'ms', better: 'lower', ...labels });
  B.row('backlog: median later call', { ours: ours.medianCallMs, theirs: theirs.medianCallMs, unit: 'ms', better: 'lower', ...labels });
  B.row('backlog: p95 later call', { ours: ours.p95CallMs, theirs: theirs.p95CallMs, unit: 'ms', better: 'lower', ...labels });
  const out = { segments: names.length, walvault: ours, pgbackrest: theirs, repos: last };
  if (withDefaults) {
    const od = summary(results.default.walvault);
    const td = summary(results.default.pgbackrest);
    const dl = {
      oursLabel: 'walvault look-ahead, default compression (zstd:1)',
      theirsLabel: 'pgbackrest archive-async, process-max 2, default compression',
    };
    B.row(`backlog of ${names.length}, each tool's default: segments per second`, {
      ours: od.segPerS,
      theirs: td.segPerS,
      unit: 'seg/s',
      better: 'higher',
      ...dl,
    });
    B.row("backlog, each tool's default: stored ratio", { ours: od.ratio, theirs: td.ratio, unit: 'x', better: 'higher', ...dl });
    out.defaults = { walvault: od, pgbackrest: td };
  }
  return out;
}
