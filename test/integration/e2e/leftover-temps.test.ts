/**
 * kill -9 in the middle of a write leaves a temp file; the next run that writes there removes it,
 * while a concurrent live writer's temp file survives. Real processes: writers are node children
 * running the built posix driver with a body that never ends (so they are truly mid-write when
 * killed), and the next runs are the real wal-push and wal-fetch launchers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTempName, writerTag } from '../../../src/common/temp-files.js';
import { loadFixture } from '../../support/fixtures.js';
import { REPO, runCli } from '../../support/walvault.js';

const SEG7 = '000000010000000000000007';
const SEG8 = '000000010000000000000008';
const root = mkdtempSync(path.join(tmpdir(), 'walvault-leftovers-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

/** Starts a process that is writing `key` into the posix archive at `archiveDir` and never finishes. */
function stuckWriter(archiveDir: string, key: string): ChildProcess {
  // The interval keeps the process alive: a body that never ends holds no handle of its own.
  const script = `
    setInterval(() => {}, 1000);
    const { PosixStorage } = await import(${JSON.stringify(path.join(REPO, 'dist', 'storage', 'posix.js'))});
    const { Readable } = await import('node:stream');
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(65536, 1));
    await new PosixStorage({ root: ${JSON.stringify(archiveDir)} }).put(${JSON.stringify(key)}, body);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  return child;
}

/** The temp file that process `pid` is writing in `dir` (waits for it to appear). */
async function tempOf(dir: string, pid: number): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const found = readdirSync(dir).find((n) => parseTempName(n)?.pid === pid);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`process ${pid} made no temp file in ${dir}`);
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function input(name: string): string {
  const d = mkdtempSync(path.join(root, 'in-'));
  writeFileSync(path.join(d, name), loadFixture(15, name));
  return path.join(d, name);
}

describe('temp files of killed writers', () => {
  it("posix archive: wal-push removes a kill -9 victim's temp and keeps a live writer's", async () => {
    const archive = path.join(root, 'archive');
    mkdirSync(archive);
    const env = { WALVAULT_ARCHIVE: `file://${archive}`, WALVAULT_NO_FASTPATH: '1' };
    const first = await runCli('wal-push', [input(SEG7)], { env });
    expect(first.code, first.stderr).toBe(0);
    const segDir = path.join(archive, 'wal', '00000001', '0000000100000000');

    const victim = stuckWriter(archive, `wal/00000001/0000000100000000/${SEG8}-victim.zst`);
    const live = stuckWriter(archive, `wal/00000001/0000000100000000/${SEG8}-live.zst`);
    const victimTemp = await tempOf(segDir, victim.pid!);
    const liveTemp = await tempOf(segDir, live.pid!);
    expect(parseTempName(victimTemp)?.tag).toBe(writerTag());
    await killed(victim);
    expect(readdirSync(segDir)).toContain(victimTemp); // kill -9 left it

    const res = await runCli('wal-push', [input(SEG8)], { env });
    expect(res.code, res.stderr).toBe(0);
    const after = readdirSync(segDir);
    expect(after).not.toContain(victimTemp);
    expect(after).toContain(liveTemp);
    expect(after.filter((n) => !n.startsWith('.'))).toHaveLength(2);
    await killed(live);
  });

  it("pg_wal: wal-fetch removes a dead wal-fetch's temp and keeps a live writer's", async () => {
    const archive = path.join(root, 'archive-f');
    mkdirSync(archive);
    const env = { WALVAULT_ARCHIVE: `file://${archive}`, WALVAULT_NO_FASTPATH: '1' };
    expect((await runCli('wal-push', [input(SEG7)], { env })).code).toBe(0);
    const pgWal = path.join(root, 'pg_wal');
    mkdirSync(pgWal);
    // A wal-fetch killed while writing %p = pg_wal/RECOVERYXLOG, and one still writing.
    const victim = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    children.push(victim);
    const live = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    children.push(live);
    const victimTemp = `.RECOVERYXLOG.${victim.pid}-${writerTag()}.0a0b0c0d.tmp`;
    const liveTemp = `.RECOVERYHISTORY.${live.pid}-${writerTag()}.0a0b0c0d.tmp`;
    writeFileSync(path.join(pgWal, victimTemp), 'half');
    writeFileSync(path.join(pgWal, liveTemp), 'half');
    await killed(victim);

    const res = await runCli('wal-fetch', [SEG7, path.join(pgWal, 'RECOVERYXLOG')], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(readdirSync(pgWal).sort()).toEqual([liveTemp, 'RECOVERYXLOG'].sort());
    await killed(live);
  });
});
