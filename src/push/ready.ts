/**
 * The `.ready` queue PostgreSQL's archiver works through. Its own module so that a cold wal-push
 * can look at the queue without loading the uploader (and its queue library).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Names of `.ready` files, oldest first (WAL file names sort in WAL order). */
export async function readyFiles(walDir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(join(walDir, 'archive_status'));
  } catch {
    return [];
  }
  return entries
    .filter((n) => n.endsWith('.ready'))
    .map((n) => n.slice(0, -'.ready'.length))
    .sort();
}
