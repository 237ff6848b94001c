import { closeSync, fsyncSync, openSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { sweepTempFilesOnce, tempNameFor } from './temp-files.js';

/**
 * Writes `bytes` to `path` so that a reader sees either no file or the whole file, and the file
 * survives a crash once this resolves: temp file in the same directory, fsync, rename, directory fsync.
 * The first write into a directory in this process also removes temp files that killed writers
 * left there (see temp-files.ts for how live writers are told apart).
 *
 * `durable: false` skips both fsyncs: readers still see no file or the whole file while the machine
 * runs, but after a crash of the machine the file may be missing or torn. Only for files that
 * nothing reads after such a crash (see prefetch-dir.ts).
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array, mode = 0o600, opts: { durable?: boolean } = {}): Promise<void> {
  const durable = opts.durable ?? true;
  const dir = dirname(path);
  sweepTempFilesOnce(dir);
  const tmp = join(dir, tempNameFor(basename(path)));
  const handle = await open(tmp, 'wx', mode);
  try {
    try {
      await handle.writeFile(bytes);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (durable) await fsyncDirectory(dir);
}

/** Makes a rename or unlink in `dir` durable. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Synchronous variant, for the streaming receiver's write path. */
export function fsyncDirectorySync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
