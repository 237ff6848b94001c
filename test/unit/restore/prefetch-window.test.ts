/**
 * The prefetcher's window, with segment names as typed values (timeline, segment number): it fills
 * the segments after the cursor on the cursor's timeline, and after the cursor moves to another
 * timeline it fetches that timeline's next segment, never the old timeline's.
 */
import { readdir } from 'node:fs/promises';
import { afterAll, expect, it } from 'vitest';
import { pushFile } from '../../../src/archive/push.js';
import { sleep } from '../../../src/common/retry.js';
import { prefetchDir, runPrefetcher, setCursor } from '../../../src/restore/prefetch.js';
import { makeCtx, newStorage, removeTempDirs, tempDir, writeFixture } from '../archive/support.js';

afterAll(removeTempDirs);

async function prefetched(stateDir: string): Promise<string[]> {
  return (await readdir(prefetchDir(stateDir)).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
}

async function until(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await sleep(50);
  }
}

it('fetches the next segments of the cursor timeline, then follows the cursor to a new timeline', async () => {
  const storage = await newStorage('posix');
  const ctx = makeCtx(storage);
  const input = await tempDir('wal');
  for (const n of ['000000010000000000000007', '000000010000000000000008', '00000002000000000000000B']) {
    await pushFile(ctx, await writeFixture(input, 15, n), n);
  }
  const stateDir = await tempDir('state');
  await setCursor(stateDir, '000000010000000000000006');
  const controller = new AbortController();
  const run = runPrefetcher(
    { ...makeCtx(storage), signal: controller.signal },
    { stateDir, depth: 4, concurrency: 2, idleMs: 60_000, missingRetryMs: 100 },
  );
  try {
    await until(async () => (await prefetched(stateDir)).length >= 2);
    expect(await prefetched(stateDir)).toEqual(['000000010000000000000007', '000000010000000000000008']);
    // Recovery switched to timeline 2 at segment 0A: its next segment is 2/0B, not 1/0B.
    await setCursor(stateDir, '00000002000000000000000A');
    await until(async () => (await prefetched(stateDir)).includes('00000002000000000000000B'));
    expect((await prefetched(stateDir)).filter((n) => n.startsWith('00000001') && n > '00000001000000000000000A')).toEqual([]);
  } finally {
    controller.abort();
    await run;
  }
});
