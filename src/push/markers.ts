/**
 * "Pushed" markers let the wal-push launcher answer archive_command in a few milliseconds for a
 * segment that the look-ahead uploader already archived. A marker is written only after the upload
 * was verified, and names the exact file that was read: device, inode, size, and mtime and ctime to
 * the nanosecond, formatted like `stat -c '%d %i %s %.9Y %.9Z'`. Any rename (PostgreSQL recycles
 * segment files by renaming them) or rewrite changes ctime, and another cluster's or another
 * incarnation's file has another inode or times, so a marker can never vouch for a file it did not
 * see. Markers are deleted when used; stale ones are swept.
 */
import { mkdir, readFile, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import { sweepTempFiles } from '../common/temp-files.js';
import type { FileIdentity } from '../archive/push.js';

export function markerDir(stateDir: string): string {
  return join(stateDir, 'pushed');
}

function nsText(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return `${sec}.${frac}`;
}

function markerContent(file: FileIdentity): string {
  return `${file.dev} ${file.ino} ${file.size} ${nsText(file.mtimeNs)} ${nsText(file.ctimeNs)}`;
}

export async function currentFileIdentity(path: string): Promise<FileIdentity | undefined> {
  try {
    const st = await stat(path, { bigint: true });
    return { dev: Number(st.dev), ino: Number(st.ino), size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
  } catch {
    return undefined;
  }
}

/** Marker directories this process created (or found): one mkdir per directory, not per marker. */
const madeDirs = new Set<string>();

/**
 * Written whole or not at all (temp file, then rename), but not fsynced: a marker only saves work.
 * The upload it vouches for is durable before the marker is written; a marker lost (or left empty)
 * by a crash just matches nothing, and archive_command then runs the full program, which finds the
 * object already archived. Two fsyncs per segment were a large share of the uploader's wall time on
 * a throttled disk.
 */
export async function writeMarker(stateDir: string, fileName: string, file: FileIdentity): Promise<void> {
  const dir = markerDir(stateDir);
  if (!madeDirs.has(dir)) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    madeDirs.add(dir);
  }
  try {
    // No trailing newline: the launcher compares it with $(stat ...), which strips newlines anyway.
    await writeFileAtomic(join(dir, fileName), Buffer.from(markerContent(file)), 0o600, { durable: false });
  } catch (err) {
    // The directory may have been removed under us (an operator clearing the state directory):
    // the next marker creates it again.
    madeDirs.delete(dir);
    throw err;
  }
}

/**
 * Names of the markers present (failure notes and temp files left out): one directory listing for
 * the uploader's poll, instead of a stat per `.ready` file per poll (quadratic in a backlog).
 */
export async function markerNames(stateDir: string): Promise<Set<string>> {
  let names: string[];
  try {
    names = await readdir(markerDir(stateDir));
  } catch {
    return new Set();
  }
  return new Set(names.filter((n) => !n.startsWith('.') && !n.endsWith('.failed')));
}

/**
 * `pushed/<file>.failed`: the uploader's last attempt at this file failed. The wal-push launcher
 * stops waiting for a marker when it sees one and runs the full program, which tries itself and
 * reports the error to PostgreSQL at once (no 30 s wait per archive_command during an outage).
 */
export async function noteUploadFailed(stateDir: string, fileName: string): Promise<void> {
  const dir = markerDir(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, `${fileName}.failed`), '');
}

export async function clearUploadFailed(stateDir: string, fileName: string): Promise<void> {
  await unlink(join(markerDir(stateDir), `${fileName}.failed`)).catch(() => undefined);
}

/** True (and the marker consumed) when a marker vouches for exactly the file at `path`. */
export async function consumeMarker(stateDir: string, fileName: string, path: string): Promise<boolean> {
  const markerPath = join(markerDir(stateDir), fileName);
  let content: string;
  try {
    content = (await readFile(markerPath, 'utf8')).trim();
  } catch {
    return false;
  }
  const file = await currentFileIdentity(path);
  const matches = file !== undefined && content === markerContent(file);
  await unlink(markerPath).catch(() => undefined);
  return matches;
}

export async function hasMarker(stateDir: string, fileName: string): Promise<boolean> {
  try {
    await stat(join(markerDir(stateDir), fileName));
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes markers whose file is gone from pg_wal (already consumed by PostgreSQL or recycled), and
 * temp files of marker writes that a killed uploader left.
 */
export async function sweepMarkers(stateDir: string, walDir: string): Promise<number> {
  sweepTempFiles(markerDir(stateDir));
  let names: string[];
  try {
    names = await readdir(markerDir(stateDir));
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (name.startsWith('.')) continue;
    // A failure note (`<file>.failed`) lives as long as its WAL file, like a marker.
    const walFile = name.endsWith('.failed') ? name.slice(0, -'.failed'.length) : name;
    if ((await currentFileIdentity(join(walDir, walFile))) === undefined) {
      await unlink(join(markerDir(stateDir), name)).catch(() => undefined);
      removed++;
    }
  }
  return removed;
}

/** How long wal-push waits for a running uploader's marker before it uploads the file itself. */
export const MARKER_WAIT_MS = 3000;
const MARKER_POLL_MS = 20;

/**
 * Waits up to `timeoutMs` for a marker of `name` to appear; true (and the marker consumed) when it
 * vouches for exactly the file at `path`.
 */
export async function waitForMarker(stateDir: string, name: string, path: string, timeoutMs = MARKER_WAIT_MS): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await hasMarker(stateDir, name)) return consumeMarker(stateDir, name, path);
    await new Promise((r) => setTimeout(r, MARKER_POLL_MS));
  }
  return false;
}
