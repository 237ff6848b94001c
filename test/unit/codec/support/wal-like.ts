import { fixtureManifest, fixtureMajors, loadFixture, type FixtureKind } from '../../../support/fixtures.js';

/**
 * Test data for codecs and pipelines. `walLike()` builds a deterministic stand-in for a 16 MiB WAL
 * segment with WAL's statistics: 8 KiB pages with headers, record headers with incompressible
 * CRCs, pgbench-like tuples (increasing keys, blank-padded filler) and a share of random text, so
 * compression ratios and speeds are in the range of real WAL (real OLTP WAL compresses better).
 * `realWal()` adds the real files from fixtures/wal, so codec tests also run on real WAL.
 */

export const SEGMENT_BYTES = 16 * 1024 * 1024;
const PAGE = 8192;
const PG15_PAGE_MAGIC = 0xd110;

/** xorshift32: a fixed seed gives the same bytes on every run and machine. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export function randomBuffer(length: number, seed = 1): Buffer {
  const next = prng(seed);
  const buf = Buffer.allocUnsafe(length);
  let i = 0;
  for (; i + 4 <= length; i += 4) buf.writeUInt32LE(next(), i);
  for (; i < length; i++) buf[i] = next() & 0xff;
  return buf;
}

export interface WalLikeOptions {
  /** Total size; a segment by default. */
  size?: number;
  seed?: number;
  /** Share of tuples that carry 32 random hex characters (md5-like text), 0..1. */
  randomShare?: number;
  /** Share at the end left zero, as in a segment switched before it filled up. */
  zeroTail?: number;
}

const HEX = '0123456789abcdef';

export function walLike(opts: WalLikeOptions = {}): Buffer {
  const size = opts.size ?? SEGMENT_BYTES;
  const next = prng(opts.seed ?? 0x5eed);
  const randomShare = opts.randomShare ?? 0.25;
  const used = Math.floor(size * (1 - (opts.zeroTail ?? 0)));
  const buf = Buffer.alloc(size);
  let pos = 0;
  let lsn = 0x3000000n;
  let xid = 750;
  let aid = 1;

  const pageHeader = (): void => {
    const long = pos % SEGMENT_BYTES === 0;
    buf.writeUInt16LE(PG15_PAGE_MAGIC, pos);
    buf.writeUInt16LE(long ? 0x0002 : 0x0001, pos + 2);
    buf.writeUInt32LE(1, pos + 4);
    buf.writeBigUInt64LE(lsn - (lsn % BigInt(PAGE)), pos + 8);
    buf.writeUInt32LE(next() & 0x3f, pos + 16);
    if (long) {
      buf.writeBigUInt64LE(7312345678901234567n, pos + 24);
      buf.writeUInt32LE(SEGMENT_BYTES, pos + 32);
      buf.writeUInt32LE(PAGE, pos + 36);
    }
    pos += long ? 40 : 24;
  };

  const record = (): Buffer => {
    const text = (next() % 1000) / 1000 < randomShare;
    const body = Buffer.alloc(24 + 20 + 4 + 4 + 84 + (text ? 32 : 0) + 8);
    body.writeUInt32LE(body.length, 0);
    body.writeUInt32LE(xid, 4);
    body.writeBigUInt64LE(lsn, 8);
    body[16] = 0x00;
    body[17] = 10; // heap rmgr
    body.writeUInt32LE(next(), 20); // CRC: incompressible
    body.writeUInt32LE(1663, 24);
    body.writeUInt32LE(5, 28);
    body.writeUInt32LE(16397, 32);
    body.writeUInt32LE(aid >>> 5, 36);
    body.writeUInt16LE(aid & 31, 40);
    body.writeInt32LE(aid, 44);
    body.writeInt32LE((next() % 10_000) - 5000, 48);
    body.fill(0x20, 52, 136);
    let p = 136;
    if (text) {
      for (let i = 0; i < 32; i++) body[p++] = HEX.charCodeAt(next() & 15);
    }
    body.writeBigUInt64LE(BigInt(Date.UTC(2025, 0, 1)) * 1000n + BigInt(aid), p);
    if (next() % 8 === 0) xid++;
    aid++;
    return body;
  };

  while (pos < used) {
    if (pos % PAGE === 0) pageHeader();
    const rec = record();
    for (let off = 0; off < rec.length && pos < used;) {
      if (pos % PAGE === 0) pageHeader();
      const room = Math.min(PAGE - (pos % PAGE), used - pos, rec.length - off);
      rec.copy(buf, pos, off, off + room);
      pos += room;
      off += room;
    }
    // Records are MAXALIGNed.
    pos = Math.min(used, (pos + 7) & ~7);
    lsn += BigInt(rec.length + 7) & ~7n;
  }
  return buf;
}

export interface WalSample {
  name: string;
  data: Buffer;
}

/**
 * Real files written by PostgreSQL 13, 15 and 17 (fixtures/wal, 1 MiB segments plus partial,
 * history and backup-label files), verified against their manifest's SHA-256 on load.
 */
export function realWal(opts: { kinds?: readonly FixtureKind[]; perMajor?: number } = {}): WalSample[] {
  const kinds = opts.kinds ?? ['segment', 'partial', 'history', 'backup'];
  const out: WalSample[] = [];
  for (const major of fixtureMajors()) {
    const files = fixtureManifest(major).files.filter((f) => kinds.includes(f.kind));
    for (const f of files.slice(0, opts.perMajor ?? files.length)) {
      out.push({ name: `pg${major} ${f.kind} ${f.name}`, data: loadFixture(major, f.name) });
    }
  }
  return out;
}

/** Synthetic OLTP-like and text-heavy 16 MiB segments. */
export function syntheticWal(): WalSample[] {
  return [
    { name: 'wal-like oltp', data: walLike({ randomShare: 0.1 }) },
    { name: 'wal-like text-heavy', data: walLike({ randomShare: 1, seed: 42 }) },
  ];
}

/** Everything above: synthetic segments plus every real fixture file. */
export function walSamples(): WalSample[] {
  return [...syntheticWal(), ...realWal()];
}
