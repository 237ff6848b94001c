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
