/**
 * The operator library over an archive made by pushing real PostgreSQL 15 WAL (fixtures: timeline 1
 * segments 7, 8 and A, a backup label at 0/A00028, the .partial of B; the timeline 2 history with
 * its switch at 0/B14798 and timeline 2's segment B). Segment 9 was never in the fixtures: a real gap.
 * Expected facts come from the fixture manifest (what PostgreSQL reported), not from the code.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { encodeObject, pushFile } from '../../../src/archive/push.js';
import { decodeObjectHeader } from '../../../src/archive/object-header.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { ConfigError, IntegrityError, NotFoundError, UsageError } from '../../../src/common/errors.js';
import { parseLsn } from '../../../src/segment/lsn.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { executeWalDelete, planWalDelete } from '../../../src/ops/delete.js';
import { fetchSegmentForLsn, locateLsn } from '../../../src/ops/fetch-lsn.js';
import { fetchLsnCommand } from '../../../src/cli/wal-fetch-call.js';
import { loadConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/common/log.js';
import { PosixStorage } from '../../../src/storage/posix.js';
import { renderWalList } from '../../../src/cli/render/list.js';
import { showJson } from '../../../src/cli/render/show.js';
import { listWal } from '../../../src/ops/list.js';
import { showArchive } from '../../../src/ops/show.js';
import { verifyArchive } from '../../../src/ops/verify.js';
import { fixtureManifest, loadFixture } from '../../support/fixtures.js';
import { keysUnder, makeCtx, removeTempDirs, tempDir, testKey, writeFixture } from '../archive/support.js';

const MAJOR = 15;
const manifest = fixtureManifest(MAJOR);
afterAll(removeTempDirs);

async function archiveOfFixtures(opts: { encrypted?: boolean } = {}): Promise<ArchiveContext> {
  const ctx = makeCtx(new MemoryStorage(), opts.encrypted ? { encryption: testKey(7) } : {});
  const src = await tempDir('ops-src');
  for (const f of manifest.files) await pushFile(ctx, await writeFixture(src, MAJOR, f.name));
  return { ...ctx, identity: undefined } as ArchiveContext;
}

async function keyOf(ctx: ArchiveContext, name: string): Promise<string> {
  const dir = name.endsWith('.history') ? 'history/' : `wal/${name.slice(0, 8)}/${name.slice(0, 16)}/`;
  const keys = (await keysUnder(ctx.storage, dir)).filter((k) => k.slice(dir.length).startsWith(`${name}-`));
  expect(keys).toHaveLength(1);
  return keys[0]!;
}

let ctx: ArchiveContext;
beforeEach(async () => {
  ctx = await archiveOfFixtures();
});

describe('listWal', () => {
  it('lists every WAL file in WAL order with ranges and sizes, from the listing', async () => {
    const list = await listWal(ctx);
    expect(list.systemId).toBe(manifest.systemId);
    expect(list.rows.map((r) => [r.name, r.kind, r.timeline])).toEqual([
      ['000000010000000000000007', 'segment', 1],
      ['000000010000000000000008', 'segment', 1],
      ['00000001000000000000000A', 'segment', 1],
      ['00000001000000000000000A.00000028.backup', 'backup', 1],
      ['00000001000000000000000B.partial', 'partial', 1],
      ['00000002.history', 'history', 2],
      ['00000002000000000000000B', 'segment', 2],
    ]);
    const seg7 = list.rows[0]!;
    expect(seg7).toMatchObject({
      startLsn: '0/700000',
      endLsn: '0/800000',
      originalBytes: manifest.walSegSize,
      codec: 'zstd',
      encrypted: false,
    });
    expect(seg7.sha256).toBe(manifest.files[0]!.sha256);
    expect(list.rows[3]).toMatchObject({ startLsn: manifest.backup.startLsn, endLsn: null, originalBytes: null });
    expect(list.rows[5]).toMatchObject({ startLsn: null, originalBytes: null });
    const text = renderWalList(list);
    expect(text.split('\n')[0]).toMatch(/^NAME\s+TYPE\s+TLI\s+START LSN\s+END LSN\s+ORIGINAL\s+STORED\s+CODEC\s+ENC\s+SHA256\s+UPLOADED$/);
    expect(text).toMatch(/4 segments, 1 partial, 1 backup label, 1 history file;/);
  });

  it('filters by timeline and LSN range', async () => {
    const byTli = await listWal(ctx, { timeline: 2 });
    expect(byTli.rows.map((r) => r.name)).toEqual(['00000002.history', '00000002000000000000000B']);
    const byLsn = await listWal(ctx, { from: parseLsn('0/A00000'), to: parseLsn('0/AFFFFF') });
    expect(byLsn.rows.map((r) => r.name)).toEqual([
      '00000001000000000000000A',
      '00000001000000000000000A.00000028.backup',
      '00000002.history',
    ]);
  });

  it('says an empty archive is empty', async () => {
    await expect(listWal(makeCtx(new MemoryStorage()))).rejects.toThrow(NotFoundError);
  });
});

describe('showArchive', () => {
  it('reports timelines, the switch point from the history file, and the gap at segment 9', async () => {
    const report = await showArchive(ctx);
    const json = showJson(report) as { timelines: Array<Record<string, unknown>> };
    expect(json.timelines).toEqual([
      expect.objectContaining({
        timeline: 1,
        parent: null,
        firstSegment: '000000010000000000000007',
        lastSegment: '00000001000000000000000A',
        segments: 3,
        partials: ['00000001000000000000000B.partial'],
        backups: ['00000001000000000000000A.00000028.backup'],
        gaps: [{ first: '000000010000000000000009', last: '000000010000000000000009', segments: 1 }],
      }),
      expect.objectContaining({
        timeline: 2,
        parent: 1,
        switchPoint: manifest.timelineSwitch.switchLsn,
        firstSegment: '00000002000000000000000B',
        gaps: [],
      }),
    ]);
    expect(report.historyIssues).toEqual([]);
  });
});

describe('verifyArchive', () => {
  it('finds the missing segment and nothing else', async () => {
    const report = await verifyArchive(ctx);
    expect(report.problems).toEqual([
      { kind: 'gap', timeline: 1, subject: '000000010000000000000009', message: 'missing 000000010000000000000009' },
    ]);
    expect(report.objects).toBe(manifest.files.length);
    expect(report.segments).toBe(4);
  });

  it('finds a damaged payload only when it downloads everything', async () => {
    const key = await keyOf(ctx, '000000010000000000000008');
    const bytes = await ctx.storage.getBuffer(key);
    bytes[bytes.length - 100]! ^= 0x55;
    await ctx.storage.put(key, bytes);
    expect((await verifyArchive(ctx)).problems.map((p) => p.kind)).toEqual(['gap']);
    const progress: number[] = [];
    const deep = await verifyArchive(ctx, { deep: true, parallel: 2, onProgress: (p) => progress.push(p.done) });
    expect(deep.problems.map((p) => [p.kind, p.subject])).toEqual([
      ['gap', '000000010000000000000009'],
      ['damaged', key],
    ]);
    expect(progress).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(deep.bytesRead).toBeGreaterThan(manifest.files.length * 100);
  });

  it('finds a truncated object from the listing and its header, without downloading it', async () => {
    const key = await keyOf(ctx, '00000001000000000000000A');
    const bytes = await ctx.storage.getBuffer(key);
    await ctx.storage.put(key, bytes.subarray(0, bytes.length - 1));
    const report = await verifyArchive(ctx);
    expect(report.problems.map((p) => [p.kind, p.subject])).toEqual([
      ['gap', '000000010000000000000009'],
      ['damaged', key],
    ]);
    const stored = (await listWal(ctx)).rows.filter((r) => r.kind !== 'history').reduce((n, r) => n + r.storedBytes, 0);
    expect(report.bytesRead).toBeLessThan(stored);
  });

  it('finds an object of another cluster from its header alone', async () => {
    const key = await keyOf(ctx, '000000010000000000000007');
    const header = decodeObjectHeader(await ctx.storage.getBuffer(key), key)!;
    const foreign = await encodeObject(
      ctx,
      { ...header.meta, systemId: '6000000000000000001' },
      loadFixture(MAJOR, '000000010000000000000007'),
    );
    await ctx.storage.put(key, foreign);
    const report = await verifyArchive(ctx, { timeline: 1 });
    expect(report.problems).toContainEqual({
      kind: 'wrong-cluster',
      timeline: 1,
      subject: key,
      message: `it is from database system 6000000000000000001, the archive belongs to ${manifest.systemId}`,
    });
  });

  it('limits the check to an LSN window', async () => {
    const report = await verifyArchive(ctx, { from: parseLsn('0/A00000'), to: parseLsn('0/B00000') });
    expect(report.problems).toEqual([]);
    expect(report.segments).toBe(2);
  });

  it('refuses a deep check of encrypted objects without the key', async () => {
    const enc = await archiveOfFixtures({ encrypted: true });
    await expect(verifyArchive({ ...enc, encryption: undefined } as unknown as ArchiveContext, { deep: true })).rejects.toThrow(
      ConfigError,
    );
    expect((await verifyArchive(enc, { deep: true })).problems.map((p) => p.kind)).toEqual(['gap']);
  });
});

describe('fetching by LSN', () => {
  it('takes the position before the switch from timeline 2, which holds a copy of it', async () => {
    const loc = await locateLsn(ctx, parseLsn('0/B00010'));
    expect(loc.lookup.timeline).toBe(1);
    expect(loc.fileName).toBe('00000002000000000000000B');
    const dest = path.join(await tempDir('ops-fetch'), 'out');
    const { result } = await fetchSegmentForLsn(ctx, parseLsn('0/B00010'), dest);
    expect(result.name).toBe('00000002000000000000000B');
    expect((await readFile(dest)).equals(loadFixture(MAJOR, '00000002000000000000000B'))).toBe(true);
  });

  it('follows a named timeline, falling back to its .partial', async () => {
    const loc = await locateLsn(ctx, parseLsn('0/B00010'), { timeline: 1 });
    expect(loc.fileName).toBe('00000001000000000000000B.partial');
    expect((await locateLsn(ctx, parseLsn('0/800010'))).fileName).toBe('000000010000000000000008');
  });

  it('says not found for a position in the gap', async () => {
    const dest = path.join(await tempDir('ops-fetch'), 'out');
    await expect(fetchSegmentForLsn(ctx, parseLsn('0/900000'), dest)).rejects.toThrow(
      /timeline 1 holds it \(history of timeline 2\), and none of 000000010000000000000009, 000000010000000000000009\.partial is archived/,
    );
  });
});

describe('wal-fetch --lsn', () => {
  it('opens the archive from the settings, restores the segment and says what it did', async () => {
    const dir = await tempDir('ops-posix');
    const posix = makeCtx(new PosixStorage({ root: dir }));
    const src = await tempDir('ops-src');
    for (const f of manifest.files) await pushFile(posix, await writeFixture(src, MAJOR, f.name));
    const { config } = loadConfig({ flags: { archive: `file://${dir}` }, env: {}, defaultConfigFile: '/nonexistent' });
    const dest = path.join(await tempDir('ops-fetch'), 'seg');
    const text = await fetchLsnCommand(config, silentLogger(), new AbortController().signal, { lsn: '0/800010', dest });
    expect(text).toBe(
      `restored 000000010000000000000008 to ${dest}: it holds 0/800010, which is on timeline 1 (history of timeline 2); ` +
        `1048576 bytes, sha256 ${manifest.files[1]!.sha256}`,
    );
    expect((await readFile(dest)).equals(loadFixture(MAJOR, '000000010000000000000008'))).toBe(true);
    await expect(
      fetchLsnCommand(config, silentLogger(), new AbortController().signal, { lsn: '0/8', timeline: 'x', dest }),
    ).rejects.toThrow(UsageError);
  });
});

describe('wal-delete', () => {
  it('plans the cut, keeps what the newest backup needs, and deletes oldest first', async () => {
    const plan = await planWalDelete(ctx, '0/800000');
    expect(plan.plan.delete.map((o) => o.fileName)).toEqual(['000000010000000000000007']);
    await expect(planWalDelete(ctx, '0/B00000')).rejects.toThrow(UsageError);
    const forced = await planWalDelete(ctx, '0/B00000', { force: true });
    expect(forced.plan.delete.map((o) => o.fileName)).toEqual([
      '000000010000000000000007',
      '000000010000000000000008',
      '00000001000000000000000A',
      '00000001000000000000000A.00000028.backup',
    ]);
  });

  it('stops between batches when interrupted, leaving the oldest WAL gone and the rest whole', async () => {
    const controller = new AbortController();
    const interruptible = { ...ctx, signal: controller.signal } as ArchiveContext;
    const forced = await planWalDelete(interruptible, '0/B00000', { force: true });
    const outcome = await executeWalDelete(interruptible, forced.plan, { batchSize: 2, onBatch: () => controller.abort() });
    expect(outcome).toMatchObject({ deleted: 2, batches: 1, interrupted: true });
    const left = (await listWal(ctx)).rows.map((r) => r.name);
    expect(left[0]).toBe('00000001000000000000000A');
    expect(await ctx.storage.head('archive.info')).toBeDefined();
    const rest = await executeWalDelete(ctx, (await planWalDelete(ctx, '0/B00000', { force: true })).plan);
    expect(rest).toMatchObject({ deleted: 2, interrupted: false });
    expect((await listWal(ctx)).rows.map((r) => r.name)).toEqual([
      '00000001000000000000000B.partial',
      '00000002.history',
      '00000002000000000000000B',
    ]);
    expect((await verifyArchive(ctx)).problems).toEqual([]);
  });

  it('refuses a cut it cannot parse, and archives without identity', async () => {
    await expect(planWalDelete(ctx, 'last tuesday')).rejects.toThrow(/expected a segment name/);
    await expect(verifyArchive(makeCtx(new MemoryStorage()))).rejects.toThrow(NotFoundError);
    await ctx.storage.delete(['archive.info', 'archive.info.copy']);
    await expect(listWal(ctx)).rejects.toThrow(IntegrityError);
  });
});
