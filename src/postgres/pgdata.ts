/**
 * The one module that knows PostgreSQL's data directory layout (PG_VERSION, pg_wal/, the recovery
 * signal files, global/pg_control): what wal-push and wal-fetch learn from the data directory they
 * run in (PostgreSQL starts archive_command and restore_command with it as working directory).
 * The sh launchers in bin/ repeat a little of this in sh; keep them in step.
 */
import { existsSync, openSync, readSync, closeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** A directory is a data directory when it holds PG_VERSION (as PostgreSQL itself checks). */
export function isDataDir(dir: string): boolean {
  return existsSync(join(dir, 'PG_VERSION'));
}

/**
 * The data directory a WAL path (%p, `pg_wal/...`) lies in, or undefined when the path is not inside
 * one (an operator restoring a loose file).
 */
export function dataDirOfWalPath(walPath: string): string | undefined {
  const candidate = dirname(dirname(resolve(walPath)));
  return isDataDir(candidate) ? candidate : undefined;
}

export type RecoveryMode = 'standby' | 'archive-recovery' | 'unknown';

/** standby.signal wins over recovery.signal, as in PostgreSQL. */
export function detectRecoveryMode(pgdata: string): RecoveryMode {
  if (existsSync(join(pgdata, 'standby.signal'))) return 'standby';
  if (existsSync(join(pgdata, 'recovery.signal'))) return 'archive-recovery';
  return 'unknown';
}

/**
 * The data directory a restore_command call is for: the one `walPath` (%p, `pg_wal/...`) lies in,
 * else the working directory (PostgreSQL runs restore_command in the data directory). Works from
 * the arguments alone, before any setting is read, so even a misconfigured call knows whether it
 * serves a standby. Undefined outside a data directory (an operator restoring a loose file).
 */
export function restoreDataDir(walPath: string | undefined, cwd: string = process.cwd()): string | undefined {
  const candidates = walPath === undefined ? [cwd] : [dirname(dirname(resolve(cwd, walPath))), cwd];
  return candidates.find(isDataDir);
}

/**
 * The system identifier of the cluster in `pgdata`: the first field of global/pg_control, a u64 in
 * the server's byte order (little-endian on every platform we run on). Undefined when there is no
 * readable pg_control (wal-fetch called outside a data directory).
 */
export function readSystemIdentifier(pgdata: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(join(pgdata, 'global', 'pg_control'), 'r');
    const buf = Buffer.alloc(8);
    if (readSync(fd, buf, 0, 8, 0) !== 8) return undefined;
    const id = buf.readBigUInt64LE(0);
    return id === 0n ? undefined : id.toString();
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
