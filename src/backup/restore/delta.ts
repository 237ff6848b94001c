/**
 * `restore --delta`: over an existing data directory, keep every file whose SHA-256 already
 * matches the backup's and remove everything the backup does not have. A file rebuilt from an
 * incremental chain has no SHA-256 of its own to compare with (sha256 null): it is written again. The walk never follows a
 * symbolic link: a link is removed as a link, and the tablespaces are walked at the locations this
 * restore puts them, never where an old `pg_tblspc/<oid>` link happened to point, and there only
 * inside PostgreSQL's `PG_<version>_<catversion>` directories.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { restoredPath, type CatalogEntry } from '../catalog.js';
import type { TablespacePlan } from './tablespaces.js';

export interface DeltaScan {
  /** Restored paths (relative to the data directory) of files that already match. */
  readonly keep: Set<string>;
  /** Entries (files, directories, links) removed. */
  readonly removed: number;
  /** Bytes of the kept files: not downloaded again. */
  readonly keptBytes: number;
}

async function sha256Of(abs: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(abs)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Scans `pgdata` and the tablespace locations; `preserve` names root-level files of the restore
 * itself (its marker) that stay.
 */
export async function scanForDelta(
  pgdata: string,
  entries: readonly CatalogEntry[],
  tablespaces: readonly TablespacePlan[],
  preserve: ReadonlySet<string>,
  parallel: number,
): Promise<DeltaScan> {
  const wanted = new Map<string, CatalogEntry>();
  for (const e of entries) wanted.set(restoredPath(e), e);
  const candidates: { abs: string; rel: string; entry: CatalogEntry }[] = [];
  let removed = 0;
  const remove = async (abs: string): Promise<void> => {
    await rm(abs, { recursive: true, force: true });
    removed++;
  };

  const tablespaceRoot = new Set(tablespaces.map((t) => `pg_tblspc/${t.oid}`));
  const walk = async (absDir: string, relDir: string): Promise<void> => {
    for (const name of await readdir(absDir)) {
      const abs = join(absDir, name);
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      if (relDir === '' && preserve.has(name)) continue;
      const st = await lstat(abs);
      const want = wanted.get(rel);
      // pg_tblspc/<oid> is always recreated (as a link to the planned location).
      if (relDir === 'pg_tblspc' && tablespaces.some((t) => String(t.oid) === name)) {
        await remove(abs);
        continue;
      }
      // At a tablespace's root only PostgreSQL's own PG_<version>_<catversion> directories are ours:
      // a mount point's lost+found or an operator's file there stays.
      if (!want && tablespaceRoot.has(relDir) && !/^PG_\d/.test(name)) continue;
      if (!want) await remove(abs);
      else if (want.type === 'dir') {
        if (st.isDirectory()) await walk(abs, rel);
        else await remove(abs);
      } else if (want.type === 'file' && want.sha256 !== null && st.isFile() && st.size === want.size) {
        candidates.push({ abs, rel, entry: want });
      } else await remove(abs);
    }
  };
  await walk(pgdata, '');
  for (const t of tablespaces) {
    const st = await lstat(t.location).catch(() => undefined);
    if (st?.isDirectory()) await walk(t.location, `pg_tblspc/${t.oid}`);
    else if (st) await remove(t.location);
  }

  const keep = new Set<string>();
  let keptBytes = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < candidates.length) {
      const c = candidates[next++]!;
      if ((await sha256Of(c.abs)) === c.entry.sha256) {
        keep.add(c.rel);
        keptBytes += c.entry.size;
      } else await remove(c.abs);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
  return { keep, removed, keptBytes };
}
