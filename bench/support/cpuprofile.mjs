// Summary of a V8 .cpuprofile (node --cpu-prof): self time per function and per source file.

import { readFileSync } from 'node:fs';

function shortUrl(url, root) {
  if (!url) return '(native)';
  let u = url.replace(/^file:\/\//, '');
  if (root && u.startsWith(root)) u = u.slice(root.length + 1);
  return u;
}

/** Where the time went: `top` functions by self time, self time per file, and the total. */
export function summarizeProfile(path, { root, top = 15 } = {}) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const totalUs = profile.endTime - profile.startTime;
  const frames = new Map();
  const files = new Map();
  for (const [id, us] of selfUs) {
    const { callFrame: f } = byId.get(id);
    const file = shortUrl(f.url, root);
    const name = f.functionName || (f.url ? '(anonymous)' : f.functionName);
    const key = `${name} ${file}:${f.lineNumber + 1}`;
    frames.set(key, (frames.get(key) ?? 0) + us);
    const fileKey = /node_modules\/(@[^/]+\/[^/]+|[^/]+)/.exec(file)?.[0] ?? (f.url ? file : name);
    files.set(fileKey, (files.get(fileKey) ?? 0) + us);
  }
  const sorted = (m) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([frame, us]) => ({ frame, ms: us / 1000, pct: (100 * us) / totalUs }));
  return { totalMs: totalUs / 1000, topFrames: sorted(frames), topFiles: sorted(files) };
}

/**
 * Inclusive time (ms) of the named functions: a sample counts for every listed function on its
 * stack (once each), so nested names overlap by design. Also returns idle, GC and the total.
 */
export function inclusiveTimes(path, names) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const wanted = new Set(names);
  const memo = new Map();
  const onStack = (id) => {
    if (memo.has(id)) return memo.get(id);
    const set = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const fn = byId.get(cur).callFrame.functionName;
      if (wanted.has(fn)) set.add(fn);
    }
    memo.set(id, set);
    return set;
  };
  const out = Object.fromEntries(names.map((n) => [n, 0]));
  let idle = 0;
  let gc = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    const us = profile.timeDeltas[i] ?? 0;
    const fn = byId.get(id).callFrame.functionName;
    if (fn === '(idle)') idle += us;
    else if (fn === '(garbage collector)') gc += us;
    for (const n of onStack(id)) out[n] += us;
  }
  const ms = (us) => us / 1000;
  return {
    totalMs: ms(profile.endTime - profile.startTime),
    idleMs: ms(idle),
    gcMs: ms(gc),
    functions: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, ms(v)])),
  };
}

/**
 * Splits a profile in time at the first sample with `marker` on its stack: for a cold wal-push,
 * "before" is everything from the profiler's start (node is already bootstrapped by then) to the
 * moment pushFile first runs: module loading, CLI parsing, config, opening the archive.
 */
export function phaseSplit(path, marker) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const hasMarker = (id) => {
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) if (byId.get(cur).callFrame.functionName === marker) return true;
    return false;
  };
  const phases = { before: { ms: 0, idleMs: 0, gcMs: 0 }, after: { ms: 0, idleMs: 0, gcMs: 0 } };
  let seen = false;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    if (!seen && hasMarker(id)) seen = true;
    const p = seen ? phases.after : phases.before;
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const fn = byId.get(id).callFrame.functionName;
    p.ms += ms;
    if (fn === '(idle)') p.idleMs += ms;
    if (fn === '(garbage collector)') p.gcMs += ms;
  }
  return { marker, found: seen, ...phases };
}
