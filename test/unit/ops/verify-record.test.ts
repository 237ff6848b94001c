/**
 * wal-verify's verified-objects record and its one-pass listing: a second run reads no object it
 * already checked, an object rewritten since is read again, --recheck reads everything, and a
 * record for another archive identity is ignored. Real posix storage, real PostgreSQL 15 WAL.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { pushFile } from '../../../src/archive/push.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { verifiedRecordPath } from '../../../src/archive/catalog/verified-record.js';
import { StructureAggregator } from '../../../src/archive/catalog/verify-structure.js';
import { PosixStorage } from '../../../src/storage/posix.js';
import type { Storage } from '../../../src/storage/types.js';
import { verifyArchive } from '../../../src/ops/verify.js';
import { fixtureManifest } from '../../support/fixtures.js';
import { makeCtx, removeTempDirs, tempDir, writeFixture } from '../archive/support.js';

const MAJOR = 15;
const manifest = fixtureManifest(MAJOR);
afterAll(removeTempDirs);

/** Counts object reads (get and getBuffer) through a real driver. */
function countingReads(inner: Storage): { storage: Storage; reads: string[] } {
  const reads: string[] = [];
  const storage = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'get' || prop === 'getBuffer') {
        return (key: string, opts?: unknown) => {
          reads.push(key);
          return (Reflect.get(target, prop, receiver) as (k: string, o?: unknown) => Promise<unknown>).call(target, key, opts);
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
  return { storage, reads };
}

let root: string;
let record: string;
let ctx: ArchiveContext;
let reads: string[];

beforeEach(async () => {
  root = await tempDir('verify-record');
  const pushCtx = makeCtx(new PosixStorage({ root }));
  const src = await tempDir('verify-record-src');
  for (const f of manifest.files) await pushFile(pushCtx, await writeFixture(src, MAJOR, f.name));
  record = verifiedRecordPath(await tempDir('verify-record-dir'), `file://${root}`)!;
  const counted = countingReads(new PosixStorage({ root }));
  reads = counted.reads;
  ctx = { ...makeCtx(counted.storage), identity: undefined } as ArchiveContext;
});

const walReads = (): string[] => reads.filter((k) => k.startsWith('wal/'));

describe('wal-verify with a verified-objects record', () => {
  it('reads no object again that an earlier run checked, and reports the same findings', async () => {
    const first = await verifyArchive(ctx, { recordPath: record });
    expect(first.fromRecord).toBe(0);
    const objects = walReads().length;
    expect(objects).toBeGreaterThan(3);
    reads.length = 0;
    const second = await verifyArchive(ctx, { recordPath: record });
    expect(walReads()).toEqual([]);
    expect(second.fromRecord).toBe(objects);
    expect(second.problems).toEqual(first.problems);
    expect(second.objects).toBe(first.objects);
  });

  it('reads an object again once it was rewritten, and every object with recheck', async () => {
    await verifyArchive(ctx, { recordPath: record });
    const victim = walReads()[0]!;
    const file = path.join(root, ...victim.split('/'));
    const bytes = await readFile(file);
    // Same size, different header byte: only a new modification time tells.
    bytes[20]! ^= 0x01;
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(file, bytes);
    reads.length = 0;
    const again = await verifyArchive(ctx, { recordPath: record });
    expect(walReads()).toEqual([victim]);
    expect(again.problems.map((p) => p.subject)).toContain(victim);
    reads.length = 0;
    await verifyArchive(ctx, { recordPath: record, recheck: true });
    expect(walReads().length).toBeGreaterThan(3);
  });

  it('a deep run reads objects that were only header-checked, then none', async () => {
    await verifyArchive(ctx, { recordPath: record });
    reads.length = 0;
    await verifyArchive(ctx, { recordPath: record, deep: true });
    const deepReads = walReads().length;
    expect(deepReads).toBeGreaterThan(3);
    reads.length = 0;
    const again = await verifyArchive(ctx, { recordPath: record, deep: true });
    expect(walReads()).toEqual([]);
    expect(again.fromRecord).toBe(deepReads);
  });

  it('ignores a record written for another archive identity', async () => {
    await verifyArchive(ctx, { recordPath: record });
    const text = await readFile(record, 'utf8');
    await writeFile(record, text.replace(manifest.systemId, '1234567890123456789'));
    reads.length = 0;
    const r = await verifyArchive(ctx, { recordPath: record });
    expect(r.fromRecord).toBe(0);
    expect(walReads().length).toBeGreaterThan(3);
  });
});

describe('StructureAggregator', () => {
  it('keeps one range per run of segments, not one entry per segment', () => {
    const agg = new StructureAggregator(new Map(), [], 16 * 1024 * 1024);
    const sha = 'a'.repeat(64);
    for (let segno = 0n; segno < 100_000n; segno++) {
      if (segno === 500n) continue; // one gap
      const name = `00000001${(segno / 256n).toString(16).toUpperCase().padStart(8, '0')}${(segno % 256n).toString(16).toUpperCase().padStart(8, '0')}`;
      agg.add({
        key: `wal/x/${name}-${sha}.zst`,
        fileName: name,
        sha256: sha,
        extension: 'zst',
        encrypted: false,
        kind: 'segment',
        timeline: 1,
        segno,
        storedBytes: 1,
        mtime: new Date(0),
      });
    }
    const present = (agg as unknown as { present: Map<number, { ranges(): unknown[] }> }).present;
    expect(present.get(1)!.ranges()).toHaveLength(2);
    const r = agg.finish([]);
    expect(r.problems.map((p) => [p.kind, p.subject])).toEqual([['gap', '0000000100000001000000F4']]);
    expect(agg.segmentsInScope).toBe(99_999);
  });
});
