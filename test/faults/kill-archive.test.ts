/**
 * kill -9 loops against archiving and restoring, on a real PostgreSQL under a real write load with
 * archive_command = wal-push:
 *   1. wal-push as run by PostgreSQL's archiver (look-ahead off, so every call is a real upload);
 *   2. the detached look-ahead uploader (wal-push-ahead) that wal-push starts for a backlog;
 *   3. `walvault daemon`, restarted after each kill;
 *   4. wal-fetch (through its launcher, as restore_command runs it) of archived segments.
 * archive_command records every exit code, so each call PostgreSQL made is checked: only our kills
 * may fail (137, and exactly as many as we landed), every retry after a kill must succeed. At the
 * end every segment PostgreSQL marked .done is in the archive and byte-identical, and a base backup
 * taken before the loops recovers from the archive to every committed row.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster, defaultMajor, useClusterPool } from '../support/cluster.js';
import { bin, pgOwnedDir, REPO, runCli, waitForArchiveDone, walCommands, writeConfig } from '../support/walvault.js';
import { createLoadTable, maxId, startLoad, type Load } from '../support/load.js';
import {
  argv,
  children,
  descendants,
  faultCount,
  figures,
  kill9,
  running,
  seededRandom,
  sleep,
  tempFiles,
  walvaultProcesses,
} from '../support/faults.js';
import { openArchiveReader, type ArchiveReader } from '../integration/stream/agent.js';
import type { BaseBackup } from '../../tools/pgcluster/index.js';
import { pgUser, spawnIdentity } from '../../tools/pgcluster/user.js';
import { stateDirFor } from '../../src/push/state-dir.js';

const SEG = 1024 * 1024;
const KILLS = faultCount(20);
/** Kills that may reach a wal-push already exiting (see closePhase). */
const RACED_KILLS = 2;
const SEGMENT = /^[0-9A-F]{24}$/;

interface Phase {
  kills: number;
  /** Kills that found work waiting (.ready files) or a node process not yet finished. */
  midOperation: number;
  /** archive_command calls (lines in the exit-code log) during the phase. */
  pushes: number;
  wrongExit: string[];
  /** Segments PostgreSQL marked .done while the phase ran. */
  done: Set<string>;
}

function newPhase(): Phase {
  return { kills: 0, midOperation: 0, pushes: 0, wrongExit: [], done: new Set() };
}

