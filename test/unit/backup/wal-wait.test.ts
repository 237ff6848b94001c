import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushFile } from '../../../src/archive/push.js';
import { FIRST_POLL_MS, isArchived, neededWal, waitForWal, WalMissingError } from '../../../src/backup/wal-wait.js';
import { silentLogger } from '../../../src/common/log.js';
import { makeTimelineHistory } from '../../../src/segment/history.js';
import { parseLsn } from '../../../src/segment/lsn.js';
import { timeline } from '../../../src/segment/timeline.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { makeCtx, writeFixture } from '../archive/support.js';

const MIB = 1024 * 1024;
const SEG16 = 16 * MIB;

describe('neededWal', () => {
  it('covers the start and end segments of one timeline', () => {
    const n = neededWal({
      startLsn: parseLsn('0/2000028'),
      startTimeline: 1,
      endLsn: parseLsn('0/4000138'),
      endTimeline: 1,
      segSize: SEG16,
    });
    expect(n.segments).toEqual(['000000010000000000000002', '000000010000000000000003', '000000010000000000000004']);
    expect(n.histories).toEqual([]);
  });

  it('needs no byte of the segment an end LSN exactly on a boundary starts', () => {
    const n = neededWal({
      startLsn: parseLsn('0/2000028'),
      startTimeline: 1,
      endLsn: parseLsn('0/3000000'),
      endTimeline: 1,
      segSize: SEG16,
    });
    expect(n.segments).toEqual(['000000010000000000000002']);
    const one = neededWal({
      startLsn: parseLsn('0/2000028'),
      startTimeline: 1,
      endLsn: parseLsn('0/3000001'),
      endTimeline: 1,
      segSize: SEG16,
    });
    expect(one.segments).toEqual(['000000010000000000000002', '000000010000000000000003']);
  });

  it('crosses a log file boundary and names the history of a timeline above 1', () => {
    const n = neededWal({
      startLsn: parseLsn('1/FF000028'),
      startTimeline: 3,
      endLsn: parseLsn('2/100'),
      endTimeline: 3,
      segSize: SEG16,
    });
    expect(n.segments).toEqual(['0000000300000001000000FF', '000000030000000200000000']);
    expect(n.histories).toEqual(['00000003.history']);
  });

  it('follows a timeline switch inside the backup with the end timeline history', () => {
    const history = makeTimelineHistory(2, [{ parent: timeline(1), switchpoint: parseLsn('0/3800000'), reason: 'promoted' }]);
    const n = neededWal({
      startLsn: parseLsn('0/2000028'),
      startTimeline: 1,
      endLsn: parseLsn('0/4000100'),
      endTimeline: 2,
      segSize: SEG16,
      history,
    });
    // The segment holding the switch point is read from the new timeline's file.
    expect(n.segments).toEqual(['000000010000000000000002', '000000020000000000000003', '000000020000000000000004']);
    expect(n.histories).toEqual(['00000002.history']);
    expect(() =>
      neededWal({ startLsn: parseLsn('0/2000028'), startTimeline: 1, endLsn: parseLsn('0/4000100'), endTimeline: 2, segSize: SEG16 }),
    ).toThrow(/history of timeline 2 is needed/);
  });
});

describe('waitForWal against an archive of real WAL', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'walwait-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const needed = { segments: ['000000010000000000000007', '000000010000000000000008'], histories: [] };

  it('returns once every segment is archived, switching WAL when the last one is late', async () => {
    const ctx = makeCtx(new MemoryStorage());
    await pushFile(ctx, await writeFixture(dir, 15, '000000010000000000000007'));
    expect(await isArchived(ctx, '000000010000000000000008')).toBe(false);
    let switches = 0;
    await waitForWal(ctx, needed, {
      timeoutMs: 20_000,
      pollMs: 10,
      switchAfterMs: 0,
      log: silentLogger(),
      // The "server" finishes the segment when asked, and the archiver delivers it.
      switchWal: async () => {
        switches++;
        await pushFile(ctx, await writeFixture(dir, 15, '000000010000000000000008'));
      },
    });
    expect(switches).toBe(1);
  });

  it('fails after the timeout naming the first missing segment', async () => {
    const ctx = makeCtx(new MemoryStorage());
    await pushFile(ctx, await writeFixture(dir, 15, '000000010000000000000008'));
    const err = await waitForWal(ctx, needed, { timeoutMs: 50, pollMs: 10, log: silentLogger() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalMissingError);
    expect((err as Error).message).toMatch(
      /^unable to complete the backup: WAL file '000000010000000000000007' did not reach the archive within/,
    );
  });

  it('does not count a truncated object as archived', async () => {
    const ctx = makeCtx(new MemoryStorage());
    const pushed = await pushFile(ctx, await writeFixture(dir, 15, '000000010000000000000007'));
    const bytes = await ctx.storage.getBuffer(pushed.key);
    await ctx.storage.put(pushed.key, bytes.subarray(0, bytes.length - 10));
    expect(await isArchived(ctx, '000000010000000000000007')).toBe(false);
  });

  it('waits for the history file too', async () => {
    const ctx = makeCtx(new MemoryStorage());
    await pushFile(ctx, await writeFixture(dir, 15, '000000010000000000000007'));
    await pushFile(ctx, await writeFixture(dir, 15, '000000010000000000000008'));
    const err = await waitForWal(
      ctx,
      { ...needed, histories: ['00000002.history'] },
      { timeoutMs: 30, pollMs: 10, log: silentLogger() },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/'00000002\.history' did not reach the archive/);
    await pushFile(ctx, await writeFixture(dir, 15, '00000002.history'));
    await waitForWal(ctx, { ...needed, histories: ['00000002.history'] }, { timeoutMs: 30, pollMs: 10, log: silentLogger() });
  });

  it('looks again soon after the first miss, then backs off to pollMs', async () => {
    const ctx = makeCtx(new MemoryStorage());
    await pushFile(ctx, await writeFixture(dir, 15, '000000010000000000000007'));
    // Count the lookups of the missing segment: each lists its versions once.
    const lookups: number[] = [];
    const list = ctx.storage.list.bind(ctx.storage);
    ctx.storage.list = (prefix, o) => {
      if (prefix.includes('000000010000000000000008')) lookups.push(Date.now());
      return list(prefix, o);
    };
    const started = Date.now();
    await waitForWal(ctx, needed, { timeoutMs: 1_000, pollMs: 400, log: silentLogger() }).catch(() => undefined);
    const gaps = lookups.slice(1).map((t, i) => t - lookups[i]!);
    expect(lookups[0]! - started).toBeLessThan(FIRST_POLL_MS);
    // 50, 100, 200, 400, 400 ... (timers may fire late on a busy machine, never early)
    expect(gaps[0]).toBeGreaterThanOrEqual(FIRST_POLL_MS - 2);
    expect(gaps[1]).toBeGreaterThanOrEqual(2 * FIRST_POLL_MS - 2);
    expect(gaps[2]).toBeGreaterThanOrEqual(4 * FIRST_POLL_MS - 2);
    expect(gaps.length).toBeGreaterThanOrEqual(4);
    expect(gaps.length).toBeLessThanOrEqual(6);
  });
});
