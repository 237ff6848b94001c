// Process helpers for the benchmarks: timed `sh -c` runs as the PostgreSQL OS user (the way
// PostgreSQL runs archive_command and restore_command), /proc readings, and tracking of every
// process we start so that an interrupted run leaves nothing behind.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** The environment PostgreSQL's archiver typically has: no shell profile, C locale. */
export function commandEnv(extra = {}) {
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/tmp',
    LANG: 'C',
    LC_ALL: 'C',
    ...extra,
  };
}

const tracked = new Set();

/** Children still running (long-lived ones: servers, receivers). Killed by killTracked(). */
export function track(child) {
  tracked.add(child);
  child.once('exit', () => tracked.delete(child));
  return child;
}

export function killTracked(signal = 'SIGKILL') {
  for (const child of tracked) {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Runs `sh -c cmd` and resolves with its wall time in ms (spawn to exit), exit code and output.
 * `ids` = { uid, gid } to run as another user (we are root), or {}.
 */
export function timedSh(cmd, { cwd, env = commandEnv(), ids = {}, timeoutMs = 300_000 } = {}) {
  return new Promise((resolve, reject) => {
    const cpu0 = reapedChildrenCpuMs();
    const t0 = performance.now();
    const child = spawn('/bin/sh', ['-c', cmd], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], ...ids });
    track(child);
    const out = [];
    const err = [];
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // 'exit', not 'close': a detached helper that inherited a pipe would keep 'close' waiting,
    // while PostgreSQL only waits for the command's own exit status.
    child.once('exit', (code, signal) => {
      const ms = performance.now() - t0;
      // Exact only while no other child of ours exits meanwhile (true for the sequential loops).
      const cpuMs = reapedChildrenCpuMs() - cpu0;
      clearTimeout(timer);
      // Give the pipes a moment to deliver what the command printed before it exited.
      setImmediate(() =>
        resolve({ ms, cpuMs, code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
      );
    });
  });
}

/** Like timedSh but a non-zero exit throws with the command's output. */
export async function sh(cmd, opts = {}) {
  const r = await timedSh(cmd, opts);
  if (r.code !== 0) throw new Error(`command failed (exit ${r.code ?? r.signal}): ${cmd}\n${(r.stderr || r.stdout).trim()}`);
  return r;
}

const CLK_TCK = 100; // getconf CLK_TCK on Linux x86-64

/** CPU seconds of a live process from /proc/<pid>/stat: user, system, and reaped children. */
export function procCpu(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime 15, cutime 16, cstime 17.
  const n = (i) => Number(fields[i - 3]) / CLK_TCK;
  return { user: n(14), system: n(15), childUser: n(16), childSystem: n(17) };
}

/**
 * CPU ms (user + system) of all children this process has reaped so far, descendants they reaped
 * included: the kernel adds a child's times to its parent's cutime/cstime when it is waited for.
 * Detached helpers re-parented to init are not counted. Resolution: one clock tick (10 ms).
 */
export function reapedChildrenCpuMs() {
  const c = procCpu(process.pid);
  return (c.childUser + c.childSystem) * 1000;
}

/** Peak resident set size (VmHWM) in bytes. */
export function procPeakRss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}

export function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * PIDs whose command line contains `needle`. The needle is always a path unique to this run (a
 * temp directory), so this finds only helpers our own commands started (detached uploaders,
 * prefetchers, pgBackRest async workers), never anyone else's processes.
 */
export function pidsWithArg(needle) {
  const found = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(needle) && alive(pid)) found.push(pid);
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until none of the processes started with `needle` in their arguments is alive; kills leftovers. */
export async function waitHelpersGone(needle, { graceMs = 15_000 } = {}) {
  const deadline = Date.now() + graceMs;
  let pids = pidsWithArg(needle);
  while (pids.length > 0 && Date.now() < deadline) {
    await sleep(100);
    pids = pids.filter(alive);
  }
  const killed = pids.filter(alive);
  for (const pid of killed) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  return killed.length;
}

/** Stops a child: `signal`, then SIGKILL after `timeoutMs`. Resolves once it has exited. */
export function stopChild(child, signal = 'SIGTERM', timeoutMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}
