/**
 * Local state shared by the sh launchers and the Node program: "pushed" markers and prefetched
 * segments. It lives outside PGDATA (files there upset pg_rewind and base backups), in a directory
 * per data directory named after the data directory's device and inode, which both sides compute
 * without reading any configuration: the launcher with `stat -c '%d %i …' .` (PostgreSQL runs
 * archive_command and restore_command in the data directory).
 *
 * The launchers only know WALVAULT_STATE_DIR from the environment (they parse no config file), so
 * the base directory is an environment setting only; the default works for everyone.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { dataDirOfWalPath, readSystemIdentifier } from '../postgres/pgdata.js';

export const DEFAULT_STATE_BASE = '/var/tmp/walvault';

/** The detached uploader's and prefetcher's log, in the state directory (capped, see capped-log.ts). */
export const BACKGROUND_LOG_NAME = 'walvault.log';

export function stateBase(env: NodeJS.ProcessEnv = process.env): string {
  return env['WALVAULT_STATE_DIR'] || DEFAULT_STATE_BASE;
}

/**
 * `<base>/<dev>-<ino>-<system id>` of the data directory, as the launchers compute it with
 * `stat` of `.` (device and inode) and `od -An -tu8 -N8 global/pg_control`. The system identifier keeps a new
 * cluster that happens to reuse a deleted data directory's inode away from the old one's state.
 */
export function stateDirFor(pgdata: string, env: NodeJS.ProcessEnv = process.env): string {
  const st = statSync(pgdata, { bigint: true });
  return join(stateBase(env), `${st.dev}-${st.ino}-${readSystemIdentifier(pgdata) ?? ''}`);
}

/** The state directory of the data directory `walPath` lies in; undefined outside one (no state to use). */
export function stateDirForWalPath(walPath: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const pgdata = dataDirOfWalPath(walPath);
  if (pgdata === undefined) return undefined;
  try {
    return stateDirFor(pgdata, env);
  } catch {
    return undefined;
  }
}

/** Present while a daemon waits for the uploader lock: the detached uploader finishes its uploads and exits. */
export function handoverFile(stateDir: string): string {
  return join(stateDir, 'ahead.handover');
}
