// Scenario 1: archive_command, one cold process per segment, as PostgreSQL runs it: `sh -c` from a
// stand-in data directory, as the PostgreSQL OS user, %p = pg_wal/<segment>. Every variant pushes
// the same segments, each into its own fresh repository (a real upload every time), in an order
// that rotates per segment so drift in machine load spreads evenly over the variants.
import { join } from 'node:path';
import { freshRepo, pushCommand } from '../support/pgbackrest.mjs';
import { commandEnv, timedSh } from '../support/proc.mjs';
import { countSegments, treeBytes } from '../support/context.mjs';
import { MiB, median, percentile, sum } from '../support/stats.mjs';

/** Evenly spread picks, so each content type of the corpus is represented. */
function spread(names, count) {
  if (count >= names.length) return [...names];
  const step = names.length / count;
  return Array.from({ length: count }, (_, i) => names[Math.floor(i * step + step / 2)]);
}

export async function benchPush(B, { count, s3 }) {
  const picks = spread(B.corpus.names, count);
  const standin = B.standin('push', picks);
  const segBytes = 16 * MiB;
  const variants = [];

  const walvault = (id, label, settings, archiveDir, env = '') => {
    const dir = B.dir(`push-${id}`);
    const conf = B.walvaultConfig(dir, { ...settings, 'push-lookahead': 0 });
    const state = B.dir(`state-${id}`);
    variants.push({
      id,
      label,
      archiveDir,
      times: [],
      cpu: [],
      cmd: (seg) =>
        `${env}WALVAULT_CONFIG=${conf} WALVAULT_STATE_DIR=${state} WALVAULT_NO_FASTPATH=1 WALVAULT_PUSH_LOOKAHEAD=0 ` +
        `${B.bin('wal-push')} pg_wal/${seg}`,
    });
  };
  const repo3 = B.dir('archive-push-zstd3');
  walvault('walvault-zstd3', 'walvault zstd:3 (posix)', { archive: `file://${repo3}`, compression: 'zstd:3' }, repo3);

  const pgbrDir = B.dir('pgbr-push');
  const pgbrRepo = freshRepo(B.pgbr.template, join(pgbrDir, 'repo'));
  const pgbrConf = B.pgbrConfig(pgbrDir, { repo: pgbrRepo, pgPath: standin });
  variants.push({
    id: 'pgbackrest-zst3',
    label: 'pgbackrest zst:3 (posix, sync)',
    archiveDir: pgbrRepo,
    times: [],
    cpu: [],
    cmd: (seg) => pushCommand(pgbrConf, `pg_wal/${seg}`),
  });

  const repo1 = B.dir('archive-push-zstd1');
  walvault('walvault-zstd1', 'walvault zstd:1 (posix, default level)', { archive: `file://${repo1}`, compression: 'zstd:1' }, repo1);

  if (s3) {
    const prefix = `push-${Date.now()}`;
    walvault(
      'walvault-s3-zstd3',
      'walvault zstd:3 (S3, s3rver)',
      {
        archive: `s3://${s3.bucket}/${prefix}`,
        's3-endpoint': s3.endpoint,
        's3-region': 'us-east-1',
        's3-force-path-style': true,
        's3-checksums': 'when_required',
        compression: 'zstd:3',
      },
      undefined,
      'AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER ',
    );
  }

  await B.settle();
  for (let i = 0; i < picks.length; i++) {
    const seg = picks[i];
    const order = variants.map((_, j) => variants[(i + j) % variants.length]);
    for (const v of order) {
      const r = await timedSh(v.cmd(seg), { cwd: standin, env: commandEnv(), ids: B.ids });
      if (r.code !== 0) throw new Error(`${v.label}: push of ${seg} failed (exit ${r.code}): ${r.stderr.trim()}`);
      v.times.push(r.ms);
      v.cpu.push(r.cpuMs);
    }
    if ((i + 1) % 10 === 0) B.log(`  ${i + 1}/${picks.length} segments`);
  }

  const out = {};
  for (const v of variants) {
    const stored = v.archiveDir ? treeBytes(v.archiveDir) : undefined;
    const objects = v.archiveDir ? countSegments(v.archiveDir) : undefined;
    if (objects !== undefined && objects !== picks.length) {
      throw new Error(`${v.label}: ${objects} segment objects in the repository after ${picks.length} pushes`);
    }
    out[v.id] = {
      label: v.label,
      medianMs: median(v.times),
      p95Ms: percentile(v.times, 95),
      mibPerS: (picks.length * segBytes) / MiB / (sum(v.times) / 1000),
      cpuMedianMs: median(v.cpu),
      ratio: stored ? (picks.length * segBytes) / stored.bytes : undefined,
      times: v.times.map((t) => Math.round(t * 10) / 10),
      cpuMs: v.cpu.map((t) => Math.round(t)),
    };
    B.log(
      `  ${v.label}: median ${out[v.id].medianMs.toFixed(1)} ms, p95 ${out[v.id].p95Ms.toFixed(1)} ms, CPU ${out[v.id].cpuMedianMs.toFixed(0)} ms`,
    );
  }
  const ours = out['walvault-zstd3'];
  const theirs = out['pgbackrest-zst3'];
  const pair = (metric, key, unit, better) =>
    B.row(metric, { ours: ours[key], theirs: theirs[key], unit, better, oursLabel: ours.label, theirsLabel: theirs.label });
  pair('push median per segment, zstd-3 vs zst-3', 'medianMs', 'ms', 'lower');
  pair('push p95 per segment, zstd-3 vs zst-3', 'p95Ms', 'ms', 'lower');
  pair('push throughput, zstd-3 vs zst-3', 'mibPerS', 'MiB/s', 'higher');
  pair('push CPU (user+sys) per segment, median, zstd-3 vs zst-3', 'cpuMedianMs', 'ms', 'lower');
  pair('stored ratio raw/stored (whole repo)', 'ratio', 'x', 'higher');
  for (const id of ['walvault-zstd1', 'walvault-s3-zstd3']) {
    const v = out[id];
    if (!v) continue;
    B.row(`push median per segment, ${v.label}`, {
      ours: v.medianMs,
      theirs: theirs.medianMs,
      unit: 'ms',
      better: 'lower',
      oursLabel: v.label,
      theirsLabel: theirs.label,
    });
    B.row(`push p95 per segment, ${v.label}`, {
      ours: v.p95Ms,
      theirs: theirs.p95Ms,
      unit: 'ms',
      better: 'lower',
      oursLabel: v.label,
      theirsLabel: theirs.label,
    });
    B.row(`push CPU per segment, median, ${v.label}`, {
      ours: v.cpuMedianMs,
      theirs: theirs.cpuMedianMs,
      unit: 'ms',
      better: 'lower',
      oursLabel: v.label,
      theirsLabel: theirs.label,
    });
  }

  // Start-up floor: what a process costs before it does any work.
  const floors = {
    node: { cmd: `${process.execPath} -e ''`, times: [], cpu: [] },
    walvault: { cmd: `${B.bin('walvault')} --version`, times: [], cpu: [] },
    pgbackrest: { cmd: 'pgbackrest version', times: [], cpu: [] },
  };
  for (let i = 0; i < 15; i++) {
    for (const f of Object.values(floors)) {
      const r = await timedSh(`${f.cmd} >/dev/null`, { cwd: standin, env: commandEnv(), ids: B.ids });
      f.times.push(r.ms);
      f.cpu.push(r.cpuMs);
    }
  }
  const startup = Object.fromEntries(
    Object.entries(floors).map(([k, f]) => [k, { cmd: f.cmd, medianMs: median(f.times), cpuMedianMs: median(f.cpu) }]),
  );
  B.row('start-up: walvault --version vs pgbackrest version, median wall', {
    ours: startup.walvault.medianMs,
    theirs: startup.pgbackrest.medianMs,
    unit: 'ms',
    better: 'lower',
  });
  B.row('start-up: same, median CPU', {
    ours: startup.walvault.cpuMedianMs,
    theirs: startup.pgbackrest.cpuMedianMs,
    unit: 'ms',
    better: 'lower',
  });
  B.note(`bare \`node -e ''\`: median ${startup.node.medianMs.toFixed(0)} ms wall, ${startup.node.cpuMedianMs.toFixed(0)} ms CPU`);
  return { segments: picks, standin, variants: out, startup };
}
