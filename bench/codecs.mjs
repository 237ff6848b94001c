#!/usr/bin/env node
// Codec, checksum and encryption throughput on 16 MiB WAL segments.
//
//   npm run build && node --expose-gc bench/codecs.mjs [segment-file ...] [--reps N] [--keep DIR] [--json FILE]
//
// With no segment files it makes real ones with a throwaway PostgreSQL 15 cluster (bulk load,
// OLTP, random text; see support/pg-wal.mjs). --keep DIR keeps those segments. MB/s is raw
// (uncompressed) megabytes (10^6 bytes) per second of one thread, median of N runs (default 7);
// ratio is raw / compressed. Plain JS on purpose: it runs the compiled dist/ code, as shipped.
// --json FILE also writes the numbers there (bench/run.mjs runs this file that way, on its corpus).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateWal } from './support/pg-wal.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist', 'codec');
if (!existsSync(join(dist, 'codec.js'))) {
  console.error('dist/codec is missing: run `npm run build` (tsc) first');
  process.exit(2);
}
const { getCodec } = await import(join(dist, 'codec.js'));
const { sha256Hex } = await import(join(dist, 'checksum.js'));
const { EncryptionKey, encrypt, decrypt } = await import(join(dist, 'encryption.js'));

const args = process.argv.slice(2);
let reps = 7;
let keep;
let jsonOut;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--reps') reps = Number(args[++i]);
  else if (args[i] === '--keep') keep = args[++i];
  else if (args[i] === '--json') jsonOut = args[++i];
  else files.push(args[i]);
}

const CONFIGS = [
  ['zstd', 1],
  ['zstd', 3],
  ['zstd', 6],
  ['lz4', 1],
  ['gzip', 1],
  ['gzip', 6],
  ['brotli', 1],
  ['brotli', 4],
  ['none', 0],
];

const gc = globalThis.gc ?? (() => {});

async function measure(bytes, fn) {
  const times = [];
  let result;
  for (let i = 0; i < reps; i++) {
    gc();
    const t0 = performance.now();
    result = await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const mbps = (ms) => bytes / 1e6 / (ms / 1000);
  return { median: mbps(times[Math.floor(times.length / 2)]), best: mbps(times[0]), result };
}

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

async function benchSegment(label, data) {
  const rows = [];
  for (const [name, level] of CONFIGS) {
    const codec = getCodec(name, level);
    const comp = await measure(data.length, () => codec.compress(data));
    const packed = comp.result;
    const dec = await measure(data.length, () => codec.decompress(packed, data.length));
    if (!dec.result.equals(data)) throw new Error(`${name}:${level} did not round-trip ${label}`);
    rows.push({
      what: name === 'none' ? 'none' : `${name}:${level}`,
      comp,
      dec,
      ratio: data.length / Math.max(1, packed.length),
    });
  }
  const sha = await measure(data.length, () => sha256Hex(data));
  const key = new EncryptionKey(Buffer.alloc(32, 7));
  const enc = await measure(data.length, () => encrypt(data, key));
  const decr = await measure(data.length, () => decrypt(enc.result, key));
  // Baseline for every decompressor: the cost of fresh output memory on this machine.
  const alloc = await measure(data.length, () => Buffer.allocUnsafe(data.length).fill(1));
  return { label, rows, sha, enc, decr, alloc };
}

function printTable(results) {
  const labels = results.map((r) => r.label);
  console.log(`\nMB/s = median (best) of ${reps} runs on one thread; ratio = raw / compressed.\n`);
  const head = ['codec', ...labels.flatMap((l) => [`${l} comp MB/s`, `${l} decomp MB/s`, `${l} ratio`])];
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (let i = 0; i < results[0].rows.length; i++) {
    const cells = [results[0].rows[i].what];
    for (const r of results) {
      const row = r.rows[i];
      // 'none' hands its input back: a speed would only measure the timer.
      const speed = (m) => (row.what === 'none' ? 'no-op' : `${fmt(m.median)} (${fmt(m.best)})`);
      cells.push(speed(row.comp), speed(row.dec), row.ratio.toFixed(2));
    }
    console.log(`| ${cells.join(' | ')} |`);
  }
  console.log('\n| primitive | ' + labels.map((l) => `${l} MB/s`).join(' | ') + ' |');
  console.log(`|---|${labels.map(() => '---:').join('|')}|`);
  for (const [name, key] of [
    ['SHA-256', 'sha'],
    ['AES-256-GCM encrypt (1 MiB chunks)', 'enc'],
    ['AES-256-GCM decrypt (1 MiB chunks)', 'decr'],
    ['baseline: allocate and fill 16 MiB', 'alloc'],
  ]) {
    console.log(`| ${name} | ${results.map((r) => `${fmt(r[key].median)} (${fmt(r[key].best)})`).join(' | ')} |`);
  }
}

let segments;
let scratch;
if (files.length > 0) {
  // Files saved by --keep are named <label>-<segment>; label others by their segment name.
  segments = files.map((path) => ({ label: basename(path).replace(/-[0-9A-F]{24}$/, ''), path }));
} else {
  const dir = keep ?? (scratch = mkdtempSync(join(tmpdir(), 'walvault-bench-wal-')));
  console.error('no segment given: generating WAL with a throwaway PostgreSQL 15 cluster ...');
  segments = await generateWal(dir, { log: (m) => console.error(`  ${m}`) });
}

try {
  console.log(`node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}${globalThis.gc ? ', gc between runs' : ''}`);
  const results = [];
  for (const { label, path } of segments) {
    const data = readFileSync(path);
    console.error(`benchmarking ${label} (${data.length} bytes) ...`);
    results.push(await benchSegment(label, data));
  }
  printTable(results);
  if (jsonOut) {
    // `result` holds the last output buffer of each measurement: not data for the report.
    const body = { reps, unit: 'MB/s (10^6 bytes of raw data per second, one thread)', segments: results };
    writeFileSync(jsonOut, `${JSON.stringify(body, (k, v) => (k === 'result' ? undefined : v), 2)}\n`);
  }
} finally {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}
