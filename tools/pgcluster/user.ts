/**
 * PostgreSQL refuses to run as root. When we are root, every PostgreSQL binary runs as an
 * unprivileged OS user instead: `WALVAULT_PG_USER` if set, else `postgres` if it exists, else a
 * system user `walvault-pg` that we create. Otherwise the binaries run as ourselves.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, cpSync, existsSync, lstatSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { chown, lstat, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describeCause } from '../../src/common/errors.js';
import { ClusterError } from './errors.js';
import type { PgBinaries } from './binaries.js';

export interface PgUser {
  name: string;
  uid: number;
  gid: number;
  /** True when the binaries run as this process's own user (no uid switch). */
  isCurrent: boolean;
}

const CREATED_USER = 'walvault-pg';
/** useradd: "username already in use" and "cannot lock /etc/passwd" (another useradd is running). */
const USERADD_EXISTS = 9;
const USERADD_LOCKED = 10;

let cached: PgUser | undefined;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function lookupUser(name: string): PgUser | null {
  let line: string | undefined;
  try {
    line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch (err) {
    // getent exits 2 for "no such user"; anything else (e.g. no getent at all) falls back to the file.
    if ((err as { status?: number }).status === 2) return null;
    line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${name}:`));
  }
  if (!line) return null;
  const fields = line.split(':');
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return null;
  return { name, uid, gid, isCurrent: false };
}

function createSystemUser(log?: (msg: string) => void): PgUser {
  for (let attempt = 1; attempt <= 20; attempt++) {
    const existing = lookupUser(CREATED_USER);
    if (existing) return existing;
    try {
      execFileSync(
        'useradd',
        ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--user-group', CREATED_USER],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      log?.(`created system user ${CREATED_USER} to run PostgreSQL`);
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === USERADD_EXISTS) continue;
      if (status === USERADD_LOCKED) {
        sleepSync(100 * attempt);
        continue;
      }
      throw new ClusterError(`unable to create OS user '${CREATED_USER}': ${describeCause(err)}`, { cause: err });
    }
  }
  const created = lookupUser(CREATED_USER);
  if (!created) throw new ClusterError(`unable to create OS user '${CREATED_USER}': still missing after useradd`);
  return created;
}

/** The user PostgreSQL binaries run as. Looked up (and created if needed) once per process. */
export function pgUser(log?: (msg: string) => void): PgUser {
  if (cached) return cached;
  const getuid = process.getuid?.bind(process);
  const getgid = process.getgid?.bind(process);
  if (!getuid || !getgid) throw new ClusterError(`unable to choose OS user 'postgres': not a POSIX platform`);
  if (getuid() !== 0) {
    cached = { name: os.userInfo().username, uid: getuid(), gid: getgid(), isCurrent: true };
    return cached;
  }
  const wanted = process.env['WALVAULT_PG_USER'];
  if (wanted) {
    const u = lookupUser(wanted);
    if (!u) throw new ClusterError(`unable to find OS user '${wanted}': named by WALVAULT_PG_USER but not present`);
    if (u.uid === 0) throw new ClusterError(`unable to use OS user '${wanted}': PostgreSQL refuses to run as root`);
    cached = u;
    return cached;
  }
  cached = lookupUser('postgres') ?? createSystemUser(log);
  return cached;
}

/** Spawn options that run a child as `user` (nothing when no switch is needed). */
export function spawnIdentity(user: PgUser): { uid?: number; gid?: number } {
  return user.isCurrent ? {} : { uid: user.uid, gid: user.gid };
}

/** Hands a path we created (as root) to the PostgreSQL user. */
export function giveToUser(p: string, user: PgUser): void {
  if (!user.isCurrent) chownSync(p, user.uid, user.gid);
}

/** Recursive `giveToUser`, for directory trees we copied (backups). Symlinks are changed, not followed. */
export async function giveTreeToUser(root: string, user: PgUser): Promise<void> {
  if (user.isCurrent) return;
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    if (st.isSymbolicLink()) return;
    await chown(p, user.uid, user.gid);
    if (st.isDirectory()) {
      for (const name of await readdir(p)) await walk(path.join(p, name));
    }
  };
  await walk(root);
}

/**
 * Whether `user` can reach `dir` (search permission on every ancestor) and read+execute the
 * binaries in it. Supplementary groups do not count: Node drops them when it switches uid.
 */
function canUse(dir: string, user: PgUser, files: string[]): boolean {
  if (user.isCurrent) return true;
  const allowed = (p: string, bits: number): boolean => {
    const st = statSync(p);
    if (st.uid === user.uid) return ((st.mode >> 6) & bits) === bits;
    if (st.gid === user.gid) return ((st.mode >> 3) & bits) === bits;
    return (st.mode & bits) === bits;
  };
  try {
    for (let d = dir; ; d = path.dirname(d)) {
      if (!allowed(d, 0o1)) return false;
      if (d === path.dirname(d)) break;
    }
    return files.every((f) => allowed(path.join(dir, f), 0o5));
  } catch {
    return false;
  }
}

/**
 * Binaries the PostgreSQL user can execute. A checkout under a private directory (e.g. /root)
 * hides the npm builds from that user; those are then copied once, with their bundled libraries
 * and share files, to a world-readable directory under the system temp dir and reused.
 */
export function ensureUsableBy(bin: PgBinaries, user: PgUser): PgBinaries {
  const files = ['initdb', 'pg_ctl', 'postgres'];
  if (canUse(bin.binDir, user, files)) return bin;
  if (!bin.packageRoot) {
    throw new ClusterError(`unable to run PostgreSQL binaries '${bin.binDir}': OS user ${user.name} cannot read or execute them`);
  }
  const stable = path.join(os.tmpdir(), `walvault-pgbin-${bin.version}`);
  const stableBin = path.join(stable, 'bin');
  if (!existsSync(path.join(stableBin, 'postgres'))) {
    const staging = mkdtempSync(`${stable}.tmp-`);
    try {
      // verbatimSymlinks keeps the libraries' relative .so symlinks pointing inside the copy.
      cpSync(bin.packageRoot, staging, { recursive: true, verbatimSymlinks: true });
      execFileSync('chmod', ['-R', 'a+rX', staging]);
      try {
        renameSync(staging, stable);
      } catch (err) {
        // Another process won the race and put the same files there first.
        if (!existsSync(path.join(stableBin, 'postgres'))) throw err;
      }
    } finally {
      if (existsSync(staging) && lstatSync(staging).isDirectory()) rmSync(staging, { recursive: true, force: true });
    }
  }
  // Only trust a copy nobody else could have planted or changed (the temp dir is shared).
  const st = statSync(stable);
  const me = process.getuid?.() ?? 0;
  if (st.uid !== me || (st.mode & 0o022) !== 0) {
    throw new ClusterError(`unable to use PostgreSQL binaries '${stableBin}': directory not owned by us or writable by others`);
  }
  if (!canUse(stableBin, user, files)) {
    throw new ClusterError(`unable to run PostgreSQL binaries '${stableBin}': OS user ${user.name} cannot execute them`);
  }
  return { ...bin, binDir: stableBin, packageRoot: stable };
}
