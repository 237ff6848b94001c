// Where a cold wal-push spends its time: one push of a 16 MiB segment per content type, run
// through the launcher exactly like scenario 1 but with node --cpu-prof (through WALVAULT_NODE,
// the launcher's hook for the node binary: NODE_OPTIONS refuses --cpu-prof), then the V8 profile
// summarized (self time per function and per file). Profiling slows the run a little, so the
// plain wall time of the same push is measured too, without the profiler.
import { chmodSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { inclusiveTimes, phaseSplit, summarizeProfile } from '../support/cpuprofile.mjs';
import { commandEnv, timedSh } from '../support/proc.mjs';
import { streamRound } from './stream.mjs';

/** A node stand-in for the launchers' WALVAULT_NODE hook that writes a V8 CPU profile into `dir`. */
function profilingNode(B, dir, intervalUs) {
  const wrapper = B.file(
    join(dir, 'node-cpu-prof'),
    `#!/bin/sh\nexec ${process.execPath} --cpu-prof --cpu-prof-interval ${intervalUs} --cpu-prof-dir ${dir} "$@"\n`,
  );
  chmodSync(wrapper, 0o755);
  return wrapper;
}

/** Functions of the push path whose inclusive time is worth reporting (see src/archive/push.ts). */
const PUSH_FUNCTIONS = [
  'compressBuffer',
  'describeFile',
  'readWholeFile',
  'existingVersions',
  'encodeObject',
  'verifyStored',
  'put',
  'openArchive',
];

export async function profilePush(B, { segments, compression, top = 15 }) {
  const out = [];
  for (const [label, seg] of segments) {
    const standin = B.standin(`profile-${label}`, [seg]);
    const run = async (profileDir) => {
      const archive = B.dir('archive-profile');
      const conf = B.walvaultConfig(B.dir('profile-conf'), { archive: `file://${archive}`, compression, 'push-lookahead': 0 });
      const state = B.dir('state-profile');
      const nodeOpts = profileDir ? `WALVAULT_NODE=${profilingNode(B, profileDir, 100)} ` : '';
      const cmd = `${nodeOpts}WALVAULT_CONFIG=${conf} WALVAULT_STATE_DIR=${state} WALVAULT_NO_FASTPATH=1 ${B.bin('wal-push')} pg_wal/${seg}`;
      const r = await timedSh(cmd, { cwd: standin, env: commandEnv(), ids: B.ids });
      if (r.code !== 0) throw new Error(`profiled wal-push of ${seg} failed: ${r.stderr}`);
      return r.ms;
    };
    const plainMs = [];
    for (let i = 0; i < 3; i++) plainMs.push(await run());
    const profileDir = B.dir(`cpuprofile-${label}`);
    const profiledMs = await run(profileDir);
    const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
    const summary = summarizeProfile(join(profileDir, file), { root: B.root, top });
    summary.phases = phaseSplit(join(profileDir, file), 'pushFile');
    summary.inclusive = inclusiveTimes(join(profileDir, file), PUSH_FUNCTIONS);
    out.push({
      what: `wal-push ${label}`,
      label,
      segment: seg,
      compression,
      plainMs,
      profiledMs,
      profile: join(profileDir, file),
      ...summary,
    });
    B.log(`  ${label} ${seg}: wall ${plainMs.map((x) => x.toFixed(0)).join('/')} ms plain, ${profiledMs.toFixed(0)} ms profiled`);
    const ph = summary.phases;
    B.log(
      `    before pushFile ${ph.before.ms.toFixed(0)} ms (idle ${ph.before.idleMs.toFixed(0)}), from pushFile on ${ph.after.ms.toFixed(0)} ms (idle ${ph.after.idleMs.toFixed(0)})`,
    );
    for (const f of summary.topFrames.slice(0, 8))
      B.log(`    ${f.ms.toFixed(1).padStart(7)} ms ${f.pct.toFixed(1).padStart(5)} %  ${f.frame}`);
  }
  return out;
}

/** `walvault stream` under the profiler while pg_receivewal runs beside it, as in scenario 4. */
export async function profileStream(B, cluster, { mb, compression, top = 15 }) {
  const profileDir = B.dir('cpuprofile-stream');
  // V8's default 1 ms interval: at 100 us the sampling signals alone add seconds of system time.
  const r = await streamRound(B, cluster, { mb, compression, node: profilingNode(B, profileDir, 1000) });
  const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('walvault stream wrote no CPU profile');
  const summary = summarizeProfile(join(profileDir, file), { root: B.root, top });
  B.log(
    `  stream (${compression}, ${(r.walBytes / 2 ** 20).toFixed(0)} MiB, profiled): walvault ${r.walvault.cpu.toFixed(2)} CPU s, pg_receivewal ${r.pg_receivewal.cpu.toFixed(2)} CPU s`,
  );
  for (const f of summary.topFrames.slice(0, 8))
    B.log(`    ${f.ms.toFixed(1).padStart(7)} ms ${f.pct.toFixed(1).padStart(5)} %  ${f.frame}`);
  return { what: 'walvault stream', label: 'stream', compression, round: r, profile: join(profileDir, file), ...summary };
}
