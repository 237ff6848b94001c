/**
 * Leftover temp files of killed writers are removed by the next run that writes in that directory;
 * a live writer's temp (same host, pid alive) never is, another host's only after a long idle time,
 * and nothing that is not one of our temp names is touched. Dead and live writers are real processes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../../src/common/atomic-file.js';
import {
  STALE_FOREIGN_MS,
  isLeftover,
  parseTempName,
  pidAlive,
  sweepTempFiles,
  tempNameFor,
  writerTag,
} from '../../../src/common/temp-files.js';
import { markerDir, sweepMarkers } from '../../../src/push/markers.js';
import { Spool } from '../../../src/walstream/spool.js';
import { PosixStorage } from '../../../src/storage/posix.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { silentLogger } from '../../../src/common/log.js';
import { prefetchDir, runPrefetcher } from '../../../src/restore/prefetch.js';

const root = mkdtempSync(path.join(tmpdir(), 'walvault-temps-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

/** A pid that certainly belonged to a process that has exited (as a kill -9 victim's would). */
function deadPid(): number {
  for (;;) {
    const pid = spawnSync('true').pid!;
    if (!pidAlive(pid)) return pid;
  }
}

/** A running process (stands for a live writer in another process). */
function livePid(): number {
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  children.push(child);
  return child.pid!;
}

const OTHER_TAG = writerTag() === '0123456789' ? 'abcdefabcd' : '0123456789';
const temp = (target: string, pid: number, tag = writerTag()): string => `.${target}.${pid}-${tag}.1a2b3c4d.tmp`;
const hoursAgo = (h: number): Date => new Date(Date.now() - h * 3600_000);

let dir: string;
let n = 0;
beforeEach(() => {
  dir = path.join(root, `d${++n}`);
  mkdirSync(dir);
});

function make(name: string, mtime?: Date): void {
  writeFileSync(path.join(dir, name), 'half written');
  if (mtime) utimesSync(path.join(dir, name), mtime, mtime);
}

describe('temp names', () => {
  it('carry the pid and writer tag, and parse back', () => {
    const name = tempNameFor('000000010000000000000003');
    expect(name).toMatch(new RegExp(`^\\.000000010000000000000003\\.${process.pid}-[0-9a-f]{10}\\.[0-9a-f]{8}\\.tmp$`));
    expect(parseTempName(name)).toEqual({ target: '000000010000000000000003', pid: process.pid, tag: writerTag() });
    expect(parseTempName('.x.123.1a2b3c4d.tmp')).toEqual({ target: 'x' });
    expect(parseTempName('.x.1a2b3c4d5e6f.tmp')).toEqual({ target: 'x' });
    for (const other of ['x.tmp', '.x.tmp', '.cursor', '000000010000000000000003', '.x.12-zz.1a2b3c4d.tmp', '.x.123.1a2b.tmp']) {
      expect(parseTempName(other), other).toBeUndefined();
    }
  });

  it('a leftover is a dead writer of this host at once, anyone else only after the idle time', () => {
    const now = Date.now();
    expect(isLeftover(temp('a', deadPid()), now, { now })).toBe(true);
    expect(isLeftover(temp('a', process.pid), now - 10 * STALE_FOREIGN_MS, { now })).toBe(false);
    expect(isLeftover(temp('a', deadPid(), OTHER_TAG), now - STALE_FOREIGN_MS + 1000, { now })).toBe(false);
    expect(isLeftover(temp('a', deadPid(), OTHER_TAG), now - STALE_FOREIGN_MS, { now })).toBe(true);
    expect(isLeftover(temp('a', deadPid()), now, { now, target: (t) => t !== 'a' })).toBe(false);
  });
});

