/**
 * The directory a restore writes into: refusals (a running server, a non-empty directory without
 * --delta), the owner restored files get, and the marker that says a restore is unfinished.
 */
import { existsSync, lstatSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ExitCode, WalvaultError } from '../../common/errors.js';

/** A restore that would harm an existing cluster or directory; nothing was written. Exit 4. */
export class RestoreRefusedError extends WalvaultError {
  override readonly code = 'WV_ERR_RESTORE_REFUSED';
  override readonly exitCode = ExitCode.conflict;
}

/**
 * Left in the data directory while a restore runs and when it fails, with the reason. The
 * directory is also not startable then, because global/pg_control is written last (see restore.ts).
 */
export const INCOMPLETE_MARKER = 'walvault-restore.incomplete';

/** The pid in postmaster.pid when that process is alive (PostgreSQL's own first check), else undefined. */
export function livePostmaster(pgdata: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(join(pgdata, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.split('\n')[0]?.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: it exists, owned by another user (the postgres server seen from a non-root caller).
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

export function refuseRunning(pgdata: string): void {
  const pid = livePostmaster(pgdata);
  if (pid !== undefined) {
    throw new RestoreRefusedError(
      `unable to restore into '${pgdata}': a server is running there (postmaster.pid names live process ${pid}); stop it first`,
    );
  }
}

/** Fresh restores go only into an absent or empty directory. */
export function refuseNonEmpty(dir: string, what: string, hint: string): void {
  if (!existsSync(dir)) return;
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new RestoreRefusedError(`unable to restore into ${what} '${dir}': it exists and is not a directory`);
  const names = readdirSync(dir);
  if (names.length > 0) {
    throw new RestoreRefusedError(`unable to restore into ${what} '${dir}': it is not empty (${names.length} entries)${hint}`);
  }
}

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/**
 * Who restored files belong to: when root restores, the owner of the data directory (or of its
 * nearest existing ancestor when it does not exist yet), so that a directory prepared for the postgres user stays
 * usable by it. Undefined when no chown is needed (not root, or root-owned target).
 */
export function restoreOwner(pgdata: string): Owner | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  let probe = pgdata;
  while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe);
  try {
    const st = statSync(probe);
    return st.uid === 0 ? undefined : { uid: st.uid, gid: st.gid };
  } catch {
    return undefined;
  }
}
