/**
 * Local state shared by the sh launchers and the Node program: "pushed" markers and prefetched
 * segments. It lives outside PGDATA (files there upset pg_rewind and base backups), in a directory
 * per data directory named after the data directory's device and inode, which both sides compute
 * without reading any configuration: the launcher with `stat -c %d-%i .` (PostgreSQL runs
 * archive_command and restore_command in the data directory).
 *
 * The launchers only know WALVAULT_STATE_DIR from the environment (they parse no config file), so
 * the base directory is an environment setting only; the default works for everyone.
 */
import { existsSync, statSync } from 'node:fs';
import { readSystemIdentifier } from '../restore/pgdata.js';
import { dirname, join, resolve } from 'node:path';

export const DEFAULT_STATE_BASE = '/var/tmp/walvault';

export function stateBase(env: NodeJS.ProcessEnv = process.env): string {
  return env['WALVAULT_STATE_DIR'] || DEFAULT_STATE_BASE;
}

/**
 * `<base>/<dev>-<ino>-<system id>` of the data directory, as the launchers compute it with
 * `stat -c %d-%i .` and `od -An -tu8 -N8 global/pg_control`. The system identifier keeps a new
 * cluster that happens to reuse a deleted data directory's inode away from the old one's state.
 */
export function stateDirFor(pgdata: string, env: NodeJS.ProcessEnv = process.env): string {
  const st = statSync(pgdata, { bigint: true });
  return join(stateBase(env), `${st.dev}-${st.ino}-${readSystemIdentifier(pgdata) ?? ''}`);
}

/**
 * The data directory a WAL path (%p, `pg_wal/...`) lies in, or undefined when the path is not inside
 * one (an operator restoring a loose file): then there is no state directory to use.
 */
export function dataDirOfWalPath(walPath: string): string | undefined {
  const candidate = dirname(dirname(resolve(walPath)));
  return existsSync(join(candidate, 'PG_VERSION')) ? candidate : undefined;
}

export function stateDirForWalPath(walPath: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const pgdata = dataDirOfWalPath(walPath);
  if (pgdata === undefined) return undefined;
  try {
    return stateDirFor(pgdata, env);
  } catch {
    return undefined;
  }
}
