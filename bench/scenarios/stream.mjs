// Scenario 4: streaming. `walvault stream` (slot s1, created by itself) and pg_receivewal (slot s2)
// receive the same pgbench + md5 load from the corpus cluster at the same time. Measured per
// receiver: CPU seconds (utime + stime from /proc/<pid>/stat) per GiB received, peak RSS (VmHWM),
// and the largest lag behind the server's flush position, sampled every 100 ms from
// pg_stat_replication (sent, write, flush; walvault also reports its archived position as replay).
// walvault compresses and uploads what it receives into a posix archive; pg_receivewal only writes
// files. Its peer in each round: for `--compression none` plain pg_receivewal, for any compression
// `pg_receivewal --compress=gzip:1` (PostgreSQL 15+; its cheapest compression that, like ours,
// stores less than the WAL), so each round compares like with like.
// Both report status every second (pg_receivewal -s 1, walvault --status-interval 1000): with the
// default 10 s the flush lag would show the reporting interval rather than the receivers.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadRound } from '../support/corpus.mjs';
import { commandEnv, procCpu, procPeakRss, sleep, stopChild, track } from '../support/proc.mjs';
import { treeBytes } from '../support/context.mjs';
import { GiB, MiB, median } from '../support/stats.mjs';

const LAG_SQL = `
SELECT s.slot_name AS slot, r.state,
  pg_wal_lsn_diff(f.lsn, r.sent_lsn)::float8 AS sent,
  pg_wal_lsn_diff(f.lsn, r.write_lsn)::float8 AS write,
  pg_wal_lsn_diff(f.lsn, r.flush_lsn)::float8 AS flush,
  pg_wal_lsn_diff(f.lsn, r.replay_lsn)::float8 AS replay,
  pg_wal_lsn_diff(f.lsn, s.restart_lsn)::float8 AS restart
FROM (SELECT pg_current_wal_flush_lsn() AS lsn) f, pg_replication_slots s
LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
WHERE s.slot_name IN ('s1', 's2')`;

function spawnLogged(file, args, { env, ids, logPath }) {
  const child = spawn(file, args, { cwd: '/', env, stdio: ['ignore', 'ignore', 'pipe'], ...ids });
  track(child);
  child.stderr.pipe(createWriteStream(logPath));
  return child;
}

