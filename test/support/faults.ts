/**
 * Shared pieces of the fault suite (test/faults): the seed every random choice comes from, the
 * short (CI) and long (benchmark machine) sizes, the one-line figures each file prints at its end,
 * and finding and killing the processes walvault runs (as children of PostgreSQL or detached).
 *
 *   WALVAULT_FAULTS_SEED=<n>   replay a run's random choices (each file prints its seed first)
 *   WALVAULT_FAULTS_LONG=1     ten times the kills, for the benchmark machine
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export const LONG = process.env['WALVAULT_FAULTS_LONG'] === '1';
// Read once here, then kept out of the environment the suite's walvault processes inherit: walvault
// refuses unknown WALVAULT_* variables, so a replayed seed would otherwise fail every call.
const SEED_TEXT = process.env['WALVAULT_FAULTS_SEED'];
delete process.env['WALVAULT_FAULTS_SEED'];
delete process.env['WALVAULT_FAULTS_LONG'];

/** `short` kills per loop in CI, ten times that with WALVAULT_FAULTS_LONG=1. */
export function faultCount(short: number): number {
  return LONG ? short * 10 : short;
}

/**
 * A deterministic random source (mulberry32) seeded from WALVAULT_FAULTS_SEED or the clock; the seed
 * is printed so a failing run can be replayed. Timing still varies between runs; the choices do not.
 */
export function seededRandom(label: string): { seed: number; next: () => number; int: (lo: number, hi: number) => number } {
  const env = SEED_TEXT;
  const seed = env !== undefined && env.trim() !== '' ? Number(env) >>> 0 : (Date.now() ^ (process.pid << 8)) >>> 0;
  console.log(`faults ${label}: seed ${seed} (WALVAULT_FAULTS_SEED=${seed} replays it)${LONG ? ', long mode' : ''}`);
  let a = seed;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { seed, next, int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)) };
}

/** The figures line a fault file prints at its end, e.g. `faults wal-push kill-9: 24 kills, ...`. */
export function figures(label: string, parts: Record<string, number | string>): string {
  const line = `faults ${label}: ${Object.entries(parts)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ')}`;
  console.log(line);
  return line;
}

// ------------------------------------------------------------------ processes

export function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** All descendants of `pid` (children first, breadth first). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of children(queue.shift()!)) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

export function argv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

export function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie: a SIGKILL now interrupts it rather than hitting a finished process. */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function launcherCommand(pid: number): string | undefined {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    return env.find((e) => e.startsWith('WALVAULT_FASTPATH_COMMAND='))?.slice('WALVAULT_FASTPATH_COMMAND='.length);
  } catch {
    return undefined;
  }
}

/**
 * The walvault node processes running `subcommand` (`wal-push`, `wal-push-ahead`, ...) among `pids`.
 * The wal-push and wal-fetch launchers pass no subcommand on the command line but name it in
 * WALVAULT_FASTPATH_COMMAND.
 */
export function walvaultProcesses(pids: number[], subcommand: string): number[] {
  return pids.filter((p) => {
    const a = argv(p);
    // The launchers start the bundle (dist/bundle/walvault.js, or wal-push.js for the archiver's
    // hook); the detached helpers and tests may start dist/cli/walvault.js itself.
    const entry = a.findIndex((x) => /\/dist\/(cli\/walvault|bundle\/walvault|bundle\/wal-push)\.js$/.test(x));
    if (entry < 0) return false;
    const viaLauncher = launcherCommand(p);
    return viaLauncher !== undefined ? viaLauncher === subcommand : a[entry + 1] === subcommand;
  });
}

/** SIGKILL if it is still running; true when the signal hit a live process. */
export function kill9(pid: number): boolean {
  if (!running(pid)) return false;
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Temp files a posix put leaves behind when killed (`.<name>.<random>.tmp`), anywhere under `dir`. */
export function tempFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.startsWith('.') && e.name.endsWith('.tmp')) out.push(join(d, e.name));
    }
  };
  walk(dir);
  return out;
}
