/**
 * File-level copy of a running cluster's data directory for a low-level base backup, leaving out
 * what the PostgreSQL documentation ("Making a Base Backup Using the Low Level API") says a backup
 * must or may omit.
 */
import { constants } from 'node:fs';
import { copyFile, mkdir, readdir, readlink, symlink } from 'node:fs/promises';
import path from 'node:path';
import { SegmentName } from '../../src/segment/names.js';
import { ClusterError } from './errors.js';

/** Top-level files that belong to the running server, not to the backup. */
export const SKIP_FILES: ReadonlySet<string> = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'backup_label',
  'backup_label.old',
  'tablespace_map',
  'tablespace_map.old',
  'backup_manifest',
  'current_logfiles',
  'recovery.signal',
  'standby.signal',
  'postgresql.auto.conf.tmp',
]);

/** Directories copied empty: their content is runtime state or WAL that recovery fetches itself. */
export const EMPTY_DIRS: ReadonlySet<string> = new Set([
  'pg_wal',
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_stat_tmp',
  'pg_subtrans',
]);

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

async function copyTree(src: string, dst: string, skipFiles: (name: string) => boolean): Promise<void> {
  await mkdir(dst, { mode: 0o700 });
  let entries;
  try {
    entries = await readdir(src, { withFileTypes: true });
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  for (const e of entries) {
    const from = path.join(src, e.name);
    const to = path.join(dst, e.name);
    if (e.name.startsWith('pgsql_tmp') || e.name === 'pg_internal.init') continue;
    if (e.isDirectory()) {
      await copyTree(from, to, () => false);
    } else if (e.isSymbolicLink()) {
      await symlink(await readlink(from), to);
    } else if (e.isFile() && !skipFiles(e.name)) {
      try {
        await copyFile(from, to, constants.COPYFILE_EXCL);
      } catch (err) {
        // Files come and go while the server runs; WAL replay recreates whatever was in flight.
        if (!isMissing(err)) throw err;
      }
    }
  }
}

/** Copies `dataDir` into the new directory `dest` (which must not exist yet). */
export async function copyDataDirForBackup(dataDir: string, dest: string): Promise<void> {
  const tablespaces = await readdir(path.join(dataDir, 'pg_tblspc')).catch(() => []);
  if (tablespaces.length > 0) {
    throw new ClusterError(`unable to back up data directory '${dataDir}': tablespaces are not supported by the harness`);
  }
  await mkdir(dest, { mode: 0o700 });
  for (const e of await readdir(dataDir, { withFileTypes: true })) {
    const from = path.join(dataDir, e.name);
    const to = path.join(dest, e.name);
    if (e.isDirectory() && EMPTY_DIRS.has(e.name)) {
      await mkdir(to, { mode: 0o700 });
    } else if (e.isDirectory()) {
      await copyTree(from, to, () => false);
    } else if (e.isFile() && !SKIP_FILES.has(e.name)) {
      await copyFile(from, to, constants.COPYFILE_EXCL);
    } else if (e.isSymbolicLink()) {
      await symlink(await readlink(from), to);
    }
  }
  // Same layout as pg_basebackup produces: an empty pg_wal with its archive_status directory.
  await mkdir(path.join(dest, 'pg_wal', 'archive_status'), { mode: 0o700 });
}

/** Plain recursive copy of a stopped data directory or a finished backup. */
export async function copyWholeDir(src: string, dest: string): Promise<void> {
  await copyTree(src, dest, () => false);
}

/** Names of the WAL segments from `first` to `last` inclusive on one timeline (src/segment does the arithmetic). */
export function segmentRange(first: string, last: string, segSize: number): string[] {
  const end = SegmentName.parse(last, segSize);
  const names: string[] = [];
  for (let s = SegmentName.parse(first, segSize); s.segno <= end.segno; s = s.next()) {
    names.push(s.name);
    if (s.segno === end.segno) break;
  }
  return names;
}