async function waitFor(what, fn, timeoutMs = 60_000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** True once the archive holds an object for `seg` (see src/archive/keys.ts for the layout). */
function archived(archiveDir, seg) {
  const dir = join(archiveDir, 'wal', seg.slice(0, 8), seg.slice(0, 16));
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some((f) => f.startsWith(`${seg}-`));
}

/** pg_receivewal's counterpart of a walvault compression: none, or gzip at its fastest level. */
export function peerCompression(compression) {
  return compression === 'none' ? undefined : 'gzip:1';
}

export async function streamRound(B, cluster, { mb, compression, node, bin, label = '' }) {
  const tag = `${compression.replace(':', '')}${label}`;
  const peer = peerCompression(compression);
  // pg_receivewal names a compressed segment <name>.gz once it is complete.
  const peerSuffix = peer ? '.gz' : '';
  const spool = B.dir(`stream-spool-${tag}`);
  const archive = B.dir(`stream-archive-${tag}`);
  const recvDir = B.dir(`receivewal-${tag}`);
  const conf = B.walvaultConfig(B.dir(`stream-conf-${tag}`), { 'log-level': 'info' });
  const conninfo = `host=127.0.0.1 port=${cluster.port} user=postgres`;
  const sampler = await cluster.connect();
  let ours;
  let theirs;
  try {
    await cluster.checkpoint();
    ours = spawnLogged(
      bin ?? B.bin('walvault'),
      [
        'stream',
        '--pg-conninfo',
        conninfo,
        '--slot',
        's1',
        '--create-slot',
        '--spool-dir',
        spool,
        '--archive',
        `file://${archive}`,
        '--compression',
        compression,
        '--status-interval',
        '1000',
      ],
      {
        env: commandEnv({ WALVAULT_CONFIG: conf, ...(node ? { WALVAULT_NODE: node } : {}) }),
        ids: B.ids,
        logPath: join(spool, '..', `walvault-stream-${tag}.log`),
      },
    );
    await waitFor(
      'walvault to create slot s1',
      async () => (await sampler.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = 's1'")).rowCount > 0,
    );
    await sampler.query("SELECT pg_create_physical_replication_slot('s2', true)");
    theirs = spawnLogged(
      join(cluster.binaries.binDir, 'pg_receivewal'),
      [
        '-D',
        recvDir,
        '--slot',
        's2',
        '--no-loop',
        '-s',
        '1',
        ...(peer ? [`--compress=${peer}`] : []),
        '-h',
        '127.0.0.1',
        '-p',
        String(cluster.port),
        '-U',
        'postgres',
        '-w',
      ],
      { env: commandEnv(), ids: B.ids, logPath: join(recvDir, '..', `receivewal-${tag}.log`) },
    );
    await waitFor('both receivers to stream', async () => {
      const r = await sampler.query(LAG_SQL);
      return r.rows.length === 2 && r.rows.every((x) => x.state === 'streaming');
    });
    const startLsn = (await sampler.query('SELECT pg_current_wal_flush_lsn()::text AS l')).rows[0].l;
    const slotStart = Object.fromEntries(
      (await sampler.query("SELECT slot_name, restart_lsn::text AS l FROM pg_replication_slots WHERE slot_name IN ('s1','s2')")).rows.map(
        (r) => [r.slot_name, r.l],
      ),
    );

    const max = { s1: { sent: 0, write: 0, flush: 0, replay: 0 }, s2: { sent: 0, write: 0, flush: 0 } };
    let samples = 0;
    let sampling = true;
    const sampleLoop = (async () => {
      while (sampling) {
        const t = performance.now();
        const r = await sampler.query(LAG_SQL);
        for (const row of r.rows) {
          const m = max[row.slot];
          for (const k of Object.keys(m)) if (row[k] !== null && row[k] > m[k]) m[k] = row[k];
        }
        samples++;
        await sleep(Math.max(0, 100 - (performance.now() - t)));
      }
    })();

    const t0 = performance.now();
    let rounds = 0;
    let written = 0;
    while (written < mb * MiB) {
      rounds++;
      await loadRound(cluster, B.streamLoad, { scale: 0.5, seed: 100 + rounds });
      written = Number(
        (await sampler.query('SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), $1::pg_lsn)::float8 AS n', [startLsn])).rows[0].n,
      );
    }
    const loadSeconds = (performance.now() - t0) / 1000;
    const lastSeg = await cluster.switchWal();
    const tEnd = performance.now();
    const endLsn = (await sampler.query('SELECT pg_current_wal_flush_lsn()::text AS l')).rows[0].l;
    let oursDone;
    let oursArchived;
    let theirsDone;
    await waitFor(
      'both receivers to finish the last segment',
      () => {
        if (theirsDone === undefined && existsSync(join(recvDir, lastSeg + peerSuffix))) theirsDone = performance.now() - tEnd;
        if (oursDone === undefined && existsSync(join(spool, lastSeg))) oursDone = performance.now() - tEnd;
        if (oursArchived === undefined && archived(archive, lastSeg)) oursArchived = performance.now() - tEnd;
        return theirsDone !== undefined && oursArchived !== undefined;
      },
      300_000,
      20,
    );
    // A segment leaves the spool once archived, so "in the spool" may never be seen: then it was
    // complete no later than archived.
    oursDone ??= oursArchived;
    sampling = false;
    await sampleLoop;

    const measure = (child) => {
      const cpu = procCpu(child.pid);
      return { cpu: cpu.user + cpu.system, user: cpu.user, system: cpu.system, peakRss: procPeakRss(child.pid) };
    };
    const o = measure(ours);
    const t = measure(theirs);
    const bytesFrom = async (slot) =>
      Number((await sampler.query('SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::float8 AS n', [endLsn, slotStart[slot]])).rows[0].n);
    const oursBytes = await bytesFrom('s1');
    const theirsBytes = await bytesFrom('s2');
    const stored = treeBytes(archive).bytes;
    return {
      compression,
      peerCompression: peer ?? 'none',
      loadSeconds,
      loadRounds: rounds,
      walBytes: written,
      walMiBPerS: written / MiB / loadSeconds,
      samples,
      walvault: {
        ...o,
        received: oursBytes,
        cpuPerGiB: o.cpu / (oursBytes / GiB),
        maxLag: max.s1,
        doneAfterLoadMs: oursDone,
        archivedAfterLoadMs: oursArchived,
        storedBytes: stored,
        storedRatio: stored > 0 ? oursBytes / stored : undefined,
      },
      pg_receivewal: {
        ...t,
        storedBytes: treeBytes(recvDir).bytes,
        received: theirsBytes,
        cpuPerGiB: t.cpu / (theirsBytes / GiB),
        maxLag: max.s2,
        doneAfterLoadMs: theirsDone,
      },
    };
  } finally {
    if (ours) await stopChild(ours, 'SIGTERM', 15_000);
    if (theirs) await stopChild(theirs, 'SIGTERM', 10_000);
    for (const slot of ['s1', 's2']) {
      await sampler
        .query('SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1', [slot])
        .catch(() => undefined);
    }
    await sampler.end().catch(() => undefined);
  }
}

/**
 * `reps` rounds per compression; the rows take the median of each metric. With `abRoot` (another
 * checkout's root, built), each rep also runs that checkout's walvault right after ours, against
 * the same kind of load, for a same-moment A/B of two builds (`abRounds` in the results).
 */
export async function benchStream(B, cluster, { mb, compressions, reps = 1, abRoot }) {
  const rounds = [];
  const abRounds = [];
  const all = [];
  for (const compression of compressions) {
    const mine = [];
    for (let rep = 0; rep < reps; rep++) {
      for (const variant of abRoot ? ['ours', 'ab'] : ['ours']) {
        await B.settle();
        const peer = peerCompression(compression);
        const who = variant === 'ab' ? ` (A/B: ${abRoot})` : '';
        B.log(
          `  round ${rep + 1}/${reps}: walvault${who} --compression ${compression} with pg_receivewal${peer ? ` --compress=${peer}` : ''}, ${mb} MiB of WAL`,
        );
        const r = await streamRound(B, cluster, {
          mb,
          compression,
          label: `-${variant}${rep}`,
          ...(variant === 'ab' ? { bin: join(abRoot, 'bin', 'walvault') } : {}),
        });
        r.build = variant;
        all.push(r);
        (variant === 'ab' ? abRounds : mine).push(r);
        B.log(
          `    load ${(r.walBytes / MiB) | 0} MiB in ${r.loadSeconds.toFixed(1)} s; walvault ${r.walvault.cpu.toFixed(2)} CPU s ` +
            `(${r.walvault.cpuPerGiB.toFixed(2)} s/GiB), ${(r.walvault.peakRss / MiB).toFixed(1)} MiB RSS; pg_receivewal ${r.pg_receivewal.cpu.toFixed(2)} CPU s ` +
            `(${r.pg_receivewal.cpuPerGiB.toFixed(2)} s/GiB), ${(r.pg_receivewal.peakRss / MiB).toFixed(1)} MiB RSS; stored ${(r.walvault.storedBytes / MiB).toFixed(0)} / ${(r.pg_receivewal.storedBytes / MiB).toFixed(0)} MiB`,
        );
      }
    }
    rounds.push(medianRound(mine));
    if (abRoot) {
      const ab = abRounds.filter((r) => r.compression === compression);
      const m = medianRound(ab);
      B.row(`stream (${compression}) A/B: CPU per GiB, this build vs ${abRoot}`, {
        ours: rounds.at(-1).walvault.cpuPerGiB,
        theirs: m.walvault.cpuPerGiB,
        unit: 's/GiB',
        better: 'lower',
        oursLabel: 'this build',
        theirsLabel: abRoot,
      });
      B.row(`stream (${compression}) A/B: peak RSS, this build vs ${abRoot}`, {
        ours: rounds.at(-1).walvault.peakRss / MiB,
        theirs: m.walvault.peakRss / MiB,
        unit: 'MiB',
        better: 'lower',
        oursLabel: 'this build',
        theirsLabel: abRoot,
      });
    }
  }
  for (const r of rounds) {
    const labels = {
      oursLabel: `walvault stream --compression ${r.compression} (+ upload to posix archive)`,
      theirsLabel: r.peerCompression === 'none' ? 'pg_receivewal (no compression)' : `pg_receivewal --compress=${r.peerCompression}`,
    };
    const c = r.compression;
    B.row(`stream (${c}): CPU per GiB received`, {
      ours: r.walvault.cpuPerGiB,
      theirs: r.pg_receivewal.cpuPerGiB,
      unit: 's/GiB',
      better: 'lower',
      ...labels,
    });
    if (r.runs > 1) {
      B.row(`stream (${c}): CPU per GiB ratio, median of ${r.runs} same-moment rounds`, {
        ours: r.cpuRatio,
        unit: 'x',
        better: 'lower',
        ...labels,
      });
    }
    B.row(`stream (${c}): stored MiB`, {
      ours: r.walvault.storedBytes / MiB,
      theirs: r.pg_receivewal.storedBytes / MiB,
      unit: 'MiB',
      better: 'lower',
      ...labels,
    });
    B.row(`stream (${c}): peak RSS`, {
      ours: r.walvault.peakRss / MiB,
      theirs: r.pg_receivewal.peakRss / MiB,
      unit: 'MiB',
      better: 'lower',
      ...labels,
    });
    B.row(`stream (${c}): max sent lag`, {
      ours: r.walvault.maxLag.sent / MiB,
      theirs: r.pg_receivewal.maxLag.sent / MiB,
      unit: 'MiB',
      better: 'lower',
      ...labels,
    });
    B.row(`stream (${c}): max flush lag`, {
      ours: r.walvault.maxLag.flush / MiB,
      theirs: r.pg_receivewal.maxLag.flush / MiB,
      unit: 'MiB',
      better: 'lower',
      ...labels,
    });
    B.row(`stream (${c}): walvault max archive lag`, {
      ours: r.walvault.maxLag.replay / MiB,
      unit: 'MiB',
      better: 'lower',
      ...labels,
    });
    B.row(`stream (${c}): walvault last segment archived after load end`, {
      ours: r.walvault.archivedAfterLoadMs,
      unit: 'ms',
      better: 'lower',
      ...labels,
    });
  }
  return { mb, reps, rounds, all, ...(abRoot ? { abRoot } : {}) };
}

/** One round whose numbers are the medians of `rs` (same compression), for the table. */
function medianRound(rs) {
  const med = (f) => median(rs.map(f).filter((v) => v !== undefined));
  const side = (k, extra) => ({
    cpu: med((r) => r[k].cpu),
    cpuPerGiB: med((r) => r[k].cpuPerGiB),
    peakRss: med((r) => r[k].peakRss),
    storedBytes: med((r) => r[k].storedBytes),
    maxLag: Object.fromEntries(Object.keys(rs[0][k].maxLag).map((l) => [l, med((r) => r[k].maxLag[l])])),
    doneAfterLoadMs: med((r) => r[k].doneAfterLoadMs),
    ...extra,
  });
  return {
    compression: rs[0].compression,
    peerCompression: rs[0].peerCompression,
    runs: rs.length,
    // Each round's ratio pairs two receivers of the same load at the same moment.
    cpuRatio: med((r) => r.walvault.cpuPerGiB / r.pg_receivewal.cpuPerGiB),
    walvault: side('walvault', { archivedAfterLoadMs: med((r) => r.walvault.archivedAfterLoadMs) }),
    pg_receivewal: side('pg_receivewal', {}),
  };
}
