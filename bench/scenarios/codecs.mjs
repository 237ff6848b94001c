// Scenario 5: codec, checksum and encryption throughput on labelled corpus segments (bulk load,
// OLTP, md5 text), by bench/codecs.mjs in its own process (with --expose-gc, so garbage from one
// measurement is not collected during the next).
import { spawn } from 'node:child_process';
import { linkSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { track } from '../support/proc.mjs';

export async function benchCodecs(B, { reps }) {
  const dir = B.dir('codecs');
  const files = [];
  for (const [label, path] of Object.entries(B.corpus.labels)) {
    const seg = basename(path).slice(-24);
    const link = join(dir, `${label}-${seg}`);
    linkSync(path, link);
    files.push(link);
  }
  if (files.length === 0) throw new Error('no labelled corpus segments for the codec scenario');
  const jsonPath = join(dir, 'codecs.json');
  const args = ['--expose-gc', join(B.root, 'bench', 'codecs.mjs'), ...files, '--reps', String(reps), '--json', jsonPath];
  const table = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`codecs.mjs failed (${code}): ${err}`))));
  });
  const data = JSON.parse(readFileSync(jsonPath, 'utf8'));
  return { table: table.trim(), ...data };
}