describe('sweepTempFiles', () => {
  it("removes dead writers' temps and keeps live writers', foreign fresh ones and everything not ours", () => {
    const dead = temp('000000010000000000000003', deadPid());
    const live = temp('000000010000000000000004', livePid());
    const liveOld = temp('000000010000000000000005', livePid());
    const ours = temp('000000010000000000000006', process.pid);
    const foreignFresh = temp('000000010000000000000007', 4242, OTHER_TAG);
    const foreignOld = temp('000000010000000000000008', 4242, OTHER_TAG);
    const legacyFresh = '.000000010000000000000009.777.1a2b3c4d.tmp';
    const legacyOld = '.00000001000000000000000A.1a2b3c4d5e6f.tmp';
    const notOurs = ['000000010000000000000002', '.cursor', 'notes.tmp', '.x.tmp', 'RECOVERYXLOG'];
    make(dead);
    make(live);
    make(liveOld, hoursAgo(48));
    make(ours, hoursAgo(48));
    make(foreignFresh);
    make(foreignOld, hoursAgo(2));
    make(legacyFresh);
    make(legacyOld, hoursAgo(2));
    for (const f of notOurs) make(f, hoursAgo(48));
    const dirNamed = temp('dir', deadPid());
    mkdirSync(path.join(dir, dirNamed)); // a directory with our name pattern: not a file we wrote

    expect(sweepTempFiles(dir).sort()).toEqual([dead, foreignOld, legacyOld].sort());
    expect(readdirSync(dir).sort()).toEqual([live, liveOld, ours, foreignFresh, legacyFresh, ...notOurs, dirNamed].sort());
  });

  it('a missing directory is no error', () => {
    expect(sweepTempFiles(path.join(dir, 'nope'))).toEqual([]);
  });
});

describe('the next run that owns the directory sweeps it', () => {
  it('writeFileAtomic (wal-fetch into pg_wal, markers, prefetch, spool history files)', async () => {
    const dead = temp('RECOVERYXLOG', deadPid());
    const live = temp('000000010000000000000004', livePid());
    make(dead);
    make(live);
    await writeFileAtomic(path.join(dir, 'RECOVERYXLOG'), Buffer.from('wal'));
    expect(readdirSync(dir).sort()).toEqual([live, 'RECOVERYXLOG'].sort());
  });

  it('a posix archive put sweeps the directory it writes into', async () => {
    const storage = new PosixStorage({ root: dir });
    mkdirSync(path.join(dir, 'wal'));
    const dead = temp('000000010000000000000003-ab.zst', deadPid());
    const live = temp('000000010000000000000004-cd.zst', livePid());
    writeFileSync(path.join(dir, 'wal', dead), 'x');
    writeFileSync(path.join(dir, 'wal', live), 'x');
    await storage.put('wal/k', Buffer.from('v'));
    expect(readdirSync(path.join(dir, 'wal')).sort()).toEqual([live, 'k'].sort());
  });

  it('the look-ahead uploader sweeps the marker directory', async () => {
    const state = path.join(dir, 'state');
    mkdirSync(markerDir(state), { recursive: true });
    const dead = temp('000000010000000000000003', deadPid());
    const live = temp('000000010000000000000004', livePid());
    writeFileSync(path.join(markerDir(state), dead), 'x');
    writeFileSync(path.join(markerDir(state), live), 'x');
    await sweepMarkers(state, path.join(dir, 'pg_wal'));
    expect(readdirSync(markerDir(state))).toEqual([live]);
  });

  it('the prefetcher sweeps its directory when it starts', async () => {
    const state = path.join(dir, 'state');
    mkdirSync(prefetchDir(state), { recursive: true });
    const dead = temp('000000010000000000000003', deadPid());
    const live = temp('000000010000000000000004', livePid());
    writeFileSync(path.join(prefetchDir(state), dead), 'x');
    writeFileSync(path.join(prefetchDir(state), live), 'x');
    const ctx = { storage: new MemoryStorage(), compression: { name: 'none' as const, level: 0 }, log: silentLogger() };
    await runPrefetcher(ctx, { stateDir: state, depth: 2, concurrency: 1, idleMs: 0, missingRetryMs: 10 });
    expect(readdirSync(prefetchDir(state))).toEqual([live]);
  });

  it('the streaming agent sweeps its spool when it opens it, keeping .partial segments', () => {
    const dead = temp('00000002.history', deadPid());
    const live = temp('00000003.history', livePid());
    make(dead);
    make(live);
    make('000000010000000000000003.partial');
    new Spool(dir, 1024 * 1024);
    expect(readdirSync(dir).sort()).toEqual([live, '000000010000000000000003.partial'].sort());
  });
});
