/**
 * Process-wide list of clusters this process started, so that a crashed or interrupted test run
 * (exit, SIGINT, SIGTERM) leaves no postmaster or temp directory behind. Best effort and
 * synchronous: exit handlers cannot wait for promises.
 */
import { readFileSync, rmSync } from 'node:fs';

export interface Registered {
  /** PID of the running postmaster, if any. */
  postmasterPid(): number | undefined;
  /** Directories to delete once the server is gone. */
  ownedDirs(): string[];
}

const live = new Set<Registered>();
let installed = false;

/** Alive and not a zombie: our own children stay zombies until the event loop reaps them. */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Immediate shutdown of every registered postmaster, then removal of their directories. */
export function cleanupAllSync(): void {
  const pids: number[] = [];
  for (const entry of live) {
    const pid = entry.postmasterPid();
    if (pid === undefined) continue;
    try {
      process.kill(pid, 'SIGQUIT');
      pids.push(pid);
    } catch {
      // Already gone.
    }
  }
  const deadline = Date.now() + 5_000;
  while (pids.some(processAlive) && Date.now() < deadline) sleepSync(20);
  for (const pid of pids.filter(processAlive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const entry of live) {
    for (const dir of entry.ownedDirs()) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // Best effort at exit; a leftover temp dir is not worth failing the exit for.
      }
    }
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  cleanupAllSync();
  // Keep the default meaning of the signal (terminate) unless someone else also listens for it.
  if (process.listenerCount(signal) === 1) {
    process.removeListener(signal, onSignal);
    process.kill(process.pid, signal);
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', cleanupAllSync);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

export function register(entry: Registered): void {
  install();
  live.add(entry);
}

export function unregister(entry: Registered): void {
  live.delete(entry);
}

/** Number of clusters not yet destroyed (for tests of the harness itself). */
export function liveClusterCount(): number {
  return live.size;
}