async function until<T>(fn: () => T | undefined | false, timeoutMs: number, what: string, everyMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

describe('kill -9 of wal-push, the look-ahead uploader, walvault daemon and wal-fetch under load', { timeout: 420_000 }, () => {
  const pool = useClusterPool();
  const rnd = seededRandom('kill-archive');
  const phases = { push: newPhase(), ahead: newPhase(), daemon: newPhase() };
  const fetch = { kills: 0, completedFirst: 0, fetches: 0, wrongExit: [] as string[], wrongBytes: [] as string[] };
  let root: string;
  let archiveDir: string;
  let stateBase: string;
  let stateDir: string;
  let configFile: string;
  let rcLog: string;
  let primary: PgCluster;
  let backup: BaseBackup;
  let load: Load | undefined;
  let reader: ArchiveReader;
  let daemon: ChildProcess | undefined;
  let rcSeen = 0;

  const config = (lookahead: number): void => {
    writeConfig(configFile, { archive: `file://${archiveDir}`, 'push-lookahead': lookahead, 'push-parallel': 2, 'fetch-prefetch': 0 });
  };
  const rcLines = (): Array<{ name: string; rc: number }> =>
    existsSync(rcLog)
      ? readFileSync(rcLog, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => ({ name: l.split(' ')[0]!, rc: Number(l.split(' ')[1]) }))
      : [];
  const doneNow = (): string[] =>
    readdirSync(join(primary.walDir(), 'archive_status'))
      .filter((f) => f.endsWith('.done'))
      .map((f) => f.slice(0, -5))
      .filter((n) => SEGMENT.test(n));
  const readyCount = (): number => readdirSync(join(primary.walDir(), 'archive_status')).filter((f) => f.endsWith('.ready')).length;
  /** Segments for the archiver and uploaders to work on (the load alone makes one every ~2 s). */
  const burst = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await primary.query('INSERT INTO switches VALUES (1); SELECT pg_switch_wal()');
  };
  /** Closes a phase: its archive_command calls, which of them failed, and what became .done meanwhile. */
  const closePhase = (p: Phase, allowedKills: number, before: Set<string>): void => {
    const lines = rcLines();
    const mine = lines.slice(rcSeen);
    rcSeen = lines.length;
    p.pushes = mine.length;
    let killed = 0;
    for (const l of mine) {
      if (l.rc === 137) killed++;
      else if (l.rc !== 0) p.wrongExit.push(`${l.name} exited ${l.rc}`);
    }
    // A SIGKILL that reaches a call already on its way out (its work done, exit 0 logged) kills
    // nothing: such a call shows up above as a clean 0. So deaths may fall short of the kills sent by
    // those few, never exceed them; the phase's kill count becomes the deaths actually seen.
    if (killed > allowedKills || killed < allowedKills - RACED_KILLS) {
      p.wrongExit.push(`${killed} calls died of SIGKILL, ${allowedKills} kills landed`);
    }
    if (allowedKills > 0) p.kills = Math.min(p.kills, killed);
    for (const n of doneNow()) if (!before.has(n)) p.done.add(n);
  };

  beforeAll(async () => {
    root = pgOwnedDir(mkdtempSync('/tmp/walvault-faults-archive-'));
    archiveDir = pgOwnedDir(join(root, 'archive'));
    stateBase = pgOwnedDir(join(root, 'state'));
    configFile = join(root, 'walvault.conf');
    rcLog = join(root, 'archive-command-exits.log');
    config(0);
    const { archiveCommand } = walCommands({ configFile, stateDir: stateBase });
    primary = pool.track(
      await PgCluster.create({
        major: defaultMajor(),
        walSegSizeMb: 1,
        config: {
          archive_mode: 'on',
          // Every call's exit code is logged (a SIGKILLed wal-push shows as 137). A death by signal
          // is then handed to PostgreSQL as an ordinary failure (3): for 137 the archiver would exit
          // and the postmaster restart it only up to a minute later; for 3 it retries after a
          // second, which is what the restarted archiver would do, just sooner.
          archive_command: `${archiveCommand}; rc=$?; echo "%f $rc" >> '${rcLog}'; [ $rc -gt 125 ] && exit 3; exit $rc`,
          // Keep every segment (and its .done) in pg_wal for the byte comparison at the end.
          wal_keep_size: '4GB',
          max_wal_size: '4GB',
        },
      }),
    );
    await primary.start();
    stateDir = stateDirFor(primary.dataDir, { WALVAULT_STATE_DIR: stateBase });
    await createLoadTable(primary);
    await primary.query('CREATE TABLE switches (x int)');
    backup = await primary.baseBackup({ waitForArchive: true });
    rcSeen = rcLines().length;
    reader = await openArchiveReader(`file://${archiveDir}`, SEG);
    load = startLoad(primary);
  });

  afterAll(async () => {
    await load?.stop().catch(() => undefined);
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    // A detached uploader started by wal-push (it would exit by itself after 2 s idle).
    const ahead = existsSync(join(stateDir ?? '/nonexistent', 'ahead.pid')) ? Number(readFileSync(join(stateDir, 'ahead.pid'), 'utf8')) : 0;
    if (ahead > 0 && walvaultProcesses([ahead], 'wal-push-ahead').length > 0) kill9(ahead);
    await reader?.close();
    await pool.destroyAll();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('wal-push killed at random points: the retry succeeds, nothing else fails', async () => {
    const p = phases.push;
    const before = new Set(doneNow());
    const switcher = setInterval(() => void burst(1).catch(() => undefined), 2000);
    const segmentOf = (pid: number): string => argv(pid).at(-1) ?? '';
    let lastKilled = '';
    try {
      while (p.kills < KILLS) {
        // Not the retry of the segment just killed: kills spread over segments, and retries are checked.
        const pid = await until(
          () => walvaultProcesses(descendants(primary.pid!), 'wal-push').find((x) => segmentOf(x) !== lastKilled),
          60_000,
          'a wal-push run by the archiver',
        ).catch(async (err: unknown) => {
          throw new Error(`${String(err)}; last exits: ${JSON.stringify(rcLines().slice(-5))}\n${await primary.logTail(20)}`);
        });
        const segment = segmentOf(pid);
        await sleep(rnd.int(0, 600));
        if (kill9(pid)) {
          p.kills++;
          p.midOperation++;
          lastKilled = segment;
        }
      }
    } finally {
      clearInterval(switcher);
    }
    // The archiver logs each call after it ended; wait for the kills to show up.
    await until(
      () =>
        rcLines()
          .slice(rcSeen)
          .filter((l) => l.rc === 137).length >= p.kills || undefined,
      30_000,
      'the kills in the exit log',
      100,
    ).catch(() => undefined);
    closePhase(p, p.kills, before);
    expect(p.kills).toBeGreaterThanOrEqual(KILLS - RACED_KILLS);
    expect(p.wrongExit).toEqual([]);
  });

  it('the look-ahead uploader killed at random points: archive_command never fails', async () => {
    const p = phases.ahead;
    const before = new Set(doneNow());
    config(16);
    const aheadPid = (): number | undefined => {
      try {
        const pid = Number(readFileSync(join(stateDir, 'ahead.pid'), 'utf8'));
        return running(pid) && walvaultProcesses([pid], 'wal-push-ahead').length > 0 ? pid : undefined;
      } catch {
        return undefined;
      }
    };
    let tries = 0;
    while (p.kills < KILLS) {
      if (++tries > KILLS * 4) throw new Error(`only ${p.kills} uploader kills in ${tries - 1} bursts`);
      // A backlog makes the next wal-push start the uploader.
      await burst(2);
      const pid = await until(aheadPid, 15_000, 'the look-ahead uploader').catch(() => undefined);
      if (pid === undefined) continue;
      await sleep(rnd.int(0, 300));
      const waiting = readyCount();
      if (kill9(pid)) {
        p.kills++;
        if (waiting > 0) p.midOperation++;
      }
    }
    config(0);
    await until(() => aheadPid() === undefined || undefined, 30_000, 'the last uploader to finish', 100);
    closePhase(p, 0, before);
    expect(p.kills).toBeGreaterThanOrEqual(KILLS);
    expect(p.midOperation).toBeGreaterThan(0);
    expect(p.wrongExit).toEqual([]);
  });

  it('walvault daemon killed at random points and restarted: archive_command never fails', async () => {
    const p = phases.daemon;
    const before = new Set(doneNow());
    const start = (): { child: ChildProcess; log: () => string } => {
      let stderr = '';
      const child = spawn(
        process.execPath,
        [join(REPO, 'dist', 'cli', 'walvault.js'), 'daemon', '--pgdata', primary.dataDir, '--log-level', 'info'],
        {
          env: { ...process.env, WALVAULT_CONFIG: configFile, WALVAULT_STATE_DIR: stateBase },
          stdio: ['ignore', 'ignore', 'pipe'],
          cwd: '/',
          ...spawnIdentity(pgUser()),
        },
      );
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      return { child, log: () => stderr };
    };
    while (p.kills < KILLS) {
      const d = start();
      daemon = d.child;
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
        d.child.once('exit', (code, signal) => r({ code, signal })),
      );
      await burst(2);
      await until(
        () => d.log().includes('"walvault daemon starting"') || d.child.exitCode !== null || undefined,
        30_000,
        'the daemon to start',
        20,
      );
      await sleep(rnd.int(0, 400));
      const waiting = readyCount();
      const landed = kill9(d.child.pid!);
      const { code, signal } = await exited;
      if (landed && signal === 'SIGKILL') {
        p.kills++;
        if (waiting > 0) p.midOperation++;
      } else {
        p.wrongExit.push(`daemon exited by itself (code ${code}, signal ${signal}): ${d.log().slice(-400)}`);
        break;
      }
    }
    daemon = undefined;
    closePhase(p, 0, before);
    expect(p.wrongExit).toEqual([]);
    expect(p.kills).toBeGreaterThanOrEqual(KILLS);
    expect(p.midOperation).toBeGreaterThan(0);
  });

  it('wal-fetch killed at random points: never exit 0 or 1 for a cut-short fetch, and the retry restores the bytes', async () => {
    const outDir = join(root, 'fetched');
    const env = { WALVAULT_CONFIG: configFile, WALVAULT_FETCH_PREFETCH: '0' };
    const available = doneNow().filter((n) => existsSync(join(primary.walDir(), n)));
    expect(available.length).toBeGreaterThan(10);
    let attempts = 0;
    while (fetch.kills < KILLS) {
      if (++attempts > KILLS * 4) throw new Error(`only ${fetch.kills} wal-fetch kills in ${attempts - 1} attempts`);
      const name = available[rnd.int(0, available.length - 1)]!;
      const original = readFileSync(join(primary.walDir(), name));
      rmSync(outDir, { recursive: true, force: true });
      pgOwnedDir(outDir);
      const dest = join(outDir, name);
      const launcher = spawn(bin('wal-fetch'), [name, dest], {
        cwd: REPO,
        env: { ...process.env, WALVAULT_NODE: process.execPath, ...env },
        stdio: 'ignore',
      });
      const exited = new Promise<number | null>((r) => launcher.once('exit', (code) => r(code)));
      const node = await until(
        () => walvaultProcesses(children(launcher.pid!), 'wal-fetch')[0] ?? (launcher.exitCode !== null ? -1 : undefined),
        20_000,
        'the wal-fetch node process',
      );
      // Up to about one run of node: some kills land before the download, some during it, a few miss.
      await sleep(rnd.int(0, 700));
      const landed = node > 0 && kill9(node);
      const code = await exited;
      fetch.fetches++;
      // A SIGKILL sent in the instant node is already exiting does not kill it: it exits 0 with the
      // file complete. What PostgreSQL relies on is "0 means the whole file is at %p", so judge that.
      const finishedFirst = code === 0 && existsSync(dest) && readFileSync(dest).equals(original);
      if (landed && !finishedFirst) {
        fetch.kills++;
        // The launcher turns node's death into 128: PostgreSQL stops recovery, never ends it early.
        if (code !== 128) fetch.wrongExit.push(`killed wal-fetch of ${name} exited ${code}`);
      } else {
        fetch.completedFirst++;
        if (code !== 0) fetch.wrongExit.push(`wal-fetch of ${name} exited ${code}`);
      }
      // %p is either absent or complete: never a torn file under PostgreSQL's name.
      if (existsSync(dest) && !readFileSync(dest).equals(original)) fetch.wrongBytes.push(`${name} torn at %p after the kill`);
      const again = await runCli('wal-fetch', [name, dest], { env });
      fetch.fetches++;
      if (again.code !== 0) fetch.wrongExit.push(`retry of ${name} exited ${again.code}: ${again.stderr.slice(-300)}`);
      else if (!readFileSync(dest).equals(original)) fetch.wrongBytes.push(`${name} differs after the retry`);
    }
    expect(fetch.wrongExit).toEqual([]);
    expect(fetch.wrongBytes).toEqual([]);
    expect(fetch.kills).toBeGreaterThanOrEqual(KILLS);
  });

  it('afterwards every .done segment is in the archive, byte-identical, and recovery reaches every row', async () => {
    await load!.stop();
    const committed = load!.committed();
    load = undefined;
    // Drain the backlog with the look-ahead uploader (parallel uploads), then check everything.
    config(16);
    await primary.switchWal();
    await waitForArchiveDone(primary, 200_000);
    config(0);
    const all = doneNow();
    const lost: string[] = [];
    for (const name of all) {
      const path = join(primary.walDir(), name);
      if (!existsSync(path)) continue;
      const archived = await reader.read(name).catch((err: unknown) => {
        lost.push(`${name}: ${String(err)}`);
        return undefined;
      });
      if (archived && !archived.equals(readFileSync(path))) lost.push(`${name}: differs`);
    }
    const lostIn = (p: Phase): number => lost.filter((l) => p.done.has(l.slice(0, 24))).length;
    const stats = (
      await primary.query<{ archived_count: string; last_archived_wal: string; failed_count: string }>(
        'SELECT archived_count::text, last_archived_wal, failed_count::text FROM pg_stat_archiver',
      )
    )[0]!;
    const lastArchived = await reader.read(stats.last_archived_wal).then(
      (b) => b.equals(readFileSync(join(primary.walDir(), stats.last_archived_wal))),
      () => false,
    );

    // With the prefetcher (one Node start per segment would make this the slowest step).
    const { restoreCommand } = walCommands({ configFile, stateDir: stateBase, extraEnv: { WALVAULT_FETCH_PREFETCH: '8' } });
    const restored = pool.track(
      await PgCluster.fromBackup(backup.dir, { recovery: { restoreCommand, targetAction: 'promote' }, config: { archive_mode: 'off' } }),
    );
    let recovered: number;
    try {
      await restored.start();
      await restored.waitForRecoveryEnd({ timeoutMs: 300_000 });
      recovered = await maxId(restored);
    } finally {
      const pidFile = join(stateDirFor(restored.dataDir, { WALVAULT_STATE_DIR: stateBase }), 'prefetch.pid');
      const prefetcher = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
      if (prefetcher > 0 && walvaultProcesses([prefetcher], 'wal-prefetch').length > 0) kill9(prefetcher);
      await restored.destroy();
    }

    const leftovers = tempFiles(archiveDir).length;
    const line = (label: string, p: Phase, what: string): void => {
      figures(label, {
        [what]: p.kills,
        'of them with work in flight': p.midOperation,
        'archive_command calls checked': p.pushes,
        'segments archived meanwhile': p.done.size,
        'WAL lost': lostIn(p),
        'wrong exit codes': p.wrongExit.length,
      });
    };
    line('wal-push kill-9', phases.push, 'kills');
    line('look-ahead uploader kill-9', phases.ahead, 'kills');
    line('walvault daemon kill-9', phases.daemon, 'kills');
    figures('wal-fetch kill-9', {
      kills: fetch.kills,
      'finished before the kill': fetch.completedFirst,
      'fetches checked': fetch.fetches,
      'torn or wrong files': fetch.wrongBytes.length,
      'wrong exit codes': fetch.wrongExit.length,
    });
    figures('kill-archive totals', {
      'segments .done checked': all.length,
      'WAL lost': lost.length,
      'temp files left in the archive by kills (invisible to readers)': leftovers,
      [`pg_stat_archiver archived (failed ${stats.failed_count})`]: stats.archived_count,
      [`rows recovered of ${committed}`]: recovered,
    });

    expect(lost).toEqual([]);
    expect(lastArchived, `pg_stat_archiver.last_archived_wal ${stats.last_archived_wal} in the archive`).toBe(true);
    expect(Number(stats.failed_count)).toBeGreaterThanOrEqual(phases.push.kills);
    expect(all.length).toBeGreaterThan(phases.push.done.size);
    expect(recovered).toBe(committed);
  });
});
